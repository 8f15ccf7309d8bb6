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
