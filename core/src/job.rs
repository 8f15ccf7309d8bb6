//! The job record: one Redis string per job, `zrq:{queue}:job:<id>`, holding its fields packed
//! ([`crate::packed`]; a hash of its fields in the earlier format, still read) — but for a plain
//! pending job, which its stream entry holds (an *inline entry*, [`Job::from_entry`]) until a
//! command writes its record (FETCH, CANCEL, an `AFTER` child registering with it).
//!
//! Every field is stored as text. [`FIELDS`] is the one definition of the field names and which of
//! them are integers; replies return integer fields as integers and leave out absent fields.
//!
//! The stored record is compact: it leaves out what its place says ([`DERIVED`]: the key names
//! the id, the command's queue the queue) and every field that holds its default ([`DEFAULTS`]).
//! Readers fill both in, so replies carry every field as before. Records written by earlier
//! versions (with `id`, `queue` and the defaults stored) read the same; their stored `id` and
//! `queue` are checked against the place they are read from.

use std::borrow::Cow;

use crate::keys::MAX_PRIORITY;
use crate::state::State;
use crate::{Reply, Result, ZrqError};

/// How a field's value is typed in replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// Returned as a bulk string.
    Text,
    /// Stored as decimal text, returned as an integer.
    Integer,
}

/// Every field of a job record, in documentation order.
pub const FIELDS: &[(&str, FieldKind)] = &[
    ("id", FieldKind::Text),
    ("queue", FieldKind::Text),
    ("task", FieldKind::Text),
    ("payload", FieldKind::Text),
    ("state", FieldKind::Text),
    ("attempt", FieldKind::Integer),
    ("max_attempts", FieldKind::Integer),
    ("timeout", FieldKind::Integer),
    ("priority", FieldKind::Integer),
    ("backoff", FieldKind::Integer),
    ("keep", FieldKind::Integer),
    ("unique", FieldKind::Text),
    ("parents", FieldKind::Text),
    ("children", FieldKind::Text),
    ("waiting_on", FieldKind::Integer),
    ("parents_done", FieldKind::Text),
    ("with_results", FieldKind::Integer),
    ("on_parent_fail", FieldKind::Text),
    ("batch", FieldKind::Text),
    ("schedule", FieldKind::Text),
    ("created_at", FieldKind::Integer),
    ("run_at", FieldKind::Integer),
    ("started_at", FieldKind::Integer),
    ("finished_at", FieldKind::Integer),
    ("consumer", FieldKind::Text),
    ("lease", FieldKind::Text),
    ("progress", FieldKind::Integer),
    ("cancel_requested", FieldKind::Integer),
    ("entry", FieldKind::Text),
    ("result", FieldKind::Text),
    ("error", FieldKind::Text),
];

/// Extra attempts after the first when `RETRIES` is not given.
pub const DEFAULT_RETRIES: i64 = 3;
/// Lease length in ms when `TIMEOUT` is not given.
pub const DEFAULT_TIMEOUT_MS: i64 = 30_000;

/// Fields a record does not store: the id is in the record's key, the queue in the key's hash tag
/// (and in the command that reads it). Records written before the compact format store them.
pub const DERIVED: [&str; 2] = ["id", "queue"];

/// The integer fields that have a default, and the default: a field absent from a record holds
/// it, and a field set to it is not stored (a write of the default deletes the field).
pub const DEFAULTS: [(&str, i64); 4] = [
    ("attempt", 0),
    ("max_attempts", DEFAULT_RETRIES + 1),
    ("timeout", DEFAULT_TIMEOUT_MS),
    ("priority", 0),
];

/// The default of integer field `name`, if it has one ([`DEFAULTS`]).
pub fn default_of(name: &str) -> Option<i64> {
    DEFAULTS.iter().find(|(f, _)| *f == name).map(|(_, v)| *v)
}

/// Whether `value` is the default of field `name`: such a value is left out of the record.
pub fn is_default(name: &str, value: i64) -> bool {
    default_of(name) == Some(value)
}

/// Where a job's record is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// Nowhere yet: a plain pending job, which its stream entry holds (an inline entry, see
    /// [`Job::from_entry`]); the first command that changes it writes its whole record, as every
    /// write of a record is (`save` in the commands).
    Entry,
    /// Its own key, `job:<id>`.
    Key,
    /// A field of the records hash of its final state (`completed:records`,
    /// `cancelled:records`): a job kept for the queue's retention. The hash says its state, so
    /// the record does not store it.
    Records,
}

/// A job as read (its record with the derived fields and the defaults filled in).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// The job id: generated from its first stream entry for a plain job ([`inline_id`]), else
    /// UUIDv7 unless the producer chose one.
    pub id: String,
    /// The queue it belongs to.
    pub queue: String,
    /// The task name that selects the handler.
    pub task: String,
    /// The task's arguments, a JSON document.
    pub payload: String,
    /// Where the job is in its life.
    pub state: State,
    /// Attempts started so far (0 until first fetched).
    pub attempt: i64,
    /// Attempts allowed in all: `RETRIES` + 1.
    pub max_attempts: i64,
    /// Lease length in ms: how long a worker may hold the job before it may be reclaimed.
    pub timeout: i64,
    /// Its priority, 0 to 9; higher runs first.
    pub priority: i64,
    /// Base of its exponential retry backoff in ms, when set at enqueue (else the module config).
    pub backoff: Option<i64>,
    /// How long it is kept once finished, in ms, when set at enqueue (else the module config).
    pub keep: Option<i64>,
    /// Its UNIQUE key, held while it is unfinished.
    pub unique: Option<String>,
    /// Its parents (`AFTER`), a JSON object: parent id → the parent's result once it completed
    /// (when enqueued `WITHRESULTS`), else null.
    pub parents: Option<String>,
    /// Jobs waiting for this one, a JSON array of ids.
    pub children: Option<String>,
    /// How many parents have not finished yet (while `waiting`).
    pub waiting_on: Option<i64>,
    /// The parents already counted, a JSON array of ids: each parent counts once, even if it
    /// is requeued and finishes again.
    pub parents_done: Option<String>,
    /// 1 when enqueued `WITHRESULTS`: parents' results are copied into `parents`.
    pub with_results: Option<i64>,
    /// What happens when a parent ends dead or cancelled: `cancel` (default) or `run`.
    pub on_parent_fail: Option<String>,
    /// The batch it belongs to.
    pub batch: Option<String>,
    /// The recurring schedule whose tick enqueued it (`ZRQ.SCHEDULE`'s name).
    pub schedule: Option<String>,
    /// When it was enqueued (unix ms).
    pub created_at: i64,
    /// When it is due, while scheduled or retrying (unix ms).
    pub run_at: Option<i64>,
    /// When the current attempt started (unix ms).
    pub started_at: Option<i64>,
    /// When it reached a final state (unix ms).
    pub finished_at: Option<i64>,
    /// The worker that holds or last held it.
    pub consumer: Option<String>,
    /// The lease token of the current (or last) delivery: workers send it back with `LEASE` so
    /// that a worker whose lease was taken over cannot act on the job any more.
    pub lease: Option<String>,
    /// Progress reported by its worker, 0 to 100.
    pub progress: Option<i64>,
    /// 1 when a cancellation was requested while it ran.
    pub cancel_requested: Option<i64>,
    /// Its stream entry id while it is in the stream.
    pub entry: Option<String>,
    /// The result JSON given on ACK.
    pub result: Option<String>,
    /// The last error.
    pub error: Option<String>,
    /// Where the job's record is stored, and so where a write of it goes.
    pub place: Place,
}

/// Record fields an inline entry leaves out: what its place says (the state is `pending`, the
/// creation time is the entry id's time, the priority is the stream's, the entry is itself).
pub const ENTRY_DERIVED: [&str; 4] = ["state", "created_at", "priority", "entry"];

/// The id of the job held by inline entry `entry` of the stream of `priority`: the entry id
/// (`<ms>-<seq>`) for priority 0, `p<priority>:<ms>-<seq>` for the others.
pub fn inline_id(priority: i64, entry: &str) -> String {
    if priority == 0 {
        entry.to_string()
    } else {
        format!("p{priority}:{entry}")
    }
}

