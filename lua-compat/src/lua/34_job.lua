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
