//! The key schema: the one definition of every Redis key zrq reads or writes.
//!
//! Every key of a queue carries the queue name as its hash tag (`zrq:{queue}:…`), so all of a
//! queue's keys live in one Redis Cluster slot and every command touches a single slot. The queue
//! name itself is the command's only declared key: it hashes to the same slot as the tag.

/// Name of the consumer group on every queue stream.
pub const GROUP: &str = "zrq";
/// Field of a reference entry: the id of the job it names (such entries carry nothing else). An
/// entry without it is an inline entry, which holds its (plain, pending) job itself: see
/// [`crate::job::Job::from_entry`].
pub const ENTRY_FIELD: &str = "job";

/// A key kind of a queue: its suffix, Redis type and purpose (the documentation table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeySpec {
    /// What follows `zrq:{queue}:`; `job:` is followed by the job id.
    pub suffix: &'static str,
    /// The Redis type of the key.
    pub redis_type: &'static str,
    /// What the key is for.
    pub purpose: &'static str,
}

/// Every key kind of a queue.
pub const KEYS: &[KeySpec] = &[
    KeySpec {
        suffix: "stream",
        redis_type: "stream",
        purpose: "pending jobs of priority 0 (a job's entry leaves the stream when it is delivered); consumer group `zrq`, read with NOACK",
    },
    KeySpec {
        suffix: "stream:",
        redis_type: "stream",
        purpose: "the same for priority 1 to 9 (`stream:9` is served first)",
    },
    KeySpec {
        suffix: "job:",
        redis_type: "string",
        purpose: "one packed record per job (a hash in queues written before); a plain pending job has none (its inline stream entry holds it), nor has a finished job kept in `completed:records` / `cancelled:records`; a job with its own KEEP expires with it",
    },
    KeySpec {
        suffix: "active",
        redis_type: "zset",
        purpose: "running jobs scored by lease deadline (unix ms)",
    },
    KeySpec {
        suffix: "waiting",
        redis_type: "zset",
        purpose: "jobs waiting for their parents (AFTER), scored by creation time (unix ms)",
    },
    KeySpec {
        suffix: "batch:",
        redis_type: "hash",
        purpose: "one record per batch: total, done, succeeded, failed, its callback",
    },
    KeySpec {
        suffix: "scheduled",
        redis_type: "zset",
        purpose: "delayed jobs scored by due time (unix ms)",
    },
    KeySpec {
        suffix: "retrying",
        redis_type: "zset",
        purpose: "failed jobs waiting for their retry, scored by due time (unix ms)",
    },
    KeySpec {
        suffix: "completed",
        redis_type: "zset",
        purpose: "completed jobs with a retention of their own (`KEEP`), and those finished before records were kept in `completed:records`, scored by the end of their retention (unix ms)",
    },
    KeySpec {
        suffix: "cancelled",
        redis_type: "zset",
        purpose: "cancelled jobs with a retention of their own, as `completed` (unix ms)",
    },
    KeySpec {
        suffix: "completed:records",
        redis_type: "hash",
        purpose: "completed jobs kept for the queue's retention (`zrq.keep-ms`): job id → its packed record without `state`",
    },
    KeySpec {
        suffix: "completed:log",
        redis_type: "stream",
        purpose: "the same jobs in the order they finished: one entry each (field `id`), whose time is the job's `finished_at`",
    },
    KeySpec {
        suffix: "cancelled:records",
        redis_type: "hash",
        purpose: "cancelled jobs kept for the queue's retention, as `completed:records`",
    },
    KeySpec {
        suffix: "cancelled:log",
        redis_type: "stream",
        purpose: "the same jobs in the order they were cancelled, as `completed:log`",
    },
    KeySpec {
        suffix: "dead",
        redis_type: "zset",
        purpose: "dead jobs scored by the time they died (unix ms)",
    },
    KeySpec {
        suffix: "unique",
        redis_type: "hash",
        purpose: "UNIQUE key -> id of the unfinished job holding it",
    },
    KeySpec {
        suffix: "paused",
        redis_type: "string",
        purpose: "exists while the queue is paused",
    },
    KeySpec {
        suffix: "schedules",
        redis_type: "hash",
        purpose: "recurring schedule name -> its definition (JSON)",
    },
    KeySpec {
        suffix: "ticks",
        redis_type: "zset",
        purpose: "recurring schedule name scored by its next run (unix ms)",
    },
    KeySpec {
        suffix: "stats",
        redis_type: "hash",
        purpose: "counters since the queue was created: enqueued, completed, failed, dead, cancelled, dropped; marks the queue as existing",
    },
];