/// Splits a generated form, `<digits>-<digits>` or `p<1-9>:<digits>-<digits>`, into its priority
/// and entry part, however many digits.
fn generated_parts(id: &str) -> Option<(i64, &str)> {
    let (priority, entry) = match id.strip_prefix('p') {
        Some(rest) => {
            let (digit, entry) = rest.split_once(':')?;
            match digit.as_bytes() {
                [d @ b'1'..=b'9'] => (i64::from(d - b'0'), entry),
                _ => return None,
            }
        }
        None => (0, id),
    };
    let (ms, seq) = entry.split_once('-')?;
    let digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    (digits(ms) && digits(seq)).then_some((priority, entry))
}

/// Whether `id` has the form of a generated job id (`^[0-9]+-[0-9]+$` or
/// `^p[1-9]:[0-9]+-[0-9]+$`): a producer may not choose such an id (`ID`), so a generated id
/// never meets a producer's.
pub fn has_generated_form(id: &str) -> bool {
    generated_parts(id).is_some()
}

/// The priority and stream entry id of the inline entry a generated job id names, if `id` is
/// one [`inline_id`] gives: of the generated form, with numbers that are stream id parts (below
/// 2^64) written without leading zeros, so the entry found has the id asked for.
pub fn inline_entry(id: &str) -> Option<(i64, &str)> {
    inline_parts(id).map(|(priority, entry, _)| (priority, entry))
}

/// [`inline_entry`], with the entry's time (its ms part): what [`generated_defaults`] needs,
/// found in the same pass. Every record read and write asks (measured ~750 instructions through
/// [`generated_parts`], `split_once` and [`crate::store::entry_id`]; ~2k with `format!`), so
/// the id is read once, byte by byte: `p<1-9>:` or nothing, then the entry, whose numbers are
/// digits only, without a leading zero and each a u64 ([`crate::store::entry_parts`]).
fn inline_parts(id: &str) -> Option<(i64, &str, u64)> {
    let (priority, entry) = match id.as_bytes() {
        [b'p', digit @ b'1'..=b'9', b':', ..] => (i64::from(digit - b'0'), id.get(3..)?),
        _ => (0, id),
    };
    let (ms, _, canonical) = crate::store::entry_parts(entry)?;
    canonical.then_some((priority, entry, ms))
}

/// A new job id for a job that is not plain (scheduled or waiting at ENQUEUE): a time-ordered
/// UUID (version 7), so ids sort by creation time.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// The position of field `name` in [`FIELDS`], if it is one: a `match`, which the compiler turns
/// into a few comparisons, where a search of the list compares names one by one (reading a record
/// looked each of its fields up so: ~2k instructions a record). A test checks it against the list.
fn field_index(name: &str) -> Option<usize> {
    Some(match name {
        "id" => 0,
        "queue" => 1,
        "task" => 2,
        "payload" => 3,
        "state" => 4,
        "attempt" => 5,
        "max_attempts" => 6,
        "timeout" => 7,
        "priority" => 8,
        "backoff" => 9,
        "keep" => 10,
        "unique" => 11,
        "parents" => 12,
        "children" => 13,
        "waiting_on" => 14,
        "parents_done" => 15,
        "with_results" => 16,
        "on_parent_fail" => 17,
        "batch" => 18,
        "schedule" => 19,
        "created_at" => 20,
        "run_at" => 21,
        "started_at" => 22,
        "finished_at" => 23,
        "consumer" => 24,
        "lease" => 25,
        "progress" => 26,
        "cancel_requested" => 27,
        "entry" => 28,
        "result" => 29,
        "error" => 30,
        _ => return None,
    })
}

/// A record's values by their position in [`FIELDS`], as read and not yet checked: owned
/// strings (a hash's fields, an entry's), or borrowed from a packed record's bytes.
type Slots<V> = [Option<V>; FIELDS.len()];

/// `fields` in their slots ([`Slots`]), each value moved (not copied: a payload may be large)
/// into the slot of its field; the first of a name counts, fields of no known name are left.
fn slots_of<N: AsRef<str>>(fields: Vec<(N, String)>) -> Slots<String> {
    let mut slots: Slots<String> = Default::default();
    for (name, value) in fields {
        if let Some(slot) = field_index(name.as_ref()).and_then(|i| slots.get_mut(i)) {
            if slot.is_none() {
                *slot = Some(value);
            }
        }
    }
    slots
}

/// The fields of packed record `raw` (stored at `key`) in their slots, borrowed from it:
/// `CORRUPT` as [`crate::packed::decode`] is. A packed record never stores a field twice.
fn packed_slots<'r>(key: &str, raw: &'r [u8]) -> Result<Slots<&'r str>> {
    let mut slots: Slots<&str> = Default::default();
    crate::packed::visit(key, raw, |tag, value| {
        if let Some(slot) = slots.get_mut(TAG_SLOTS[tag]) {
            *slot = Some(value);
        }
    })?;
    Ok(slots)
}

/// The position in [`FIELDS`] of each entry of [`crate::packed::TAGS`], worked out at compile
/// time.
const TAG_SLOTS: [usize; crate::packed::TAGS.len()] = {
    let mut out = [0; crate::packed::TAGS.len()];
    let mut t = 0;
    while t < out.len() {
        out[t] = position(crate::packed::TAGS[t].0);
        t += 1;
    }
    out
};

/// What a job's place says of it (an inline entry: its state, priority, time and entry; a
/// records hash: its state), given to [`Job::build`] in place of the stored fields of those
/// names, which are then not read.
#[derive(Default)]
struct Placed<'a> {
    state: Option<State>,
    priority: Option<i64>,
    created_at: Option<u64>,
    entry: Option<&'a str>,
}

/// A stored integer field; `CORRUPT` unless it is one.
pub(crate) fn integer_field(key: &str, field: &str, value: &str) -> Result<i64> {
    value
        .parse()
        .map_err(|_| ZrqError::corrupt(key, &format!("field '{field}' is not an integer")))
}

/// A stored name (an id, a batch, a UNIQUE key, a task): `CORRUPT` unless it follows the naming
/// rule. Stored names become parts of key names, so one the command would refuse is not used.
pub(crate) fn name_field(key: &str, field: &str, value: Option<String>) -> Result<Option<String>> {
    match value {
        Some(v) if crate::args::name(field, v.as_bytes()).is_err() => Err(ZrqError::corrupt(
            key,
            &format!("field '{field}' is not a valid name"),
        )),
        other => Ok(other),
    }
}

impl Job {
    /// Reads the record of job `id` of `queue` from its hash fields (as HGETALL returns them),
    /// stored at `key`. Fields left out are filled in: `id` and `queue` from where the record is,
    /// defaults from [`DEFAULTS`]. A record that stores `id` or `queue` (the format before the
    /// compact one) must agree with where it is stored, else it is `CORRUPT`: module key access is
    /// not checked by ACLs, so a stored name must never choose which keys are written. Unknown
    /// fields are ignored so that a newer zrq's records stay readable.
    pub fn from_fields<N: AsRef<str>>(
        key: &str,
        queue: &str,
        id: &str,
        fields: Vec<(N, String)>,
    ) -> Result<Job> {
        Job::from_slots(key, queue, id, slots_of(fields))
    }

    /// Reads the packed record ([`crate::packed`]) of job `id` of `queue`, stored at `key`, from
    /// its bytes: [`crate::packed::decode_tagged`] and then [`Job::from_fields`], the same job and
    /// the same errors (every fault of the packing first, then the record's, in [`FIELDS`]
    /// order), without a string made for each field: an integer field is parsed from the bytes,
    /// a text field copied once, into the job. Every command that reads a job reads a record:
    /// measured in ZRQ.ACK, reading the record this way (from Redis' own buffer) cost 4.75k
    /// instructions a job where decoding to fields and then [`Job::from_fields`] cost 5.8k.
    pub fn from_packed(key: &str, queue: &str, id: &str, raw: &[u8]) -> Result<Job> {
        Job::from_slots(key, queue, id, packed_slots(key, raw)?)
    }

