--------------------------------------------------------------------------------------------------
-- Workflows (core/src/commands/flow.rs): children waiting on parents, batches.
--------------------------------------------------------------------------------------------------

-- Why a child waiting on `parent` (id, state) is cancelled, or noted when it runs anyway.
local function parent_ended(parent)
    return 'parent ' .. parent.id .. ' ended ' .. parent.state
end

-- Whether `list` (an array) holds `value`.
local function contains(list, value)
    for _, item in ipairs(list) do
        if item == value then
            return true
        end
    end
    return false
end

-- The shape zrq keeps a `parents` text in: first the unfinished parents, `"<id>":null` each, then
-- the finished ones with their results in the order they finished. Returns the ids of the leading
-- null entries (ids without `"` or `\`) and the position where the rest starts (the final `}`
-- when there is none); nil for a text that does not start that way. Reads only those entries, not
-- the results after them. (flow.rs pending_parents)
local function pending_parents(text)
    if text == nil or #text < 2 or sub(text, 1, 1) ~= '{' or sub(text, -1) ~= '}' then
        return nil
    end
    local ids, at = {}, 2
    if #text == 2 then
        return ids, at
    end
    while true do
        if sub(text, at, at) ~= '"' then
            return nil
        end
        local close = find(text, '"', at + 1, true)
        if not close then
            return nil
        end
        local id = sub(text, at + 1, close - 1)
        if find(id, '\\', 1, true) then
            return nil
        end
        if sub(text, close + 1, close + 5) ~= ':null' then
            return ids, at
        end
        local after = sub(text, close + 6, close + 6)
        if after == '}' and close + 6 == #text then
            ids[#ids + 1] = id
            return ids, #text
        end
        if after ~= ',' then
            return ids, at
        end
        ids[#ids + 1] = id
        at = close + 7
    end
end

-- Whether the waiting `child` still waits for `parent_id`: one of its parents (a `children` entry
-- can outlive its child, whose id may be taken again by a job with other parents), not counted
-- yet (a parent requeued after it died or was cancelled finishes a second time). (flow.rs awaits)
local function awaits(child, parent_id)
    if contains(id_list(child.parents_done), parent_id) then
        return false
    end
    if child.parents == nil then
        return true
    end
    -- An unfinished parent is among the leading null entries: found without reading results.
    -- Only a text written before that shape (sorted by id) is read whole.
    local pending, rest = pending_parents(child.parents)
    if pending ~= nil then
        if contains(pending, parent_id) then
            return true
        end
        if rest == #child.parents then
            return false
        end
    end
    local entries = object_entries(child.parents)
    if entries == nil then
        -- A record whose parents cannot be read keeps waiting on whatever names it.
        return true
    end
    for _, entry in ipairs(entries) do
        if entry[1] == parent_id then
            return true
        end
    end
    return false
end

-- A character beyond ASCII (one well-formed UTF-8 sequence) as a JSON escape: `\u00e9`, or a
-- surrogate pair beyond U+FFFF. (flow.rs ascii_json)
local function json_escape_char(seq)
    local b1, n = byte(seq, 1), #seq
    local cp = b1 - (n == 2 and 0xC0 or n == 3 and 0xE0 or 0xF0)
    for i = 2, n do
        cp = cp * 64 + (byte(seq, i) - 0x80)
    end
    if cp < 0x10000 then
        return format('\\u%04x', cp)
    end
    cp = cp - 0x10000
    return format('\\u%04x\\u%04x', 0xD800 + floor(cp / 1024), 0xDC00 + cp % 1024)
end

-- A parent's result as it is copied into its WITHRESULTS children: compact JSON with every
-- character beyond ASCII escaped (the same document, cheap to check as UTF-8 for each of
-- children-max children), or 'null' when there is none (or it is not JSON). Computed once per
-- finished parent; `checked` when the result is an ACK's RESULT, already checked as JSON (the
-- module parses it either way). (flow.rs result_json, ascii_json)
local function result_json(result, checked)
    if result ~= nil and (checked or (json_detail(result) == nil and is_utf8(result))) then
        local text = compact_json(result)
        if has_non_ascii(text) then
            text = string.gsub(text, '[\194-\244][\128-\191]*', json_escape_char)
        end
        return text
    end
    return 'null'
end

-- `parents` with `parent_id` moved from the unfinished to the finished entries with `value`; a
-- text not in zrq's shape, or without the parent among the unfinished, is read whole and written
-- back sorted by id. (flow.rs with_result)
local function with_result(parents, parent_id, value)
    local pending, rest = pending_parents(parents)
    if pending ~= nil and contains(pending, parent_id) then
        local parts = {}
        for _, id in ipairs(pending) do
            if id ~= parent_id then
                parts[#parts + 1] = '"' .. id .. '":null'
            end
        end
        local finished = sub(parents, rest, #parents - 1)
        if finished ~= '' then
            parts[#parts + 1] = finished
        end
        parts[#parts + 1] = '"' .. parent_id .. '":' .. value
        return '{' .. table.concat(parts, ',') .. '}'
    end
    local entries = object_entries(parents) or {}
    entries[#entries + 1] = { parent_id, value }
    return json_object(entries)
end

-- Whether a result of `bytes` bytes (as its parent stored it) may be copied into `parents`: the
-- field with it in place of the parent's null stays within zrq.parents-max-bytes.
-- (flow.rs result_fits)
local function result_fits(parents, bytes)
    return math.max(#(parents or '') + bytes - 4, 0) <= CONFIG.parents_max_bytes
end

-- Records in the waiting `child` that `parent` (id, state) is done, with its `result` as the
-- parent stored it (or a function that reads it), of `size` bytes (`cache.json` keeps its
-- result_json across the children of one parent) and, unless it completed, a note on the child;
-- without writing it: the caller writes it once it has counted every parent it counts in this
-- step (write_waiting, which releases it when none is left). The caller checked that the child
-- awaits this parent. A WITHRESULTS child's `parents` stays within zrq.parents-max-bytes: a
-- result that would take it beyond is copied as null, and the child's `error` says so.
-- (flow.rs parent_done)
local function parent_done(child, parent, result, size, cache)
    local note = nil
    if parent.state ~= 'completed' then
        note = 'released although ' .. parent_ended(parent)
    end
    local left = (child.waiting_on or 1) - 1
    if left < 0 then
        left = 0
    end
    child.waiting_on = left
    local done = id_list(child.parents_done)
    done[#done + 1] = parent.id
    child.parents_done = json_id_list(done)
    if child.with_results == 1 then
        -- A result that does not fit as stored is not read at all; one that does fits once
        -- written as ASCII JSON too, or is not copied either.
        local value
        if result_fits(child.parents, size) then
            if cache.json == nil then
                if type(result) == 'function' then
                    result = result()
                end
                cache.json = result_json(result, parent.checked)
            end
            if result_fits(child.parents, #cache.json) then
                value = cache.json
            end
        end
        if value == nil then
            value = 'null'
            note = 'result of parent ' .. parent.id .. " not copied: the parents' results would pass "
                .. itoa(CONFIG.parents_max_bytes) .. ' bytes (zrq.parents-max-bytes)'
        end
        child.parents = with_result(child.parents, parent.id, value)
    end
    if note ~= nil then
        child.error = note
    end
end

-- Writes a waiting `child` after parent_done counted its parents: released to its stream when it
-- waits for none any more, else its record as it now is. (flow.rs write_waiting)
local function write_waiting(k, child)
    if child.waiting_on == 0 then
        call('ZREM', k.waiting, child.id)
        make_pending(k, child)
    else
        packed.save(k, child)
    end
end

-- Loads batch `id`, or nil if there is none; WRONGTYPE, or CORRUPT for a record zrq did not
-- write: its `queue` must be the queue it is stored in, its counts integers, its callback a valid
-- task and JSON payload. (flow.rs load_batch)
local function load_batch(k, id)
    local key = k.batch(id)
    check_types({ { key, 'hash' } })
    local flat = call('HGETALL', key)
    if #flat == 0 then
        return nil
    end
    local record = utf8_hash(flat)
    local function corrupt(detail)
        fail('CORRUPT', "'" .. key .. "' is not a zrq record: " .. detail)
    end
    if record.queue ~= k.queue then
        corrupt("field 'queue' does not name its queue")
    end
    if record.callback_task ~= nil and not is_name('callback_task', record.callback_task) then
        corrupt("field 'callback_task' is not a valid name")
    end
    if record.callback_payload ~= nil and json_detail(record.callback_payload) ~= nil then
        corrupt("field 'callback_payload' is not JSON")
    end
    local batch = { callback_id = record.callback_id }
    for _, field in ipairs({ 'total', 'done', 'succeeded', 'failed' }) do
        local value = 0
        if record[field] ~= nil then
            value = parse_i64(record[field])
            if value == nil then
                corrupt("field '" .. field .. "' is not an integer")
            end
        end
        batch[field] = value
    end
    if record.callback_task ~= nil and record.callback_payload ~= nil then
        batch.callback = { task = record.callback_task, payload = record.callback_payload }
    end
    return batch
end

-- Like load_job, for a command that may finish the job (ACK, FAIL, CANCEL, DELETE): its batch
-- record is checked too, so a corrupt batch is refused before the first write.
-- (mod.rs load_job_to_finish)
local function load_job_to_finish(k, id)
    local job = load_job(k, id)
    if job and job.batch ~= nil then
        load_batch(k, job.batch)
    end
    return job
end

-- Counts a finished member of `batch`; the last one enqueues the batch's callback, once, into the
-- command's queue. A batch record that cannot be read is left alone. (flow.rs count_in_batch)
local function count_in_batch(k, batch, succeeded, now)
    local ok, record = pcall(load_batch, k, batch)
    if not ok then
        if type(record) == 'table' and record.zrq_error then
            return
        end
        error(record, 0)
    end
    if record == nil then
        return
    end
    local key = k.batch(batch)
    local done = record.done + 1
    local succeeded_count, failed = record.succeeded, record.failed
    if succeeded then
        succeeded_count = succeeded_count + 1
    else
        failed = failed + 1
    end
    call('HSET', key, 'done', itoa(done), 'succeeded', itoa(succeeded_count), 'failed', itoa(failed))
    if done < record.total or record.callback_id ~= nil then
        return
    end
    if record.callback ~= nil then
        local body = format('{"batch":%s,"succeeded":%d,"failed":%d,"payload":%s}',
            json_string(batch), succeeded_count, failed, record.callback.payload)
        local id = enqueue_job(k, { task = record.callback.task, payload = body }, now)
        call('HSET', key, 'callback_id', id)
    end
    call('PEXPIRE', key, itoa(CONFIG.keep_ms))
end

-- Settles everything that depended on `job`, which has just finished with `result`: waiting
-- children (released, or cancelled in cascade) and its batch. (flow.rs settle)
local function settle(k, job, result, now)
    local work = { { id = job.id, state = job.state, result = result or job.result,
        checked = result ~= nil, children = id_list(job.children), batch = job.batch } }
    while #work > 0 do
        local done = table.remove(work)
        if done.batch ~= nil then
            count_in_batch(k, done.batch, done.state == 'completed', now)
        end
        -- The result is read once, not once per child: a parent may have children-max of them.
        local cache = {}
        for _, child_id in ipairs(done.children) do
            -- Read for its links (a parent has at most children-max children, each at most a
            -- payload-max record with its links): a long payload, result or error is left in the
            -- record, and a child that is counted is written by patching what follows its
            -- payload (load_job's `linked`, packed.save).
            local child = try_load_job(k, child_id, true)
            if child and child.state == 'waiting' and awaits(child, done.id) then
                local failed = done.state ~= 'completed'
                if failed and child.on_parent_fail ~= 'run' then
                    finish_one(k, child, 'cancelled', { 'error', parent_ended(done) }, now)
                    work[#work + 1] = { id = child.id, state = child.state, children = id_list(child.children),
                        batch = child.batch }
                else
                    parent_done(child, done, done.result, done.result and #done.result or 0, cache)
                    write_waiting(k, child)
                end
            end
        end
    end
end