/// What follows `zrq:{queue}:` in the queue's Pub/Sub channel (`<state> <id>` on each change).
pub const EVENTS: &str = "events";

/// Keys only the Lua library writes: the module blocks clients natively instead (docs/LUA.md).
pub const LUA_ONLY_KEYS: &[KeySpec] = &[KeySpec {
    suffix: "wake",
    redis_type: "list",
    purpose: "wake-up tokens for clients blocked on FETCH (BLPOP), at most `WAKE_CAP`",
}];

/// How many wake-up tokens the Lua library keeps at most in a queue's `wake` list: each push
/// trims the list to its newest `WAKE_CAP` tokens (docs/LUA.md, "Blocking FETCH").
pub const WAKE_CAP: usize = 128;

/// Highest job priority; priorities run from 0 (default) to this.
pub const MAX_PRIORITY: i64 = 9;

/// Pattern that matches the `stats` key of every queue (queue discovery with SCAN).
pub const QUEUE_MARKER_PATTERN: &str = "zrq:{*}:stats";

/// The queue name inside a key matched by [`QUEUE_MARKER_PATTERN`].
pub fn queue_of_marker(key: &str) -> Option<&str> {
    key.strip_prefix("zrq:{")?.strip_suffix("}:stats")
}

/// The queue and the suffix of a zrq key `zrq:{queue}:suffix`, if `key` is one and its queue is
/// a valid queue name. The timer finds queues this way: from key names, never from stored data.
pub fn split_key(key: &str) -> Option<(&str, &str)> {
    let (queue, suffix) = key.strip_prefix("zrq:{")?.split_once("}:")?;
    crate::args::name("queue", queue.as_bytes()).ok()?;
    Some((queue, suffix))
}

/// The keys of one queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueKeys {
    prefix: String,
}

impl QueueKeys {
    /// Keys of `queue` (a name already checked by [`crate::args::name`]).
    pub fn new(queue: &str) -> Self {
        // Concatenated, not `format!`ted: see `join`.
        let mut prefix = String::with_capacity(queue.len() + 7);
        prefix.push_str("zrq:{");
        prefix.push_str(queue);
        prefix.push_str("}:");
        QueueKeys { prefix }
    }

    /// The queue these keys belong to: the command's queue, which every key and every plan entry
    /// of a command derives from (never a queue name read from a record).
    pub fn queue(&self) -> &str {
        self.prefix
            .strip_prefix("zrq:{")
            .and_then(|rest| rest.strip_suffix("}:"))
            .unwrap_or_default()
    }

    // Keys are built by concatenation, not `format!`: every command builds a couple of dozen
    // key names, and the formatting machinery cost several times the copy (see BENCHMARKS.md).
    fn join(&self, parts: &[&str]) -> String {
        let len = self.prefix.len() + parts.iter().map(|p| p.len()).sum::<usize>();
        let mut key = String::with_capacity(len);
        key.push_str(&self.prefix);
        for part in parts {
            key.push_str(part);
        }
        key
    }

    fn key(&self, suffix: &str) -> String {
        self.join(&[suffix])
    }

    /// The stream of priority-0 jobs; also the key blocked workers wait on for any priority.
    pub fn stream(&self) -> String {
        self.key("stream")
    }