    /// The job of a record at its own key (`key`), its fields in `slots`: nothing about it comes
    /// from where it is kept but its queue and id (see [`Job::build`]).
    fn from_slots<V: AsRef<str> + Into<String>>(
        key: &str,
        queue: &str,
        id: &str,
        mut slots: Slots<V>,
    ) -> Result<Job> {
        Job::build(
            key,
            queue,
            id.to_string(),
            &mut slots,
            Placed::default(),
            generated_defaults(id),
        )
    }

    /// The job kept for its queue's retention in the records hash of `state` (`key`, named in
    /// errors; see [`Place::Records`]), read from its packed record's bytes as [`Job::from_packed`]
    /// reads a record: the hash says its state, so a record that stores another is `CORRUPT`.
    pub fn from_packed_records(
        key: &str,
        queue: &str,
        id: &str,
        state: State,
        raw: &[u8],
    ) -> Result<Job> {
        let mut slots = packed_slots(key, raw)?;
        if slots[const { position("state") }].is_some_and(|stored| stored != state.as_str()) {
            return Err(ZrqError::corrupt(
                key,
                "field 'state' does not match its place",
            ));
        }
        let placed = Placed {
            state: Some(state),
            ..Placed::default()
        };
        let mut job = Job::build(
            key,
            queue,
            id.to_string(),
            &mut slots,
            placed,
            generated_defaults(id),
        )?;
        job.place = Place::Records;
        Ok(job)
    }

    /// Reads the pending job held by inline entry `entry` of the stream of `priority` (`stream`
    /// is its key, named in errors): its id from [`inline_id`], state `pending`, `created_at`
    /// the entry id's time, `entry` the entry itself, and the other fields from the entry's
    /// fields (defaults for the rest), as [`Job::from_fields`] reads a record. It has no record.
    /// The entry's own fields of those names are not read.
    pub fn from_entry(
        stream: &str,
        queue: &str,
        priority: i64,
        entry: &str,
        fields: Vec<(String, String)>,
    ) -> Result<Job> {
        let (created, _, canonical) = crate::store::entry_parts(entry)
            .ok_or_else(|| ZrqError::corrupt(stream, "an entry id is not a stream id"))?;
        // What the id `inline_id` gives says (`generated_defaults` of it), known without
        // reading the id again: an entry of canonical numbers in the stream of a priority 0-9.
        let generated = i64::try_from(created)
            .ok()
            .filter(|_| canonical && (0..=MAX_PRIORITY).contains(&priority))
            .map(|ms| (entry, ms));
        let placed = Placed {
            state: Some(State::Pending),
            priority: Some(priority),
            created_at: Some(created),
            entry: Some(entry),
        };
        let mut slots = slots_of(fields);
        let mut job = Job::build(
            stream,
            queue,
            inline_id(priority, entry),
            &mut slots,
            placed,
            generated,
        )?;
        job.place = Place::Entry;
        Ok(job)
    }

    /// The job of record `slots` (its fields' values by position in [`FIELDS`], taken), stored at
    /// `key`, with what its place says (`placed`, read instead of the stored fields of those
    /// names) and what its id says (`generated`, [`generated_defaults`]): every reading of a
    /// job ends here. The fields are checked in FIELDS order (after the state, the place's
    /// names and the priority), so a record with several faults is refused for the first, as
    /// the Lua library does; the lease, which needs the attempt, is filled in last.
    fn build<V: AsRef<str> + Into<String>>(
        key: &str,
        queue: &str,
        id: String,
        slots: &mut Slots<V>,
        placed: Placed<'_>,
        generated: Option<(&str, i64)>,
    ) -> Result<Job> {
        // Each field's slot by its position, worked out at compile time (`position`): looking the
        // names up again on every read measured ~1k instructions a record.
        macro_rules! get {
            ($name:literal) => {
                slots[const { position($name) }].take()
            };
        }
        let missing = |name: &str| ZrqError::corrupt(key, &format!("field '{name}' is missing"));
        let text = |value: Option<V>| value.map(Into::into);
        let required = |value: Option<V>, name: &str| text(value).ok_or_else(|| missing(name));
        // Integers are parsed from the value as read: no string is made for them.
        let int = |value: Option<V>, name: &str| -> Result<Option<i64>> {
            value
                .map(|v| integer_field(key, name, v.as_ref()))
                .transpose()
        };
        // A field left out holds its default.
        let defaulted = |value: Option<V>, name: &str| -> Result<i64> {
            Ok(int(value, name)?.or_else(|| default_of(name)).unwrap_or(0))
        };
        let state = match placed.state {
            Some(state) => state,
            None => {
                let stored = get!("state").ok_or_else(|| missing("state"))?;
                let stored = stored.as_ref();
                State::parse(stored)
                    .ok_or_else(|| ZrqError::corrupt(key, &format!("unknown state '{stored}'")))?
            }
        };
        if get!("queue").is_some_and(|stored| stored.as_ref() != queue) {
            return Err(ZrqError::corrupt(
                key,
                "field 'queue' does not name its queue",
            ));
        }
        if get!("id").is_some_and(|stored| stored.as_ref() != id) {
            return Err(ZrqError::corrupt(key, "field 'id' does not match its key"));
        }
        // The priority names the job's stream: one outside 0-9 would name a key zrq never uses.
        let priority = match placed.priority {
            Some(priority) => priority,
            None => defaulted(get!("priority"), "priority")?,
        };
        if !(0..=MAX_PRIORITY).contains(&priority) {
            return Err(ZrqError::corrupt(key, "field 'priority' is out of range"));
        }
        // What a generated id says is left out of its record (see `stored_values`).
        let lease = get!("lease");
        let mut job = Job {
            id,
            queue: queue.to_string(),
            task: required(get!("task"), "task")?,
            payload: required(get!("payload"), "payload")?,
            state,
            attempt: defaulted(get!("attempt"), "attempt")?,
            max_attempts: defaulted(get!("max_attempts"), "max_attempts")?,
            timeout: defaulted(get!("timeout"), "timeout")?,
            priority,
            backoff: int(get!("backoff"), "backoff")?,
            keep: int(get!("keep"), "keep")?,
            unique: name_field(key, "unique", text(get!("unique")))?,
            parents: text(get!("parents")),
            children: text(get!("children")),
            waiting_on: int(get!("waiting_on"), "waiting_on")?,
            parents_done: text(get!("parents_done")),
            with_results: int(get!("with_results"), "with_results")?,
            on_parent_fail: text(get!("on_parent_fail")),
            batch: name_field(key, "batch", text(get!("batch")))?,
            schedule: text(get!("schedule")),
            created_at: match placed.created_at {
                // As a stored value would be: one beyond an i64 is not an integer here.
                Some(ms) => i64::try_from(ms)
                    .map_err(|_| ZrqError::corrupt(key, "field 'created_at' is not an integer"))?,
                None => match int(get!("created_at"), "created_at")? {
                    Some(created) => created,
                    None => generated
                        .map(|(_, ms)| ms)
                        .ok_or_else(|| missing("created_at"))?,
                },
            },
            run_at: int(get!("run_at"), "run_at")?,
            started_at: int(get!("started_at"), "started_at")?,
            finished_at: int(get!("finished_at"), "finished_at")?,
            consumer: text(get!("consumer")),
            lease: None,
            progress: int(get!("progress"), "progress")?,
            cancel_requested: int(get!("cancel_requested"), "cancel_requested")?,
            entry: match placed.entry {
                Some(entry) => Some(entry.to_string()),
                None => text(get!("entry")),
            },
            result: text(get!("result")),
            error: text(get!("error")),
            place: Place::Key,
        };
        job.lease = match (lease, generated) {
            (Some(lease), _) if lease.as_ref().is_empty() => None,
            (Some(lease), _) => Some(lease.into()),
            (None, Some((entry, _))) if job.attempt >= 1 => Some(default_lease(entry, job.attempt)),
            (None, _) => None,
        };
        Ok(job)
    }

    /// The fields of the job's inline entry, in order: its record's fields ([`Job::to_fields`])
    /// without the [`ENTRY_DERIVED`] ones: `task`, `payload`, then the options that differ from
    /// their defaults.
    pub fn entry_fields(&self) -> Vec<(&'static str, Cow<'_, str>)> {
        self.stored_fields(const { mask(&DERIVED) | mask(&ENTRY_DERIVED) })
    }

