--------------------------------------------------------------------------------------------------
-- Cron expressions (core/src/cron.rs), for recurring schedules (27_definition.lua).
--------------------------------------------------------------------------------------------------

-- What the other files use: bad_cron(detail) raises the CRON error, cron_parse(text) reads an
-- expression, cron_next_after(cron, after) finds its next minute; the rest is private.
local bad_cron, cron_parse, cron_next_after
do
    local MINUTE_MS = 60000
    local DAY_MS = 86400000

    bad_cron = function(detail)
        fail('ERR', 'CRON expression is invalid: ' .. detail)
    end

    -- Rust's u32 parse: optional '+' (no '-'), digits, at most 4294967295. Returns the number or nil.
    local function parse_u32(text)
        local value = sub(text, 1, 1) ~= '-' and parse_i64(text)
        if not value or value > 4294967295 then
            return nil
        end
        return value
    end

    -- One cron field: a set of allowed values, and whether it is restricted (not '*').
    local function cron_field(text, field_name, min, max)
        local set = {}
        for part in (text .. ','):gmatch('([^,]*),') do
            local function bad()
                bad_cron(field_name .. " field '" .. show_arg(part) .. "' must be within " .. min .. '-' .. max)
            end
            local range, step = part, 1
            local slash = find(part, '/', 1, true)
            if slash then
                range = sub(part, 1, slash - 1)
                step = parse_u32(sub(part, slash + 1))
                if not step or step == 0 then
                    bad()
                end
            end
            local low, high
            if range == '*' then
                low, high = min, max
            else
                local dash = find(range, '-', 1, true)
                if dash then
                    low, high = parse_u32(sub(range, 1, dash - 1)), parse_u32(sub(range, dash + 1))
                    if not low or not high then
                        bad()
                    end
                else
                    low = parse_u32(range)
                    if not low then
                        bad()
                    end
                    high = slash and max or low
                end
            end
            if low < min or high > max or low > high then
                bad()
            end
            local value = low
            while value <= high do
                set[value] = true
                value = value + step
            end
        end
        return set, text ~= '*'
    end

    cron_parse = function(text)
        local fields = {}
        for word in text:gmatch('[^ \t\n\f\r]+') do
            fields[#fields + 1] = word
        end
        if #fields ~= 5 then
            bad_cron('expected 5 fields (minute hour day-of-month month day-of-week), got ' .. #fields)
        end
        local cron = {}
        cron.minutes = cron_field(fields[1], 'minute', 0, 59)
        cron.hours = cron_field(fields[2], 'hour', 0, 23)
        cron.days, cron.days_restricted = cron_field(fields[3], 'day-of-month', 1, 31)
        cron.months = cron_field(fields[4], 'month', 1, 12)
        cron.weekdays, cron.weekdays_restricted = cron_field(fields[5], 'day-of-week', 0, 7)
        if cron.weekdays[7] then
            cron.weekdays[0] = true
        end
        return cron
    end

    -- Days since 1970-01-01 <-> civil dates (Howard Hinnant's algorithms, as cron.rs).
    local function civil_from_days(days)
        local z = days + 719468
        local era = floor(z / 146097)
        local doe = z - era * 146097
        local yoe = floor((doe - floor(doe / 1460) + floor(doe / 36524) - floor(doe / 146096)) / 365)
        local doy = doe - (365 * yoe + floor(yoe / 4) - floor(yoe / 100))
        local mp = floor((5 * doy + 2) / 153)
        local day = doy - floor((153 * mp + 2) / 5) + 1
        local month = mp < 10 and mp + 3 or mp - 9
        local year = yoe + era * 400 + (month <= 2 and 1 or 0)
        return year, month, day
    end

    local function days_from_civil(year, month, day)
        if month <= 2 then
            year = year - 1
        end
        local era = floor(year / 400)
        local yoe = year - era * 400
        local doy = floor((153 * (month > 2 and month - 3 or month + 9) + 2) / 5) + day - 1
        local doe = yoe * 365 + floor(yoe / 4) - floor(yoe / 100) + doy
        return era * 146097 + doe - 719468
    end

    -- The first matching minute strictly after `after` (unix ms), or nil within ten years.
    cron_next_after = function(cron, after)
        local t = floor(after / MINUTE_MS) * MINUTE_MS + MINUTE_MS
        local limit = after + 10 * 366 * DAY_MS
        while t <= limit do
            local days = floor(t / DAY_MS)
            local year, month, day = civil_from_days(days)
            local weekday = (days + 4) % 7
            local by_day, by_weekday = cron.days[day] == true, cron.weekdays[weekday] == true
            local day_ok
            if cron.days_restricted and cron.weekdays_restricted then
                day_ok = by_day or by_weekday
            elseif cron.days_restricted then
                day_ok = by_day
            elseif cron.weekdays_restricted then
                day_ok = by_weekday
            else
                day_ok = true
            end
            local minute_of_day = floor((t - days * DAY_MS) / MINUTE_MS)
            local hour, minute = floor(minute_of_day / 60), minute_of_day % 60
            if not cron.months[month] then
                if month == 12 then
                    t = days_from_civil(year + 1, 1, 1) * DAY_MS
                else
                    t = days_from_civil(year, month + 1, 1) * DAY_MS
                end
            elseif not day_ok then
                t = (days + 1) * DAY_MS
            elseif not cron.hours[hour] then
                t = days * DAY_MS + (hour + 1) * 60 * MINUTE_MS
            elseif not cron.minutes[minute] then
                t = t + MINUTE_MS
            else
                return t
            end
        end
        return nil
    end
end
