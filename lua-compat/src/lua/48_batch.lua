--------------------------------------------------------------------------------------------------
-- zrq_batch: ZRQ.BATCH <queue> <batch> [ON-COMPLETE <task> <payload>] [RETRIES|TIMEOUT|BACKOFF|
--            PRIORITY|KEEP <n>] JOB <task> <payload> [JOB <task> <payload> ...]  (commands/batch.rs)
-- KEYS[1] the queue; ARGV batch id, options (job options apply to every member), JOB … (repeat).
-- Reply   the members' ids, in order. When the last member finishes, the ON-COMPLETE job is
--         enqueued once with payload {"batch","succeeded","failed","payload"}.
-- Writes  HSET zrq:{q}:batch:<id> (queue, total, done, succeeded, failed, created_at, callback),
--         then every member as ENQUEUE writes it (with `batch`).
-- Errors  ERR (arity, no JOB, batch exists, options), BADJSON, WRONGTYPE, INTERNAL.
--------------------------------------------------------------------------------------------------


local function batch(keys, argv)
    local queue, id, args = queue_and_name(keys, argv, 'zrq.batch', 'batch', 2)
    local template = { after = {} }
    local members, on_complete = {}, nil
    -- JOB and ON-COMPLETE take two values: the iterator hands over the first, `extra` the second.
    local at = 3
    local payload_bytes = 0
    while args[at] ~= nil do
        local word = args[at]
        local option
        for _, known in ipairs(CORE.batch.OPTIONS) do
            if known == word:upper() then
                option = known
            end
        end
        if not option then
            fail('ERR', "unknown option '" .. show_arg(word) .. "'")
        end
        if template['seen_' .. option] and not REPEATABLE[option] then
            fail('ERR', 'option ' .. option .. ' given more than once')
        end
        template['seen_' .. option] = true
        local value = args[at + 1]
        if value == nil then
            fail('ERR', 'option ' .. option .. ' needs a value')
        end
        at = at + 2
        if option == 'ON-COMPLETE' or option == 'JOB' then
            if option == 'JOB' and #members >= CONFIG.batch_max then
                limit('more than ' .. itoa(CONFIG.batch_max) .. ' JOB members', 'batch-max', CONFIG.batch_max)
            end
            local task = name('task', value)
            local payload = args[at]
            if payload == nil then
                fail('ERR', 'option ' .. option .. ' needs a value')
            end
            at = at + 1
            payload_bytes = payload_bytes + #payload
            within("the batch's payloads together", payload_bytes, 'payload-max-bytes', CONFIG.payload_max_bytes)
            payload = json('payload', payload)
            if option == 'JOB' then
                members[#members + 1] = { task, payload }
            else
                on_complete = { task, payload }
            end
        else
            set_enqueue_option(template, option, value)
        end
    end
    if #members == 0 then
        arity_error('zrq.batch')
    end
    local k = checked_queue_keys(queue)
    local key = k.batch(id)
    check_types({ { key, 'hash' } })
    if key_type(key) ~= 'none' then
        fail('ERR', "batch '" .. id .. "' already exists in queue '" .. queue .. "'")
    end
    local now, sec, usec = clock()
    local record = { 'queue', queue, 'total', itoa(#members), 'done', '0', 'succeeded', '0', 'failed', '0',
        'created_at', itoa(now) }
    if on_complete then
        record[#record + 1] = 'callback_task'
        record[#record + 1] = on_complete[1]
        record[#record + 1] = 'callback_payload'
        record[#record + 1] = on_complete[2]
    end
    call('HSET', key, unpack(record))
    local ids = {}
    for n, member in ipairs(members) do
        local spec = { task = member[1], payload = member[2], batch = id, after = {}, queue_checked = true,
            retries = template.retries, timeout = template.timeout, backoff = template.backoff,
            priority = template.priority, keep = template.keep }
        ids[n] = enqueue_job(k, spec, now, sec, usec)
    end
    return ids
end

register('zrq_batch', batch)