    /// The stream of jobs of `priority` (0 is [`QueueKeys::stream`]).
    pub fn stream_at(&self, priority: i64) -> String {
        if priority == 0 {
            self.stream()
        } else {
            self.join(&["stream:", &priority.to_string()])
        }
    }

    /// The record of job `id`.
    pub fn job(&self, id: &str) -> String {
        self.join(&["job:", id])
    }

    /// The lease deadlines of running jobs.
    pub fn active(&self) -> String {
        self.key("active")
    }

    /// Jobs waiting for their parents.
    pub fn waiting(&self) -> String {
        self.key("waiting")
    }

    /// The index that holds the unfinished jobs of `state`, if one does: a running job's lease in
    /// `active`, a waiting, scheduled or retrying job in the index of its state. Pending jobs are
    /// in their stream, finished ones in the index of their final state.
    pub fn index_of(&self, state: crate::state::State) -> Option<String> {
        use crate::state::State;
        match state {
            State::Active => Some(self.active()),
            State::Waiting => Some(self.waiting()),
            State::Scheduled => Some(self.scheduled()),
            State::Retrying => Some(self.retrying()),
            State::Pending | State::Completed | State::Dead | State::Cancelled => None,
        }
    }

    /// The index of the jobs that ended in `state`, if it is final: `completed`, `cancelled` or
    /// `dead`.
    pub fn finished_index(&self, state: crate::state::State) -> Option<String> {
        use crate::state::State;
        match state {
            State::Completed => Some(self.completed()),
            State::Cancelled => Some(self.cancelled()),
            State::Dead => Some(self.dead()),
            _ => None,
        }
    }

    /// The record of batch `id`.
    pub fn batch(&self, id: &str) -> String {
        self.join(&["batch:", id])
    }

    /// Delayed jobs by due time.
    pub fn scheduled(&self) -> String {
        self.key("scheduled")
    }

    /// Jobs waiting for a retry, by due time.
    pub fn retrying(&self) -> String {
        self.key("retrying")
    }

    /// Completed jobs by end of retention.
    pub fn completed(&self) -> String {
        self.key("completed")
    }

    /// Cancelled jobs by end of retention.
    pub fn cancelled(&self) -> String {
        self.key("cancelled")
    }

    /// The records of the jobs that ended in `state` and are kept for the queue's retention:
    /// `completed:records` or `cancelled:records` (`None` for any other state).
    pub fn records(&self, state: crate::state::State) -> Option<String> {
        Self::kept_suffix(state).map(|s| self.join(&[s, ":records"]))
    }

    /// The log of the jobs in [`QueueKeys::records`], in the order they ended: `completed:log`
    /// or `cancelled:log`.
    pub fn log(&self, state: crate::state::State) -> Option<String> {
        Self::kept_suffix(state).map(|s| self.join(&[s, ":log"]))
    }

