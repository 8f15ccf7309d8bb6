--------------------------------------------------------------------------------------------------
-- ACL checks up front (the module checks its keys natively; docs/ACL.md).
--------------------------------------------------------------------------------------------------

-- Every Redis command the library calls (but PUBLISH, see `announce`), with the arguments of one
-- call on queue keys `k`; `true` marks those that write. Before anything else a function checks
-- them all with redis.acl_check_cmd (a read-only function the reads only), so an ACL that denies
-- one refuses the call up front rather than half-way through: a script cannot undo its writes.
-- checked: every call('<COMMAND>' of the library (tests/tests/spec_drift.rs)
local function acl_probes(k)
    return {
        { false, 'TIME' },
        { false, 'TYPE', k.stats },
        { false, 'GET', k.stats },
        { false, 'GETRANGE', k.stats, '0', '0' },
        { false, 'HGET', k.stats, 'f' },
        { false, 'HGETALL', k.stats },
        { false, 'HLEN', k.stats },
        { false, 'XPENDING', k.stream, GROUP },
        { false, 'XRANGE', k.stream, '-', '+' },
        { false, 'XLEN', k.stream },
        { false, 'XINFO', 'CONSUMERS', k.stream, GROUP },
        { false, 'ZCARD', k.active },
        { false, 'ZRANGE', k.active, '0', '0' },
        { false, 'ZSCORE', k.active, 'm' },
        { true, 'HSET', k.stats, 'f', 'v' },
        { true, 'HDEL', k.stats, 'f' },
        { true, 'HINCRBY', k.stats, 'f', '1' },
        { true, 'DEL', k.paused },
        { true, 'SET', k.paused, '1' },
        { true, 'SETRANGE', k.paused, '0', '1' },
        { true, 'PEXPIRE', k.stats, '1' },
        { true, 'RPUSH', k.wake, '1' },
        { true, 'LTRIM', k.wake, '0', '1' },
        { true, 'XGROUP', 'CREATE', k.stream, GROUP, '0', 'MKSTREAM' },
        { true, 'XGROUP', 'DELCONSUMER', k.stream, GROUP, 'c' },
        { true, 'XGROUP', 'SETID', k.stream, GROUP, '0-0' },
        { true, 'XADD', k.stream, '*', 'f', 'v' },
        { true, 'XACK', k.stream, GROUP, '0-1' },
        { true, 'XDEL', k.stream, '0-1' },
        { true, 'XREADGROUP', 'GROUP', GROUP, 'c', 'STREAMS', k.stream, '>' },
        { true, 'XTRIM', k.stream, 'MINID', '0-1' },
        { true, 'ZADD', k.active, '0', 'm' },
        { true, 'ZREM', k.active, 'm' },
        { true, 'ZREMRANGEBYSCORE', k.active, '0', '0' },
    }
end

-- Fails with NOPERM unless the caller may run every command `function_name` can call on the keys
-- of `queue` (the reads only for a read-only function). The probes of the last queue checked are
-- kept (commands come in runs on one queue); the checks themselves run every time.
local check_acl
do
    local last_queue, last_probes, last_all, last_reads
    local check -- redis.acl_check_cmd, looked up once (at call time: not there at load time)

    -- Whether the caller may run `probe` (acl_probes), its arguments passed one by one.
    local function allowed(probe)
        local n = #probe
        if n == 2 then
            return check(probe[2])
        elseif n == 3 then
            return check(probe[2], probe[3])
        elseif n == 4 then
            return check(probe[2], probe[3], probe[4])
        elseif n == 5 then
            return check(probe[2], probe[3], probe[4], probe[5])
        elseif n == 6 then
            return check(probe[2], probe[3], probe[4], probe[5], probe[6])
        end
        return check(unpack(probe, 2))
    end

    -- The probes (the reads only with `readonly`) grouped by their number of arguments, 1 to 7:
    -- group[n] holds the arguments of its probes one after the other, so the quick check below
    -- runs as plain loops (no call, table or dispatch per probe: the checks run on every call).
    local function grouped(probes, readonly)
        local groups = { {}, {}, {}, {}, {}, {}, {} }
        for n = 1, #probes do
            local probe = probes[n]
            if not (readonly and probe[1]) then
                local group = groups[#probe - 1]
                for i = 2, #probe do
                    group[#group + 1] = probe[i]
                end
            end
        end
        return groups
    end

    -- Whether every probe of `groups` is allowed. Its order is not the list's: on a denial,
    -- check_acl goes through the list in order to name the first denied command.
    local function all_allowed(groups)
        local a = groups[1]
        for i = 1, #a do
            if not check(a[i]) then
                return false
            end
        end
        a = groups[2]
        for i = 1, #a, 2 do
            if not check(a[i], a[i + 1]) then
                return false
            end
        end
        a = groups[3]
        for i = 1, #a, 3 do
            if not check(a[i], a[i + 1], a[i + 2]) then
                return false
            end
        end
        a = groups[4]
        for i = 1, #a, 4 do
            if not check(a[i], a[i + 1], a[i + 2], a[i + 3]) then
                return false
            end
        end
        a = groups[5]
        for i = 1, #a, 5 do
            if not check(a[i], a[i + 1], a[i + 2], a[i + 3], a[i + 4]) then
                return false
            end
        end
        a = groups[6]
        for i = 1, #a, 6 do
            if not check(a[i], a[i + 1], a[i + 2], a[i + 3], a[i + 4], a[i + 5]) then
                return false
            end
        end
        a = groups[7]
        for i = 1, #a, 7 do
            if not check(a[i], a[i + 1], a[i + 2], a[i + 3], a[i + 4], a[i + 5], a[i + 6]) then
                return false
            end
        end
        return true
    end

    check_acl = function(function_name, queue, readonly)
        check = check or redis.acl_check_cmd
        if queue ~= last_queue then
            last_probes, last_queue = acl_probes(queue_keys(queue)), queue
            last_all, last_reads = grouped(last_probes, false), grouped(last_probes, true)
        end
        if all_allowed(readonly and last_reads or last_all) then
            return
        end
        local probes = last_probes
        for n = 1, #probes do
            local probe = probes[n]
            if not (readonly and probe[1]) and not allowed(probe) then
                local what = probe[2] == 'XGROUP' and ('XGROUP ' .. probe[3]) or probe[2]
                fail('NOPERM', function_name .. " needs " .. what .. " on the keys of queue '" .. show_arg(queue)
                    .. "' (zrq:{" .. show_arg(queue) .. "}:*), which this user may not run; see docs/ACL.md")
            end
        end
    end
end
