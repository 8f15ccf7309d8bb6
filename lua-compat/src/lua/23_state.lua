--------------------------------------------------------------------------------------------------
-- zrq_state: ZRQ.STATE <queue> <id>                     (no-writes)
--   (core/src/commands/state.rs)
--
-- KEYS[1]  the queue
-- ARGV     job id
-- Reply    pending | active | completed | dead (bulk string), or nil if unknown.
-- Errors   ERR (arity, names), WRONGTYPE (job record key), INTERNAL.
--------------------------------------------------------------------------------------------------

local function state(keys, argv)
    local args = arguments(keys, argv)
    if #args ~= 2 then
        arity_error('zrq.state')
    end
    require_one_key('zrq_state', keys)
    local queue = name('queue', args[1])
    local id = name('id', args[2])
    local key = queue_keys(queue).job(id)
    check_types({ { key, 'hash' } })
    local value = call('HGET', key, 'state')
    if type(value) ~= 'string' or not is_utf8(value) then
        return nil
    end
    return value
end

register('zrq_state', state, 'readonly')
