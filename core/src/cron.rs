//! Five-field cron expressions (`minute hour day-of-month month day-of-week`, UTC), for recurring
//! schedules.
//!
//! Fields accept `*`, numbers, ranges `a-b`, steps `*/n` and `a-b/n`, and comma lists. Day of week
//! runs 0-7 with both 0 and 7 meaning Sunday. As in classic cron, when both day fields are
//! restricted a day matches if either does.

use crate::{Result, ZrqError};

const MINUTE_MS: i64 = 60_000;
const DAY_MS: i64 = 86_400_000;

/// A parsed cron expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    minutes: u64,
    hours: u64,
    days: u64,
    months: u64,
    weekdays: u64,
    days_restricted: bool,
    weekdays_restricted: bool,
}

fn field(text: &str, name: &str, min: u32, max: u32) -> Result<(u64, bool)> {
    let mut bits = 0_u64;
    let restricted = text != "*";
    for part in text.split(',') {
        let bad = || {
            let shown = crate::error::show_arg(part.as_bytes());
            ZrqError::bad_cron(&format!(
                "{name} field '{shown}' must be within {min}-{max}"
            ))
        };
        let (range, step) = match part.split_once('/') {
            Some((range, step)) => (
                range,
                step.parse::<u32>()
                    .ok()
                    .filter(|s| *s > 0)
                    .ok_or_else(bad)?,
            ),
            None => (part, 1),
        };
        let (low, high) = if range == "*" {
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?)
        } else {
            let value: u32 = range.parse().map_err(|_| bad())?;
            (value, if part.contains('/') { max } else { value })
        };
        if low < min || high > max || low > high {
            return Err(bad());
        }
        // Stepping past u32::MAX ends the field (a huge step means "only `low`"), never wraps.
        let mut value = Some(low);
        while let Some(v) = value.filter(|v| *v <= high) {
            bits |= 1 << v;
            value = v.checked_add(step);
        }
    }
    Ok((bits, restricted))
}

/// Days since 1970-01-01 → (year, month 1-12, day 1-31). (Howard Hinnant's civil_from_days.)
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let month = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// (year, month 1-12, day 1-31) → days since 1970-01-01.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year - era * 400;
    let month = i64::from(month);
    let doy = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

impl Cron {
    /// Parses an expression.
    pub fn parse(text: &str) -> Result<Cron> {
        let fields: Vec<&str> = text.split_ascii_whitespace().collect();
        let [minute, hour, day, month, weekday] = fields[..] else {
            return Err(ZrqError::bad_cron(&format!(
                "expected 5 fields (minute hour day-of-month month day-of-week), got {}",
                fields.len()
            )));
        };
        let (minutes, _) = field(minute, "minute", 0, 59)?;
        let (hours, _) = field(hour, "hour", 0, 23)?;
        let (days, days_restricted) = field(day, "day-of-month", 1, 31)?;
        let (months, _) = field(month, "month", 1, 12)?;
        let (mut weekdays, weekdays_restricted) = field(weekday, "day-of-week", 0, 7)?;
        if weekdays & (1 << 7) != 0 {
            weekdays |= 1;
        }
        Ok(Cron {
            minutes,
            hours,
            days,
            months,
            weekdays,
            days_restricted,
            weekdays_restricted,
        })
    }

    fn day_matches(&self, day: u32, weekday: u32) -> bool {
        let by_day = self.days & (1 << day) != 0;
        let by_weekday = self.weekdays & (1 << weekday) != 0;
        match (self.days_restricted, self.weekdays_restricted) {
            (true, true) => by_day || by_weekday,
            (true, false) => by_day,
            (false, true) => by_weekday,
            (false, false) => true,
        }
    }

