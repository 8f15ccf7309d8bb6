//! One file per command: parse the arguments, apply the change through a [`Store`], build the reply.
//!
//! Every command checks all its arguments and the types of all the keys it may write before its
//! first write, so a command that replies with an error has changed nothing. The hot commands
//! (ENQUEUE, ACK) check only the keys their path writes (one key lookup each, and a queue has 22
//! fixed keys); the others check every fixed key of the queue (`check_queue_types`). Arguments
//! are checked left to right (positional arguments, then options in the order given), which
//! fixes which error is reported when several are wrong; the Lua backend follows the same order.
//!
//! The helpers below are the only places where a job moves between the queue's structures, so
//! every command moves jobs the same way.

pub mod ack;
pub mod batch;
pub mod batchinfo;
pub mod cancel;
pub mod dead;
pub mod delete;
pub mod enqueue;
pub mod fail;
pub mod fetch;
mod flow;
pub mod info;
pub mod job;
pub mod list;
pub mod pause;
pub mod promote;
pub mod queues;
pub mod reclaim;
pub mod release;
pub mod requeue;
pub mod result;
pub mod schedule;
pub mod schedules;
pub mod state;
pub mod touch;
pub mod unschedule;

/// Options of the paged commands (DEAD, LIST): a page's size and where it starts.
pub const PAGE_OPTIONS: [&str; 2] = ["COUNT", "CURSOR"];
/// A page's size when COUNT is not given (DEAD, LIST).
pub const PAGE_DEFAULT_COUNT: i64 = 10;

/// The values of ENQUEUE's ONPARENTFAIL option (the Lua library's table is generated from it).
pub use flow::POLICIES as PARENT_FAIL_POLICIES;

use crate::args::{self, MAX_COUNT};
use crate::job::{Job, Place};
use crate::keys::{QueueKeys, ENTRY_FIELD, GROUP, MAX_PRIORITY};
use crate::state::{Event, State};
use crate::store::{entry_after, entry_id, KeyType, Store, StoredRecord};
use crate::{Reply, Result, ZrqError};

/// Reads `<queue> <name>`: the whole argument list of commands that address one job, schedule or
/// batch (`what` names the second argument in errors).
pub(crate) fn queue_and_name<'a>(
    args: &'a [&'a [u8]],
    command: &str,
    what: &str,
) -> Result<(&'a str, &'a str)> {
    let [queue, name] = args else {
        return Err(ZrqError::arity(command));
    };
    Ok((args::name("queue", queue)?, args::name(what, name)?))
}

/// Whether `key` exists, in one lookup; `WRONGTYPE` if it holds another type than `expected`.
pub(crate) fn exists_as(store: &mut dyn Store, key: &str, expected: KeyType) -> Result<bool> {
    match store.key_type(key)? {
        KeyType::Missing => Ok(false),
        found if found == expected => Ok(true),
        found => Err(ZrqError::wrong_type(key, found.as_str(), expected.as_str())),
    }
}

/// Whether job record `key` exists, in one lookup: a packed record (string) or a record of the
/// earlier format (hash); `WRONGTYPE` (expected `string`) for a key of another type.
pub(crate) fn record_exists(store: &mut dyn Store, key: &str) -> Result<bool> {
    match store.key_type(key)? {
        KeyType::Missing => Ok(false),
        KeyType::String | KeyType::Hash => Ok(true),
        found => Err(ZrqError::wrong_type(
            key,
            found.as_str(),
            KeyType::String.as_str(),
        )),
    }
}

