//! Server-wide settings (module configs `zrq.*`), and the retry backoff they shape.
//!
//! Each config is defined once, here: its name, default and accepted range ([`Setting`]). The
//! module registers exactly these ([`SETTINGS`]); the Lua library, which cannot read module
//! configs, gets their defaults generated into its text (`zrq_lua::library`), so both backends
//! enforce the same limits out of the box.

/// One module config: `zrq.<name>`, an integer with a default and an accepted range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    /// The name after `zrq.` (`keep-ms`).
    pub name: &'static str,
    /// The value until an operator sets another.
    pub default: i64,
    /// The smallest value accepted.
    pub min: i64,
    /// The largest value accepted.
    pub max: i64,
    /// What it controls, one line (docs/PROTOCOL.md's config table says the same).
    pub meaning: &'static str,
}

/// Largest duration a config accepts: ten years in ms (as `args::MAX_DURATION_MS`).
const TEN_YEARS_MS: i64 = crate::args::MAX_DURATION_MS;

/// `zrq.backoff-base-ms`.
pub const BACKOFF_BASE_MS: Setting = Setting {
    name: "backoff-base-ms",
    default: 1_000,
    min: 0,
    max: TEN_YEARS_MS,
    meaning: "first retry delay; doubles per attempt",
};
/// `zrq.backoff-max-ms`.
pub const BACKOFF_MAX_MS: Setting = Setting {
    name: "backoff-max-ms",
    default: 3_600_000,
    min: 0,
    max: TEN_YEARS_MS,
    meaning: "longest retry delay",
};
/// `zrq.keep-ms`.
pub const KEEP_MS: Setting = Setting {
    name: "keep-ms",
    default: 86_400_000,
    min: 1,
    max: TEN_YEARS_MS,
    meaning: "retention of completed and cancelled jobs",
};
/// `zrq.dead-max`.
pub const DEAD_MAX: Setting = Setting {
    name: "dead-max",
    default: 10_000,
    min: 0,
    max: 1_000_000_000,
    meaning: "dead jobs kept per queue",
};
/// `zrq.consumer-idle-ms`.
pub const CONSUMER_IDLE_MS: Setting = Setting {
    name: "consumer-idle-ms",
    default: 3_600_000,
    min: 0,
    max: TEN_YEARS_MS,
    meaning: "idle consumers holding no job are dropped by RECLAIM after this",
};
/// `zrq.payload-max-bytes`.
pub const PAYLOAD_MAX_BYTES: Setting = Setting {
    name: "payload-max-bytes",
    default: 131_072,
    min: 1,
    max: 536_870_912,
    meaning:
        "largest payload of a job (ENQUEUE, SCHEDULE); for BATCH, of all its payloads together",
};
/// `zrq.result-max-bytes`.
pub const RESULT_MAX_BYTES: Setting = Setting {
    name: "result-max-bytes",
    default: 131_072,
    min: 1,
    max: 536_870_912,
    meaning: "largest RESULT of ACK",
};
/// `zrq.json-depth-max`.
pub const JSON_DEPTH_MAX: Setting = Setting {
    name: "json-depth-max",
    default: 64,
    min: 1,
    // serde_json reads documents into values (WITHRESULTS) only up to 128 levels.
    max: 128,
    meaning: "deepest nesting of arrays and objects in a payload or RESULT",
};
/// `zrq.after-max`.
pub const AFTER_MAX: Setting = Setting {
    name: "after-max",
    default: 100,
    min: 1,
    max: 1_000_000,
    meaning: "`AFTER` options per ENQUEUE (parents of one job)",
};
/// `zrq.batch-max`.
pub const BATCH_MAX: Setting = Setting {
    name: "batch-max",
    default: 500,
    min: 1,
    max: 1_000_000,
    meaning: "`JOB` members per BATCH command",
};
/// `zrq.schedules-max`.
pub const SCHEDULES_MAX: Setting = Setting {
    name: "schedules-max",
    default: 100,
    min: 0,
    max: 1_000_000,
    meaning: "schedules per queue",
};
/// `zrq.every-min-ms`.
pub const EVERY_MIN_MS: Setting = Setting {
    name: "every-min-ms",
    default: 1_000,
    min: 1,
    max: TEN_YEARS_MS,
    meaning: "shortest `EVERY` period of a schedule",
};

/// `zrq.children-max`.
pub const CHILDREN_MAX: Setting = Setting {
    name: "children-max",
    // ENQUEUE reads the list of each of its after-max parents: 100 × 200 ids stay well within
    // 250 ms on both backends (tests/tests/stalls.rs).
    default: 200,
    min: 1,
    max: 1_000_000,
    meaning: "jobs waiting `AFTER` one parent (children registered while it is unfinished)",
};
/// `zrq.requeue-max`.
pub const REQUEUE_MAX: Setting = Setting {
    name: "requeue-max",
    // A page loads each job's whole record: on Lua a payload-max record costs about 4 ms
    // (measured by tests/tests/stalls.rs), so a page stays well within 250 ms.
    default: 20,
    min: 1,
    max: 1_000_000,
    meaning: "dead jobs one REQUEUE ALL handles (its COUNT's default and largest value)",
};

