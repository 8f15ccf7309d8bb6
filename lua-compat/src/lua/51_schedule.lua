--------------------------------------------------------------------------------------------------
-- zrq_schedule: ZRQ.SCHEDULE <queue> <name> EVERY <ms> | CRON <expr> <task> <payload>
--               [RETRIES|TIMEOUT|BACKOFF|PRIORITY|UNIQUE|KEEP <v>]          (commands/schedule.rs)
-- KEYS[1] the queue; ARGV name, EVERY <1.. ms> or CRON "<min hour dom month dow>" (UTC), the
--         job's task and payload, job options.
-- Reply   the first run (unix ms). Redefining a name replaces it.
-- Errors  ERR (arity, names, kind, EVERY, CRON, options), BADJSON, WRONGTYPE, INTERNAL.
-- Not in Lua: the module's timer fires due ticks; with Lua, FETCH on the queue does.
--------------------------------------------------------------------------------------------------

local function schedule(keys, argv)
    local queue, schedule_name, args = queue_and_name(keys, argv, 'zrq.schedule', 'name', 6)
    local definition = { name = schedule_name }
    local kind = args[3]:upper()
    if kind == 'EVERY' then
        definition.every = integer('EVERY', args[4], 1, MAX_DURATION_MS)
        if definition.every < CONFIG.every_min_ms then
            limit('EVERY ' .. itoa(definition.every) .. ' is shorter than ' .. itoa(CONFIG.every_min_ms),
                'every-min-ms', CONFIG.every_min_ms)
        end
    elseif kind == 'CRON' then
        if not is_utf8(args[4]) then
            bad_cron('not UTF-8')
        end
        cron_parse(args[4])
        definition.cron = args[4]
    else
        fail('ERR', "schedule kind must be one of EVERY, CRON, got '" .. show_arg(args[3]) .. "'")
    end
    local spec = { after = {} }
    spec.task = name('task', args[5])
    spec.payload = payload_arg(args[6])
    for option, value in options(args, 7, CORE.schedule.JOB_OPTIONS) do
        set_enqueue_option(spec, option, value)
    end
    definition.task, definition.payload = spec.task, spec.payload
    definition.retries = spec.retries or CORE.enqueue.DEFAULT_RETRIES
    definition.timeout = spec.timeout or CORE.enqueue.DEFAULT_TIMEOUT_MS
    definition.priority = spec.priority or 0
    definition.backoff, definition.unique, definition.keep = spec.backoff, spec.unique, spec.keep

    local k = checked_queue_keys(queue)
    local now = clock()
    local first = next_run(definition, now, now)
    if first == nil then
        bad_cron('it never matches')
    end
    if not call('HGET', k.schedules, definition.name) and call('HLEN', k.schedules) >= CONFIG.schedules_max then
        limit("queue '" .. queue .. "' has " .. itoa(CONFIG.schedules_max) .. ' schedules already', 'schedules-max',
            CONFIG.schedules_max)
    end
    call('HSET', k.schedules, definition.name, definition_json(definition))
    call('ZADD', k.ticks, itoa(first), definition.name)
    count_stat(k, 'enqueued', '0')
    return first
end

register('zrq_schedule', schedule)
