--------------------------------------------------------------------------------------------------
-- Firing due schedule ticks (core/src/commands/promote.rs), from promote_due (19_mod.lua).
--------------------------------------------------------------------------------------------------

-- Whether the server is at its maxmemory (never without one), read from INFO memory: the
-- library's functions run `allow-oom` (FETCH, RECLAIM), so Redis would not stop their writes.
-- (store.rs memory_full; Redis' own check also leaves replication buffers out of used_memory.)
-- A caller whose ACL denies INFO (a tenant, `-@dangerous`) cannot tell: then ticks fire.
local function memory_full()
    local text = redis.pcall('INFO', 'memory')
    if type(text) ~= 'string' then
        return false
    end
    local used = tonumber(text:match('\nused_memory:(%d+)'))
    local max = tonumber(text:match('\nmaxmemory:(%d+)'))
    return max ~= nil and max > 0 and used ~= nil and used >= max
end

-- Fires every due tick of the queue (promote.rs): enqueues the definition's job (its record names
-- the schedule in `schedule`), records its last run, and moves the tick to the next run (or drops
-- it). At maxmemory a tick is skipped instead (the module also counts it in INFO zrq; the library
-- has no INFO section).
fire_due_ticks = function(k, now)
    local due_ticks = call('ZRANGE', k.ticks, '-inf', itoa(now), 'BYSCORE', 'WITHSCORES', 'LIMIT', '0',
        itoa(CORE.promote.BATCH))
    local full = #due_ticks > 0 and memory_full()
    -- A definition's payload is checked as JSON again before its job is made (stored data is never
    -- trusted): one call reads at most about payload-max-bytes of definitions (at least one), and
    -- the ticks left stay due for the next FETCH (promote.rs, the same bound).
    local read = 0
    for n = 1, #due_ticks, 2 do
        local schedule, due = due_ticks[n], tonumber(due_ticks[n + 1]) or now
        local text = is_utf8(schedule) and call('HGET', k.schedules, schedule)
        if type(text) == 'string' then
            if read > 0 and read + #text > CONFIG.payload_max_bytes then
                break
            end
            read = read + #text
        end
        local ok, definition = false, nil
        if type(text) == 'string' then
            ok, definition = pcall(definition_from_json, k.schedules, text)
        end
        if not ok then
            call('ZREM', k.ticks, schedule)
        else
            if not full then
                enqueue_job(k, { task = definition.task, payload = definition.payload,
                    retries = definition.retries, timeout = definition.timeout, priority = definition.priority,
                    backoff = definition.backoff, unique = definition.unique, keep = definition.keep, after = {},
                    schedule = definition.name },
                    now)
                definition.last_run = now
                call('HSET', k.schedules, schedule, definition_json(definition))
            end
            local next_at = next_run(definition, due, now)
            if next_at ~= nil then
                call('ZADD', k.ticks, itoa(next_at), schedule)
            else
                call('ZREM', k.ticks, schedule)
            end
        end
    end
end
