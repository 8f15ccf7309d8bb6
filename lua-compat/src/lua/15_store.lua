--------------------------------------------------------------------------------------------------
-- Redis calls (module/src/store.rs). Reads and writes that fail unexpectedly become INTERNAL
-- errors with the module's text: "<COMMAND> failed: <redis error>".
--------------------------------------------------------------------------------------------------

local call
do
    -- redis.pcall and type, looked up once (at call time: not there at load time); every
    -- command makes several calls.
    local rpcall, type_of

    call = function(command, ...)
        if rpcall == nil then
            rpcall, type_of = redis.pcall, type
        end
        local reply = rpcall(command, ...)
        if type_of(reply) == 'table' and reply.err then
            -- A call the caller's ACL denies (writing functions check theirs up front, see
            -- check_acl; this is for the keyless zrq_queues) is NOPERM, not a zrq bug.
            if find(reply.err, "The user executing the script can't", 1, true) then
                fail('NOPERM', command .. ' failed: ' .. reply.err)
            end
            fail('INTERNAL', command .. ' failed: ' .. reply.err)
        end
        return reply
    end
end

-- Adds `by` (text) to counter `field` of the queue's stats (HINCRBY). A counter that holds no
-- integer (edited by hand; INFO reads it as 0), or would overflow, is set to `by` (HSET):
-- counting comes after a command's other writes, so it must not fail half-way through them.
-- (store.rs hincrby)
local function count_stat(k, field, by)
    local reply = redis.pcall('HINCRBY', k.stats, field, by)
    if type(reply) == 'table' and reply.err then
        call('HSET', k.stats, field, by)
    end
end

local KNOWN_TYPES = { string = true, list = true, hash = true, set = true, zset = true, stream = true, none = true }

-- The type of a key as TYPE prints it; a module type is 'module value' (store.rs KeyType).
local function key_type(key)
    local t = call('TYPE', key)
    t = type(t) == 'table' and t.ok or t
    if not KNOWN_TYPES[t] then
        return 'module value'
    end
    return t
end

-- Fails with WRONGTYPE unless each key is missing or of its type. (commands/mod.rs check_types)
-- `checks` = { {key, 'stream'}, ... }; each check gets the type found as its third element.
local function check_types(checks)
    for _, check in ipairs(checks) do
        local found = key_type(check[1])
        check[3] = found
        if found ~= 'none' and found ~= check[2] then
            fail('WRONGTYPE', "key '" .. check[1] .. "' holds a " .. found .. ', zrq expects a ' .. check[2])
        end
    end
end

-- The server clock once per command: unix ms, and the microseconds for ids.
local function clock()
    local t = redis.call('TIME')
    local sec, usec = tonumber(t[1]), tonumber(t[2])
    return sec * 1000 + floor(usec / 1000), sec, usec
end

local function itoa(n)
    return format('%d', n)
end

-- The smallest entry id after `id` (`<ms>-<seq + 1>` in decimal text of any size; store.rs
-- entry_after): the MINID that trims an entry and everything before it.
local function entry_after(id)
    local function next_number(digits)
        local i = #digits
        while i > 0 and sub(digits, i, i) == '9' do
            i = i - 1
        end
        if i == 0 then
            return '1' .. string.rep('0', #digits)
        end
        return sub(digits, 1, i - 1) .. string.char(byte(digits, i) + 1) .. string.rep('0', #digits - i)
    end
    local ms, seq = id:match('^(%d+)%-(%d+)$')
    if seq == '18446744073709551615' then
        return next_number(ms) .. '-0'
    end
    return ms .. '-' .. next_number(seq)
end
