--------------------------------------------------------------------------------------------------
-- zrq_info: ZRQ.INFO <queue>                                          (no-writes; commands/info.rs)
-- KEYS[1] the queue; ARGV none.
-- Reply   a map: jobs per state now (pending, waiting, scheduled, active, retrying, completed,
--         dead, cancelled), totals since the queue was created (total_enqueued, total_completed,
--         total_failed, total_dead, total_cancelled, total_dropped), oldest_pending_age_ms, paused.
-- Errors  ERR, WRONGTYPE, INTERNAL.
--------------------------------------------------------------------------------------------------

local function info(keys, argv)
    local args = command_args(keys, argv, 'zrq.info', 1, true)
    local k = checked_queue_keys(name('queue', args[1]))
    local now = clock()
    local pending, oldest = 0, nil
    for priority = 0, MAX_PRIORITY do
        local stream = k.stream_at(priority)
        if key_type(stream) ~= 'none' then
            pending = pending + undelivered_len(stream)
            local first = undelivered_entries(k, priority, nil, 1)[1]
            if first then
                -- An inline entry's job was created when its entry was (so was its record's, if
                -- it has one since); a reference entry's job says when in its record, or, left
                -- out there, its generated id does (inline.generated).
                local at
                if inline.reference(first[3]) == false then
                    at = parse_i64(first[1]:match('^(%d+)'))
                else
                    local fields = packed.read(k.job(first[2]))
                    if fields ~= nil then
                        if fields.created_at ~= nil then
                            at = parse_i64(fields.created_at)
                        else
                            local _, ms = inline.generated(first[2])
                            at = ms
                        end
                    end
                end
                if at and (oldest == nil or at < oldest) then
                    oldest = at
                end
            end
        end
    end
    local map = { pending = pending }
    for _, state in ipairs({ 'waiting', 'scheduled', 'active', 'retrying', 'completed', 'dead', 'cancelled' }) do
        map[state] = call('ZCARD', k[state])
        -- Completed and cancelled jobs kept for the queue's retention are fields of their
        -- state's records hash; those with a retention of their own are in the index.
        local records = k.records(state)
        if records ~= nil then
            map[state] = map[state] + call('HLEN', records)
        end
    end
    counters(map, utf8_hash(call('HGETALL', k.stats)),
        { 'enqueued', 'completed', 'failed', 'dead', 'cancelled', 'dropped' }, 'total_')
    local age = 0
    if oldest and now > oldest then
        age = now - oldest
    end
    map.oldest_pending_age_ms = age
    map.paused = key_type(k.paused) ~= 'none' and 1 or 0
    return { map = map }
end

register('zrq_info', info)