    /// The bytes of the record's text fields: what reading it costs (most of all its payload,
    /// result and error), and what a reply carries. The measure of `zrq.reply-max-bytes`;
    /// integer fields are not counted. The Lua library counts the same.
    pub fn text_bytes(&self) -> i64 {
        let optional = [
            &self.unique,
            &self.parents,
            &self.children,
            &self.parents_done,
            &self.on_parent_fail,
            &self.batch,
            &self.schedule,
            &self.consumer,
            &self.lease,
            &self.entry,
            &self.result,
            &self.error,
        ];
        let bytes = [&self.id, &self.queue, &self.task, &self.payload]
            .iter()
            .map(|text| text.len())
            .chain(
                optional
                    .iter()
                    .filter_map(|text| text.as_ref().map(String::len)),
            )
            .sum::<usize>()
            + self.state.as_str().len();
        i64::try_from(bytes).unwrap_or(i64::MAX)
    }

    /// Whether parents' results are copied into `parents` (`WITHRESULTS`).
    pub fn with_results(&self) -> bool {
        self.with_results == Some(1)
    }

    /// The fields to store, as (name, text) pairs in [`FIELDS`] order (what the packed record
    /// holds, [`Job::pack`] writing the same directly, and an inline entry's fields): present
    /// fields but the [`DERIVED`] ones and those holding their default ([`DEFAULTS`]). A default
    /// is recognised before it is formatted.
    pub fn to_fields(&self) -> Vec<(&'static str, Cow<'_, str>)> {
        self.stored_fields(const { mask(&DERIVED) })
    }

    /// [`Job::to_fields`] less the fields of `left_out` (a [`mask`] of them), which are skipped
    /// before they are formatted (an inline entry's fields, [`Job::entry_fields`], leave out the
    /// creation time: made into a string and dropped, it measured ~0.5k instructions an ENQUEUE).
    fn stored_fields(&self, left_out: u64) -> Vec<(&'static str, Cow<'_, str>)> {
        let values = self.stored_values();
        let mut fields = Vec::with_capacity(values.iter().flatten().count());
        // By index, over references: zipping the arrays, which moves their items, measured
        // ~1k instructions a call.
        for (i, value) in values.iter().enumerate() {
            let value = match value {
                _ if left_out & (1 << i) != 0 => continue,
                None => continue,
                Some(ReplyValue::Int(n)) if PACKING[i].1 == Some(*n) => continue,
                Some(ReplyValue::Int(n)) => Cow::Owned(n.to_string()),
                Some(ReplyValue::Text(text)) => Cow::Borrowed(*text),
            };
            fields.push((FIELDS[i].0, value));
        }
        fields
    }

    /// The job's packed record ([`crate::packed`]): the fields [`Job::to_fields`] stores, in its
    /// order, each `<tag><length>:<value>`, one space between them — what
    /// `packed::encode(&job.to_fields())` makes, written straight into one string (every record
    /// write packs a job: measured ~7k instructions through `to_fields` and `encode`, which format
    /// each integer and each length into a string of its own).
    pub fn pack(&self) -> String {
        let values = self.stored_values();
        let size: usize = values
            .iter()
            .map(|value| match value {
                Some(ReplyValue::Text(text)) => text.len() + 14,
                Some(ReplyValue::Int(_)) => 26,
                None => 0,
            })
            .sum();
        // Bytes, made text once at the end: every piece is ASCII or a value that is text
        // already, so the one check of the whole record stands for one check of each number.
        let mut out: Vec<u8> = Vec::with_capacity(size);
        let mut digits = [0u8; 20];
        // By index, over references (see `stored_fields`).
        for (i, value) in values.iter().enumerate() {
            let (tag, default) = PACKING[i];
            let (Some(tag), Some(value)) = (tag, value) else {
                continue;
            };
            let value = match *value {
                ReplyValue::Int(n) if default == Some(n) => continue,
                ReplyValue::Int(n) => decimal_bytes(n.unsigned_abs(), n < 0, &mut digits),
                ReplyValue::Text(text) => text.as_bytes(),
            };
            push_field(&mut out, tag, value);
        }
        // Never fails (see above); were it to, the record would still be what was packed, with
        // U+FFFD for the bytes that are not text.
        String::from_utf8(out)
            .unwrap_or_else(|bad| String::from_utf8_lossy(bad.as_bytes()).into_owned())
    }

    /// The job as a reply map: every present field, the derived ones and defaults included, in
    /// [`FIELDS`] order; integers as integers. Each text is copied once, into the reply.
    pub fn to_reply(&self) -> Reply {
        let entries = FIELDS
            .iter()
            .zip(self.reply_values())
            .filter_map(|((name, _), value)| {
                Some((
                    *name,
                    match value? {
                        ReplyValue::Int(n) => Reply::Int(n),
                        ReplyValue::Text(text) => Reply::Bulk(text.to_string()),
                    },
                ))
            })
            .collect();
        Reply::Map(entries)
    }

    /// Every field the job has, in [`FIELDS`] order (the one list of them), as an integer or as
    /// borrowed text (`None`: absent): what [`Job::to_reply`] and [`Job::to_fields`] are made of,
    /// and what a caller that writes a reply itself writes, without copying.
    pub fn reply_values(&self) -> [Option<ReplyValue<'_>>; FIELDS.len()] {
        use ReplyValue::{Int, Text};
        fn text(v: &Option<String>) -> Option<ReplyValue<'_>> {
            v.as_deref().map(Text)
        }
        let int = |v: Option<i64>| v.map(Int);
        [
            Some(Text(&self.id)),
            Some(Text(&self.queue)),
            Some(Text(&self.task)),
            Some(Text(&self.payload)),
            Some(Text(self.state.as_str())),
            Some(Int(self.attempt)),
            Some(Int(self.max_attempts)),
            Some(Int(self.timeout)),
            Some(Int(self.priority)),
            int(self.backoff),
            int(self.keep),
            text(&self.unique),
            text(&self.parents),
            text(&self.children),
            int(self.waiting_on),
            text(&self.parents_done),
            int(self.with_results),
            text(&self.on_parent_fail),
            text(&self.batch),
            text(&self.schedule),
            Some(Int(self.created_at)),
            int(self.run_at),
            int(self.started_at),
            int(self.finished_at),
            text(&self.consumer),
            text(&self.lease),
            int(self.progress),
            int(self.cancel_requested),
            text(&self.entry),
            text(&self.result),
            text(&self.error),
        ]
    }

    /// [`Job::reply_values`] as a record stores them: without what a generated id already says
    /// ([`generated_defaults`]). `created_at` is left out when it is the id's time, and the lease
    /// when it is the id's default lease. A job with attempts whose lease is absent (a record
    /// from before leases) stores it empty, so that reading it back does not give it the default.
    fn stored_values(&self) -> [Option<ReplyValue<'_>>; FIELDS.len()] {
        let mut values = self.reply_values();
        if self.place == Place::Records {
            values[const { position("state") }] = None;
        }
        if let Some((entry, ms)) = generated_defaults(&self.id) {
            if self.created_at == ms {
                values[const { position("created_at") }] = None;
            }
            if self.attempt >= 1 {
                values[const { position("lease") }] = match self.lease.as_deref() {
                    Some(lease) if is_default_lease(lease, entry, self.attempt) => None,
                    Some(lease) => Some(ReplyValue::Text(lease)),
                    None => Some(ReplyValue::Text("")),
                };
            }
        }
        values
    }
}

/// What a generated id ([`inline_entry`]) says of its job: its entry and that entry's time (ms),
/// the defaults of `created_at` and of the lease (`<entry>:<attempt>`, the token of the job's
/// first delivery from the entry its id names). `None` for any other id: such a job stores both.
fn generated_defaults(id: &str) -> Option<(&str, i64)> {
    let (_, entry, ms) = inline_parts(id)?;
    Some((entry, i64::try_from(ms).ok()?))
}

/// The `created_at` a record of job `id` leaves out (see [`Job::from_fields`]): the time its
/// generated id says, `None` for any other id.
pub fn generated_created_at(id: &str) -> Option<i64> {
    generated_defaults(id).map(|(_, ms)| ms)
}

