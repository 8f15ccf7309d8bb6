--------------------------------------------------------------------------------------------------
-- JSON validity (core/src/args.rs `json`, which parses with serde_json).
--------------------------------------------------------------------------------------------------

-- JSON check: a port of serde_json's `from_str::<IgnoredAny>` (Deserializer::ignore_value, then
-- `end`), so the same documents are accepted and the error detail is the same text, with the same
-- line and column. Returns nil when `s` is valid, else the detail; and how deeply arrays and
-- objects nest in it (args.rs `json_depth`).
local json_detail
do
    local function position(s, i)
        -- i = bytes consumed (serde_json's 0-based index); column counts bytes since the last '\n'.
        local line, start, p = 1, 0, 1
        while true do
            local nl = find(s, '\n', p, true)
            if not nl or nl > i then
                break
            end
            line, start, p = line + 1, nl, nl + 1
        end
        return line, i - start
    end

    local SIMPLE_ESCAPE = { [34] = true, [92] = true, [47] = true, [98] = true, [102] = true,
        [110] = true, [114] = true, [116] = true }

    -- The document being checked, its length and the bytes consumed (serde_json's index), and
    -- how deep it nests so far: the state of the one check running (checks never nest), so the
    -- functions below are made once, not for every document.
    local s, n, i, deepest
    -- The string functions themselves, not the load-time wrappers (this is the hot path of every
    -- payload check): set by each check, at call time, when the standard library is there.
    local find, byte

    -- error(): position of the last byte read; peek_error(): of the byte peeked.
    local function err_at(reason, at)
        local line, column = position(s, at)
        error({ json = format('%s at line %d column %d', reason, line, column) }, 0)
    end
    local function err(reason) err_at(reason, i) end
    local function peek_err(reason) err_at(reason, i + 1 <= n and i + 1 or n) end

    local function peek() return byte(s, i + 1) end -- nil at the end
    local function whitespace()
        local c = byte(s, i + 1)
        if c ~= 32 and c ~= 10 and c ~= 9 and c ~= 13 then
            return c -- compact JSON: no search needed
        end
        local _, e = find(s, '^[ \n\t\r]*', i + 1)
        i = e
        return byte(s, i + 1)
    end
    local function skip_digits()
        local _, e = find(s, '^%d*', i + 1)
        i = e
    end
    local function is_digit(c) return c ~= nil and c >= 48 and c <= 57 end

    local function ident(rest)
        for k = 1, #rest do
            local c = peek()
            if c == nil then
                err('EOF while parsing a value')
            end
            i = i + 1
            if c ~= byte(rest, k) then
                err('expected ident')
            end
        end
    end

    local function exponent()
        i = i + 1 -- e or E
        local c = peek()
        if c == 43 or c == 45 then
            i = i + 1
        end
        c = peek()
        if c ~= nil then
            i = i + 1
        end
        if not is_digit(c) then
            err('invalid number')
        end
        skip_digits()
    end

    local function number()
        -- Fast path: a plain integer (0, or no leading zero) without fraction or exponent.
        local _, e = find(s, '^[1-9]%d*', i + 1)
        if not e and byte(s, i + 1) == 48 then
            e = i + 1
        end
        if e then
            local after = byte(s, e + 1)
            if after ~= 46 and after ~= 101 and after ~= 69 and (after == nil or after < 48 or after > 57) then
                i = e
                return
            end
        end
        local c = peek()
        if c ~= nil then
            i = i + 1
        end
        if c == 48 then
            if is_digit(peek()) then
                peek_err('invalid number')
            end
        elseif is_digit(c) then
            skip_digits()
        else
            err('invalid number')
        end
        c = peek()
        if c == 46 then -- '.'
            i = i + 1
            local before = i
            skip_digits()
            if i == before then
                peek_err('invalid number')
            end
            c = peek()
            if c == 101 or c == 69 then
                exponent()
            end
        elseif c == 101 or c == 69 then
            exponent()
        end
    end

    local function str() -- after the opening quote
        while true do
            local at = find(s, '["\\%z\1-\31]', i + 1)
            if not at then
                i = n
                err('EOF while parsing a string')
            end
            i = at - 1
            local c = byte(s, at)
            if c == 34 then
                i = at
                return
            elseif c == 92 then
                i = at
                local e = peek()
                if e == nil then
                    err('EOF while parsing a string')
                end
                i = i + 1
                if e == 117 then -- \u: four hex digits
                    if i + 4 > n then
                        i = n
                        err('EOF while parsing a string')
                    end
                    i = i + 4
                    if not find(sub(s, i - 3, i), '^%x%x%x%x$') then
                        err('invalid escape')
                    end
                elseif not SIMPLE_ESCAPE[e] then
                    err('invalid escape')
                end
            else
                err('control character (\\u0000-\\u001F) found while parsing a string')
            end
        end
    end

    local function parse()
        local stack, enclosing = {}, nil
        while true do
            local c = whitespace()
            if c == nil then
                peek_err('EOF while parsing a value')
            end
            local frame
            if c == 110 then -- n
                i = i + 1
                ident('ull')
            elseif c == 116 then -- t
                i = i + 1
                ident('rue')
            elseif c == 102 then -- f
                i = i + 1
                ident('alse')
            elseif c == 45 then -- '-'
                i = i + 1
                number()
            elseif is_digit(c) then
                number()
            elseif c == 34 then -- '"'
                i = i + 1
                str()
            elseif c == 91 or c == 123 then -- '[' '{'
                if enclosing then
                    stack[#stack + 1] = enclosing
                    enclosing = nil
                end
                i = i + 1
                frame = c
                if #stack + 1 > deepest then
                    deepest = #stack + 1
                end
            else
                peek_err('expected value')
            end

            local accept_comma
            if frame then
                accept_comma = false
            elseif enclosing then
                frame, enclosing, accept_comma = enclosing, nil, true
            else
                frame = table.remove(stack)
                if frame == nil then
                    return
                end
                accept_comma = true
            end

            while true do
                c = whitespace()
                if c == 44 and accept_comma then -- ','
                    i = i + 1
                    break
                elseif (c == 93 and frame == 91) or (c == 125 and frame == 123) then
                    -- closes the frame: eaten below
                elseif c ~= nil then
                    if accept_comma then
                        peek_err(frame == 91 and 'expected `,` or `]`' or 'expected `,` or `}`')
                    end
                    break
                else
                    peek_err(frame == 91 and 'EOF while parsing a list' or 'EOF while parsing an object')
                end
                i = i + 1
                frame = table.remove(stack)
                if frame == nil then
                    return
                end
                accept_comma = true
            end

            if frame == 123 then
                c = whitespace()
                if c == 34 then
                    i = i + 1
                elseif c ~= nil then
                    peek_err('key must be a string')
                else
                    peek_err('EOF while parsing an object')
                end
                str()
                c = whitespace()
                if c == 58 then -- ':'
                    i = i + 1
                elseif c ~= nil then
                    peek_err('expected `:`')
                else
                    peek_err('EOF while parsing an object')
                end
            end
            enclosing = frame
        end
    end

    json_detail = function(text)
        find, byte = string.find, string.byte
        s, n, i, deepest = text, #text, 0, 0
        local ok, detail = pcall(parse)
        if ok then
            if whitespace() ~= nil then
                ok, detail = pcall(peek_err, 'trailing characters')
            else
                return nil, deepest
            end
        end
        if type(detail) == 'table' and detail.json then
            return detail.json
        end
        error(detail, 0)
    end
end
