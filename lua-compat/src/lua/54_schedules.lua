--------------------------------------------------------------------------------------------------
-- zrq_schedules: ZRQ.SCHEDULES <queue>                          (no-writes; commands/schedules.rs)
-- KEYS[1] the queue; ARGV none.
-- Reply   every definition as a map, by name: name, every or cron, task, payload, retries,
--         timeout, priority, backoff, keep, last_run, next_run, unique (present ones).
-- Errors  ERR, WRONGTYPE, CORRUPT, INTERNAL.
--------------------------------------------------------------------------------------------------

local function schedules(keys, argv)
    local args = command_args(keys, argv, 'zrq.schedules', 1, true)
    local k = queue_keys(name('queue', args[1]))
    check_types({ { k.schedules, 'hash' }, { k.ticks, 'zset' } })
    local flat = call('HGETALL', k.schedules)
    local entries = {}
    for n = 1, #flat, 2 do
        if is_utf8(flat[n]) and is_utf8(flat[n + 1]) then
            entries[#entries + 1] = { flat[n], flat[n + 1] }
        end
    end
    table.sort(entries, function(a, b)
        if a[1] ~= b[1] then
            return byte_less(a[1], b[1])
        end
        return byte_less(a[2], b[2])
    end)
    local out = {}
    for n, entry in ipairs(entries) do
        local definition = definition_from_json(k.schedules, entry[2])
        local score = call('ZSCORE', k.ticks, entry[1])
        local map = {}
        for _, f in ipairs(DEFINITION_FIELDS) do
            map[f[1]] = definition[f[1]]
        end
        map.next_run = score and tonumber(score) or nil
        out[n] = { map = map }
    end
    return out
end

register('zrq_schedules', schedules)
