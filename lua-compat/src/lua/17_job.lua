--------------------------------------------------------------------------------------------------
-- Job record (core/src/job.rs); its FIELDS, IS_DERIVED, ENTRY_DERIVED and DEFAULT_OF are generated
-- from there.
--------------------------------------------------------------------------------------------------

-- Rust's i64 parse: optional sign, digits, within i64. Returns the number or nil.
local function parse_i64(text)
    -- What records hold (counts, times): a plain integer of up to 15 digits, exact as a number.
    if #text <= 15 and (find(text, '^[1-9]%d*$') or text == '0') then
        return tonumber(text)
    end
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

-- A hash as a table from HGETALL's flat reply, keeping only pairs whose field and value are
-- UTF-8 (as the module's store reads hashes); the name of a field of the job record (FIELDS) is
-- UTF-8 as it is. With `into` (pairs the library made itself, kept as they are), the pairs are
-- added to it, a field already there not read.
local utf8_hash
do
    local is_field_name -- field -> true for each of FIELDS, made on first use

    utf8_hash = function(flat, into)
        if is_field_name == nil then
            is_field_name = {}
            for i = 1, #FIELDS do
                is_field_name[FIELDS[i][1]] = true
            end
        end
        local out = into or {}
        for n = 1, #flat, 2 do
            local field = flat[n]
            if out[field] == nil and (is_field_name[field] or is_utf8(field)) and is_utf8(flat[n + 1]) then
                out[field] = flat[n + 1]
            end
        end
        return out
    end
end

-- Sets `map[prefix .. field]` to the integer value of each of `fields` in `hash` (0 when absent
-- or not an integer), as INFO reports counters.
local function counters(map, hash, fields, prefix)
    for _, field in ipairs(fields) do
        map[prefix .. field] = (hash[field] and parse_i64(hash[field])) or 0
    end
end

-- Plain jobs and their inline entries (job.rs inline_id, inline_entry, Job::from_entry). A plain
-- job (no ID, DELAY, AT nor AFTER) has no record while it is pending: its stream entry holds it
-- (an inline entry, one without the field ENTRY_FIELD), and its id is the entry's id, prefixed
-- `p<n>:` when it is in the stream of priority n > 0: `1764489600000-3`, `p7:1764489600000-3`.
-- One table of functions, so that the library's main chunk keeps few locals:
--   inline.id(priority, entry)      the id of the job an inline entry holds (job.rs inline_id)
--   inline.has_form(id)             whether `id` has the generated form, which ENQUEUE's ID refuses
--   inline.entry(id)                the priority and entry id a generated id names, or nil
--   inline.generated(id)            the entry and its ms a generated id names (below), or nil
--   inline.reference(fields)        a stream entry's reference (the id it names; nil when that is
--                                   not UTF-8), or false for an inline entry
--   inline.load(k, id)              the job the inline entry of generated id `id` holds, or nil
--   inline.job_at(k, priority, entry, fields)   the job behind a stream entry (FETCH, LIST)
local inline = {}

function inline.id(priority, entry)
    if priority == 0 then
        return entry
    end
    return 'p' .. itoa(priority) .. ':' .. entry
end

-- `<digits>-<digits>` or `p<1-9>:<digits>-<digits>` (job.rs has_generated_form).
function inline.has_form(id)
    return find(id, '^%d+%-%d+$') ~= nil or find(id, '^p[1-9]:%d+%-%d+$') ~= nil
end