/// `zrq.reply-max-bytes`.
pub const REPLY_MAX_BYTES: Setting = Setting {
    name: "reply-max-bytes",
    // Reading a job record costs time in proportion to its size, on Lua mostly the UTF-8 check
    // of its text: ~30 ms (up to 70 on a loaded machine) for a payload-max record of mixed 2-, 3-
    // and 4-byte characters, 5 ms for one kind of them, 1.6 ms for ASCII. A page reads at most
    // the budget plus the record that ends it: with 256 KB, two or three such records, far within
    // 250 ms on both backends (tests/tests/stalls.rs reads pages of COUNT 1000 payload-max jobs);
    // a page of 1000 jobs with 100-byte payloads does not reach it.
    default: 262_144,
    min: 1,
    max: 536_870_912,
    meaning: "bytes of job records one FETCH, LIST, DEAD, RECLAIM or REQUEUE ALL reads; a page \
              stops before the job that would pass it (it always handles one)",
};
/// `zrq.parents-max-bytes`.
pub const PARENTS_MAX_BYTES: Setting = Setting {
    name: "parents-max-bytes",
    // A parent's completion rewrites the `parents` field of each of its (children-max) waiting
    // WITHRESULTS children: the field's size bounds that step's work. With 32 KB, children-max
    // children at the limit take about 100 ms on the Lua backend (128 KB took 500).
    default: 32_768,
    min: 1,
    max: 536_870_912,
    meaning: "largest `parents` field of a WITHRESULTS job (its parents' results together); a \
              result that would pass it is copied as null",
};

/// Every config, in documentation order.
pub const SETTINGS: [Setting; 16] = [
    BACKOFF_BASE_MS,
    BACKOFF_MAX_MS,
    KEEP_MS,
    DEAD_MAX,
    CONSUMER_IDLE_MS,
    PAYLOAD_MAX_BYTES,
    RESULT_MAX_BYTES,
    JSON_DEPTH_MAX,
    AFTER_MAX,
    BATCH_MAX,
    SCHEDULES_MAX,
    EVERY_MIN_MS,
    CHILDREN_MAX,
    REQUEUE_MAX,
    REPLY_MAX_BYTES,
    PARENTS_MAX_BYTES,
];

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
    /// Largest payload in bytes; BATCH counts its payloads together (`zrq.payload-max-bytes`).
    pub payload_max_bytes: i64,
    /// Largest ACK `RESULT` in bytes (`zrq.result-max-bytes`).
    pub result_max_bytes: i64,
    /// Deepest nesting of a payload or result (`zrq.json-depth-max`).
    pub json_depth_max: i64,
    /// Most `AFTER` options of one ENQUEUE (`zrq.after-max`).
    pub after_max: i64,
    /// Most `JOB` members of one BATCH (`zrq.batch-max`).
    pub batch_max: i64,
    /// Most schedules of one queue (`zrq.schedules-max`).
    pub schedules_max: i64,
    /// Shortest `EVERY` of a schedule, in ms (`zrq.every-min-ms`).
    pub every_min_ms: i64,
    /// Most children registered with one unfinished parent (`zrq.children-max`).
    pub children_max: i64,
    /// Most dead jobs handled by one `REQUEUE … ALL` (`zrq.requeue-max`).
    pub requeue_max: i64,
    /// Most bytes of job records one paged command reads (`zrq.reply-max-bytes`).
    pub reply_max_bytes: i64,
    /// Largest `parents` field of a `WITHRESULTS` job (`zrq.parents-max-bytes`).
    pub parents_max_bytes: i64,
    /// Whether the server's timer handles expired leases itself (`zrq.expire-leases`); when off
    /// they wait for a `ZRQ.RECLAIM`, as on the Lua backend.
    pub expire_leases: bool,
}

impl Config {
    /// Every config at its default.
    pub const DEFAULT: Config = Config {
        backoff_base_ms: BACKOFF_BASE_MS.default,
        backoff_max_ms: BACKOFF_MAX_MS.default,
        keep_ms: KEEP_MS.default,
        dead_max: DEAD_MAX.default,
        consumer_idle_ms: CONSUMER_IDLE_MS.default,
        payload_max_bytes: PAYLOAD_MAX_BYTES.default,
        result_max_bytes: RESULT_MAX_BYTES.default,
        json_depth_max: JSON_DEPTH_MAX.default,
        after_max: AFTER_MAX.default,
        batch_max: BATCH_MAX.default,
        schedules_max: SCHEDULES_MAX.default,
        every_min_ms: EVERY_MIN_MS.default,
        children_max: CHILDREN_MAX.default,
        requeue_max: REQUEUE_MAX.default,
        reply_max_bytes: REPLY_MAX_BYTES.default,
        parents_max_bytes: PARENTS_MAX_BYTES.default,
        expire_leases: true,
    };
}

impl Default for Config {
    fn default() -> Self {
        Config::DEFAULT
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
    fn settings_have_distinct_names_and_defaults_in_range() {
        for (n, setting) in SETTINGS.iter().enumerate() {
            assert!(
                (setting.min..=setting.max).contains(&setting.default),
                "{}",
                setting.name
            );
            assert!(
                SETTINGS[..n].iter().all(|s| s.name != setting.name),
                "{}",
                setting.name
            );
        }
    }

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
