-- zrq_result: ZRQ.RESULT <queue> <id> [BLOCK <ms>]                  (no-writes; commands/result.rs)
-- KEYS[1] the queue; ARGV id, option BLOCK <0.. ms> (validated; a script cannot block: the client
--         waits for the job's final state on the zrq:{q}:events channel, see docs/LUA.md).
-- Reply   nil while the job is unfinished; else a map: state, result, error, finished_at
--         (present ones).
-- Errors  ERR, NOJOB (no such job), WRONGTYPE, CORRUPT, INTERNAL.
--------------------------------------------------------------------------------------------------

local function result_of(keys, argv)
    local queue, id, args = queue_and_name(keys, argv, 'zrq.result', 'id', 2)
    for _, value in options(args, 3, CORE.result.OPTIONS) do
        integer('BLOCK', value, 0, MAX_DURATION_MS)
    end
    local job = load_job(queue_keys(queue), id)
    if not job then
        fail('NOJOB', "no job '" .. id .. "' in queue '" .. queue .. "'")
    end
    if not IS_FINAL[job.state] then
        return nil
    end
    return { map = { state = job.state, result = job.result, error = job.error, finished_at = job.finished_at } }
end

register('zrq_result', result_of)
