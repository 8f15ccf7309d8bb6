--------------------------------------------------------------------------------------------------
-- Job options (core/src/commands/enqueue.rs): their defaults and how each is read, shared by
-- ENQUEUE, BATCH and SCHEDULE.
--------------------------------------------------------------------------------------------------

-- Reads one job option into `spec` (enqueue.rs set_option, same checks in the same order).
local function set_enqueue_option(spec, option, value)
    local function conflicting(first, second)
        fail('ERR', 'options ' .. first .. ' and ' .. second .. ' cannot be combined')
    end
    local timed = spec.delay ~= nil or spec.at ~= nil
    if option == 'ID' then
        spec.id = name('ID', value)
        -- Generated ids name stream entries (17_job.lua inline.entry): a chosen one could take
        -- the id of a job to come. The id is quoted whole (error.rs reserved_id): it is of digits,
        -- `p`, `:` and `-` only.
        if inline.has_form(spec.id) then
            fail('ERR', "ID must not have the form of a generated job id, got '" .. spec.id .. "'")
        end
    elseif option == 'RETRIES' then
        spec.retries = integer('RETRIES', value, 0, MAX_RETRIES)
    elseif option == 'TIMEOUT' then
        spec.timeout = integer('TIMEOUT', value, 1, MAX_DURATION_MS)
    elseif (option == 'DELAY' or option == 'AT') and timed then
        conflicting('DELAY', 'AT')
    elseif (option == 'DELAY' or option == 'AT') and #spec.after > 0 then
        conflicting(option, 'AFTER')
    elseif option == 'AFTER' and timed then
        conflicting(spec.delay ~= nil and 'DELAY' or 'AT', 'AFTER')
    elseif option == 'AFTER' then
        local parent = name('AFTER', value)
        spec.after_given = (spec.after_given or 0) + 1
        if spec.after_given > CONFIG.after_max then
            limit('more than ' .. itoa(CONFIG.after_max) .. ' AFTER options', 'after-max', CONFIG.after_max)
        end
        -- Each parent once, in the order first given; a set finds repeats in constant time.
        spec.after_seen = spec.after_seen or {}
        if not spec.after_seen[parent] then
            spec.after_seen[parent] = true
            spec.after[#spec.after + 1] = parent
        end
    elseif option == 'WITHRESULTS' then
        spec.with_results = true
    elseif option == 'ONPARENTFAIL' then
        spec.on_parent_fail = one_of('ONPARENTFAIL', value, CORE.enqueue.PARENT_FAIL_POLICIES)
    elseif option == 'DELAY' then
        spec.delay = integer('DELAY', value, 0, MAX_DURATION_MS)
    elseif option == 'AT' then
        spec.at = integer('AT', value, 0, CORE.enqueue.MAX_AT_MS)
    elseif option == 'BACKOFF' then
        spec.backoff = integer('BACKOFF', value, 0, MAX_DURATION_MS)
    elseif option == 'PRIORITY' then
        spec.priority = integer('PRIORITY', value, 0, MAX_PRIORITY)
    elseif option == 'UNIQUE' then
        spec.unique = name('UNIQUE', value)
    elseif option == 'KEEP' then
        spec.keep = integer('KEEP', value, 1, MAX_DURATION_MS)
    else
        fail('ERR', "unknown option '" .. show_arg(option) .. "'")
    end
end
