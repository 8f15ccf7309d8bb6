--------------------------------------------------------------------------------------------------
-- Key schema (core/src/keys.rs).
--------------------------------------------------------------------------------------------------

-- GROUP, ENTRY_FIELD, MAX_PRIORITY, KEY_KINDS, LUA_ONLY_KEY_KINDS (the wake-up list), EVENTS
-- (the channel), KEY_TYPE (each kind's Redis type) and WAKE_CAP (the wake-up list's length) are
-- generated from core/src/keys.rs.

-- The module's configs cannot be read from a script: the library uses their defaults (CONFIG,
-- generated from core/src/config.rs), read as CONFIG.<name> where used (no aliases: the main
-- chunk's locals are few).

-- The keys of `queue`: k.<kind> for every fixed key kind (KEY_KINDS without the `job:`-like
-- prefixes), k.events (the Pub/Sub channel) and k.wake; k.job(id), k.batch(id), k.stream_at(p),
-- k.index_of(state), k.records(state), k.log(state). Every command builds one (several, through
-- check_acl): the names are made on first use (a metatable's __index), not all of them up front,
-- each then kept in `k`.
local queue_keys
do
    -- The fixed kinds (KEY_KINDS but the prefixes, then LUA_ONLY_KEY_KINDS): kind -> true; and
    -- the metatable of every queue's keys. Made on first use (top-level code has no `string`).
    local fixed, keys_of

    -- The functions of k, each made for k's prefix when first asked for.
    local make = {
        job = function(prefix) return function(id) return prefix .. 'job:' .. id end end,
        batch = function(prefix) return function(id) return prefix .. 'batch:' .. id end end,
    }
    function make.stream_at(prefix, k)
        local streams = {}
        return function(priority)
            if priority == 0 then
                return k.stream
            end
            local stream = streams[priority]
            if stream == nil then
                stream = prefix .. 'stream:' .. priority
                streams[priority] = stream
            end
            return stream
        end
    end
    -- The index holding the unfinished jobs of `state` (keys.rs index_of); nil for pending jobs
    -- (in their stream) and finished ones. Each of these kinds is named after its state.
    function make.index_of(_, k)
        return function(state)
            if state == 'active' or state == 'waiting' or state == 'scheduled' or state == 'retrying' then
                return k[state]
            end
        end
    end

    -- The records hash and the log of the jobs kept for the queue's retention in final `state`
    -- (keys.rs records, log): `completed:records` / `completed:log` and the cancelled ones; nil
    -- for any other state.
    local function kept_key(k, suffix)
        return function(state)
            if state == 'completed' or state == 'cancelled' then
                return k[state .. suffix]
            end
        end
    end
    function make.records(_, k)
        return kept_key(k, ':records')
    end
    function make.log(_, k)
        return kept_key(k, ':log')
    end

    queue_keys = function(queue)
        if fixed == nil then
            fixed = {}
            for _, name in ipairs(KEY_KINDS) do
                if sub(name, -1) ~= ':' then
                    fixed[name] = true
                end
            end
            for _, name in ipairs(LUA_ONLY_KEY_KINDS) do
                fixed[name] = true
            end
            keys_of = {
                __index = function(k, name)
                    local value
                    if fixed[name] then
                        value = k.prefix .. name
                    elseif make[name] then
                        value = make[name](k.prefix, k)
                    else
                        return nil
                    end
                    k[name] = value
                    return value
                end,
            }
        end
        local prefix = 'zrq:{' .. queue .. '}:'
        return setmetatable({ queue = queue, prefix = prefix, events = prefix .. EVENTS }, keys_of)
    end
end
