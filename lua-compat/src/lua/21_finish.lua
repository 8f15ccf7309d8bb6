--------------------------------------------------------------------------------------------------
-- Ending a job (core/src/commands/mod.rs finish, failed_attempt): after flow.rs, whose
-- settle it calls.
--------------------------------------------------------------------------------------------------

-- Ends `job` in `state` and settles what depended on it. (mod.rs finish)
local function finish(k, job, state, fields, now)
    finish_one(k, job, state, fields, now)
    if job.children == nil and job.batch == nil then
        -- Nothing depends on it (most jobs): nothing to settle.
        return
    end
    local result
    for n = 1, #fields, 2 do
        if fields[n] == 'result' then
            result = fields[n + 1]
        end
    end
    settle(k, job, result, now)
end

-- A failed attempt (FAIL, or a lease expired in RECLAIM), counted in the stats: the job ends
-- cancelled if that was requested, else dead if it has no attempts left, either way with
-- `error_text`, and this returns true; false means the caller retries it.
local function failed_attempt(k, job, error_text, now)
    count_stat(k, 'failed', '1')
    if job.cancel_requested ~= nil then
        finish(k, job, 'cancelled', { 'error', error_text }, now)
    elseif job.attempt >= job.max_attempts then
        finish(k, job, 'dead', { 'error', error_text }, now)
    else
        return false
    end
    return true
end
