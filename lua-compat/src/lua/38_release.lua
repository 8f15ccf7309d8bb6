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
