--------------------------------------------------------------------------------------------------
-- The packed job record (core/src/packed.rs): a job's record is one string at its key,
-- `zrq:{queue}:job:<id>`, its stored fields in FIELDS order, each `<tag><length>:<value>`, one space
-- between two fields: `t4:noop p7:{"n":1} s6:active a1:1`. The tags (each stored field's third
-- element in FIELDS) are generated from zrq_core::packed::TAGS. Both backends write the same
-- bytes for the same job.
--   packed.encode(job, false, created, lease)   the record of a job table (the fields job.rs
--                            `to_fields` stores: not id nor queue, none at its default), packed;
--                            `created` and `lease` what the job's id says (packed.save): its
--                            created_at and its lease left out when they are these, and no lease
--                            stored empty when there is a default one
--   packed.decode(key, raw, unchecked)   the fields of record `raw` stored at `key`, as a table
--                            field -> value; CORRUPT (the module's text) for anything but that
--                            grammar. The values of the fields in the set `unchecked` are not
--                            checked for UTF-8 (see load_job's `linked`).
--   packed.encode(job, true, created, lease)   the fields after `payload` only, each after one
--                            space: what follows the payload in the record (packed.save's patch)
--   packed.read_linked(key)  a record read in pieces for its links (see below)
--   packed.read(key, unchecked), packed.save(k, job, expire_ms)   a record's one GET and one SET
--                            (defined with the job record, 17_job.lua)
--------------------------------------------------------------------------------------------------

local packed = {}
do
    -- Made on first use (top-level code has no `string`): the stored fields in order with their
    -- tags, the default of each (by place: DEFAULT_OF's, false for an integer without one, nil
    -- for a text), the field of each tag's byte, and the string functions (looked up once: every
    -- job read or written runs these loops).
    local stored, tags, default_at, field_of, after_payload, created_at, lease_at
    local s_byte, s_find, s_sub, s_format, concat, to_number
    -- Memos of lengths and small integers (a number's text costs a C formatting call, and a
    -- record's lengths are mostly short): `<tag><length>:` heads by place and length (below
    -- MEMO), the text of integers from 0 to below MEMO, the value of each valid length text of up
    -- to 3 digits. `parts` is encode's list, kept from one call to the next.
    local MEMO = 1000
    local heads, first_heads, small, length_of, parts, segments

    local function split()
        s_byte, s_find, s_sub, s_format = string.byte, string.find, string.sub, string.format
        concat, to_number = table.concat, tonumber
        stored, tags, default_at, field_of = {}, {}, {}, {}
        heads, first_heads, small, length_of, parts, segments = {}, {}, {}, {}, {}, {}
        for i = 1, #FIELDS do
            local name = FIELDS[i][1]
            local tag = FIELDS[i][3]
            if tag ~= nil then
                local at = #stored + 1
                stored[at], tags[at] = name, tag
                if FIELDS[i][2] == 'integer' then
                    default_at[at] = DEFAULT_OF[name] or false
                end
                field_of[s_byte(tag)] = name
                heads[at], first_heads[at] = {}, {}
                if name == 'payload' then
                    after_payload = at + 1
                elseif name == 'created_at' then
                    created_at = at
                elseif name == 'lease' then
                    lease_at = at
                end
            end
        end
    end

    -- Values from this many bytes on are joined with `..` (one copy), not by table.concat, which
    -- in Lua 5.1 copies byte by byte: a payload-max value costs a third as much.
    local BIG = 1024

    -- `segments` 1 to `m`, joined; the odd ones are the small pieces joined, the even ones the big
    -- values between them. One `..` of up to 7 operands copies each byte once.
    local function join(m)
        local s = segments
        if m == 1 then
            return s[1]
        elseif m == 3 then
            return s[1] .. s[2] .. s[3]
        elseif m == 5 then
            return s[1] .. s[2] .. s[3] .. s[4] .. s[5]
        elseif m == 7 then
            return s[1] .. s[2] .. s[3] .. s[4] .. s[5] .. s[6] .. s[7]
        end
        return concat(s, '', 1, m)
    end

    -- The record as pieces concatenated once: `<tag><length>:` heads (` <tag>…` after the first)
    -- and the values, so no value is copied twice (big values apart, see BIG). An absent field
    -- costs a lookup. With `tail`, only the fields after `payload`, the first one after a space
    -- too: the record's bytes from the space that ends the payload. `created`, `lease`: the
    -- created_at and the lease the job's id says (nil: none), each left out when the job's is
    -- that one; with a lease said, the job's absent lease is written empty.
    function packed.encode(job, tail, created, lease)
        if stored == nil then
            split()
        end
        local stored, default_at, parts = stored, default_at, parts
        local n, m = 0, 0
        for i = tail and after_payload or 1, #stored do
            local value = job[stored[i]]
            if i == lease_at and lease ~= nil then
                if value == nil then
                    value = ''
                elseif value == lease then
                    value = nil
                end
            end
            if value ~= nil then
                local default = default_at[i]
                if default ~= nil then
                    -- An integer: left out at its default (or the id's created_at), else its text.
                    if value == default or (i == created_at and value == created) then
                        value = nil
                    else
                        local text = small[value]
                        if text == nil then
                            text = s_format('%d', value)
                            if value >= 0 and value < MEMO then
                                small[value] = text
                            end
                        end
                        value = text
                    end
                end
                if value ~= nil then
                    local length = #value
                    local first = not tail and n == 0 and m == 0
                    local memo = first and first_heads[i] or heads[i]
                    local head = memo[length]
                    if head == nil then
                        head = (first and '' or ' ') .. tags[i] .. s_format('%d', length) .. ':'
                        if length < MEMO then
                            memo[length] = head
                        end
                    end
                    if length < BIG then
                        parts[n + 1] = head
                        parts[n + 2] = value
                        n = n + 2
                    else
                        -- The small pieces so far with this field's head, then the value.
                        parts[n + 1] = head
                        segments[m + 1] = concat(parts, '', 1, n + 1)
                        segments[m + 2] = value
                        m = m + 2
                        for j = 2, n, 2 do
                            parts[j] = false
                        end
                        n = 0
                    end
                end
            end
        end
        segments[m + 1] = concat(parts, '', 1, n)
        local record = join(m + 1)
        -- The values go (a payload is not kept alive until the next call); the heads are small.
        for i = 2, n, 2 do
            parts[i] = false
        end
        for i = 1, m + 1 do
            segments[i] = false
        end
        return record
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

    -- The grammar checked step by step, each failure the module's CORRUPT text (packed.rs decode):
    -- what packed.decode falls back on when its quick reading does not go through.
    local function strict(key, raw, unchecked)
        local n = #raw
        if n == 0 then
            corrupt(key, 'the record is empty')
        end
        -- Tags, lengths, colons and spaces are ASCII, so when the whole record is UTF-8 so is
        -- every value, each a run of whole characters: checked once, not value by value.
        local text = unchecked == nil and is_utf8(raw)
        local fields, at = {}, 1
        while true do
            local tag = s_byte(raw, at)
            local name = field_of[tag]
            if name == nil then
                corrupt(key, "unknown field tag '" .. escape_ascii(tag) .. "' at byte " .. itoa(at - 1))
            end
            if fields[name] ~= nil then
                corrupt(key, "field '" .. name .. "' is stored twice")
            end
            -- 1 to 10 digits, no leading zero (but "0"), then ':'.
            local _, colon = s_find(raw, '^%d+:', at + 1)
            if colon == nil or colon - at > 11 or (colon - at > 2 and s_byte(raw, at + 1) == 48) then
                corrupt(key, "field '" .. name .. "' has no valid length")
            end
            local last = colon + to_number(s_sub(raw, at + 1, colon - 1))
            if last > n then
                corrupt(key, "field '" .. name .. "' runs past the end of the record")
            end
            local value = s_sub(raw, colon + 1, last)
            if not text and not (unchecked and unchecked[name]) and not is_utf8(value) then
                corrupt(key, "field '" .. name .. "' is not UTF-8 text")
            end
            fields[name] = value
            if last == n then
                return fields
            end
            if s_byte(raw, last + 1) ~= 32 or last + 1 == n then
                corrupt(key, "field '" .. name .. "' is not followed by one space and another field")
            end
            at = last + 2
        end
    end

    -- The value of a length's text if it is valid (1 to 10 digits, no leading zero but "0"),
    -- else nil; remembered for texts of up to 3 digits.
    local function length_value(digits)
        local length = length_of[digits]
        if length == nil then
            local size = #digits
            if size > 10 or (size > 1 and s_byte(digits, 1) == 48) or not s_find(digits, '^%d+$') then
                return nil
            end
            length = to_number(digits)
            if size <= 3 then
                length_of[digits] = length
            end
        end
        return length
    end

    -- Per field: a plain find of the ':' after its length, the length's bytes (or text, see
    -- length_value), the value cut out, then the separator's and the next tag's bytes; no
    -- pattern (a match with captures costs several times a plain find). Anything unexpected is
    -- read again by `strict`, which fails with the module's text (or, were this reading stricter
    -- than the grammar, returns the fields).
    local function quick(raw, unchecked)
        local n = #raw
        -- The whole record is checked for UTF-8 at once, or (with `unchecked`) value by value.
        local whole = unchecked == nil
        if n == 0 or (whole and not is_utf8(raw)) then
            return nil
        end
        local fields, at = {}, 1
        local tag = s_byte(raw, 1)
        while true do
            -- Past a trailing space there is no byte, no tag.
            local name = field_of[tag]
            local colon = s_find(raw, ':', at + 2, true)
            if name == nil or colon == nil or fields[name] ~= nil then
                break
            end
            -- The length: one or two digits (most lengths) read as bytes, longer ones as text.
            local length
            local digits = colon - at - 1
            if digits == 1 then
                local d = s_byte(raw, at + 1) - 48
                if d >= 0 and d <= 9 then
                    length = d
                end
            elseif digits == 2 then
                local d1, d2 = s_byte(raw, at + 1, at + 2)
                d1, d2 = d1 - 48, d2 - 48
                if d1 >= 1 and d1 <= 9 and d2 >= 0 and d2 <= 9 then
                    length = d1 * 10 + d2
                end
            else
                length = length_value(s_sub(raw, at + 1, colon - 1))
            end
            if length == nil then
                break
            end
            local last = colon + length
            if last > n then
                break
            end
            local value = s_sub(raw, colon + 1, last)
            if not whole and not unchecked[name] and not is_utf8(value) then
                break
            end
            fields[name] = value
            if last == n then
                return fields
            end
            -- The separator and the next field's tag, in one call.
            local separator
            separator, tag = s_byte(raw, last + 1, last + 2)
            if separator ~= 32 then
                break
            end
            at = last + 2
        end
        return nil
    end

    function packed.decode(key, raw, unchecked)
        if stored == nil then
            split()
        end
        return quick(raw, unchecked) or strict(key, raw, unchecked)
    end

    -- packed.read_linked(key): the fields of the record at `key` read for its links (load_job's
    -- `linked`), in pieces of CHUNK bytes (GETRANGE): a value of `payload`, `result` or `error`
    -- that reaches beyond the piece read is not read at all (nor checked for UTF-8, as
    -- `linked` reads never check them): its place is kept instead. Returns the fields (those
    -- values left out), the places of the values left out (field -> { offset, length }, the
    -- offset from 0) and the record's size; or, for a record of at most CHUNK bytes, one that
    -- is not a string or missing, or anything this reading does not expect (then the whole
    -- record is read again, for the module's CORRUPT text), what packed.read(key, DATA) gives.
    -- A record of the full format would be refused here; it is read whole too.
    local CHUNK = 4096
    local DATA = { payload = true, result = true, error = true }
    -- The data fields a `linked` read does not check for UTF-8 (load_job's `linked`).
    packed.DATA = DATA
    local rpcall -- redis.pcall, looked up once (at call time)

    -- The record's bytes from `from` (from 0), at most `size` of them, and whether the record
    -- ends within them; nil when GETRANGE refuses the key.
    local function piece(key, from, size)
        local bytes = rpcall('GETRANGE', key, s_format('%d', from), s_format('%d', from + size - 1))
        if type(bytes) ~= 'string' then
            return nil
        end
        return bytes, #bytes < size
    end

    -- The fields, spans and size as above, from the record's first piece `buf` (CHUNK bytes);
    -- nil where the reading is left to packed.read.
    local function pieces(key, buf)
        local ends = false
        -- `buf` holds the record from offset `base`; `at` is the place in `buf` of the next
        -- field's tag.
        local fields, spans, base, at = {}, {}, 0, 1
        while true do
            if #buf - at < 16 and not ends then
                -- The tag and length of the next field in the piece.
                buf, ends = piece(key, base + at - 1, CHUNK)
                if buf == nil then
                    return nil
                end
                base, at = base + at - 1, 1
            end
            local name = field_of[s_byte(buf, at)]
            if name == nil or fields[name] ~= nil or spans[name] ~= nil then
                return nil
            end
            local colon = s_find(buf, ':', at + 2, true)
            if colon == nil or colon - at > 11 then
                return nil
            end
            local length = length_value(s_sub(buf, at + 1, colon - 1))
            if length == nil then
                return nil
            end
            local last = colon + length
            if last <= #buf then
                local value = s_sub(buf, colon + 1, last)
                if not DATA[name] and not is_utf8(value) then
                    return nil
                end
                fields[name] = value
                if last < #buf then
                    -- One space, then the next field (which may begin in the next piece).
                    if s_byte(buf, last + 1) ~= 32 or (ends and last + 1 == #buf) then
                        return nil
                    end
                    at = last + 2
                elseif ends then
                    return fields, spans, base + #buf
                end
            elseif DATA[name] then
                spans[name] = { base + colon, length }
            elseif ends then
                return nil
            else
                -- A long field that is not data (a list of children, say): read whole.
                buf, ends = piece(key, base + at - 1, colon - at + 1 + length + CHUNK)
                if buf == nil then
                    return nil
                end
                base, at = base + at - 1, 1
                last = nil
            end
            if last ~= nil and last >= #buf then
                -- From the value's last byte (the colon for an empty one): nothing when the value
                -- runs past the end, that byte alone when the record ends with it, else one space
                -- and the next field.
                buf, ends = piece(key, base + last - 1, CHUNK)
                if buf == nil or buf == '' then
                    return nil
                end
                base = base + last - 1
                if #buf == 1 then
                    return fields, spans, base + 1
                end
                if s_byte(buf, 2) ~= 32 or #buf == 2 then
                    return nil
                end
                at = 3
            end
        end
    end

    function packed.read_linked(key)
        if stored == nil then
            split()
        end
        rpcall = rpcall or redis.pcall
        local first, ends = piece(key, 0, CHUNK)
        if first ~= nil and first ~= '' and ends then
            -- The whole record.
            return packed.decode(key, first, DATA)
        end
        local fields, spans, size
        if first ~= nil and first ~= '' then
            fields, spans, size = pieces(key, first)
        end
        if fields == nil then
            -- No such key, another type, or a record this reading does not expect.
            return packed.read(key, DATA)
        end
        return fields, spans, size
    end

    -- The value at `span` ({ offset, length }, as packed.read_linked gives it) of the record at
    -- `key`, read now; the record must not have been written since.
    function packed.span(key, span)
        if span[2] == 0 then
            return ''
        end
        local value = call('GETRANGE', key, s_format('%d', span[1]), s_format('%d', span[1] + span[2] - 1))
        if #value ~= span[2] then
            fail('INTERNAL', "record '" .. key .. "' changed while it was read")
        end
        return value
    end
end
