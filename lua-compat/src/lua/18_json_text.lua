--------------------------------------------------------------------------------------------------
-- JSON text the records carry: id lists (`children`) and id maps (`parents`), written the way
-- serde_json writes them (compact, keys sorted).
--------------------------------------------------------------------------------------------------

local function json_string(text)
    return '"' .. text:gsub('[%c"\\]', function(c)
        local named = { ['"'] = '\\"', ['\\'] = '\\\\', ['\n'] = '\\n', ['\r'] = '\\r', ['\t'] = '\\t',
            ['\b'] = '\\b', ['\f'] = '\\f' }
        if named[c] then
            return named[c]
        end
        if byte(c) == 127 then
            return c
        end
        return format('\\u%04x', byte(c))
    end) .. '"'
end

-- Reads one JSON string starting at `at` (its opening quote); returns the text and the position
-- after it, or nil.
local function read_json_string(text, at)
    local out, i = {}, at + 1
    while true do
        local c = sub(text, i, i)
        if c == '' then
            return nil
        elseif c == '"' then
            return table.concat(out), i + 1
        elseif c == '\\' then
            local e = sub(text, i + 1, i + 1)
            local simple = { ['"'] = '"', ['\\'] = '\\', ['/'] = '/', b = '\b', f = '\f', n = '\n', r = '\r', t = '\t' }
            if simple[e] then
                out[#out + 1] = simple[e]
                i = i + 2
            elseif e == 'u' and find(sub(text, i + 2, i + 5), '^%x%x%x%x$') and tonumber(sub(text, i + 2, i + 5), 16) < 128 then
                out[#out + 1] = string.char(tonumber(sub(text, i + 2, i + 5), 16))
                i = i + 6
            else
                return nil
            end
        else
            out[#out + 1] = c
            i = i + 1
        end
    end
end

-- `["a","b"]` without backslashes, every element a valid id, split directly (C-level string
-- functions, not a character loop): a parent's `children` is read for every child enqueued after
-- it. nil for anything else. (flow.rs plain_id_list)
local function plain_id_list(text)
    if find(text, '\\', 1, true) then
        return nil
    end
    if text == '[]' then
        return {}
    end
    if sub(text, 1, 2) ~= '["' or sub(text, -2) ~= '"]' or #text < 4 then
        return nil
    end
    local inner, ids, at = sub(text, 3, -3), {}, 1
    while true do
        local stop = find(inner, '","', at, true)
        local id = sub(inner, at, (stop or #inner + 1) - 1)
        if find(id, '"', 1, true) or not is_name('id', id) then
            return nil
        end
        ids[#ids + 1] = id
        if not stop then
            return ids
        end
        at = stop + 3
    end
end

-- A JSON array of strings, keeping the valid ids (flow.rs id_list); anything else reads as empty.
local function id_list(text)
    if text == nil then
        return {}
    end
    local plain = plain_id_list(text)
    if plain then
        return plain
    end
    local ids, i = {}, select(2, find(text, '^%s*%[%s*')) 
    if not i then
        return {}
    end
    i = i + 1
    if find(text, '^%]%s*$', i) then
        return ids
    end
    while true do
        if sub(text, i, i) ~= '"' then
            return {}
        end
        local id, after = read_json_string(text, i)
        if not id then
            return {}
        end
        -- Only valid ids: a child is addressed by its id within the queue (flow.rs id_list).
        if is_name('id', id) then
            ids[#ids + 1] = id
        end
        local _, e = find(text, '^%s*,%s*', after)
        if e then
            i = e + 1
        elseif find(text, '^%s*%]%s*$', after) then
            return ids
        else
            return {}
        end
    end
end

local function json_id_list(ids)
    local parts = {}
    for n, id in ipairs(ids) do
        parts[n] = json_string(id)
    end
    return '[' .. table.concat(parts, ',') .. ']'
end

-- The entries of a JSON object written by json_object: { {key, value-text}, ... } or nil.
local function object_entries(text)
    if text == nil or not find(text, '^%s*{') then
        return nil
    end
    local entries, i = {}, select(2, find(text, '^%s*{%s*')) + 1
    if find(text, '^}%s*$', i) then
        return entries
    end
    while true do
        if sub(text, i, i) ~= '"' then
            return nil
        end
        local key, after = read_json_string(text, i)
        if not key then
            return nil
        end
        local _, colon = find(text, '^%s*:%s*', after)
        if not colon then
            return nil
        end
        -- The value runs to the next ',' or '}' outside strings and brackets.
        local depth, j, start = 0, colon + 1, colon + 1
        while true do
            local c = sub(text, j, j)
            if c == '' then
                return nil
            elseif c == '"' then
                local _, next_at = read_json_string(text, j)
                if not next_at then
                    return nil
                end
                j = next_at
            else
                if c == '[' or c == '{' then
                    depth = depth + 1
                elseif c == ']' or c == '}' then
                    if depth == 0 then
                        break
                    end
                    depth = depth - 1
                elseif c == ',' and depth == 0 then
                    break
                end
                j = j + 1
            end
        end
        local value = sub(text, start, j - 1):gsub('%s+$', '')
        entries[#entries + 1] = { key, value }
        if sub(text, j, j) == '}' then
            return entries
        end
        i = select(2, find(text, '^,%s*', j)) + 1
    end
end

-- A JSON object from { {key, value-text}, ... }, keys sorted and unique (serde_json's map).
local function json_object(entries)
    local by_key, keys = {}, {}
    for _, e in ipairs(entries) do
        if by_key[e[1]] == nil then
            keys[#keys + 1] = e[1]
        end
        by_key[e[1]] = e[2]
    end
    table.sort(keys, byte_less)
    local parts = {}
    for n, key in ipairs(keys) do
        parts[n] = json_string(key) .. ':' .. by_key[key]
    end
    return '{' .. table.concat(parts, ',') .. '}'
end

-- A JSON document made compact: whitespace outside strings removed.
local function compact_json(text)
    local out, i = {}, 1
    while i <= #text do
        local s_at = find(text, '"', i, true)
        local chunk = sub(text, i, (s_at or #text + 1) - 1):gsub('[ \t\r\n]', '')
        out[#out + 1] = chunk
        if not s_at then
            break
        end
        local _, after = read_json_string(text, s_at)
        if not after then
            -- A string with an escape this reader does not decode: keep the rest as it is.
            out[#out + 1] = sub(text, s_at)
            break
        end
        out[#out + 1] = sub(text, s_at, after - 1)
        i = after
    end
    return table.concat(out)
end
