--------------------------------------------------------------------------------------------------
-- zrq_version                                           (no-writes)
--
-- KEYS     none (FCALL zrq_version 0)
-- ARGV     none
-- Reply    the library version (bulk string), zrq_lua::VERSION. A client compares it with the
--          library it embeds and runs FUNCTION LOAD REPLACE when they differ.
--------------------------------------------------------------------------------------------------

redis.register_function({
    function_name = 'zrq_version',
    callback = function()
        return VERSION
    end,
    flags = { 'no-writes' },
})
