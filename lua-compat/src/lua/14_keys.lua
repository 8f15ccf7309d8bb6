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
-- k.index_of(state).
local function queue_keys(queue)
    local prefix = 'zrq:{' .. queue .. '}:'
    local k = { queue = queue, events = prefix .. EVENTS }
    for _, name in ipairs(KEY_KINDS) do
        if sub(name, -1) ~= ':' then
            k[name] = prefix .. name
        end
    end
    for _, name in ipairs(LUA_ONLY_KEY_KINDS) do
        k[name] = prefix .. name
    end
    k.job = function(id) return prefix .. 'job:' .. id end
    k.batch = function(id) return prefix .. 'batch:' .. id end
    k.stream_at = function(priority)
        if priority == 0 then
            return k.stream
        end
        return prefix .. 'stream:' .. priority
    end
    -- The index holding the unfinished jobs of `state` (keys.rs index_of); nil for pending jobs
    -- (in their stream) and finished ones. Each of these kinds is named after its state.
    k.index_of = function(state)
        if state == 'active' or state == 'waiting' or state == 'scheduled' or state == 'retrying' then
            return k[state]
        end
    end
    return k
end
