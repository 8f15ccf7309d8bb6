//! `ZRQ.INFO <queue>` → a map: jobs per state, totals since the queue was created, the age of the
//! oldest pending job, and whether the queue is paused.

use super::check_queue_types;
use crate::args;
use crate::keys::{QueueKeys, ENTRY_FIELD, GROUP, MAX_PRIORITY};
use crate::state::State;
use crate::store::{entry_id, KeyType, Store};
use crate::{Reply, Result, ZrqError};

/// Counters of the `stats` hash, reported as `total_<name>`.
pub const TOTALS: [&str; 6] = [
    "enqueued",
    "completed",
    "failed",
    "dead",
    "cancelled",
    "dropped",
];

/// Parsed arguments of `ZRQ.INFO`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info<'a> {
    /// The queue.
    pub queue: &'a str,
}

impl<'a> Info<'a> {
    /// Parses the arguments after the command name.
    pub fn parse(args: &'a [&'a [u8]]) -> Result<Self> {
        let [queue] = args else {
            return Err(ZrqError::arity("zrq.info"));
        };
        Ok(Info {
            queue: args::name("queue", queue)?,
        })
    }

    /// Counts the queue's jobs.
    pub fn apply(&self, store: &mut dyn Store) -> Result<Reply> {
        let keys = QueueKeys::new(self.queue);
        check_queue_types(store, &keys)?;
        let now = store.now_ms();
        let (mut pending, mut oldest) = (0, None::<i64>);
        for priority in 0..=MAX_PRIORITY {
            let stream = keys.stream_at(priority);
            if store.key_type(&stream)? == KeyType::Missing {
                continue;
            }
            pending += store.undelivered_len(&stream, GROUP)?;
            let first = store.undelivered(&stream, GROUP, None, 1)?;
            // The oldest pending job's creation time: its record's (or, left out there, the one
            // its generated id says), or, for a job held by its inline entry, the entry id's.
            let created = match first.first() {
                Some((entry, fields)) => match fields.iter().find(|(f, _)| f == ENTRY_FIELD) {
                    Some((_, id)) => {
                        let key = keys.job(id);
                        match store.record(&key)? {
                            Some(record) => match record.field(&key, "created_at")? {
                                Some(t) => t.parse().ok(),
                                None => crate::job::generated_created_at(id),
                            },
                            None => None,
                        }
                    }
                    None => entry_id(entry).and_then(|(ms, _)| i64::try_from(ms).ok()),
                },
                None => None,
            };
            if let Some(at) = created {
                oldest = Some(oldest.map_or(at, |o: i64| o.min(at)));
            }
        }
        let mut info = vec![("pending", Reply::Int(pending))];
        for (name, key) in [
            ("waiting", keys.waiting()),
            ("scheduled", keys.scheduled()),
            ("active", keys.active()),
            ("retrying", keys.retrying()),
            ("completed", keys.completed()),
            ("dead", keys.dead()),
            ("cancelled", keys.cancelled()),
        ] {
            // Completed and cancelled jobs kept for the queue's retention are fields of their
            // state's records hash; those with a retention of their own are in the index.
            let kept = match State::parse(name).and_then(|state| keys.records(state)) {
                Some(records) => store.hlen(&records)?,
                None => 0,
            };
            info.push((name, Reply::Int(store.zcard(&key)? + kept)));
        }
        let stats = store.hgetall(&keys.stats())?;
        for (name, total) in TOTALS.iter().zip([
            "total_enqueued",
            "total_completed",
            "total_failed",
            "total_dead",
            "total_cancelled",
            "total_dropped",
        ]) {
            let value = stats
                .iter()
                .find(|(f, _)| f == name)
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(0);
            info.push((total, Reply::Int(value)));
        }
        let age = oldest.map_or(0, |created| (now - created).max(0));
        info.push(("oldest_pending_age_ms", Reply::Int(age)));
        let paused = store.key_type(&keys.paused())? != KeyType::Missing;
        info.push(("paused", Reply::Int(i64::from(paused))));
        Ok(Reply::Map(info))
    }
}
