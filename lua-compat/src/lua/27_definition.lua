--------------------------------------------------------------------------------------------------
-- Recurring schedules (core/src/commands/schedule.rs, schedules.rs, unschedule.rs, core/src/cron.rs).
-- A definition is JSON in zrq:{q}:schedules (name -> definition); its next run is its score in
-- zrq:{q}:ticks. Due ticks fire inside FETCH (promote_due), so a tick fires exactly once however
-- many workers fetch.
--------------------------------------------------------------------------------------------------

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

--------------------------------------------------------------------------------------------------
-- zrq_schedule: ZRQ.SCHEDULE <queue> <name> EVERY <ms> | CRON <expr> <task> <payload>
--               [RETRIES|TIMEOUT|BACKOFF|PRIORITY|UNIQUE|KEEP <v>]          (commands/schedule.rs)
-- KEYS[1] the queue; ARGV name, EVERY <1.. ms> or CRON "<min hour dom month dow>" (UTC), the
--         job's task and payload, job options.
-- Reply   the first run (unix ms). Redefining a name replaces it.
-- Errors  ERR (arity, names, kind, EVERY, CRON, options), BADJSON, WRONGTYPE, INTERNAL.
-- Not in Lua: the module's timer fires due ticks; with Lua, FETCH on the queue does.
--------------------------------------------------------------------------------------------------
