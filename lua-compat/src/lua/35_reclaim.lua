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
