--------------------------------------------------------------------------------------------------
-- zrq_enqueue: ZRQ.ENQUEUE <queue> <task> <payload> [ID <id>] [RETRIES <n>] [TIMEOUT <ms>]
--   (core/src/commands/enqueue.rs)
--
-- KEYS[1]  the queue
-- ARGV     task, payload (JSON), then options: ID <id>, RETRIES <0..1000> (default 3),
--          TIMEOUT <1..315360000000 ms> (default 30000)
-- Reply    the job id (bulk string): a new UUIDv7, or the given ID. An ID that exists already
--          returns that id and writes nothing (idempotent producers).
-- Writes   XGROUP CREATE <stream> zrq 0 MKSTREAM (first job), XADD <stream> * job <id>,
--          HSET zrq:{q}:job:<id> (state pending, attempt 0), HINCRBY zrq:{q}:stats enqueued 1,
--          and, Lua only, RPUSH zrq:{q}:wake 1 + LTRIM to the newest 128 tokens (wakes one client
--          blocked in BLPOP on it; see docs/LUA.md).
-- Errors   ERR (arity, names, options, numbers), BADJSON (payload), WRONGTYPE (stream, job record,
--          stats or wake key of another type), INTERNAL.
--------------------------------------------------------------------------------------------------

local DEFAULT_RETRIES = 3
local DEFAULT_TIMEOUT_MS = 30000

local function enqueue(keys, argv)
    local args = arguments(keys, argv)
    if #args < 3 then
        arity_error('zrq.enqueue')
    end
    require_one_key('zrq_enqueue', keys)
    local queue = name('queue', args[1])
    local task = name('task', args[2])
    local payload = json('payload', args[3])
    local id, retries, timeout = nil, DEFAULT_RETRIES, DEFAULT_TIMEOUT_MS
    for option, value in options(args, 4, { 'ID', 'RETRIES', 'TIMEOUT' }) do
        if option == 'ID' then
            id = name('ID', value)
        elseif option == 'RETRIES' then
            retries = integer('RETRIES', value, 0, MAX_RETRIES)
        else
            timeout = integer('TIMEOUT', value, 1, MAX_DURATION_MS)
        end
    end

    local k = queue_keys(queue)
    local now, sec, usec = clock()
    id = id or new_id(queue, sec, usec)
    local job_key = k.job(id)
    check_types({ { k.stream, 'stream' }, { job_key, 'hash' }, { k.stats, 'hash' }, { k.wake, 'list' } })
    if key_type(job_key) ~= 'none' then
        return id
    end
    if key_type(k.stream) == 'none' then
        call('XGROUP', 'CREATE', k.stream, GROUP, '0', 'MKSTREAM')
    end
    local entry = call('XADD', k.stream, '*', ENTRY_FIELD, id)
    local job = {
        id = id,
        queue = queue,
        task = task,
        payload = payload,
        state = 'pending',
        attempt = 0,
        max_attempts = retries + 1,
        timeout = timeout,
        created_at = now,
        entry = entry,
    }
    call('HSET', job_key, unpack(job_hset_args(job)))
    call('HINCRBY', k.stats, 'enqueued', '1')
    call('RPUSH', k.wake, '1')
    call('LTRIM', k.wake, itoa(-WAKE_CAP), '-1')
    return id
end

register('zrq_enqueue', enqueue, 'write-deny-oom')
