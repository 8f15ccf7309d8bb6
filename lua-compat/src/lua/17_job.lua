--------------------------------------------------------------------------------------------------
-- Job record (core/src/job.rs); its FIELDS, IS_DERIVED and DEFAULT_OF are generated from there.
--------------------------------------------------------------------------------------------------

-- Rust's i64 parse: optional sign, digits, within i64. Returns the number or nil.
local function parse_i64(text)
    local sign, digits = text:match('^([+-]?)(%d+)$')
    if not digits then
        return nil
    end
    local significant = digits:gsub('^0+', '')
    if #significant > 19 then
        return nil
    end
    if #significant == 19 then
        local limit = sign == '-' and '9223372036854775808' or '9223372036854775807'
        if byte_less(limit, significant) then
            return nil
        end
    end
    local value = tonumber(significant ~= '' and significant or '0')
    return sign == '-' and -value or value
end

-- The fields of a job record that hold its own data, up to megabytes; a job read only for its
-- state and links is read without them (mod.rs DATA_FIELDS, load_linked).
local DATA_FIELDS = { payload = true, result = true, error = true }

-- A hash as a table from HGETALL's flat reply, keeping only pairs whose field and value are
-- UTF-8 (as the module's store reads hashes), and none of the fields in the set `skip`.
local function utf8_hash(flat, skip)
    local out = {}
    for n = 1, #flat, 2 do
        local field = flat[n]
        if out[field] == nil and not (skip and skip[field]) and is_utf8(field) and is_utf8(flat[n + 1]) then
            out[field] = flat[n + 1]
        end
    end
    return out
end

-- Sets `map[prefix .. field]` to the integer value of each of `fields` in `hash` (0 when absent
-- or not an integer), as INFO reports counters.
local function counters(map, hash, fields, prefix)
    for _, field in ipairs(fields) do
        map[prefix .. field] = (hash[field] and parse_i64(hash[field])) or 0
    end
end

-- Reads the record of job `id` of `queue` from HGETALL's flat reply (job.rs `Job::from_fields`):
-- `id` and `queue` come from the record's place, fields left out hold their default. A record of
-- the full format (before the compact one) that stores another `queue` or `id` is CORRUPT.
-- Fields or values that are not UTF-8 are skipped, as the module's store does. Returns nil when
-- nothing is left. With `linked`, the data fields are left out unread (mod.rs load_linked).
local function decode_job(key, flat, queue, id, linked)
    local raw = utf8_hash(flat, linked and DATA_FIELDS)
    if next(raw) == nil then
        return nil
    end
    if linked then
        raw.payload = ''
    end
    local function corrupt(detail)
        fail('CORRUPT', "'" .. key .. "' is not a zrq record: " .. detail)
    end
    local function required(field)
        if raw[field] == nil then
            corrupt("field '" .. field .. "' is missing")
        end
        return raw[field]
    end
    local function int(field, needed)
        local text = raw[field]
        if text == nil then
            if needed then
                corrupt("field '" .. field .. "' is missing")
            end
            return nil
        end
        local value = parse_i64(text)
        if value == nil then
            corrupt("field '" .. field .. "' is not an integer")
        end
        return value
    end
    -- A stored name that the commands would refuse is not used (job.rs name_field).
    local function name_field(field)
        local value = raw[field]
        if value ~= nil and not is_name(field, value) then
            corrupt("field '" .. field .. "' is not a valid name")
        end
        return value
    end
    -- A field left out holds its default.
    local function defaulted(field)
        local value = int(field, false)
        if value == nil then
            return DEFAULT_OF[field]
        end
        return value
    end
    local job = {}
    local state = required('state')
    if not IS_STATE[state] then
        corrupt("unknown state '" .. state .. "'")
    end
    if raw.queue ~= nil and raw.queue ~= queue then
        corrupt("field 'queue' does not name its queue")
    end
    if raw.id ~= nil and raw.id ~= id then
        corrupt("field 'id' does not match its key")
    end
    -- The priority names the job's stream: one outside 0-9 would name a key zrq never uses.
    job.priority = defaulted('priority')
    if job.priority < 0 or job.priority > MAX_PRIORITY then
        corrupt("field 'priority' is out of range")
    end
    job.id = id
    job.queue = queue
    job.task = required('task')
    job.payload = required('payload')
    job.state = state
    job.attempt = defaulted('attempt')
    job.max_attempts = defaulted('max_attempts')
    job.timeout = defaulted('timeout')
    job.backoff = int('backoff', false)
    job.keep = int('keep', false)
    job.unique = name_field('unique')
    job.parents = raw.parents
    job.children = raw.children
    job.waiting_on = int('waiting_on', false)
    job.parents_done = raw.parents_done
    job.with_results = int('with_results', false)
    job.on_parent_fail = raw.on_parent_fail
    job.batch = name_field('batch')
    job.schedule = raw.schedule
    job.created_at = int('created_at', true)
    job.run_at = int('run_at', false)
    job.started_at = int('started_at', false)
    job.finished_at = int('finished_at', false)
    job.consumer = raw.consumer
    job.lease = raw.lease
    job.progress = int('progress', false)
    job.cancel_requested = int('cancel_requested', false)
    job.entry = raw.entry
    job.result = raw.result
    job.error = raw.error
    return job
end

-- Loads job `id`, or nil if there is no record; WRONGTYPE/CORRUPT as the module, including a
-- full-format record whose `queue` or `id` differs from where it is stored (commands/mod.rs
-- load_job); with `linked`, without its data fields, for a job read only for its state and links
-- (load_linked).
local function load_job(k, id, linked)
    local key = k.job(id)
    -- One command for the type and the fields (mod.rs Store::record); the type is asked only
    -- when HGETALL refuses the key, for the WRONGTYPE text.
    local fields = redis.pcall('HGETALL', key)
    if type(fields) == 'table' and fields.err then
        check_types({ { key, 'hash' } })
        fields = call('HGETALL', key)
    end
    return decode_job(key, fields, k.queue, id, linked)
end

-- Like load_job, but any error counts as "no job" (where the module uses `.ok().flatten()`).
local function try_load_job(k, id, linked)
    local ok, job = pcall(load_job, k, id, linked)
    if ok then
        return job
    end
    if type(job) == 'table' and job.zrq_error then
        return nil
    end
    error(job, 0)
end

-- Calls visit(field, kind, value) for each field the job has, in FIELDS order.
local function each_present_field(job, visit)
    for _, f in ipairs(FIELDS) do
        local value = job[f[1]]
        if value ~= nil then
            visit(f[1], f[2], value)
        end
    end
end

-- The fields to store as HSET arguments, in FIELDS order (job.rs `to_fields`): present fields but
-- the derived ones and those holding their default.
local function job_hset_args(job)
    local out = {}
    each_present_field(job, function(field, kind, value)
        if not IS_DERIVED[field] and DEFAULT_OF[field] ~= value then
            out[#out + 1] = field
            out[#out + 1] = kind == 'integer' and itoa(value) or value
        end
    end)
    return out
end

-- Sets integer field `field` of job `id`'s record to `value`: stores it, or deletes the field when
-- `value` is its default (mod.rs set_integer).
local function set_integer(k, id, field, value)
    if DEFAULT_OF[field] == value then
        call('HDEL', k.job(id), field)
    else
        call('HSET', k.job(id), field, itoa(value))
    end
end

-- The job as a reply map: every present field, the derived ones and defaults included, integers
-- as integers (job.rs `to_reply`).
local function job_reply(job)
    local map = {}
    each_present_field(job, function(field, _, value)
        map[field] = value
    end)
    return { map = map }
end

-- The bytes of the job's text fields: what reading it costs, the measure of
-- zrq.reply-max-bytes (job.rs text_bytes).
local function text_bytes(job)
    local bytes = 0
    for _, f in ipairs(FIELDS) do
        local value = job[f[1]]
        if f[2] == 'text' and value ~= nil then
            bytes = bytes + #value
        end
    end
    return bytes
end

-- The reading budget of one paged command, zrq.reply-max-bytes (mod.rs Budget): admit(bytes)
-- counts a record the page is about to handle, or returns false (counting nothing) when the page
-- has handled one already and this one would pass the budget.
local function new_budget()
    local used, handled = 0, false
    return {
        admit = function(bytes)
            if handled and used + bytes > CONFIG.reply_max_bytes then
                return false
            end
            used, handled = used + bytes, true
            return true
        end,
    }
end

-- The text bytes of `job`, 0 when there is none (a record that could not be read).
local function bytes_of(job)
    return job and text_bytes(job) or 0
end

local function jobs_reply(jobs)
    local out = {}
    for n, job in ipairs(jobs) do
        out[n] = job_reply(job)
    end
    return out
end

--------------------------------------------------------------------------------------------------
-- Job ids: UUIDv7 (RFC 9562), unique even for many ids in one millisecond.
--
-- 48 bits unix ms | version 7 | 12 bits sub-millisecond fraction (from TIME's microseconds) |
-- variant 10 | 30 bits counter | 32 bits hash. The counter lives as long as the library is loaded,
-- starts at a value derived from the clock, and advances on every id, so two ids of one server
-- never collide even within one microsecond; ids sort by creation time. No randomness is needed
-- (Redis' math.random is deterministic in scripts): the generated id reaches replicas and the AOF
-- as part of the HSET/XADD effects, never recomputed.
--------------------------------------------------------------------------------------------------

local id_counter = nil

local function new_id(queue, sec, usec)
    local ms = sec * 1000 + floor(usec / 1000)
    local seed = sec .. ':' .. usec .. ':' .. queue
    if id_counter == nil then
        id_counter = tonumber(sub(redis.sha1hex(seed), 1, 7), 16)
    end
    id_counter = (id_counter + 1) % 1073741824 -- 2^30
    local fraction = floor((usec % 1000) * 4096 / 1000)
    local hash = tonumber(sub(redis.sha1hex(seed .. ':' .. id_counter), 1, 8), 16)
    return format('%08x-%04x-7%03x-%04x-%04x%08x',
        floor(ms / 65536), ms % 65536, fraction,
        0x8000 + floor(id_counter / 65536), id_counter % 65536, hash)
end
