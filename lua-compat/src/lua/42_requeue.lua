--------------------------------------------------------------------------------------------------
-- zrq_requeue: ZRQ.REQUEUE <queue> <id> | ALL [COUNT <n>] [CURSOR <c>]       (commands/requeue.rs)
-- KEYS[1] the queue; ARGV a dead job's id, or ALL with options COUNT <1..requeue-max> (default
--         requeue-max), CURSOR <0..> (default 0).
-- Reply   <id>: 1 if the dead job is pending again (with a fresh attempt budget), else 0.
--         ALL: [next-cursor, requeued] for the page of the dead set at ranks [rank, rank + count)
--         (fewer when their records reach zrq.reply-max-bytes);
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
    -- A fresh attempt budget: `attempt` back to its default, 0 (left out of the record), and no
    -- end yet; written with the rest of the record by make_pending.
    job.attempt = 0
    job.finished_at = nil
    job.cancel_requested = nil
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
            return REPLY.DONE
        end
        return REPLY.NOTHING
    end
    local count, cursor = CONFIG.requeue_max, 0
    for option, value in options(args, 3, CORE.requeue.OPTIONS) do
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
    local listed = math.max(math.min(call('ZCARD', k.dead) - rank, count), 0)
    local examined, requeued, budget = 0, 0, new_budget()
    for _, dead_id in ipairs(zrange(k.dead, rank, listed)) do
        -- An unreadable dead job is left alone (and in place), so the others are still requeued
        -- and an error never comes after a write.
        local job = try_load_job(k, dead_id)
        -- The records read count against zrq.reply-max-bytes: the page ends before the one
        -- that would pass it.
        if not budget.admit(bytes_of(job)) then
            break
        end
        examined = examined + 1
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

register('zrq_requeue', requeue)
