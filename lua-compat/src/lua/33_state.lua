--------------------------------------------------------------------------------------------------
-- zrq_state: ZRQ.STATE <queue> <id>                     (no-writes)
--   (core/src/commands/state.rs)
--
-- KEYS[1]  the queue
-- ARGV     job id
-- Reply    the job's state (waiting, scheduled, pending, active, retrying, completed, dead,
--          cancelled), or nil if unknown.
-- Errors   ERR (arity, names), WRONGTYPE (job record key), CORRUPT (no readable state), INTERNAL.
--------------------------------------------------------------------------------------------------

local function state(keys, argv)
    local queue, id = queue_and_name(keys, argv, 'zrq.state', 'id')
    local key = queue_keys(queue).job(id)
    check_types({ { key, 'hash' } })
    local value = call('HGET', key, 'state')
    if type(value) == 'string' and is_utf8(value) then
        if not IS_STATE[value] then
            fail('CORRUPT', "'" .. key .. "' is not a zrq record: unknown state '" .. value .. "'")
        end
        return value
    end
    if key_type(key) == 'none' then
        return nil
    end
    fail('CORRUPT', "'" .. key .. "' is not a zrq record: field 'state' is missing")
end

register('zrq_state', state)
