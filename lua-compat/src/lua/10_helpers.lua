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

--------------------------------------------------------------------------------------------------
-- Errors (core/src/error.rs). Every error reply starts with one of these codes.
-- A command raises `fail(code, message)`; `run` turns it into the error reply.
--------------------------------------------------------------------------------------------------

-- checked: zrq_core::ErrorCode::ALL
local ERROR_CODES = { 'ERR', 'WRONGTYPE', 'BADJSON', 'CORRUPT', 'INTERNAL' }

local KNOWN_CODE = { ERR = true, WRONGTYPE = true, BADJSON = true, CORRUPT = true, INTERNAL = true }

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

-- A name: 1 to 200 bytes of printable ASCII without spaces (0x21-0x7E); a queue has no braces.
local function name(what, raw)
    local bad = #raw == 0 or #raw > MAX_NAME_LEN or find(raw, '[^!-~]')
    if what == 'queue' and find(raw, '[{}]') then
        bad = true
    end
    if bad then
        fail('ERR', format('%s must be 1 to %d printable ASCII characters without spaces%s, got \'%s\'',
            what, MAX_NAME_LEN, what == 'queue' and ' or braces' or '', show_arg(raw)))
    end
    return raw
end

-- A decimal integer (optional leading '-', digits only) within min..max. Every bound zrq uses is
-- far below 2^53, so a value is exact as a Lua number once its length is checked.
local function integer(what, raw, min, max)
    local negative, digits = raw:match('^(%-?)(%d+)$')
    local value
    if digits then
        local significant = digits:gsub('^0+', '')
        if #significant <= 15 then
            value = tonumber(significant ~= '' and significant or '0')
            if negative == '-' then
                value = -value
            end
        end
    end
    if value == nil or value < min or value > max then
        fail('ERR', format("%s must be an integer from %d to %d, got '%s'", what, min, max, show_arg(raw)))
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
-- line and column. Returns nil when `s` is valid, else the detail.
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
                return nil
            end
        end
        if type(detail) == 'table' and detail.json then
            return detail.json
        end
        error(detail, 0)
    end
end

-- A JSON document, returned unchanged. (args.rs `json`)
local function json(what, raw)
    local detail
    if not is_utf8(raw) then
        detail = 'not UTF-8'
    else
        detail = json_detail(raw)
    end
    if detail then
        fail('BADJSON', what .. ' is not valid JSON: ' .. detail)
    end
    return raw
end

-- Walks the `NAME value` options after the positional arguments (args.rs `Options`): names match
-- case-insensitively and come back in their canonical spelling; each may be given once.
-- Returns an iterator of (OPTION, value).
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
        if seen[option] then
            fail('ERR', 'option ' .. option .. ' given more than once')
        end
        local value = args[at + 1]
        if value == nil then
            fail('ERR', 'option ' .. option .. ' needs a value')
        end
        seen[option] = true
        at = at + 2
        return option, value
    end
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

--------------------------------------------------------------------------------------------------
-- Key schema (core/src/keys.rs).
--------------------------------------------------------------------------------------------------

local GROUP = 'zrq'
local ENTRY_FIELD = 'job'

-- checked: zrq_core::keys::KEYS (suffixes, in order)
local KEY_KINDS = { 'stream', 'job:', 'active', 'dead', 'stats' }
-- Keys only the Lua library writes (the module blocks clients natively instead).
local LUA_ONLY_KEY_KINDS = { 'wake' }

-- How many wake-up tokens a queue keeps at most (see docs/LUA.md, "Blocking FETCH").
local WAKE_CAP = 128

local function queue_keys(queue)
    local prefix = 'zrq:{' .. queue .. '}:'
    return {
        stream = prefix .. 'stream',
        active = prefix .. 'active',
        dead = prefix .. 'dead',
        stats = prefix .. 'stats',
        wake = prefix .. 'wake',
        job = function(id) return prefix .. 'job:' .. id end,
    }
end

--------------------------------------------------------------------------------------------------
-- Redis calls (module/src/store.rs). Reads and writes that fail unexpectedly become INTERNAL
-- errors with the module's text: "<COMMAND> failed: <redis error>".
--------------------------------------------------------------------------------------------------

