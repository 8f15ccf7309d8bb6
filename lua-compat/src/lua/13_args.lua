--------------------------------------------------------------------------------------------------
-- Argument rules (core/src/args.rs).
--------------------------------------------------------------------------------------------------

-- Whether `raw` is a name: 1 to 200 bytes of printable ASCII without spaces (0x21-0x7E); a
-- queue (`what` == 'queue') has no braces.
local function is_name(what, raw)
    local bad = #raw == 0 or #raw > MAX_NAME_LEN or find(raw, '[^!-~]')
    if what == 'queue' and find(raw, '[{}]') then
        bad = true
    end
    return not bad
end

-- A name (above), returned unchanged; ERR naming `what` otherwise.
local function name(what, raw)
    if not is_name(what, raw) then
        fail('ERR', format('%s must be 1 to %d printable ASCII characters without spaces%s, got \'%s\'',
            what, MAX_NAME_LEN, what == 'queue' and ' or braces' or '', show_arg(raw)))
    end
    return raw
end

-- A decimal integer (optional leading '-', digits only) within min..max. Bounds up to 2^53 are
-- exact as Lua numbers; for the one bound beyond (CURSOR, up to i64::MAX) pass `max_text`, the
-- bound as text: larger values are then accepted as approximate numbers, which is harmless for a
-- cursor (beyond any list either way).
local function integer(what, raw, min, max, max_text)
    local negative, digits = raw:match('^(%-?)(%d+)$')
    local value
    if digits then
        local significant = digits:gsub('^0+', '')
        if #significant <= 15 then
            value = tonumber(significant ~= '' and significant or '0')
            if negative == '-' then
                value = -value
            end
        elseif max_text and negative == '' and (#significant < #max_text
                or (#significant == #max_text and not byte_less(max_text, significant))) then
            value = tonumber(significant)
            if value > max then
                value = max
            end
        end
    end
    if value == nil or value < min or value > max then
        fail('ERR', format("%s must be an integer from %d to %s, got '%s'", what, min,
            max_text or format('%d', max), show_arg(raw)))
    end
    return value
end

-- The 128 bytes that are not ASCII, one string each, for plain (memchr) searches; filled on first
-- use (a library's top level cannot reach the `string` table).
local NOT_ASCII = {}

-- The well-formed UTF-8 sequences (as Rust's str::from_utf8 accepts them: no overlongs,
-- surrogates or code points beyond U+10FFFF): the range of lead bytes of each kind, and the
-- pattern of its sequences. A text is valid UTF-8 exactly when no byte above 127 is
-- left once every match of these is replaced by an ASCII byte: a match starts at a lead byte,
-- which no other sequence contains, so the matches of a valid text are its sequences, and what
-- an invalid one leaves holds a byte above 127.
local UTF8_SEQUENCES = {
    { 194, 223, '[\194-\223][\128-\191]' },
    { 224, 224, '\224[\160-\191][\128-\191]' },
    { 225, 236, '[\225-\236][\128-\191][\128-\191]' },
    { 237, 237, '\237[\128-\159][\128-\191]' },
    { 238, 239, '[\238\239][\128-\191][\128-\191]' },
    { 240, 240, '\240[\144-\191][\128-\191][\128-\191]' },
    { 241, 243, '[\241-\243][\128-\191][\128-\191][\128-\191]' },
    { 244, 244, '\244[\128-\143][\128-\191][\128-\191]' },
}

-- Whether `s` holds a byte above 127, by a plain find (memchr) of each: over a long ASCII text an
-- order of magnitude faster than a pattern scan.
local function has_non_ascii(s)
    if #NOT_ASCII == 0 then
        for c = 128, 255 do
            NOT_ASCII[#NOT_ASCII + 1] = string.char(c)
        end
    end
    for c = 1, 128 do
        if find(s, NOT_ASCII[c], 1, true) then
            return true
        end
    end
    return false
end

-- Whether `s` is valid UTF-8 (as Rust's str::from_utf8: no overlongs, surrogates or > U+10FFFF).
-- A long text is checked by plain finds and pattern replacements, all run in C (see
-- UTF8_SEQUENCES): reading a payload-max record costs about 0.3 ms when it is ASCII (instead of
-- 4 with the byte-by-byte scan below) and half as much as that scan when it is not.
local is_utf8
do
    -- The string functions themselves, not the load-time wrappers, looked up once (at call
    -- time: top-level code has no `string`): every field of every record read comes through here.
    local find, byte

    is_utf8 = function(s)
        if find == nil then
            find, byte = string.find, string.byte
        end
        local i, n = 1, #s
        if n >= 4096 then
            if not has_non_ascii(s) then
                return true
            end
            for _, kind in ipairs(UTF8_SEQUENCES) do
                for lead = kind[1], kind[2] do
                    if find(s, NOT_ASCII[lead - 127], 1, true) then
                        s = string.gsub(s, kind[3], 'x')
                        break
                    end
                end
            end
            return not has_non_ascii(s)
        end
        while true do
            i = find(s, '[\128-\255]', i)
            if not i then
                return true
            end
            local c = byte(s, i)
            local need, lo, hi
            if c >= 0xC2 and c <= 0xDF then
                need, lo, hi = 1, 0x80, 0xBF
            elseif c == 0xE0 then
                need, lo, hi = 2, 0xA0, 0xBF
            elseif (c >= 0xE1 and c <= 0xEC) or c == 0xEE or c == 0xEF then
                need, lo, hi = 2, 0x80, 0xBF
            elseif c == 0xED then
                need, lo, hi = 2, 0x80, 0x9F
            elseif c == 0xF0 then
                need, lo, hi = 3, 0x90, 0xBF
            elseif c >= 0xF1 and c <= 0xF3 then
                need, lo, hi = 3, 0x80, 0xBF
            elseif c == 0xF4 then
                need, lo, hi = 3, 0x80, 0x8F
            else
                return false
            end
            if i + need > n then
                return false
            end
            local c1 = byte(s, i + 1)
            if c1 < lo or c1 > hi then
                return false
            end
            for k = 2, need do
                local ck = byte(s, i + k)
                if ck < 0x80 or ck > 0xBF then
                    return false
                end
            end
            i = i + need + 1
        end
    end
end

-- A JSON document of at most zrq.json-depth-max nested arrays and objects, returned unchanged:
-- validity first (BADJSON), then the depth (LIMIT). (args.rs `json`)
local function json(what, raw)
    local detail, depth
    if not is_utf8(raw) then
        detail = 'not UTF-8'
    else
        detail, depth = json_detail(raw)
    end
    if detail then
        fail('BADJSON', what .. ' is not valid JSON: ' .. detail)
    end
    if depth > CONFIG.json_depth_max then
        limit(what .. ' nests ' .. format('%d', depth) .. ' levels deep', 'json-depth-max', CONFIG.json_depth_max)
    end
    return raw
end

-- A job's payload: at most zrq.payload-max-bytes, then JSON. (enqueue.rs `payload_arg`)
local function payload_arg(raw)
    within('payload', #raw, 'payload-max-bytes', CONFIG.payload_max_bytes)
    return json('payload', raw)
end

-- Walks the `NAME value` options after the positional arguments (args.rs `Options`): names match
-- case-insensitively and come back in their canonical spelling; each may be given once (except the
-- repeatable ones); flags come back with the value ''. Returns an iterator of (OPTION, value).
local options
do
    local function none() end

    options = function(args, first, known)
        if args[first] == nil then
            -- No option given (the usual call): no state to make.
            return none
        end
        local at, seen = first, {}
        return function()
            local word = args[at]
            if word == nil then
                return nil
            end
            local option
            local upper = word:upper()
            for _, k in ipairs(known) do
                if k == upper then
                    option = k
                    break
                end
            end
            if not option then
                fail('ERR', "unknown option '" .. show_arg(word) .. "'")
            end
            if seen[option] and not REPEATABLE[option] then
                fail('ERR', 'option ' .. option .. ' given more than once')
            end
            seen[option] = true
            at = at + 1
            if FLAG_OPTIONS[option] then
                return option, ''
            end
            local value = args[at]
            if value == nil then
                fail('ERR', 'option ' .. option .. ' needs a value')
            end
            at = at + 1
            return option, value
        end
    end
end

-- A word from a fixed list, matched case-insensitively (error.rs `not_one_of`).
local function one_of(what, raw, accepted)
    local lower = raw:lower()
    for _, word in ipairs(accepted) do
        if word == lower then
            return word
        end
    end
    fail('ERR', what .. ' must be one of ' .. table.concat(accepted, ', ') .. ", got '" .. show_arg(raw) .. "'")
end

-- The command's arguments as the module sees them: the queue (the one key) then ARGV. An FCALL
-- that does not pass the queue as its only key is refused (after the arity check, so a call with
-- no arguments at all gets the module's arity error).
local function arguments(keys, argv)
    local all, n = {}, #keys
    for i = 1, n do
        all[i] = keys[i]
    end
    for i = 1, #argv do
        all[n + i] = argv[i]
    end
    return all
end

local function require_one_key(function_name, keys)
    if #keys ~= 1 then
        fail('ERR', function_name .. ' takes the queue as its one key: FCALL ' .. function_name .. ' 1 <queue> ...')
    end
end

-- How every queue command starts: its arguments (above), at least `min` of them (exactly `min`
-- when `exact`) else the arity error, then the queue must be the one key (function zrq_x for
-- command zrq.x).
local function command_args(keys, argv, command, min, exact)
    local args = arguments(keys, argv)
    if #args < min or (exact and #args ~= min) then
        arity_error(command)
    end
    if #keys ~= 1 then
        -- The function's name is made for the error only.
        require_one_key((command:gsub('%.', '_')), keys)
    end
    return args
end

-- `<queue> <name> ...`: command_args, then the queue's name and the second argument as a `what`
-- name, checked in that order. Exactly these two arguments, unless `min` (at least 2) allows more.
-- Returns queue, name, args.
local function queue_and_name(keys, argv, command, what, min)
    local args = command_args(keys, argv, command, min or 2, min == nil)
    local queue = name('queue', args[1])
    return queue, name(what, args[2]), args
end
