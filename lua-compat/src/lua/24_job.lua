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
    local args = arguments(keys, argv)
    if #args ~= 2 then
        arity_error('zrq.job')
    end
    require_one_key('zrq_job', keys)
    local queue = name('queue', args[1])
    local id = name('id', args[2])
    local job = load_job(queue_keys(queue), id)
    if not job then
        return nil
    end
    return job_reply(job)
end

register('zrq_job', job_of, 'readonly')