/// Whether `lease` is `<entry>:<attempt>`, the default lease, compared without formatting it.
fn is_default_lease(lease: &str, entry: &str, attempt: i64) -> bool {
    let mut digits = [0u8; 20];
    lease
        .strip_prefix(entry)
        .and_then(|rest| rest.strip_prefix(':'))
        .is_some_and(|n| n == decimal(attempt.unsigned_abs(), attempt < 0, &mut digits))
}

/// The default lease of a job with a generated id after `attempt` deliveries: `<entry>:<attempt>`.
fn default_lease(entry: &str, attempt: i64) -> String {
    let mut digits = [0u8; 20];
    let n = decimal(attempt.unsigned_abs(), attempt < 0, &mut digits);
    let mut lease = String::with_capacity(entry.len() + 1 + n.len());
    lease.push_str(entry);
    lease.push(':');
    lease.push_str(n);
    lease
}

/// How [`Job::pack`] writes each field of [`FIELDS`], by position: its tag (`None` for the
/// [`DERIVED`] fields, never stored) and its default ([`DEFAULTS`], left out). Worked out once, at
/// compile time: looking each name up in the tables on every write measured ~2.5k instructions.
const PACKING: [(Option<u8>, Option<i64>); FIELDS.len()] = packing();

const fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// The position of field `name` in [`FIELDS`], for use in constants: a name that is not a field
/// gives `FIELDS.len()`, which fails the build where it indexes a slot array.
const fn position(name: &str) -> usize {
    let mut i = 0;
    while i < FIELDS.len() {
        if same(FIELDS[i].0, name) {
            return i;
        }
        i += 1;
    }
    FIELDS.len()
}

/// The set of fields `names` as bits by position in [`FIELDS`] (bit `i` for `FIELDS[i]`), for
/// use in constants: a name that is not a field fails the build.
const fn mask(names: &[&str]) -> u64 {
    let mut out = 0;
    let mut i = 0;
    while i < names.len() {
        assert!(position(names[i]) < FIELDS.len());
        out |= 1 << position(names[i]);
        i += 1;
    }
    out
}

const fn packing() -> [(Option<u8>, Option<i64>); FIELDS.len()] {
    let mut out = [(None, None); FIELDS.len()];
    let mut i = 0;
    while i < FIELDS.len() {
        let name = FIELDS[i].0;
        let mut t = 0;
        while t < crate::packed::TAGS.len() {
            if same(crate::packed::TAGS[t].0, name) {
                out[i].0 = Some(crate::packed::TAGS[t].1);
            }
            t += 1;
        }
        let mut d = 0;
        while d < DEFAULTS.len() {
            if same(DEFAULTS[d].0, name) {
                out[i].1 = Some(DEFAULTS[d].1);
            }
            d += 1;
        }
        i += 1;
    }
    out
}

/// Appends one field of a packed record to `out`: a space unless it is the first, then
/// `<tag><length>:<value>` ([`crate::packed`]).
fn push_field(out: &mut Vec<u8>, tag: u8, value: &[u8]) {
    if !out.is_empty() {
        out.push(b' ');
    }
    out.push(tag);
    let mut digits = [0u8; 20];
    let length = u64::try_from(value.len()).unwrap_or(u64::MAX);
    out.extend_from_slice(decimal_bytes(length, false, &mut digits));
    out.push(b':');
    out.extend_from_slice(value);
}

/// `n` in decimal (with a `-` when `negative`), written at the end of `buf` without allocating:
/// 20 bytes hold any `u64`, and any `i64` with its sign.
fn decimal(n: u64, negative: bool, buf: &mut [u8; 20]) -> &str {
    std::str::from_utf8(decimal_bytes(n, negative, buf)).unwrap_or_default()
}

/// [`decimal`] as bytes, which a caller that writes bytes takes as they are (no check that
/// they are text).
fn decimal_bytes(mut n: u64, negative: bool, buf: &mut [u8; 20]) -> &[u8] {
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 || at == 0 {
            break;
        }
    }
    if negative && at > 0 {
        at -= 1;
        buf[at] = b'-';
    }
    &buf[at..]
}

