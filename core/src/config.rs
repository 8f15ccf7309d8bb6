//! Server-wide settings (module configs `zrq.*`), and the retry backoff they shape.

/// Settings that apply to every queue unless a job overrides them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// First retry delay in ms; doubled for each further attempt (`zrq.backoff-base-ms`).
    pub backoff_base_ms: i64,
    /// Longest retry delay in ms (`zrq.backoff-max-ms`).
    pub backoff_max_ms: i64,
    /// How long completed and cancelled jobs are kept, in ms (`zrq.keep-ms`).
    pub keep_ms: i64,
    /// Most dead jobs kept per queue; the oldest beyond it are dropped (`zrq.dead-max`).
    pub dead_max: i64,
    /// Consumers idle this long with nothing pending are dropped from a queue's consumer groups
    /// by RECLAIM, so worker names that never come back do not pile up (`zrq.consumer-idle-ms`).
    pub consumer_idle_ms: i64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            backoff_base_ms: 1_000,
            backoff_max_ms: 3_600_000,
            keep_ms: 86_400_000,
            dead_max: 10_000,
            consumer_idle_ms: 3_600_000,
        }
    }
}

/// The delay before retry number `attempt` (1 = the first retry): exponential from `base`, at
/// most `max`, with "equal jitter" — half fixed, half spread by `random` — so a burst of failures
/// does not retry in lockstep.
pub fn backoff_delay(base: i64, max: i64, attempt: i64, random: u64) -> i64 {
    let exponent = u32::try_from(attempt.clamp(1, 63) - 1).unwrap_or(0);
    let full = base
        .max(0)
        .checked_mul(1_i64.checked_shl(exponent).unwrap_or(i64::MAX))
        .unwrap_or(i64::MAX)
        .min(max.max(0));
    let half = full / 2;
    let spread = u64::try_from(full - half).unwrap_or(0);
    let jitter = if spread == 0 {
        0
    } else {
        random % (spread + 1)
    };
    half + i64::try_from(jitter).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let cases = [
            // (base, max, attempt, random, expected)
            (1000, 60_000, 1, 0, 500),
            (1000, 60_000, 1, u64::MAX, 500 + (u64::MAX % 501) as i64),
            (1000, 60_000, 2, 0, 1000),
            (1000, 60_000, 3, 0, 2000),
            (1000, 60_000, 30, 0, 30_000),
            (1000, 60_000, 1000, 7, 30_007),
            (0, 60_000, 5, 9, 0),
            (i64::MAX, i64::MAX, 63, 0, i64::MAX / 2),
        ];
        for (base, max, attempt, random, want) in cases {
            assert_eq!(
                backoff_delay(base, max, attempt, random),
                want,
                "{base} {max} {attempt}"
            );
        }
    }

    #[test]
    fn backoff_stays_within_half_and_full() {
        for random in [0, 1, 17, 999, u64::MAX] {
            let d = backoff_delay(1000, 10_000, 3, random);
            assert!((2000..=4000).contains(&d), "{d}");
        }
    }
}
