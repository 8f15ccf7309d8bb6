--------------------------------------------------------------------------------------------------
-- zrq_ack: ZRQ.ACK <queue> <id> [RESULT <json>] [LEASE <token>]
--   (core/src/commands/ack.rs)
--
-- KEYS[1]  the queue
-- ARGV     job id, then options RESULT <json>, LEASE <token>
-- Reply    1 if the job was active and is now completed (result stored); 0 if it was not active
--          (unknown, pending, finished …) or, with LEASE, not under that lease; -1 if its cancellation was requested meanwhile (it is
--          now cancelled, result stored).
-- Writes   the job leaves its lease (ZREM active; its entry left the stream at FETCH; one an
--          older zrq delivered is XACKed and XDELed);
--          SET of the whole record (state, finished_at [, result], no entry) PX <keep> (its
--          retention); ZADD zrq:{q}:completed|cancelled <now + keep>; UNIQUE key freed; HINCRBY zrq:{q}:stats
--          completed|cancelled 1; PUBLISH zrq:{q}:events; waiting children released (or
--          cancelled in cascade) and its batch counted, as in the module.
-- Errors   ERR (arity, names, options), BADJSON (RESULT), WRONGTYPE, CORRUPT, INTERNAL.
--------------------------------------------------------------------------------------------------

local function ack(keys, argv)
    local queue, id, args = queue_and_name(keys, argv, 'zrq.ack', 'id', 2)
    local result, lease
    for option, value in options(args, 3, CORE.ack.OPTIONS) do
        if option == 'RESULT' then
            within('RESULT', #value, 'result-max-bytes', CONFIG.result_max_bytes)
            result = json('RESULT', value)
        else
            lease = lease_token(value)
        end
    end

    local k = queue_keys(queue)
    local job = load_job_to_finish(k, id)
    if not job or job.state ~= 'active' or (lease ~= nil and job.lease ~= lease) then
        return REPLY.NOTHING
    end
    local now = clock()
    local fields = {}
    if result ~= nil then
        fields = { 'result', result }
    end
    local state, reply = 'completed', REPLY.DONE
    if job.cancel_requested ~= nil then
        state, reply = 'cancelled', REPLY.CANCELLED
    end
    -- Only the keys this job's ending writes (a job that is not held changed nothing).
    check_finish_types(k, job, state)
    finish(k, job, state, fields, now)
    return reply
end

register('zrq_ack', ack)
