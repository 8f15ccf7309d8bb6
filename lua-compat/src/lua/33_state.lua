--------------------------------------------------------------------------------------------------
-- zrq_state: ZRQ.STATE <queue> <id>                     (no-writes)
--   (core/src/commands/state.rs)
--
-- KEYS[1]  the queue
-- ARGV     job id
-- Reply    the job's state (waiting, scheduled, pending, active, retrying, completed, dead,
--          cancelled), or nil if unknown: from the job's record, else (a generated id without a
--          record) `pending` if its inline entry is in its stream, else `completed` or
--          `cancelled` if it is kept in that state's records hash.
-- Errors   ERR (arity, names), WRONGTYPE (job record key, the stream of a generated id, a records
--          hash), CORRUPT (no readable state; a records hash's field as JOB reads it), INTERNAL.
--------------------------------------------------------------------------------------------------

local function state(keys, argv)
    local queue, id = queue_and_name(keys, argv, 'zrq.state', 'id')
    local k = queue_keys(queue)
    local key = k.job(id)
    -- The record's state field (one lookup of its key; the other fields are not checked).
    local fields = packed.read(key)
    if fields == nil then
        -- No record at its key: a generated id may name a pending job's inline entry, or a
        -- finished job may be kept in its state's records hash (state.rs).
        local job = load_unrecorded(k, id)
        return job and job.state or nil
    end
    local value = fields.state
    if value ~= nil then
        if not IS_STATE[value] then
            fail('CORRUPT', "'" .. key .. "' is not a zrq record: unknown state '" .. value .. "'")
        end
        return value
    end
    fail('CORRUPT', "'" .. key .. "' is not a zrq record: field 'state' is missing")
end

register('zrq_state', state)
