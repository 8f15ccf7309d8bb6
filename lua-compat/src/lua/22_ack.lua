--------------------------------------------------------------------------------------------------
-- zrq_ack: ZRQ.ACK <queue> <id> [RESULT <json>]
--   (core/src/commands/ack.rs)
--
-- KEYS[1]  the queue
-- ARGV     job id, then option RESULT <json>
-- Reply    1 if the job was active and is now completed (result stored), else 0 (unknown job,
--          or not active: pending, completed, dead).
-- Writes   XACK + XDEL of its stream entry, ZREM zrq:{q}:active <id>, HSET state completed,
--          finished_at [, result], HINCRBY zrq:{q}:stats completed 1.
-- Errors   ERR (arity, names, options), BADJSON (RESULT), WRONGTYPE (stream, active, stats or job
--          record key), CORRUPT (unreadable job record), INTERNAL.
--------------------------------------------------------------------------------------------------

local function ack(keys, argv)
    local args = arguments(keys, argv)
    if #args < 2 then
        arity_error('zrq.ack')
    end
    require_one_key('zrq_ack', keys)
    local queue = name('queue', args[1])
    local id = name('id', args[2])
    local result
    for _, value in options(args, 3, { 'RESULT' }) do
        result = json('RESULT', value)
    end

    local k = queue_keys(queue)
    check_types({ { k.stream, 'stream' }, { k.active, 'zset' }, { k.stats, 'hash' } })
    local job = load_job(k, id)
    if not job or job.state ~= 'active' then
        return 0
    end
    leave_stream(k, job)
    local now = clock()
    if result ~= nil then
        call('HSET', k.job(id), 'state', 'completed', 'finished_at', itoa(now), 'result', result)
    else
        call('HSET', k.job(id), 'state', 'completed', 'finished_at', itoa(now))
    end
    call('HINCRBY', k.stats, 'completed', '1')
    return 1
end

register('zrq_ack', ack, 'write')
