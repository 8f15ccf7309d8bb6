--------------------------------------------------------------------------------------------------
-- zrq_batchinfo: ZRQ.BATCHINFO <queue> <batch>                  (no-writes; commands/batchinfo.rs)
-- KEYS[1] the queue; ARGV batch id.
-- Reply   a map: id, total, done, succeeded, failed, callback_id (once enqueued); nil if unknown.
-- Errors  ERR, WRONGTYPE, CORRUPT (a record zrq did not write), INTERNAL.
--------------------------------------------------------------------------------------------------

local function batchinfo(keys, argv)
    local queue, id = queue_and_name(keys, argv, 'zrq.batchinfo', 'batch')
    local batch = load_batch(queue_keys(queue), id)
    if batch == nil then
        return nil
    end
    return { map = { id = id, total = batch.total, done = batch.done, succeeded = batch.succeeded,
        failed = batch.failed, callback_id = batch.callback_id } }
end

register('zrq_batchinfo', batchinfo)