/// Whether job `id` has a record: at its key ([`record_exists`]) or kept in the records hash of
/// its final state ([`Place::Records`]). One lookup when it has a key; up to three when not.
pub(crate) fn job_recorded(store: &mut dyn Store, keys: &QueueKeys, id: &str) -> Result<bool> {
    if record_exists(store, &keys.job(id))? {
        return Ok(true);
    }
    for state in State::KEPT {
        if kept_raw(store, keys, id, state)?.is_some() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Fails with `WRONGTYPE` unless each key is missing or of its expected type.
pub(crate) fn check_types(store: &mut dyn Store, keys: &[(&str, KeyType)]) -> Result<()> {
    for (key, expected) in keys {
        exists_as(store, key, *expected)?;
    }
    Ok(())
}

/// Checks the type of every fixed key of the queue (all but job records): done by every command
/// that writes, before its first write.
pub(crate) fn check_queue_types(store: &mut dyn Store, keys: &QueueKeys) -> Result<()> {
    for priority in 0..=MAX_PRIORITY {
        check_types(store, &[(&keys.stream_at(priority), KeyType::Stream)])?;
    }
    let zsets = [
        keys.active(),
        keys.waiting(),
        keys.scheduled(),
        keys.retrying(),
        keys.completed(),
        keys.cancelled(),
        keys.dead(),
        keys.ticks(),
    ];
    for key in &zsets {
        check_types(store, &[(key, KeyType::ZSet)])?;
    }
    for state in State::KEPT {
        check_kept_types(store, keys, state)?;
    }
    check_types(
        store,
        &[
            (&keys.unique(), KeyType::Hash),
            (&keys.schedules(), KeyType::Hash),
            (&keys.stats(), KeyType::Hash),
            (&keys.paused(), KeyType::String),
        ],
    )
}

/// Checks the types of the records hash and the log of final `state` ([`QueueKeys::records`],
/// [`QueueKeys::log`]); nothing for a state without them.
fn check_kept_types(store: &mut dyn Store, keys: &QueueKeys, state: State) -> Result<()> {
    if let (Some(records), Some(log)) = (keys.records(state), keys.log(state)) {
        check_types(store, &[(&records, KeyType::Hash), (&log, KeyType::Stream)])?;
    }
    Ok(())
}

/// Checks the types of the fixed keys [`finish`] writes when `job` ends in `state`: its stream
/// (if it has an entry), the index it leaves ([`QueueKeys::index_of`]), the index of its final state
/// ([`QueueKeys::finished_index`]), its UNIQUE key's hash, the
/// stats. A job with children or a batch may set off a cascade that reaches any key of the queue
/// (children released into their streams or cancelled, a batch callback enqueued): then every
/// fixed key is checked. Called before the first write, as [`check_queue_types`] is.
pub(crate) fn check_finish_types(
    store: &mut dyn Store,
    keys: &QueueKeys,
    job: &Job,
    state: State,
) -> Result<()> {
    if job.children.is_some() || job.batch.is_some() {
        return check_queue_types(store, keys);
    }
    if job.entry.is_some() {
        check_types(store, &[(&keys.stream_at(job.priority), KeyType::Stream)])?;
    }
    if let Some(index) = keys.index_of(job.state) {
        check_types(store, &[(&index, KeyType::ZSet)])?;
    }
    if kept_in_records(store, keys, job, state) {
        check_kept_types(store, keys, state)?;
    } else if let Some(index) = keys.finished_index(state) {
        check_types(store, &[(&index, KeyType::ZSet)])?;
    }
    if job.unique.is_some() {
        check_types(store, &[(&keys.unique(), KeyType::Hash)])?;
    }
    check_types(store, &[(&keys.stats(), KeyType::Hash)])
}

/// Loads job `id`, or `None` if there is no such record. A key of another type is `WRONGTYPE`.
///
/// The job's `queue` and `id` are those of the place it is read from (the command's queue, the
/// id asked for); a record of the earlier format that stores other ones is `CORRUPT` (see
/// [`Job::from_fields`]): every key comes from the command's queue and the record's own id.
///
/// A job without a record is read from its inline entry, when `id` is a generated id naming one
/// ([`load_inline`]): a plain pending job is its stream entry. The record, when there is one, is
/// authoritative (a job whose record was written while it is pending: see [`save`]).
pub(crate) fn load_job(store: &mut dyn Store, keys: &QueueKeys, id: &str) -> Result<Option<Job>> {
    match load_record(store, keys, id)? {
        Some(job) => Ok(Some(job)),
        None => load_unrecorded(store, keys, id),
    }
}

/// Job `id` when it has no record at its own key: a plain pending job held by its inline entry
/// ([`load_inline`]), or a finished job kept in the records hash of its state ([`load_kept`]).
pub(crate) fn load_unrecorded(
    store: &mut dyn Store,
    keys: &QueueKeys,
    id: &str,
) -> Result<Option<Job>> {
    if let Some(job) = load_inline(store, keys, id)? {
        return Ok(Some(job));
    }
    for state in State::KEPT {
        if let Some(job) = load_kept(store, keys, id, state)? {
            return Ok(Some(job));
        }
    }
    Ok(None)
}

/// Job `id` if it is kept for the queue's retention in the records hash of final `state`
/// ([`Place::Records`]), `None` when it is not there. A hash key of another type is `WRONGTYPE`.
pub(crate) fn load_kept(
    store: &mut dyn Store,
    keys: &QueueKeys,
    id: &str,
    state: State,
) -> Result<Option<Job>> {
    let Some((records, packed)) = kept_raw(store, keys, id, state)? else {
        return Ok(None);
    };
    Job::from_packed_records(&records, keys.queue(), id, state, packed.as_bytes()).map(Some)
}

/// The records hash of final `state` and job `id`'s field in it as stored, `None` when it is not
/// there. A hash key of another type is `WRONGTYPE`.
fn kept_raw(
    store: &mut dyn Store,
    keys: &QueueKeys,
    id: &str,
    state: State,
) -> Result<Option<(String, String)>> {
    let Some(records) = keys.records(state) else {
        return Ok(None);
    };
    if !exists_as(store, &records, KeyType::Hash)? {
        return Ok(None);
    }
    Ok(store.hget(&records, id)?.map(|packed| (records, packed)))
}

/// Whether `job`, ending in `state`, is kept in the records hash of that state
/// ([`Place::Records`]): a completed or cancelled job kept for the queue's retention. A job with
/// a retention of its own (`KEEP`) keeps its own key with that TTL, indexed in the state's zset;
/// so does a job a client waits for with `RESULT … BLOCK` ([`Store::awaited`]): its waiter is
/// woken through its key, which must still exist once the job has ended.
pub(crate) fn kept_in_records(
    store: &mut dyn Store,
    keys: &QueueKeys,
    job: &Job,
    state: State,
) -> bool {
    job.keep.is_none() && state.is_kept() && !store.awaited(&keys.job(&job.id))
}

/// The job whose record is at job `id`'s key, `None` when there is none (or it is empty).
fn load_record(store: &mut dyn Store, keys: &QueueKeys, id: &str) -> Result<Option<Job>> {
    let key = keys.job(id);
    match store.record(&key)? {
        None => Ok(None),
        Some(StoredRecord::Hash(fields)) if fields.is_empty() => Ok(None),
        Some(record) => record.job(&key, keys.queue(), id).map(Some),
    }
}

/// The job behind entry `entry` of the stream of `priority`, whose `fields` were just read
/// (FETCH delivers them, LIST pending lists them): a reference entry names its job, loaded
/// ([`load_job`]); an inline entry holds its job, read from its record if one was written while
/// it was pending (the record is authoritative), else from these fields — without reading the
/// entry again.
pub(crate) fn job_at(
    store: &mut dyn Store,
    keys: &QueueKeys,
    priority: i64,
    entry: &str,
    mut fields: Vec<(String, String)>,
) -> Result<Option<Job>> {
    if let Some(at) = fields.iter().position(|(f, _)| f == ENTRY_FIELD) {
        let (_, id) = fields.swap_remove(at);
        return load_job(store, keys, &id);
    }
    let id = crate::job::inline_id(priority, entry);
    match load_record(store, keys, &id)? {
        Some(job) => Ok(Some(job)),
        None => Job::from_entry(
            &keys.stream_at(priority),
            keys.queue(),
            priority,
            entry,
            fields,
        )
        .map(Some),
    }
}

/// The pending job held by the inline entry generated id `id` names ([`crate::job::inline_entry`]),
/// read with one `XRANGE` of its stream; `None` when `id` is not a generated id, or its stream has
/// no such entry, or the entry is a reference entry (whose job has a record, or had one). A
/// stream key of another type is `WRONGTYPE`.
pub(crate) fn load_inline(
    store: &mut dyn Store,
    keys: &QueueKeys,
    id: &str,
) -> Result<Option<Job>> {
    let Some((priority, entry)) = crate::job::inline_entry(id) else {
        return Ok(None);
    };
    let stream = keys.stream_at(priority);
    if !exists_as(store, &stream, KeyType::Stream)? {
        return Ok(None);
    }
    match store.xentry(&stream, entry)? {
        Some(fields) if !fields.iter().any(|(f, _)| f == ENTRY_FIELD) => {
            Job::from_entry(&stream, keys.queue(), priority, entry, fields).map(Some)
        }
        _ => Ok(None),
    }
}

/// Writes the whole record of `job` as it is now, packed ([`crate::packed`]), in one `SET` of its
/// key: every write of a job record is this one, by the command that changed the job, once the
/// job is as the command leaves it (a command that changes several fields writes the job once).
/// `expire_ms` is a finished job's retention (`PX`); without it the key keeps its TTL
/// (`KEEPTTL`). A record of the earlier format (hash) becomes a string here. A plain pending job
/// (held by its inline entry) gets its first record this way; its entry stays, and from then on
/// the record is authoritative. `job` must be the job as read whole ([`load_job`]).
pub(crate) fn save(
    store: &mut dyn Store,
    keys: &QueueKeys,
    job: &mut Job,
    expire_ms: Option<i64>,
) -> Result<()> {
    match (job.place, keys.records(job.state)) {
        (Place::Records, Some(records)) => store.hset(&records, &[(&job.id, &job.pack())]),
        _ => {
            job.place = Place::Key;
            store.set_record(&keys.job(&job.id), &job.pack(), expire_ms)
        }
    }
}

/// Loads job `id` for a command that may finish it (ACK, FAIL, CANCEL, DELETE): also checks the
/// record of the batch it belongs to, so a corrupt batch is refused before the first write rather
/// than found half-way through.
pub(crate) fn load_job_to_finish(
    store: &mut dyn Store,
    keys: &QueueKeys,
    id: &str,
) -> Result<Option<Job>> {
    let job = load_job(store, keys, id)?;
    if let Some(batch) = job.as_ref().and_then(|j| j.batch.as_deref()) {
        flow::load_batch(store, keys, batch)?;
    }
    Ok(job)
}

/// Reads the value of a `LEASE` option: a lease token as FETCH or RECLAIM handed it out.
pub(crate) fn lease_token(value: &[u8]) -> Result<&str> {
    args::name("LEASE", value)
}

/// The loaded `job` if it is active and, when the caller gave a lease token, still held under that
/// token; `None` otherwise. What ACK, FAIL, TOUCH and RELEASE act on: a worker whose lease was
/// taken over learns it from the "not active" reply, and nothing changes. Without a token the
/// command acts on any active job (an operator's override).
pub(crate) fn held(job: Option<Job>, lease: Option<&str>) -> Option<Job> {
    job.filter(|job| {
        job.state == State::Active && lease.is_none_or(|token| job.lease.as_deref() == Some(token))
    })
}

/// The lease token of a delivery: `<stream entry>:<attempt>`, where the entry is the one the job
/// was last delivered from: its `entry` field while it is pending, and the entry part of its
/// current lease when a running job is taken over (RECLAIM), whose entry left the stream when it
/// was delivered. Entry ids never repeat within a stream, and within one entry each delivery has
/// a higher attempt (a job that goes back to pending for any reason gets a new entry), so a token
/// never repeats for a job. It is computed from the record, on the primary, and reaches replicas
/// as the SET of its record.
fn new_lease(job: &Job) -> String {
    let from_lease = || {
        job.lease
            .as_deref()
            .and_then(|lease| lease.rsplit_once(':'))
            .map(|(entry, _)| entry)
    };
    let entry = job.entry.as_deref().or_else(from_lease).unwrap_or("0-0");
    let attempt = job.attempt.to_string();
    let mut token = String::with_capacity(entry.len() + 1 + attempt.len());
    token.push_str(entry);
    token.push(':');
    token.push_str(&attempt);
    token
}

/// The job's next state after `event`, or an internal error (callers check legality first).
pub(crate) fn next_state(job: &Job, event: Event) -> Result<State> {
    job.state.after(event).ok_or_else(|| {
        ZrqError::internal(&format!("illegal transition: {} on {event:?}", job.state))
    })
}

/// Announces a state change on the queue's channel: `<state> <id>`.
pub(crate) fn announce(
    store: &mut dyn Store,
    keys: &QueueKeys,
    id: &str,
    state: State,
) -> Result<()> {
    store.announce(&keys.events(), id, state)
}

/// Appends job `id` to the stream of its priority (creating the stream and its group if needed)
/// and wakes blocked workers; returns the entry id.
pub(crate) fn push_entry(
    store: &mut dyn Store,
    keys: &QueueKeys,
    id: &str,
    priority: i64,
) -> Result<String> {
    push_fields(store, keys, priority, &[(ENTRY_FIELD, id)])
}

/// Appends an entry of `fields` to the stream of `priority` (creating the stream and its group if
/// needed) and wakes blocked workers; returns the entry id. A reference entry names its job
/// ([`push_entry`]); an inline entry holds it ([`Job::entry_fields`]). The streams' types are
/// checked (`WRONGTYPE`) before anything is written, so a command whose first write this is
/// need not look them up before.
pub(crate) fn push_fields(
    store: &mut dyn Store,
    keys: &QueueKeys,
    priority: i64,
    fields: &[(&str, &str)],
) -> Result<String> {
    // Workers block on the priority-0 stream, so it exists whenever any priority has jobs.
    let base = keys.stream();
    let stream = if priority == 0 {
        None
    } else {
        Some(keys.stream_at(priority))
    };
    let mut missing = Vec::with_capacity(2);
    for key in std::iter::once(&base).chain(&stream) {
        if !exists_as(store, key, KeyType::Stream)? {
            missing.push(key);
        }
    }
    for key in missing {
        store.create_stream_with_group(key, GROUP)?;
    }
    let entry = store.xadd(stream.as_ref().unwrap_or(&base), fields)?;
    if stream.is_some() {
        store.signal(&base);
    }
    Ok(entry)
}

/// Moves a job (already out of its index, or unlinked) into its stream: a scheduled, retrying or
/// dead job, or an active one given back or whose lease expired. Writes its record ([`save`]),
/// with whatever else the caller changed in `job` before.
pub(crate) fn make_pending(
    store: &mut dyn Store,
    keys: &QueueKeys,
    job: &mut Job,
    event: Event,
) -> Result<()> {
    job.state = next_state(job, event)?;
    let entry = push_entry(store, keys, &job.id, job.priority)?;
    job.entry = Some(entry);
    job.run_at = None;
    save(store, keys, job, None)?;
    announce(store, keys, &job.id, job.state)
}

/// The lease deadlines of the attempts one command starts (FETCH and RECLAIM start up to a page
/// of them), written to the lease index together when the command is done with them
/// ([`Leases::register`]): one write of the index and one timer wake-up for the page, where a
/// write per job measured ~8.7k instructions, a third of it its replication.
#[derive(Debug, Default)]
pub(crate) struct Leases {
    deadlines: Vec<(i64, String)>,
}

impl Leases {
    /// Writes the collected leases to the queue's `active` index and tells the timer of the
    /// earliest deadline. Nothing to write, nothing done.
    pub(crate) fn register(self, store: &mut dyn Store, keys: &QueueKeys) -> Result<()> {
        let Some(earliest) = self.deadlines.iter().map(|(deadline, _)| *deadline).min() else {
            return Ok(());
        };
        let members: Vec<(i64, &str)> = self
            .deadlines
            .iter()
            .map(|(deadline, id)| (*deadline, id.as_str()))
            .collect();
        store.zadd_many(&keys.active(), &members)?;
        store.wake_at(keys.queue(), earliest);
        Ok(())
    }
}

/// Starts a new attempt of `job` for `consumer`: the job becomes active and gets a fresh lease,
/// whose deadline goes to `leases` (the caller registers them once it has started them all).
/// A job delivered from its stream entry loses its `entry` field: FETCH delivered the entry
/// without acknowledgement and trims it, so a running job has no entry (the stream holds only
/// pending jobs).
pub(crate) fn start_attempt(
    store: &mut dyn Store,
    keys: &QueueKeys,
    job: &mut Job,
    consumer: &str,
    event: Event,
    leases: &mut Leases,
) -> Result<()> {
    let now = store.now_ms();
    job.state = next_state(job, event)?;
    job.attempt += 1;
    job.consumer = Some(consumer.to_string());
    job.started_at = Some(now);
    job.lease = Some(new_lease(job));
    // One write of the whole record, whether the job had one (a job delivered from its inline
    // entry gets its first here).
    job.entry = None;
    save(store, keys, job, None)?;
    leases
        .deadlines
        .push((now.saturating_add(job.timeout), job.id.clone()));
    announce(store, keys, &job.id, job.state)
}

/// What an expired lease does to job `id` (RECLAIM, and the timer): it counts as a failed
/// attempt, with an error saying so. A job whose cancellation was requested ends `cancelled`; one
/// without attempts left ends `dead`. Returns the job when it has attempts left and is still
/// active, with the error set but not written: the caller starts its next attempt or puts it back
/// in its stream, which writes the record once. A lease without an
/// active job behind it (a record deleted by hand) is dropped. `job` is the record of `id` as
/// [`load_leased`] read it.
pub(crate) fn expire_lease(
    store: &mut dyn Store,
    keys: &QueueKeys,
    id: &str,
    job: Option<Job>,
) -> Result<Option<Job>> {
    let Some(mut job) = job.filter(|j| j.state == State::Active) else {
        store.zrem(&keys.active(), id)?;
        return Ok(None);
    };
    let error = format!(
        "lease expired after {} ms (attempt {} of {}, consumer {})",
        job.timeout,
        job.attempt,
        job.max_attempts,
        job.consumer.as_deref().unwrap_or("?")
    );
    store.hincrby(&keys.stats(), "failed", 1)?;
    let ending = if job.cancel_requested.is_some() {
        Event::Abandon
    } else if job.attempt >= job.max_attempts {
        Event::Exhaust
    } else {
        job.error = Some(error);
        return Ok(Some(job));
    };
    finish(store, keys, &mut job, ending, Ending::error(&error))?;
    Ok(None)
}

/// The record of job `id`, whose lease expired, for [`expire_lease`]: `None` when it cannot be read.
pub(crate) fn load_leased(store: &mut dyn Store, keys: &QueueKeys, id: &str) -> Option<Job> {
    load_job(store, keys, id).ok().flatten()
}

/// Takes `job` out of the structure that holds it while it is unfinished, by the state it is in
/// (`job.state`, still the state it leaves): its stream entry if it is pending, its lease if it is
/// active, the waiting, scheduled or retrying index ([`QueueKeys::index_of`]). Only that index:
/// each of the others would cost a lookup on every ACK and find nothing (DELETE, which may meet
/// any record, removes the id from every index itself).
///
/// A running job has no entry: FETCH delivered it without acknowledgement and trimmed it. Only a
/// job delivered by an older zrq (which kept running jobs in the stream and in the group's
/// pending-entries list) is active with an entry: it is acknowledged, so the pending list
/// empties, and deleted if a FETCH has not trimmed it yet.
///
/// The job's `entry` is cleared in `job` only: the caller writes the record ([`save`]) once it
/// has made all its changes (or deletes it).
pub(crate) fn unlink(store: &mut dyn Store, keys: &QueueKeys, job: &mut Job) -> Result<()> {
    if let Some(entry) = job.entry.take() {
        let stream = keys.stream_at(job.priority);
        // Only a pending job's entry is known to be undelivered.
        if job.state == State::Pending {
            store.xdel(&stream, &entry)?;
        } else {
            store.xack_del(&stream, GROUP, &entry)?;
        }
    }
    match keys.index_of(job.state) {
        Some(index) => store.zrem(&index, &job.id),
        None => Ok(()),
    }
}

/// Ends `job` in a final state reached by `event` (see [`finish_one`]), then settles what depended
/// on it: waiting children and its batch (see [`flow::settle`]).
pub(crate) fn finish(
    store: &mut dyn Store,
    keys: &QueueKeys,
    job: &mut Job,
    event: Event,
    ending: Ending<'_>,
) -> Result<()> {
    finish_one(store, keys, job, event, ending)?;
    flow::settle(store, keys, job, ending.result)
}

/// What a job's ending records besides its state and time: the worker's result (ACK) or the
/// error that ended it (FAIL, an expired lease, a failed parent).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Ending<'a> {
    /// The result the worker gave, if any.
    pub(crate) result: Option<&'a str>,
    /// Why the job ended, if it failed or was cancelled for a reason.
    pub(crate) error: Option<&'a str>,
}

impl<'a> Ending<'a> {
    /// An ending that records `error`.
    pub(crate) fn error(error: &'a str) -> Self {
        Ending {
            result: None,
            error: Some(error),
        }
    }
}

/// Ends `job` in a final state reached by `event`: unlinks it, records its `ending`, files it in the
/// state's index (completed and cancelled jobs expire after their retention; dead jobs are kept up
/// to the per-queue cap), frees its UNIQUE key, counts it, wakes RESULT waiters and announces it.
pub(crate) fn finish_one(
    store: &mut dyn Store,
    keys: &QueueKeys,
    job: &mut Job,
    event: Event,
    ending: Ending<'_>,
) -> Result<()> {
    let state = next_state(job, event)?;
    unlink(store, keys, job)?;
    let now = store.now_ms();
    if let Some(result) = ending.result {
        job.result = Some(result.to_string());
    }
    if let Some(error) = ending.error {
        job.error = Some(error.to_string());
    }
    job.state = state;
    job.finished_at = Some(now);
    let config = store.config();
    let keep = job.keep.unwrap_or(config.keep_ms).max(1);
    if kept_in_records(store, keys, job, state) {
        keep_in_records(store, keys, job)?;
        return finish_counted(store, keys, job, state);
    }
    // A completed or cancelled job with a retention of its own expires after it: the record is
    // written with its TTL in the same SET (PX). A dead job keeps its record (up to the
    // per-queue cap).
    let retention = (state != State::Dead).then_some(keep);
    // A job held by its inline entry (unlinked above) gets its first record here.
    save(store, keys, job, retention)?;
    match state {
        State::Dead => {
            store.zadd(&keys.dead(), now, &job.id)?;
            let excess = store.zcard(&keys.dead())? - config.dead_max;
            if excess > 0 {
                for victim in store.zrange(&keys.dead(), 0, excess)? {
                    store.zrem(&keys.dead(), &victim)?;
                    store.del(&keys.job(&victim))?;
                }
                store.hincrby(&keys.stats(), "dropped", excess)?;
            }
        }
        _ => {
            // The timer woken here drops the index entry when the record's TTL ends
            // (expire_finished): finishing a job does not sweep the index itself.
            let index = if state == State::Completed {
                keys.completed()
            } else {
                keys.cancelled()
            };
            store.zadd(&index, now.saturating_add(keep), &job.id)?;
            store.wake_at(keys.queue(), now.saturating_add(keep));
        }
    }
    finish_counted(store, keys, job, state)
}

/// What every ending does last: frees the job's UNIQUE key, counts it, wakes RESULT waiters
/// (blocked on the name of its key, wherever its record is) and announces it.
fn finish_counted(store: &mut dyn Store, keys: &QueueKeys, job: &Job, state: State) -> Result<()> {
    release_unique(store, keys, job)?;
    store.hincrby(&keys.stats(), state.as_str(), 1)?;
    store.signal(&keys.job(&job.id));
    announce(store, keys, &job.id, state)
}

/// Files a job that just ended completed or cancelled (`job.state`), kept for the queue's
/// retention, in its state's log and records hash ([`Place::Records`]): the log entry first,
/// whose time becomes the job's `finished_at` (so the two always agree: retention and DELETE find
/// the entry from the record), then its own key (a running job's record) deleted and the record
/// written as a field of the hash. The timer comes back when the retention ends.
fn keep_in_records(store: &mut dyn Store, keys: &QueueKeys, job: &mut Job) -> Result<()> {
    let (Some(records), Some(log)) = (keys.records(job.state), keys.log(job.state)) else {
        return Err(ZrqError::internal("no records hash for a final state"));
    };
    let entry = store.xadd(&log, &[(LOG_FIELD, &job.id)])?;
    let finished = entry_id(&entry)
        .and_then(|(ms, _)| i64::try_from(ms).ok())
        .unwrap_or(store.now_ms());
    job.finished_at = Some(finished);
    if job.place == Place::Key {
        store.del(&keys.job(&job.id))?;
    }
    job.place = Place::Records;
    store.hset(&records, &[(&job.id, &job.pack())])?;
    let keep = store.config().keep_ms.max(1);
    store.wake_at(keys.queue(), finished.saturating_add(keep));
    Ok(())
}

/// The field of a log entry ([`QueueKeys::log`]) that names its job.
pub const LOG_FIELD: &str = "id";

/// Drops index entries of finished jobs whose retention has passed (their records expire by
/// themselves through their TTL), about [`promote::BATCH`] per index at most: a pile of them (a
/// server back after a long downtime) is worked off in steps, the timer coming back at once.
pub(crate) fn expire_finished(store: &mut dyn Store, keys: &QueueKeys, now: i64) -> Result<()> {
    store.zremrange_upto(&keys.completed(), now, promote::BATCH)?;
    store.zremrange_upto(&keys.cancelled(), now, promote::BATCH)?;
    let keep = store.config().keep_ms.max(1);
    for state in State::KEPT {
        expire_kept(store, keys, state, now, keep)?;
    }
    Ok(())
}

/// Drops the jobs of `state` kept in its records hash whose retention (`keep` ms after the time
/// of their log entry, the queue's `zrq.keep-ms` as it is now) has passed: up to
/// [`promote::BATCH`] of them from the head of the log: their fields (one `HDEL`), then the log
/// up to the first entry still kept (one exact trim). A log entry whose record is gone (deleted by
/// hand) is trimmed all the same.
fn expire_kept(
    store: &mut dyn Store,
    keys: &QueueKeys,
    state: State,
    now: i64,
    keep: i64,
) -> Result<()> {
    let (Some(records), Some(log)) = (keys.records(state), keys.log(state)) else {
        return Ok(());
    };
    let mut last = None;
    let mut ids = Vec::new();
    for (entry, mut fields) in store.xrange_after(&log, None, promote::BATCH)? {
        if kept_until(&entry, keep).is_none_or(|end| end > now) {
            break;
        }
        if let Some(at) = fields.iter().position(|(f, _)| f == LOG_FIELD) {
            ids.push(fields.swap_remove(at).1);
        }
        last = Some(entry);
    }
    if !ids.is_empty() {
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        store.hdel(&records, &ids)?;
    }
    if let Some(below) = last.as_deref().and_then(entry_after) {
        store.xtrim_below(&log, &below)?;
    }
    Ok(())
}

/// When the retention of the job of log entry `entry` ends, `keep` ms after the entry's time.
fn kept_until(entry: &str, keep: i64) -> Option<i64> {
    let (ms, _) = entry_id(entry)?;
    i64::try_from(ms).ok().map(|ms| ms.saturating_add(keep))
}

/// When the earliest retention of the jobs of `state` kept in its records hash ends (`None`
/// when the log is empty or missing): the timer's next due time for them.
pub(crate) fn next_kept_expiry(
    store: &mut dyn Store,
    keys: &QueueKeys,
    state: State,
) -> Result<Option<i64>> {
    let Some(log) = keys.log(state) else {
        return Ok(None);
    };
    let keep = store.config().keep_ms.max(1);
    Ok(store
        .xrange_after(&log, None, 1)?
        .first()
        .and_then(|(entry, _)| kept_until(entry, keep)))
}

/// Removes job `id`, kept in the records hash of `state` and finished at `finished` (the time
/// of its log entry), from both: its field, and its entry among the log's entries of that
/// millisecond (as many as jobs ended in it).
pub(crate) fn drop_kept(
    store: &mut dyn Store,
    keys: &QueueKeys,
    id: &str,
    state: State,
    finished: Option<i64>,
) -> Result<()> {
    let (Some(records), Some(log)) = (keys.records(state), keys.log(state)) else {
        return Ok(());
    };
    store.hdel(&records, &[id])?;
    let Some(ms) = finished.and_then(|at| u64::try_from(at).ok()) else {
        return Ok(());
    };
    let mut after = ms
        .checked_sub(1)
        .map(|before| format!("{before}-{}", u64::MAX));
    loop {
        let page = store.xrange_after(&log, after.as_deref(), promote::BATCH)?;
        let Some((last, _)) = page.last() else {
            return Ok(());
        };
        let last = last.clone();
        for (entry, fields) in page {
            if entry_id(&entry).is_none_or(|(at, _)| at != ms) {
                return Ok(());
            }
            if fields.iter().any(|(f, v)| f == LOG_FIELD && v == id) {
                return store.xdel(&log, &entry);
            }
        }
        after = Some(last);
    }
}

/// Frees the job's UNIQUE key if the job holds it.
pub(crate) fn release_unique(store: &mut dyn Store, keys: &QueueKeys, job: &Job) -> Result<()> {
    if let Some(unique) = &job.unique {
        if store.hget(&keys.unique(), unique)?.as_deref() == Some(job.id.as_str()) {
            store.hdel(&keys.unique(), &[unique])?;
        }
    }
    Ok(())
}

/// A page of results: `[next-cursor, items]`, where cursor `0` means the end.
pub(crate) fn page(next: String, items: Vec<Reply>) -> Reply {
    Reply::Array(vec![Reply::Bulk(next), Reply::Array(items)])
}

/// The next cursor of a page of a sorted set listed by rank: the rank after it, `0` at the end.
/// A rank costs O(log n) to reach in a sorted set, so such a cursor is cheap however deep.
pub(crate) fn next_rank(cursor: i64, count: i64, total: i64) -> String {
    let next = cursor.saturating_add(count);
    if next < total { next } else { 0 }.to_string()
}

/// A cursor that is a rank in a sorted set: an integer from 0.
pub(crate) fn rank_cursor(raw: &[u8]) -> Result<i64> {
    args::integer("CURSOR", raw, 0, i64::MAX)
}

/// `COUNT` and `CURSOR` options of paged commands; `cursor` reads the cursor (its kind depends on
/// what is listed), `start` is the cursor of the first page.
pub(crate) fn paging<'a, C>(
    options: &mut args::Options<'a>,
    start: C,
    cursor: impl Fn(&'a [u8]) -> Result<C>,
) -> Result<(i64, C)> {
    let (mut count, mut at) = (PAGE_DEFAULT_COUNT, start);
    while let Some((option, value)) = options.next(&PAGE_OPTIONS)? {
        match option {
            "COUNT" => count = args::integer("COUNT", value, 1, MAX_COUNT)?,
            _ => at = cursor(value)?,
        }
    }
    Ok((count, at))
}

/// The reading budget of one paged command (`zrq.reply-max-bytes`): the text bytes of the job
/// records it reads ([`Job::text_bytes`]). A page stops before the record that would pass the
/// budget, once it has handled one, so every call makes progress however large one record is.
pub(crate) struct Budget {
    max: i64,
    used: i64,
    handled: bool,
}

impl Budget {
    /// A fresh budget of `zrq.reply-max-bytes`.
    pub(crate) fn new(store: &dyn Store) -> Budget {
        Budget {
            max: store.config().reply_max_bytes,
            used: 0,
            handled: false,
        }
    }

    /// Counts a record of `bytes` the page is about to handle; `false` (counting nothing) when
    /// the page has handled one already and this one would pass the budget: the page ends.
    pub(crate) fn admit(&mut self, bytes: i64) -> bool {
        let used = self.used.saturating_add(bytes);
        if self.handled && used > self.max {
            return false;
        }
        self.used = used;
        self.handled = true;
        true
    }
}

/// Loads the jobs behind `ids` in order, skipping ids whose record is gone, until the budget
/// ends the page; returns them and how many ids the page covered (all of them unless it ended).
pub(crate) fn load_jobs(
    store: &mut dyn Store,
    keys: &QueueKeys,
    ids: &[String],
) -> Result<(Vec<Reply>, usize)> {
    load_page(store, ids.iter(), |store, id| load_job(store, keys, id))
}

/// The jobs `load` reads from `items`, in order, skipping items without one, until the budget
/// ends the page: each is read only once the page has room for the one before it. Returns them
/// and how many items the page covered (all of them unless it ended).
pub(crate) fn load_page<T>(
    store: &mut dyn Store,
    items: impl ExactSizeIterator<Item = T>,
    mut load: impl FnMut(&mut dyn Store, T) -> Result<Option<Job>>,
) -> Result<(Vec<Reply>, usize)> {
    let total = items.len();
    let mut budget = Budget::new(store);
    let mut jobs = Vec::with_capacity(total);
    for (n, item) in items.enumerate() {
        if let Some(job) = load(store, item)? {
            if !budget.admit(job.text_bytes()) {
                return Ok((jobs, n));
            }
            jobs.push(job.to_reply());
        }
    }
    Ok((jobs, total))
}
