--------------------------------------------------------------------------------------------------
-- Registration. `run` turns a raised zrq error into its reply, and any other Lua error into the
-- module's INTERNAL text, so a bug never leaves a half-written reply.
--------------------------------------------------------------------------------------------------

local function run(handler, keys, argv)
    local ok, result = pcall(handler, keys, argv)
    if ok then
        return result
    end
    if type(result) == 'table' and result.zrq_error then
        return redis.error_reply(result.zrq_error)
    end
    local message = type(result) == 'table' and (result.err or 'unknown error') or tostring(result)
    message = message:gsub('[\r\n]', ' ')
    return redis.error_reply('INTERNAL zrq bug, command aborted: ' .. message)
end

-- Registers `handler` as FCALL function `function_name`, flagged as the command table says
-- (COMMANDS, generated from core/src/spec.rs): read-only commands are `no-writes`; write commands
-- that the module does not flag `deny-oom` are `allow-oom`, as in the module. A function missing
-- from the table fails the library's load (indexing nil).
local function register(function_name, handler)
    local command = COMMANDS[function_name]
    local flags = {}
    if command.readonly then
        flags = { 'no-writes' }
    elseif not command.deny_oom then
        flags = { 'allow-oom' }
    end
    local checked = function(keys, argv)
        if #keys == 1 then
            check_acl(function_name, keys[1], command.readonly)
        end
        return handler(keys, argv)
    end
    redis.register_function({
        function_name = function_name,
        callback = function(keys, argv)
            return run(checked, keys, argv)
        end,
        flags = flags,
    })
end
