--------------------------------------------------------------------------------------------------
-- zrq_dead: ZRQ.DEAD <queue> [COUNT <n>] [CURSOR <c>]                 (no-writes; commands/dead.rs)
-- KEYS[1] the queue; ARGV options COUNT <1..1000> (default 10), CURSOR <0..> (default 0).
-- Reply   [next-cursor, jobs]: dead jobs oldest first; next cursor 0 at the end. Fewer than COUNT
--         when their records reach zrq.reply-max-bytes.
-- Errors  ERR, WRONGTYPE, CORRUPT, INTERNAL.
--------------------------------------------------------------------------------------------------

local function dead_jobs(keys, argv)
    local args = command_args(keys, argv, 'zrq.dead', 1)
    local queue = name('queue', args[1])
    local count, cursor = paging(args, 2, 0, rank_cursor)
    local k = queue_keys(queue)
    check_types({ { k.dead, 'zset' } })
    local ids = zrange(k.dead, cursor, count)
    local total = call('ZCARD', k.dead)
    local jobs, covered = load_jobs(k, ids)
    return { next_rank(cursor, covered, total), jobs }
end

register('zrq_dead', dead_jobs)
