--------------------------------------------------------------------------------------------------
-- zrq_unschedule: ZRQ.UNSCHEDULE <queue> <name>                           (commands/unschedule.rs)
-- KEYS[1] the queue; ARGV the schedule's name.
-- Reply   1 if it existed (now removed), else 0. Jobs it already enqueued are not touched.
-- Errors  ERR, WRONGTYPE, INTERNAL.
--------------------------------------------------------------------------------------------------

local function unschedule(keys, argv)
    local queue, schedule_name = queue_and_name(keys, argv, 'zrq.unschedule', 'name')
    local k = checked_queue_keys(queue)
    if not call('HGET', k.schedules, schedule_name) then
        return REPLY.NOTHING
    end
    call('HDEL', k.schedules, schedule_name)
    call('ZREM', k.ticks, schedule_name)
    return REPLY.DONE
end

register('zrq_unschedule', unschedule)
