//! The key schema: the one definition of every Redis key zrq reads or writes.
//!
//! Every key of a queue carries the queue name as its hash tag (`zrq:{queue}:…`), so all of a
//! queue's keys live in one Redis Cluster slot and every command touches a single slot. The queue
//! name itself is the command's only declared key: it hashes to the same slot as the tag.

/// Name of the consumer group on every queue stream.
pub const GROUP: &str = "zrq";
/// Field of a stream entry that holds the job id (entries carry nothing else).
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
        purpose: "jobs waiting or running; consumer group `zrq`, whose pending-entries list is the set of running jobs",
    },
    KeySpec {
        suffix: "job:",
        redis_type: "hash",
        purpose: "one record per job (see the job fields)",
    },
    KeySpec {
        suffix: "active",
        redis_type: "zset",
        purpose: "running jobs scored by lease deadline (unix ms)",
    },
    KeySpec {
        suffix: "dead",
        redis_type: "zset",
        purpose: "dead jobs scored by the time they died (unix ms)",
    },
    KeySpec {
        suffix: "stats",
        redis_type: "hash",
        purpose: "counters since the queue was created: enqueued, completed, dead",
    },
];

/// The keys of one queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueKeys {
    prefix: String,
}

impl QueueKeys {
    /// Keys of `queue` (a name already checked by [`crate::args::name`]).
    pub fn new(queue: &str) -> Self {
        QueueKeys {
            prefix: format!("zrq:{{{queue}}}:"),
        }
    }

    /// The stream of waiting and running jobs.
    pub fn stream(&self) -> String {
        format!("{}stream", self.prefix)
    }

    /// The record of job `id`.
    pub fn job(&self, id: &str) -> String {
        format!("{}job:{id}", self.prefix)
    }

    /// The lease deadlines of running jobs.
    pub fn active(&self) -> String {
        format!("{}active", self.prefix)
    }

    /// The dead jobs.
    pub fn dead(&self) -> String {
        format!("{}dead", self.prefix)
    }

    /// The queue's counters.
    pub fn stats(&self) -> String {
        format!("{}stats", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_share_the_queue_hash_tag() {
        let k = QueueKeys::new("emails");
        assert_eq!(k.stream(), "zrq:{emails}:stream");
        assert_eq!(k.job("j1"), "zrq:{emails}:job:j1");
        assert_eq!(k.active(), "zrq:{emails}:active");
        assert_eq!(k.dead(), "zrq:{emails}:dead");
        assert_eq!(k.stats(), "zrq:{emails}:stats");
    }

    #[test]
    fn every_key_kind_is_documented() {
        let k = QueueKeys::new("q");
        let made = [k.stream(), k.job(""), k.active(), k.dead(), k.stats()];
        for (spec, key) in KEYS.iter().zip(made.iter()) {
            assert_eq!(format!("zrq:{{q}}:{}", spec.suffix), *key);
        }
        assert_eq!(KEYS.len(), made.len());
    }
}
