#!lua name=zrq
--
-- zrq as a Redis Functions library, for servers that cannot load the zrq module.
--
-- Install:   FUNCTION LOAD REPLACE "<this text>"
-- Call:      ZRQ.<CMD> <queue> <args...>  ==  FCALL zrq_<cmd> 1 <queue> <args...>
--
-- The library implements the module's commands over the same keys, with the same replies and the
-- same error texts; the Rust crate `zrq-core` is the specification (core/src/commands/*.rs) and
-- the conformance suite (tests/) runs every behaviour test against both backends.
--
-- This text is assembled from lua-compat/src/lua/*.lua by lua-compat/src/lib.rs:
--   00_header.lua    this header and the library version
--   (generated)      zrq-core's definitions (config defaults, error codes, argument rules, key
--                    schema, states, job fields, reply codes, command constants, the command table), written
--                    by lua-compat/build.rs from the Rust ones
--   10_lua.lua … 27_definition.lua   shared helpers, each mirroring one file of zrq-core or the
--                    module: errors, arguments, JSON, keys, store calls, the packed record, the
--                    job record, what commands share, workflows, ACL checks, registration,
--                    paging, job options, cron, schedule definitions
--   30_enqueue.lua … 54_schedules.lua   one file per command (core/src/commands/<cmd>.rs), each
--                    with its own header, each in a `do … end` block of its own (its locals are
--                    private: what several files use belongs in the shared helpers)
--   90_version.lua   zrq_version
--
-- What a script cannot do (block a client, run timers) the client library does; see docs/LUA.md.

local VERSION = '0.1.0+f10fdb4b'

--------------------------------------------------------------------------------------------------
-- zrq-core's definitions, generated from the Rust ones by lua-compat/build.rs (src/generate.rs):
-- change them in Rust, never here.
--------------------------------------------------------------------------------------------------

-- The module configs' defaults (zrq_core::config::SETTINGS): a script cannot read module
-- configs, so the library applies their defaults (docs/LUA.md).
local CONFIG = {
    backoff_base_ms = 1000, -- zrq.backoff-base-ms: first retry delay; doubles per attempt
    backoff_max_ms = 3600000, -- zrq.backoff-max-ms: longest retry delay
    keep_ms = 86400000, -- zrq.keep-ms: retention of completed and cancelled jobs
    dead_max = 10000, -- zrq.dead-max: dead jobs kept per queue
    consumer_idle_ms = 3600000, -- zrq.consumer-idle-ms: idle consumers holding no job are dropped by RECLAIM after this
    payload_max_bytes = 131072, -- zrq.payload-max-bytes: largest payload of a job (ENQUEUE, SCHEDULE); for BATCH, of all its payloads together
    result_max_bytes = 131072, -- zrq.result-max-bytes: largest RESULT of ACK
    json_depth_max = 64, -- zrq.json-depth-max: deepest nesting of arrays and objects in a payload or RESULT
    after_max = 100, -- zrq.after-max: `AFTER` options per ENQUEUE (parents of one job)
    batch_max = 500, -- zrq.batch-max: `JOB` members per BATCH command
    schedules_max = 100, -- zrq.schedules-max: schedules per queue
    every_min_ms = 1000, -- zrq.every-min-ms: shortest `EVERY` period of a schedule
    children_max = 200, -- zrq.children-max: jobs waiting `AFTER` one parent (children registered while it is unfinished)
    requeue_max = 20, -- zrq.requeue-max: dead jobs one REQUEUE ALL handles (its COUNT's default and largest value)
    reply_max_bytes = 262144, -- zrq.reply-max-bytes: bytes of job records one FETCH, LIST, DEAD, RECLAIM or REQUEUE ALL reads; a page stops before the job that would pass it (it always handles one)
    parents_max_bytes = 32768, -- zrq.parents-max-bytes: largest `parents` field of a WITHRESULTS job (its parents' results together); a result that would pass it is copied as null
}

-- Error codes (zrq_core::ErrorCode::ALL): every error reply starts with one of them.
local KNOWN_CODE = { ERR = true, WRONGTYPE = true, BADJSON = true, NOJOB = true, CORRUPT = true, NOPERM = true, LIMIT = true, INTERNAL = true }

-- Argument rules (zrq_core::args).
local MAX_NAME_LEN, MAX_DURATION_MS, MAX_RETRIES, MAX_COUNT = 200, 315360000000, 1000, 1000
local REPEATABLE = { AFTER = true, JOB = true } -- options given more than once
local FLAG_OPTIONS = { WITHRESULTS = true } -- options without a value

-- The key schema (zrq_core::keys): the consumer group, the field of a stream entry, the
-- highest priority, and the suffix of every key kind of a queue (`job:` + id, …).
local GROUP, ENTRY_FIELD, MAX_PRIORITY = 'zrq', 'job', 9
local KEY_KINDS = { 'stream', 'stream:', 'job:', 'active', 'waiting', 'batch:', 'scheduled', 'retrying', 'completed', 'cancelled', 'completed:records', 'completed:log', 'cancelled:records', 'cancelled:log', 'dead', 'unique', 'paused', 'schedules', 'ticks', 'stats' }
-- Keys only the library writes (the module blocks clients natively), and the suffix of
-- the queue's Pub/Sub channel.
local LUA_ONLY_KEY_KINDS = { 'wake' }
local EVENTS = 'events'
-- Each key kind's Redis type (KeySpec::redis_type), by suffix: what WRONGTYPE checks expect.
local KEY_TYPE = { stream = 'stream', ['stream:'] = 'stream', ['job:'] = 'string', active = 'zset', waiting = 'zset', ['batch:'] = 'hash', scheduled = 'zset', retrying = 'zset', completed = 'zset', cancelled = 'zset', ['completed:records'] = 'hash', ['completed:log'] = 'stream', ['cancelled:records'] = 'hash', ['cancelled:log'] = 'stream', dead = 'zset', unique = 'hash', paused = 'string', schedules = 'hash', ticks = 'zset', stats = 'hash', wake = 'list' }
-- How many wake-up tokens a queue keeps at most (docs/LUA.md, "Blocking FETCH").
local WAKE_CAP = 128

-- Job states (zrq_core::state::State::ALL), which are valid, which are final.
local STATES = { 'waiting', 'scheduled', 'pending', 'active', 'retrying', 'completed', 'dead', 'cancelled' }
local IS_STATE = { waiting = true, scheduled = true, pending = true, active = true, retrying = true, completed = true, dead = true, cancelled = true }
local IS_FINAL = { completed = true, dead = true, cancelled = true }

-- The job record's fields and their kinds, in order (zrq_core::job::FIELDS), each stored
-- field with its one-letter tag in a packed record (zrq_core::packed::TAGS).
local FIELDS = {
    { 'id', 'text' },
    { 'queue', 'text' },
    { 'task', 'text', 't' },
    { 'payload', 'text', 'p' },
    { 'state', 'text', 's' },
    { 'attempt', 'integer', 'a' },
    { 'max_attempts', 'integer', 'm' },
    { 'timeout', 'integer', 'o' },
    { 'priority', 'integer', 'i' },
    { 'backoff', 'integer', 'b' },
    { 'keep', 'integer', 'k' },
    { 'unique', 'text', 'u' },
    { 'parents', 'text', 'P' },
    { 'children', 'text', 'C' },
    { 'waiting_on', 'integer', 'W' },
    { 'parents_done', 'text', 'D' },
    { 'with_results', 'integer', 'R' },
    { 'on_parent_fail', 'text', 'F' },
    { 'batch', 'text', 'B' },
    { 'schedule', 'text', 'S' },
    { 'created_at', 'integer', 'c' },
    { 'run_at', 'integer', 'r' },
    { 'started_at', 'integer', 'g' },
    { 'finished_at', 'integer', 'f' },
    { 'consumer', 'text', 'w' },
    { 'lease', 'text', 'l' },
    { 'progress', 'integer', 'n' },
    { 'cancel_requested', 'integer', 'x' },
    { 'entry', 'text', 'e' },
    { 'result', 'text', 'v' },
    { 'error', 'text', 'E' },
}

-- The compact record: fields not stored, their place says them (zrq_core::job::DERIVED),
local IS_DERIVED = { id = true, queue = true }
-- the record fields a plain job's inline entry leaves out, its place says them
-- (zrq_core::job::ENTRY_DERIVED),
local ENTRY_DERIVED = { state = true, created_at = true, priority = true, entry = true }
-- and integer fields not stored at their default, which readers fill in
-- (zrq_core::job::DEFAULTS).
local DEFAULT_OF = { attempt = 0, max_attempts = 4, timeout = 30000, priority = 0 }

-- The integers with which commands say what they did (zrq_core::reply::code).
local REPLY = { DONE = 1, NOTHING = 0, CANCELLED = -1, CANCEL_REQUESTED = 2 }

-- Constants of single commands, by their Rust module: CORE.<module>.<NAME> is
-- zrq_core::commands::<module>::<NAME>.
local CORE = {
    enqueue = { DEFAULT_RETRIES = 3, DEFAULT_TIMEOUT_MS = 30000, MAX_AT_MS = 253402300799999,
        OPTIONS = { 'ID', 'RETRIES', 'TIMEOUT', 'DELAY', 'AT', 'BACKOFF', 'PRIORITY', 'UNIQUE', 'KEEP', 'AFTER', 'WITHRESULTS', 'ONPARENTFAIL' },
        PARENT_FAIL_POLICIES = { 'cancel', 'run' } },
    fetch = { OPTIONS = { 'COUNT', 'BLOCK' } },
    ack = { OPTIONS = { 'RESULT', 'LEASE' } },
    fail = { OPTIONS = { 'RETRYIN', 'LEASE' }, MAX_ERROR_LEN = 65536 },
    touch = { OPTIONS = { 'TIMEOUT', 'PROGRESS', 'LEASE' } },
    release = { OPTIONS = { 'LEASE' } },
    reclaim = { OPTIONS = { 'COUNT' }, DEFAULT_COUNT = 10 },
    result = { OPTIONS = { 'BLOCK' } },
    requeue = { OPTIONS = { 'COUNT', 'CURSOR' } },
    queues = { OPTIONS = { 'COUNT', 'CURSOR' }, DEFAULT_COUNT = 100, MAX_COUNT = 250 },
    batch = { OPTIONS = { 'ON-COMPLETE', 'RETRIES', 'TIMEOUT', 'BACKOFF', 'PRIORITY', 'KEEP', 'JOB' } },
    schedule = { JOB_OPTIONS = { 'RETRIES', 'TIMEOUT', 'BACKOFF', 'PRIORITY', 'UNIQUE', 'KEEP' } },
    promote = { BATCH = 1000 },
    paging = { OPTIONS = { 'COUNT', 'CURSOR' }, DEFAULT_COUNT = 10 }, -- PAGE_OPTIONS, PAGE_DEFAULT_COUNT
}

-- The command table (zrq_core::spec::COMMANDS): each command's function and whether it
-- only reads (`no-writes`) or may be refused at maxmemory (the module's `deny-oom`); `register`
-- takes a function's flags from here.
local COMMANDS = {
    zrq_enqueue = { readonly = false, deny_oom = true },
    zrq_fetch = { readonly = false, deny_oom = false },
    zrq_ack = { readonly = false, deny_oom = false },
    zrq_fail = { readonly = false, deny_oom = false },
    zrq_touch = { readonly = false, deny_oom = false },
    zrq_release = { readonly = false, deny_oom = false },
    zrq_reclaim = { readonly = false, deny_oom = false },
    zrq_state = { readonly = true, deny_oom = false },
    zrq_job = { readonly = true, deny_oom = false },
    zrq_result = { readonly = true, deny_oom = false },
    zrq_cancel = { readonly = false, deny_oom = false },
    zrq_dead = { readonly = true, deny_oom = false },
    zrq_requeue = { readonly = false, deny_oom = true },
    zrq_delete = { readonly = false, deny_oom = false },
    zrq_pause = { readonly = false, deny_oom = false },
    zrq_resume = { readonly = false, deny_oom = false },
    zrq_schedule = { readonly = false, deny_oom = true },
    zrq_unschedule = { readonly = false, deny_oom = false },
    zrq_schedules = { readonly = true, deny_oom = false },
    zrq_batch = { readonly = false, deny_oom = true },
    zrq_batchinfo = { readonly = true, deny_oom = false },
    zrq_info = { readonly = true, deny_oom = false },
    zrq_list = { readonly = true, deny_oom = false },
    zrq_queues = { readonly = true, deny_oom = false },
}

--------------------------------------------------------------------------------------------------
-- Shared helpers, files 10_ to 29_: each mirrors one file of zrq-core (or of the module), named
-- in its header; keep them in step. Their constants are generated from zrq-core (above this
-- file in the library text; lua-compat/src/generate.rs), never copied by hand.
-- Commands follow, one file each (30_ to 59_), as core/src/commands/<command>.rs.
--
-- This file: the standard library as top-level code may use it.
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

--------------------------------------------------------------------------------------------------
-- Key schema (core/src/keys.rs).
--------------------------------------------------------------------------------------------------

-- GROUP, ENTRY_FIELD, MAX_PRIORITY, KEY_KINDS, LUA_ONLY_KEY_KINDS (the wake-up list), EVENTS
-- (the channel), KEY_TYPE (each kind's Redis type) and WAKE_CAP (the wake-up list's length) are
-- generated from core/src/keys.rs.

-- The module's configs cannot be read from a script: the library uses their defaults (CONFIG,
-- generated from core/src/config.rs), read as CONFIG.<name> where used (no aliases: the main
-- chunk's locals are few).

-- The keys of `queue`: k.<kind> for every fixed key kind (KEY_KINDS without the `job:`-like
-- prefixes), k.events (the Pub/Sub channel) and k.wake; k.job(id), k.batch(id), k.stream_at(p),
-- k.index_of(state), k.records(state), k.log(state). Every command builds one (several, through
-- check_acl): the names are made on first use (a metatable's __index), not all of them up front,
-- each then kept in `k`.
local queue_keys
do
    -- The fixed kinds (KEY_KINDS but the prefixes, then LUA_ONLY_KEY_KINDS): kind -> true; and
    -- the metatable of every queue's keys. Made on first use (top-level code has no `string`).
    local fixed, keys_of

    -- The functions of k, each made for k's prefix when first asked for.
    local make = {
        job = function(prefix) return function(id) return prefix .. 'job:' .. id end end,
        batch = function(prefix) return function(id) return prefix .. 'batch:' .. id end end,
    }
    function make.stream_at(prefix, k)
        local streams = {}
        return function(priority)
            if priority == 0 then
                return k.stream
            end
            local stream = streams[priority]
            if stream == nil then
                stream = prefix .. 'stream:' .. priority
                streams[priority] = stream
            end
            return stream
        end
    end
    -- The index holding the unfinished jobs of `state` (keys.rs index_of); nil for pending jobs
    -- (in their stream) and finished ones. Each of these kinds is named after its state.
    function make.index_of(_, k)
        return function(state)
            if state == 'active' or state == 'waiting' or state == 'scheduled' or state == 'retrying' then
                return k[state]
            end
        end
    end

    -- The records hash and the log of the jobs kept for the queue's retention in final `state`
    -- (keys.rs records, log): `completed:records` / `completed:log` and the cancelled ones; nil
    -- for any other state.
    local function kept_key(k, suffix)
        return function(state)
            if state == 'completed' or state == 'cancelled' then
                return k[state .. suffix]
            end
        end
    end
    function make.records(_, k)
        return kept_key(k, ':records')
    end
    function make.log(_, k)
        return kept_key(k, ':log')
    end

    queue_keys = function(queue)
        if fixed == nil then
            fixed = {}
            for _, name in ipairs(KEY_KINDS) do
                if sub(name, -1) ~= ':' then
                    fixed[name] = true
                end
            end
            for _, name in ipairs(LUA_ONLY_KEY_KINDS) do
                fixed[name] = true
            end
            keys_of = {
                __index = function(k, name)
                    local value
                    if fixed[name] then
                        value = k.prefix .. name
                    elseif make[name] then
                        value = make[name](k.prefix, k)
                    else
                        return nil
                    end
                    k[name] = value
                    return value
                end,
            }
        end
        local prefix = 'zrq:{' .. queue .. '}:'
        return setmetatable({ queue = queue, prefix = prefix, events = prefix .. EVENTS }, keys_of)
    end
end

--------------------------------------------------------------------------------------------------
-- Redis calls (module/src/store.rs). Reads and writes that fail unexpectedly become INTERNAL
-- errors with the module's text: "<COMMAND> failed: <redis error>".
--------------------------------------------------------------------------------------------------

local call
do
    -- redis.pcall and type, looked up once (at call time: not there at load time); every
    -- command makes several calls.
    local rpcall, type_of

    call = function(command, ...)
        if rpcall == nil then
            rpcall, type_of = redis.pcall, type
        end
        local reply = rpcall(command, ...)
        if type_of(reply) == 'table' and reply.err then
            -- A call the caller's ACL denies (writing functions check theirs up front, see
            -- check_acl; this is for the keyless zrq_queues) is NOPERM, not a zrq bug.
            if find(reply.err, "The user executing the script can't", 1, true) then
                fail('NOPERM', command .. ' failed: ' .. reply.err)
            end
            fail('INTERNAL', command .. ' failed: ' .. reply.err)
        end
        return reply
    end
end

-- Adds `by` (text) to counter `field` of the queue's stats (HINCRBY). A counter that holds no
-- integer (edited by hand; INFO reads it as 0), or would overflow, is set to `by` (HSET):
-- counting comes after a command's other writes, so it must not fail half-way through them.
-- (store.rs hincrby)
local function count_stat(k, field, by)
    local reply = redis.pcall('HINCRBY', k.stats, field, by)
    if type(reply) == 'table' and reply.err then
        call('HSET', k.stats, field, by)
    end
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
-- `checks` = { {key, 'stream'}, ... }; each check gets the type found as its third element.
local function check_types(checks)
    for _, check in ipairs(checks) do
        local found = key_type(check[1])
        check[3] = found
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

-- The smallest entry id after `id` (`<ms>-<seq + 1>` in decimal text of any size; store.rs
-- entry_after): the MINID that trims an entry and everything before it.
local function entry_after(id)
    local function next_number(digits)
        local i = #digits
        while i > 0 and sub(digits, i, i) == '9' do
            i = i - 1
        end
        if i == 0 then
            return '1' .. string.rep('0', #digits)
        end
        return sub(digits, 1, i - 1) .. string.char(byte(digits, i) + 1) .. string.rep('0', #digits - i)
    end
    local ms, seq = id:match('^(%d+)%-(%d+)$')
    if seq == '18446744073709551615' then
        return next_number(ms) .. '-0'
    end
    return ms .. '-' .. next_number(seq)
end

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

--------------------------------------------------------------------------------------------------
-- Job record (core/src/job.rs); its FIELDS, IS_DERIVED, ENTRY_DERIVED and DEFAULT_OF are generated
-- from there.
--------------------------------------------------------------------------------------------------

-- Rust's i64 parse: optional sign, digits, within i64. Returns the number or nil.
local function parse_i64(text)
    -- What records hold (counts, times): a plain integer of up to 15 digits, exact as a number.
    if #text <= 15 and (find(text, '^[1-9]%d*$') or text == '0') then
        return tonumber(text)
    end
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
-- UTF-8 (as the module's store reads hashes); the name of a field of the job record (FIELDS) is
-- UTF-8 as it is. With `into` (pairs the library made itself, kept as they are), the pairs are
-- added to it, a field already there not read.
local utf8_hash
do
    local is_field_name -- field -> true for each of FIELDS, made on first use

    utf8_hash = function(flat, into)
        if is_field_name == nil then
            is_field_name = {}
            for i = 1, #FIELDS do
                is_field_name[FIELDS[i][1]] = true
            end
        end
        local out = into or {}
        for n = 1, #flat, 2 do
            local field = flat[n]
            if out[field] == nil and (is_field_name[field] or is_utf8(field)) and is_utf8(flat[n + 1]) then
                out[field] = flat[n + 1]
            end
        end
        return out
    end
end

-- Sets `map[prefix .. field]` to the integer value of each of `fields` in `hash` (0 when absent
-- or not an integer), as INFO reports counters.
local function counters(map, hash, fields, prefix)
    for _, field in ipairs(fields) do
        map[prefix .. field] = (hash[field] and parse_i64(hash[field])) or 0
    end
end

-- Plain jobs and their inline entries (job.rs inline_id, inline_entry, Job::from_entry). A plain
-- job (no ID, DELAY, AT nor AFTER) has no record while it is pending: its stream entry holds it
-- (an inline entry, one without the field ENTRY_FIELD), and its id is the entry's id, prefixed
-- `p<n>:` when it is in the stream of priority n > 0: `1764489600000-3`, `p7:1764489600000-3`.
-- One table of functions, so that the library's main chunk keeps few locals:
--   inline.id(priority, entry)      the id of the job an inline entry holds (job.rs inline_id)
--   inline.has_form(id)             whether `id` has the generated form, which ENQUEUE's ID refuses
--   inline.entry(id)                the priority and entry id a generated id names, or nil
--   inline.generated(id)            the entry and its ms a generated id names (below), or nil
--   inline.reference(fields)        a stream entry's reference (the id it names; nil when that is
--                                   not UTF-8), or false for an inline entry
--   inline.load(k, id)              the job the inline entry of generated id `id` holds, or nil
--   inline.job_at(k, priority, entry, fields)   the job behind a stream entry (FETCH, LIST)
local inline = {}

function inline.id(priority, entry)
    if priority == 0 then
        return entry
    end
    return 'p' .. itoa(priority) .. ':' .. entry
end

-- `<digits>-<digits>` or `p<1-9>:<digits>-<digits>` (job.rs has_generated_form).
function inline.has_form(id)
    return find(id, '^%d+%-%d+$') ~= nil or find(id, '^p[1-9]:%d+%-%d+$') ~= nil
end

-- Only an id inline.id gives names an entry: its two numbers written without leading zeros and
-- below 2^64 (Redis' entry ids), so the entry found has the id asked for (job.rs inline_entry).
function inline.entry(id)
    if not inline.has_form(id) then
        return nil
    end
    local priority, entry = 0, id
    if sub(id, 1, 1) == 'p' then
        priority, entry = byte(id, 2) - 48, sub(id, 4)
    end
    for number in string.gmatch(entry, '%d+') do
        if (#number > 1 and sub(number, 1, 1) == '0') or #number > 20
            or (#number == 20 and byte_less('18446744073709551615', number)) then
            return nil
        end
    end
    return priority, entry
end

-- What a generated id says of its job's record (job.rs generated_defaults): its entry E and E's
-- ms, or nil for any other id (and for one whose ms is beyond an i64). A record leaves out what
-- these say: a created_at that is the ms, and a lease that is the default one, `E:<attempt>`
-- for an attempt of 1 or more (no lease is then stored empty); reading a record gives them back.
-- The last id's answer is kept: a command reads a job, then writes it.
do
    local last_id, last_entry, last_ms

    function inline.generated(id)
        if id ~= last_id then
            local _, entry = inline.entry(id)
            local ms = entry and parse_i64(entry:match('^%d+'))
            last_id, last_entry, last_ms = id, ms and entry, ms
        end
        return last_entry, last_ms
    end
end

-- Reads the job `id` of `queue` from the fields of its record (job.rs `Job::from_fields`), a
-- table field -> value: a packed record's (packed.decode), or the UTF-8 pairs of a hash of the
-- earlier format (utf8_hash). `id` and `queue` come from the record's place, fields left out hold
-- their default. A record of the full format (before the compact one) that stores another
-- `queue` or `id` is CORRUPT. Returns nil when there is no field.
local decode_job
do
    -- The readers of one field of `raw` (the record's fields) in `key`; none is a closure, as
    -- every job a command reads goes through them.
    local function corrupt(key, detail)
        fail('CORRUPT', "'" .. key .. "' is not a zrq record: " .. detail)
    end
    local function required(raw, key, field)
        if raw[field] == nil then
            corrupt(key, "field '" .. field .. "' is missing")
        end
        return raw[field]
    end
    local function int(raw, key, field)
        local text = raw[field]
        if text == nil then
            return nil
        end
        local value = parse_i64(text)
        if value == nil then
            corrupt(key, "field '" .. field .. "' is not an integer")
        end
        return value
    end
    -- A stored name that the commands would refuse is not used (job.rs name_field).
    local function name_field(raw, key, field)
        local value = raw[field]
        if value ~= nil and not is_name(field, value) then
            corrupt(key, "field '" .. field .. "' is not a valid name")
        end
        return value
    end
    -- A field left out holds its default.
    local function defaulted(raw, key, field)
        local value = int(raw, key, field)
        if value == nil then
            return DEFAULT_OF[field]
        end
        return value
    end
    -- Left out when the job's generated id says it (inline.generated), else required.
    local function created(raw, key, id)
        local value = int(raw, key, 'created_at')
        if value == nil then
            local _, ms = inline.generated(id)
            if ms == nil then
                corrupt(key, "field 'created_at' is missing")
            end
            return ms
        end
        return value
    end

    decode_job = function(key, raw, queue, id)
        if next(raw) == nil then
            return nil
        end
        local state = required(raw, key, 'state')
        if not IS_STATE[state] then
            corrupt(key, "unknown state '" .. state .. "'")
        end
        if raw.queue ~= nil and raw.queue ~= queue then
            corrupt(key, "field 'queue' does not name its queue")
        end
        if raw.id ~= nil and raw.id ~= id then
            corrupt(key, "field 'id' does not match its key")
        end
        -- The priority names the job's stream: one outside 0-9 would name a key zrq never uses.
        local priority = defaulted(raw, key, 'priority')
        if priority < 0 or priority > MAX_PRIORITY then
            corrupt(key, "field 'priority' is out of range")
        end
        -- One constructor (its fields read in this order): the table is made at its size.
        local job = {
            priority = priority,
            id = id,
            queue = queue,
            task = required(raw, key, 'task'),
            payload = required(raw, key, 'payload'),
            state = state,
            attempt = defaulted(raw, key, 'attempt'),
            max_attempts = defaulted(raw, key, 'max_attempts'),
            timeout = defaulted(raw, key, 'timeout'),
            backoff = int(raw, key, 'backoff'),
            keep = int(raw, key, 'keep'),
            unique = name_field(raw, key, 'unique'),
            parents = raw.parents,
            children = raw.children,
            waiting_on = int(raw, key, 'waiting_on'),
            parents_done = raw.parents_done,
            with_results = int(raw, key, 'with_results'),
            on_parent_fail = raw.on_parent_fail,
            batch = name_field(raw, key, 'batch'),
            schedule = raw.schedule,
            created_at = created(raw, key, id),
            run_at = int(raw, key, 'run_at'),
            started_at = int(raw, key, 'started_at'),
            finished_at = int(raw, key, 'finished_at'),
            consumer = raw.consumer,
            lease = raw.lease,
            progress = int(raw, key, 'progress'),
            cancel_requested = int(raw, key, 'cancel_requested'),
            entry = raw.entry,
            result = raw.result,
            error = raw.error,
        }
        -- The lease: an empty one is none; one left out is the default lease of a generated id
        -- (inline.generated) from the first attempt on, else none.
        local lease = job.lease
        if lease == nil then
            if job.attempt >= 1 then
                local entry = inline.generated(id)
                if entry ~= nil then
                    job.lease = entry .. ':' .. itoa(job.attempt)
                end
            end
        elseif lease == '' then
            job.lease = nil
        end
        return job
    end
end

function inline.reference(fields)
    for f = 1, #fields, 2 do
        if fields[f] == ENTRY_FIELD then
            return is_utf8(fields[f + 1]) and fields[f + 1] or nil
        end
    end
    return false
end

-- packed.read(key, unchecked): the fields of the record at `key` as a table field -> value, nil
-- when the key does not exist (mod.rs Store::record): a string is a packed record
-- (packed.decode, CORRUPT unless it follows the format); a hash is a record of the earlier
-- format, its UTF-8 pairs (it becomes a string on its first write); any other type is WRONGTYPE
-- (expected a string). One GET in the common case: the type is asked only when GET refuses the
-- key. `unchecked`: as packed.decode's.
do
    local rpcall, type_of -- redis.pcall and type, looked up once (at call time)

    function packed.read(key, unchecked)
        if rpcall == nil then
            rpcall, type_of = redis.pcall, type
        end
        local raw = rpcall('GET', key)
        if raw == false then
            return nil
        end
        if type_of(raw) == 'string' then
            return packed.decode(key, raw, unchecked)
        end
        local found = key_type(key)
        if found == 'hash' then
            return utf8_hash(call('HGETALL', key))
        elseif found == 'string' or found == 'none' then
            -- Not a type error (an ACL, say): the failure as any call's.
            call('GET', key)
        end
        fail('WRONGTYPE', "key '" .. key .. "' holds a " .. found .. ', zrq expects a string')
    end
end

-- A job's `place` says where its record is (job.rs Place): nil at its own key (`job:<id>`),
-- 'entry' for a plain pending job its inline entry holds (no record yet), 'records' for a
-- completed or cancelled job kept for the queue's retention as a field of its state's records
-- hash (k.records(state)), whose record does not store the state. packed.read_kept reads it,
-- packed.save writes it there.
local load_job, load_unrecorded
do
    -- A job read for its state and links (load_job's `linked`) from the record at `key`, and
    -- whether the key exists: packed.read_linked leaves out a long payload, result or error.
    -- Without its payload, the job is written by patching what follows the payload (packed.save:
    -- `job.record_head`, the bytes up to the payload's end, and `job.record_size`); a result or
    -- error left out is `job.spans[field]`, read when it is needed (packed.save, wait_for).
    local function load_linked(key, k, id)
        local fields, spans, size = packed.read_linked(key)
        if fields == nil then
            return nil, false
        end
        local payload = spans and spans.payload
        if payload ~= nil then
            -- A placeholder for decode_job, which requires the field.
            fields.payload = ''
        end
        local job = decode_job(key, fields, k.queue, id)
        if job ~= nil and spans ~= nil and next(spans) ~= nil then
            job.spans = spans
            if payload ~= nil then
                job.payload = nil
                job.record_head = payload[1] + payload[2]
                job.record_size = size
            end
        end
        return job, true
    end

    -- The pending job an inline entry holds (its flat field list; job.rs Job::from_entry): state
    -- pending, created_at the entry id's ms, priority that of its stream, entry its id (these
    -- come first: a field of the same name in the entry is not read), the rest from the entry's
    -- fields (defaults for those left out), read as a record is, errors naming the stream.
    -- It has no record yet: its first write (packed.save) gives it one.
    local function decode_inline(k, priority, entry, fields)
        local known = { state = 'pending', created_at = (entry:match('^(%d+)')), priority = itoa(priority),
            entry = entry }
        local id = inline.id(priority, entry)
        local job = decode_job(k.stream_at(priority), utf8_hash(fields, known), k.queue, id)
        job.place = 'entry'
        return job
    end

    -- The record of job `id` (nil when there is none or nothing of it reads), and whether its key
    -- exists; `linked`: as load_job's.
    local function load_record(k, id, linked)
        local key = k.job(id)
        if linked then
            return load_linked(key, k, id)
        end
        local fields = packed.read(key)
        if fields == nil then
            return nil, false
        end
        return decode_job(key, fields, k.queue, id), true
    end

    -- One XRANGE of the entry; a stream key of another type is WRONGTYPE (mod.rs load_inline).
    function inline.load(k, id)
        local priority, entry = inline.entry(id)
        if priority == nil then
            return nil
        end
        local stream = k.stream_at(priority)
        check_types({ { stream, 'stream' } })
        local found = call('XRANGE', stream, entry, entry)[1]
        if found == nil or inline.reference(found[2]) ~= false then
            return nil
        end
        return decode_inline(k, priority, entry, found[2])
    end

    -- packed.kept_raw(k, id, state): the records hash of final `state` and job `id`'s field in
    -- it (nil when it is not there), as stored. A hash key of another type is WRONGTYPE (its type
    -- asked only when HGET refuses it).
    function packed.kept_raw(k, id, state)
        local key = k.records(state)
        local raw = redis.pcall('HGET', key, id)
        if type(raw) == 'table' then
            check_types({ { key, 'hash' } })
            raw = call('HGET', key, id)
        end
        return key, raw
    end

    -- packed.read_kept(k, id, state, linked): job `id` if it is kept for the queue's retention
    -- in the records hash of final `state` (mod.rs load_kept), nil when it is not there: its
    -- field decoded as a packed record whose state is the hash's (one that stores another is
    -- CORRUPT), errors naming the hash. With `linked` (load_job's), its data fields are not
    -- checked for UTF-8: a hash field is read whole (there is no GETRANGE of a field), and
    -- checking after-max parents' payload-max payloads and results held the server for seconds.
    function packed.read_kept(k, id, state, linked)
        local key, raw = packed.kept_raw(k, id, state)
        if not raw then
            return nil
        end
        local fields = packed.decode(key, raw, linked and packed.DATA or nil)
        if fields.state ~= nil and fields.state ~= state then
            fail('CORRUPT', "'" .. key .. "' is not a zrq record: field 'state' does not match its place")
        end
        fields.state = state
        local job = decode_job(key, fields, k.queue, id)
        job.place = 'records'
        return job
    end

    -- Job `id` when it has no record at its own key (mod.rs load_unrecorded): a plain pending
    -- job its inline entry holds, else a finished job kept in completed:records, else in
    -- cancelled:records; nil when there is none. `linked`: as load_job's.
    load_unrecorded = function(k, id, linked)
        return inline.load(k, id) or packed.read_kept(k, id, 'completed', linked)
            or packed.read_kept(k, id, 'cancelled', linked)
    end

    -- Loads job `id`, or nil if there is none: its record, authoritative when it exists, else
    -- the inline entry a generated id names, else its field in a records hash
    -- (load_unrecorded); WRONGTYPE/CORRUPT as the module, including a
    -- full-format record whose `queue` or `id` differs from where it is stored
    -- (commands/mod.rs load_job). With `linked`, for a job read for its state and links (a
    -- parent at ENQUEUE, each waiting child of a finished parent), the data fields of a packed
    -- record are read in pieces (load_linked: long ones not at all) and not checked for UTF-8:
    -- checking a payload-max text of every kind of UTF-8 sequence costs Lua about 35 ms, so
    -- children-max children would hold the server for seconds. A result that is copied is
    -- checked then (result_json). Unlike the module, which
    -- finds such a record CORRUPT, a record whose data fields are not UTF-8 (not written by zrq)
    -- is read that way.
    load_job = function(k, id, linked)
        local job, exists = load_record(k, id, linked)
        if exists then
            return job
        end
        return load_unrecorded(k, id, linked)
    end

    -- The job of entry `entry` of the stream of `priority` (its flat field list, as XRANGE and
    -- XREADGROUP give it): a reference entry's job from the record it names; an inline entry's
    -- from its record if one was written since (materialized), else from the entry. nil when
    -- there is none (a reference whose value is not UTF-8, a record gone). (fetch.rs read_entry)
    function inline.job_at(k, priority, entry, fields)
        local reference = inline.reference(fields)
        if reference ~= false then
            return reference and load_job(k, reference)
        end
        local id = inline.id(priority, entry)
        local job, exists = load_record(k, id)
        if exists then
            return job
        end
        return decode_inline(k, priority, entry, fields)
    end
end

-- Like load_job, but any error counts as "no job" (where the module uses `.ok().flatten()`).
local function try_load_job(k, id, linked)
    local ok, job = pcall(load_job, k, id, linked)
    if ok then
        return job
    end
    if type(job) == 'table' and job.zrq_error then
        return nil
    end
    error(job, 0)
end

local job_hset_args, job_fields_args, job_reply, text_bytes
do
    -- FIELDS as each loop below needs it, made on first use: every name in order, the integer
    -- ones, the names stored (not derived) in order, the text ones. These loops run for every
    -- job a command handles.
    local names, is_int, stored, texts
    local function split_fields()
        names, is_int, stored, texts = {}, {}, {}, {}
        for i = 1, #FIELDS do
            local name, kind = FIELDS[i][1], FIELDS[i][2]
            names[i] = name
            if kind == 'integer' then
                is_int[name] = true
            elseif kind == 'text' then
                texts[#texts + 1] = name
            end
            if not IS_DERIVED[name] then
                stored[#stored + 1] = name
            end
        end
    end

    -- The present fields of `job` among `fields` (names in FIELDS order) but those holding
    -- their default, as HSET or XADD arguments, integers as text (job.rs `to_fields`).
    job_fields_args = function(job, fields)
        if is_int == nil then
            split_fields()
        end
        local out, n = {}, 0
        for i = 1, #fields do
            local field = fields[i]
            local value = job[field]
            if value ~= nil and DEFAULT_OF[field] ~= value then
                out[n + 1] = field
                out[n + 2] = is_int[field] and itoa(value) or value
                n = n + 2
            end
        end
        return out
    end

    -- The fields to store as HSET arguments, in FIELDS order (job.rs `to_fields`): present
    -- fields but the derived ones and those holding their default.
    job_hset_args = function(job)
        if stored == nil then
            split_fields()
        end
        return job_fields_args(job, stored)
    end

    -- The job as a reply map: every present field, the derived ones and defaults included,
    -- integers as integers (job.rs `to_reply`).
    job_reply = function(job)
        if names == nil then
            split_fields()
        end
        local map = {}
        for i = 1, #names do
            local field = names[i]
            local value = job[field]
            if value ~= nil then
                map[field] = value
            end
        end
        return { map = map }
    end

    -- The bytes of the job's text fields: what reading it costs, the measure of
    -- zrq.reply-max-bytes (job.rs text_bytes).
    text_bytes = function(job)
        if texts == nil then
            split_fields()
        end
        local bytes = 0
        for i = 1, #texts do
            local value = job[texts[i]]
            if value ~= nil then
                bytes = bytes + #value
            end
        end
        return bytes
    end
end

-- packed.save(k, job, expire_ms): writes the whole record of `job` as it is now, packed, in one
-- SET of its key (mod.rs save): every write of a job record is this one, once the command has
-- made its changes. `expire_ms` is a finished job's retention (PX); without it the key keeps its
-- TTL (KEEPTTL). A record of the earlier format (hash) becomes a string here; a plain pending job
-- held by its inline entry gets its first record (its entry stays; from then on the record is
-- authoritative).
--
-- A job read without its payload (load_linked: `record_head` set) is written by patching its
-- record: what follows the payload is replaced (SETRANGE) by the fields after the payload as
-- they are now, the same bytes a whole SET would store; a retention is then set by PEXPIRE. When
-- the new fields are shorter than the old ones (SETRANGE cannot shorten a string) the payload's
-- part is read (GETRANGE) and the whole record SET. A result or error left out is read first.
-- The record must not have been written since it was read.
--
-- What the job's generated id says is left out (inline.generated): its created_at when it is the
-- id's ms, its lease when it is the default lease (none is then stored empty).
--
-- A job kept in a records hash (job.place 'records', see packed.read_kept) is written back
-- there, as its field (HSET), packed without its state (the hash says it); never to its own key.
function packed.save(k, job, expire_ms)
    local entry, created = inline.generated(job.id)
    local lease
    if entry ~= nil and job.attempt >= 1 then
        lease = entry .. ':' .. itoa(job.attempt)
    end
    local spans = job.spans
    if spans ~= nil then
        for field, span in pairs(spans) do
            if field ~= 'payload' and job[field] == nil then
                job[field] = packed.span(k.job(job.id), span)
            end
        end
        job.spans = nil
    end
    if job.place == 'records' then
        local records = k.records(job.state)
        if records ~= nil then
            local state = job.state
            job.state = nil
            local record = packed.encode(job, false, created, lease)
            job.state = state
            call('HSET', records, job.id, record)
            return
        end
    end
    job.place = nil
    local head = job.record_head
    if head ~= nil then
        local key = k.job(job.id)
        local tail = packed.encode(job, true, created, lease)
        if head + #tail >= job.record_size then
            call('SETRANGE', key, itoa(head), tail)
            if expire_ms ~= nil then
                call('PEXPIRE', key, itoa(expire_ms))
            end
        else
            local record = packed.span(key, { 0, head }) .. tail
            if expire_ms ~= nil then
                call('SET', key, record, 'PX', itoa(expire_ms))
            else
                call('SET', key, record, 'KEEPTTL')
            end
        end
        job.record_size = head + #tail
        return
    end
    if expire_ms ~= nil then
        call('SET', k.job(job.id), packed.encode(job, false, created, lease), 'PX', itoa(expire_ms))
    else
        call('SET', k.job(job.id), packed.encode(job, false, created, lease), 'KEEPTTL')
    end
end

-- The reading budget of one paged command, zrq.reply-max-bytes (mod.rs Budget): admit(bytes)
-- counts a record the page is about to handle, or returns false (counting nothing) when the page
-- has handled one already and this one would pass the budget.
local function new_budget()
    local used, handled = 0, false
    return {
        admit = function(bytes)
            if handled and used + bytes > CONFIG.reply_max_bytes then
                return false
            end
            used, handled = used + bytes, true
            return true
        end,
    }
end

-- The text bytes of `job`, 0 when there is none (a record that could not be read).
local function bytes_of(job)
    return job and text_bytes(job) or 0
end

local function jobs_reply(jobs)
    local out = {}
    for n, job in ipairs(jobs) do
        out[n] = job_reply(job)
    end
    return out
end

--------------------------------------------------------------------------------------------------
-- Ids of jobs enqueued without an ID but with DELAY, AT or AFTER (a plain job's id is its entry's,
-- see inline.id): UUIDv7 (RFC 9562), unique even for many ids in one millisecond.
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
-- What commands share (core/src/commands/mod.rs): checks, then moving jobs between the
-- queue's structures, the only places where a job changes place, as in the module.
--------------------------------------------------------------------------------------------------

-- Fails with WRONGTYPE unless each fixed key named in `kinds` (k.<kind>) is missing or of its
-- kind's Redis type (KEY_TYPE, generated from core/src/keys.rs: the types are defined once).
-- `checks` holds checks to make first.
local function check_kinds(k, kinds, checks)
    for _, kind in ipairs(kinds) do
        checks[#checks + 1] = { k[kind], KEY_TYPE[kind] }
    end
    check_types(checks)
end

-- Fails with WRONGTYPE unless every fixed key of the queue has its type, in the module's order
-- (mod.rs check_queue_types), then checks the Lua-only wake-up list.
local function check_queue_types(k)
    local streams = {}
    for priority = 0, MAX_PRIORITY do
        streams[#streams + 1] = { k.stream_at(priority), KEY_TYPE.stream }
    end
    check_kinds(k, { 'active', 'waiting', 'scheduled', 'retrying', 'completed', 'cancelled', 'dead', 'ticks',
        'completed:records', 'completed:log', 'cancelled:records', 'cancelled:log', 'unique', 'schedules',
        'stats', 'paused', 'wake' }, streams)
end

-- Checks the types of the fixed keys finish() writes when `job` ends in `state`; every fixed key
-- when the job has children or a batch (a cascade may reach any of them). (mod.rs
-- check_finish_types) A job kept in its state's records hash (no KEEP of its own) checks that
-- hash and the log; one with its own KEEP, Lua only, both finished indexes, as finish_one then
-- sweeps both (expire_finished: the library has no timer).
local function check_finish_types(k, job, state)
    if job.children ~= nil or job.batch ~= nil then
        check_queue_types(k)
        return
    end
    local checks = {}
    if job.entry ~= nil then
        checks[1] = { k.stream_at(job.priority), KEY_TYPE.stream }
    end
    local kinds = {}
    if k.index_of(job.state) then
        kinds[1] = job.state
    end
    if state == 'dead' then
        kinds[#kinds + 1] = 'dead'
    elseif job.keep == nil then
        kinds[#kinds + 1] = state .. ':records'
        kinds[#kinds + 1] = state .. ':log'
    else
        kinds[#kinds + 1] = 'completed'
        kinds[#kinds + 1] = 'cancelled'
    end
    if job.unique ~= nil then
        kinds[#kinds + 1] = 'unique'
    end
    kinds[#kinds + 1] = 'stats'
    check_kinds(k, kinds, checks)
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

-- Appends an entry with `fields` (a reference entry `{ ENTRY_FIELD, <id> }`, or a plain job's
-- inline entry) to the stream of `priority` (creating streams and groups as needed); returns the
-- entry id. Lua only: pushes a wake-up token for clients blocked on zrq:{q}:wake.
-- The streams known to exist are listed in k.known_streams (a command deletes no stream), so each
-- is asked for once per command.
local function push_entry(k, fields, priority)
    local known = k.known_streams
    if known == nil then
        known = {}
        k.known_streams = known
    end
    local stream = k.stream_at(priority)
    for n = 1, stream == k.stream and 1 or 2 do
        local s = n == 1 and k.stream or stream
        if not known[s] then
            if key_type(s) == 'none' then
                call('XGROUP', 'CREATE', s, GROUP, '0', 'MKSTREAM')
            end
            known[s] = true
        end
    end
    local entry = call('XADD', stream, '*', unpack(fields))
    call('RPUSH', k.wake, '1')
    call('LTRIM', k.wake, itoa(-WAKE_CAP), '-1')
    return entry
end

-- Moves a waiting, scheduled, retrying or dead job (already out of its index) into its stream.
-- Writes its record (packed.save), with whatever else the caller changed in `job` before.
local function make_pending(k, job)
    job.state = 'pending'
    job.entry = push_entry(k, { ENTRY_FIELD, job.id }, job.priority)
    job.run_at = nil
    packed.save(k, job)
    announce(k, job.id, job.state)
end

-- Drops index entries of finished jobs whose retention has passed (mod.rs expire_finished), at
-- most about CORE.promote.BATCH per index: past that many, up to the score of the BATCH-th (its
-- ties go too), so a pile of expired entries (after a long downtime) is worked off in steps.
-- Then the jobs kept in records hashes whose retention has passed (expire_kept). All of these
-- without `kept`; a finish sweeps what its checks cover (check_finish_types): with `kept` (a
-- state) only that state's log, with `false` (a job with its own KEEP) only the indexes.
local expire_finished
do
    -- Drops the jobs of final `state` kept in its records hash whose retention (zrq.keep-ms
    -- after the time of their log entry) has passed (mod.rs expire_kept): up to
    -- CORE.promote.BATCH of them from the head of the log, their fields (HDEL, whether or not
    -- they are there), then the log up to the first entry still kept (one exact XTRIM MINID).
    -- One XRANGE reads the due entries only: an entry is due when its ms is at most now - keep
    -- (an end id of ms alone takes every seq of it).
    local function expire_kept(k, state, now)
        local keep = CONFIG.keep_ms
        if keep < 1 then
            keep = 1
        end
        if now - keep < 0 then
            return
        end
        local log = k.log(state)
        local due = call('XRANGE', log, '-', itoa(now - keep), 'COUNT', itoa(CORE.promote.BATCH))
        local n = #due
        if n == 0 then
            return
        end
        local ids = {}
        for i = 1, n do
            local fields = due[i][2]
            for f = 1, #fields, 2 do
                if fields[f] == 'id' then
                    ids[#ids + 1] = fields[f + 1]
                    break
                end
            end
        end
        if #ids > 0 then
            call('HDEL', k.records(state), unpack(ids))
        end
        call('XTRIM', log, 'MINID', entry_after(due[n][1]))
    end

    expire_finished = function(k, now, kept)
        if kept then
            expire_kept(k, kept, now)
            return
        end
        -- Every FETCH comes here: no table, and the time's text made once.
        local upto = itoa(now)
        for n = 1, 2 do
            local finished = n == 1 and k.completed or k.cancelled
            if #call('ZRANGE', finished, '-inf', upto, 'BYSCORE', 'LIMIT', '0', '1') > 0 then
                local nth = call('ZRANGE', finished, '-inf', upto, 'BYSCORE', 'LIMIT',
                    itoa(CORE.promote.BATCH - 1), '1', 'WITHSCORES')
                call('ZREMRANGEBYSCORE', finished, '-inf', nth[2] or upto)
            end
        end
        if kept == nil then
            expire_kept(k, 'completed', now)
            expire_kept(k, 'cancelled', now)
        end
    end
end

-- What the module's timer does for one queue (promote.rs): due scheduled and retrying jobs (at
-- most 1000 of each) enter their streams, due recurring schedules enqueue their job, and finished
-- jobs past their retention leave their indexes. The library runs it at
-- the start of every FETCH and RECLAIM (docs/LUA.md).
local fire_due_ticks -- defined in 52_ticks.lua
local function promote_due(k, now)
    -- The records read count against zrq.reply-max-bytes: the jobs beyond stay due, for the
    -- next command.
    local budget = new_budget()
    for _, index in ipairs({ k.scheduled, k.retrying }) do
        for _, id in ipairs(call('ZRANGE', index, '-inf', itoa(now), 'BYSCORE', 'LIMIT', '0', itoa(CORE.promote.BATCH))) do
            local job = is_utf8(id) and try_load_job(k, id)
            if not budget.admit(bytes_of(job)) then
                break
            end
            call('ZREM', index, id)
            if job and (job.state == 'scheduled' or job.state == 'retrying') then
                make_pending(k, job)
            end
        end
    end
    fire_due_ticks(k, now)
    expire_finished(k, now)
end

-- Starts a new attempt of `job` for `consumer`: active, attempt + 1, fresh lease and its token
-- `<stream entry>:<attempt>` (mod.rs new_lease: never repeats for a job), the entry being the one
-- it was delivered from: its `entry` field when pending, else the entry of the lease a RECLAIM
-- takes over. The `entry` field goes: FETCH trims the delivered entry (a running job has none).
-- One write of the whole record (a job delivered from its inline entry gets its first).
local function start_attempt(k, job, consumer, now)
    job.state = 'active'
    job.attempt = job.attempt + 1
    job.consumer = consumer
    job.started_at = now
    local entry = job.entry or (job.lease and job.lease:match('^(.*):[^:]*$')) or '0-0'
    job.lease = entry .. ':' .. itoa(job.attempt)
    job.entry = nil
    packed.save(k, job)
    call('ZADD', k.active, itoa(now + job.timeout), job.id)
    announce(k, job.id, job.state)
end

-- Takes the job out of the structure that holds it in the state it leaves (job.state): its
-- stream entry if it is pending (a running job has none), its lease if it is active, the waiting,
-- scheduled or retrying index (k.index_of); DELETE clears every index itself. A job an older zrq
-- delivered runs with its entry still in the group's pending list (and in the stream until a
-- FETCH trims it): acknowledged and deleted. The `entry` goes from `job` only: the caller writes
-- the record once it has made all its changes (or deletes it). (mod.rs unlink)
local function unlink(k, job)
    if job.entry ~= nil then
        local entry = job.entry
        job.entry = nil
        if job.state ~= 'pending' then
            call('XACK', k.stream_at(job.priority), GROUP, entry)
        end
        call('XDEL', k.stream_at(job.priority), entry)
    end
    local index = k.index_of(job.state)
    if index then
        call('ZREM', index, job.id)
    end
end

-- Ends `job` in final state `state` (completed, dead or cancelled) with extra `fields`
-- ({field, value, ...}): unlinked, filed, UNIQUE key freed, counted, announced. (mod.rs
-- finish_one) A completed or cancelled job without a KEEP of its own is kept for the queue's
-- retention in its state's log and records hash (mod.rs keep_in_records): the log entry first
-- (XADD *, field id), whose ms becomes its finished_at (so the record and its entry agree), then
-- its own key deleted (a plain pending job has none) and its record, without the state, written
-- as the hash's field. Else the record is written once, whole, with its retention (SET … PX)
-- unless the job is dead, filed in the state's index; a pending job without a record yet (its
-- inline entry, deleted by unlink) gets its first.
local function finish_one(k, job, state, fields, now)
    unlink(k, job)
    for n = 1, #fields, 2 do
        job[fields[n]] = fields[n + 1]
    end
    job.state = state
    job.finished_at = now
    local keep
    if state ~= 'dead' then
        keep = job.keep or CONFIG.keep_ms
        if keep < 1 then
            keep = 1
        end
    end
    if keep ~= nil and job.keep == nil then
        local key = k.job(job.id)
        -- A job read for its links (load_job's `linked`) has its long fields still in its key,
        -- which goes: read them first.
        local spans = job.spans
        if spans ~= nil then
            for field, span in pairs(spans) do
                if job[field] == nil then
                    job[field] = packed.span(key, span)
                end
            end
            job.spans, job.record_head, job.record_size = nil, nil, nil
        end
        local entry = call('XADD', k.log(state), '*', 'id', job.id)
        job.finished_at = parse_i64(entry:match('^(%d+)')) or now
        if job.place ~= 'entry' then
            call('DEL', key)
        end
        job.place = 'records'
        packed.save(k, job)
        expire_finished(k, now, state)
        keep = nil
    else
        packed.save(k, job, keep)
    end
    if state == 'dead' then
        call('ZADD', k.dead, itoa(now), job.id)
        local excess = call('ZCARD', k.dead) - CONFIG.dead_max
        if excess > 0 then
            for _, victim in ipairs(call('ZRANGE', k.dead, '0', itoa(excess - 1))) do
                call('ZREM', k.dead, victim)
                call('DEL', k.job(victim))
            end
            count_stat(k, 'dropped', itoa(excess))
        end
    elseif keep ~= nil then
        local index = state == 'completed' and k.completed or k.cancelled
        call('ZADD', index, itoa(now + keep), job.id)
        expire_finished(k, now, false)
    end
    if job.unique ~= nil and call('HGET', k.unique, job.unique) == job.id then
        call('HDEL', k.unique, job.unique)
    end
    count_stat(k, state, '1')
    announce(k, job.id, state)
end

local enqueue_job -- defined in 30_enqueue.lua; batch callbacks enqueue a job

--------------------------------------------------------------------------------------------------
-- Workflows (core/src/commands/flow.rs): children waiting on parents, batches.
--------------------------------------------------------------------------------------------------

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

-- The shape zrq keeps a `parents` text in: first the unfinished parents, `"<id>":null` each, then
-- the finished ones with their results in the order they finished. Returns the ids of the leading
-- null entries (ids without `"` or `\`) and the position where the rest starts (the final `}`
-- when there is none); nil for a text that does not start that way. Reads only those entries, not
-- the results after them. (flow.rs pending_parents)
local function pending_parents(text)
    if text == nil or #text < 2 or sub(text, 1, 1) ~= '{' or sub(text, -1) ~= '}' then
        return nil
    end
    local ids, at = {}, 2
    if #text == 2 then
        return ids, at
    end
    while true do
        if sub(text, at, at) ~= '"' then
            return nil
        end
        local close = find(text, '"', at + 1, true)
        if not close then
            return nil
        end
        local id = sub(text, at + 1, close - 1)
        if find(id, '\\', 1, true) then
            return nil
        end
        if sub(text, close + 1, close + 5) ~= ':null' then
            return ids, at
        end
        local after = sub(text, close + 6, close + 6)
        if after == '}' and close + 6 == #text then
            ids[#ids + 1] = id
            return ids, #text
        end
        if after ~= ',' then
            return ids, at
        end
        ids[#ids + 1] = id
        at = close + 7
    end
end

-- Whether the waiting `child` still waits for `parent_id`: one of its parents (a `children` entry
-- can outlive its child, whose id may be taken again by a job with other parents), not counted
-- yet (a parent requeued after it died or was cancelled finishes a second time). (flow.rs awaits)
local function awaits(child, parent_id)
    if contains(id_list(child.parents_done), parent_id) then
        return false
    end
    if child.parents == nil then
        return true
    end
    -- An unfinished parent is among the leading null entries: found without reading results.
    -- Only a text written before that shape (sorted by id) is read whole.
    local pending, rest = pending_parents(child.parents)
    if pending ~= nil then
        if contains(pending, parent_id) then
            return true
        end
        if rest == #child.parents then
            return false
        end
    end
    local entries = object_entries(child.parents)
    if entries == nil then
        -- A record whose parents cannot be read keeps waiting on whatever names it.
        return true
    end
    for _, entry in ipairs(entries) do
        if entry[1] == parent_id then
            return true
        end
    end
    return false
end

-- A character beyond ASCII (one well-formed UTF-8 sequence) as a JSON escape: `\u00e9`, or a
-- surrogate pair beyond U+FFFF. (flow.rs ascii_json)
local function json_escape_char(seq)
    local b1, n = byte(seq, 1), #seq
    local cp = b1 - (n == 2 and 0xC0 or n == 3 and 0xE0 or 0xF0)
    for i = 2, n do
        cp = cp * 64 + (byte(seq, i) - 0x80)
    end
    if cp < 0x10000 then
        return format('\\u%04x', cp)
    end
    cp = cp - 0x10000
    return format('\\u%04x\\u%04x', 0xD800 + floor(cp / 1024), 0xDC00 + cp % 1024)
end

-- A parent's result as it is copied into its WITHRESULTS children: compact JSON with every
-- character beyond ASCII escaped (the same document, cheap to check as UTF-8 for each of
-- children-max children), or 'null' when there is none (or it is not JSON). Computed once per
-- finished parent; `checked` when the result is an ACK's RESULT, already checked as JSON (the
-- module parses it either way). (flow.rs result_json, ascii_json)
local function result_json(result, checked)
    if result ~= nil and (checked or (json_detail(result) == nil and is_utf8(result))) then
        local text = compact_json(result)
        if has_non_ascii(text) then
            text = string.gsub(text, '[\194-\244][\128-\191]*', json_escape_char)
        end
        return text
    end
    return 'null'
end

-- `parents` with `parent_id` moved from the unfinished to the finished entries with `value`; a
-- text not in zrq's shape, or without the parent among the unfinished, is read whole and written
-- back sorted by id. (flow.rs with_result)
local function with_result(parents, parent_id, value)
    local pending, rest = pending_parents(parents)
    if pending ~= nil and contains(pending, parent_id) then
        local parts = {}
        for _, id in ipairs(pending) do
            if id ~= parent_id then
                parts[#parts + 1] = '"' .. id .. '":null'
            end
        end
        local finished = sub(parents, rest, #parents - 1)
        if finished ~= '' then
            parts[#parts + 1] = finished
        end
        parts[#parts + 1] = '"' .. parent_id .. '":' .. value
        return '{' .. table.concat(parts, ',') .. '}'
    end
    local entries = object_entries(parents) or {}
    entries[#entries + 1] = { parent_id, value }
    return json_object(entries)
end

-- Whether a result of `bytes` bytes (as its parent stored it) may be copied into `parents`: the
-- field with it in place of the parent's null stays within zrq.parents-max-bytes.
-- (flow.rs result_fits)
local function result_fits(parents, bytes)
    return math.max(#(parents or '') + bytes - 4, 0) <= CONFIG.parents_max_bytes
end

-- Records in the waiting `child` that `parent` (id, state) is done, with its `result` as the
-- parent stored it (or a function that reads it), of `size` bytes (`cache.json` keeps its
-- result_json across the children of one parent) and, unless it completed, a note on the child;
-- without writing it: the caller writes it once it has counted every parent it counts in this
-- step (write_waiting, which releases it when none is left). The caller checked that the child
-- awaits this parent. A WITHRESULTS child's `parents` stays within zrq.parents-max-bytes: a
-- result that would take it beyond is copied as null, and the child's `error` says so.
-- (flow.rs parent_done)
local function parent_done(child, parent, result, size, cache)
    local note = nil
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
    if child.with_results == 1 then
        -- A result that does not fit as stored is not read at all; one that does fits once
        -- written as ASCII JSON too, or is not copied either.
        local value
        if result_fits(child.parents, size) then
            if cache.json == nil then
                if type(result) == 'function' then
                    result = result()
                end
                cache.json = result_json(result, parent.checked)
            end
            if result_fits(child.parents, #cache.json) then
                value = cache.json
            end
        end
        if value == nil then
            value = 'null'
            note = 'result of parent ' .. parent.id .. " not copied: the parents' results would pass "
                .. itoa(CONFIG.parents_max_bytes) .. ' bytes (zrq.parents-max-bytes)'
        end
        child.parents = with_result(child.parents, parent.id, value)
    end
    if note ~= nil then
        child.error = note
    end
end

-- Writes a waiting `child` after parent_done counted its parents: released to its stream when it
-- waits for none any more, else its record as it now is. (flow.rs write_waiting)
local function write_waiting(k, child)
    if child.waiting_on == 0 then
        call('ZREM', k.waiting, child.id)
        make_pending(k, child)
    else
        packed.save(k, child)
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
    call('PEXPIRE', key, itoa(CONFIG.keep_ms))
end

-- Settles everything that depended on `job`, which has just finished with `result`: waiting
-- children (released, or cancelled in cascade) and its batch. (flow.rs settle)
local function settle(k, job, result, now)
    local work = { { id = job.id, state = job.state, result = result or job.result,
        checked = result ~= nil, children = id_list(job.children), batch = job.batch } }
    while #work > 0 do
        local done = table.remove(work)
        if done.batch ~= nil then
            count_in_batch(k, done.batch, done.state == 'completed', now)
        end
        -- The result is read once, not once per child: a parent may have children-max of them.
        local cache = {}
        for _, child_id in ipairs(done.children) do
            -- Read for its links (a parent has at most children-max children, each at most a
            -- payload-max record with its links): a long payload, result or error is left in the
            -- record, and a child that is counted is written by patching what follows its
            -- payload (load_job's `linked`, packed.save).
            local child = try_load_job(k, child_id, true)
            if child and child.state == 'waiting' and awaits(child, done.id) then
                local failed = done.state ~= 'completed'
                if failed and child.on_parent_fail ~= 'run' then
                    finish_one(k, child, 'cancelled', { 'error', parent_ended(done) }, now)
                    work[#work + 1] = { id = child.id, state = child.state, children = id_list(child.children),
                        batch = child.batch }
                else
                    parent_done(child, done, done.result, done.result and #done.result or 0, cache)
                    write_waiting(k, child)
                end
            end
        end
    end
end

--------------------------------------------------------------------------------------------------
-- Ending a job (core/src/commands/mod.rs finish, failed_attempt): after flow.rs, whose
-- settle it calls.
--------------------------------------------------------------------------------------------------

-- Ends `job` in `state` and settles what depended on it. (mod.rs finish)
local function finish(k, job, state, fields, now)
    finish_one(k, job, state, fields, now)
    if job.children == nil and job.batch == nil then
        -- Nothing depends on it (most jobs): nothing to settle.
        return
    end
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
    count_stat(k, 'failed', '1')
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
-- ACL checks up front (the module checks its keys natively; docs/ACL.md).
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
        { false, 'GET', k.stats },
        { false, 'GETRANGE', k.stats, '0', '0' },
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
        { true, 'SETRANGE', k.paused, '0', '1' },
        { true, 'PEXPIRE', k.stats, '1' },
        { true, 'RPUSH', k.wake, '1' },
        { true, 'LTRIM', k.wake, '0', '1' },
        { true, 'XGROUP', 'CREATE', k.stream, GROUP, '0', 'MKSTREAM' },
        { true, 'XGROUP', 'DELCONSUMER', k.stream, GROUP, 'c' },
        { true, 'XGROUP', 'SETID', k.stream, GROUP, '0-0' },
        { true, 'XADD', k.stream, '*', 'f', 'v' },
        { true, 'XACK', k.stream, GROUP, '0-1' },
        { true, 'XDEL', k.stream, '0-1' },
        { true, 'XREADGROUP', 'GROUP', GROUP, 'c', 'STREAMS', k.stream, '>' },
        { true, 'XTRIM', k.stream, 'MINID', '0-1' },
        { true, 'ZADD', k.active, '0', 'm' },
        { true, 'ZREM', k.active, 'm' },
        { true, 'ZREMRANGEBYSCORE', k.active, '0', '0' },
    }
end

-- Fails with NOPERM unless the caller may run every command `function_name` can call on the keys
-- of `queue` (the reads only for a read-only function). The probes of the last queue checked are
-- kept (commands come in runs on one queue); the checks themselves run every time.
local check_acl
do
    local last_queue, last_probes, last_all, last_reads
    local check -- redis.acl_check_cmd, looked up once (at call time: not there at load time)

    -- Whether the caller may run `probe` (acl_probes), its arguments passed one by one.
    local function allowed(probe)
        local n = #probe
        if n == 2 then
            return check(probe[2])
        elseif n == 3 then
            return check(probe[2], probe[3])
        elseif n == 4 then
            return check(probe[2], probe[3], probe[4])
        elseif n == 5 then
            return check(probe[2], probe[3], probe[4], probe[5])
        elseif n == 6 then
            return check(probe[2], probe[3], probe[4], probe[5], probe[6])
        end
        return check(unpack(probe, 2))
    end

    -- The probes (the reads only with `readonly`) grouped by their number of arguments, 1 to 7:
    -- group[n] holds the arguments of its probes one after the other, so the quick check below
    -- runs as plain loops (no call, table or dispatch per probe: the checks run on every call).
    local function grouped(probes, readonly)
        local groups = { {}, {}, {}, {}, {}, {}, {} }
        for n = 1, #probes do
            local probe = probes[n]
            if not (readonly and probe[1]) then
                local group = groups[#probe - 1]
                for i = 2, #probe do
                    group[#group + 1] = probe[i]
                end
            end
        end
        return groups
    end

    -- Whether every probe of `groups` is allowed. Its order is not the list's: on a denial,
    -- check_acl goes through the list in order to name the first denied command.
    local function all_allowed(groups)
        local a = groups[1]
        for i = 1, #a do
            if not check(a[i]) then
                return false
            end
        end
        a = groups[2]
        for i = 1, #a, 2 do
            if not check(a[i], a[i + 1]) then
                return false
            end
        end
        a = groups[3]
        for i = 1, #a, 3 do
            if not check(a[i], a[i + 1], a[i + 2]) then
                return false
            end
        end
        a = groups[4]
        for i = 1, #a, 4 do
            if not check(a[i], a[i + 1], a[i + 2], a[i + 3]) then
                return false
            end
        end
        a = groups[5]
        for i = 1, #a, 5 do
            if not check(a[i], a[i + 1], a[i + 2], a[i + 3], a[i + 4]) then
                return false
            end
        end
        a = groups[6]
        for i = 1, #a, 6 do
            if not check(a[i], a[i + 1], a[i + 2], a[i + 3], a[i + 4], a[i + 5]) then
                return false
            end
        end
        a = groups[7]
        for i = 1, #a, 7 do
            if not check(a[i], a[i + 1], a[i + 2], a[i + 3], a[i + 4], a[i + 5], a[i + 6]) then
                return false
            end
        end
        return true
    end

    check_acl = function(function_name, queue, readonly)
        check = check or redis.acl_check_cmd
        if queue ~= last_queue then
            last_probes, last_queue = acl_probes(queue_keys(queue)), queue
            last_all, last_reads = grouped(last_probes, false), grouped(last_probes, true)
        end
        if all_allowed(readonly and last_reads or last_all) then
            return
        end
        local probes = last_probes
        for n = 1, #probes do
            local probe = probes[n]
            if not (readonly and probe[1]) and not allowed(probe) then
                local what = probe[2] == 'XGROUP' and ('XGROUP ' .. probe[3]) or probe[2]
                fail('NOPERM', function_name .. " needs " .. what .. " on the keys of queue '" .. show_arg(queue)
                    .. "' (zrq:{" .. show_arg(queue) .. "}:*), which this user may not run; see docs/ACL.md")
            end
        end
    end
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

-- Registers `handler` as FCALL function `function_name`, flagged as the command table says
-- (COMMANDS, generated from core/src/spec.rs): read-only commands are `no-writes`; write commands
-- that the module does not flag `deny-oom` are `allow-oom`, as in the module. A function missing
-- from the table fails the library's load (indexing nil).
local function register(function_name, handler)
    local command = COMMANDS[function_name]
    local flags = {}
    if command.readonly then
        flags = { 'no-writes' }
    elseif not command.deny_oom then
        flags = { 'allow-oom' }
    end
    local checked = function(keys, argv)
        if #keys == 1 then
            check_acl(function_name, keys[1], command.readonly)
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

--------------------------------------------------------------------------------------------------
-- Paged reads (core/src/commands/mod.rs paging, core/src/store.rs): cursors, sorted set
-- ranges, undelivered stream entries.
--------------------------------------------------------------------------------------------------

-- Up to `count` members of a sorted set from rank `start` (store.rs zrange).
local function zrange(key, start, count)
    if count <= 0 then
        return {}
    end
    local out = {}
    for _, member in ipairs(call('ZRANGE', key, itoa(start), itoa(start + count - 1))) do
        if is_utf8(member) then
            out[#out + 1] = member
        end
    end
    return out
end

-- A cursor that is a rank in a sorted set: an integer from 0 (mod.rs rank_cursor).
local function rank_cursor(raw)
    return integer('CURSOR', raw, 0, 9223372036854775807, '9223372036854775807')
end

-- A `pending` cursor: '0', or '<priority>:<ms>-<seq>' (at most 19 digits each) as a previous
-- page returned it; returns nil (start) or { priority, entry }. (list.rs pending_cursor)
local function pending_cursor(raw)
    if raw == '0' then
        return nil
    end
    local priority, ms, seq = raw:match('^(%d):(%d+)%-(%d+)$')
    if not priority or #ms > 19 or #seq > 19 or tonumber(priority) > MAX_PRIORITY then
        fail('ERR', "CURSOR must be 0 or <priority>:<entry-id> as returned by ZRQ.LIST pending, got '"
            .. show_arg(raw) .. "'")
    end
    return { tonumber(priority), ms .. '-' .. seq }
end

-- COUNT (1..1000, default 10) and CURSOR (read by `read_cursor`, `start` when not given) of
-- paged commands (mod.rs paging).
local function paging(args, first, start, read_cursor)
    local count, cursor = CORE.paging.DEFAULT_COUNT, start
    for option, value in options(args, first, CORE.paging.OPTIONS) do
        if option == 'COUNT' then
            count = integer('COUNT', value, 1, MAX_COUNT)
        else
            cursor = read_cursor(value)
        end
    end
    return count, cursor
end

-- The next cursor of a page of a sorted set listed by rank: '0' at the end (mod.rs next_rank).
local function next_rank(cursor, count, total)
    local next_cursor = cursor + count
    if next_cursor >= total then
        next_cursor = 0
    end
    return itoa(next_cursor)
end

-- The jobs behind `ids` as replies, in order, skipping ids whose record is gone, until the
-- budget ends the page; and how many ids the page covered (mod.rs load_jobs). With `load`, the
-- n-th job is load(n) instead of load_job(k, ids[n]).
local function load_jobs(k, ids, load)
    local out, budget = {}, new_budget()
    for n, id in ipairs(ids) do
        local job
        if load then
            job = load(n)
        else
            job = load_job(k, id)
        end
        if job then
            if not budget.admit(text_bytes(job)) then
                return out, n - 1
            end
            out[#out + 1] = job_reply(job)
        end
    end
    return out, #ids
end

-- Whether stream entry id `a` comes before `b` (`<ms>-<seq>`, compared as numbers of any size).
local function entry_before(a, b)
    local function number_less(x, y)
        x, y = x:gsub('^0+', ''), y:gsub('^0+', '')
        if #x ~= #y then
            return #x < #y
        end
        return byte_less(x, y)
    end
    local a_ms, a_seq = a:match('^(%d+)%-(%d+)$')
    local b_ms, b_seq = b:match('^(%d+)%-(%d+)$')
    if a_ms ~= b_ms and (number_less(a_ms, b_ms) or number_less(b_ms, a_ms)) then
        return number_less(a_ms, b_ms)
    end
    return number_less(a_seq, b_seq)
end

-- Entries of a stream not yet delivered to the group (store.rs undelivered_len): its length,
-- less the entries of jobs an older zrq delivered (in the group's pending list, which FETCH
-- no longer fills) while the stream still holds them. The first FETCH that delivers trims them
-- all (they precede what it delivers), so the stream's first entry tells which.
local function undelivered_len(stream)
    local length = call('XLEN', stream)
    local summary = call('XPENDING', stream, GROUP)
    local pending, newest = summary[1], summary[3]
    if pending == 0 or type(newest) ~= 'string' then
        return length
    end
    local first = call('XRANGE', stream, '-', '+', 'COUNT', '1')[1]
    if first and not entry_before(newest, first[1]) then
        return length - pending
    end
    return length
end

-- The stream entry id just before `id` (`<ms>-<seq>`, numbers of any size): what a group's
-- last-delivered id is set to so that `id` is delivered next (store.rs entry_before).
local function entry_before_id(id)
    local ms, seq = id:match('^(%d+)%-(%d+)$')
    local function minus_one(digits)
        local i = #digits
        while sub(digits, i, i) == '0' do
            i = i - 1
        end
        local out = sub(digits, 1, i - 1) .. string.char(byte(digits, i) - 1) .. string.rep('9', #digits - i)
        out = out:gsub('^0+', '')
        return out == '' and '0' or out
    end
    if find(seq, '[1-9]') then
        return ms:gsub('^0+(%d)', '%1') .. '-' .. minus_one(seq)
    elseif find(ms, '[1-9]') then
        return minus_one(ms) .. '-18446744073709551615'
    end
    return '0-0'
end

-- Up to `count` entries not delivered to the group of the stream of `priority`, after entry
-- `after` if given: a list of { entry id, job id, the entry's fields }, the job id being the one a
-- reference entry names (one that is not UTF-8 is left out) or an inline entry's generated id.
-- (store.rs undelivered)
local function undelivered_entries(k, priority, after, count)
    local stream = k.stream_at(priority)
    local start = call('XPENDING', stream, GROUP)[3]
    if type(start) ~= 'string' or (after and entry_before(start, after)) then
        start = after
    end
    local out = {}
    local entries = call('XRANGE', stream, start and ('(' .. start) or '-', '+', 'COUNT', itoa(count))
    for _, entry in ipairs(entries) do
        local fields = entry[2] or {}
        local reference = inline.reference(fields)
        if reference == false then
            out[#out + 1] = { entry[1], inline.id(priority, entry[1]), fields }
        elseif reference then
            out[#out + 1] = { entry[1], reference, fields }
        end
    end
    return out
end

--------------------------------------------------------------------------------------------------
-- Job options (core/src/commands/enqueue.rs): their defaults and how each is read, shared by
-- ENQUEUE, BATCH and SCHEDULE.
--------------------------------------------------------------------------------------------------

-- Reads one job option into `spec` (enqueue.rs set_option, same checks in the same order).
local function set_enqueue_option(spec, option, value)
    local function conflicting(first, second)
        fail('ERR', 'options ' .. first .. ' and ' .. second .. ' cannot be combined')
    end
    local timed = spec.delay ~= nil or spec.at ~= nil
    if option == 'ID' then
        spec.id = name('ID', value)
        -- Generated ids name stream entries (17_job.lua inline.entry): a chosen one could take
        -- the id of a job to come. The id is quoted whole (error.rs reserved_id): it is of digits,
        -- `p`, `:` and `-` only.
        if inline.has_form(spec.id) then
            fail('ERR', "ID must not have the form of a generated job id, got '" .. spec.id .. "'")
        end
    elseif option == 'RETRIES' then
        spec.retries = integer('RETRIES', value, 0, MAX_RETRIES)
    elseif option == 'TIMEOUT' then
        spec.timeout = integer('TIMEOUT', value, 1, MAX_DURATION_MS)
    elseif (option == 'DELAY' or option == 'AT') and timed then
        conflicting('DELAY', 'AT')
    elseif (option == 'DELAY' or option == 'AT') and #spec.after > 0 then
        conflicting(option, 'AFTER')
    elseif option == 'AFTER' and timed then
        conflicting(spec.delay ~= nil and 'DELAY' or 'AT', 'AFTER')
    elseif option == 'AFTER' then
        local parent = name('AFTER', value)
        spec.after_given = (spec.after_given or 0) + 1
        if spec.after_given > CONFIG.after_max then
            limit('more than ' .. itoa(CONFIG.after_max) .. ' AFTER options', 'after-max', CONFIG.after_max)
        end
        -- Each parent once, in the order first given; a set finds repeats in constant time.
        spec.after_seen = spec.after_seen or {}
        if not spec.after_seen[parent] then
            spec.after_seen[parent] = true
            spec.after[#spec.after + 1] = parent
        end
    elseif option == 'WITHRESULTS' then
        spec.with_results = true
    elseif option == 'ONPARENTFAIL' then
        spec.on_parent_fail = one_of('ONPARENTFAIL', value, CORE.enqueue.PARENT_FAIL_POLICIES)
    elseif option == 'DELAY' then
        spec.delay = integer('DELAY', value, 0, MAX_DURATION_MS)
    elseif option == 'AT' then
        spec.at = integer('AT', value, 0, CORE.enqueue.MAX_AT_MS)
    elseif option == 'BACKOFF' then
        spec.backoff = integer('BACKOFF', value, 0, MAX_DURATION_MS)
    elseif option == 'PRIORITY' then
        spec.priority = integer('PRIORITY', value, 0, MAX_PRIORITY)
    elseif option == 'UNIQUE' then
        spec.unique = name('UNIQUE', value)
    elseif option == 'KEEP' then
        spec.keep = integer('KEEP', value, 1, MAX_DURATION_MS)
    else
        fail('ERR', "unknown option '" .. show_arg(option) .. "'")
    end
end

--------------------------------------------------------------------------------------------------
-- Cron expressions (core/src/cron.rs), for recurring schedules (27_definition.lua).
--------------------------------------------------------------------------------------------------

-- What the other files use: bad_cron(detail) raises the CRON error, cron_parse(text) reads an
-- expression, cron_next_after(cron, after) finds its next minute; the rest is private.
local bad_cron, cron_parse, cron_next_after
do
    local MINUTE_MS = 60000
    local DAY_MS = 86400000

    bad_cron = function(detail)
        fail('ERR', 'CRON expression is invalid: ' .. detail)
    end

    -- Rust's u32 parse: optional '+' (no '-'), digits, at most 4294967295. Returns the number or nil.
    local function parse_u32(text)
        local value = sub(text, 1, 1) ~= '-' and parse_i64(text)
        if not value or value > 4294967295 then
            return nil
        end
        return value
    end

    -- One cron field: a set of allowed values, and whether it is restricted (not '*').
    local function cron_field(text, field_name, min, max)
        local set = {}
        for part in (text .. ','):gmatch('([^,]*),') do
            local function bad()
                bad_cron(field_name .. " field '" .. show_arg(part) .. "' must be within " .. min .. '-' .. max)
            end
            local range, step = part, 1
            local slash = find(part, '/', 1, true)
            if slash then
                range = sub(part, 1, slash - 1)
                step = parse_u32(sub(part, slash + 1))
                if not step or step == 0 then
                    bad()
                end
            end
            local low, high
            if range == '*' then
                low, high = min, max
            else
                local dash = find(range, '-', 1, true)
                if dash then
                    low, high = parse_u32(sub(range, 1, dash - 1)), parse_u32(sub(range, dash + 1))
                    if not low or not high then
                        bad()
                    end
                else
                    low = parse_u32(range)
                    if not low then
                        bad()
                    end
                    high = slash and max or low
                end
            end
            if low < min or high > max or low > high then
                bad()
            end
            local value = low
            while value <= high do
                set[value] = true
                value = value + step
            end
        end
        return set, text ~= '*'
    end

    cron_parse = function(text)
        local fields = {}
        for word in text:gmatch('[^ \t\n\f\r]+') do
            fields[#fields + 1] = word
        end
        if #fields ~= 5 then
            bad_cron('expected 5 fields (minute hour day-of-month month day-of-week), got ' .. #fields)
        end
        local cron = {}
        cron.minutes = cron_field(fields[1], 'minute', 0, 59)
        cron.hours = cron_field(fields[2], 'hour', 0, 23)
        cron.days, cron.days_restricted = cron_field(fields[3], 'day-of-month', 1, 31)
        cron.months = cron_field(fields[4], 'month', 1, 12)
        cron.weekdays, cron.weekdays_restricted = cron_field(fields[5], 'day-of-week', 0, 7)
        if cron.weekdays[7] then
            cron.weekdays[0] = true
        end
        return cron
    end

    -- Days since 1970-01-01 <-> civil dates (Howard Hinnant's algorithms, as cron.rs).
    local function civil_from_days(days)
        local z = days + 719468
        local era = floor(z / 146097)
        local doe = z - era * 146097
        local yoe = floor((doe - floor(doe / 1460) + floor(doe / 36524) - floor(doe / 146096)) / 365)
        local doy = doe - (365 * yoe + floor(yoe / 4) - floor(yoe / 100))
        local mp = floor((5 * doy + 2) / 153)
        local day = doy - floor((153 * mp + 2) / 5) + 1
        local month = mp < 10 and mp + 3 or mp - 9
        local year = yoe + era * 400 + (month <= 2 and 1 or 0)
        return year, month, day
    end

    local function days_from_civil(year, month, day)
        if month <= 2 then
            year = year - 1
        end
        local era = floor(year / 400)
        local yoe = year - era * 400
        local doy = floor((153 * (month > 2 and month - 3 or month + 9) + 2) / 5) + day - 1
        local doe = yoe * 365 + floor(yoe / 4) - floor(yoe / 100) + doy
        return era * 146097 + doe - 719468
    end

    -- The first matching minute strictly after `after` (unix ms), or nil within ten years.
    cron_next_after = function(cron, after)
        local t = floor(after / MINUTE_MS) * MINUTE_MS + MINUTE_MS
        local limit = after + 10 * 366 * DAY_MS
        while t <= limit do
            local days = floor(t / DAY_MS)
            local year, month, day = civil_from_days(days)
            local weekday = (days + 4) % 7
            local by_day, by_weekday = cron.days[day] == true, cron.weekdays[weekday] == true
            local day_ok
            if cron.days_restricted and cron.weekdays_restricted then
                day_ok = by_day or by_weekday
            elseif cron.days_restricted then
                day_ok = by_day
            elseif cron.weekdays_restricted then
                day_ok = by_weekday
            else
                day_ok = true
            end
            local minute_of_day = floor((t - days * DAY_MS) / MINUTE_MS)
            local hour, minute = floor(minute_of_day / 60), minute_of_day % 60
            if not cron.months[month] then
                if month == 12 then
                    t = days_from_civil(year + 1, 1, 1) * DAY_MS
                else
                    t = days_from_civil(year, month + 1, 1) * DAY_MS
                end
            elseif not day_ok then
                t = (days + 1) * DAY_MS
            elseif not cron.hours[hour] then
                t = days * DAY_MS + (hour + 1) * 60 * MINUTE_MS
            elseif not cron.minutes[minute] then
                t = t + MINUTE_MS
            else
                return t
            end
        end
        return nil
    end
end

--------------------------------------------------------------------------------------------------
-- Recurring schedules (core/src/commands/schedule.rs, schedules.rs, unschedule.rs, core/src/cron.rs).
-- A definition is JSON in zrq:{q}:schedules (name -> definition); its next run is its score in
-- zrq:{q}:ticks. Due ticks fire inside FETCH (promote_due), so a tick fires exactly once however
-- many workers fetch.
--------------------------------------------------------------------------------------------------

-- A definition's next run after `due` when it is `now` (schedule.rs next_run). An EVERY period
-- is at least zrq.every-min-ms: a schedule stored with a shorter one (by the module, its config
-- lowered then) runs at the minimum, its stored period unchanged.
local function next_run(definition, due, now)
    if definition.every ~= nil then
        if definition.every < 1 then
            return nil -- a stored period below 1 (not written by zrq) never runs again
        end
        local every = math.max(definition.every, CONFIG.every_min_ms)
        local behind = floor(math.max(now - due, 0) / every)
        return due + every * (behind + 1)
    elseif definition.cron ~= nil then
        local ok, cron = pcall(cron_parse, definition.cron)
        if not ok then
            return nil
        end
        return cron_next_after(cron, now)
    end
    return nil
end

-- Definitions as serde_json writes them (schedule.rs Definition, field order kept).
local DEFINITION_FIELDS = { { 'name', 'text' }, { 'every', 'integer', true }, { 'cron', 'text', true },
    { 'task', 'text' }, { 'payload', 'text' }, { 'retries', 'integer' }, { 'timeout', 'integer' },
    { 'priority', 'integer' }, { 'backoff', 'integer', true }, { 'unique', 'text', true },
    { 'keep', 'integer', true }, { 'last_run', 'integer', true } }

local function definition_json(definition)
    local parts = {}
    for _, f in ipairs(DEFINITION_FIELDS) do
        local value = definition[f[1]]
        if value ~= nil then
            local text = f[2] == 'integer' and itoa(value) or json_string(value)
            parts[#parts + 1] = json_string(f[1]) .. ':' .. text
        end
    end
    return '{' .. table.concat(parts, ',') .. '}'
end

-- Reads a stored definition; an unreadable one is CORRUPT (the detail differs from serde's).
local function definition_from_json(key, text)
    local ok, decoded = pcall(cjson.decode, text)
    if not ok or type(decoded) ~= 'table' then
        fail('CORRUPT', "'" .. key .. "' is not a zrq record: not a schedule definition")
    end
    local definition = {}
    for _, f in ipairs(DEFINITION_FIELDS) do
        local value = decoded[f[1]]
        if value == cjson.null then
            value = nil
        end
        local wanted = f[2] == 'integer' and 'number' or 'string'
        if value == nil and not f[3] then
            fail('CORRUPT', "'" .. key .. "' is not a zrq record: missing field `" .. f[1] .. '`')
        end
        if value ~= nil and (type(value) ~= wanted or (wanted == 'number' and value ~= floor(value))) then
            fail('CORRUPT', "'" .. key .. "' is not a zrq record: invalid type for `" .. f[1] .. '`')
        end
        definition[f[1]] = value
    end
    -- The values must pass the checks ZRQ.SCHEDULE applies to its arguments (schedule.rs
    -- invalid_field): a stored priority names a stream key, a stored task is written into jobs.
    local function within(v, min, max) return v >= min and v <= max end
    local function optional(v, min) return v == nil or within(v, min, MAX_DURATION_MS) end
    local d = definition
    local checks = {
        { 'name', is_name('name', d.name) },
        { 'every', optional(d.every, 1) },
        { 'cron', (d.cron == nil or pcall(cron_parse, d.cron)) and ((d.every ~= nil) ~= (d.cron ~= nil)) },
        { 'task', is_name('task', d.task) },
        { 'payload', is_utf8(d.payload) and json_detail(d.payload) == nil },
        { 'retries', within(d.retries, 0, MAX_RETRIES) },
        { 'timeout', within(d.timeout, 1, MAX_DURATION_MS) },
        { 'priority', within(d.priority, 0, MAX_PRIORITY) },
        { 'backoff', optional(d.backoff, 0) },
        { 'unique', d.unique == nil or is_name('unique', d.unique) },
        { 'keep', optional(d.keep, 1) },
    }
    for _, check in ipairs(checks) do
        if not check[2] then
            fail('CORRUPT', "'" .. key .. "' is not a zrq record: invalid value for `" .. check[1] .. '`')
        end
    end
    return definition
end

--------------------------------------------------------------------------------------------------
-- zrq_schedule: ZRQ.SCHEDULE <queue> <name> EVERY <ms> | CRON <expr> <task> <payload>
--               [RETRIES|TIMEOUT|BACKOFF|PRIORITY|UNIQUE|KEEP <v>]          (commands/schedule.rs)
-- KEYS[1] the queue; ARGV name, EVERY <1.. ms> or CRON "<min hour dom month dow>" (UTC), the
--         job's task and payload, job options.
-- Reply   the first run (unix ms). Redefining a name replaces it.
-- Errors  ERR (arity, names, kind, EVERY, CRON, options), BADJSON, WRONGTYPE, INTERNAL.
-- Not in Lua: the module's timer fires due ticks; with Lua, FETCH on the queue does.
--------------------------------------------------------------------------------------------------

do -- 30_enqueue.lua: its locals are its own
--------------------------------------------------------------------------------------------------
-- zrq_enqueue: ZRQ.ENQUEUE <queue> <task> <payload> [ID <id>] [RETRIES <n>] [TIMEOUT <ms>]
--              [DELAY <ms> | AT <unix-ms>] [BACKOFF <ms>] [PRIORITY <0-9>] [UNIQUE <key>]
--              [KEEP <ms>] [AFTER <id> ...] [WITHRESULTS] [ONPARENTFAIL cancel|run]
--   (core/src/commands/enqueue.rs)
--
-- KEYS[1]  the queue
-- ARGV     task, payload (JSON), then options: ID <id>; RETRIES <0..1000> (default 3);
--          TIMEOUT <1..315360000000 ms> (default 30000); DELAY <ms> or AT <unix ms> (not with
--          AFTER); BACKOFF <ms>; PRIORITY <0..9> (default 0); UNIQUE <key>; KEEP <1.. ms>;
--          AFTER <parent id> (repeatable; parents of the same queue); WITHRESULTS;
--          ONPARENTFAIL cancel|run
-- Reply    the job id (bulk string): for a plain job (no ID, DELAY, AT nor AFTER) the id of its
--          stream entry, `<ms>-<seq>`, prefixed `p<n>:` for priority n > 0;
--          else the given ID or a new UUIDv7. An ID that exists (its key, or a field of a
--          records hash of finished jobs) returns that id and writes nothing; a UNIQUE key held
--          by an unfinished job returns that job's id.
-- Writes   plain: XADD zrq:{q}:stream[:<priority>] * task <t> payload <p> [the options that
--          differ from their defaults, in the record's order] (an inline entry: no record while
--          it is pending); pending with ID: XADD … * job <id>; (XGROUP CREATE … MKSTREAM first);
--          scheduled (DELAY/AT in the future): ZADD zrq:{q}:scheduled <due> <id>;
--          waiting (AFTER): ZADD zrq:{q}:waiting <now> <id>, and `children` on each unfinished
--          parent (SET of its whole record … KEEPTTL, or SETRANGE of what follows its payload
--          for a record read in parts, see packed.save; one held by its inline entry gets its
--          first), the job's record written once its finished parents are counted;
--          SET zrq:{q}:job:<id> <packed record> KEEPTTL (but for a plain job), HSET
--          zrq:{q}:unique <key> <id>, HINCRBY
--          zrq:{q}:stats enqueued 1, PUBLISH zrq:{q}:events "<state> <id>"; Lua only: RPUSH
--          zrq:{q}:wake 1 (capped at 128 tokens) whenever a job enters a stream.
-- Errors   ERR (arity, names, options, numbers, conflicting options, AFTER itself, an ID of the
--          form of a generated id), BADJSON (payload), NOJOB (AFTER names a job that does not
--          exist), LIMIT (sizes, AFTER count, a parent's children), WRONGTYPE, CORRUPT, INTERNAL.
-- Not in Lua: the module's server-side timer promotes due scheduled jobs; with Lua the client
-- does (see docs/LUA.md).
--------------------------------------------------------------------------------------------------

-- The fields of a plain job's inline entry as XADD arguments: the compact record's fields, in
-- their order, but those ENTRY_DERIVED (its place says them; job.rs `Job::entry_fields`).
local inline_fields
do
    -- The fields an inline entry may hold (stored, not ENTRY_DERIVED) in the record's order,
    -- made on first use. Every plain ENQUEUE comes here: no field the entry leaves out is
    -- written as text, and no list is made but the one returned.
    local names

    inline_fields = function(job)
        if names == nil then
            names = {}
            for i = 1, #FIELDS do
                local name = FIELDS[i][1]
                if not IS_DERIVED[name] and not ENTRY_DERIVED[name] then
                    names[#names + 1] = name
                end
            end
        end
        return job_fields_args(job, names)
    end
end

-- Refuses a child that would take an unfinished `parent`'s list of children beyond
-- zrq.children-max (a parent's finish settles each child in the same step, so the list bounds
-- that step's work). A finished parent is counted at once and keeps no list.
-- (enqueue.rs check_children)
local function check_children(parent, child)
    if IS_FINAL[parent.state] then
        return
    end
    local children = id_list(parent.children)
    parent.children_list = children -- read once: wait_for appends to it
    if #children >= CONFIG.children_max and not contains(children, child) then
        limit("parent '" .. parent.id .. "' has " .. itoa(#children) .. ' children already', 'children-max',
            CONFIG.children_max)
    end
end

-- A waiting job's parents: a dead or cancelled one cancels it (unless ONPARENTFAIL run);
-- unfinished ones list it among their children; finished ones count at once.
-- (enqueue.rs wait_for)
local function wait_for(k, spec, job, parents, now)
    if spec.on_parent_fail ~= 'run' then
        for _, parent in ipairs(parents) do
            if parent.state == 'dead' or parent.state == 'cancelled' then
                finish(k, job, 'cancelled', { 'error', parent_ended(parent) }, now)
                return
            end
        end
    end
    for _, parent in ipairs(parents) do
        if not IS_FINAL[parent.state] then
            local children = parent.children_list or id_list(parent.children)
            -- Listed once: the id of a deleted child can be taken again by a new one.
            if not contains(children, job.id) then
                children[#children + 1] = job.id
                parent.children = json_id_list(children)
                -- A pending parent still held by its inline entry gets its first record here.
                packed.save(k, parent)
            end
        end
    end
    for _, parent in ipairs(parents) do
        if IS_FINAL[parent.state] then
            -- A completed parent's result is copied (WITHRESULTS) when it fits in the child's
            -- `parents`: a long one the parent was read without (load_job's `linked`) is read
            -- only then.
            local result, size = nil, 0
            if job.with_results == 1 and parent.state == 'completed' then
                local span = parent.spans and parent.spans.result
                if span ~= nil then
                    local key = k.job(parent.id)
                    result = function()
                        return packed.span(key, span)
                    end
                    size = span[2]
                elseif parent.result ~= nil then
                    result, size = parent.result, #parent.result
                end
            end
            parent_done(job, parent, result, size, {})
        end
    end
    write_waiting(k, job)
end

-- Adds the job described by `spec` (task, payload and options) unless its id or UNIQUE key is
-- taken; returns the job's id. A plain job (no ID, DELAY, AT nor AFTER) is only its inline entry,
-- its id generated from the entry's; the others get a record, with the given ID or a new UUIDv7.
-- (enqueue.rs apply, is_plain)
enqueue_job = function(k, spec, now, sec, usec)
    spec.after = spec.after or {}
    local due = spec.at
    if due == nil and spec.delay ~= nil then
        due = now + spec.delay
    end
    local scheduled = due ~= nil and due > now
    local plain = spec.id == nil and spec.delay == nil and spec.at == nil and #spec.after == 0
    local id = spec.id
    if not plain then
        id = id or new_id(k.queue, sec or floor(now / 1000), usec or (now % 1000) * 1000)
        local job_key = k.job(id)
        -- BATCH checks the queue's keys once for all its members (spec.queue_checked).
        -- A record exists as a packed string or a hash of the earlier format.
        local found = key_type(job_key)
        if found == 'string' or found == 'hash' then
            return id
        elseif found ~= 'none' then
            fail('WRONGTYPE', "key '" .. job_key .. "' holds a " .. found .. ', zrq expects a string')
        end
        -- A finished job kept in a records hash holds its id too, until its retention ends or it
        -- is deleted (a records key of another type is WRONGTYPE, asked only when HGET fails).
        for _, state in ipairs({ 'completed', 'cancelled' }) do
            local _, kept = packed.kept_raw(k, id, state)
            if kept then
                return id
            end
        end
    end
    if spec.unique ~= nil then
        if not spec.queue_checked then
            check_types({ { k.unique, 'hash' } })
        end
        local holder = call('HGET', k.unique, spec.unique)
        if type(holder) == 'string' and is_utf8(holder) then
            local held = try_load_job(k, holder)
            if held and not IS_FINAL[held.state] then
                return holder
            end
        end
    end
    local parents = {}
    for _, parent in ipairs(spec.after) do
        if parent == id then
            fail('ERR', "job '" .. id .. "' cannot run AFTER itself")
        end
        -- Read for its links (after-max parents; a long payload, result or error is left in the
        -- record, see load_job's `linked`): an unfinished parent gets the child in its list of
        -- children, a patch of its record; a completed one's result may be copied (read and
        -- checked then).
        local job = load_job(k, parent, true)
        if not job then
            fail('NOJOB', "AFTER names job '" .. parent .. "', which does not exist in queue '" .. k.queue
                .. "' (parents must be in the same queue)")
        end

        check_children(job, id)
        parents[#parents + 1] = job
    end
    -- Before the first write, the types of the keys this job's path writes; with parents, it may
    -- be cancelled or released at once, which can reach any key of the queue. (enqueue.rs apply)
    if spec.queue_checked then
        -- checked by BATCH
    elseif #parents > 0 then
        check_queue_types(k)
    elseif scheduled then
        check_types({ { k.scheduled, 'zset' }, { k.stats, 'hash' } })
    else
        local checks = { { k.stream, 'stream' } }
        if (spec.priority or 0) ~= 0 then
            checks[#checks + 1] = { k.stream_at(spec.priority), 'stream' }
        end
        checks[#checks + 1] = { k.stats, 'hash' }
        checks[#checks + 1] = { k.wake, 'list' }
        check_types(checks)
        -- The streams found need not be asked for again by push_entry.
        local known = k.known_streams or {}
        for n = 1, #checks do
            if checks[n][3] == 'stream' then
                known[checks[n][1]] = true
            end
        end
        k.known_streams = known
    end
    local job = {
        id = id,
        queue = k.queue,
        task = spec.task,
        payload = spec.payload,
        state = (#parents > 0 and 'waiting') or (scheduled and 'scheduled') or 'pending',
        attempt = 0,
        max_attempts = (spec.retries or CORE.enqueue.DEFAULT_RETRIES) + 1,
        timeout = spec.timeout or CORE.enqueue.DEFAULT_TIMEOUT_MS,
        priority = spec.priority or 0,
        backoff = spec.backoff,
        keep = spec.keep,
        unique = spec.unique,
        with_results = spec.with_results and 1 or nil,
        on_parent_fail = spec.on_parent_fail,
        batch = spec.batch,
        schedule = spec.schedule,
        created_at = now,
    }
    if #parents > 0 then
        local entries = {}
        for n, parent in ipairs(parents) do
            entries[n] = { parent.id, 'null' }
        end
        job.parents = json_object(entries)
        job.waiting_on = #parents
    end
    if scheduled then
        job.run_at = due
    end
    if plain then
        job.entry = push_entry(k, inline_fields(job), job.priority)
        id = inline.id(job.priority, job.entry)
        job.id = id
    elseif job.state == 'waiting' then
        call('ZADD', k.waiting, itoa(now), id)
    elseif job.run_at ~= nil then
        call('ZADD', k.scheduled, itoa(due), id)
    else
        job.entry = push_entry(k, { ENTRY_FIELD, id }, job.priority)
    end
    -- A job with parents is written once its parents are counted (wait_for); a plain job has no
    -- record while pending.
    if not plain and #parents == 0 then
        packed.save(k, job)
    end
    if spec.unique ~= nil then
        call('HSET', k.unique, spec.unique, id)
    end
    count_stat(k, 'enqueued', '1')
    announce(k, id, job.state)
    if #parents > 0 then
        wait_for(k, spec, job, parents, now)
    end
    return id
end

local function enqueue(keys, argv)
    local spec = { after = {} }
    local queue, task, args = queue_and_name(keys, argv, 'zrq.enqueue', 'task', 3)
    spec.task = task
    spec.payload = payload_arg(args[3])
    for option, value in options(args, 4, CORE.enqueue.OPTIONS) do
        set_enqueue_option(spec, option, value)
    end
    local now, sec, usec = clock()
    return enqueue_job(queue_keys(queue), spec, now, sec, usec)
end

register('zrq_enqueue', enqueue)
end -- 30_enqueue.lua

do -- 31_fetch.lua: its locals are its own
--------------------------------------------------------------------------------------------------
-- zrq_fetch: ZRQ.FETCH <queue> <consumer> [COUNT <n>] [BLOCK <ms>]
--   (core/src/commands/fetch.rs)
--
-- KEYS[1]  the queue
-- ARGV     consumer, then options: COUNT <1..1000> (default 1), BLOCK <0..315360000000 ms>
-- Reply    array of jobs (maps), oldest first, each now active, owned by the consumer, attempt
--          incremented; empty when nothing is waiting (also on a queue that does not exist).
--          BLOCK is validated exactly as the module does, but a script cannot block: the reply is
--          immediate. The client blocks instead with BLPOP on zrq:{q}:wake (docs/LUA.md).
--          Highest priority first (zrq:{q}:stream:9 … stream:1, then zrq:{q}:stream), oldest first
--          within one; nothing while the queue is paused (zrq:{q}:paused exists).
-- Writes   XREADGROUP GROUP zrq <consumer> COUNT <n> NOACK STREAMS <stream> >, then XTRIM <stream>
--          MINID <last delivered entry + 1> (the stream holds pending jobs only: what was
--          delivered, its first entries, leaves it, entries without a pending job behind them
--          too); per job SET of its whole record … KEEPTTL (state, attempt, consumer, lease —
--          the delivery's token `<entry>:<attempt>` —, started_at, no entry; a job delivered
--          from its inline entry gets its first record), ZADD
--          zrq:{q}:active <now + timeout> <id>, PUBLISH zrq:{q}:events "active <id>". When the
--          jobs (as records) reach zrq.reply-max-bytes, the trim stops at the last job handled and
--          the entries read beyond go back undelivered (XGROUP SETID <stream> zrq <the id just
--          before the first>), first in line for the next FETCH. Lua only: due scheduled and
--          retrying jobs are first moved into their streams (the module's timer does that on its
--          own), see docs/LUA.md.
-- Errors   ERR (arity, names, options, numbers), WRONGTYPE (any fixed key of the queue), INTERNAL.
--------------------------------------------------------------------------------------------------

local function fetch(keys, argv)
    local queue, consumer, args = queue_and_name(keys, argv, 'zrq.fetch', 'consumer', 2)
    local count = 1
    for option, value in options(args, 3, CORE.fetch.OPTIONS) do
        if option == 'COUNT' then
            count = integer('COUNT', value, 1, MAX_COUNT)
        else
            integer('BLOCK', value, 0, MAX_DURATION_MS)
        end
    end

    local k = checked_queue_keys(queue)
    local now = clock()
    promote_due(k, now)
    if key_type(k.paused) ~= 'none' then
        return {}
    end
    local jobs, budget = {}, new_budget()
    for priority = MAX_PRIORITY, 0, -1 do
        local wanted = count - #jobs
        local stream = k.stream_at(priority)
        if wanted > 0 and key_type(stream) ~= 'none' then
            local reply = call('XREADGROUP', 'GROUP', GROUP, consumer, 'COUNT', itoa(wanted), 'NOACK',
                'STREAMS', stream, '>')
            local entries = (type(reply) == 'table' and reply[1] and reply[1][2]) or {}
            -- Each delivered entry's job is read in turn; the jobs' records count against the
            -- budget, and the entries from the one that would pass it on are handed back.
            local taken, handed_back = {}, nil
            for _, e in ipairs(entries) do
                local entry = e[1]
                -- A reference entry's job from its record; an inline entry's from the entry
                -- itself, or from its record if one was written since (fetch.rs). A job that
                -- cannot be read is dropped with its entry.
                local ok, job = pcall(inline.job_at, k, priority, entry, e[2] or {})
                if not ok then
                    if not (type(job) == 'table' and job.zrq_error) then
                        error(job, 0)
                    end
                    job = nil
                end
                if not budget.admit(bytes_of(job)) then
                    handed_back = entry
                    break
                end
                taken[#taken + 1] = { entry, job }
            end
            -- What was handled leaves the stream in one trim; what was read beyond the budget
            -- stays, undelivered again, first in line for the next FETCH (fetch.rs).
            if #taken > 0 then
                call('XTRIM', stream, 'MINID', entry_after(taken[#taken][1]))
            end
            if handed_back ~= nil then
                call('XGROUP', 'SETID', stream, GROUP, entry_before_id(handed_back))
            end
            for _, t in ipairs(taken) do
                local job = t[2]
                if job and job.state == 'pending' then
                    start_attempt(k, job, consumer, now)
                    jobs[#jobs + 1] = job
                end
            end
            if handed_back ~= nil then
                return jobs_reply(jobs)
            end
        end
    end
    return jobs_reply(jobs)
end

register('zrq_fetch', fetch)
end -- 31_fetch.lua

do -- 32_ack.lua: its locals are its own
--------------------------------------------------------------------------------------------------
-- zrq_ack: ZRQ.ACK <queue> <id> [RESULT <json>] [LEASE <token>]
--   (core/src/commands/ack.rs)
--
-- KEYS[1]  the queue
-- ARGV     job id, then options RESULT <json>, LEASE <token>
-- Reply    1 if the job was active and is now completed (result stored); 0 if it was not active
--          (unknown, pending, finished …) or, with LEASE, not under that lease; -1 if its cancellation was requested meanwhile (it is
--          now cancelled, result stored).
-- Writes   the job leaves its lease (ZREM active; its entry left the stream at FETCH; one an
--          older zrq delivered is XACKed and XDELed);
--          SET of the whole record (state, finished_at [, result], no entry) PX <keep> (its
--          retention); ZADD zrq:{q}:completed|cancelled <now + keep>; UNIQUE key freed; HINCRBY zrq:{q}:stats
--          completed|cancelled 1; PUBLISH zrq:{q}:events; waiting children released (or
--          cancelled in cascade) and its batch counted, as in the module.
-- Errors   ERR (arity, names, options), BADJSON (RESULT), WRONGTYPE, CORRUPT, INTERNAL.
--------------------------------------------------------------------------------------------------

local function ack(keys, argv)
    local queue, id, args = queue_and_name(keys, argv, 'zrq.ack', 'id', 2)
    local result, lease
    for option, value in options(args, 3, CORE.ack.OPTIONS) do
        if option == 'RESULT' then
            within('RESULT', #value, 'result-max-bytes', CONFIG.result_max_bytes)
            result = json('RESULT', value)
        else
            lease = lease_token(value)
        end
    end

    local k = queue_keys(queue)
    local job = load_job_to_finish(k, id)
    if not job or job.state ~= 'active' or (lease ~= nil and job.lease ~= lease) then
        return REPLY.NOTHING
    end
    local now = clock()
    local fields = {}
    if result ~= nil then
        fields = { 'result', result }
    end
    local state, reply = 'completed', REPLY.DONE
    if job.cancel_requested ~= nil then
        state, reply = 'cancelled', REPLY.CANCELLED
    end
    -- Only the keys this job's ending writes (a job that is not held changed nothing).
    check_finish_types(k, job, state)
    finish(k, job, state, fields, now)
    return reply
end

register('zrq_ack', ack)
end -- 32_ack.lua

do -- 33_state.lua: its locals are its own
--------------------------------------------------------------------------------------------------
-- zrq_state: ZRQ.STATE <queue> <id>                     (no-writes)
--   (core/src/commands/state.rs)
--
-- KEYS[1]  the queue
-- ARGV     job id
-- Reply    the job's state (waiting, scheduled, pending, active, retrying, completed, dead,
--          cancelled), or nil if unknown: from the job's record, else (a generated id without a
--          record) `pending` if its inline entry is in its stream, else `completed` or
--          `cancelled` if it is kept in that state's records hash.
-- Errors   ERR (arity, names), WRONGTYPE (job record key, the stream of a generated id, a records
--          hash), CORRUPT (no readable state; a records hash's field as JOB reads it), INTERNAL.
--------------------------------------------------------------------------------------------------

local function state(keys, argv)
    local queue, id = queue_and_name(keys, argv, 'zrq.state', 'id')
    local k = queue_keys(queue)
    local key = k.job(id)
    -- The record's state field (one lookup of its key; the other fields are not checked).
    local fields = packed.read(key)
    if fields == nil then
        -- No record at its key: a generated id may name a pending job's inline entry, or a
        -- finished job may be kept in its state's records hash (state.rs).
        local job = load_unrecorded(k, id)
        return job and job.state or nil
    end
    local value = fields.state
    if value ~= nil then
        if not IS_STATE[value] then
            fail('CORRUPT', "'" .. key .. "' is not a zrq record: unknown state '" .. value .. "'")
        end
        return value
    end
    fail('CORRUPT', "'" .. key .. "' is not a zrq record: field 'state' is missing")
end

register('zrq_state', state)
end -- 33_state.lua

do -- 34_job.lua: its locals are its own
--------------------------------------------------------------------------------------------------
-- zrq_job: ZRQ.JOB <queue> <id>                         (no-writes)
--   (core/src/commands/job.rs)
--
-- KEYS[1]  the queue
-- ARGV     job id
-- Reply    the job as a map (RESP3 map, flat field/value array in RESP2): the present fields of
--          the record, integer fields as integers; nil if unknown.
-- Errors   ERR (arity, names), WRONGTYPE (job record key), CORRUPT (unreadable record), INTERNAL.
--------------------------------------------------------------------------------------------------

local function job_of(keys, argv)
    local queue, id = queue_and_name(keys, argv, 'zrq.job', 'id')
    local job = load_job(queue_keys(queue), id)
    if not job then
        return nil
    end
    return job_reply(job)
end

register('zrq_job', job_of)
end -- 34_job.lua

do -- 35_reclaim.lua: its locals are its own
--------------------------------------------------------------------------------------------------
-- zrq_reclaim: ZRQ.RECLAIM <queue> <consumer> [COUNT <n>]
--   (core/src/commands/reclaim.rs)
--
-- KEYS[1]  the queue
-- ARGV     consumer, then option COUNT <1..1000> (default 10): most expired leases handled
-- Reply    array of jobs whose lease expired, oldest deadline first, now owned by the consumer
--          with attempt incremented, a new lease token and `error` saying which lease expired. A
--          job that had used all its attempts becomes dead instead and is not returned. Fewer
--          leases are handled when the jobs' records reach zrq.reply-max-bytes.
-- Writes   every expired lease counts as a failed attempt (HINCRBY zrq:{q}:stats failed 1).
--          Reclaimed: SET of the whole record … KEEPTTL (error, state, attempt, consumer, lease —
--          the entry of the lease taken over, attempt + 1 —, started_at), ZADD zrq:{q}:active,
--          PUBLISH; a job an older zrq
--          delivered (its entry still in the group's pending list) is first XACKed and XDELed
--          and loses its `entry` field, so it runs on as a job delivered today. Out of
--          attempts: finished dead (ZADD zrq:{q}:dead, capped at 10000 like the module's default). With a
--          cancellation requested: finished cancelled. A lease without an active job is dropped.
--          Lua only: first does the module timer's work for the queue (due scheduled and retrying
--          jobs, schedule ticks, retention), as FETCH does; the worker's periodic RECLAIM is the
--          Lua backend's ticker (docs/LUA.md).
--          Last, consumers idle for an hour without pending entries leave the consumer groups
--          (FETCH leaves none: a job's holder is its record's consumer).
-- Errors   ERR (arity, names, options, numbers), WRONGTYPE (any fixed key of the queue), INTERNAL.
--------------------------------------------------------------------------------------------------

-- Consumers idle this long with nothing pending leave the queue's groups (CONSUMER_IDLE_MS).
local CONSUMER_IDLE_MS = CONFIG.consumer_idle_ms

-- Drops the consumers of a stream's group that have nothing pending and have been idle for more
-- than CONSUMER_IDLE_MS, so worker names that never come back do not pile up.
local function prune_consumers(stream)
    for _, info in ipairs(call('XINFO', 'CONSUMERS', stream, GROUP)) do
        local fields = {}
        for i = 1, #info, 2 do
            fields[info[i]] = info[i + 1]
        end
        if fields.pending == 0 and fields.idle > CONSUMER_IDLE_MS then
            call('XGROUP', 'DELCONSUMER', stream, GROUP, fields.name)
        end
    end
end

local function reclaim(keys, argv)
    local queue, consumer, args = queue_and_name(keys, argv, 'zrq.reclaim', 'consumer', 2)
    local count = CORE.reclaim.DEFAULT_COUNT
    for _, value in options(args, 3, CORE.reclaim.OPTIONS) do
        count = integer('COUNT', value, 1, MAX_COUNT)
    end

    local k = checked_queue_keys(queue)
    local now = clock()
    promote_due(k, now)
    local expired = call('ZRANGE', k.active, '-inf', itoa(now), 'BYSCORE', 'LIMIT', '0', itoa(count))
    local reclaimed, budget = {}, new_budget()
    for _, id in ipairs(expired) do
        if is_utf8(id) then
            local job = try_load_job(k, id)
            -- The records read count against zrq.reply-max-bytes: the rest stay expired, for the
            -- next call.
            if not budget.admit(bytes_of(job)) then
                break
            end
            if not job or job.state ~= 'active' then
                call('ZREM', k.active, id)
            else
                local error_text = format('lease expired after %d ms (attempt %d of %d, consumer %s)',
                    job.timeout, job.attempt, job.max_attempts, job.consumer or '?')
                if not failed_attempt(k, job, error_text, now) then
                    if job.entry ~= nil then
                        call('XACK', k.stream_at(job.priority), GROUP, job.entry)
                        call('XDEL', k.stream_at(job.priority), job.entry)
                    end
                    -- Written with the new attempt, in one write of the record.
                    job.error = error_text
                    start_attempt(k, job, consumer, now)
                    reclaimed[#reclaimed + 1] = job
                end
            end
        end
    end
    for priority = 0, MAX_PRIORITY do
        local stream = k.stream_at(priority)
        if key_type(stream) == 'stream' then
            prune_consumers(stream)
        end
    end
    return jobs_reply(reclaimed)
end

register('zrq_reclaim', reclaim)
end -- 35_reclaim.lua

do -- 36_fail.lua: its locals are its own
--------------------------------------------------------------------------------------------------
-- zrq_fail: ZRQ.FAIL <queue> <id> <error> [RETRYIN <ms>] [LEASE <token>]     (commands/fail.rs)
-- KEYS[1] the queue; ARGV id, error (UTF-8, at most 65536 bytes), options RETRYIN <0.. ms>,
--         LEASE <token>.
-- Reply   the job's new state: retrying (backoff: RETRYIN, else BACKOFF or 1000 ms doubled per
--         attempt, capped at 1 h, with jitter in its upper half), dead (no attempts left),
--         cancelled (its cancellation was requested); nil if the job is not active (or, with
--         LEASE, not under that lease).
-- Errors  ERR, WRONGTYPE, CORRUPT, INTERNAL.
--------------------------------------------------------------------------------------------------

local BACKOFF_BASE_MS = CONFIG.backoff_base_ms
local BACKOFF_MAX_MS = CONFIG.backoff_max_ms

-- A number in 0..n from the clock and a counter (scripts have no useful randomness; the delay
-- reaches replicas as the written run_at, never recomputed).
local random_counter = 0
local function random_upto(n, seed)
    random_counter = random_counter + 1
    local digest = redis.sha1hex(seed .. ':' .. random_counter)
    return tonumber(sub(digest, 1, 12), 16) % (n + 1)
end

-- config.rs backoff_delay: half the exponential delay, plus jitter over the other half.
local function backoff_delay(base, attempt, seed)
    if attempt < 1 then
        attempt = 1
    end
    local full = base
    if full < 0 then
        full = 0
    end
    for _ = 2, attempt do
        full = full * 2
        if full >= BACKOFF_MAX_MS then
            break
        end
    end
    if full > BACKOFF_MAX_MS then
        full = BACKOFF_MAX_MS
    end
    local half = floor(full / 2)
    local spread = full - half
    if spread == 0 then
        return half
    end
    return half + random_upto(spread, seed)
end

local function fail_job(keys, argv)
    local queue, id, args = queue_and_name(keys, argv, 'zrq.fail', 'id', 3)
    local error_text = args[3]
    if not is_utf8(error_text) or #error_text > CORE.fail.MAX_ERROR_LEN then
        fail('ERR', 'error must be UTF-8 text of at most ' .. CORE.fail.MAX_ERROR_LEN .. ' bytes')
    end
    local retry_in, lease
    for option, value in options(args, 4, CORE.fail.OPTIONS) do
        if option == 'RETRYIN' then
            retry_in = integer('RETRYIN', value, 0, MAX_DURATION_MS)
        else
            lease = lease_token(value)
        end
    end

    local k, job = held_job(queue, id, lease, load_job_to_finish)
    if not job then
        return nil
    end
    local now, sec, usec = clock()
    if not failed_attempt(k, job, error_text, now) then
        local delay = retry_in or backoff_delay(job.backoff or BACKOFF_BASE_MS, job.attempt,
            sec .. ':' .. usec .. ':' .. id)
        local due = now + delay
        unlink(k, job)
        job.state = 'retrying'
        job.error = error_text
        job.run_at = due
        packed.save(k, job)
        call('ZADD', k.retrying, itoa(due), id)
        announce(k, id, 'retrying')
    end
    return job.state
end

register('zrq_fail', fail_job)
end -- 36_fail.lua

do -- 37_touch.lua: its locals are its own
--------------------------------------------------------------------------------------------------
-- zrq_touch: ZRQ.TOUCH <queue> <id> [TIMEOUT <ms>] [PROGRESS <0-100>] [LEASE <token>]
--   (commands/touch.rs)
-- KEYS[1] the queue; ARGV id, options TIMEOUT <1.. ms> (the new lease length), PROGRESS <0..100>,
--         LEASE <token>.
-- Reply   1 (lease extended from now), 0 (job not active, or not under that lease), -1 (its
--         cancellation was requested).
-- Errors  ERR, WRONGTYPE, CORRUPT, INTERNAL.
--------------------------------------------------------------------------------------------------

local function touch(keys, argv)
    local queue, id, args = queue_and_name(keys, argv, 'zrq.touch', 'id', 2)
    local timeout, progress, lease
    for option, value in options(args, 3, CORE.touch.OPTIONS) do
        if option == 'TIMEOUT' then
            timeout = integer('TIMEOUT', value, 1, MAX_DURATION_MS)
        elseif option == 'PROGRESS' then
            progress = integer('PROGRESS', value, 0, 100)
        else
            lease = lease_token(value)
        end
    end
    local k, job = held_job(queue, id, lease)
    if not job then
        return REPLY.NOTHING
    end
    if job.cancel_requested ~= nil then
        return REPLY.CANCELLED
    end
    local now = clock()
    call('ZADD', k.active, itoa(now + (timeout or job.timeout)), id)
    -- The record is written only when something in it changes: a new lease length (left out of
    -- the record when it is the default), the progress; both in one write.
    if timeout ~= nil or progress ~= nil then
        job.timeout = timeout or job.timeout
        job.progress = progress or job.progress
        packed.save(k, job)
    end
    return REPLY.DONE
end

register('zrq_touch', touch)
end -- 37_touch.lua

do -- 38_release.lua: its locals are its own
-- zrq_release: ZRQ.RELEASE <queue> <id> [LEASE <token>]                    (commands/release.rs)
-- KEYS[1] the queue; ARGV id, option LEASE <token>.
-- Reply   1 (back to pending at once, attempt decremented: the attempt does not count), 0 (job
--         not active, or not under that lease), -1 (its cancellation was requested: now cancelled).
-- Writes  ZREM active (XACK + XDEL of its entry if an older zrq delivered it), then as a job
--         entering its stream (XADD, SET of its whole record … KEEPTTL with the attempt
--         decremented, the state and the entry, PUBLISH "pending <id>", a wake-up token).
-- Errors  ERR, WRONGTYPE, CORRUPT, INTERNAL.
--------------------------------------------------------------------------------------------------

local function release(keys, argv)
    local queue, id, args = queue_and_name(keys, argv, 'zrq.release', 'id', 2)
    local lease
    for _, value in options(args, 3, CORE.release.OPTIONS) do
        lease = lease_token(value)
    end
    local k, job = held_job(queue, id, lease, load_job_to_finish)
    if not job then
        return REPLY.NOTHING
    end
    if job.cancel_requested ~= nil then
        finish(k, job, 'cancelled', {}, clock())
        return REPLY.CANCELLED
    end
    unlink(k, job)
    job.attempt = job.attempt - 1
    if job.attempt < 0 then
        job.attempt = 0
    end
    -- The attempt given back, written with the rest of the record by make_pending.
    make_pending(k, job)
    return REPLY.DONE
end

register('zrq_release', release)
end -- 38_release.lua

do -- 39_result.lua: its locals are its own
-- zrq_result: ZRQ.RESULT <queue> <id> [BLOCK <ms>]                  (no-writes; commands/result.rs)
-- KEYS[1] the queue; ARGV id, option BLOCK <0.. ms> (validated; a script cannot block: the client
--         waits for the job's final state on the zrq:{q}:events channel, see docs/LUA.md).
-- Reply   nil while the job is unfinished; else a map: state, result, error, finished_at
--         (present ones).
-- Errors  ERR, NOJOB (no such job), WRONGTYPE, CORRUPT, INTERNAL.
--------------------------------------------------------------------------------------------------

local function result_of(keys, argv)
    local queue, id, args = queue_and_name(keys, argv, 'zrq.result', 'id', 2)
    for _, value in options(args, 3, CORE.result.OPTIONS) do
        integer('BLOCK', value, 0, MAX_DURATION_MS)
    end
    local job = load_job(queue_keys(queue), id)
    if not job then
        fail('NOJOB', "no job '" .. id .. "' in queue '" .. queue .. "'")
    end
    if not IS_FINAL[job.state] then
        return nil
    end
    return { map = { state = job.state, result = job.result, error = job.error, finished_at = job.finished_at } }
end

register('zrq_result', result_of)
end -- 39_result.lua

do -- 40_cancel.lua: its locals are its own
--------------------------------------------------------------------------------------------------
-- zrq_cancel: ZRQ.CANCEL <queue> <id>                                         (commands/cancel.rs)
-- KEYS[1] the queue; ARGV id.
-- Reply   1 (cancelled now), 2 (active: cancellation requested, the worker learns it from TOUCH or
--         ACK), 0 (unknown or already finished).
-- Errors  ERR, WRONGTYPE, CORRUPT, INTERNAL.
--------------------------------------------------------------------------------------------------

local CANCELLABLE = { waiting = true, scheduled = true, pending = true, retrying = true }

local function cancel(keys, argv)
    local queue, id = queue_and_name(keys, argv, 'zrq.cancel', 'id')
    local k = checked_queue_keys(queue)
    local job = load_job_to_finish(k, id)
    if not job then
        return REPLY.NOTHING
    end
    if job.state == 'active' then
        job.cancel_requested = 1
        packed.save(k, job)
        return REPLY.CANCEL_REQUESTED
    end
    if not CANCELLABLE[job.state] then
        return REPLY.NOTHING
    end
    finish(k, job, 'cancelled', {}, clock())
    return REPLY.DONE
end

register('zrq_cancel', cancel)
end -- 40_cancel.lua

do -- 41_dead.lua: its locals are its own
--------------------------------------------------------------------------------------------------
-- zrq_dead: ZRQ.DEAD <queue> [COUNT <n>] [CURSOR <c>]                 (no-writes; commands/dead.rs)
-- KEYS[1] the queue; ARGV options COUNT <1..1000> (default 10), CURSOR <0..> (default 0).
-- Reply   [next-cursor, jobs]: dead jobs oldest first; next cursor 0 at the end. Fewer than COUNT
--         when their records reach zrq.reply-max-bytes.
-- Errors  ERR, WRONGTYPE, CORRUPT, INTERNAL.
--------------------------------------------------------------------------------------------------

local function dead_jobs(keys, argv)
    local args = command_args(keys, argv, 'zrq.dead', 1)
    local queue = name('queue', args[1])
    local count, cursor = paging(args, 2, 0, rank_cursor)
    local k = queue_keys(queue)
    check_types({ { k.dead, 'zset' } })
    local ids = zrange(k.dead, cursor, count)
    local total = call('ZCARD', k.dead)
    local jobs, covered = load_jobs(k, ids)
    return { next_rank(cursor, covered, total), jobs }
end

register('zrq_dead', dead_jobs)
end -- 41_dead.lua

do -- 42_requeue.lua: its locals are its own
--------------------------------------------------------------------------------------------------
-- zrq_requeue: ZRQ.REQUEUE <queue> <id> | ALL [COUNT <n>] [CURSOR <c>]       (commands/requeue.rs)
-- KEYS[1] the queue; ARGV a dead job's id, or ALL with options COUNT <1..requeue-max> (default
--         requeue-max), CURSOR <0..> (default 0).
-- Reply   <id>: 1 if the dead job is pending again (with a fresh attempt budget), else 0.
--         ALL: [next-cursor, requeued] for the page of the dead set at ranks [rank, rank + count)
--         (fewer when their records reach zrq.reply-max-bytes);
--         next cursor 0 at the end. Requeued jobs leave the set, so the next page starts after
--         only what the pages before it left in place (records that cannot be read); the cursor
--         is that rank plus one, so that 0 can mean the end (0 given starts at rank 0 too).
-- Errors  ERR, WRONGTYPE, CORRUPT, LIMIT, INTERNAL.
--------------------------------------------------------------------------------------------------

-- Puts `job` back to pending with a fresh attempt budget if it is dead; whether it was.
local function requeue_dead(k, job)
    if job.state ~= 'dead' then
        return false
    end
    call('ZREM', k.dead, job.id)
    -- A fresh attempt budget: `attempt` back to its default, 0 (left out of the record), and no
    -- end yet; written with the rest of the record by make_pending.
    job.attempt = 0
    job.finished_at = nil
    job.cancel_requested = nil
    if job.unique ~= nil and not call('HGET', k.unique, job.unique) then
        call('HSET', k.unique, job.unique, job.id)
    end
    make_pending(k, job)
    return true
end

local function requeue(keys, argv)
    local queue, id, args = queue_and_name(keys, argv, 'zrq.requeue', 'id', 2)
    if id:upper() ~= 'ALL' then
        -- Options page through ALL; one job takes none.
        if #args ~= 2 then
            arity_error('zrq.requeue')
        end
        local k = checked_queue_keys(queue)
        -- The one job named by the command is refused if unreadable, before any write.
        local job = load_job(k, id)
        if job and requeue_dead(k, job) then
            return REPLY.DONE
        end
        return REPLY.NOTHING
    end
    local count, cursor = CONFIG.requeue_max, 0
    for option, value in options(args, 3, CORE.requeue.OPTIONS) do
        if option == 'COUNT' then
            count = integer('COUNT', value, 1, 9223372036854775807, '9223372036854775807')
            if count > CONFIG.requeue_max then
                limit('COUNT asks for more than ' .. itoa(CONFIG.requeue_max) .. ' jobs', 'requeue-max',
                    CONFIG.requeue_max)
            end
        else
            cursor = rank_cursor(value)
        end
    end
    local k = checked_queue_keys(queue)
    local rank = math.max(cursor - 1, 0)
    -- The page is the dead set's ranks [rank, rank + count) as they are now.
    local listed = math.max(math.min(call('ZCARD', k.dead) - rank, count), 0)
    local examined, requeued, budget = 0, 0, new_budget()
    for _, dead_id in ipairs(zrange(k.dead, rank, listed)) do
        -- An unreadable dead job is left alone (and in place), so the others are still requeued
        -- and an error never comes after a write.
        local job = try_load_job(k, dead_id)
        -- The records read count against zrq.reply-max-bytes: the page ends before the one
        -- that would pass it.
        if not budget.admit(bytes_of(job)) then
            break
        end
        examined = examined + 1
        if job and requeue_dead(k, job) then
            requeued = requeued + 1
        end
    end
    -- What the page left in place still comes before the next page.
    local next_rank_at = rank + examined - requeued
    if call('ZCARD', k.dead) <= next_rank_at then
        return { '0', requeued }
    end
    return { itoa(next_rank_at + 1), requeued }
end

register('zrq_requeue', requeue)
end -- 42_requeue.lua

do -- 43_delete.lua: its locals are its own
--------------------------------------------------------------------------------------------------
-- zrq_delete: ZRQ.DELETE <queue> <id>                                         (commands/delete.rs)
-- KEYS[1] the queue; ARGV id.
-- Reply   1 if a job was deleted (in any state), else 0. Its waiting children and its batch treat
--         an unfinished deleted job as cancelled.
-- Errors  ERR, WRONGTYPE, CORRUPT, INTERNAL.
--------------------------------------------------------------------------------------------------

local function delete(keys, argv)
    local queue, id = queue_and_name(keys, argv, 'zrq.delete', 'id')
    local k = checked_queue_keys(queue)
    local job = load_job_to_finish(k, id)
    if not job then
        return REPLY.NOTHING
    end
    unlink(k, job)
    -- Every index, not only the one of the job's state (delete.rs).
    for _, index in ipairs({ k.active, k.waiting, k.scheduled, k.retrying, k.dead, k.completed,
        k.cancelled }) do
        call('ZREM', index, id)
    end
    if job.unique ~= nil and call('HGET', k.unique, job.unique) == job.id then
        call('HDEL', k.unique, job.unique)
    end
    if job.place == 'records' then
        -- Kept in its state's records hash (mod.rs drop_kept): its field, and its entry among the
        -- log's entries of the millisecond it finished in (as many as jobs ended in it).
        call('HDEL', k.records(job.state), id)
        local at = job.finished_at
        if at ~= nil and at >= 0 then
            local ms = itoa(at)
            local log = k.log(job.state)
            for _, entry in ipairs(call('XRANGE', log, ms .. '-0', ms .. '-18446744073709551615')) do
                local fields, found = entry[2], false
                for f = 1, #fields, 2 do
                    if fields[f] == 'id' and fields[f + 1] == id then
                        found = true
                    end
                end
                if found then
                    call('XDEL', log, entry[1])
                    break
                end
            end
        end
    else
        call('DEL', k.job(id))
    end
    if not IS_FINAL[job.state] then
        job.state = 'cancelled'
        settle(k, job, nil, clock())
    end
    return REPLY.DONE
end

register('zrq_delete', delete)
end -- 43_delete.lua

do -- 44_pause.lua: its locals are its own
--------------------------------------------------------------------------------------------------
-- zrq_pause / zrq_resume: ZRQ.PAUSE <queue>, ZRQ.RESUME <queue>                (commands/pause.rs)
-- KEYS[1] the queue; ARGV none.
-- Reply   OK. While zrq:{q}:paused exists FETCH delivers nothing; RESUME deletes it (and, Lua
--         only, pushes a wake-up token so blocked clients look again).
-- Errors  ERR, WRONGTYPE (paused key), INTERNAL.
--------------------------------------------------------------------------------------------------

local function pause_or_resume(command, paused)
    return function(keys, argv)
        local args = command_args(keys, argv, command, 1, true)
        local k = queue_keys(name('queue', args[1]))
        check_types({ { k.paused, 'string' } })
        if paused then
            call('SET', k.paused, '1')
        else
            check_types({ { k.wake, 'list' } })
            call('DEL', k.paused)
            call('RPUSH', k.wake, '1')
            call('LTRIM', k.wake, itoa(-WAKE_CAP), '-1')
        end
        return redis.status_reply('OK')
    end
end

register('zrq_pause', pause_or_resume('zrq.pause', true))
register('zrq_resume', pause_or_resume('zrq.resume', false))
end -- 44_pause.lua

do -- 45_info.lua: its locals are its own
--------------------------------------------------------------------------------------------------
-- zrq_info: ZRQ.INFO <queue>                                          (no-writes; commands/info.rs)
-- KEYS[1] the queue; ARGV none.
-- Reply   a map: jobs per state now (pending, waiting, scheduled, active, retrying, completed,
--         dead, cancelled), totals since the queue was created (total_enqueued, total_completed,
--         total_failed, total_dead, total_cancelled, total_dropped), oldest_pending_age_ms, paused.
-- Errors  ERR, WRONGTYPE, INTERNAL.
--------------------------------------------------------------------------------------------------

local function info(keys, argv)
    local args = command_args(keys, argv, 'zrq.info', 1, true)
    local k = checked_queue_keys(name('queue', args[1]))
    local now = clock()
    local pending, oldest = 0, nil
    for priority = 0, MAX_PRIORITY do
        local stream = k.stream_at(priority)
        if key_type(stream) ~= 'none' then
            pending = pending + undelivered_len(stream)
            local first = undelivered_entries(k, priority, nil, 1)[1]
            if first then
                -- An inline entry's job was created when its entry was (so was its record's, if
                -- it has one since); a reference entry's job says when in its record, or, left
                -- out there, its generated id does (inline.generated).
                local at
                if inline.reference(first[3]) == false then
                    at = parse_i64(first[1]:match('^(%d+)'))
                else
                    local fields = packed.read(k.job(first[2]))
                    if fields ~= nil then
                        if fields.created_at ~= nil then
                            at = parse_i64(fields.created_at)
                        else
                            local _, ms = inline.generated(first[2])
                            at = ms
                        end
                    end
                end
                if at and (oldest == nil or at < oldest) then
                    oldest = at
                end
            end
        end
    end
    local map = { pending = pending }
    for _, state in ipairs({ 'waiting', 'scheduled', 'active', 'retrying', 'completed', 'dead', 'cancelled' }) do
        map[state] = call('ZCARD', k[state])
        -- Completed and cancelled jobs kept for the queue's retention are fields of their
        -- state's records hash; those with a retention of their own are in the index.
        local records = k.records(state)
        if records ~= nil then
            map[state] = map[state] + call('HLEN', records)
        end
    end
    counters(map, utf8_hash(call('HGETALL', k.stats)),
        { 'enqueued', 'completed', 'failed', 'dead', 'cancelled', 'dropped' }, 'total_')
    local age = 0
    if oldest and now > oldest then
        age = now - oldest
    end
    map.oldest_pending_age_ms = age
    map.paused = key_type(k.paused) ~= 'none' and 1 or 0
    return { map = map }
end

register('zrq_info', info)
end -- 45_info.lua

do -- 46_list.lua: its locals are its own
--------------------------------------------------------------------------------------------------
-- zrq_list: ZRQ.LIST <queue> <state> [COUNT <n>] [CURSOR <c>]         (no-writes; commands/list.rs)
-- KEYS[1] the queue; ARGV a state name (any case), options COUNT, CURSOR as for DEAD.
-- Reply   [next-cursor, jobs] of that state: pending in delivery order (highest priority first),
--         the others in their index's order; completed and cancelled: their index by rank, then
--         the jobs of their records hash in the order of their log (cursor log:<entry-id>).
--         Fewer than COUNT when their records reach zrq.reply-max-bytes (the cursor then resumes
--         after the last one returned).
-- Errors  ERR, WRONGTYPE, CORRUPT, INTERNAL.
--------------------------------------------------------------------------------------------------

-- A `completed` or `cancelled` cursor: a rank in the state's sorted set (`0` to start), or
-- `log:<ms>-<seq>` (at most 19 digits each) as a previous page returned it, read as { log =
-- <entry-id> }. (list.rs kept_cursor)
local function kept_cursor(raw)
    if sub(raw, 1, 4) ~= 'log:' then
        return rank_cursor(raw)
    end
    local ms, seq = raw:match('^log:(%d+)%-(%d+)$')
    if not ms or #ms > 19 or #seq > 19 then
        fail('ERR', "CURSOR must be 0, a rank or log:<entry-id> as returned by ZRQ.LIST completed or "
            .. "cancelled, got '" .. show_arg(raw) .. "'")
    end
    return { log = ms .. '-' .. seq }
end

-- A page of the jobs of `state` kept in its records hash, in the order of its log, after entry
-- `after` (nil: from the head): COUNT + 1 entries read to know whether there is a next page. An
-- entry whose record is gone (a job deleted by hand) is passed over; the cursor moves on all the
-- same. (list.rs log_page)
local function log_page(k, state, after, count)
    local log = k.log(state)
    if key_type(log) == 'none' then
        return { '0', {} }
    end
    local found = call('XRANGE', log, after and ('(' .. after) or '-', '+', 'COUNT', itoa(count + 1))
    local ids = {}
    for n = 1, math.min(count, #found) do
        local fields, id = found[n][2], false
        for f = 1, #fields, 2 do
            if fields[f] == 'id' then
                id = fields[f + 1]
                break
            end
        end
        ids[n] = id
    end
    local jobs, covered = load_jobs(k, ids, function(n)
        return ids[n] and packed.read_kept(k, ids[n], state)
    end)
    local next_cursor = '0'
    if covered >= 1 and covered < #found then
        next_cursor = 'log:' .. found[covered][1]
    end
    return { next_cursor, jobs }
end

local function list(keys, argv)
    local args = command_args(keys, argv, 'zrq.list', 2)
    local queue = name('queue', args[1])
    local state = is_utf8(args[2]) and args[2]:lower()
    if not IS_STATE[state] then
        fail('ERR', 'state must be one of ' .. table.concat(STATES, ', ') .. ", got '" .. show_arg(args[2]) .. "'")
    end
    local count, cursor
    local kept = state == 'completed' or state == 'cancelled'
    if state == 'pending' then
        count, cursor = paging(args, 3, nil, pending_cursor)
    elseif kept then
        count, cursor = paging(args, 3, 0, kept_cursor)
    else
        count, cursor = paging(args, 3, 0, rank_cursor)
    end
    local k = checked_queue_keys(queue)
    local ids, next_cursor, found = {}, '0', nil
    if state == 'pending' then
        -- Reads one entry beyond the page to know whether there is a next one (list.rs pending_page).
        local wanted = count + 1
        found = {}
        for priority = MAX_PRIORITY, 0, -1 do
            local resume
            if cursor and cursor[1] == priority then
                resume = cursor[2]
            end
            local stream = k.stream_at(priority)
            if (cursor == nil or cursor[1] >= priority) and #found < wanted and key_type(stream) ~= 'none' then
                for _, entry in ipairs(undelivered_entries(k, priority, resume, wanted - #found)) do
                    found[#found + 1] = { priority, entry[1], entry[2], entry[3] }
                end
            end
        end
        for n = 1, math.min(count, #found) do
            ids[n] = found[n][3]
        end
        -- Each job from its entry: an inline entry holds its job (unless a record was written
        -- since), a reference entry names its record (list.rs).
        local jobs, covered = load_jobs(k, ids, function(n)
            return inline.job_at(k, found[n][1], found[n][2], found[n][4])
        end)
        -- More to list: what the page did not cover, or the entry read beyond it.
        if covered >= 1 and covered < #found then
            local last = found[covered]
            next_cursor = last[1] .. ':' .. last[2]
        end
        return { next_cursor, jobs }
    end
    if kept and type(cursor) == 'table' then
        return log_page(k, state, cursor.log, count)
    end
    ids = zrange(k[state], cursor, count)
    if kept and #ids == 0 then
        -- Past the sorted set: the jobs kept in the records hash, from the log's head.
        return log_page(k, state, nil, count)
    end
    local total = call('ZCARD', k[state])
    local jobs, covered = load_jobs(k, ids)
    next_cursor = next_rank(cursor, covered, total)
    -- The sorted set is done: the log comes next, if it holds anything.
    if kept and next_cursor == '0' and #call('XRANGE', k.log(state), '-', '+', 'COUNT', '1') > 0 then
        next_cursor = 'log:0-0'
    end
    return { next_cursor, jobs }
end

register('zrq_list', list)
end -- 46_list.lua

do -- 47_queues.lua: its locals are its own
--------------------------------------------------------------------------------------------------
-- zrq_queues: ZRQ.QUEUES [CURSOR <c>] [COUNT <n>]                   (no-writes; commands/queues.rs)
-- KEYS    none (FCALL zrq_queues 0 ...); ARGV options CURSOR <0..> (default 0), COUNT <1..250>
--         (default 100): about how many keys this step of the scan examines.
-- Reply   [next-cursor, [queue...]]: the queues (each has a zrq:{q}:stats key) found by one step of
--         SCAN <cursor> MATCH zrq:{*}:stats COUNT <n>, sorted, only those the caller may read: it
--         could run FCALL_RO (or FCALL) zrq_queues with the queue as its key (redis.acl_check_cmd),
--         the module's check of read permission on the queue's name. Cursor 0 ends the scan. On a
--         cluster: the node's queues.
-- Errors  ERR (options), NOPERM (the caller may not run SCAN, checked first), INTERNAL.
--------------------------------------------------------------------------------------------------


-- Whether the caller may read `queue`: the ACL check of an FCALL that would name it as its key
-- (FCALL_RO needs read permission on the key; FCALL, for a caller without FCALL_RO, read-write).
local function may_read(queue)
    return redis.acl_check_cmd('FCALL_RO', 'zrq_queues', '1', queue)
        or redis.acl_check_cmd('FCALL', 'zrq_queues', '1', queue)
end

local function queues(keys, argv)
    local args = arguments(keys, argv)
    -- The cursor goes to SCAN as the digits given (without leading zeros): a Lua number would
    -- lose the low digits of a cursor beyond 2^53.
    local count, cursor = CORE.queues.DEFAULT_COUNT, '0'
    for option, value in options(args, 1, CORE.queues.OPTIONS) do
        if option == 'COUNT' then
            count = integer('COUNT', value, 1, CORE.queues.MAX_COUNT)
        else
            rank_cursor(value)
            cursor = value:gsub('^0+', '')
            if cursor == '' then
                cursor = '0'
            end
        end
    end
    if not redis.acl_check_cmd('SCAN', '0') then
        fail('NOPERM', 'zrq_queues needs SCAN on the Lua backend, which this user may not run; '
            .. 'see docs/ACL.md')
    end
    local reply = call('SCAN', cursor, 'MATCH', 'zrq:{*}:stats', 'COUNT', itoa(count))
    local names, seen = {}, {}
    for _, key in ipairs(reply[2]) do
        local queue = key:match('^zrq:{(.*)}:stats$')
        if queue and not seen[queue] and pcall(name, 'queue', queue) and may_read(queue) then
            seen[queue] = true
            names[#names + 1] = queue
        end
    end
    table.sort(names, byte_less)
    return { reply[1], names }
end

register('zrq_queues', queues)
end -- 47_queues.lua

do -- 48_batch.lua: its locals are its own
--------------------------------------------------------------------------------------------------
-- zrq_batch: ZRQ.BATCH <queue> <batch> [ON-COMPLETE <task> <payload>] [RETRIES|TIMEOUT|BACKOFF|
--            PRIORITY|KEEP <n>] JOB <task> <payload> [JOB <task> <payload> ...]  (commands/batch.rs)
-- KEYS[1] the queue; ARGV batch id, options (job options apply to every member), JOB … (repeat).
-- Reply   the members' ids, in order. When the last member finishes, the ON-COMPLETE job is
--         enqueued once with payload {"batch","succeeded","failed","payload"}.
-- Writes  HSET zrq:{q}:batch:<id> (queue, total, done, succeeded, failed, created_at, callback),
--         then every member as ENQUEUE writes it (with `batch`).
-- Errors  ERR (arity, no JOB, batch exists, options), BADJSON, WRONGTYPE, INTERNAL.
--------------------------------------------------------------------------------------------------


local function batch(keys, argv)
    local queue, id, args = queue_and_name(keys, argv, 'zrq.batch', 'batch', 2)
    local template = { after = {} }
    local members, on_complete = {}, nil
    -- JOB and ON-COMPLETE take two values: the iterator hands over the first, `extra` the second.
    local at = 3
    local payload_bytes = 0
    while args[at] ~= nil do
        local word = args[at]
        local option
        for _, known in ipairs(CORE.batch.OPTIONS) do
            if known == word:upper() then
                option = known
            end
        end
        if not option then
            fail('ERR', "unknown option '" .. show_arg(word) .. "'")
        end
        if template['seen_' .. option] and not REPEATABLE[option] then
            fail('ERR', 'option ' .. option .. ' given more than once')
        end
        template['seen_' .. option] = true
        local value = args[at + 1]
        if value == nil then
            fail('ERR', 'option ' .. option .. ' needs a value')
        end
        at = at + 2
        if option == 'ON-COMPLETE' or option == 'JOB' then
            if option == 'JOB' and #members >= CONFIG.batch_max then
                limit('more than ' .. itoa(CONFIG.batch_max) .. ' JOB members', 'batch-max', CONFIG.batch_max)
            end
            local task = name('task', value)
            local payload = args[at]
            if payload == nil then
                fail('ERR', 'option ' .. option .. ' needs a value')
            end
            at = at + 1
            payload_bytes = payload_bytes + #payload
            within("the batch's payloads together", payload_bytes, 'payload-max-bytes', CONFIG.payload_max_bytes)
            payload = json('payload', payload)
            if option == 'JOB' then
                members[#members + 1] = { task, payload }
            else
                on_complete = { task, payload }
            end
        else
            set_enqueue_option(template, option, value)
        end
    end
    if #members == 0 then
        arity_error('zrq.batch')
    end
    local k = checked_queue_keys(queue)
    local key = k.batch(id)
    check_types({ { key, 'hash' } })
    if key_type(key) ~= 'none' then
        fail('ERR', "batch '" .. id .. "' already exists in queue '" .. queue .. "'")
    end
    local now, sec, usec = clock()
    local record = { 'queue', queue, 'total', itoa(#members), 'done', '0', 'succeeded', '0', 'failed', '0',
        'created_at', itoa(now) }
    if on_complete then
        record[#record + 1] = 'callback_task'
        record[#record + 1] = on_complete[1]
        record[#record + 1] = 'callback_payload'
        record[#record + 1] = on_complete[2]
    end
    call('HSET', key, unpack(record))
    local ids = {}
    for n, member in ipairs(members) do
        local spec = { task = member[1], payload = member[2], batch = id, after = {}, queue_checked = true,
            retries = template.retries, timeout = template.timeout, backoff = template.backoff,
            priority = template.priority, keep = template.keep }
        ids[n] = enqueue_job(k, spec, now, sec, usec)
    end
    return ids
end

register('zrq_batch', batch)
end -- 48_batch.lua

do -- 49_batchinfo.lua: its locals are its own
--------------------------------------------------------------------------------------------------
-- zrq_batchinfo: ZRQ.BATCHINFO <queue> <batch>                  (no-writes; commands/batchinfo.rs)
-- KEYS[1] the queue; ARGV batch id.
-- Reply   a map: id, total, done, succeeded, failed, callback_id (once enqueued); nil if unknown.
-- Errors  ERR, WRONGTYPE, CORRUPT (a record zrq did not write), INTERNAL.
--------------------------------------------------------------------------------------------------

local function batchinfo(keys, argv)
    local queue, id = queue_and_name(keys, argv, 'zrq.batchinfo', 'batch')
    local batch = load_batch(queue_keys(queue), id)
    if batch == nil then
        return nil
    end
    return { map = { id = id, total = batch.total, done = batch.done, succeeded = batch.succeeded,
        failed = batch.failed, callback_id = batch.callback_id } }
end

register('zrq_batchinfo', batchinfo)
end -- 49_batchinfo.lua

do -- 51_schedule.lua: its locals are its own
--------------------------------------------------------------------------------------------------
-- zrq_schedule: ZRQ.SCHEDULE <queue> <name> EVERY <ms> | CRON <expr> <task> <payload>
--               [RETRIES|TIMEOUT|BACKOFF|PRIORITY|UNIQUE|KEEP <v>]          (commands/schedule.rs)
-- KEYS[1] the queue; ARGV name, EVERY <1.. ms> or CRON "<min hour dom month dow>" (UTC), the
--         job's task and payload, job options.
-- Reply   the first run (unix ms). Redefining a name replaces it.
-- Errors  ERR (arity, names, kind, EVERY, CRON, options), BADJSON, WRONGTYPE, INTERNAL.
-- Not in Lua: the module's timer fires due ticks; with Lua, FETCH on the queue does.
--------------------------------------------------------------------------------------------------

local function schedule(keys, argv)
    local queue, schedule_name, args = queue_and_name(keys, argv, 'zrq.schedule', 'name', 6)
    local definition = { name = schedule_name }
    local kind = args[3]:upper()
    if kind == 'EVERY' then
        definition.every = integer('EVERY', args[4], 1, MAX_DURATION_MS)
        if definition.every < CONFIG.every_min_ms then
            limit('EVERY ' .. itoa(definition.every) .. ' is shorter than ' .. itoa(CONFIG.every_min_ms),
                'every-min-ms', CONFIG.every_min_ms)
        end
    elseif kind == 'CRON' then
        if not is_utf8(args[4]) then
            bad_cron('not UTF-8')
        end
        cron_parse(args[4])
        definition.cron = args[4]
    else
        fail('ERR', "schedule kind must be one of EVERY, CRON, got '" .. show_arg(args[3]) .. "'")
    end
    local spec = { after = {} }
    spec.task = name('task', args[5])
    spec.payload = payload_arg(args[6])
    for option, value in options(args, 7, CORE.schedule.JOB_OPTIONS) do
        set_enqueue_option(spec, option, value)
    end
    definition.task, definition.payload = spec.task, spec.payload
    definition.retries = spec.retries or CORE.enqueue.DEFAULT_RETRIES
    definition.timeout = spec.timeout or CORE.enqueue.DEFAULT_TIMEOUT_MS
    definition.priority = spec.priority or 0
    definition.backoff, definition.unique, definition.keep = spec.backoff, spec.unique, spec.keep

    local k = checked_queue_keys(queue)
    local now = clock()
    local first = next_run(definition, now, now)
    if first == nil then
        bad_cron('it never matches')
    end
    if not call('HGET', k.schedules, definition.name) and call('HLEN', k.schedules) >= CONFIG.schedules_max then
        limit("queue '" .. queue .. "' has " .. itoa(CONFIG.schedules_max) .. ' schedules already', 'schedules-max',
            CONFIG.schedules_max)
    end
    call('HSET', k.schedules, definition.name, definition_json(definition))
    call('ZADD', k.ticks, itoa(first), definition.name)
    count_stat(k, 'enqueued', '0')
    return first
end

register('zrq_schedule', schedule)
end -- 51_schedule.lua

do -- 52_ticks.lua: its locals are its own
--------------------------------------------------------------------------------------------------
-- Firing due schedule ticks (core/src/commands/promote.rs), from promote_due (19_mod.lua).
--------------------------------------------------------------------------------------------------

-- Whether the server is at its maxmemory (never without one), read from INFO memory: the
-- library's functions run `allow-oom` (FETCH, RECLAIM), so Redis would not stop their writes.
-- (store.rs memory_full; Redis' own check also leaves replication buffers out of used_memory.)
-- A caller whose ACL denies INFO (a tenant, `-@dangerous`) cannot tell: then ticks fire.
local function memory_full()
    local text = redis.pcall('INFO', 'memory')
    if type(text) ~= 'string' then
        return false
    end
    local used = tonumber(text:match('\nused_memory:(%d+)'))
    local max = tonumber(text:match('\nmaxmemory:(%d+)'))
    return max ~= nil and max > 0 and used ~= nil and used >= max
end

-- Fires every due tick of the queue (promote.rs): enqueues the definition's job (its record names
-- the schedule in `schedule`), records its last run, and moves the tick to the next run (or drops
-- it). At maxmemory a tick is skipped instead (the module also counts it in INFO zrq; the library
-- has no INFO section).
fire_due_ticks = function(k, now)
    local due_ticks = call('ZRANGE', k.ticks, '-inf', itoa(now), 'BYSCORE', 'WITHSCORES', 'LIMIT', '0',
        itoa(CORE.promote.BATCH))
    local full = #due_ticks > 0 and memory_full()
    -- A definition's payload is checked as JSON again before its job is made (stored data is never
    -- trusted): one call reads at most about payload-max-bytes of definitions (at least one), and
    -- the ticks left stay due for the next FETCH (promote.rs, the same bound).
    local read = 0
    for n = 1, #due_ticks, 2 do
        local schedule, due = due_ticks[n], tonumber(due_ticks[n + 1]) or now
        local text = is_utf8(schedule) and call('HGET', k.schedules, schedule)
        if type(text) == 'string' then
            if read > 0 and read + #text > CONFIG.payload_max_bytes then
                break
            end
            read = read + #text
        end
        local ok, definition = false, nil
        if type(text) == 'string' then
            ok, definition = pcall(definition_from_json, k.schedules, text)
        end
        if not ok then
            call('ZREM', k.ticks, schedule)
        else
            if not full then
                enqueue_job(k, { task = definition.task, payload = definition.payload,
                    retries = definition.retries, timeout = definition.timeout, priority = definition.priority,
                    backoff = definition.backoff, unique = definition.unique, keep = definition.keep, after = {},
                    schedule = definition.name },
                    now)
                definition.last_run = now
                call('HSET', k.schedules, schedule, definition_json(definition))
            end
            local next_at = next_run(definition, due, now)
            if next_at ~= nil then
                call('ZADD', k.ticks, itoa(next_at), schedule)
            else
                call('ZREM', k.ticks, schedule)
            end
        end
    end
end
end -- 52_ticks.lua

do -- 53_unschedule.lua: its locals are its own
--------------------------------------------------------------------------------------------------
-- zrq_unschedule: ZRQ.UNSCHEDULE <queue> <name>                           (commands/unschedule.rs)
-- KEYS[1] the queue; ARGV the schedule's name.
-- Reply   1 if it existed (now removed), else 0. Jobs it already enqueued are not touched.
-- Errors  ERR, WRONGTYPE, INTERNAL.
--------------------------------------------------------------------------------------------------

local function unschedule(keys, argv)
    local queue, schedule_name = queue_and_name(keys, argv, 'zrq.unschedule', 'name')
    local k = checked_queue_keys(queue)
    if not call('HGET', k.schedules, schedule_name) then
        return REPLY.NOTHING
    end
    call('HDEL', k.schedules, schedule_name)
    call('ZREM', k.ticks, schedule_name)
    return REPLY.DONE
end

register('zrq_unschedule', unschedule)
end -- 53_unschedule.lua

do -- 54_schedules.lua: its locals are its own
--------------------------------------------------------------------------------------------------
-- zrq_schedules: ZRQ.SCHEDULES <queue>                          (no-writes; commands/schedules.rs)
-- KEYS[1] the queue; ARGV none.
-- Reply   every definition as a map, by name: name, every or cron, task, payload, retries,
--         timeout, priority, backoff, keep, last_run, next_run, unique (present ones).
-- Errors  ERR, WRONGTYPE, CORRUPT, INTERNAL.
--------------------------------------------------------------------------------------------------

local function schedules(keys, argv)
    local args = command_args(keys, argv, 'zrq.schedules', 1, true)
    local k = queue_keys(name('queue', args[1]))
    check_types({ { k.schedules, 'hash' }, { k.ticks, 'zset' } })
    local flat = call('HGETALL', k.schedules)
    local entries = {}
    for n = 1, #flat, 2 do
        if is_utf8(flat[n]) and is_utf8(flat[n + 1]) then
            entries[#entries + 1] = { flat[n], flat[n + 1] }
        end
    end
    table.sort(entries, function(a, b)
        if a[1] ~= b[1] then
            return byte_less(a[1], b[1])
        end
        return byte_less(a[2], b[2])
    end)
    local out = {}
    for n, entry in ipairs(entries) do
        local definition = definition_from_json(k.schedules, entry[2])
        local score = call('ZSCORE', k.ticks, entry[1])
        local map = {}
        for _, f in ipairs(DEFINITION_FIELDS) do
            map[f[1]] = definition[f[1]]
        end
        map.next_run = score and tonumber(score) or nil
        out[n] = { map = map }
    end
    return out
end

register('zrq_schedules', schedules)
end -- 54_schedules.lua

do -- 90_version.lua: its locals are its own
--------------------------------------------------------------------------------------------------
-- zrq_version                                           (no-writes)
--
-- KEYS     none (FCALL zrq_version 0)
-- ARGV     none
-- Reply    the library version (bulk string), zrq_lua::VERSION. A client compares it with the
--          library it embeds and runs FUNCTION LOAD REPLACE when they differ.
--------------------------------------------------------------------------------------------------

redis.register_function({
    function_name = 'zrq_version',
    callback = function()
        return VERSION
    end,
    flags = { 'no-writes' },
})
end -- 90_version.lua

