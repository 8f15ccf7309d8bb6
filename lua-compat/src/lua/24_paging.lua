--------------------------------------------------------------------------------------------------
-- Paged reads (core/src/commands/mod.rs paging, core/src/store.rs): cursors, sorted set
-- ranges, undelivered stream entries.
--------------------------------------------------------------------------------------------------

-- Up to `count` members of a sorted set from rank `start` (store.rs zrange).
local function zrange(key, start, count)
    if count <= 0 then
        return {}
    end
    local out = {}
    for _, member in ipairs(call('ZRANGE', key, itoa(start), itoa(start + count - 1))) do
        if is_utf8(member) then
            out[#out + 1] = member
        end
    end
    return out
end

-- A cursor that is a rank in a sorted set: an integer from 0 (mod.rs rank_cursor).
local function rank_cursor(raw)
    return integer('CURSOR', raw, 0, 9223372036854775807, '9223372036854775807')
end

-- A `pending` cursor: '0', or '<priority>:<ms>-<seq>' (at most 19 digits each) as a previous
-- page returned it; returns nil (start) or { priority, entry }. (list.rs pending_cursor)
local function pending_cursor(raw)
    if raw == '0' then
        return nil
    end
    local priority, ms, seq = raw:match('^(%d):(%d+)%-(%d+)$')
    if not priority or #ms > 19 or #seq > 19 or tonumber(priority) > MAX_PRIORITY then
        fail('ERR', "CURSOR must be 0 or <priority>:<entry-id> as returned by ZRQ.LIST pending, got '"
            .. show_arg(raw) .. "'")
    end
    return { tonumber(priority), ms .. '-' .. seq }
end

-- COUNT (1..1000, default 10) and CURSOR (read by `read_cursor`, `start` when not given) of
-- paged commands (mod.rs paging).
local function paging(args, first, start, read_cursor)
    local count, cursor = CORE.paging.DEFAULT_COUNT, start
    for option, value in options(args, first, CORE.paging.OPTIONS) do
        if option == 'COUNT' then
            count = integer('COUNT', value, 1, MAX_COUNT)
        else
            cursor = read_cursor(value)
        end
    end
    return count, cursor
end

-- The next cursor of a page of a sorted set listed by rank: '0' at the end (mod.rs next_rank).
local function next_rank(cursor, count, total)
    local next_cursor = cursor + count
    if next_cursor >= total then
        next_cursor = 0
    end
    return itoa(next_cursor)
end

-- The jobs behind `ids` as replies, in order, skipping ids whose record is gone, until the
-- budget ends the page; and how many ids the page covered (mod.rs load_jobs). With `load`, the
-- n-th job is load(n) instead of load_job(k, ids[n]).
local function load_jobs(k, ids, load)
    local out, budget = {}, new_budget()
    for n, id in ipairs(ids) do
        local job
        if load then
            job = load(n)
        else
            job = load_job(k, id)
        end
        if job then
            if not budget.admit(text_bytes(job)) then
                return out, n - 1
            end
            out[#out + 1] = job_reply(job)
        end
    end
    return out, #ids
end

-- Whether stream entry id `a` comes before `b` (`<ms>-<seq>`, compared as numbers of any size).
local function entry_before(a, b)
    local function number_less(x, y)
        x, y = x:gsub('^0+', ''), y:gsub('^0+', '')
        if #x ~= #y then
            return #x < #y
        end
        return byte_less(x, y)
    end
    local a_ms, a_seq = a:match('^(%d+)%-(%d+)$')
    local b_ms, b_seq = b:match('^(%d+)%-(%d+)$')
    if a_ms ~= b_ms and (number_less(a_ms, b_ms) or number_less(b_ms, a_ms)) then
        return number_less(a_ms, b_ms)
    end
    return number_less(a_seq, b_seq)
end

-- Entries of a stream not yet delivered to the group (store.rs undelivered_len): its length,
-- less the entries of jobs an older zrq delivered (in the group's pending list, which FETCH
-- no longer fills) while the stream still holds them. The first FETCH that delivers trims them
-- all (they precede what it delivers), so the stream's first entry tells which.
local function undelivered_len(stream)
    local length = call('XLEN', stream)
    local summary = call('XPENDING', stream, GROUP)
    local pending, newest = summary[1], summary[3]
    if pending == 0 or type(newest) ~= 'string' then
        return length
    end
    local first = call('XRANGE', stream, '-', '+', 'COUNT', '1')[1]
    if first and not entry_before(newest, first[1]) then
        return length - pending
    end
    return length
end

-- The stream entry id just before `id` (`<ms>-<seq>`, numbers of any size): what a group's
-- last-delivered id is set to so that `id` is delivered next (store.rs entry_before).
local function entry_before_id(id)
    local ms, seq = id:match('^(%d+)%-(%d+)$')
    local function minus_one(digits)
        local i = #digits
        while sub(digits, i, i) == '0' do
            i = i - 1
        end
        local out = sub(digits, 1, i - 1) .. string.char(byte(digits, i) - 1) .. string.rep('9', #digits - i)
        out = out:gsub('^0+', '')
        return out == '' and '0' or out
    end
    if find(seq, '[1-9]') then
        return ms:gsub('^0+(%d)', '%1') .. '-' .. minus_one(seq)
    elseif find(ms, '[1-9]') then
        return minus_one(ms) .. '-18446744073709551615'
    end
    return '0-0'
end

-- Up to `count` entries not delivered to the group of the stream of `priority`, after entry
-- `after` if given: a list of { entry id, job id, the entry's fields }, the job id being the one a
-- reference entry names (one that is not UTF-8 is left out) or an inline entry's generated id.
-- (store.rs undelivered)
local function undelivered_entries(k, priority, after, count)
    local stream = k.stream_at(priority)
    local start = call('XPENDING', stream, GROUP)[3]
    if type(start) ~= 'string' or (after and entry_before(start, after)) then
        start = after
    end
    local out = {}
    local entries = call('XRANGE', stream, start and ('(' .. start) or '-', '+', 'COUNT', itoa(count))
    for _, entry in ipairs(entries) do
        local fields = entry[2] or {}
        local reference = inline.reference(fields)
        if reference == false then
            out[#out + 1] = { entry[1], inline.id(priority, entry[1]), fields }
        elseif reference then
            out[#out + 1] = { entry[1], reference, fields }
        end
    end
    return out
end
