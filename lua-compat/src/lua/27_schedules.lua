--------------------------------------------------------------------------------------------------
-- Recurring schedules (core/src/commands/schedule.rs, schedules.rs, unschedule.rs, core/src/cron.rs).
-- A definition is JSON in zrq:{q}:schedules (name -> definition); its next run is its score in
-- zrq:{q}:ticks. Due ticks fire inside FETCH (promote_due), so a tick fires exactly once however
-- many workers fetch.
--------------------------------------------------------------------------------------------------

local MINUTE_MS = 60000
local DAY_MS = 86400000

local function bad_cron(detail)
    fail('ERR', 'CRON expression is invalid: ' .. detail)
end

-- Rust's u32 parse: optional '+' (no '-'), digits, at most 4294967295. Returns the number or nil.
local function parse_u32(text)
    local value = sub(text, 1, 1) ~= '-' and parse_i64(text)
    if not value or value > 4294967295 then
        return nil
    end
    return value
end

-- One cron field: a set of allowed values, and whether it is restricted (not '*').
local function cron_field(text, field_name, min, max)
    local set = {}
    for part in (text .. ','):gmatch('([^,]*),') do
        local function bad()
            bad_cron(field_name .. " field '" .. show_arg(part) .. "' must be within " .. min .. '-' .. max)
        end
        local range, step = part, 1
        local slash = find(part, '/', 1, true)
        if slash then
            range = sub(part, 1, slash - 1)
            step = parse_u32(sub(part, slash + 1))
            if not step or step == 0 then
                bad()
            end
        end
        local low, high
        if range == '*' then
            low, high = min, max
        else
            local dash = find(range, '-', 1, true)
            if dash then
                low, high = parse_u32(sub(range, 1, dash - 1)), parse_u32(sub(range, dash + 1))
                if not low or not high then
                    bad()
                end
            else
                low = parse_u32(range)
                if not low then
                    bad()
                end
                high = slash and max or low
            end
        end
        if low < min or high > max or low > high then
            bad()
        end
        local value = low
        while value <= high do
            set[value] = true
            value = value + step
        end
    end
    return set, text ~= '*'
end

