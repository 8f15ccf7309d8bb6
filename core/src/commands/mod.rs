//! One file per command: parse the arguments, apply the change through a [`Store`], build the reply.
//!
//! Every command checks all its arguments and the types of all the keys it will write before its
//! first write, so a command that replies with an error has changed nothing. Arguments are checked
//! left to right (positional arguments, then options in the order given), which fixes which error
//! is reported when several are wrong; the Lua backend follows the same order.

pub mod ack;
pub mod enqueue;
pub mod fetch;
pub mod job;
pub mod reclaim;
pub mod state;

use crate::job::Job;
use crate::keys::{QueueKeys, GROUP};
use crate::state::{Event, State};
use crate::store::{KeyType, Store};
use crate::{Result, ZrqError};

/// Fails with `WRONGTYPE` unless each key is missing or of its expected type.
pub(crate) fn check_types(store: &mut dyn Store, keys: &[(&str, KeyType)]) -> Result<()> {
    for (key, expected) in keys {
        let found = store.key_type(key)?;
        if found != KeyType::Missing && found != *expected {
            return Err(ZrqError::wrong_type(key, found.as_str(), expected.as_str()));
        }
    }
    Ok(())
}

/// Loads job `id`, or `None` if there is no such record. A key of another type is `WRONGTYPE`.
pub(crate) fn load_job(store: &mut dyn Store, keys: &QueueKeys, id: &str) -> Result<Option<Job>> {
    let key = keys.job(id);
    check_types(store, &[(&key, KeyType::Hash)])?;
    let fields = store.hgetall(&key)?;
    if fields.is_empty() {
        return Ok(None);
    }
    Job::from_fields(&key, fields).map(Some)
}

/// Starts a new attempt of `job` for `consumer`: the job becomes active and gets a fresh lease.
pub(crate) fn start_attempt(
    store: &mut dyn Store,
    keys: &QueueKeys,
    job: &mut Job,
    consumer: &str,
    event: Event,
) -> Result<()> {
    let now = store.now_ms();
    job.state = job
        .state
        .after(event)
        .ok_or_else(|| ZrqError::internal("start_attempt on a job that cannot start"))?;
    job.attempt += 1;
    job.consumer = Some(consumer.to_string());
    job.started_at = Some(now);
    let attempt = job.attempt.to_string();
    let started = now.to_string();
    store.hset(
        &keys.job(&job.id),
        &[
            ("state", State::Active.as_str()),
            ("attempt", &attempt),
            ("consumer", consumer),
            ("started_at", &started),
        ],
    )?;
    store.zadd(&keys.active(), now.saturating_add(job.timeout), &job.id)
}

/// Ends `job`'s time in the stream: acknowledges and deletes its entry, and drops its lease.
pub(crate) fn leave_stream(store: &mut dyn Store, keys: &QueueKeys, job: &Job) -> Result<()> {
    if let Some(entry) = &job.entry {
        store.xack_del(&keys.stream(), GROUP, entry)?;
    }
    store.zrem(&keys.active(), &job.id)
}
