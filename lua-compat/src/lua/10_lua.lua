--------------------------------------------------------------------------------------------------
-- Shared helpers, files 10_ to 29_: each mirrors one file of zrq-core (or of the module), named
-- in its header; keep them in step. Their constants are generated from zrq-core (above this
-- file in the library text; lua-compat/src/generate.rs), never copied by hand.
-- Commands follow, one file each (30_ to 59_), as core/src/commands/<command>.rs.
--
-- This file: the standard library as top-level code may use it.
--------------------------------------------------------------------------------------------------

-- While a library loads, Redis 7.0 gives it no globals but `redis`: the standard library is
-- reached at call time through these wrappers, and top-level code only defines locals.
local function byte(...) return string.byte(...) end
local function sub(...) return string.sub(...) end
local function find(...) return string.find(...) end
local function format(...) return string.format(...) end
local function floor(x) return math.floor(x) end

-- Byte order, as Rust compares strings (Lua's `<` follows the server's collation locale).
local function byte_less(a, b)
    local n = math.min(#a, #b)
    for i = 1, n do
        local x, y = string.byte(a, i), string.byte(b, i)
        if x ~= y then
            return x < y
        end
    end
    return #a < #b
end
