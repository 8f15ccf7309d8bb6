--------------------------------------------------------------------------------------------------
-- Key schema (core/src/keys.rs).
--------------------------------------------------------------------------------------------------

local GROUP = 'zrq'
local ENTRY_FIELD = 'job'
local MAX_PRIORITY = 9

-- checked: zrq_core::keys::KEYS (suffixes, in order)
local KEY_KINDS = { 'stream', 'stream:', 'job:', 'active', 'waiting', 'batch:', 'scheduled', 'retrying',
    'completed', 'cancelled', 'dead', 'unique', 'paused', 'schedules', 'ticks', 'stats' }
-- Keys only the Lua library writes (the module blocks clients natively instead).
local LUA_ONLY_KEY_KINDS = { 'wake' }

-- How many wake-up tokens a queue keeps at most (see docs/LUA.md, "Blocking FETCH").
local WAKE_CAP = 128

-- The module's configs cannot be read from a script: the library uses their defaults (CONFIG,
-- generated from core/src/config.rs).
local KEEP_MS = CONFIG.keep_ms
local DEAD_MAX = CONFIG.dead_max

local function queue_keys(queue)
    local prefix = 'zrq:{' .. queue .. '}:'
    local k = { queue = queue }
    for _, name in ipairs({ 'stream', 'active', 'waiting', 'scheduled', 'retrying', 'completed', 'cancelled',
        'dead', 'unique', 'paused', 'schedules', 'ticks', 'stats', 'events', 'wake' }) do
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
    return k
end