local function cron_parse(text)
    local fields = {}
    for word in text:gmatch('[^ \t\n\f\r]+') do
        fields[#fields + 1] = word
    end
    if #fields ~= 5 then
        bad_cron('expected 5 fields (minute hour day-of-month month day-of-week), got ' .. #fields)
    end
    local cron = {}
    cron.minutes = cron_field(fields[1], 'minute', 0, 59)
    cron.hours = cron_field(fields[2], 'hour', 0, 23)
    cron.days, cron.days_restricted = cron_field(fields[3], 'day-of-month', 1, 31)
    cron.months = cron_field(fields[4], 'month', 1, 12)
    cron.weekdays, cron.weekdays_restricted = cron_field(fields[5], 'day-of-week', 0, 7)
    if cron.weekdays[7] then
        cron.weekdays[0] = true
    end
    return cron
end

-- Days since 1970-01-01 <-> civil dates (Howard Hinnant's algorithms, as cron.rs).
local function civil_from_days(days)
    local z = days + 719468
    local era = floor(z / 146097)
    local doe = z - era * 146097
    local yoe = floor((doe - floor(doe / 1460) + floor(doe / 36524) - floor(doe / 146096)) / 365)
    local doy = doe - (365 * yoe + floor(yoe / 4) - floor(yoe / 100))
    local mp = floor((5 * doy + 2) / 153)
    local day = doy - floor((153 * mp + 2) / 5) + 1
    local month = mp < 10 and mp + 3 or mp - 9
    local year = yoe + era * 400 + (month <= 2 and 1 or 0)
    return year, month, day
end

local function days_from_civil(year, month, day)
    if month <= 2 then
        year = year - 1
    end
    local era = floor(year / 400)
    local yoe = year - era * 400
    local doy = floor((153 * (month > 2 and month - 3 or month + 9) + 2) / 5) + day - 1
    local doe = yoe * 365 + floor(yoe / 4) - floor(yoe / 100) + doy
    return era * 146097 + doe - 719468
end

-- The first matching minute strictly after `after` (unix ms), or nil within ten years.
local function cron_next_after(cron, after)
    local t = floor(after / MINUTE_MS) * MINUTE_MS + MINUTE_MS
    local limit = after + 10 * 366 * DAY_MS
    while t <= limit do
        local days = floor(t / DAY_MS)
        local year, month, day = civil_from_days(days)
        local weekday = (days + 4) % 7
        local by_day, by_weekday = cron.days[day] == true, cron.weekdays[weekday] == true
        local day_ok
        if cron.days_restricted and cron.weekdays_restricted then
            day_ok = by_day or by_weekday
        elseif cron.days_restricted then
            day_ok = by_day
        elseif cron.weekdays_restricted then
            day_ok = by_weekday
        else
            day_ok = true
        end
        local minute_of_day = floor((t - days * DAY_MS) / MINUTE_MS)
        local hour, minute = floor(minute_of_day / 60), minute_of_day % 60
        if not cron.months[month] then
            if month == 12 then
                t = days_from_civil(year + 1, 1, 1) * DAY_MS
            else
                t = days_from_civil(year, month + 1, 1) * DAY_MS
            end
        elseif not day_ok then
            t = (days + 1) * DAY_MS
        elseif not cron.hours[hour] then
            t = days * DAY_MS + (hour + 1) * 60 * MINUTE_MS
        elseif not cron.minutes[minute] then
            t = t + MINUTE_MS
        else
            return t
        end
    end
    return nil
end

-- A definition's next run after `due` when it is `now` (schedule.rs next_run). An EVERY period
-- is at least zrq.every-min-ms: a schedule stored with a shorter one (by the module, its config
-- lowered then) runs at the minimum, its stored period unchanged.
local function next_run(definition, due, now)
    if definition.every ~= nil then
        if definition.every < 1 then
            return nil -- a stored period below 1 (not written by zrq) never runs again
        end
        local every = math.max(definition.every, CONFIG.every_min_ms)
        local behind = floor(math.max(now - due, 0) / every)
        return due + every * (behind + 1)
    elseif definition.cron ~= nil then
        local ok, cron = pcall(cron_parse, definition.cron)
        if not ok then
            return nil
        end
        return cron_next_after(cron, now)
    end
    return nil
end

-- Definitions as serde_json writes them (schedule.rs Definition, field order kept).
local DEFINITION_FIELDS = { { 'name', 'text' }, { 'every', 'integer', true }, { 'cron', 'text', true },
    { 'task', 'text' }, { 'payload', 'text' }, { 'retries', 'integer' }, { 'timeout', 'integer' },
    { 'priority', 'integer' }, { 'backoff', 'integer', true }, { 'unique', 'text', true },
    { 'keep', 'integer', true }, { 'last_run', 'integer', true } }

local function definition_json(definition)
    local parts = {}
    for _, f in ipairs(DEFINITION_FIELDS) do
        local value = definition[f[1]]
        if value ~= nil then
            local text = f[2] == 'integer' and itoa(value) or json_string(value)
            parts[#parts + 1] = json_string(f[1]) .. ':' .. text
        end
    end
    return '{' .. table.concat(parts, ',') .. '}'
end

-- Reads a stored definition; an unreadable one is CORRUPT (the detail differs from serde's).
local function definition_from_json(key, text)
    local ok, decoded = pcall(cjson.decode, text)
    if not ok or type(decoded) ~= 'table' then
        fail('CORRUPT', "'" .. key .. "' is not a zrq record: not a schedule definition")
    end
    local definition = {}
    for _, f in ipairs(DEFINITION_FIELDS) do
        local value = decoded[f[1]]
        if value == cjson.null then
            value = nil
        end
        local wanted = f[2] == 'integer' and 'number' or 'string'
        if value == nil and not f[3] then
            fail('CORRUPT', "'" .. key .. "' is not a zrq record: missing field `" .. f[1] .. '`')
        end
        if value ~= nil and (type(value) ~= wanted or (wanted == 'number' and value ~= floor(value))) then
            fail('CORRUPT', "'" .. key .. "' is not a zrq record: invalid type for `" .. f[1] .. '`')
        end
        definition[f[1]] = value
    end
    -- The values must pass the checks ZRQ.SCHEDULE applies to its arguments (schedule.rs
    -- invalid_field): a stored priority names a stream key, a stored task is written into jobs.
    local function within(v, min, max) return v >= min and v <= max end
    local function optional(v, min) return v == nil or within(v, min, MAX_DURATION_MS) end
    local d = definition
    local checks = {
        { 'name', is_name('name', d.name) },
        { 'every', optional(d.every, 1) },
        { 'cron', (d.cron == nil or pcall(cron_parse, d.cron)) and ((d.every ~= nil) ~= (d.cron ~= nil)) },
        { 'task', is_name('task', d.task) },
        { 'payload', is_utf8(d.payload) and json_detail(d.payload) == nil },
        { 'retries', within(d.retries, 0, MAX_RETRIES) },
        { 'timeout', within(d.timeout, 1, MAX_DURATION_MS) },
        { 'priority', within(d.priority, 0, MAX_PRIORITY) },
        { 'backoff', optional(d.backoff, 0) },
        { 'unique', d.unique == nil or is_name('unique', d.unique) },
        { 'keep', optional(d.keep, 1) },
    }
    for _, check in ipairs(checks) do
        if not check[2] then
            fail('CORRUPT', "'" .. key .. "' is not a zrq record: invalid value for `" .. check[1] .. '`')
        end
    end
    return definition
end

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
        itoa(PROMOTE_BATCH))
    local full = #due_ticks > 0 and memory_full()
    for n = 1, #due_ticks, 2 do
        local schedule, due = due_ticks[n], tonumber(due_ticks[n + 1]) or now
        local text = is_utf8(schedule) and call('HGET', k.schedules, schedule)
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

--------------------------------------------------------------------------------------------------
-- zrq_schedule: ZRQ.SCHEDULE <queue> <name> EVERY <ms> | CRON <expr> <task> <payload>
--               [RETRIES|TIMEOUT|BACKOFF|PRIORITY|UNIQUE|KEEP <v>]          (commands/schedule.rs)
-- KEYS[1] the queue; ARGV name, EVERY <1.. ms> or CRON "<min hour dom month dow>" (UTC), the
--         job's task and payload, job options.
-- Reply   the first run (unix ms). Redefining a name replaces it.
-- Errors  ERR (arity, names, kind, EVERY, CRON, options), BADJSON, WRONGTYPE, INTERNAL.
-- Not in Lua: the module's timer fires due ticks; with Lua, FETCH on the queue does.
--------------------------------------------------------------------------------------------------

local SCHEDULE_JOB_OPTIONS = { 'RETRIES', 'TIMEOUT', 'BACKOFF', 'PRIORITY', 'UNIQUE', 'KEEP' }

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
    for option, value in options(args, 7, SCHEDULE_JOB_OPTIONS) do
        set_enqueue_option(spec, option, value)
    end
    definition.task, definition.payload = spec.task, spec.payload
    definition.retries = spec.retries or DEFAULT_RETRIES
    definition.timeout = spec.timeout or DEFAULT_TIMEOUT_MS
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
    call('HINCRBY', k.stats, 'enqueued', '0')
    return first
end

register('zrq_schedule', schedule, 'write-deny-oom')

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
        return 0
    end
    call('HDEL', k.schedules, schedule_name)
    call('ZREM', k.ticks, schedule_name)
    return 1
end

register('zrq_unschedule', unschedule, 'write')

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

register('zrq_schedules', schedules, 'readonly')