-- Only an id inline.id gives names an entry: its two numbers written without leading zeros and
-- below 2^64 (Redis' entry ids), so the entry found has the id asked for (job.rs inline_entry).
function inline.entry(id)
    if not inline.has_form(id) then
        return nil
    end
    local priority, entry = 0, id
    if sub(id, 1, 1) == 'p' then
        priority, entry = byte(id, 2) - 48, sub(id, 4)
    end
    for number in string.gmatch(entry, '%d+') do
        if (#number > 1 and sub(number, 1, 1) == '0') or #number > 20
            or (#number == 20 and byte_less('18446744073709551615', number)) then
            return nil
        end
    end
    return priority, entry
end

-- What a generated id says of its job's record (job.rs generated_defaults): its entry E and E's
-- ms, or nil for any other id (and for one whose ms is beyond an i64). A record leaves out what
-- these say: a created_at that is the ms, and a lease that is the default one, `E:<attempt>`
-- for an attempt of 1 or more (no lease is then stored empty); reading a record gives them back.
-- The last id's answer is kept: a command reads a job, then writes it.
do
    local last_id, last_entry, last_ms

    function inline.generated(id)
        if id ~= last_id then
            local _, entry = inline.entry(id)
            local ms = entry and parse_i64(entry:match('^%d+'))
            last_id, last_entry, last_ms = id, ms and entry, ms
        end
        return last_entry, last_ms
    end
end

-- Reads the job `id` of `queue` from the fields of its record (job.rs `Job::from_fields`), a
-- table field -> value: a packed record's (packed.decode), or the UTF-8 pairs of a hash of the
-- earlier format (utf8_hash). `id` and `queue` come from the record's place, fields left out hold
-- their default. A record of the full format (before the compact one) that stores another
-- `queue` or `id` is CORRUPT. Returns nil when there is no field.
local decode_job
do
    -- The readers of one field of `raw` (the record's fields) in `key`; none is a closure, as
    -- every job a command reads goes through them.
    local function corrupt(key, detail)
        fail('CORRUPT', "'" .. key .. "' is not a zrq record: " .. detail)
    end
    local function required(raw, key, field)
        if raw[field] == nil then
            corrupt(key, "field '" .. field .. "' is missing")
        end
        return raw[field]
    end
    local function int(raw, key, field)
        local text = raw[field]
        if text == nil then
            return nil
        end
        local value = parse_i64(text)
        if value == nil then
            corrupt(key, "field '" .. field .. "' is not an integer")
        end
        return value
    end
    -- A stored name that the commands would refuse is not used (job.rs name_field).
    local function name_field(raw, key, field)
        local value = raw[field]
        if value ~= nil and not is_name(field, value) then
            corrupt(key, "field '" .. field .. "' is not a valid name")
        end
        return value
    end
    -- A field left out holds its default.
    local function defaulted(raw, key, field)
        local value = int(raw, key, field)
        if value == nil then
            return DEFAULT_OF[field]
        end
        return value
    end
    -- Left out when the job's generated id says it (inline.generated), else required.
    local function created(raw, key, id)
        local value = int(raw, key, 'created_at')
        if value == nil then
            local _, ms = inline.generated(id)
            if ms == nil then
                corrupt(key, "field 'created_at' is missing")
            end
            return ms
        end
        return value
    end

    decode_job = function(key, raw, queue, id)
        if next(raw) == nil then
            return nil
        end
        local state = required(raw, key, 'state')
        if not IS_STATE[state] then
            corrupt(key, "unknown state '" .. state .. "'")
        end
        if raw.queue ~= nil and raw.queue ~= queue then
            corrupt(key, "field 'queue' does not name its queue")
        end
        if raw.id ~= nil and raw.id ~= id then
            corrupt(key, "field 'id' does not match its key")
        end
        -- The priority names the job's stream: one outside 0-9 would name a key zrq never uses.
        local priority = defaulted(raw, key, 'priority')
        if priority < 0 or priority > MAX_PRIORITY then
            corrupt(key, "field 'priority' is out of range")
        end
        -- One constructor (its fields read in this order): the table is made at its size.
        local job = {
            priority = priority,
            id = id,
            queue = queue,
            task = required(raw, key, 'task'),
            payload = required(raw, key, 'payload'),
            state = state,
            attempt = defaulted(raw, key, 'attempt'),
            max_attempts = defaulted(raw, key, 'max_attempts'),
            timeout = defaulted(raw, key, 'timeout'),
            backoff = int(raw, key, 'backoff'),
            keep = int(raw, key, 'keep'),
            unique = name_field(raw, key, 'unique'),
            parents = raw.parents,
            children = raw.children,
            waiting_on = int(raw, key, 'waiting_on'),
            parents_done = raw.parents_done,
            with_results = int(raw, key, 'with_results'),
            on_parent_fail = raw.on_parent_fail,
            batch = name_field(raw, key, 'batch'),
            schedule = raw.schedule,
            created_at = created(raw, key, id),
            run_at = int(raw, key, 'run_at'),
            started_at = int(raw, key, 'started_at'),
            finished_at = int(raw, key, 'finished_at'),
            consumer = raw.consumer,
            lease = raw.lease,
            progress = int(raw, key, 'progress'),
            cancel_requested = int(raw, key, 'cancel_requested'),
            entry = raw.entry,
            result = raw.result,
            error = raw.error,
        }
        -- The lease: an empty one is none; one left out is the default lease of a generated id
        -- (inline.generated) from the first attempt on, else none.
        local lease = job.lease
        if lease == nil then
            if job.attempt >= 1 then
                local entry = inline.generated(id)
                if entry ~= nil then
                    job.lease = entry .. ':' .. itoa(job.attempt)
                end
            end
        elseif lease == '' then
            job.lease = nil
        end
        return job
    end
end

function inline.reference(fields)
    for f = 1, #fields, 2 do
        if fields[f] == ENTRY_FIELD then
            return is_utf8(fields[f + 1]) and fields[f + 1] or nil
        end
    end
    return false
end

-- packed.read(key, unchecked): the fields of the record at `key` as a table field -> value, nil
-- when the key does not exist (mod.rs Store::record): a string is a packed record
-- (packed.decode, CORRUPT unless it follows the format); a hash is a record of the earlier
-- format, its UTF-8 pairs (it becomes a string on its first write); any other type is WRONGTYPE
-- (expected a string). One GET in the common case: the type is asked only when GET refuses the
-- key. `unchecked`: as packed.decode's.
do
    local rpcall, type_of -- redis.pcall and type, looked up once (at call time)

    function packed.read(key, unchecked)
        if rpcall == nil then
            rpcall, type_of = redis.pcall, type
        end
        local raw = rpcall('GET', key)
        if raw == false then
            return nil
        end
        if type_of(raw) == 'string' then
            return packed.decode(key, raw, unchecked)
        end
        local found = key_type(key)
        if found == 'hash' then
            return utf8_hash(call('HGETALL', key))
        elseif found == 'string' or found == 'none' then
            -- Not a type error (an ACL, say): the failure as any call's.
            call('GET', key)
        end
        fail('WRONGTYPE', "key '" .. key .. "' holds a " .. found .. ', zrq expects a string')
    end
end

-- A job's `place` says where its record is (job.rs Place): nil at its own key (`job:<id>`),
-- 'entry' for a plain pending job its inline entry holds (no record yet), 'records' for a
-- completed or cancelled job kept for the queue's retention as a field of its state's records
-- hash (k.records(state)), whose record does not store the state. packed.read_kept reads it,
-- packed.save writes it there.
local load_job, load_unrecorded
do
    -- A job read for its state and links (load_job's `linked`) from the record at `key`, and
    -- whether the key exists: packed.read_linked leaves out a long payload, result or error.
    -- Without its payload, the job is written by patching what follows the payload (packed.save:
    -- `job.record_head`, the bytes up to the payload's end, and `job.record_size`); a result or
    -- error left out is `job.spans[field]`, read when it is needed (packed.save, wait_for).
    local function load_linked(key, k, id)
        local fields, spans, size = packed.read_linked(key)
        if fields == nil then
            return nil, false
        end
        local payload = spans and spans.payload
        if payload ~= nil then
            -- A placeholder for decode_job, which requires the field.
            fields.payload = ''
        end
        local job = decode_job(key, fields, k.queue, id)
        if job ~= nil and spans ~= nil and next(spans) ~= nil then
            job.spans = spans
            if payload ~= nil then
                job.payload = nil
                job.record_head = payload[1] + payload[2]
                job.record_size = size
            end
        end
        return job, true
    end

    -- The pending job an inline entry holds (its flat field list; job.rs Job::from_entry): state
    -- pending, created_at the entry id's ms, priority that of its stream, entry its id (these
    -- come first: a field of the same name in the entry is not read), the rest from the entry's
    -- fields (defaults for those left out), read as a record is, errors naming the stream.
    -- It has no record yet: its first write (packed.save) gives it one.
    local function decode_inline(k, priority, entry, fields)
        local known = { state = 'pending', created_at = (entry:match('^(%d+)')), priority = itoa(priority),
            entry = entry }
        local id = inline.id(priority, entry)
        local job = decode_job(k.stream_at(priority), utf8_hash(fields, known), k.queue, id)
        job.place = 'entry'
        return job
    end

    -- The record of job `id` (nil when there is none or nothing of it reads), and whether its key
    -- exists; `linked`: as load_job's.
    local function load_record(k, id, linked)
        local key = k.job(id)
        if linked then
            return load_linked(key, k, id)
        end
        local fields = packed.read(key)
        if fields == nil then
            return nil, false
        end
        return decode_job(key, fields, k.queue, id), true
    end

    -- One XRANGE of the entry; a stream key of another type is WRONGTYPE (mod.rs load_inline).
    function inline.load(k, id)
        local priority, entry = inline.entry(id)
        if priority == nil then
            return nil
        end
        local stream = k.stream_at(priority)
        check_types({ { stream, 'stream' } })
        local found = call('XRANGE', stream, entry, entry)[1]
        if found == nil or inline.reference(found[2]) ~= false then
            return nil
        end
        return decode_inline(k, priority, entry, found[2])
    end

    -- packed.kept_raw(k, id, state): the records hash of final `state` and job `id`'s field in
    -- it (nil when it is not there), as stored. A hash key of another type is WRONGTYPE (its type
    -- asked only when HGET refuses it).
    function packed.kept_raw(k, id, state)
        local key = k.records(state)
        local raw = redis.pcall('HGET', key, id)
        if type(raw) == 'table' then
            check_types({ { key, 'hash' } })
            raw = call('HGET', key, id)
        end
        return key, raw
    end

    -- packed.read_kept(k, id, state, linked): job `id` if it is kept for the queue's retention
    -- in the records hash of final `state` (mod.rs load_kept), nil when it is not there: its
    -- field decoded as a packed record whose state is the hash's (one that stores another is
    -- CORRUPT), errors naming the hash. With `linked` (load_job's), its data fields are not
    -- checked for UTF-8: a hash field is read whole (there is no GETRANGE of a field), and
    -- checking after-max parents' payload-max payloads and results held the server for seconds.
    function packed.read_kept(k, id, state, linked)
        local key, raw = packed.kept_raw(k, id, state)
        if not raw then
            return nil
        end
        local fields = packed.decode(key, raw, linked and packed.DATA or nil)
        if fields.state ~= nil and fields.state ~= state then
            fail('CORRUPT', "'" .. key .. "' is not a zrq record: field 'state' does not match its place")
        end
        fields.state = state
        local job = decode_job(key, fields, k.queue, id)
        job.place = 'records'
        return job
    end

    -- Job `id` when it has no record at its own key (mod.rs load_unrecorded): a plain pending
    -- job its inline entry holds, else a finished job kept in completed:records, else in
    -- cancelled:records; nil when there is none. `linked`: as load_job's.
    load_unrecorded = function(k, id, linked)
        return inline.load(k, id) or packed.read_kept(k, id, 'completed', linked)
            or packed.read_kept(k, id, 'cancelled', linked)
    end

    -- Loads job `id`, or nil if there is none: its record, authoritative when it exists, else
    -- the inline entry a generated id names, else its field in a records hash
    -- (load_unrecorded); WRONGTYPE/CORRUPT as the module, including a
    -- full-format record whose `queue` or `id` differs from where it is stored
    -- (commands/mod.rs load_job). With `linked`, for a job read for its state and links (a
    -- parent at ENQUEUE, each waiting child of a finished parent), the data fields of a packed
    -- record are read in pieces (load_linked: long ones not at all) and not checked for UTF-8:
    -- checking a payload-max text of every kind of UTF-8 sequence costs Lua about 35 ms, so
    -- children-max children would hold the server for seconds. A result that is copied is
    -- checked then (result_json). Unlike the module, which
    -- finds such a record CORRUPT, a record whose data fields are not UTF-8 (not written by zrq)
    -- is read that way.
    load_job = function(k, id, linked)
        local job, exists = load_record(k, id, linked)
        if exists then
            return job
        end
        return load_unrecorded(k, id, linked)
    end

    -- The job of entry `entry` of the stream of `priority` (its flat field list, as XRANGE and
    -- XREADGROUP give it): a reference entry's job from the record it names; an inline entry's
    -- from its record if one was written since (materialized), else from the entry. nil when
    -- there is none (a reference whose value is not UTF-8, a record gone). (fetch.rs read_entry)
    function inline.job_at(k, priority, entry, fields)
        local reference = inline.reference(fields)
        if reference ~= false then
            return reference and load_job(k, reference)
        end
        local id = inline.id(priority, entry)
        local job, exists = load_record(k, id)
        if exists then
            return job
        end
        return decode_inline(k, priority, entry, fields)
    end
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

local job_hset_args, job_fields_args, job_reply, text_bytes
do
    -- FIELDS as each loop below needs it, made on first use: every name in order, the integer
    -- ones, the names stored (not derived) in order, the text ones. These loops run for every
    -- job a command handles.
    local names, is_int, stored, texts
    local function split_fields()
        names, is_int, stored, texts = {}, {}, {}, {}
        for i = 1, #FIELDS do
            local name, kind = FIELDS[i][1], FIELDS[i][2]
            names[i] = name
            if kind == 'integer' then
                is_int[name] = true
            elseif kind == 'text' then
                texts[#texts + 1] = name
            end
            if not IS_DERIVED[name] then
                stored[#stored + 1] = name
            end
        end
    end

    -- The present fields of `job` among `fields` (names in FIELDS order) but those holding
    -- their default, as HSET or XADD arguments, integers as text (job.rs `to_fields`).
    job_fields_args = function(job, fields)
        if is_int == nil then
            split_fields()
        end
        local out, n = {}, 0
        for i = 1, #fields do
            local field = fields[i]
            local value = job[field]
            if value ~= nil and DEFAULT_OF[field] ~= value then
                out[n + 1] = field
                out[n + 2] = is_int[field] and itoa(value) or value
                n = n + 2
            end
        end
        return out
    end

    -- The fields to store as HSET arguments, in FIELDS order (job.rs `to_fields`): present
    -- fields but the derived ones and those holding their default.
    job_hset_args = function(job)
        if stored == nil then
            split_fields()
        end
        return job_fields_args(job, stored)
    end

    -- The job as a reply map: every present field, the derived ones and defaults included,
    -- integers as integers (job.rs `to_reply`).
    job_reply = function(job)
        if names == nil then
            split_fields()
        end
        local map = {}
        for i = 1, #names do
            local field = names[i]
            local value = job[field]
            if value ~= nil then
                map[field] = value
            end
        end
        return { map = map }
    end

    -- The bytes of the job's text fields: what reading it costs, the measure of
    -- zrq.reply-max-bytes (job.rs text_bytes).
    text_bytes = function(job)
        if texts == nil then
            split_fields()
        end
        local bytes = 0
        for i = 1, #texts do
            local value = job[texts[i]]
            if value ~= nil then
                bytes = bytes + #value
            end
        end
        return bytes
    end
end

-- packed.save(k, job, expire_ms): writes the whole record of `job` as it is now, packed, in one
-- SET of its key (mod.rs save): every write of a job record is this one, once the command has
-- made its changes. `expire_ms` is a finished job's retention (PX); without it the key keeps its
-- TTL (KEEPTTL). A record of the earlier format (hash) becomes a string here; a plain pending job
-- held by its inline entry gets its first record (its entry stays; from then on the record is
-- authoritative).
--
-- A job read without its payload (load_linked: `record_head` set) is written by patching its
-- record: what follows the payload is replaced (SETRANGE) by the fields after the payload as
-- they are now, the same bytes a whole SET would store; a retention is then set by PEXPIRE. When
-- the new fields are shorter than the old ones (SETRANGE cannot shorten a string) the payload's
-- part is read (GETRANGE) and the whole record SET. A result or error left out is read first.
-- The record must not have been written since it was read.
--
-- What the job's generated id says is left out (inline.generated): its created_at when it is the
-- id's ms, its lease when it is the default lease (none is then stored empty).
--
-- A job kept in a records hash (job.place 'records', see packed.read_kept) is written back
-- there, as its field (HSET), packed without its state (the hash says it); never to its own key.
function packed.save(k, job, expire_ms)
    local entry, created = inline.generated(job.id)
    local lease
    if entry ~= nil and job.attempt >= 1 then
        lease = entry .. ':' .. itoa(job.attempt)
    end
    local spans = job.spans
    if spans ~= nil then
        for field, span in pairs(spans) do
            if field ~= 'payload' and job[field] == nil then
                job[field] = packed.span(k.job(job.id), span)
            end
        end
        job.spans = nil
    end
    if job.place == 'records' then
        local records = k.records(job.state)
        if records ~= nil then
            local state = job.state
            job.state = nil
            local record = packed.encode(job, false, created, lease)
            job.state = state
            call('HSET', records, job.id, record)
            return
        end
    end
    job.place = nil
    local head = job.record_head
    if head ~= nil then
        local key = k.job(job.id)
        local tail = packed.encode(job, true, created, lease)
        if head + #tail >= job.record_size then
            call('SETRANGE', key, itoa(head), tail)
            if expire_ms ~= nil then
                call('PEXPIRE', key, itoa(expire_ms))
            end
        else
            local record = packed.span(key, { 0, head }) .. tail
            if expire_ms ~= nil then
                call('SET', key, record, 'PX', itoa(expire_ms))
            else
                call('SET', key, record, 'KEEPTTL')
            end
        end
        job.record_size = head + #tail
        return
    end
    if expire_ms ~= nil then
        call('SET', k.job(job.id), packed.encode(job, false, created, lease), 'PX', itoa(expire_ms))
    else
        call('SET', k.job(job.id), packed.encode(job, false, created, lease), 'KEEPTTL')
    end
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
-- Ids of jobs enqueued without an ID but with DELAY, AT or AFTER (a plain job's id is its entry's,
-- see inline.id): UUIDv7 (RFC 9562), unique even for many ids in one millisecond.
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
