--------------------------------------------------------------------------------------------------
-- zrq_fail: ZRQ.FAIL <queue> <id> <error> [RETRYIN <ms>] [LEASE <token>]     (commands/fail.rs)
-- KEYS[1] the queue; ARGV id, error (UTF-8, at most 65536 bytes), options RETRYIN <0.. ms>,
--         LEASE <token>.
-- Reply   the job's new state: retrying (backoff: RETRYIN, else BACKOFF or 1000 ms doubled per
--         attempt, capped at 1 h, with jitter in its upper half), dead (no attempts left),
--         cancelled (its cancellation was requested); nil if the job is not active (or, with
--         LEASE, not under that lease).
-- Errors  ERR, WRONGTYPE, CORRUPT, INTERNAL.
--------------------------------------------------------------------------------------------------

local BACKOFF_BASE_MS = CONFIG.backoff_base_ms
local BACKOFF_MAX_MS = CONFIG.backoff_max_ms

-- A number in 0..n from the clock and a counter (scripts have no useful randomness; the delay
-- reaches replicas as the written run_at, never recomputed).
local random_counter = 0
local function random_upto(n, seed)
    random_counter = random_counter + 1
    local digest = redis.sha1hex(seed .. ':' .. random_counter)
    return tonumber(sub(digest, 1, 12), 16) % (n + 1)
end

-- config.rs backoff_delay: half the exponential delay, plus jitter over the other half.
local function backoff_delay(base, attempt, seed)
    if attempt < 1 then
        attempt = 1
    end
    local full = base
    if full < 0 then
        full = 0
    end
    for _ = 2, attempt do
        full = full * 2
        if full >= BACKOFF_MAX_MS then
            break
        end
    end
    if full > BACKOFF_MAX_MS then
        full = BACKOFF_MAX_MS
    end
    local half = floor(full / 2)
    local spread = full - half
    if spread == 0 then
        return half
    end
    return half + random_upto(spread, seed)
end

local function fail_job(keys, argv)
    local queue, id, args = queue_and_name(keys, argv, 'zrq.fail', 'id', 3)
    local error_text = args[3]
    if not is_utf8(error_text) or #error_text > CORE.fail.MAX_ERROR_LEN then
        fail('ERR', 'error must be UTF-8 text of at most ' .. CORE.fail.MAX_ERROR_LEN .. ' bytes')
    end
    local retry_in, lease
    for option, value in options(args, 4, CORE.fail.OPTIONS) do
        if option == 'RETRYIN' then
            retry_in = integer('RETRYIN', value, 0, MAX_DURATION_MS)
        else
            lease = lease_token(value)
        end
    end

    local k, job = held_job(queue, id, lease, load_job_to_finish)
    if not job then
        return nil
    end
    local now, sec, usec = clock()
    if not failed_attempt(k, job, error_text, now) then
        local delay = retry_in or backoff_delay(job.backoff or BACKOFF_BASE_MS, job.attempt,
            sec .. ':' .. usec .. ':' .. id)
        local due = now + delay
        unlink(k, job)
        job.state = 'retrying'
        job.error = error_text
        job.run_at = due
        packed.save(k, job)
        call('ZADD', k.retrying, itoa(due), id)
        announce(k, id, 'retrying')
    end
    return job.state
end

register('zrq_fail', fail_job)
