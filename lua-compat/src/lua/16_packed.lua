--------------------------------------------------------------------------------------------------
-- The packed job record (core/src/packed.rs): a job's record is one string at its key,
-- `zrq:{queue}:job:<id>`, its stored fields in FIELDS order, each `<tag><length>:<value>`, one space
-- between two fields: `t4:noop p7:{"n":1} s6:active a1:1`. The tags (PACKED_TAG) are generated
-- from zrq_core::packed::TAGS. Both backends write the same bytes for the same job.
--   packed.encode(job)       the record of a job table (the fields job.rs `to_fields` stores:
--                            not id nor queue, none at its default), packed
--   packed.decode(key, raw)  the fields of record `raw` stored at `key`, as a table field ->
--                            value; CORRUPT (the module's text) for anything but that grammar
--------------------------------------------------------------------------------------------------

local packed = {}
do
    -- Made on first use (top-level code has no `string`): the stored fields in order with their
    -- tags, whether each is an integer, and the field of each tag's byte.
    local stored, tags, is_int, field_of

    local function split()
        stored, tags, is_int, field_of = {}, {}, {}, {}
        for i = 1, #FIELDS do
            local name = FIELDS[i][1]
            local tag = PACKED_TAG[name]
            if tag ~= nil then
                stored[#stored + 1] = name
                tags[#tags + 1] = tag
                is_int[name] = FIELDS[i][2] == 'integer'
                field_of[byte(tag)] = name
            end
        end
    end

    -- The record as pieces concatenated once: `<tag><length>:` heads (` <tag>…` after the first)
    -- and the values, so no value is copied twice.
    function packed.encode(job)
        if stored == nil then
            split()
        end
        local parts, n = {}, 0
        for i = 1, #stored do
            local field = stored[i]
            local value = job[field]
            if value ~= nil and DEFAULT_OF[field] ~= value then
                if is_int[field] then
                    value = itoa(value)
                end
                parts[n + 1] = (n == 0 and '' or ' ') .. tags[i] .. #value .. ':'
                parts[n + 2] = value
                n = n + 2
            end
        end
        return table.concat(parts)
    end

    -- A byte as Rust's `u8::escape_ascii` shows it (the tag in an error).
    local function escape_ascii(b)
        if b == 9 then
            return '\\t'
        elseif b == 10 then
            return '\\n'
        elseif b == 13 then
            return '\\r'
        elseif b == 34 or b == 39 or b == 92 then
            return '\\' .. string.char(b)
        elseif b >= 0x20 and b <= 0x7e then
            return string.char(b)
        end
        return format('\\x%02x', b)
    end

    local function corrupt(key, detail)
        fail('CORRUPT', "'" .. key .. "' is not a zrq record: " .. detail)
    end

    function packed.decode(key, raw)
        if stored == nil then
            split()
        end
        local n = #raw
        if n == 0 then
            corrupt(key, 'the record is empty')
        end
        -- Tags, lengths, colons and spaces are ASCII, so when the whole record is UTF-8 so is
        -- every value, each a run of whole characters: checked once, not value by value.
        local text = is_utf8(raw)
        local fields, at = {}, 1
        while true do
            local tag = byte(raw, at)
            local name = field_of[tag]
            if name == nil then
                corrupt(key, "unknown field tag '" .. escape_ascii(tag) .. "' at byte " .. itoa(at - 1))
            end
            if fields[name] ~= nil then
                corrupt(key, "field '" .. name .. "' is stored twice")
            end
            -- 1 to 10 digits, no leading zero (but "0"), then ':'.
            local _, colon = find(raw, '^%d+:', at + 1)
            if colon == nil or colon - at > 11 or (colon - at > 2 and byte(raw, at + 1) == 48) then
                corrupt(key, "field '" .. name .. "' has no valid length")
            end
            local last = colon + tonumber(sub(raw, at + 1, colon - 1))
            if last > n then
                corrupt(key, "field '" .. name .. "' runs past the end of the record")
            end
            local value = sub(raw, colon + 1, last)
            if not text and not is_utf8(value) then
                corrupt(key, "field '" .. name .. "' is not UTF-8 text")
            end
            fields[name] = value
            if last == n then
                return fields
            end
            if byte(raw, last + 1) ~= 32 or last + 1 == n then
                corrupt(key, "field '" .. name .. "' is not followed by one space and another field")
            end
            at = last + 2
        end
    end
end
