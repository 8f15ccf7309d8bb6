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
