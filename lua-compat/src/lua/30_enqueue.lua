--------------------------------------------------------------------------------------------------
-- zrq_enqueue: ZRQ.ENQUEUE <queue> <task> <payload> [ID <id>] [RETRIES <n>] [TIMEOUT <ms>]
--              [DELAY <ms> | AT <unix-ms>] [BACKOFF <ms>] [PRIORITY <0-9>] [UNIQUE <key>]
--              [KEEP <ms>] [AFTER <id> ...] [WITHRESULTS] [ONPARENTFAIL cancel|run]
--   (core/src/commands/enqueue.rs)
--
-- KEYS[1]  the queue
-- ARGV     task, payload (JSON), then options: ID <id>; RETRIES <0..1000> (default 3);
--          TIMEOUT <1..315360000000 ms> (default 30000); DELAY <ms> or AT <unix ms> (not with
--          AFTER); BACKOFF <ms>; PRIORITY <0..9> (default 0); UNIQUE <key>; KEEP <1.. ms>;
--          AFTER <parent id> (repeatable; parents of the same queue); WITHRESULTS;
--          ONPARENTFAIL cancel|run
-- Reply    the job id (bulk string): for a plain job (no ID, DELAY, AT nor AFTER) the id of its
--          stream entry, `<ms>-<seq>`, prefixed `p<n>:` for priority n > 0;
--          else the given ID or a new UUIDv7. An ID that exists (its key, or a field of a
--          records hash of finished jobs) returns that id and writes nothing; a UNIQUE key held
--          by an unfinished job returns that job's id.
-- Writes   plain: XADD zrq:{q}:stream[:<priority>] * task <t> payload <p> [the options that
--          differ from their defaults, in the record's order] (an inline entry: no record while
--          it is pending); pending with ID: XADD … * job <id>; (XGROUP CREATE … MKSTREAM first);
--          scheduled (DELAY/AT in the future): ZADD zrq:{q}:scheduled <due> <id>;
--          waiting (AFTER): ZADD zrq:{q}:waiting <now> <id>, and `children` on each unfinished
--          parent (SET of its whole record … KEEPTTL, or SETRANGE of what follows its payload
--          for a record read in parts, see packed.save; one held by its inline entry gets its
--          first), the job's record written once its finished parents are counted;
--          SET zrq:{q}:job:<id> <packed record> KEEPTTL (but for a plain job), HSET
--          zrq:{q}:unique <key> <id>, HINCRBY
--          zrq:{q}:stats enqueued 1, PUBLISH zrq:{q}:events "<state> <id>"; Lua only: RPUSH
--          zrq:{q}:wake 1 (capped at 128 tokens) whenever a job enters a stream.
-- Errors   ERR (arity, names, options, numbers, conflicting options, AFTER itself, an ID of the
--          form of a generated id), BADJSON (payload), NOJOB (AFTER names a job that does not
--          exist), LIMIT (sizes, AFTER count, a parent's children), WRONGTYPE, CORRUPT, INTERNAL.
-- Not in Lua: the module's server-side timer promotes due scheduled jobs; with Lua the client
-- does (see docs/LUA.md).
--------------------------------------------------------------------------------------------------

-- The fields of a plain job's inline entry as XADD arguments: the compact record's fields, in
-- their order, but those ENTRY_DERIVED (its place says them; job.rs `Job::entry_fields`).
local inline_fields
do
    -- The fields an inline entry may hold (stored, not ENTRY_DERIVED) in the record's order,
    -- made on first use. Every plain ENQUEUE comes here: no field the entry leaves out is
    -- written as text, and no list is made but the one returned.
    local names

    inline_fields = function(job)
        if names == nil then
            names = {}
            for i = 1, #FIELDS do
                local name = FIELDS[i][1]
                if not IS_DERIVED[name] and not ENTRY_DERIVED[name] then
                    names[#names + 1] = name
                end
            end
        end
        return job_fields_args(job, names)
    end
end

-- Refuses a child that would take an unfinished `parent`'s list of children beyond
-- zrq.children-max (a parent's finish settles each child in the same step, so the list bounds
-- that step's work). A finished parent is counted at once and keeps no list.
-- (enqueue.rs check_children)
local function check_children(parent, child)
    if IS_FINAL[parent.state] then
        return
    end
    local children = id_list(parent.children)
    parent.children_list = children -- read once: wait_for appends to it
    if #children >= CONFIG.children_max and not contains(children, child) then
        limit("parent '" .. parent.id .. "' has " .. itoa(#children) .. ' children already', 'children-max',
            CONFIG.children_max)
    end
end

-- A waiting job's parents: a dead or cancelled one cancels it (unless ONPARENTFAIL run);
-- unfinished ones list it among their children; finished ones count at once.
-- (enqueue.rs wait_for)
local function wait_for(k, spec, job, parents, now)
    if spec.on_parent_fail ~= 'run' then
        for _, parent in ipairs(parents) do
            if parent.state == 'dead' or parent.state == 'cancelled' then
                finish(k, job, 'cancelled', { 'error', parent_ended(parent) }, now)
                return
            end
        end
    end
    for _, parent in ipairs(parents) do
        if not IS_FINAL[parent.state] then
            local children = parent.children_list or id_list(parent.children)
            -- Listed once: the id of a deleted child can be taken again by a new one.
            if not contains(children, job.id) then
                children[#children + 1] = job.id
                parent.children = json_id_list(children)
                -- A pending parent still held by its inline entry gets its first record here.
                packed.save(k, parent)
            end
        end
    end
    for _, parent in ipairs(parents) do
        if IS_FINAL[parent.state] then
            -- A completed parent's result is copied (WITHRESULTS) when it fits in the child's
            -- `parents`: a long one the parent was read without (load_job's `linked`) is read
            -- only then.
            local result, size = nil, 0
            if job.with_results == 1 and parent.state == 'completed' then
                local span = parent.spans and parent.spans.result
                if span ~= nil then
                    local key = k.job(parent.id)
                    result = function()
                        return packed.span(key, span)
                    end
                    size = span[2]
                elseif parent.result ~= nil then
                    result, size = parent.result, #parent.result
                end
            end
            parent_done(job, parent, result, size, {})
        end
    end
    write_waiting(k, job)
end

-- Adds the job described by `spec` (task, payload and options) unless its id or UNIQUE key is
-- taken; returns the job's id. A plain job (no ID, DELAY, AT nor AFTER) is only its inline entry,
-- its id generated from the entry's; the others get a record, with the given ID or a new UUIDv7.
-- (enqueue.rs apply, is_plain)
enqueue_job = function(k, spec, now, sec, usec)
    spec.after = spec.after or {}
    local due = spec.at
    if due == nil and spec.delay ~= nil then
        due = now + spec.delay
    end
    local scheduled = due ~= nil and due > now
    local plain = spec.id == nil and spec.delay == nil and spec.at == nil and #spec.after == 0
    local id = spec.id
    if not plain then
        id = id or new_id(k.queue, sec or floor(now / 1000), usec or (now % 1000) * 1000)
        local job_key = k.job(id)
        -- BATCH checks the queue's keys once for all its members (spec.queue_checked).
        -- A record exists as a packed string or a hash of the earlier format.
        local found = key_type(job_key)
        if found == 'string' or found == 'hash' then
            return id
        elseif found ~= 'none' then
            fail('WRONGTYPE', "key '" .. job_key .. "' holds a " .. found .. ', zrq expects a string')
        end
        -- A finished job kept in a records hash holds its id too, until its retention ends or it
        -- is deleted (a records key of another type is WRONGTYPE, asked only when HGET fails).
        for _, state in ipairs({ 'completed', 'cancelled' }) do
            local _, kept = packed.kept_raw(k, id, state)
            if kept then
                return id
            end
        end
    end
    if spec.unique ~= nil then
        if not spec.queue_checked then
            check_types({ { k.unique, 'hash' } })
        end
        local holder = call('HGET', k.unique, spec.unique)
        if type(holder) == 'string' and is_utf8(holder) then
            local held = try_load_job(k, holder)
            if held and not IS_FINAL[held.state] then
                return holder
            end
        end
    end
    local parents = {}
    for _, parent in ipairs(spec.after) do
        if parent == id then
            fail('ERR', "job '" .. id .. "' cannot run AFTER itself")
        end
        -- Read for its links (after-max parents; a long payload, result or error is left in the
        -- record, see load_job's `linked`): an unfinished parent gets the child in its list of
        -- children, a patch of its record; a completed one's result may be copied (read and
        -- checked then).
        local job = load_job(k, parent, true)
        if not job then
            fail('NOJOB', "AFTER names job '" .. parent .. "', which does not exist in queue '" .. k.queue
                .. "' (parents must be in the same queue)")
        end

        check_children(job, id)
        parents[#parents + 1] = job
    end
    -- Before the first write, the types of the keys this job's path writes; with parents, it may
    -- be cancelled or released at once, which can reach any key of the queue. (enqueue.rs apply)
    if spec.queue_checked then
        -- checked by BATCH
    elseif #parents > 0 then
        check_queue_types(k)
    elseif scheduled then
        check_types({ { k.scheduled, 'zset' }, { k.stats, 'hash' } })
    else
        local checks = { { k.stream, 'stream' } }
        if (spec.priority or 0) ~= 0 then
            checks[#checks + 1] = { k.stream_at(spec.priority), 'stream' }
        end
        checks[#checks + 1] = { k.stats, 'hash' }
        checks[#checks + 1] = { k.wake, 'list' }
        check_types(checks)
        -- The streams found need not be asked for again by push_entry.
        local known = k.known_streams or {}
        for n = 1, #checks do
            if checks[n][3] == 'stream' then
                known[checks[n][1]] = true
            end
        end
        k.known_streams = known
    end
    local job = {
        id = id,
        queue = k.queue,
        task = spec.task,
        payload = spec.payload,
        state = (#parents > 0 and 'waiting') or (scheduled and 'scheduled') or 'pending',
        attempt = 0,
        max_attempts = (spec.retries or CORE.enqueue.DEFAULT_RETRIES) + 1,
        timeout = spec.timeout or CORE.enqueue.DEFAULT_TIMEOUT_MS,
        priority = spec.priority or 0,
        backoff = spec.backoff,
        keep = spec.keep,
        unique = spec.unique,
        with_results = spec.with_results and 1 or nil,
        on_parent_fail = spec.on_parent_fail,
        batch = spec.batch,
        schedule = spec.schedule,
        created_at = now,
    }
    if #parents > 0 then
        local entries = {}
        for n, parent in ipairs(parents) do
            entries[n] = { parent.id, 'null' }
        end
        job.parents = json_object(entries)
        job.waiting_on = #parents
    end
    if scheduled then
        job.run_at = due
    end
    if plain then
        job.entry = push_entry(k, inline_fields(job), job.priority)
        id = inline.id(job.priority, job.entry)
        job.id = id
    elseif job.state == 'waiting' then
        call('ZADD', k.waiting, itoa(now), id)
    elseif job.run_at ~= nil then
        call('ZADD', k.scheduled, itoa(due), id)
    else
        job.entry = push_entry(k, { ENTRY_FIELD, id }, job.priority)
    end
    -- A job with parents is written once its parents are counted (wait_for); a plain job has no
    -- record while pending.
    if not plain and #parents == 0 then
        packed.save(k, job)
    end
    if spec.unique ~= nil then
        call('HSET', k.unique, spec.unique, id)
    end
    count_stat(k, 'enqueued', '1')
    announce(k, id, job.state)
    if #parents > 0 then
        wait_for(k, spec, job, parents, now)
    end
    return id
end

local function enqueue(keys, argv)
    local spec = { after = {} }
    local queue, task, args = queue_and_name(keys, argv, 'zrq.enqueue', 'task', 3)
    spec.task = task
    spec.payload = payload_arg(args[3])
    for option, value in options(args, 4, CORE.enqueue.OPTIONS) do
        set_enqueue_option(spec, option, value)
    end
    local now, sec, usec = clock()
    return enqueue_job(queue_keys(queue), spec, now, sec, usec)
end

register('zrq_enqueue', enqueue)
