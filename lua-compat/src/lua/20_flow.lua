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

-- Whether the waiting `child` still waits for `parent_id`: one of its parents (a `children` entry
-- can outlive its child, whose id may be taken again by a job with other parents), not counted
-- yet (a parent requeued after it died or was cancelled finishes a second time). (flow.rs awaits)
local function awaits(child, parent_id)
    local entries = object_entries(child.parents)
    if entries ~= nil then
        local listed = false
        for _, entry in ipairs(entries) do
            if entry[1] == parent_id then
                listed = true
                break
            end
        end
        if not listed then
            return false
        end
    end
    return not contains(id_list(child.parents_done), parent_id)
end

-- Records that `parent` (id, state, result) of the waiting `child` is done, with its result and,
-- unless it completed, a note on the child; releases the child when it was the last. The caller
-- checked that the child awaits this parent. (flow.rs parent_done)
local function parent_done(k, child, parent)
    local result, note = parent.result, nil
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
    local fields = { 'waiting_on', itoa(left), 'parents_done', child.parents_done }
    if child.with_results == 1 then
        local entries = object_entries(child.parents) or {}
        local value = 'null'
        if result ~= nil and json_detail(result) == nil and is_utf8(result) then
            value = compact_json(result)
        end
        entries[#entries + 1] = { parent.id, value }
        child.parents = json_object(entries)
        fields[#fields + 1] = 'parents'
        fields[#fields + 1] = child.parents
    end
    if note ~= nil then
        fields[#fields + 1] = 'error'
        fields[#fields + 1] = note
    end
    call('HSET', k.job(child.id), unpack(fields))
    if left == 0 then
        call('ZREM', k.waiting, child.id)
        make_pending(k, child)
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
    call('PEXPIRE', key, itoa(KEEP_MS))
end

-- Settles everything that depended on `job`, which has just finished with `result`: waiting
-- children (released, or cancelled in cascade) and its batch. (flow.rs settle)
local function settle(k, job, result, now)
    local work = { { id = job.id, state = job.state, result = result or job.result,
        children = id_list(job.children), batch = job.batch } }
    while #work > 0 do
        local done = table.remove(work)
        if done.batch ~= nil then
            count_in_batch(k, done.batch, done.state == 'completed', now)
        end
        for _, child_id in ipairs(done.children) do
            local child = try_load_job(k, child_id)
            if child and child.state == 'waiting' and awaits(child, done.id) then
                local failed = done.state ~= 'completed'
                if failed and child.on_parent_fail ~= 'run' then
                    finish_one(k, child, 'cancelled', { 'error', parent_ended(done) }, now)
                    work[#work + 1] = { id = child.id, state = child.state, children = id_list(child.children),
                        batch = child.batch }
                else
                    parent_done(k, child, done)
                end
            end
        end
    end
end
