--------------------------------------------------------------------------------------------------
-- zrq_list: ZRQ.LIST <queue> <state> [COUNT <n>] [CURSOR <c>]         (no-writes; commands/list.rs)
-- KEYS[1] the queue; ARGV a state name (any case), options COUNT, CURSOR as for DEAD.
-- Reply   [next-cursor, jobs] of that state: pending in delivery order (highest priority first),
--         the others in their index's order; completed and cancelled: their index by rank, then
--         the jobs of their records hash in the order of their log (cursor log:<entry-id>).
--         Fewer than COUNT when their records reach zrq.reply-max-bytes (the cursor then resumes
--         after the last one returned).
-- Errors  ERR, WRONGTYPE, CORRUPT, INTERNAL.
--------------------------------------------------------------------------------------------------

-- A `completed` or `cancelled` cursor: a rank in the state's sorted set (`0` to start), or
-- `log:<ms>-<seq>` (at most 19 digits each) as a previous page returned it, read as { log =
-- <entry-id> }. (list.rs kept_cursor)
local function kept_cursor(raw)
    if sub(raw, 1, 4) ~= 'log:' then
        return rank_cursor(raw)
    end
    local ms, seq = raw:match('^log:(%d+)%-(%d+)$')
    if not ms or #ms > 19 or #seq > 19 then
        fail('ERR', "CURSOR must be 0, a rank or log:<entry-id> as returned by ZRQ.LIST completed or "
            .. "cancelled, got '" .. show_arg(raw) .. "'")
    end
    return { log = ms .. '-' .. seq }
end

-- A page of the jobs of `state` kept in its records hash, in the order of its log, after entry
-- `after` (nil: from the head): COUNT + 1 entries read to know whether there is a next page. An
-- entry whose record is gone (a job deleted by hand) is passed over; the cursor moves on all the
-- same. (list.rs log_page)
local function log_page(k, state, after, count)
    local log = k.log(state)
    if key_type(log) == 'none' then
        return { '0', {} }
    end
    local found = call('XRANGE', log, after and ('(' .. after) or '-', '+', 'COUNT', itoa(count + 1))
    local ids = {}
    for n = 1, math.min(count, #found) do
        local fields, id = found[n][2], false
        for f = 1, #fields, 2 do
            if fields[f] == 'id' then
                id = fields[f + 1]
                break
            end
        end
        ids[n] = id
    end
    local jobs, covered = load_jobs(k, ids, function(n)
        return ids[n] and packed.read_kept(k, ids[n], state)
    end)
    local next_cursor = '0'
    if covered >= 1 and covered < #found then
        next_cursor = 'log:' .. found[covered][1]
    end
    return { next_cursor, jobs }
end

local function list(keys, argv)
    local args = command_args(keys, argv, 'zrq.list', 2)
    local queue = name('queue', args[1])
    local state = is_utf8(args[2]) and args[2]:lower()
    if not IS_STATE[state] then
        fail('ERR', 'state must be one of ' .. table.concat(STATES, ', ') .. ", got '" .. show_arg(args[2]) .. "'")
    end
    local count, cursor
    local kept = state == 'completed' or state == 'cancelled'
    if state == 'pending' then
        count, cursor = paging(args, 3, nil, pending_cursor)
    elseif kept then
        count, cursor = paging(args, 3, 0, kept_cursor)
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
    if kept and type(cursor) == 'table' then
        return log_page(k, state, cursor.log, count)
    end
    ids = zrange(k[state], cursor, count)
    if kept and #ids == 0 then
        -- Past the sorted set: the jobs kept in the records hash, from the log's head.
        return log_page(k, state, nil, count)
    end
    local total = call('ZCARD', k[state])
    local jobs, covered = load_jobs(k, ids)
    next_cursor = next_rank(cursor, covered, total)
    -- The sorted set is done: the log comes next, if it holds anything.
    if kept and next_cursor == '0' and #call('XRANGE', k.log(state), '-', '+', 'COUNT', '1') > 0 then
        next_cursor = 'log:0-0'
    end
    return { next_cursor, jobs }
end

register('zrq_list', list)
