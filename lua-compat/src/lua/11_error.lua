--------------------------------------------------------------------------------------------------
-- Errors (core/src/error.rs). Every error reply starts with one of these codes.
-- A command raises `fail(code, message)`; `run` turns it into the error reply.
--------------------------------------------------------------------------------------------------

-- Raises the error reply `<code> <message>`; caught by `run`.
local function fail(code, message)
    if not KNOWN_CODE[code] then
        message = 'zrq bug, command aborted: unknown error code ' .. tostring(code)
        code = 'INTERNAL'
    end
    error({ zrq_error = code .. ' ' .. message }, 0)
end

-- A user-supplied argument inside an error message: printable ASCII as is (but ' and \ escaped),
-- anything else as \xNN, at most 64 bytes then "...".  (error.rs `show_arg`)
local function show_arg(raw)
    local limit = 64
    local out = sub(raw, 1, limit):gsub('.', function(c)
        local b = byte(c)
        if b >= 0x20 and b <= 0x7e and b ~= 0x27 and b ~= 0x5c then
            return c
        end
        return format('\\x%02x', b)
    end)
    if #raw > limit then
        out = out .. '...'
    end
    return out
end

-- Something beyond a limit: `subject` says what and how much, then the config (its name after
-- `zrq.`) and its value. (error.rs `limit`)
local function limit(subject, setting, max)
    fail('LIMIT', subject .. ': zrq.' .. setting .. ' is ' .. format('%d', max))
end

-- Refuses a value of `bytes` bytes beyond `max` (config `setting`), before anything else about
-- the value is checked. (args.rs `within`)
local function within(subject, bytes, setting, max)
    if bytes > max then
        limit(subject .. ' is ' .. format('%d', bytes) .. ' bytes', setting, max)
    end
end

local function arity_error(command)
    fail('ERR', "wrong number of arguments for '" .. command .. "' command")
end
