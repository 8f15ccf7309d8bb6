--------------------------------------------------------------------------------------------------
-- zrq_fetch: ZRQ.FETCH <queue> <consumer> [COUNT <n>] [BLOCK <ms>]
--   (core/src/commands/fetch.rs)
--
-- KEYS[1]  the queue
-- ARGV     consumer, then options: COUNT <1..1000> (default 1), BLOCK <0..315360000000 ms>
-- Reply    array of jobs (maps), oldest first, each now active, owned by the consumer, attempt
--          incremented; empty when nothing is waiting (also on a queue that does not exist).
--          BLOCK is validated exactly as the module does, but a script cannot block: the reply is
--          immediate. The client blocks instead with BLPOP on zrq:{q}:wake (docs/LUA.md).
--          Highest priority first (zrq:{q}:stream:9 … stream:1, then zrq:{q}:stream), oldest first
--          within one; nothing while the queue is paused (zrq:{q}:paused exists).
-- Writes   XREADGROUP GROUP zrq <consumer> COUNT <n> NOACK STREAMS <stream> >, then XTRIM <stream>
--          MINID <last delivered entry + 1> (the stream holds pending jobs only: what was
--          delivered, its first entries, leaves it, entries without a pending job behind them
--          too); per job SET of its whole record … KEEPTTL (state, attempt, consumer, lease —
--          the delivery's token `<entry>:<attempt>` —, started_at, no entry; a job delivered
--          from its inline entry gets its first record), ZADD
--          zrq:{q}:active <now + timeout> <id>, PUBLISH zrq:{q}:events "active <id>". When the
--          jobs (as records) reach zrq.reply-max-bytes, the trim stops at the last job handled and
--          the entries read beyond go back undelivered (XGROUP SETID <stream> zrq <the id just
--          before the first>), first in line for the next FETCH. Lua only: due scheduled and
--          retrying jobs are first moved into their streams (the module's timer does that on its
--          own), see docs/LUA.md.
-- Errors   ERR (arity, names, options, numbers), WRONGTYPE (any fixed key of the queue), INTERNAL.
--------------------------------------------------------------------------------------------------

local function fetch(keys, argv)
    local queue, consumer, args = queue_and_name(keys, argv, 'zrq.fetch', 'consumer', 2)
    local count = 1
    for option, value in options(args, 3, CORE.fetch.OPTIONS) do
        if option == 'COUNT' then
            count = integer('COUNT', value, 1, MAX_COUNT)
        else
            integer('BLOCK', value, 0, MAX_DURATION_MS)
        end
    end

    local k = checked_queue_keys(queue)
    local now = clock()
    promote_due(k, now)
    if key_type(k.paused) ~= 'none' then
        return {}
    end
    local jobs, budget = {}, new_budget()
    for priority = MAX_PRIORITY, 0, -1 do
        local wanted = count - #jobs
        local stream = k.stream_at(priority)
        if wanted > 0 and key_type(stream) ~= 'none' then
            local reply = call('XREADGROUP', 'GROUP', GROUP, consumer, 'COUNT', itoa(wanted), 'NOACK',
                'STREAMS', stream, '>')
            local entries = (type(reply) == 'table' and reply[1] and reply[1][2]) or {}
            -- Each delivered entry's job is read in turn; the jobs' records count against the
            -- budget, and the entries from the one that would pass it on are handed back.
            local taken, handed_back = {}, nil
            for _, e in ipairs(entries) do
                local entry = e[1]
                -- A reference entry's job from its record; an inline entry's from the entry
                -- itself, or from its record if one was written since (fetch.rs). A job that
                -- cannot be read is dropped with its entry.
                local ok, job = pcall(inline.job_at, k, priority, entry, e[2] or {})
                if not ok then
                    if not (type(job) == 'table' and job.zrq_error) then
                        error(job, 0)
                    end
                    job = nil
                end
                if not budget.admit(bytes_of(job)) then
                    handed_back = entry
                    break
                end
                taken[#taken + 1] = { entry, job }
            end
            -- What was handled leaves the stream in one trim; what was read beyond the budget
            -- stays, undelivered again, first in line for the next FETCH (fetch.rs).
            if #taken > 0 then
                call('XTRIM', stream, 'MINID', entry_after(taken[#taken][1]))
            end
            if handed_back ~= nil then
                call('XGROUP', 'SETID', stream, GROUP, entry_before_id(handed_back))
            end
            for _, t in ipairs(taken) do
                local job = t[2]
                if job and job.state == 'pending' then
                    start_attempt(k, job, consumer, now)
                    jobs[#jobs + 1] = job
                end
            end
            if handed_back ~= nil then
                return jobs_reply(jobs)
            end
        end
    end
    return jobs_reply(jobs)
end

register('zrq_fetch', fetch)