/// A value of a job's reply map, borrowed from the job ([`Job::reply_values`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyValue<'a> {
    /// An integer field.
    Int(i64),
    /// A text field.
    Text(&'a str),
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample() -> Job {
        Job {
            id: "j1".into(),
            queue: "q".into(),
            task: "t".into(),
            payload: "{}".into(),
            state: State::Active,
            attempt: 1,
            max_attempts: 4,
            timeout: 30000,
            priority: 0,
            backoff: None,
            keep: Some(5),
            unique: None,
            parents: None,
            children: Some("[\"c\"]".into()),
            waiting_on: None,
            parents_done: None,
            with_results: None,
            on_parent_fail: None,
            batch: Some("b".into()),
            schedule: Some("nightly".into()),
            created_at: 10,
            run_at: None,
            started_at: Some(20),
            finished_at: None,
            consumer: Some("w1".into()),
            lease: Some("1-0:1".into()),
            progress: Some(50),
            cancel_requested: None,
            entry: Some("1-0".into()),
            result: None,
            error: None,
            place: Place::Key,
        }
    }

    /// [`sample`] as the plain pending job of priority `priority` that inline entry
    /// `1764489600000-3` holds.
    fn pending_sample(priority: i64) -> Job {
        let entry = "1764489600000-3";
        let mut job = sample();
        job.state = State::Pending;
        job.attempt = 0;
        job.priority = priority;
        job.id = inline_id(priority, entry);
        job.created_at = 1_764_489_600_000;
        job.entry = Some(entry.into());
        job.started_at = None;
        job.consumer = None;
        job.lease = None;
        job.progress = None;
        job.place = Place::Entry;
        job
    }

    fn owned(fields: Vec<(&'static str, Cow<'_, str>)>) -> Vec<(String, String)> {
        fields
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.into_owned()))
            .collect()
    }

    #[test]
    fn generated_ids_map_to_entries_and_back() {
        // (priority, entry) -> id, and back.
        let cases = [
            (0, "1764489600000-3", "1764489600000-3"),
            (0, "0-1", "0-1"),
            (7, "1764489600000-3", "p7:1764489600000-3"),
            (1, "5-0", "p1:5-0"),
            (
                9,
                "18446744073709551615-18446744073709551615",
                "p9:18446744073709551615-18446744073709551615",
            ),
        ];
        for (priority, entry, id) in cases {
            assert_eq!(inline_id(priority, entry), id);
            assert_eq!(inline_entry(id), Some((priority, entry)), "{id}");
            assert!(has_generated_form(id), "{id}");
        }
    }

    #[test]
    fn ids_of_other_forms_name_no_entry() {
        // (id, has the generated form, names an entry)
        let cases = [
            ("0192f3a4-7b1c-7def-8000-0123456789ab", false, false),
            ("order-17", false, false),
            ("17-order", false, false),
            ("1-2-3", false, false),
            ("-1", false, false),
            ("1-", false, false),
            ("1", false, false),
            ("p0:1-0", false, false),
            ("p10:1-0", false, false),
            ("P7:1-0", false, false),
            ("p7-1-0", false, false),
            ("p7:", false, false),
            ("p:1-0", false, false),
            ("x7:1-0", false, false),
            ("1-0 ", false, false),
            ("+1-0", false, false),
            // The generated form, but not an id zrq generates: refused as ID, and no entry.
            ("01-0", true, false),
            ("1-00", true, false),
            ("p3:007-1", true, false),
            ("18446744073709551616-0", true, false),
            ("1-18446744073709551616", true, false),
            ("99999999999999999999999999-1", true, false),
        ];
        for (id, generated, entry) in cases {
            assert_eq!(has_generated_form(id), generated, "{id}");
            assert_eq!(inline_entry(id).is_some(), entry, "{id}");
        }
    }

    #[test]
    fn an_inline_entry_reads_as_a_pending_job() {
        let mut job = pending_sample(7);
        job.children = None;
        let fields = job.entry_fields();
        let names: Vec<&str> = fields.iter().map(|(k, _)| *k).collect();
        assert_eq!(names, ["task", "payload", "keep", "batch", "schedule"]);
        let back = Job::from_entry("s", "q", 7, "1764489600000-3", owned(fields));
        assert_eq!(back, Ok(job.clone()));
        // Its record, once written, reads as the same job.
        let record = Job::from_fields("k", "q", &job.id, owned(job.to_fields()));
        assert_eq!(
            record,
            Ok(Job {
                place: Place::Key,
                ..job
            })
        );
    }

    #[test]
    fn what_a_generated_id_says_is_left_out_and_read_back() {
        // (id, created_at, attempt, lease, the record's `c` and `l` fields as stored)
        let id = "1764489600000-3";
        let p7 = "p7:1764489600000-3";
        let uuid = "0192f3a4-7b1c-7def-8000-0123456789ab";
        let t = 1_764_489_600_000;
        type Case<'a> = (
            &'a str,
            i64,
            i64,
            Option<&'a str>,
            Option<&'a str>,
            Option<&'a str>,
        );
        let cases: &[Case] = &[
            // The id's time and first lease: neither stored.
            (id, t, 1, Some("1764489600000-3:1"), None, None),
            (p7, t, 2, Some("1764489600000-3:2"), None, None),
            // Anything else is stored as it is.
            (
                id,
                t + 1,
                1,
                Some("1764489600000-3:2"),
                Some("1764489600001"),
                Some("1764489600000-3:2"),
            ),
            (
                id,
                t,
                1,
                Some("1764489600000-4:1"),
                None,
                Some("1764489600000-4:1"),
            ),
            (
                id,
                t,
                1,
                Some("1764489600000-3:01"),
                None,
                Some("1764489600000-3:01"),
            ),
            (
                p7,
                t,
                1,
                Some("p7:1764489600000-3:1"),
                None,
                Some("p7:1764489600000-3:1"),
            ),
            // Delivered, no lease (a record from before leases): stored empty.
            (id, t, 1, None, None, Some("")),
            // Never delivered: no default lease.
            (id, t, 0, None, None, None),
            // Not a generated id: nothing to derive from.
            (
                uuid,
                t,
                1,
                Some("1764489600000-3:1"),
                Some("1764489600000"),
                Some("1764489600000-3:1"),
            ),
            (uuid, t, 1, None, Some("1764489600000"), None),
        ];
        for (id, created, attempt, lease, stored_c, stored_l) in cases {
            let mut job = sample();
            job.id = (*id).into();
            job.created_at = *created;
            job.attempt = *attempt;
            job.lease = lease.map(str::to_string);
            let fields = job.to_fields();
            let stored = |name: &str| {
                fields
                    .iter()
                    .find(|(f, _)| *f == name)
                    .map(|(_, v)| v.to_string())
            };
            let case = format!("{id} {created} {attempt} {lease:?}");
            assert_eq!(stored("created_at").as_deref(), *stored_c, "{case}");
            assert_eq!(stored("lease").as_deref(), *stored_l, "{case}");
            let back = crate::packed::decode("k", job.pack().as_bytes())
                .and_then(|fields| Job::from_fields("k", "q", id, fields));
            assert_eq!(back, Ok(job), "{case}");
        }
        // A record without `created_at` needs an id that says it.
        let mut job = sample();
        job.id = uuid.into();
        let mut fields = owned(job.to_fields());
        fields.retain(|(f, _)| f != "created_at");
        assert_eq!(
            Job::from_fields("k", "q", uuid, fields).map(|j| j.created_at),
            Err(ZrqError::corrupt("k", "field 'created_at' is missing"))
        );
    }

    #[test]
    fn every_codec_job_reads_back_from_its_packed_record() {
        for job in codec_jobs() {
            let packed = job.pack();
            let back = match job.place {
                Place::Records => {
                    Job::from_packed_records("k", &job.queue, &job.id, job.state, packed.as_bytes())
                }
                Place::Key | Place::Entry => {
                    Job::from_packed("k", &job.queue, &job.id, packed.as_bytes())
                }
            };
            // A job held by its entry gets a record at its key when one is written for it.
            let mut want = job.clone();
            if want.place == Place::Entry {
                want.place = Place::Key;
            }
            assert_eq!(back, Ok(want), "{}", job.id);
        }
    }

    #[test]
    fn field_index_is_the_position_in_fields() {
        for (i, (name, _)) in FIELDS.iter().enumerate() {
            assert_eq!(field_index(name), Some(i), "{name}");
        }
        assert_eq!(field_index("job"), None);
        assert_eq!(field_index(""), None);
    }

    #[test]
    fn round_trip() {
        let job = sample();
        let back = Job::from_fields("k", "q", "j1", owned(job.to_fields()));
        assert_eq!(back, Ok(job));
    }

    #[test]
    fn stored_record_leaves_out_derived_fields_and_defaults() {
        let mut job = sample();
        job.attempt = 0;
        let stored: Vec<&str> = job.to_fields().iter().map(|(k, _)| *k).collect();
        for name in [
            "id",
            "queue",
            "attempt",
            "max_attempts",
            "timeout",
            "priority",
        ] {
            assert!(!stored.contains(&name), "{name} stored: {stored:?}");
        }
        assert!(stored.contains(&"state") && stored.contains(&"created_at"));
        // Values other than the default are stored.
        job.attempt = 2;
        job.max_attempts = 1;
        job.timeout = 5;
        job.priority = 9;
        let stored = owned(job.to_fields());
        for (name, value) in [
            ("attempt", "2"),
            ("max_attempts", "1"),
            ("timeout", "5"),
            ("priority", "9"),
        ] {
            assert!(
                stored.contains(&(name.to_string(), value.to_string())),
                "{name}"
            );
        }
        assert_eq!(Job::from_fields("k", "q", "j1", stored), Ok(job));
    }

    #[test]
    fn defaults_are_integer_fields_and_fill_in_what_is_left_out() {
        for (name, _) in DEFAULTS {
            let kind = FIELDS.iter().find(|(f, _)| *f == name).map(|(_, k)| *k);
            assert_eq!(kind, Some(FieldKind::Integer), "{name}");
        }
        let fields = [
            ("task", "t"),
            ("payload", "{}"),
            ("state", "pending"),
            ("created_at", "1"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let job = Job::from_fields("k", "q", "j", fields);
        let Ok(job) = job else {
            unreachable!("a compact record reads: {job:?}")
        };
        assert_eq!(
            (job.id.as_str(), job.queue.as_str()),
            ("j", "q"),
            "derived from the place"
        );
        assert_eq!(
            (job.attempt, job.max_attempts, job.timeout, job.priority),
            (0, DEFAULT_RETRIES + 1, DEFAULT_TIMEOUT_MS, 0)
        );
        let Reply::Map(entries) = job.to_reply() else {
            unreachable!("to_reply returns a map")
        };
        let names: Vec<&str> = entries.iter().map(|(k, _)| *k).collect();
        assert_eq!(
            names,
            [
                "id",
                "queue",
                "task",
                "payload",
                "state",
                "attempt",
                "max_attempts",
                "timeout",
                "priority",
                "created_at"
            ]
        );
        assert!(entries.contains(&("max_attempts", Reply::Int(4))));
        assert!(entries.contains(&("timeout", Reply::Int(30_000))));
    }

    #[test]
    fn records_of_the_earlier_full_format_read_the_same() {
        let job = sample();
        let mut full = owned(job.to_fields());
        full.extend(
            [
                ("id", "j1"),
                ("queue", "q"),
                ("max_attempts", "4"),
                ("timeout", "30000"),
                ("priority", "0"),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        assert_eq!(Job::from_fields("k", "q", "j1", full.clone()), Ok(job));
        // Stored names that disagree with the place are CORRUPT, not obeyed.
        for (place_queue, place_id, detail) in [
            ("other", "j1", "field 'queue' does not name its queue"),
            ("q", "j2", "field 'id' does not match its key"),
        ] {
            let err = Job::from_fields("k", place_queue, place_id, full.clone()).err();
            assert_eq!(
                err.as_ref().map(|e| e.code),
                Some(crate::ErrorCode::Corrupt)
            );
            let text = err.map(|e| e.to_string()).unwrap_or_default();
            assert!(text.ends_with(detail), "{text}");
        }
    }

    #[test]
    fn reply_types_integers_and_omits_absent_fields() {
        let Reply::Map(entries) = sample().to_reply() else {
            unreachable!("to_reply returns a map")
        };
        assert!(entries.contains(&("attempt", Reply::Int(1))));
        assert!(entries.contains(&("id", Reply::Bulk("j1".into()))));
        assert!(!entries.iter().any(|(k, _)| *k == "finished_at"));
    }

    #[test]
    fn reply_has_the_fields_of_the_record_with_their_kinds() {
        let job = sample();
        // The full record: what is stored, plus what the compact record leaves out.
        let mut fields = owned(job.to_fields());
        fields.extend([
            ("id".to_string(), job.id.clone()),
            ("queue".to_string(), job.queue.clone()),
        ]);
        for (name, value) in DEFAULTS {
            if !fields.iter().any(|(f, _)| f == name) {
                fields.push((name.to_string(), value.to_string()));
            }
        }
        let Reply::Map(entries) = job.to_reply() else {
            unreachable!("to_reply returns a map")
        };
        let names: Vec<&str> = entries.iter().map(|(k, _)| *k).collect();
        let want: Vec<&str> = FIELDS
            .iter()
            .map(|(f, _)| *f)
            .filter(|f| fields.iter().any(|(name, _)| name == f))
            .collect();
        assert_eq!(names, want, "every field, in FIELDS order");
        for (name, reply) in &entries {
            let text = fields
                .iter()
                .find(|(f, _)| f == name)
                .map(|(_, v)| v.as_str())
                .unwrap_or_default();
            let kind = FIELDS.iter().find(|(f, _)| f == name).map(|(_, k)| *k);
            let expected = match kind {
                Some(FieldKind::Integer) => Reply::Int(text.parse().unwrap_or(i64::MIN)),
                _ => Reply::Bulk(text.to_string()),
            };
            assert_eq!(reply, &expected, "{name}");
        }
    }

    #[test]
    fn corrupt_records_are_errors_not_panics() {
        let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
            ("missing state", vec![("id", "j")]),
            (
                "missing task",
                vec![("state", "pending"), ("payload", "{}"), ("created_at", "1")],
            ),
            ("queue stored elsewhere", sample_with("queue", "other")),
            ("id stored elsewhere", sample_with("id", "other")),
            ("bad state", sample_with("state", "weird")),
            ("bad attempt", sample_with("attempt", "x")),
            ("priority beyond 9", sample_with("priority", "12")),
            ("negative priority", sample_with("priority", "-1")),
            ("batch not a name", sample_with("batch", "a b")),
            ("unique not a name", sample_with("unique", "")),
        ];
        let valid = sample_with("state", "pending")
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert!(
            Job::from_fields("k", "q", "j", valid).is_ok(),
            "the sample itself is valid"
        );
        for (why, fields) in cases {
            let fields = fields
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            let err = Job::from_fields("k", "q", "j", fields)
                .err()
                .map(|e| e.code);
            assert_eq!(err, Some(crate::ErrorCode::Corrupt), "{why}");
        }
    }

    /// The jobs the codec tests write and read: the sample, and variations of every kind of
    /// value (generated ids with and without their defaults, negative and extreme integers,
    /// text with spaces and separators, a job kept in a records hash, a pending entry's job).
    fn codec_jobs() -> Vec<Job> {
        let mut jobs = vec![sample()];
        let mut other = sample();
        other.attempt = 0;
        other.max_attempts = 1;
        other.timeout = i64::MAX;
        other.priority = 9;
        other.backoff = Some(-1);
        other.keep = Some(i64::MIN);
        other.created_at = 0;
        other.progress = Some(100);
        other.payload = "naïve ✓ \"a b\" t4:x".into();
        other.error = Some(String::new());
        other.entry = None;
        jobs.push(other);
        let mut generated = sample();
        generated.id = "p3:1764489600000-7".into();
        generated.priority = 3;
        generated.created_at = 1_764_489_600_000;
        generated.attempt = 2;
        generated.lease = Some("1764489600000-7:2".into());
        generated.entry = Some("1764489600000-7".into());
        jobs.push(generated.clone());
        generated.lease = None;
        generated.created_at += 1;
        jobs.push(generated.clone());
        generated.lease = Some("other".into());
        generated.place = Place::Records;
        generated.state = State::Completed;
        generated.result = Some("{\"ok\":true}".into());
        generated.finished_at = Some(1_764_489_600_100);
        jobs.push(generated);
        let mut full = sample();
        full.backoff = Some(0);
        full.unique = Some("u1".into());
        full.parents = Some("{\"a\":null}".into());
        full.waiting_on = Some(0);
        full.parents_done = Some("[]".into());
        full.with_results = Some(1);
        full.on_parent_fail = Some("run".into());
        full.run_at = Some(-5);
        full.finished_at = Some(i64::MIN);
        full.cancel_requested = Some(1);
        full.result = Some(" ".into());
        full.error = Some("e1: x y".into());
        jobs.push(full);
        jobs.push(pending_sample(0));
        jobs
    }

    #[test]
    fn pack_and_entry_fields_agree_with_the_stored_fields() {
        for job in codec_jobs() {
            let fields = job.to_fields();
            // `to_fields` as it was defined: every stored value but the derived fields and the
            // defaults, in FIELDS order.
            let expected: Vec<(&str, String)> = FIELDS
                .iter()
                .zip(job.stored_values())
                .filter_map(|((name, _), value)| match value? {
                    _ if DERIVED.contains(name) => None,
                    ReplyValue::Int(n) if is_default(name, n) => None,
                    ReplyValue::Int(n) => Some((*name, n.to_string())),
                    ReplyValue::Text(text) => Some((*name, text.to_string())),
                })
                .collect();
            let got: Vec<(&str, String)> =
                fields.iter().map(|(n, v)| (*n, v.to_string())).collect();
            assert_eq!(got, expected, "{}", job.id);
            assert_eq!(crate::packed::encode(&fields), Ok(job.pack()), "{}", job.id);
            let mut entry = fields.clone();
            entry.retain(|(name, _)| !ENTRY_DERIVED.contains(name));
            assert_eq!(job.entry_fields(), entry, "{}", job.id);
        }
    }

    /// The records the reading tests read: each job of [`codec_jobs`] packed, and records with
    /// faults of every kind (of the packing, and of the fields), several at once.
    fn codec_records() -> Vec<Vec<u8>> {
        let mut records: Vec<Vec<u8>> = codec_jobs()
            .iter()
            .map(|job| job.pack().into_bytes())
            .collect();
        let raw: &[&[u8]] = &[
            b"",
            b" ",
            b"q1:x",
            b"t1:t p2:{} s6:active",
            b"t1:t p2:{} s6:active a1:1 g2:20",
            b"t1:t p2:{} s7:pending",
            b"t1:t p2:{} s7:pending c1:5 l0:",
            b"t1:t p2:{} s7:pending c1:5 l3:abc a1:2",
            b"t1:t p2:{} s7:pending c2:+5 a2:-0 i1:9",
            b"t1:t p2:{} s7:pending c1:5 i2:10",
            b"t1:t p2:{} s7:pending c1:5 i2:-1",
            b"t1:t p2:{} s5:weird c1:5",
            b"t1:t p2:{} c1:5",
            b"p2:{} s7:pending c1:5",
            b"t1:t s7:pending c1:5",
            b"t1:t p2:{} s7:pending",
            b"t1:t p2:{} s7:pending c1:x a1:y",
            b"t1:t p2:{} s7:pending c1:5 a1:y m1:z",
            b"t1:t p2:{} s7:pending c1:5 u3:a b B1:b",
            b"t1:t p2:{} s7:pending c1:5 B3:a b",
            b"t1:t p2:{} s7:pending c1:5 u0:",
            b"t1:t p2:{} s7:pending c1:5 n20:99999999999999999999",
            b"t1:t p2:{} s7:pending c1:5 s7:pending",
            b"t1:t p2:{} s7:pending c1:5 ",
            b"t1:t p2:{} s7:pending c1:5  a1:1",
            b"t1:t p2:{} s7:pending c01:5",
            b"t1:t p2:{} s7:pending c9:5",
            b"t1:t p2:{} s7:pending c1:5 a1:1\xff",
            b"t1:t p2:\xff\xfe s7:pending",
            b"t1:t p2:{} s6:active a1:1 S5:daily v2:{} E1:x",
            b"t1:t p2:{} s9:completed f2:30 v2:{}",
            b"t1:t p2:{} s9:cancelled f2:30",
            b"t1:t p2:{} f2:30 v2:{}",
        ];
        records.extend(raw.iter().map(|r| r.to_vec()));
        records
    }

    /// The ids the reading tests read records as: generated (with and without a priority, the
    /// entry's time above an i64) and not.
    const CODEC_IDS: [&str; 6] = [
        "j1",
        "1764489600000-3",
        "p3:1764489600000-7",
        "01-0",
        "9223372036854775808-1",
        "0192f3a4-7b1c-7def-8000-0123456789ab",
    ];

    #[test]
    fn a_packed_record_reads_as_its_decoded_fields_do() {
        // (read, refused): the table holds both, so that both are compared.
        let mut outcomes = (0, 0);
        for raw in codec_records() {
            for id in CODEC_IDS {
                let key = "zrq:{q}:job:x";
                let case = format!("{} as {id}", raw.escape_ascii());
                let decoded = crate::packed::decode(key, &raw)
                    .and_then(|fields| Job::from_fields(key, "q", id, fields));
                match &decoded {
                    Ok(_) => outcomes.0 += 1,
                    Err(_) => outcomes.1 += 1,
                }
                assert_eq!(Job::from_packed(key, "q", id, &raw), decoded, "{case}");
                for state in [State::Completed, State::Cancelled] {
                    let records = "zrq:{q}:completed:records";
                    let decoded = crate::packed::decode(records, &raw).and_then(|fields| {
                        from_records_as_a_record(records, "q", id, state, fields)
                    });
                    assert_eq!(
                        Job::from_packed_records(records, "q", id, state, &raw),
                        decoded,
                        "{case} {state:?}"
                    );
                }
            }
        }
        assert!(outcomes.0 > 20 && outcomes.1 > 100, "{outcomes:?}");
    }

    /// How `from_entry` read an inline entry before it filled the job in itself: the derived
    /// fields as text ahead of the entry's, read as a record is.
    fn from_entry_as_a_record(
        stream: &str,
        queue: &str,
        priority: i64,
        entry: &str,
        fields: Vec<(String, String)>,
    ) -> Result<Job> {
        let created = crate::store::entry_id(entry)
            .map(|(ms, _)| ms)
            .ok_or_else(|| ZrqError::corrupt(stream, "an entry id is not a stream id"))?;
        let mut record = vec![
            ("state".to_string(), State::Pending.as_str().to_string()),
            ("created_at".to_string(), created.to_string()),
            ("priority".to_string(), priority.to_string()),
            ("entry".to_string(), entry.to_string()),
        ];
        record.extend(fields);
        let mut job = Job::from_fields(stream, queue, &inline_id(priority, entry), record)?;
        job.place = Place::Entry;
        Ok(job)
    }

    /// How a kept job was read before `from_packed_records`: its state as text ahead of its
    /// fields, read as a record is.
    fn from_records_as_a_record(
        key: &str,
        queue: &str,
        id: &str,
        state: State,
        mut fields: Vec<(String, String)>,
    ) -> Result<Job> {
        if fields
            .iter()
            .any(|(name, value)| name == "state" && value != state.as_str())
        {
            return Err(ZrqError::corrupt(
                key,
                "field 'state' does not match its place",
            ));
        }
        fields.insert(0, ("state".to_string(), state.as_str().to_string()));
        let mut job = Job::from_fields(key, queue, id, fields)?;
        job.place = Place::Records;
        Ok(job)
    }

    #[test]
    fn entries_and_kept_records_read_as_records_with_their_place_ahead() {
        let entries = [
            "1764489600000-3",
            "0-0",
            "01-0",
            "1-00",
            "9223372036854775807-0",
            "9223372036854775808-0",
            "18446744073709551615-18446744073709551615",
            "18446744073709551616-0",
            "1-2-3",
            "x",
            "",
        ];
        let mut lists: Vec<Vec<(String, String)>> = codec_records()
            .iter()
            .filter_map(|raw| crate::packed::decode("k", raw).ok())
            .collect();
        let extra: &[&[(&str, &str)]] = &[
            &[("task", "t"), ("payload", "{}")],
            &[("task", "t"), ("payload", "{}"), ("a", "1"), ("job", "x")],
            &[
                ("payload", "{}"),
                ("task", "t"),
                ("task", "u"),
                ("keep", "5"),
            ],
            &[("task", "t"), ("payload", "{}"), ("id", "other")],
            &[("task", "t"), ("payload", "{}"), ("queue", "other")],
            &[("task", "t"), ("payload", "{}"), ("state", "weird")],
            &[("task", "t"), ("payload", "{}"), ("priority", "x")],
            &[("task", "t"), ("payload", "{}"), ("created_at", "x")],
            &[("task", "t"), ("payload", "{}"), ("entry", "x")],
            &[("task", "t"), ("payload", "{}"), ("attempt", "1")],
            &[
                ("task", "t"),
                ("payload", "{}"),
                ("attempt", "1"),
                ("lease", ""),
            ],
            &[("task", "t")],
            &[],
        ];
        lists.extend(extra.iter().map(|fields| {
            fields
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect()
        }));
        let mut outcomes = (0, 0);
        for fields in &lists {
            for priority in [0, 3, 9, 10, -1] {
                for entry in entries {
                    let case = format!("{fields:?} at {priority} {entry:?}");
                    let before = from_entry_as_a_record("s", "q", priority, entry, fields.clone());
                    match &before {
                        Ok(_) => outcomes.0 += 1,
                        Err(_) => outcomes.1 += 1,
                    }
                    assert_eq!(
                        Job::from_entry("s", "q", priority, entry, fields.clone()),
                        before,
                        "{case}"
                    );
                }
            }
        }
        assert!(outcomes.0 > 50 && outcomes.1 > 100, "{outcomes:?}");
    }

    #[test]
    fn generated_ids_name_the_entries_they_did_when_read_in_several_passes() {
        let entries = [
            "0-0",
            "1-0",
            "1764489600000-3",
            "01-0",
            "1-01",
            "00-0",
            "18446744073709551615-18446744073709551615",
            "18446744073709551616-0",
            "1-18446744073709551616",
            "9999999999999999999-0",
            "10000000000000000000-0",
            "99999999999999999999-0",
            "0-000000000000000000001",
            "+1-0",
            "1-+0",
            "-1",
            "1-",
            "-",
            "",
            "1",
            "1-2-3",
            " 1-0",
            "1-0 ",
            "١-0",
            "p3:1-0",
        ];
        let ids = entries
            .iter()
            .map(|e| e.to_string())
            .chain(entries.iter().map(|e| format!("p7:{e}")))
            .chain(["p0:1-0", "p10:1-0", "P7:1-0", "p7-1-0", "p:1-0", "p7:"].map(String::from));
        for id in ids {
            let before = generated_parts(&id).and_then(|(priority, entry)| {
                let canonical = |part: &str| part == "0" || !part.starts_with('0');
                let (ms, seq) = entry.split_once('-')?;
                let (time, _) = crate::store::entry_id(entry)?;
                (canonical(ms) && canonical(seq)).then_some((priority, entry, time))
            });
            assert_eq!(inline_parts(&id), before, "{id}");
        }
    }

    fn sample_with(field: &'static str, value: &'static str) -> Vec<(&'static str, &'static str)> {
        let mut v: Vec<(&str, &str)> = vec![
            ("id", "j"),
            ("queue", "q"),
            ("task", "t"),
            ("payload", "{}"),
            ("state", "pending"),
            ("attempt", "0"),
            ("max_attempts", "1"),
            ("timeout", "1"),
            ("created_at", "1"),
            ("priority", "0"),
            ("batch", "b"),
            ("unique", "u"),
        ];
        for entry in v.iter_mut() {
            if entry.0 == field {
                entry.1 = value;
            }
        }
        v
    }
}