    /// The first matching minute strictly after `after_ms` (unix ms), or `None` if the expression
    /// never matches within ten years (such as `0 0 30 2 *`).
    pub fn next_after(&self, after_ms: i64) -> Option<i64> {
        let mut t = after_ms.div_euclid(MINUTE_MS) * MINUTE_MS + MINUTE_MS;
        let limit = after_ms.saturating_add(10 * 366 * DAY_MS);
        while t <= limit {
            let days = t.div_euclid(DAY_MS);
            let (year, month, day) = civil_from_days(days);
            if self.months & (1 << month) == 0 {
                let (y, m) = if month == 12 {
                    (year + 1, 1)
                } else {
                    (year, month + 1)
                };
                t = days_from_civil(y, m, 1) * DAY_MS;
                continue;
            }
            let weekday = u32::try_from((days + 4).rem_euclid(7)).unwrap_or(0);
            if !self.day_matches(day, weekday) {
                t = (days + 1) * DAY_MS;
                continue;
            }
            let minute_of_day = (t - days * DAY_MS) / MINUTE_MS;
            let (hour, minute) = (minute_of_day / 60, minute_of_day % 60);
            if self.hours & (1 << hour) == 0 {
                t = days * DAY_MS + (hour + 1) * 60 * MINUTE_MS;
                continue;
            }
            if self.minutes & (1 << minute) == 0 {
                t += MINUTE_MS;
                continue;
            }
            return Some(t);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2026-11-22 19:52:30 UTC, a Sunday.
    const NOW: i64 = 1_795_377_150_000;

    fn at(y: i64, mo: u32, d: u32, h: i64, mi: i64) -> i64 {
        days_from_civil(y, mo, d) * DAY_MS + (h * 60 + mi) * MINUTE_MS
    }

    #[test]
    fn civil_round_trip() {
        for days in [-1000, 0, 59, 365, 10_957, 20_779, 100_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(at(2026, 11, 22, 19, 52), NOW - 30_000);
    }

    #[test]
    fn next_runs() {
        let cases = [
            ("* * * * *", at(2026, 11, 22, 19, 53)),
            ("*/15 * * * *", at(2026, 11, 22, 20, 0)),
            ("0 * * * *", at(2026, 11, 22, 20, 0)),
            ("30 2 * * *", at(2026, 11, 23, 2, 30)),
            ("0 9 * * 1-5", at(2026, 11, 23, 9, 0)),
            ("0 0 1 * *", at(2026, 12, 1, 0, 0)),
            ("0 0 1 1 *", at(2027, 1, 1, 0, 0)),
            ("0 12 * * 0", at(2026, 11, 29, 12, 0)),
            ("0 12 * * 7", at(2026, 11, 29, 12, 0)),
            ("0 0 29 2 *", at(2028, 2, 29, 0, 0)),
            ("5,10 20 * * *", at(2026, 11, 22, 20, 5)),
            ("0 0 13 * 5", at(2026, 11, 27, 0, 0)),
            // Steps that would pass u32::MAX stop there: only the first value matches.
            ("59/4294967295 * * * *", at(2026, 11, 22, 19, 59)),
            ("0-59/4294967295 20 * * *", at(2026, 11, 22, 20, 0)),
            ("*/4294967295 20 * * *", at(2026, 11, 22, 20, 0)),
            ("0 0 1-31/4294967294 * *", at(2026, 12, 1, 0, 0)),
        ];
        for (expr, want) in cases {
            let cron = Cron::parse(expr).unwrap();
            assert_eq!(cron.next_after(NOW), Some(want), "{expr}");
        }
        assert_eq!(Cron::parse("0 0 30 2 *").unwrap().next_after(NOW), None);
    }

    #[test]
    fn bad_expressions() {
        for expr in [
            "",
            "* * * *",
            "60 * * * *",
            "* 24 * * *",
            "* * 0 * *",
            "* * * 13 *",
            "*/0 * * * *",
            "a * * * *",
            "5-1 * * * *",
            "* * * * 8",
            "*/4294967296 * * * *",
            "4294967296 * * * *",
            "0-4294967296 * * * *",
        ] {
            let err = Cron::parse(expr)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(
                err.starts_with("ERR CRON expression is invalid"),
                "{expr}: {err}"
            );
        }
    }
}
