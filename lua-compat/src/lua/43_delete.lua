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
    call('DEL', k.job(id))
    if not IS_FINAL[job.state] then
        job.state = 'cancelled'
        settle(k, job, nil, clock())
    end
    return REPLY.DONE
end

register('zrq_delete', delete)
