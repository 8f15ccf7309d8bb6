--------------------------------------------------------------------------------------------------
-- zrq_pause / zrq_resume: ZRQ.PAUSE <queue>, ZRQ.RESUME <queue>                (commands/pause.rs)
-- KEYS[1] the queue; ARGV none.
-- Reply   OK. While zrq:{q}:paused exists FETCH delivers nothing; RESUME deletes it (and, Lua
--         only, pushes a wake-up token so blocked clients look again).
-- Errors  ERR, WRONGTYPE (paused key), INTERNAL.
--------------------------------------------------------------------------------------------------

local function pause_or_resume(command, paused)
    return function(keys, argv)
        local args = command_args(keys, argv, command, 1, true)
        local k = queue_keys(name('queue', args[1]))
        check_types({ { k.paused, 'string' } })
        if paused then
            call('SET', k.paused, '1')
        else
            check_types({ { k.wake, 'list' } })
            call('DEL', k.paused)
            call('RPUSH', k.wake, '1')
            call('LTRIM', k.wake, itoa(-WAKE_CAP), '-1')
        end
        return redis.status_reply('OK')
    end
end

register('zrq_pause', pause_or_resume('zrq.pause', true))
register('zrq_resume', pause_or_resume('zrq.resume', false))