local function call(command, ...)
    local reply = redis.pcall(command, ...)
    if type(reply) == 'table' and reply.err then
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
    { 'created_at', 'integer' },
    { 'started_at', 'integer' },
    { 'finished_at', 'integer' },
    { 'consumer', 'text' },
    { 'entry', 'text' },
    { 'result', 'text' },
    { 'error', 'text' },
}

-- checked: zrq_core::state::State::ALL
local STATES = { 'pending', 'active', 'completed', 'dead' }
local IS_STATE = { pending = true, active = true, completed = true, dead = true }

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
        if significant > limit then
            return nil
        end
    end
    local value = tonumber(significant ~= '' and significant or '0')
    return sign == '-' and -value or value
end

-- Reads a job record from HGETALL's flat reply (job.rs `Job::from_fields`); fields or values that
-- are not UTF-8 are skipped, as the module's store does. Returns nil when nothing is left.
local function decode_job(key, flat)
    local raw, any = {}, false
    for k = 1, #flat, 2 do
        local field, value = flat[k], flat[k + 1]
        if raw[field] == nil and is_utf8(field) and is_utf8(value) then
            raw[field] = value
            any = true
        end
    end
    if not any then
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
    local job = {}
    local state = required('state')
    if not IS_STATE[state] then
        corrupt("unknown state '" .. state .. "'")
    end
    job.id = required('id')
    job.queue = required('queue')
    job.task = required('task')
    job.payload = required('payload')
    job.state = state
    job.attempt = int('attempt', true)
    job.max_attempts = int('max_attempts', true)
    job.timeout = int('timeout', true)
    job.created_at = int('created_at', true)
    job.started_at = int('started_at', false)
    job.finished_at = int('finished_at', false)
    job.consumer = raw.consumer
    job.entry = raw.entry
    job.result = raw.result
    job.error = raw.error
    return job
end

-- Loads job `id`, or nil if there is no record; WRONGTYPE/CORRUPT as the module.
-- (commands/mod.rs load_job)
local function load_job(keys, id)
    local key = keys.job(id)
    check_types({ { key, 'hash' } })
    return decode_job(key, call('HGETALL', key))
end

-- Like load_job, but any error counts as "no job" (FETCH and RECLAIM skip unreadable records).
local function try_load_job(keys, id)
    local ok, job = pcall(load_job, keys, id)
    if ok then
        return job
    end
    if type(job) == 'table' and job.zrq_error then
        return nil
    end
    error(job, 0)
end

-- The job's present fields as HSET arguments, in FIELDS order (job.rs `to_fields`).
local function job_hset_args(job)
    local out = {}
    for _, f in ipairs(FIELDS) do
        local value = job[f[1]]
        if value ~= nil then
            out[#out + 1] = f[1]
            out[#out + 1] = f[2] == 'integer' and itoa(value) or value
        end
    end
    return out
end

-- The job as a reply map: present fields only, integers as integers (job.rs `to_reply`).
local function job_reply(job)
    local map = {}
    for _, f in ipairs(FIELDS) do
        local value = job[f[1]]
        if value ~= nil then
            map[f[1]] = value
        end
    end
    return { map = map }
end

local function jobs_reply(jobs)
    local out = {}
    for k, job in ipairs(jobs) do
        out[k] = job_reply(job)
    end
    return out
end

-- Starts a new attempt of `job` for `consumer`: active, attempt + 1, fresh lease.
-- (commands/mod.rs start_attempt)
local function start_attempt(keys, job, consumer, now)
    job.state = 'active'
    job.attempt = job.attempt + 1
    job.consumer = consumer
    job.started_at = now
    call('HSET', keys.job(job.id), 'state', 'active', 'attempt', itoa(job.attempt),
        'consumer', consumer, 'started_at', itoa(now))
    call('ZADD', keys.active, itoa(now + job.timeout), job.id)
end

-- Ends the job's time in the stream: its entry acknowledged and deleted, its lease dropped.
-- (commands/mod.rs leave_stream)
local function leave_stream(keys, job)
    if job.entry ~= nil then
        call('XACK', keys.stream, GROUP, job.entry)
        call('XDEL', keys.stream, job.entry)
    end
    call('ZREM', keys.active, job.id)
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
    redis.register_function({
        function_name = function_name,
        callback = function(keys, argv)
            return run(handler, keys, argv)
        end,
        flags = flags,
    })
end
