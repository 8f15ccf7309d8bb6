--------------------------------------------------------------------------------------------------
-- The lifecycle commands beyond the core six, one function each (core/src/commands/*.rs). Each
-- header states KEYS, ARGV, reply and errors; the writes are those of the module's command.
--------------------------------------------------------------------------------------------------

-- Up to `count` members of a sorted set from rank `start` (store.rs zrange).
local function zrange(key, start, count)
    if count <= 0 then
        return {}
    end
    local out = {}
    for _, member in ipairs(call('ZRANGE', key, itoa(start), itoa(start + count - 1))) do
        if is_utf8(member) then
            out[#out + 1] = member
        end
    end
    return out
end

-- A cursor that is a rank in a sorted set: an integer from 0 (mod.rs rank_cursor).
local function rank_cursor(raw)
    return integer('CURSOR', raw, 0, 9223372036854775807, '9223372036854775807')
end

-- A `pending` cursor: '0', or '<priority>:<ms>-<seq>' (at most 19 digits each) as a previous
-- page returned it; returns nil (start) or { priority, entry }. (list.rs pending_cursor)
local function pending_cursor(raw)
    if raw == '0' then
        return nil
    end
    local priority, ms, seq = raw:match('^(%d):(%d+)%-(%d+)$')
    if not priority or #ms > 19 or #seq > 19 or tonumber(priority) > MAX_PRIORITY then
        fail('ERR', "CURSOR must be 0 or <priority>:<entry-id> as returned by ZRQ.LIST pending, got '"
            .. show_arg(raw) .. "'")
    end
    return { tonumber(priority), ms .. '-' .. seq }
end

-- COUNT (1..1000, default 10) and CURSOR (read by `read_cursor`, `start` when not given) of
-- paged commands (mod.rs paging).
local function paging(args, first, start, read_cursor)
    local count, cursor = 10, start
    for option, value in options(args, first, { 'COUNT', 'CURSOR' }) do
        if option == 'COUNT' then
            count = integer('COUNT', value, 1, MAX_COUNT)
        else
            cursor = read_cursor(value)
        end
    end
    return count, cursor
end

-- The next cursor of a page of a sorted set listed by rank: '0' at the end (mod.rs next_rank).
local function next_rank(cursor, count, total)
    local next_cursor = cursor + count
    if next_cursor >= total then
        next_cursor = 0
    end
    return itoa(next_cursor)
end

-- The jobs behind `ids` as replies, skipping ids whose record is gone (mod.rs load_jobs).
local function load_jobs(k, ids)
    local out = {}
    for _, id in ipairs(ids) do
        local job = load_job(k, id)
        if job then
            out[#out + 1] = job_reply(job)
        end
    end
    return out
end

-- Entries of a stream not yet delivered to the group: length, and a page of their job ids.
local function undelivered_len(stream)
    return call('XLEN', stream) - call('XPENDING', stream, GROUP)[1]
end

-- Whether stream entry id `a` comes before `b` (`<ms>-<seq>`, compared as numbers of any size).
local function entry_before(a, b)
    local function number_less(x, y)
        x, y = x:gsub('^0+', ''), y:gsub('^0+', '')
        if #x ~= #y then
            return #x < #y
        end
        return byte_less(x, y)
    end
    local a_ms, a_seq = a:match('^(%d+)%-(%d+)$')
    local b_ms, b_seq = b:match('^(%d+)%-(%d+)$')
    if a_ms ~= b_ms and (number_less(a_ms, b_ms) or number_less(b_ms, a_ms)) then
        return number_less(a_ms, b_ms)
    end
    return number_less(a_seq, b_seq)
end

-- Up to `count` entries not delivered to the group, after entry `after` if given: a list of
-- { entry id, job id }. (store.rs undelivered)
local function undelivered_entries(stream, after, count)
    local start = call('XPENDING', stream, GROUP)[3]
    if type(start) ~= 'string' or (after and entry_before(start, after)) then
        start = after
    end
    local out = {}
    local entries = call('XRANGE', stream, start and ('(' .. start) or '-', '+', 'COUNT', itoa(count))
    for _, entry in ipairs(entries) do
        local fields = entry[2] or {}
        for f = 1, #fields, 2 do
            if fields[f] == ENTRY_FIELD and is_utf8(fields[f + 1]) then
                out[#out + 1] = { entry[1], fields[f + 1] }
                break
            end
        end
    end
    return out
end

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

local MAX_ERROR_LEN = 65536
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
    if not is_utf8(error_text) or #error_text > MAX_ERROR_LEN then
        fail('ERR', 'error must be UTF-8 text of at most ' .. MAX_ERROR_LEN .. ' bytes')
    end
    local retry_in, lease
    for option, value in options(args, 4, { 'RETRYIN', 'LEASE' }) do
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
        job.state = 'retrying'
        unlink(k, job)
        call('HSET', k.job(id), 'state', 'retrying', 'error', error_text, 'run_at', itoa(due))
        call('ZADD', k.retrying, itoa(due), id)
        announce(k, id, 'retrying')
    end
    return job.state
end

register('zrq_fail', fail_job, 'write')

--------------------------------------------------------------------------------------------------
-- zrq_touch: ZRQ.TOUCH <queue> <id> [TIMEOUT <ms>] [PROGRESS <0-100>] [LEASE <token>]
--   (commands/touch.rs)
-- KEYS[1] the queue; ARGV id, options TIMEOUT <1.. ms> (the new lease length), PROGRESS <0..100>,
--         LEASE <token>.
-- Reply   1 (lease extended from now), 0 (job not active, or not under that lease), -1 (its
--         cancellation was requested).
-- Errors  ERR, WRONGTYPE, CORRUPT, INTERNAL.
--------------------------------------------------------------------------------------------------

local function touch(keys, argv)
    local queue, id, args = queue_and_name(keys, argv, 'zrq.touch', 'id', 2)
    local timeout, progress, lease
    for option, value in options(args, 3, { 'TIMEOUT', 'PROGRESS', 'LEASE' }) do
        if option == 'TIMEOUT' then
            timeout = integer('TIMEOUT', value, 1, MAX_DURATION_MS)
        elseif option == 'PROGRESS' then
            progress = integer('PROGRESS', value, 0, 100)
        else
            lease = lease_token(value)
        end
    end
    local k, job = held_job(queue, id, lease)
    if not job then
        return 0
    end
    if job.cancel_requested ~= nil then
        return -1
    end
    timeout = timeout or job.timeout
    local now = clock()
    call('ZADD', k.active, itoa(now + timeout), id)
    if progress ~= nil then
        call('HSET', k.job(id), 'timeout', itoa(timeout), 'progress', itoa(progress))
    else
        call('HSET', k.job(id), 'timeout', itoa(timeout))
    end
    return 1
end

register('zrq_touch', touch, 'write')

--------------------------------------------------------------------------------------------------
-- zrq_release: ZRQ.RELEASE <queue> <id> [LEASE <token>]                    (commands/release.rs)
-- KEYS[1] the queue; ARGV id, option LEASE <token>.
-- Reply   1 (back to pending at once, attempt decremented: the attempt does not count), 0 (job
--         not active, or not under that lease), -1 (its cancellation was requested: now cancelled).
-- Writes  XACK + XDEL of its entry, ZREM active, HSET attempt, then as a job entering its stream
--         (XADD, HSET state entry, PUBLISH "pending <id>", a wake-up token).
-- Errors  ERR, WRONGTYPE, CORRUPT, INTERNAL.
--------------------------------------------------------------------------------------------------

local function release(keys, argv)
    local queue, id, args = queue_and_name(keys, argv, 'zrq.release', 'id', 2)
    local lease
    for _, value in options(args, 3, { 'LEASE' }) do
        lease = lease_token(value)
    end
    local k, job = held_job(queue, id, lease, load_job_to_finish)
    if not job then
        return 0
    end
    if job.cancel_requested ~= nil then
        finish(k, job, 'cancelled', {}, clock())
        return -1
    end
    unlink(k, job)
    job.attempt = job.attempt - 1
    if job.attempt < 0 then
        job.attempt = 0
    end
    call('HSET', k.job(id), 'attempt', itoa(job.attempt))
    make_pending(k, job)
    return 1
end

register('zrq_release', release, 'write')

--------------------------------------------------------------------------------------------------
-- zrq_result: ZRQ.RESULT <queue> <id> [BLOCK <ms>]                  (no-writes; commands/result.rs)
-- KEYS[1] the queue; ARGV id, option BLOCK <0.. ms> (validated; a script cannot block: the client
--         waits for the job's final state on the zrq:{q}:events channel, see docs/LUA.md).
-- Reply   nil while the job is unfinished; else a map: state, result, error, finished_at
--         (present ones).
-- Errors  ERR, NOJOB (no such job), WRONGTYPE, CORRUPT, INTERNAL.
--------------------------------------------------------------------------------------------------

local function result_of(keys, argv)
    local queue, id, args = queue_and_name(keys, argv, 'zrq.result', 'id', 2)
    for _, value in options(args, 3, { 'BLOCK' }) do
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

register('zrq_result', result_of, 'readonly')

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
        return 0
    end
    if job.state == 'active' then
        call('HSET', k.job(id), 'cancel_requested', '1')
        return 2
    end
    if not CANCELLABLE[job.state] then
        return 0
    end
    finish(k, job, 'cancelled', {}, clock())
    return 1
end

register('zrq_cancel', cancel, 'write')

--------------------------------------------------------------------------------------------------
-- zrq_dead: ZRQ.DEAD <queue> [COUNT <n>] [CURSOR <c>]                 (no-writes; commands/dead.rs)
-- KEYS[1] the queue; ARGV options COUNT <1..1000> (default 10), CURSOR <0..> (default 0).
-- Reply   [next-cursor, jobs]: dead jobs oldest first; next cursor 0 at the end.
-- Errors  ERR, WRONGTYPE, CORRUPT, INTERNAL.
--------------------------------------------------------------------------------------------------

local function dead_jobs(keys, argv)
    local args = command_args(keys, argv, 'zrq.dead', 1)
    local queue = name('queue', args[1])
    local count, cursor = paging(args, 2, 0, rank_cursor)
    local k = queue_keys(queue)
    check_types({ { k.dead, 'zset' } })
    local ids = zrange(k.dead, cursor, count)
    return { next_rank(cursor, count, call('ZCARD', k.dead)), load_jobs(k, ids) }
end

register('zrq_dead', dead_jobs, 'readonly')

--------------------------------------------------------------------------------------------------
-- zrq_requeue: ZRQ.REQUEUE <queue> <id> | ALL [COUNT <n>] [CURSOR <c>]       (commands/requeue.rs)
-- KEYS[1] the queue; ARGV a dead job's id, or ALL with options COUNT <1..requeue-max> (default
--         requeue-max), CURSOR <0..> (default 0).
-- Reply   <id>: 1 if the dead job is pending again (with a fresh attempt budget), else 0.
--         ALL: [next-cursor, requeued] for the page of the dead set at ranks [rank, rank + count);
--         next cursor 0 at the end. Requeued jobs leave the set, so the next page starts after
--         only what the pages before it left in place (records that cannot be read); the cursor
--         is that rank plus one, so that 0 can mean the end (0 given starts at rank 0 too).
-- Errors  ERR, WRONGTYPE, CORRUPT, LIMIT, INTERNAL.
--------------------------------------------------------------------------------------------------

-- Puts `job` back to pending with a fresh attempt budget if it is dead; whether it was.
local function requeue_dead(k, job)
    if job.state ~= 'dead' then
        return false
    end
    call('ZREM', k.dead, job.id)
    call('HSET', k.job(job.id), 'attempt', '0')
    call('HDEL', k.job(job.id), 'finished_at', 'cancel_requested')
    job.attempt = 0
    if job.unique ~= nil and not call('HGET', k.unique, job.unique) then
        call('HSET', k.unique, job.unique, job.id)
    end
    make_pending(k, job)
    return true
end

local function requeue(keys, argv)
    local queue, id, args = queue_and_name(keys, argv, 'zrq.requeue', 'id', 2)
    if id:upper() ~= 'ALL' then
        -- Options page through ALL; one job takes none.
        if #args ~= 2 then
            arity_error('zrq.requeue')
        end
        local k = checked_queue_keys(queue)
        -- The one job named by the command is refused if unreadable, before any write.
        local job = load_job(k, id)
        if job and requeue_dead(k, job) then
            return 1
        end
        return 0
    end
    local count, cursor = CONFIG.requeue_max, 0
    for option, value in options(args, 3, { 'COUNT', 'CURSOR' }) do
        if option == 'COUNT' then
            count = integer('COUNT', value, 1, 9223372036854775807, '9223372036854775807')
            if count > CONFIG.requeue_max then
                limit('COUNT asks for more than ' .. itoa(CONFIG.requeue_max) .. ' jobs', 'requeue-max',
                    CONFIG.requeue_max)
            end
        else
            cursor = rank_cursor(value)
        end
    end
    local k = checked_queue_keys(queue)
    local rank = math.max(cursor - 1, 0)
    -- The page is the dead set's ranks [rank, rank + count) as they are now.
    local examined = math.max(math.min(call('ZCARD', k.dead) - rank, count), 0)
    local requeued = 0
    for _, dead_id in ipairs(zrange(k.dead, rank, examined)) do
        -- An unreadable dead job is left alone (and in place), so the others are still requeued
        -- and an error never comes after a write.
        local job = try_load_job(k, dead_id)
        if job and requeue_dead(k, job) then
            requeued = requeued + 1
        end
    end
    -- What the page left in place still comes before the next page.
    local next_rank_at = rank + examined - requeued
    if call('ZCARD', k.dead) <= next_rank_at then
        return { '0', requeued }
    end
    return { itoa(next_rank_at + 1), requeued }
end

register('zrq_requeue', requeue, 'write-deny-oom')

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
        return 0
    end
    unlink(k, job)
    for _, index in ipairs({ k.dead, k.completed, k.cancelled, k.waiting }) do
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
    return 1
end

register('zrq_delete', delete, 'write')

--------------------------------------------------------------------------------------------------
-- zrq_pause / zrq_resume: ZRQ.PAUSE <queue>, ZRQ.RESUME <queue>                (commands/pause.rs)
-- KEYS[1] the queue; ARGV none.
-- Reply   OK. While zrq:{q}:paused exists FETCH delivers nothing; RESUME deletes it (and, Lua
--         only, pushes a wake-up token so blocked clients look again).
-- Errors  ERR, WRONGTYPE (paused key), INTERNAL.
--------------------------------------------------------------------------------------------------

local function pause_or_resume(command, paused)
    return function(keys, argv)
        local args = command_args(keys, argv, command, 1, true)
        local k = queue_keys(name('queue', args[1]))
        check_types({ { k.paused, 'string' } })
        if paused then
            call('SET', k.paused, '1')
        else
            check_types({ { k.wake, 'list' } })
            call('DEL', k.paused)
            call('RPUSH', k.wake, '1')
            call('LTRIM', k.wake, itoa(-WAKE_CAP), '-1')
        end
        return redis.status_reply('OK')
    end
end

register('zrq_pause', pause_or_resume('zrq.pause', true), 'write')
register('zrq_resume', pause_or_resume('zrq.resume', false), 'write')

--------------------------------------------------------------------------------------------------
-- zrq_info: ZRQ.INFO <queue>                                          (no-writes; commands/info.rs)
-- KEYS[1] the queue; ARGV none.
-- Reply   a map: jobs per state now (pending, waiting, scheduled, active, retrying, completed,
--         dead, cancelled), totals since the queue was created (total_enqueued, total_completed,
--         total_failed, total_dead, total_cancelled, total_dropped), oldest_pending_age_ms, paused.
-- Errors  ERR, WRONGTYPE, INTERNAL.
--------------------------------------------------------------------------------------------------

local function info(keys, argv)
    local args = command_args(keys, argv, 'zrq.info', 1, true)
    local k = checked_queue_keys(name('queue', args[1]))
    local now = clock()
    local pending, oldest = 0, nil
    for priority = 0, MAX_PRIORITY do
        local stream = k.stream_at(priority)
        if key_type(stream) ~= 'none' then
            pending = pending + undelivered_len(stream)
            local first = undelivered_entries(stream, nil, 1)[1]
            if first then
                local at = call('HGET', k.job(first[2]), 'created_at')
                at = type(at) == 'string' and parse_i64(at)
                if at and (oldest == nil or at < oldest) then
                    oldest = at
                end
            end
        end
    end
    local map = { pending = pending }
    for _, state in ipairs({ 'waiting', 'scheduled', 'active', 'retrying', 'completed', 'dead', 'cancelled' }) do
        map[state] = call('ZCARD', k[state])
    end
    counters(map, utf8_hash(call('HGETALL', k.stats)),
        { 'enqueued', 'completed', 'failed', 'dead', 'cancelled', 'dropped' }, 'total_')
    local age = 0
    if oldest and now > oldest then
        age = now - oldest
    end
    map.oldest_pending_age_ms = age
    map.paused = key_type(k.paused) ~= 'none' and 1 or 0
    return { map = map }
end

register('zrq_info', info, 'readonly')

--------------------------------------------------------------------------------------------------
-- zrq_list: ZRQ.LIST <queue> <state> [COUNT <n>] [CURSOR <c>]         (no-writes; commands/list.rs)
-- KEYS[1] the queue; ARGV a state name (any case), options COUNT, CURSOR as for DEAD.
-- Reply   [next-cursor, jobs] of that state: pending in delivery order (highest priority first),
--         the others in their index's order.
-- Errors  ERR, WRONGTYPE, CORRUPT, INTERNAL.
--------------------------------------------------------------------------------------------------

local function list(keys, argv)
    local args = command_args(keys, argv, 'zrq.list', 2)
    local queue = name('queue', args[1])
    local state = is_utf8(args[2]) and args[2]:lower()
    if not IS_STATE[state] then
        fail('ERR', 'state must be one of ' .. table.concat(STATES, ', ') .. ", got '" .. show_arg(args[2]) .. "'")
    end
    local count, cursor
    if state == 'pending' then
        count, cursor = paging(args, 3, nil, pending_cursor)
    else
        count, cursor = paging(args, 3, 0, rank_cursor)
    end
    local k = checked_queue_keys(queue)
    local ids, next_cursor = {}, '0'
    if state == 'pending' then
        -- Reads one entry beyond the page to know whether there is a next one (list.rs pending_page).
        local found, wanted = {}, count + 1
        for priority = MAX_PRIORITY, 0, -1 do
            local resume
            if cursor and cursor[1] == priority then
                resume = cursor[2]
            end
            local stream = k.stream_at(priority)
            if (cursor == nil or cursor[1] >= priority) and #found < wanted and key_type(stream) ~= 'none' then
                for _, entry in ipairs(undelivered_entries(stream, resume, wanted - #found)) do
                    found[#found + 1] = { priority, entry[1], entry[2] }
                end
            end
        end
        if #found >= wanted then
            local last = found[count]
            next_cursor = last[1] .. ':' .. last[2]
        end
        for n = 1, math.min(count, #found) do
            ids[n] = found[n][3]
        end
    else
        ids = zrange(k[state], cursor, count)
        next_cursor = next_rank(cursor, count, call('ZCARD', k[state]))
    end
    return { next_cursor, load_jobs(k, ids) }
end

register('zrq_list', list, 'readonly')

--------------------------------------------------------------------------------------------------
-- zrq_queues: ZRQ.QUEUES [CURSOR <c>] [COUNT <n>]                   (no-writes; commands/queues.rs)
-- KEYS    none (FCALL zrq_queues 0 ...); ARGV options CURSOR <0..> (default 0), COUNT <1..250>
--         (default 100): about how many keys this step of the scan examines.
-- Reply   [next-cursor, [queue...]]: the queues (each has a zrq:{q}:stats key) found by one step of
--         SCAN <cursor> MATCH zrq:{*}:stats COUNT <n>, sorted, only those the caller may read: it
--         could run FCALL_RO (or FCALL) zrq_queues with the queue as its key (redis.acl_check_cmd),
--         the module's check of read permission on the queue's name. Cursor 0 ends the scan. On a
--         cluster: the node's queues.
-- Errors  ERR (options), NOPERM (the caller may not run SCAN, checked first), INTERNAL.
--------------------------------------------------------------------------------------------------

local QUEUES_DEFAULT_COUNT, QUEUES_MAX_COUNT = 100, 250

-- Whether the caller may read `queue`: the ACL check of an FCALL that would name it as its key
-- (FCALL_RO needs read permission on the key; FCALL, for a caller without FCALL_RO, read-write).
local function may_read(queue)
    return redis.acl_check_cmd('FCALL_RO', 'zrq_queues', '1', queue)
        or redis.acl_check_cmd('FCALL', 'zrq_queues', '1', queue)
end

local function queues(keys, argv)
    local args = arguments(keys, argv)
    -- The cursor goes to SCAN as the digits given (without leading zeros): a Lua number would
    -- lose the low digits of a cursor beyond 2^53.
    local count, cursor = QUEUES_DEFAULT_COUNT, '0'
    for option, value in options(args, 1, { 'COUNT', 'CURSOR' }) do
        if option == 'COUNT' then
            count = integer('COUNT', value, 1, QUEUES_MAX_COUNT)
        else
            rank_cursor(value)
            cursor = value:gsub('^0+', '')
            if cursor == '' then
                cursor = '0'
            end
        end
    end
    if not redis.acl_check_cmd('SCAN', '0') then
        fail('NOPERM', 'zrq_queues needs SCAN on the Lua backend, which this user may not run; '
            .. 'see docs/ACL.md')
    end
    local reply = call('SCAN', cursor, 'MATCH', 'zrq:{*}:stats', 'COUNT', itoa(count))
    local names, seen = {}, {}
    for _, key in ipairs(reply[2]) do
        local queue = key:match('^zrq:{(.*)}:stats$')
        if queue and not seen[queue] and pcall(name, 'queue', queue) and may_read(queue) then
            seen[queue] = true
            names[#names + 1] = queue
        end
    end
    table.sort(names, byte_less)
    return { reply[1], names }
end

register('zrq_queues', queues, 'readonly')

--------------------------------------------------------------------------------------------------
-- zrq_batch: ZRQ.BATCH <queue> <batch> [ON-COMPLETE <task> <payload>] [RETRIES|TIMEOUT|BACKOFF|
--            PRIORITY|KEEP <n>] JOB <task> <payload> [JOB <task> <payload> ...]  (commands/batch.rs)
-- KEYS[1] the queue; ARGV batch id, options (job options apply to every member), JOB … (repeat).
-- Reply   the members' ids, in order. When the last member finishes, the ON-COMPLETE job is
--         enqueued once with payload {"batch","succeeded","failed","payload"}.
-- Writes  HSET zrq:{q}:batch:<id> (queue, total, done, succeeded, failed, created_at, callback),
--         then every member as ENQUEUE writes it (with `batch`).
-- Errors  ERR (arity, no JOB, batch exists, options), BADJSON, WRONGTYPE, INTERNAL.
--------------------------------------------------------------------------------------------------

local BATCH_OPTIONS = { 'ON-COMPLETE', 'RETRIES', 'TIMEOUT', 'BACKOFF', 'PRIORITY', 'KEEP', 'JOB' }

local function batch(keys, argv)
    local queue, id, args = queue_and_name(keys, argv, 'zrq.batch', 'batch', 2)
    local template = { after = {} }
    local members, on_complete = {}, nil
    -- JOB and ON-COMPLETE take two values: the iterator hands over the first, `extra` the second.
    local at = 3
    local payload_bytes = 0
    while args[at] ~= nil do
        local word = args[at]
        local option
        for _, known in ipairs(BATCH_OPTIONS) do
            if known == word:upper() then
                option = known
            end
        end
        if not option then
            fail('ERR', "unknown option '" .. show_arg(word) .. "'")
        end
        if template['seen_' .. option] and not REPEATABLE[option] then
            fail('ERR', 'option ' .. option .. ' given more than once')
        end
        template['seen_' .. option] = true
        local value = args[at + 1]
        if value == nil then
            fail('ERR', 'option ' .. option .. ' needs a value')
        end
        at = at + 2
        if option == 'ON-COMPLETE' or option == 'JOB' then
            if option == 'JOB' and #members >= CONFIG.batch_max then
                limit('more than ' .. itoa(CONFIG.batch_max) .. ' JOB members', 'batch-max', CONFIG.batch_max)
            end
            local task = name('task', value)
            local payload = args[at]
            if payload == nil then
                fail('ERR', 'option ' .. option .. ' needs a value')
            end
            at = at + 1
            payload_bytes = payload_bytes + #payload
            within("the batch's payloads together", payload_bytes, 'payload-max-bytes', CONFIG.payload_max_bytes)
            payload = json('payload', payload)
            if option == 'JOB' then
                members[#members + 1] = { task, payload }
            else
                on_complete = { task, payload }
            end
        else
            set_enqueue_option(template, option, value)
        end
    end
    if #members == 0 then
        arity_error('zrq.batch')
    end
    local k = checked_queue_keys(queue)
    local key = k.batch(id)
    check_types({ { key, 'hash' } })
    if key_type(key) ~= 'none' then
        fail('ERR', "batch '" .. id .. "' already exists in queue '" .. queue .. "'")
    end
    local now, sec, usec = clock()
    local record = { 'queue', queue, 'total', itoa(#members), 'done', '0', 'succeeded', '0', 'failed', '0',
        'created_at', itoa(now) }
    if on_complete then
        record[#record + 1] = 'callback_task'
        record[#record + 1] = on_complete[1]
        record[#record + 1] = 'callback_payload'
        record[#record + 1] = on_complete[2]
    end
    call('HSET', key, unpack(record))
    local ids = {}
    for n, member in ipairs(members) do
        local spec = { task = member[1], payload = member[2], batch = id, after = {}, queue_checked = true,
            retries = template.retries, timeout = template.timeout, backoff = template.backoff,
            priority = template.priority, keep = template.keep }
        ids[n] = enqueue_job(k, spec, now, sec, usec)
    end
    return ids
end

register('zrq_batch', batch, 'write-deny-oom')

--------------------------------------------------------------------------------------------------
-- zrq_batchinfo: ZRQ.BATCHINFO <queue> <batch>                  (no-writes; commands/batchinfo.rs)
-- KEYS[1] the queue; ARGV batch id.
-- Reply   a map: id, total, done, succeeded, failed, callback_id (once enqueued); nil if unknown.
-- Errors  ERR, WRONGTYPE, CORRUPT (a record zrq did not write), INTERNAL.
--------------------------------------------------------------------------------------------------

local function batchinfo(keys, argv)
    local queue, id = queue_and_name(keys, argv, 'zrq.batchinfo', 'batch')
    local batch = load_batch(queue_keys(queue), id)
    if batch == nil then
        return nil
    end
    return { map = { id = id, total = batch.total, done = batch.done, succeeded = batch.succeeded,
        failed = batch.failed, callback_id = batch.callback_id } }
end

register('zrq_batchinfo', batchinfo, 'readonly')
