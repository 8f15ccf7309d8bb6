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
    local count, cursor = CORE.queues.DEFAULT_COUNT, '0'
    for option, value in options(args, 1, CORE.queues.OPTIONS) do
        if option == 'COUNT' then
            count = integer('COUNT', value, 1, CORE.queues.MAX_COUNT)
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

register('zrq_queues', queues)
