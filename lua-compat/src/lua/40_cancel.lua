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
