--------------------------------------------------------------------------------------------------
-- What commands share (core/src/commands/mod.rs): checks, then moving jobs between the
-- queue's structures, the only places where a job changes place, as in the module.
--------------------------------------------------------------------------------------------------

-- Fails with WRONGTYPE unless each fixed key named in `kinds` (k.<kind>) is missing or of its
-- kind's Redis type (KEY_TYPE, generated from core/src/keys.rs: the types are defined once).
-- `checks` holds checks to make first.
local function check_kinds(k, kinds, checks)
    for _, kind in ipairs(kinds) do
        checks[#checks + 1] = { k[kind], KEY_TYPE[kind] }
    end
    check_types(checks)
end

-- Fails with WRONGTYPE unless every fixed key of the queue has its type, in the module's order
-- (mod.rs check_queue_types), then checks the Lua-only wake-up list.
local function check_queue_types(k)
    local streams = {}
    for priority = 0, MAX_PRIORITY do
        streams[#streams + 1] = { k.stream_at(priority), KEY_TYPE.stream }
    end
    check_kinds(k, { 'active', 'waiting', 'scheduled', 'retrying', 'completed', 'cancelled', 'dead', 'ticks',
        'completed:records', 'completed:log', 'cancelled:records', 'cancelled:log', 'unique', 'schedules',
        'stats', 'paused', 'wake' }, streams)
end

-- Checks the types of the fixed keys finish() writes when `job` ends in `state`; every fixed key
-- when the job has children or a batch (a cascade may reach any of them). (mod.rs
-- check_finish_types) A job kept in its state's records hash (no KEEP of its own) checks that
-- hash and the log; one with its own KEEP, Lua only, both finished indexes, as finish_one then
-- sweeps both (expire_finished: the library has no timer).
local function check_finish_types(k, job, state)
    if job.children ~= nil or job.batch ~= nil then
        check_queue_types(k)
        return
    end
    local checks = {}
    if job.entry ~= nil then
        checks[1] = { k.stream_at(job.priority), KEY_TYPE.stream }
    end
    local kinds = {}
    if k.index_of(job.state) then
        kinds[1] = job.state
    end
    if state == 'dead' then
        kinds[#kinds + 1] = 'dead'
    elseif job.keep == nil then
        kinds[#kinds + 1] = state .. ':records'
        kinds[#kinds + 1] = state .. ':log'
    else
        kinds[#kinds + 1] = 'completed'
        kinds[#kinds + 1] = 'cancelled'
    end
    if job.unique ~= nil then
        kinds[#kinds + 1] = 'unique'
    end
    kinds[#kinds + 1] = 'stats'
    check_kinds(k, kinds, checks)
end

-- The queue's keys, every fixed key's type checked first (as most commands start).
local function checked_queue_keys(queue)
    local k = queue_keys(queue)
    check_queue_types(k)
    return k
end

-- The value of a LEASE option: a lease token as FETCH or RECLAIM handed it out (mod.rs
-- lease_token).
local function lease_token(raw)
    return name('LEASE', raw)
end

-- The queue's keys (types checked) and job `id` if it is active and, when `lease` is given, still
-- held under that token; else nil for the job: what ACK, FAIL, TOUCH and RELEASE act on. Loaded
-- with `loader` (load_job_to_finish for the commands that may finish it), else load_job.
-- (mod.rs held)
local function held_job(queue, id, lease, loader)
    local k = checked_queue_keys(queue)
    local job = (loader or load_job)(k, id)
    if not job or job.state ~= 'active' or (lease ~= nil and job.lease ~= lease) then
        return k, nil
    end
    return k, job
end

-- Announces a state change on the queue's channel: `<state> <id>`. Events are best-effort, as
-- Pub/Sub is: a caller whose ACL does not allow the channel publishes nothing (checked once per
-- call), and the command goes on, so a denied PUBLISH can never fail a command after its writes.
local function announce(k, id, state)
    if k.may_publish == nil then
        k.may_publish = redis.acl_check_cmd('PUBLISH', k.events, 'x')
    end
    if k.may_publish then
        call('PUBLISH', k.events, state .. ' ' .. id)
    end
end

-- Appends an entry with `fields` (a reference entry `{ ENTRY_FIELD, <id> }`, or a plain job's
-- inline entry) to the stream of `priority` (creating streams and groups as needed); returns the
-- entry id. Lua only: pushes a wake-up token for clients blocked on zrq:{q}:wake.
-- The streams known to exist are listed in k.known_streams (a command deletes no stream), so each
-- is asked for once per command.
local function push_entry(k, fields, priority)
    local known = k.known_streams
    if known == nil then
        known = {}
        k.known_streams = known
    end
    local stream = k.stream_at(priority)
    for n = 1, stream == k.stream and 1 or 2 do
        local s = n == 1 and k.stream or stream
        if not known[s] then
            if key_type(s) == 'none' then
                call('XGROUP', 'CREATE', s, GROUP, '0', 'MKSTREAM')
            end
            known[s] = true
        end
    end
    local entry = call('XADD', stream, '*', unpack(fields))
    call('RPUSH', k.wake, '1')
    call('LTRIM', k.wake, itoa(-WAKE_CAP), '-1')
    return entry
end

-- Moves a waiting, scheduled, retrying or dead job (already out of its index) into its stream.
-- Writes its record (packed.save), with whatever else the caller changed in `job` before.
local function make_pending(k, job)
    job.state = 'pending'
    job.entry = push_entry(k, { ENTRY_FIELD, job.id }, job.priority)
    job.run_at = nil
    packed.save(k, job)
    announce(k, job.id, job.state)
end

-- Drops index entries of finished jobs whose retention has passed (mod.rs expire_finished), at
-- most about CORE.promote.BATCH per index: past that many, up to the score of the BATCH-th (its
-- ties go too), so a pile of expired entries (after a long downtime) is worked off in steps.
-- Then the jobs kept in records hashes whose retention has passed (expire_kept). All of these
-- without `kept`; a finish sweeps what its checks cover (check_finish_types): with `kept` (a
-- state) only that state's log, with `false` (a job with its own KEEP) only the indexes.
local expire_finished
do
    -- Drops the jobs of final `state` kept in its records hash whose retention (zrq.keep-ms
    -- after the time of their log entry) has passed (mod.rs expire_kept): up to
    -- CORE.promote.BATCH of them from the head of the log, their fields (HDEL, whether or not
    -- they are there), then the log up to the first entry still kept (one exact XTRIM MINID).
    -- One XRANGE reads the due entries only: an entry is due when its ms is at most now - keep
    -- (an end id of ms alone takes every seq of it).
    local function expire_kept(k, state, now)
        local keep = CONFIG.keep_ms
        if keep < 1 then
            keep = 1
        end
        if now - keep < 0 then
            return
        end
        local log = k.log(state)
        local due = call('XRANGE', log, '-', itoa(now - keep), 'COUNT', itoa(CORE.promote.BATCH))
        local n = #due
        if n == 0 then
            return
        end
        local ids = {}
        for i = 1, n do
            local fields = due[i][2]
            for f = 1, #fields, 2 do
                if fields[f] == 'id' then
                    ids[#ids + 1] = fields[f + 1]
                    break
                end
            end
        end
        if #ids > 0 then
            call('HDEL', k.records(state), unpack(ids))
        end
        call('XTRIM', log, 'MINID', entry_after(due[n][1]))
    end

    expire_finished = function(k, now, kept)
        if kept then
            expire_kept(k, kept, now)
            return
        end
        -- Every FETCH comes here: no table, and the time's text made once.
        local upto = itoa(now)
        for n = 1, 2 do
            local finished = n == 1 and k.completed or k.cancelled
            if #call('ZRANGE', finished, '-inf', upto, 'BYSCORE', 'LIMIT', '0', '1') > 0 then
                local nth = call('ZRANGE', finished, '-inf', upto, 'BYSCORE', 'LIMIT',
                    itoa(CORE.promote.BATCH - 1), '1', 'WITHSCORES')
                call('ZREMRANGEBYSCORE', finished, '-inf', nth[2] or upto)
            end
        end
        if kept == nil then
            expire_kept(k, 'completed', now)
            expire_kept(k, 'cancelled', now)
        end
    end
end

-- What the module's timer does for one queue (promote.rs): due scheduled and retrying jobs (at
-- most 1000 of each) enter their streams, due recurring schedules enqueue their job, and finished
-- jobs past their retention leave their indexes. The library runs it at
-- the start of every FETCH and RECLAIM (docs/LUA.md).
local fire_due_ticks -- defined in 52_ticks.lua
local function promote_due(k, now)
    -- The records read count against zrq.reply-max-bytes: the jobs beyond stay due, for the
    -- next command.
    local budget = new_budget()
    for _, index in ipairs({ k.scheduled, k.retrying }) do
        for _, id in ipairs(call('ZRANGE', index, '-inf', itoa(now), 'BYSCORE', 'LIMIT', '0', itoa(CORE.promote.BATCH))) do
            local job = is_utf8(id) and try_load_job(k, id)
            if not budget.admit(bytes_of(job)) then
                break
            end
            call('ZREM', index, id)
            if job and (job.state == 'scheduled' or job.state == 'retrying') then
                make_pending(k, job)
            end
        end
    end
    fire_due_ticks(k, now)
    expire_finished(k, now)
end

-- Starts a new attempt of `job` for `consumer`: active, attempt + 1, fresh lease and its token
-- `<stream entry>:<attempt>` (mod.rs new_lease: never repeats for a job), the entry being the one
-- it was delivered from: its `entry` field when pending, else the entry of the lease a RECLAIM
-- takes over. The `entry` field goes: FETCH trims the delivered entry (a running job has none).
-- One write of the whole record (a job delivered from its inline entry gets its first).
local function start_attempt(k, job, consumer, now)
    job.state = 'active'
    job.attempt = job.attempt + 1
    job.consumer = consumer
    job.started_at = now
    local entry = job.entry or (job.lease and job.lease:match('^(.*):[^:]*$')) or '0-0'
    job.lease = entry .. ':' .. itoa(job.attempt)
    job.entry = nil
    packed.save(k, job)
    call('ZADD', k.active, itoa(now + job.timeout), job.id)
    announce(k, job.id, job.state)
end

-- Takes the job out of the structure that holds it in the state it leaves (job.state): its
-- stream entry if it is pending (a running job has none), its lease if it is active, the waiting,
-- scheduled or retrying index (k.index_of); DELETE clears every index itself. A job an older zrq
-- delivered runs with its entry still in the group's pending list (and in the stream until a
-- FETCH trims it): acknowledged and deleted. The `entry` goes from `job` only: the caller writes
-- the record once it has made all its changes (or deletes it). (mod.rs unlink)
local function unlink(k, job)
    if job.entry ~= nil then
        local entry = job.entry
        job.entry = nil
        if job.state ~= 'pending' then
            call('XACK', k.stream_at(job.priority), GROUP, entry)
        end
        call('XDEL', k.stream_at(job.priority), entry)
    end
    local index = k.index_of(job.state)
    if index then
        call('ZREM', index, job.id)
    end
end

-- Ends `job` in final state `state` (completed, dead or cancelled) with extra `fields`
-- ({field, value, ...}): unlinked, filed, UNIQUE key freed, counted, announced. (mod.rs
-- finish_one) A completed or cancelled job without a KEEP of its own is kept for the queue's
-- retention in its state's log and records hash (mod.rs keep_in_records): the log entry first
-- (XADD *, field id), whose ms becomes its finished_at (so the record and its entry agree), then
-- its own key deleted (a plain pending job has none) and its record, without the state, written
-- as the hash's field. Else the record is written once, whole, with its retention (SET … PX)
-- unless the job is dead, filed in the state's index; a pending job without a record yet (its
-- inline entry, deleted by unlink) gets its first.
local function finish_one(k, job, state, fields, now)
    unlink(k, job)
    for n = 1, #fields, 2 do
        job[fields[n]] = fields[n + 1]
    end
    job.state = state
    job.finished_at = now
    local keep
    if state ~= 'dead' then
        keep = job.keep or CONFIG.keep_ms
        if keep < 1 then
            keep = 1
        end
    end
    if keep ~= nil and job.keep == nil then
        local key = k.job(job.id)
        -- A job read for its links (load_job's `linked`) has its long fields still in its key,
        -- which goes: read them first.
        local spans = job.spans
        if spans ~= nil then
            for field, span in pairs(spans) do
                if job[field] == nil then
                    job[field] = packed.span(key, span)
                end
            end
            job.spans, job.record_head, job.record_size = nil, nil, nil
        end
        local entry = call('XADD', k.log(state), '*', 'id', job.id)
        job.finished_at = parse_i64(entry:match('^(%d+)')) or now
        if job.place ~= 'entry' then
            call('DEL', key)
        end
        job.place = 'records'
        packed.save(k, job)
        expire_finished(k, now, state)
        keep = nil
    else
        packed.save(k, job, keep)
    end
    if state == 'dead' then
        call('ZADD', k.dead, itoa(now), job.id)
        local excess = call('ZCARD', k.dead) - CONFIG.dead_max
        if excess > 0 then
            for _, victim in ipairs(call('ZRANGE', k.dead, '0', itoa(excess - 1))) do
                call('ZREM', k.dead, victim)
                call('DEL', k.job(victim))
            end
            count_stat(k, 'dropped', itoa(excess))
        end
    elseif keep ~= nil then
        local index = state == 'completed' and k.completed or k.cancelled
        call('ZADD', index, itoa(now + keep), job.id)
        expire_finished(k, now, false)
    end
    if job.unique ~= nil and call('HGET', k.unique, job.unique) == job.id then
        call('HDEL', k.unique, job.unique)
    end
    count_stat(k, state, '1')
    announce(k, job.id, state)
end

local enqueue_job -- defined in 30_enqueue.lua; batch callbacks enqueue a job
