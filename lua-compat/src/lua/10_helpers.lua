--------------------------------------------------------------------------------------------------
-- Shared helpers: written once, used by every command.
--
-- Each section mirrors one file of zrq-core; keep them in step (tests/tests/spec_drift.rs checks
-- the tables marked "checked").
--------------------------------------------------------------------------------------------------

-- While a library loads, Redis 7.0 gives it no globals but `redis`: the standard library is
-- reached at call time through these wrappers, and top-level code only defines locals.
local function byte(...) return string.byte(...) end
local function sub(...) return string.sub(...) end
local function find(...) return string.find(...) end
local function format(...) return string.format(...) end
local function floor(x) return math.floor(x) end

-- Byte order, as Rust compares strings (Lua's `<` follows the server's collation locale).
local function byte_less(a, b)
    local n = math.min(#a, #b)
    for i = 1, n do
        local x, y = string.byte(a, i), string.byte(b, i)
        if x ~= y then
            return x < y
        end
    end
    return #a < #b
end

--------------------------------------------------------------------------------------------------
-- Errors (core/src/error.rs). Every error reply starts with one of these codes.
-- A command raises `fail(code, message)`; `run` turns it into the error reply.
--------------------------------------------------------------------------------------------------

-- checked: zrq_core::ErrorCode::ALL
local ERROR_CODES = { 'ERR', 'WRONGTYPE', 'BADJSON', 'NOJOB', 'CORRUPT', 'NOPERM', 'LIMIT', 'INTERNAL' }

local KNOWN_CODE = { ERR = true, WRONGTYPE = true, BADJSON = true, NOJOB = true, CORRUPT = true, NOPERM = true,
    LIMIT = true,
    INTERNAL = true }

-- Raises the error reply `<code> <message>`; caught by `run`.
local function fail(code, message)
    if not KNOWN_CODE[code] then
        message = 'zrq bug, command aborted: unknown error code ' .. tostring(code)
        code = 'INTERNAL'
    end
    error({ zrq_error = code .. ' ' .. message }, 0)
end

-- A user-supplied argument inside an error message: printable ASCII as is (but ' and \ escaped),
-- anything else as \xNN, at most 64 bytes then "...".  (error.rs `show_arg`)
local function show_arg(raw)
    local limit = 64
    local out = sub(raw, 1, limit):gsub('.', function(c)
        local b = byte(c)
        if b >= 0x20 and b <= 0x7e and b ~= 0x27 and b ~= 0x5c then
            return c
        end
        return format('\\x%02x', b)
    end)
    if #raw > limit then
        out = out .. '...'
    end
    return out
end

-- Something beyond a limit: `subject` says what and how much, then the config (its name after
-- `zrq.`) and its value. (error.rs `limit`)
local function limit(subject, setting, max)
    fail('LIMIT', subject .. ': zrq.' .. setting .. ' is ' .. format('%d', max))
end

-- Refuses a value of `bytes` bytes beyond `max` (config `setting`), before anything else about
-- the value is checked. (args.rs `within`)
local function within(subject, bytes, setting, max)
    if bytes > max then
        limit(subject .. ' is ' .. format('%d', bytes) .. ' bytes', setting, max)
    end
end

local function arity_error(command)
    fail('ERR', "wrong number of arguments for '" .. command .. "' command")
end

--------------------------------------------------------------------------------------------------
-- Argument rules (core/src/args.rs).
--------------------------------------------------------------------------------------------------

local MAX_NAME_LEN = 200
local MAX_DURATION_MS = 315360000000
local MAX_RETRIES = 1000
local MAX_COUNT = 1000

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

-- Whether `s` is valid UTF-8 (as Rust's str::from_utf8: no overlongs, surrogates or > U+10FFFF).
local function is_utf8(s)
    local i, n = 1, #s
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

    json_detail = function(s)
        -- The string functions themselves, not the load-time wrappers: this loop is the hot path
        -- of every payload check (at call time the standard library is there).
        local find, byte = string.find, string.byte
        local n = #s
        local i = 0 -- bytes consumed

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

        local deepest = 0
        local ok, detail = pcall(function()
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
        end)
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

-- Options that may be given several times, and options without a value (args.rs).
local REPEATABLE = { AFTER = true, JOB = true }
local FLAG_OPTIONS = { WITHRESULTS = true }

-- Walks the `NAME value` options after the positional arguments (args.rs `Options`): names match
-- case-insensitively and come back in their canonical spelling; each may be given once (except the
-- repeatable ones); flags come back with the value ''. Returns an iterator of (OPTION, value).
local function options(args, first, known)
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
    local all = {}
    for _, k in ipairs(keys) do
        all[#all + 1] = k
    end
    for _, v in ipairs(argv) do
        all[#all + 1] = v
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
    require_one_key((command:gsub('%.', '_')), keys)
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

--------------------------------------------------------------------------------------------------
-- Key schema (core/src/keys.rs).
--------------------------------------------------------------------------------------------------

local GROUP = 'zrq'
local ENTRY_FIELD = 'job'
local MAX_PRIORITY = 9

-- checked: zrq_core::keys::KEYS (suffixes, in order)
local KEY_KINDS = { 'stream', 'stream:', 'job:', 'active', 'waiting', 'batch:', 'scheduled', 'retrying',
    'completed', 'cancelled', 'dead', 'unique', 'paused', 'schedules', 'ticks', 'stats' }
-- Keys only the Lua library writes (the module blocks clients natively instead).
local LUA_ONLY_KEY_KINDS = { 'wake' }

-- How many wake-up tokens a queue keeps at most (see docs/LUA.md, "Blocking FETCH").
local WAKE_CAP = 128

-- The module's configs cannot be read from a script: the library uses their defaults (CONFIG,
-- generated from core/src/config.rs).
local KEEP_MS = CONFIG.keep_ms
local DEAD_MAX = CONFIG.dead_max

local function queue_keys(queue)
    local prefix = 'zrq:{' .. queue .. '}:'
    local k = { queue = queue }
    for _, name in ipairs({ 'stream', 'active', 'waiting', 'scheduled', 'retrying', 'completed', 'cancelled',
        'dead', 'unique', 'paused', 'schedules', 'ticks', 'stats', 'events', 'wake' }) do
        k[name] = prefix .. name
    end
    k.job = function(id) return prefix .. 'job:' .. id end
    k.batch = function(id) return prefix .. 'batch:' .. id end
    k.stream_at = function(priority)
        if priority == 0 then
            return k.stream
        end
        return prefix .. 'stream:' .. priority
    end
    return k
end

--------------------------------------------------------------------------------------------------
-- Redis calls (module/src/store.rs). Reads and writes that fail unexpectedly become INTERNAL
-- errors with the module's text: "<COMMAND> failed: <redis error>".
--------------------------------------------------------------------------------------------------

local function call(command, ...)
    local reply = redis.pcall(command, ...)
    if type(reply) == 'table' and reply.err then
        -- A call the caller's ACL denies (writing functions check theirs up front, see check_acl;
        -- this is for the keyless zrq_queues) is NOPERM, not a zrq bug.
        if find(reply.err, "The user executing the script can't", 1, true) then
            fail('NOPERM', command .. ' failed: ' .. reply.err)
        end
        fail('INTERNAL', command .. ' failed: ' .. reply.err)
    end
    return reply
end

local KNOWN_TYPES = { string = true, list = true, hash = true, set = true, zset = true, stream = true, none = true }

-- The type of a key as TYPE prints it; a module type is 'module value' (store.rs KeyType).
local function key_type(key)
    local t = call('TYPE', key)
    t = type(t) == 'table' and t.ok or t
    if not KNOWN_TYPES[t] then
        return 'module value'
    end
    return t
end

-- Fails with WRONGTYPE unless each key is missing or of its type. (commands/mod.rs check_types)
-- `checks` = { {key, 'stream'}, ... }
local function check_types(checks)
    for _, check in ipairs(checks) do
        local found = key_type(check[1])
        if found ~= 'none' and found ~= check[2] then
            fail('WRONGTYPE', "key '" .. check[1] .. "' holds a " .. found .. ', zrq expects a ' .. check[2])
        end
    end
end

-- The server clock once per command: unix ms, and the microseconds for ids.
local function clock()
    local t = redis.call('TIME')
    local sec, usec = tonumber(t[1]), tonumber(t[2])
    return sec * 1000 + floor(usec / 1000), sec, usec
end

local function itoa(n)
    return format('%d', n)
end

--------------------------------------------------------------------------------------------------
-- Job record (core/src/job.rs, core/src/state.rs).
--------------------------------------------------------------------------------------------------

-- checked: zrq_core::job::FIELDS (name and kind, in order)
local FIELDS = {
    { 'id', 'text' },
    { 'queue', 'text' },
    { 'task', 'text' },
    { 'payload', 'text' },
    { 'state', 'text' },
    { 'attempt', 'integer' },
    { 'max_attempts', 'integer' },
    { 'timeout', 'integer' },
    { 'priority', 'integer' },
    { 'backoff', 'integer' },
    { 'keep', 'integer' },
    { 'unique', 'text' },
    { 'parents', 'text' },
    { 'children', 'text' },
    { 'waiting_on', 'integer' },
    { 'parents_done', 'text' },
    { 'with_results', 'integer' },
    { 'on_parent_fail', 'text' },
    { 'batch', 'text' },
    { 'schedule', 'text' },
    { 'created_at', 'integer' },
    { 'run_at', 'integer' },
    { 'started_at', 'integer' },
    { 'finished_at', 'integer' },
    { 'consumer', 'text' },
    { 'lease', 'text' },
    { 'progress', 'integer' },
    { 'cancel_requested', 'integer' },
    { 'entry', 'text' },
    { 'result', 'text' },
    { 'error', 'text' },
}

-- checked: zrq_core::state::State::ALL
local STATES = { 'waiting', 'scheduled', 'pending', 'active', 'retrying', 'completed', 'dead', 'cancelled' }
local IS_STATE = { waiting = true, scheduled = true, pending = true, active = true, retrying = true,
    completed = true, dead = true, cancelled = true }
local IS_FINAL = { completed = true, dead = true, cancelled = true }

-- Rust's i64 parse: optional sign, digits, within i64. Returns the number or nil.
local function parse_i64(text)
    local sign, digits = text:match('^([+-]?)(%d+)$')
    if not digits then
        return nil
    end
    local significant = digits:gsub('^0+', '')
    if #significant > 19 then
        return nil
    end
    if #significant == 19 then
        local limit = sign == '-' and '9223372036854775808' or '9223372036854775807'
        if byte_less(limit, significant) then
            return nil
        end
    end
    local value = tonumber(significant ~= '' and significant or '0')
    return sign == '-' and -value or value
end

-- A hash as a table from HGETALL's flat reply, keeping only pairs whose field and value are
-- UTF-8 (as the module's store reads hashes).
local function utf8_hash(flat)
    local out = {}
    for n = 1, #flat, 2 do
        if out[flat[n]] == nil and is_utf8(flat[n]) and is_utf8(flat[n + 1]) then
            out[flat[n]] = flat[n + 1]
        end
    end
    return out
end

-- Sets `map[prefix .. field]` to the integer value of each of `fields` in `hash` (0 when absent
-- or not an integer), as INFO reports counters.
local function counters(map, hash, fields, prefix)
    for _, field in ipairs(fields) do
        map[prefix .. field] = (hash[field] and parse_i64(hash[field])) or 0
    end
end

-- Reads a job record from HGETALL's flat reply (job.rs `Job::from_fields`); fields or values that
-- are not UTF-8 are skipped, as the module's store does. Returns nil when nothing is left.
local function decode_job(key, flat)
    local raw = utf8_hash(flat)
    if next(raw) == nil then
        return nil
    end
    local function corrupt(detail)
        fail('CORRUPT', "'" .. key .. "' is not a zrq record: " .. detail)
    end
    local function required(field)
        if raw[field] == nil then
            corrupt("field '" .. field .. "' is missing")
        end
        return raw[field]
    end
    local function int(field, needed)
        local text = raw[field]
        if text == nil then
            if needed then
                corrupt("field '" .. field .. "' is missing")
            end
            return nil
        end
        local value = parse_i64(text)
        if value == nil then
            corrupt("field '" .. field .. "' is not an integer")
        end
        return value
    end
    -- A stored name that the commands would refuse is not used (job.rs name_field).
    local function name_field(field)
        local value = raw[field]
        if value ~= nil and not is_name(field, value) then
            corrupt("field '" .. field .. "' is not a valid name")
        end
        return value
    end
    local job = {}
    local state = required('state')
    if not IS_STATE[state] then
        corrupt("unknown state '" .. state .. "'")
    end
    -- The priority names the job's stream: one outside 0-9 would name a key zrq never uses.
    job.priority = int('priority', false) or 0
    if job.priority < 0 or job.priority > MAX_PRIORITY then
        corrupt("field 'priority' is out of range")
    end
    job.id = required('id')
    job.queue = required('queue')
    job.task = required('task')
    job.payload = required('payload')
    job.state = state
    job.attempt = int('attempt', true)
    job.max_attempts = int('max_attempts', true)
    job.timeout = int('timeout', true)
    job.backoff = int('backoff', false)
    job.keep = int('keep', false)
    job.unique = name_field('unique')
    job.parents = raw.parents
    job.children = raw.children
    job.waiting_on = int('waiting_on', false)
    job.parents_done = raw.parents_done
    job.with_results = int('with_results', false)
    job.on_parent_fail = raw.on_parent_fail
    job.batch = name_field('batch')
    job.schedule = raw.schedule
    job.created_at = int('created_at', true)
    job.run_at = int('run_at', false)
    job.started_at = int('started_at', false)
    job.finished_at = int('finished_at', false)
    job.consumer = raw.consumer
    job.lease = raw.lease
    job.progress = int('progress', false)
    job.cancel_requested = int('cancel_requested', false)
    job.entry = raw.entry
    job.result = raw.result
    job.error = raw.error
    return job
end

-- Loads job `id`, or nil if there is no record; WRONGTYPE/CORRUPT as the module, including a
-- record whose `queue` or `id` differs from where it is stored. (commands/mod.rs load_job)
local function load_job(k, id)
    local key = k.job(id)
    -- One command for the type and the fields (mod.rs Store::record); the type is asked only
    -- when HGETALL refuses the key, for the WRONGTYPE text.
    local fields = redis.pcall('HGETALL', key)
    if type(fields) == 'table' and fields.err then
        check_types({ { key, 'hash' } })
        fields = call('HGETALL', key)
    end
    local job = decode_job(key, fields)
    if job and job.queue ~= k.queue then
        fail('CORRUPT', "'" .. key .. "' is not a zrq record: field 'queue' does not name its queue")
    end
    if job and job.id ~= id then
        fail('CORRUPT', "'" .. key .. "' is not a zrq record: field 'id' does not match its key")
    end
    return job
end

-- Like load_job, but any error counts as "no job" (where the module uses `.ok().flatten()`).
local function try_load_job(k, id)
    local ok, job = pcall(load_job, k, id)
    if ok then
        return job
    end
    if type(job) == 'table' and job.zrq_error then
        return nil
    end
    error(job, 0)
end

-- Calls visit(field, kind, value) for each field the job has, in FIELDS order.
local function each_present_field(job, visit)
    for _, f in ipairs(FIELDS) do
        local value = job[f[1]]
        if value ~= nil then
            visit(f[1], f[2], value)
        end
    end
end

-- The job's present fields as HSET arguments, in FIELDS order (job.rs `to_fields`).
local function job_hset_args(job)
    local out = {}
    each_present_field(job, function(field, kind, value)
        out[#out + 1] = field
        out[#out + 1] = kind == 'integer' and itoa(value) or value
    end)
    return out
end

-- The job as a reply map: present fields only, integers as integers (job.rs `to_reply`).
local function job_reply(job)
    local map = {}
    each_present_field(job, function(field, _, value)
        map[field] = value
    end)
    return { map = map }
end

local function jobs_reply(jobs)
    local out = {}
    for n, job in ipairs(jobs) do
        out[n] = job_reply(job)
    end
    return out
end

-- Fails with WRONGTYPE unless every fixed key of the queue has its type (mod.rs
-- check_queue_types), then checks the Lua-only wake-up list.
local function check_queue_types(k)
    for priority = 0, MAX_PRIORITY do
        check_types({ { k.stream_at(priority), 'stream' } })
    end
    check_types({ { k.active, 'zset' }, { k.waiting, 'zset' }, { k.scheduled, 'zset' }, { k.retrying, 'zset' },
        { k.completed, 'zset' }, { k.cancelled, 'zset' }, { k.dead, 'zset' }, { k.ticks, 'zset' } })
    check_types({ { k.unique, 'hash' }, { k.schedules, 'hash' }, { k.stats, 'hash' }, { k.paused, 'string' } })
    check_types({ { k.wake, 'list' } })
end

-- Checks the types of the fixed keys finish() writes when `job` ends in `state`; every fixed key
-- when the job has children or a batch (a cascade may reach any of them). (mod.rs
-- check_finish_types)
local function check_finish_types(k, job, state)
    if job.children ~= nil or job.batch ~= nil then
        check_queue_types(k)
        return
    end
    local checks = {}
    if job.entry ~= nil then
        checks[#checks + 1] = { k.stream_at(job.priority), 'stream' }
    end
    for _, key in ipairs({ k.active, k.waiting, k.scheduled, k.retrying }) do
        checks[#checks + 1] = { key, 'zset' }
    end
    if state == 'dead' then
        checks[#checks + 1] = { k.dead, 'zset' }
    else
        checks[#checks + 1] = { k.completed, 'zset' }
        checks[#checks + 1] = { k.cancelled, 'zset' }
    end
    if job.unique ~= nil then
        checks[#checks + 1] = { k.unique, 'hash' }
    end
    checks[#checks + 1] = { k.stats, 'hash' }
    check_types(checks)
end

-- The queue's keys, every fixed key's type checked first (as most commands start).
local function checked_queue_keys(queue)
    local k = queue_keys(queue)
    check_queue_types(k)
    return k
end

-- The value of a LEASE option: a lease token as FETCH or RECLAIM handed it out (mod.rs
-- lease_token).
local function lease_token(raw)
    return name('LEASE', raw)
end

-- The queue's keys (types checked) and job `id` if it is active and, when `lease` is given, still
-- held under that token; else nil for the job: what ACK, FAIL, TOUCH and RELEASE act on. Loaded
-- with `loader` (load_job_to_finish for the commands that may finish it), else load_job.
-- (mod.rs held)
local function held_job(queue, id, lease, loader)
    local k = checked_queue_keys(queue)
    local job = (loader or load_job)(k, id)
    if not job or job.state ~= 'active' or (lease ~= nil and job.lease ~= lease) then
        return k, nil
    end
    return k, job
end

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

--------------------------------------------------------------------------------------------------
-- Moving jobs between the queue's structures (core/src/commands/mod.rs): the only places where
-- a job changes place, as in the module.
--------------------------------------------------------------------------------------------------

-- Announces a state change on the queue's channel: `<state> <id>`. Events are best-effort, as
-- Pub/Sub is: a caller whose ACL does not allow the channel publishes nothing (checked once per
-- call), and the command goes on, so a denied PUBLISH can never fail a command after its writes.
local function announce(k, id, state)
    if k.may_publish == nil then
        k.may_publish = redis.acl_check_cmd('PUBLISH', k.events, 'x')
    end
    if k.may_publish then
        call('PUBLISH', k.events, state .. ' ' .. id)
    end
end

-- Appends job `id` to the stream of its priority (creating streams and groups as needed); returns
-- the entry id. Lua only: pushes a wake-up token for clients blocked on zrq:{q}:wake.
local function push_entry(k, id, priority)
    for _, stream in ipairs({ k.stream, k.stream_at(priority) }) do
        if key_type(stream) == 'none' then
            call('XGROUP', 'CREATE', stream, GROUP, '0', 'MKSTREAM')
        end
    end
    local entry = call('XADD', k.stream_at(priority), '*', ENTRY_FIELD, id)
    call('RPUSH', k.wake, '1')
    call('LTRIM', k.wake, itoa(-WAKE_CAP), '-1')
    return entry
end

-- Moves a waiting, scheduled, retrying or dead job (already out of its index) into its stream.
local function make_pending(k, job)
    job.state = 'pending'
    local entry = push_entry(k, job.id, job.priority)
    call('HSET', k.job(job.id), 'state', 'pending', 'entry', entry)
    call('HDEL', k.job(job.id), 'run_at')
    job.entry = entry
    job.run_at = nil
    announce(k, job.id, job.state)
end

-- What the module's timer does for one queue (promote.rs): due scheduled and retrying jobs (at
-- most 1000 of each) enter their streams, due recurring schedules enqueue their job, and finished
-- jobs past their retention leave their indexes. The library runs it at
-- the start of every FETCH and RECLAIM (docs/LUA.md).
local PROMOTE_BATCH = 1000
local fire_due_ticks -- defined in 27_schedules.lua
local function promote_due(k, now)
    for _, index in ipairs({ k.scheduled, k.retrying }) do
        for _, id in ipairs(call('ZRANGE', index, '-inf', itoa(now), 'BYSCORE', 'LIMIT', '0', itoa(PROMOTE_BATCH))) do
            call('ZREM', index, id)
            local job = is_utf8(id) and try_load_job(k, id)
            if job and (job.state == 'scheduled' or job.state == 'retrying') then
                make_pending(k, job)
            end
        end
    end
    fire_due_ticks(k, now)
    for _, finished in ipairs({ k.completed, k.cancelled }) do
        if #call('ZRANGE', finished, '-inf', itoa(now), 'BYSCORE', 'LIMIT', '0', '1') > 0 then
            call('ZREMRANGEBYSCORE', finished, '-inf', itoa(now))
        end
    end
end

-- Starts a new attempt of `job` for `consumer`: active, attempt + 1, fresh lease and its token
-- `<stream entry>:<attempt>` (mod.rs new_lease: never repeats for a job).
local function start_attempt(k, job, consumer, now)
    job.state = 'active'
    job.attempt = job.attempt + 1
    job.consumer = consumer
    job.started_at = now
    job.lease = (job.entry or '0-0') .. ':' .. itoa(job.attempt)
    call('HSET', k.job(job.id), 'state', 'active', 'attempt', itoa(job.attempt),
        'consumer', consumer, 'lease', job.lease, 'started_at', itoa(now))
    call('ZADD', k.active, itoa(now + job.timeout), job.id)
    announce(k, job.id, job.state)
end

-- Takes the job out of every structure that holds unfinished jobs.
local function unlink(k, job)
    if job.entry ~= nil then
        local entry = job.entry
        job.entry = nil
        call('XACK', k.stream_at(job.priority), GROUP, entry)
        call('XDEL', k.stream_at(job.priority), entry)
        call('HDEL', k.job(job.id), 'entry')
    end
    call('ZREM', k.active, job.id)
    call('ZREM', k.waiting, job.id)
    call('ZREM', k.scheduled, job.id)
    call('ZREM', k.retrying, job.id)
end

-- Ends `job` in final state `state` (completed, dead or cancelled) with extra `fields`
-- ({field, value, ...}): unlinked, filed in the state's index, retention TTL, UNIQUE key freed,
-- counted, announced. (mod.rs finish_one)
local function finish_one(k, job, state, fields, now)
    unlink(k, job)
    local job_key = k.job(job.id)
    call('HSET', job_key, 'state', state, 'finished_at', itoa(now), unpack(fields))
    for n = 1, #fields, 2 do
        job[fields[n]] = fields[n + 1]
    end
    job.state = state
    job.finished_at = now
    if state == 'dead' then
        call('ZADD', k.dead, itoa(now), job.id)
        local excess = call('ZCARD', k.dead) - DEAD_MAX
        if excess > 0 then
            for _, victim in ipairs(call('ZRANGE', k.dead, '0', itoa(excess - 1))) do
                call('ZREM', k.dead, victim)
                call('DEL', k.job(victim))
            end
            call('HINCRBY', k.stats, 'dropped', itoa(excess))
        end
    else
        local keep = job.keep or KEEP_MS
        if keep < 1 then
            keep = 1
        end
        local index = state == 'completed' and k.completed or k.cancelled
        call('ZADD', index, itoa(now + keep), job.id)
        call('PEXPIRE', job_key, itoa(keep))
        for _, finished in ipairs({ k.completed, k.cancelled }) do
            if #call('ZRANGE', finished, '-inf', itoa(now), 'BYSCORE', 'LIMIT', '0', '1') > 0 then
                call('ZREMRANGEBYSCORE', finished, '-inf', itoa(now))
            end
        end
    end
    if job.unique ~= nil and call('HGET', k.unique, job.unique) == job.id then
        call('HDEL', k.unique, job.unique)
    end
    call('HINCRBY', k.stats, state, '1')
    announce(k, job.id, state)
end

local enqueue_job -- defined in 20_enqueue.lua; batch callbacks enqueue a job

-- Why a child waiting on `parent` (id, state) is cancelled, or noted when it runs anyway.
local function parent_ended(parent)
    return 'parent ' .. parent.id .. ' ended ' .. parent.state
end

-- Whether `list` (an array) holds `value`.
local function contains(list, value)
    for _, item in ipairs(list) do
        if item == value then
            return true
        end
    end
    return false
end

-- Whether the waiting `child` still waits for `parent_id`: one of its parents (a `children` entry
-- can outlive its child, whose id may be taken again by a job with other parents), not counted
-- yet (a parent requeued after it died or was cancelled finishes a second time). (flow.rs awaits)
local function awaits(child, parent_id)
    local entries = object_entries(child.parents)
    if entries ~= nil then
        local listed = false
        for _, entry in ipairs(entries) do
            if entry[1] == parent_id then
                listed = true
                break
            end
        end
        if not listed then
            return false
        end
    end
    return not contains(id_list(child.parents_done), parent_id)
end

-- Records that `parent` (id, state, result) of the waiting `child` is done, with its result and,
-- unless it completed, a note on the child; releases the child when it was the last. The caller
-- checked that the child awaits this parent. (flow.rs parent_done)
local function parent_done(k, child, parent)
    local result, note = parent.result, nil
    if parent.state ~= 'completed' then
        note = 'released although ' .. parent_ended(parent)
    end
    local left = (child.waiting_on or 1) - 1
    if left < 0 then
        left = 0
    end
    child.waiting_on = left
    local done = id_list(child.parents_done)
    done[#done + 1] = parent.id
    child.parents_done = json_id_list(done)
    local fields = { 'waiting_on', itoa(left), 'parents_done', child.parents_done }
    if child.with_results == 1 then
        local entries = object_entries(child.parents) or {}
        local value = 'null'
        if result ~= nil and json_detail(result) == nil and is_utf8(result) then
            value = compact_json(result)
        end
        entries[#entries + 1] = { parent.id, value }
        child.parents = json_object(entries)
        fields[#fields + 1] = 'parents'
        fields[#fields + 1] = child.parents
    end
    if note ~= nil then
        fields[#fields + 1] = 'error'
        fields[#fields + 1] = note
    end
    call('HSET', k.job(child.id), unpack(fields))
    if left == 0 then
        call('ZREM', k.waiting, child.id)
        make_pending(k, child)
    end
end

-- Loads batch `id`, or nil if there is none; WRONGTYPE, or CORRUPT for a record zrq did not
-- write: its `queue` must be the queue it is stored in, its counts integers, its callback a valid
-- task and JSON payload. (flow.rs load_batch)
local function load_batch(k, id)
    local key = k.batch(id)
    check_types({ { key, 'hash' } })
    local flat = call('HGETALL', key)
    if #flat == 0 then
        return nil
    end
    local record = utf8_hash(flat)
    local function corrupt(detail)
        fail('CORRUPT', "'" .. key .. "' is not a zrq record: " .. detail)
    end
    if record.queue ~= k.queue then
        corrupt("field 'queue' does not name its queue")
    end
    if record.callback_task ~= nil and not is_name('callback_task', record.callback_task) then
        corrupt("field 'callback_task' is not a valid name")
    end
    if record.callback_payload ~= nil and json_detail(record.callback_payload) ~= nil then
        corrupt("field 'callback_payload' is not JSON")
    end
    local batch = { callback_id = record.callback_id }
    for _, field in ipairs({ 'total', 'done', 'succeeded', 'failed' }) do
        local value = 0
        if record[field] ~= nil then
            value = parse_i64(record[field])
            if value == nil then
                corrupt("field '" .. field .. "' is not an integer")
            end
        end
        batch[field] = value
    end
    if record.callback_task ~= nil and record.callback_payload ~= nil then
        batch.callback = { task = record.callback_task, payload = record.callback_payload }
    end
    return batch
end

-- Like load_job, for a command that may finish the job (ACK, FAIL, CANCEL, DELETE): its batch
-- record is checked too, so a corrupt batch is refused before the first write.
-- (mod.rs load_job_to_finish)
local function load_job_to_finish(k, id)
    local job = load_job(k, id)
    if job and job.batch ~= nil then
        load_batch(k, job.batch)
    end
    return job
end

-- Counts a finished member of `batch`; the last one enqueues the batch's callback, once, into the
-- command's queue. A batch record that cannot be read is left alone. (flow.rs count_in_batch)
local function count_in_batch(k, batch, succeeded, now)
    local ok, record = pcall(load_batch, k, batch)
    if not ok then
        if type(record) == 'table' and record.zrq_error then
            return
        end
        error(record, 0)
    end
    if record == nil then
        return
    end
    local key = k.batch(batch)
    local done = record.done + 1
    local succeeded_count, failed = record.succeeded, record.failed
    if succeeded then
        succeeded_count = succeeded_count + 1
    else
        failed = failed + 1
    end
    call('HSET', key, 'done', itoa(done), 'succeeded', itoa(succeeded_count), 'failed', itoa(failed))
    if done < record.total or record.callback_id ~= nil then
        return
    end
    if record.callback ~= nil then
        local body = format('{"batch":%s,"succeeded":%d,"failed":%d,"payload":%s}',
            json_string(batch), succeeded_count, failed, record.callback.payload)
        local id = enqueue_job(k, { task = record.callback.task, payload = body }, now)
        call('HSET', key, 'callback_id', id)
    end
    call('PEXPIRE', key, itoa(KEEP_MS))
end

-- Settles everything that depended on `job`, which has just finished with `result`: waiting
-- children (released, or cancelled in cascade) and its batch. (flow.rs settle)
local function settle(k, job, result, now)
    local work = { { id = job.id, state = job.state, result = result or job.result,
        children = id_list(job.children), batch = job.batch } }
    while #work > 0 do
        local done = table.remove(work)
        if done.batch ~= nil then
            count_in_batch(k, done.batch, done.state == 'completed', now)
        end
        for _, child_id in ipairs(done.children) do
            local child = try_load_job(k, child_id)
            if child and child.state == 'waiting' and awaits(child, done.id) then
                local failed = done.state ~= 'completed'
                if failed and child.on_parent_fail ~= 'run' then
                    finish_one(k, child, 'cancelled', { 'error', parent_ended(done) }, now)
                    work[#work + 1] = { id = child.id, state = child.state, children = id_list(child.children),
                        batch = child.batch }
                else
                    parent_done(k, child, done)
                end
            end
        end
    end
end

-- Ends `job` in `state` and settles what depended on it. (mod.rs finish)
local function finish(k, job, state, fields, now)
    finish_one(k, job, state, fields, now)
    local result
    for n = 1, #fields, 2 do
        if fields[n] == 'result' then
            result = fields[n + 1]
        end
    end
    settle(k, job, result, now)
end

-- A failed attempt (FAIL, or a lease expired in RECLAIM), counted in the stats: the job ends
-- cancelled if that was requested, else dead if it has no attempts left, either way with
-- `error_text`, and this returns true; false means the caller retries it.
local function failed_attempt(k, job, error_text, now)
    call('HINCRBY', k.stats, 'failed', '1')
    if job.cancel_requested ~= nil then
        finish(k, job, 'cancelled', { 'error', error_text }, now)
    elseif job.attempt >= job.max_attempts then
        finish(k, job, 'dead', { 'error', error_text }, now)
    else
        return false
    end
    return true
end

--------------------------------------------------------------------------------------------------
-- Job ids: UUIDv7 (RFC 9562), unique even for many ids in one millisecond.
--
-- 48 bits unix ms | version 7 | 12 bits sub-millisecond fraction (from TIME's microseconds) |
-- variant 10 | 30 bits counter | 32 bits hash. The counter lives as long as the library is loaded,
-- starts at a value derived from the clock, and advances on every id, so two ids of one server
-- never collide even within one microsecond; ids sort by creation time. No randomness is needed
-- (Redis' math.random is deterministic in scripts): the generated id reaches replicas and the AOF
-- as part of the HSET/XADD effects, never recomputed.
--------------------------------------------------------------------------------------------------

local id_counter = nil

local function new_id(queue, sec, usec)
    local ms = sec * 1000 + floor(usec / 1000)
    local seed = sec .. ':' .. usec .. ':' .. queue
    if id_counter == nil then
        id_counter = tonumber(sub(redis.sha1hex(seed), 1, 7), 16)
    end
    id_counter = (id_counter + 1) % 1073741824 -- 2^30
    local fraction = floor((usec % 1000) * 4096 / 1000)
    local hash = tonumber(sub(redis.sha1hex(seed .. ':' .. id_counter), 1, 8), 16)
    return format('%08x-%04x-7%03x-%04x-%04x%08x',
        floor(ms / 65536), ms % 65536, fraction,
        0x8000 + floor(id_counter / 65536), id_counter % 65536, hash)
end

--------------------------------------------------------------------------------------------------
-- Registration. `run` turns a raised zrq error into its reply, and any other Lua error into the
-- module's INTERNAL text, so a bug never leaves a half-written reply.
--------------------------------------------------------------------------------------------------

-- Every Redis command the library calls (but PUBLISH, see `announce`), with the arguments of one
-- call on queue keys `k`; `true` marks those that write. Before anything else a function checks
-- them all with redis.acl_check_cmd (a read-only function the reads only), so an ACL that denies
-- one refuses the call up front rather than half-way through: a script cannot undo its writes.
-- checked: every call('<COMMAND>' of the library (tests/tests/spec_drift.rs)
local function acl_probes(k)
    return {
        { false, 'TIME' },
        { false, 'TYPE', k.stats },
        { false, 'HGET', k.stats, 'f' },
        { false, 'HGETALL', k.stats },
        { false, 'HLEN', k.stats },
        { false, 'XPENDING', k.stream, GROUP },
        { false, 'XRANGE', k.stream, '-', '+' },
        { false, 'XLEN', k.stream },
        { false, 'XINFO', 'CONSUMERS', k.stream, GROUP },
        { false, 'ZCARD', k.active },
        { false, 'ZRANGE', k.active, '0', '0' },
        { false, 'ZSCORE', k.active, 'm' },
        { true, 'HSET', k.stats, 'f', 'v' },
        { true, 'HDEL', k.stats, 'f' },
        { true, 'HINCRBY', k.stats, 'f', '1' },
        { true, 'DEL', k.paused },
        { true, 'SET', k.paused, '1' },
        { true, 'PEXPIRE', k.stats, '1' },
        { true, 'RPUSH', k.wake, '1' },
        { true, 'LTRIM', k.wake, '0', '1' },
        { true, 'XGROUP', 'CREATE', k.stream, GROUP, '0', 'MKSTREAM' },
        { true, 'XGROUP', 'DELCONSUMER', k.stream, GROUP, 'c' },
        { true, 'XADD', k.stream, '*', 'f', 'v' },
        { true, 'XACK', k.stream, GROUP, '0-1' },
        { true, 'XDEL', k.stream, '0-1' },
        { true, 'XREADGROUP', 'GROUP', GROUP, 'c', 'STREAMS', k.stream, '>' },
        { true, 'XCLAIM', k.stream, GROUP, 'c', '0', '0-1' },
        { true, 'ZADD', k.active, '0', 'm' },
        { true, 'ZREM', k.active, 'm' },
        { true, 'ZREMRANGEBYSCORE', k.active, '0', '0' },
    }
end

-- Fails with NOPERM unless the caller may run every command `function_name` can call on the keys
-- of `queue` (the reads only for a read-only function).
local function check_acl(function_name, queue, readonly)
    for _, probe in ipairs(acl_probes(queue_keys(queue))) do
        if not (readonly and probe[1]) and not redis.acl_check_cmd(unpack(probe, 2)) then
            local what = probe[2] == 'XGROUP' and ('XGROUP ' .. probe[3]) or probe[2]
            fail('NOPERM', function_name .. " needs " .. what .. " on the keys of queue '" .. show_arg(queue)
                .. "' (zrq:{" .. show_arg(queue) .. "}:*), which this user may not run; see docs/ACL.md")
        end
    end
end

local function run(handler, keys, argv)
    local ok, result = pcall(handler, keys, argv)
    if ok then
        return result
    end
    if type(result) == 'table' and result.zrq_error then
        return redis.error_reply(result.zrq_error)
    end
    local message = type(result) == 'table' and (result.err or 'unknown error') or tostring(result)
    message = message:gsub('[\r\n]', ' ')
    return redis.error_reply('INTERNAL zrq bug, command aborted: ' .. message)
end

-- Registers `handler` as FCALL function `function_name`. `readonly` functions are `no-writes`;
-- write functions that the module does not flag `deny-oom` are `allow-oom`, as in the module.
local function register(function_name, handler, kind)
    local flags = {}
    if kind == 'readonly' then
        flags = { 'no-writes' }
    elseif kind == 'write' then
        flags = { 'allow-oom' }
    end
    local checked = function(keys, argv)
        if #keys == 1 then
            check_acl(function_name, keys[1], kind == 'readonly')
        end
        return handler(keys, argv)
    end
    redis.register_function({
        function_name = function_name,
        callback = function(keys, argv)
            return run(checked, keys, argv)
        end,
        flags = flags,
    })
end
