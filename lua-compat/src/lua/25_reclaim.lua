--------------------------------------------------------------------------------------------------
-- zrq_reclaim: ZRQ.RECLAIM <queue> <consumer> [COUNT <n>]
--   (core/src/commands/reclaim.rs)
--
-- KEYS[1]  the queue
-- ARGV     consumer, then option COUNT <1..1000> (default 10): most expired leases handled
-- Reply    array of jobs whose lease expired, oldest deadline first, now owned by the consumer
--          with attempt incremented and `error` saying which lease expired. A job that had used
--          all its attempts becomes dead instead and is not returned.
-- Writes   per reclaimed job: XCLAIM <stream> zrq <consumer> 0 <entry> JUSTID, HSET error, state,
--          attempt, consumer, started_at, ZADD zrq:{q}:active. Per dead job: XACK + XDEL,
--          ZREM active, HSET state dead, finished_at, error, ZADD zrq:{q}:dead <now> <id>,
--          HINCRBY zrq:{q}:stats dead 1. A lease without an active job behind it is dropped.
-- Errors   ERR (arity, names, options, numbers), WRONGTYPE (stream, active, dead or stats key),
--          INTERNAL.
--------------------------------------------------------------------------------------------------

local DEFAULT_RECLAIM_COUNT = 10

local function reclaim(keys, argv)
    local args = arguments(keys, argv)
    if #args < 2 then
        arity_error('zrq.reclaim')
    end
    require_one_key('zrq_reclaim', keys)
    local queue = name('queue', args[1])
    local consumer = name('consumer', args[2])
    local count = DEFAULT_RECLAIM_COUNT
    for _, value in options(args, 3, { 'COUNT' }) do
        count = integer('COUNT', value, 1, MAX_COUNT)
    end

    local k = queue_keys(queue)
    check_types({ { k.stream, 'stream' }, { k.active, 'zset' }, { k.dead, 'zset' }, { k.stats, 'hash' } })
    local now = clock()
    local expired = call('ZRANGE', k.active, '-inf', itoa(now), 'BYSCORE', 'LIMIT', '0', itoa(count))
    local reclaimed = {}
    for _, id in ipairs(expired) do
        if is_utf8(id) then
            local job = try_load_job(k, id)
            if not job or job.state ~= 'active' then
                call('ZREM', k.active, id)
            else
                local error_text = format('lease expired after %d ms (attempt %d of %d, consumer %s)',
                    job.timeout, job.attempt, job.max_attempts, job.consumer or '?')
                if job.attempt >= job.max_attempts then
                    leave_stream(k, job)
                    call('HSET', k.job(id), 'state', 'dead', 'finished_at', itoa(now), 'error', error_text)
                    call('ZADD', k.dead, itoa(now), id)
                    call('HINCRBY', k.stats, 'dead', '1')
                else
                    if job.entry ~= nil then
                        call('XCLAIM', k.stream, GROUP, consumer, '0', job.entry, 'JUSTID')
                    end
                    call('HSET', k.job(id), 'error', error_text)
                    job.error = error_text
                    start_attempt(k, job, consumer, now)
                    reclaimed[#reclaimed + 1] = job
                end
            end
        end
    end
    return jobs_reply(reclaimed)
end

register('zrq_reclaim', reclaim, 'write')