    fn kept_suffix(state: crate::state::State) -> Option<&'static str> {
        state.is_kept().then(|| state.as_str())
    }

    /// The dead jobs.
    pub fn dead(&self) -> String {
        self.key("dead")
    }

    /// UNIQUE keys held by unfinished jobs.
    pub fn unique(&self) -> String {
        self.key("unique")
    }

    /// The pause flag.
    pub fn paused(&self) -> String {
        self.key("paused")
    }

    /// Recurring schedule definitions.
    pub fn schedules(&self) -> String {
        self.key("schedules")
    }

    /// Next run of each recurring schedule.
    pub fn ticks(&self) -> String {
        self.key("ticks")
    }

    /// The queue's counters.
    pub fn stats(&self) -> String {
        self.key("stats")
    }

    /// The Pub/Sub channel where state changes are announced.
    pub fn events(&self) -> String {
        self.key(EVENTS)
    }

    /// The list of wake-up tokens of the Lua backend (see [`LUA_ONLY_KEYS`]).
    pub fn wake(&self) -> String {
        self.key(LUA_ONLY_KEYS[0].suffix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::State;

    #[test]
    fn each_state_names_the_index_that_holds_it() {
        let k = QueueKeys::new("q");
        let cases = [
            (State::Waiting, Some("zrq:{q}:waiting"), None),
            (State::Scheduled, Some("zrq:{q}:scheduled"), None),
            (State::Pending, None, None),
            (State::Active, Some("zrq:{q}:active"), None),
            (State::Retrying, Some("zrq:{q}:retrying"), None),
            (State::Completed, None, Some("zrq:{q}:completed")),
            (State::Dead, None, Some("zrq:{q}:dead")),
            (State::Cancelled, None, Some("zrq:{q}:cancelled")),
        ];
        for (state, unfinished, finished) in cases {
            assert_eq!(k.index_of(state).as_deref(), unfinished, "{state}");
            assert_eq!(k.finished_index(state).as_deref(), finished, "{state}");
        }
    }

    #[test]
    fn keys_share_the_queue_hash_tag() {
        let k = QueueKeys::new("emails");
        assert_eq!(k.stream(), "zrq:{emails}:stream");
        assert_eq!(k.job("j1"), "zrq:{emails}:job:j1");
        assert_eq!(k.active(), "zrq:{emails}:active");
        assert_eq!(k.dead(), "zrq:{emails}:dead");
        assert_eq!(k.stats(), "zrq:{emails}:stats");
        assert_eq!(k.stream_at(0), "zrq:{emails}:stream");
        assert_eq!(k.stream_at(7), "zrq:{emails}:stream:7");
        assert_eq!(queue_of_marker(&k.stats()), Some("emails"));
        assert_eq!(k.queue(), "emails");
    }

    #[test]
    fn split_key_reads_only_well_formed_zrq_keys() {
        let cases: &[(&str, Option<(&str, &str)>)] = &[
            ("zrq:{q}:ticks", Some(("q", "ticks"))),
            ("zrq:{q}:job:a}:b", Some(("q", "job:a}:b"))),
            ("zrq:{a{b}:ticks", None),
            ("zrq:{}:ticks", None),
            ("zrq:{q}ticks", None),
            ("other:{q}:ticks", None),
        ];
        for (key, want) in cases {
            assert_eq!(split_key(key), *want, "{key}");
        }
        let long = format!("zrq:{{{}}}:ticks", "x".repeat(201));
        assert_eq!(split_key(&long), None, "a queue name longer than allowed");
    }

    #[test]
    fn every_key_kind_is_documented() {
        let k = QueueKeys::new("q");
        let made = [
            k.stream(),
            "zrq:{q}:stream:".to_string(),
            k.job(""),
            k.active(),
            k.waiting(),
            k.batch(""),
            k.scheduled(),
            k.retrying(),
            k.completed(),
            k.cancelled(),
            k.records(State::Completed).unwrap_or_default(),
            k.log(State::Completed).unwrap_or_default(),
            k.records(State::Cancelled).unwrap_or_default(),
            k.log(State::Cancelled).unwrap_or_default(),
            k.dead(),
            k.unique(),
            k.paused(),
            k.schedules(),
            k.ticks(),
            k.stats(),
        ];
        for (spec, key) in KEYS.iter().zip(made.iter()) {
            assert_eq!(format!("zrq:{{q}}:{}", spec.suffix), *key);
        }
        assert_eq!(KEYS.len(), made.len());
    }

    #[test]
    fn lua_only_keys_and_the_channel_are_no_module_keys() {
        for suffix in LUA_ONLY_KEYS.iter().map(|k| k.suffix).chain([EVENTS]) {
            assert!(KEYS.iter().all(|k| k.suffix != suffix), "{suffix}");
        }
        assert_eq!(QueueKeys::new("q").wake(), "zrq:{q}:wake");
        assert_eq!(QueueKeys::new("q").events(), "zrq:{q}:events");
    }
}
