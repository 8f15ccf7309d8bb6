--------------------------------------------------------------------------------------------------
-- zrq_list: ZRQ.LIST <queue> <state> [COUNT <n>] [CURSOR <c>]         (no-writes; commands/list.rs)
-- KEYS[1] the queue; ARGV a state name (any case), options COUNT, CURSOR as for DEAD.
-- Reply   [next-cursor, jobs] of that state: pending in delivery order (highest priority first),
--         the others in their index's order. Fewer than COUNT when their records reach
--         zrq.reply-max-bytes (the cursor then resumes after the last one returned).
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
    local ids, next_cursor, found = {}, '0', nil
    if state == 'pending' then
        -- Reads one entry beyond the page to know whether there is a next one (list.rs pending_page).
        local wanted = count + 1
        found = {}
        for priority = MAX_PRIORITY, 0, -1 do
            local resume
            if cursor and cursor[1] == priority then
                resume = cursor[2]
            end
            local stream = k.stream_at(priority)
            if (cursor == nil or cursor[1] >= priority) and #found < wanted and key_type(stream) ~= 'none' then
                for _, entry in ipairs(undelivered_entries(k, priority, resume, wanted - #found)) do
                    found[#found + 1] = { priority, entry[1], entry[2], entry[3] }
                end
            end
        end
        for n = 1, math.min(count, #found) do
            ids[n] = found[n][3]
        end
        -- Each job from its entry: an inline entry holds its job (unless a record was written
        -- since), a reference entry names its record (list.rs).
        local jobs, covered = load_jobs(k, ids, function(n)
            return inline.job_at(k, found[n][1], found[n][2], found[n][4])
        end)
        -- More to list: what the page did not cover, or the entry read beyond it.
        if covered >= 1 and covered < #found then
            local last = found[covered]
            next_cursor = last[1] .. ':' .. last[2]
        end
        return { next_cursor, jobs }
    end
    ids = zrange(k[state], cursor, count)
    local total = call('ZCARD', k[state])
    local jobs, covered = load_jobs(k, ids)
    return { next_rank(cursor, covered, total), jobs }
end

register('zrq_list', list)
