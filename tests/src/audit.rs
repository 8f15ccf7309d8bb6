//! Invariant audit of one queue, read straight from its Redis keys (the same for both backends).
//!
//! [`audit`] reads every job record and every index of a queue and reports each way they disagree:
//! a job is in exactly one state, each state's index (a zset, or for pending jobs a stream entry)
//! holds exactly the jobs whose record names that state, no index names a job without a record,
//! stream entries, the consumer group's pending entries and leases agree, a finished job kept
//! with the queue's retention (a field of `completed:records` or `cancelled:records`) has exactly
//! one entry in its state's log stream, at its `finished_at`, and each log entry such a job, the
//! UNIQUE hash points at unfinished jobs holding the key, schedules and their ticks match, and
//! `ZRQ.INFO` agrees with the indexes and with its own totals. It returns every violation found
//! rather than stopping at the first, so a failing test shows the whole picture;
//! [`assert_consistent`] panics with all of them.
//!
//! Everything is read in one MULTI/EXEC (the records by a read-only script inside it), so the
//! audit sees one instant of the queue even while the server's timer or clients move jobs. A
//! queue of 10^4 jobs is audited in well under a second.

use std::collections::{BTreeMap, BTreeSet};

use redis::{Connection, Value};
use zrq_core::keys::{QueueKeys, ENTRY_FIELD, GROUP, MAX_PRIORITY};
pub use zrq_core::state::State;

use crate::Backend;

/// What [`audit`] found.
#[derive(Debug, Default)]
pub struct Report {
    /// Every job of the queue: id → the state its record names (as written); a plain pending
    /// job without a record (held by its inline stream entry) is `pending`.
    pub states: BTreeMap<String, String>,
    /// `ZRQ.INFO` of the queue: counts per state and totals.
    pub info: BTreeMap<String, i64>,
    /// Every inconsistency, one sentence each naming the job or key concerned.
    pub violations: Vec<String>,
}

impl Report {
    /// How many jobs' records name `state`.
    pub fn count(&self, state: State) -> usize {
        self.states
            .values()
            .filter(|s| s.as_str() == state.as_str())
            .count()
    }

    /// The state of job `id` by its record (or its inline entry), if it has one.
    pub fn state(&self, id: &str) -> Option<State> {
        self.states.get(id).and_then(|s| State::parse(s))
    }

    /// `ZRQ.INFO` field `name` (0 if absent).
    pub fn info(&self, name: &str) -> i64 {
        self.info.get(name).copied().unwrap_or(0)
    }
}

/// Audits `queue` on the server behind `conn` (in a cluster: the primary owning the queue's
/// slot). `backend` answers `ZRQ.INFO`. With `expected` (the ids a test enqueued and saw
/// answered), each of them must have a record; jobs outside it are allowed (a producer may not
/// have seen the answer to an enqueue that happened).
pub fn audit(
    conn: &mut Connection,
    backend: Backend,
    queue: &str,
    expected: Option<&BTreeSet<String>>,
) -> Report {
    let keys = QueueKeys::new(queue);
    let snapshot = Snapshot::read(conn, backend, queue, &keys);
    let mut found = Found {
        violations: snapshot.problems.clone(),
    };
    let records = &snapshot.records;
    for (id, record) in records {
        found.check_record(queue, id, record);
    }
    found.check_indexes(records, &snapshot.kept, &snapshot.indexes, snapshot.now);
    found.check_kept(queue, records, &snapshot.kept, &snapshot.logs);
    found.check_streams(records, &snapshot.streams, &snapshot.held);
    found.check_unique(records, &snapshot.unique);
    found.check_schedules(&snapshot.schedules, &snapshot.ticks);
    found.check_info(
        &snapshot.info,
        records,
        &snapshot.kept,
        &snapshot.indexes,
        &snapshot.streams,
    );
    if let Some(expected) = expected {
        for id in expected.iter().filter(|id| !records.contains_key(*id)) {
            found.note(format!("job {id} was enqueued but has no record: lost"));
        }
    }
    let info = snapshot.info;
    Report {
        states: snapshot
            .records
            .iter()
            .map(|(id, r)| (id.clone(), r.get("state").cloned().unwrap_or_default()))
            .collect(),
        info,
        violations: found.violations,
    }
}

/// [`audit`], panicking with every violation if there is any; returns the report otherwise.
pub fn assert_consistent(
    conn: &mut Connection,
    backend: Backend,
    queue: &str,
    expected: Option<&BTreeSet<String>>,
) -> Report {
    let report = audit(conn, backend, queue, expected);
    assert!(
        report.violations.is_empty(),
        "queue {queue}: {} invariant violation(s):\n  {}",
        report.violations.len(),
        report.violations.join("\n  ")
    );
    report
}

/// A job record: field → value.
type Record = BTreeMap<String, String>;

/// The zset indexes of the states that have one: state → (member → score).
type Indexes = Vec<(State, BTreeMap<String, f64>)>;

/// The states whose jobs are listed in a zset, with that zset.
fn zset_states(keys: &QueueKeys) -> [(State, String); 7] {
    [
        (State::Waiting, keys.waiting()),
        (State::Scheduled, keys.scheduled()),
        (State::Active, keys.active()),
        (State::Retrying, keys.retrying()),
        (State::Completed, keys.completed()),
        (State::Cancelled, keys.cancelled()),
        (State::Dead, keys.dead()),
    ]
}

/// One stream entry: which priority's stream, the job it names, and the consumer holding it (in
/// the group's pending list) if it was delivered. FETCH delivers without acknowledgement and
/// trims what it delivered, so an entry is a pending job's; only a job delivered by an older zrq
/// (a queue upgraded in place) is held in the pending list, in the stream until a FETCH trims it.
#[derive(Debug)]
struct Entry {
    priority: i64,
    job: String,
    holder: Option<String>,
    /// Whether the entry is past the group's last delivered id (FETCH can still see it).
    deliverable: bool,
}

/// (priority, stream entry id) → entry, over the queue's streams of every priority (each stream
/// numbers its entries by itself, so two streams can hold the same entry id).
type Streams = BTreeMap<(i64, String), Entry>;

/// The finished jobs kept with the queue's retention: id → the state whose records hash holds
/// it (DONE-SPEC: `zrq:{Q}:<state>:records`).
type Kept = BTreeMap<String, State>;

/// A stream's entries in order, each entry id with its fields.
type LogEntries = Vec<(String, Vec<(String, String)>)>;

/// Each final state's log stream (`zrq:{Q}:<state>:log`): (state, its entries).
type Logs = Vec<(State, LogEntries)>;

/// The final states whose jobs, kept with the queue's retention, are fields of a records hash
/// named in a log stream.
const KEPT_STATES: [State; 2] = [State::Completed, State::Cancelled];

/// `zrq:{Q}:<state>:records`.
fn records_key(keys: &QueueKeys, state: State) -> String {
    format!("{}{}:records", keys.job("").trim_end_matches("job:"), state)
}

/// `zrq:{Q}:<state>:log`.
fn log_key(keys: &QueueKeys, state: State) -> String {
    format!("{}{}:log", keys.job("").trim_end_matches("job:"), state)
}

/// (priority, entry id) → consumer: the group's pending entries of every priority's stream,
/// whether or not the entry is still in the stream.
type Held = BTreeMap<(i64, String), String>;

/// The violations found so far.
struct Found {
    violations: Vec<String>,
}

impl Found {
    fn note(&mut self, violation: String) {
        self.violations.push(violation);
    }

    /// What a record must hold by itself, whatever the indexes say.
    fn check_record(&mut self, queue: &str, id: &str, record: &Record) {
        let field = |name: &str| record.get(name).map(String::as_str);
        // The compact record leaves out `id` and `queue` (its place says them); one written
        // before it stores both, which must then name its place.
        let full_format = record.contains_key("id");
        if field("id").is_some_and(|stored| stored != id) {
            self.note(format!("job {id}: record's id field is {:?}", field("id")));
        }
        if full_format && field("queue") != Some(queue)
            || !full_format && record.contains_key("queue")
        {
            self.note(format!(
                "job {id}: record's queue field is {:?}{}",
                field("queue"),
                if full_format {
                    ""
                } else {
                    " in a compact record"
                }
            ));
        }
        // A compact record (written by this version) stores no default: each write of a
        // default deletes the field instead.
        if !full_format {
            for (name, default) in zrq_core::job::DEFAULTS {
                if field(name) == Some(default.to_string().as_str()) {
                    self.note(format!(
                        "job {id}: compact record stores {name} at its default {default}"
                    ));
                }
            }
        }
        // Whatever the format, the record reads as a job (required fields present, integers
        // integers, priority in range, names valid).
        let fields = record.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let key = QueueKeys::new(queue).job(id);
        if let Err(e) = zrq_core::job::Job::from_fields(&key, queue, id, fields) {
            self.note(format!("job {id}: record does not read: {e}"));
        }
        let Some(state) = field("state").and_then(State::parse) else {
            self.note(format!(
                "job {id}: record has no valid state: {:?}",
                field("state")
            ));
            return;
        };
        // A running job's entry left the stream when it was delivered; one delivered by an
        // older zrq keeps its entry field until it ends (check_streams checks that one).
        let has_entry = record.contains_key("entry");
        if state == State::Pending && !has_entry {
            self.note(format!("job {id}: pending record lacks an entry field"));
        }
        if !matches!(state, State::Pending | State::Active) && has_entry {
            self.note(format!("job {id}: {state} record has an entry field"));
        }
        let required: &[&str] = match state {
            State::Scheduled | State::Retrying => &["run_at"],
            State::Active => &["consumer", "started_at"],
            State::Completed | State::Dead | State::Cancelled => &["finished_at"],
            State::Waiting | State::Pending => &[],
        };
        for name in required.iter().filter(|n| !record.contains_key(**n)) {
            self.note(format!("job {id}: {state} record lacks {name}"));
        }
    }

    /// Each state's zset holds exactly the jobs whose record names that state, except the
    /// finished jobs kept in a records hash, which no zset holds.
    fn check_indexes(
        &mut self,
        records: &BTreeMap<String, Record>,
        kept: &Kept,
        indexes: &Indexes,
        now: i64,
    ) {
        for (state, members) in indexes {
            for (id, score) in members {
                if let Some(hash) = kept.get(id) {
                    self.note(format!(
                        "{state} index holds {id}, which is kept in the {hash} records hash"
                    ));
                    continue;
                }
                let Some(record) = records.get(id) else {
                    // A finished job's record expires by its TTL at the score (the end of its
                    // retention); the timer drops the index member soon after.
                    let retention_over = matches!(state, State::Completed | State::Cancelled)
                        && *score <= now as f64;
                    if !retention_over {
                        self.note(format!("{state} index holds {id}, which has no record"));
                    }
                    continue;
                };
                let recorded = record.get("state").map(String::as_str).unwrap_or("");
                if recorded != state.as_str() {
                    self.note(format!(
                        "{state} index holds {id}, whose record says {recorded}"
                    ));
                }
                let number = |name: &str| record.get(name).and_then(|v| v.parse::<f64>().ok());
                let score_field = match state {
                    State::Scheduled | State::Retrying => Some("run_at"),
                    State::Dead => Some("finished_at"),
                    _ => None,
                };
                if let Some(name) = score_field {
                    if number(name) != Some(*score) {
                        self.note(format!(
                            "{state} index scores {id} at {score}, its record's {name} is {:?}",
                            record.get(name)
                        ));
                    }
                }
            }
        }
        for (id, record) in records {
            let Some(state) = record.get("state").and_then(|s| State::parse(s)) else {
                continue;
            };
            if kept.contains_key(id) {
                continue;
            }
            for (indexed, members) in indexes {
                if *indexed == state && !members.contains_key(id) {
                    self.note(format!("job {id} is {state} but not in the {state} index"));
                }
            }
        }
    }

    /// The records hashes ↔ the logs: each kept job has exactly one entry in its state's log,
    /// whose ms is its `finished_at`, and each log entry names a job of its state's records
    /// hash (retention and DELETE remove both in one step, so no entry outlives its record).
    /// A kept job has no per-job KEEP (that one keeps its own key).
    fn check_kept(
        &mut self,
        queue: &str,
        records: &BTreeMap<String, Record>,
        kept: &Kept,
        logs: &Logs,
    ) {
        let keys = QueueKeys::new(queue);
        let mut logged: BTreeMap<(&str, &str), Vec<&str>> = BTreeMap::new();
        for (state, entries) in logs {
            let log = log_key(&keys, *state);
            for (entry, fields) in entries {
                let id = match fields.as_slice() {
                    [(field, id)] if field == "id" => id.as_str(),
                    other => {
                        self.note(format!(
                            "{log} entry {entry} holds {other:?}, not one id field"
                        ));
                        continue;
                    }
                };
                logged.entry((state.as_str(), id)).or_default().push(entry);
                if kept.get(id) != Some(state) {
                    self.note(format!(
                        "{log} entry {entry} names {id}, which is not in the {state} records hash{}",
                        kept.get(id)
                            .map(|other| format!(" (it is in the {other} one)"))
                            .unwrap_or_default()
                    ));
                    continue;
                }
                let finished = records
                    .get(id)
                    .and_then(|r| r.get("finished_at"))
                    .and_then(|f| f.parse::<u64>().ok());
                let (ms, _) = stream_id(entry);
                if finished != Some(ms) {
                    self.note(format!(
                        "job {id}: {log} entry {entry} is at {ms} ms, its record's finished_at is {:?}",
                        records.get(id).and_then(|r| r.get("finished_at"))
                    ));
                }
            }
        }
        for (id, state) in kept {
            let entries = logged
                .get(&(state.as_str(), id.as_str()))
                .map_or(0, Vec::len);
            if entries != 1 {
                self.note(format!(
                    "job {id} is in the {state} records hash with {entries} entries in the {state} log, not one"
                ));
            }
            if records.get(id).is_some_and(|r| r.contains_key("keep")) {
                self.note(format!(
                    "job {id} has a KEEP of its own but is kept in the {state} records hash"
                ));
            }
        }
    }

    /// Stream entries ↔ pending jobs; the group's pending list ↔ running jobs delivered by an
    /// older zrq (with an entry field) and their consumer.
    fn check_streams(
        &mut self,
        records: &BTreeMap<String, Record>,
        streams: &Streams,
        held: &Held,
    ) {
        let mut entry_of: BTreeMap<&str, &str> = BTreeMap::new();
        for ((_, entry_id), entry) in streams {
            let id = entry.job.as_str();
            if let Some(other) = entry_of.insert(id, entry_id) {
                self.note(format!(
                    "job {id} has two stream entries: {other} and {entry_id}"
                ));
            }
            let Some(record) = records.get(id) else {
                self.note(format!(
                    "stream entry {entry_id} names {id}, which has no record"
                ));
                continue;
            };
            let field = |name: &str| record.get(name).map(String::as_str);
            let recorded = field("state").unwrap_or("");
            let want = if entry.holder.is_some() {
                State::Active
            } else {
                State::Pending
            };
            if recorded != want.as_str() {
                self.note(format!(
                    "job {id}: its stream entry {entry_id} is {} (so {want}), its record says {recorded}",
                    if entry.holder.is_some() { "delivered" } else { "undelivered" }
                ));
            }
            if field("entry") != Some(entry_id.as_str()) {
                self.note(format!(
                    "job {id}: stream entry {entry_id}, record's entry field {:?}",
                    field("entry")
                ));
            }
            let priority = field("priority").unwrap_or("0");
            if priority != entry.priority.to_string() {
                self.note(format!(
                    "job {id} of priority {priority} is in the stream of priority {}",
                    entry.priority
                ));
            }
            if let Some(holder) = &entry.holder {
                if field("consumer") != Some(holder.as_str()) {
                    self.note(format!(
                        "job {id}: pending list says {holder} holds it, record says {:?}",
                        field("consumer")
                    ));
                }
            } else if !entry.deliverable {
                self.note(format!(
                    "job {id}: undelivered entry {entry_id} is behind the group's last delivered id: no FETCH will ever see it"
                ));
            }
        }
        // Pending entries no longer in the stream: trimmed by a FETCH after an older zrq
        // delivered them; each must still be a running job's, until its ACK.
        let mut delivered_from: BTreeMap<(i64, &str), &str> = BTreeMap::new();
        for (id, record) in records {
            let field = |name: &str| record.get(name).map(String::as_str);
            if let (Some("active"), Some(entry)) = (field("state"), field("entry")) {
                let priority = field("priority").and_then(|p| p.parse().ok()).unwrap_or(0);
                delivered_from.insert((priority, entry), id);
            }
        }
        for ((priority, entry_id), holder) in held {
            if streams.contains_key(&(*priority, entry_id.clone())) {
                continue;
            }
            let Some(id) = delivered_from.get(&(*priority, entry_id.as_str())) else {
                self.note(format!(
                    "pending list of priority {priority}: entry {entry_id} (held by {holder}) is no running job's"
                ));
                continue;
            };
            let consumer = records[*id].get("consumer").map(String::as_str);
            if consumer != Some(holder.as_str()) {
                self.note(format!(
                    "job {id}: pending list says {holder} holds it, record says {consumer:?}"
                ));
            }
        }
        for (id, record) in records {
            let field = |name: &str| record.get(name).map(String::as_str);
            match field("state").unwrap_or("") {
                "pending" if !entry_of.contains_key(id.as_str()) => {
                    self.note(format!("job {id} is pending but has no stream entry"));
                }
                "active" => {
                    let Some(entry) = field("entry") else {
                        continue;
                    };
                    let priority = field("priority").and_then(|p| p.parse().ok()).unwrap_or(0);
                    if !held.contains_key(&(priority, entry.to_string())) {
                        self.note(format!(
                            "job {id}: active with entry field {entry}, which is not in the group's pending list"
                        ));
                    }
                }
                _ => {}
            }
        }
    }

    /// Every UNIQUE key is held by an unfinished job that carries it.
    fn check_unique(
        &mut self,
        records: &BTreeMap<String, Record>,
        held: &BTreeMap<String, String>,
    ) {
        for (unique, id) in held {
            let Some(record) = records.get(id) else {
                self.note(format!(
                    "UNIQUE key {unique} is held by {id}, which has no record"
                ));
                continue;
            };
            let state = record.get("state").and_then(|s| State::parse(s));
            let unfinished = matches!(state, Some(s) if !s.is_final());
            if !unfinished {
                self.note(format!(
                    "UNIQUE key {unique} is held by {id}, which is {:?}: not unfinished",
                    record.get("state")
                ));
            }
            if record.get("unique") != Some(unique) {
                self.note(format!(
                    "UNIQUE key {unique} is held by {id}, whose record's unique is {:?}",
                    record.get("unique")
                ));
            }
        }
    }

    /// Each schedule has a next run, and each next run a schedule.
    fn check_schedules(&mut self, defined: &BTreeSet<String>, ticking: &BTreeSet<String>) {
        for name in defined.symmetric_difference(ticking) {
            self.note(format!(
                "schedule {name} is in {} only",
                if defined.contains(name) {
                    "schedules"
                } else {
                    "ticks"
                }
            ));
        }
    }

    /// `ZRQ.INFO` counts equal the index sizes; its totals bound what the indexes hold.
    fn check_info(
        &mut self,
        info: &BTreeMap<String, i64>,
        records: &BTreeMap<String, Record>,
        kept: &Kept,
        indexes: &Indexes,
        streams: &Streams,
    ) {
        let get = |name: &str| info.get(name).copied().unwrap_or(0);
        let undelivered = streams.values().filter(|e| e.holder.is_none()).count();
        let mut sizes = vec![(State::Pending, undelivered)];
        // A final state counts the jobs of its zset and those of its records hash.
        sizes.extend(indexes.iter().map(|(state, members)| {
            let in_hash = kept.values().filter(|s| *s == state).count();
            (*state, members.len() + in_hash)
        }));
        for (state, size) in sizes {
            if get(state.as_str()) != size as i64 {
                self.note(format!(
                    "INFO says {} {state}, its index (and records hash) hold {size}",
                    get(state.as_str())
                ));
            }
        }
        let bounds = [
            ("completed", "total_completed"),
            ("cancelled", "total_cancelled"),
            ("dead", "total_dead"),
            ("retrying", "total_failed"),
        ];
        for (now, total) in bounds {
            if get(now) > get(total) {
                self.note(format!(
                    "INFO: {} {now} now but {total} is only {}",
                    get(now),
                    get(total)
                ));
            }
        }
        // Completed and cancelled are final without a way out: each job counts in at most one.
        let ended = get("total_completed") + get("total_cancelled");
        if ended > get("total_enqueued") {
            self.note(format!(
                "INFO: {ended} jobs completed or cancelled, only {} enqueued",
                get("total_enqueued")
            ));
        }
        if records.len() as i64 > get("total_enqueued") {
            self.note(format!(
                "{} job records, but INFO counts only {} enqueued",
                records.len(),
                get("total_enqueued")
            ));
        }
    }
}

/// The whole queue at one instant: what [`audit`] checks.
struct Snapshot {
    /// Server time of the snapshot, unix ms.
    now: i64,
    /// Every job: own keys' records, kept jobs' records hash fields (state filled in), and the
    /// records inline entries stand for.
    records: BTreeMap<String, Record>,
    /// Which jobs of `records` a records hash holds.
    kept: Kept,
    logs: Logs,
    indexes: Indexes,
    streams: Streams,
    held: Held,
    /// The UNIQUE hash: key → holder.
    unique: BTreeMap<String, String>,
    /// Names in the schedules hash.
    schedules: BTreeSet<String>,
    /// Names in the ticks zset.
    ticks: BTreeSet<String>,
    info: BTreeMap<String, i64>,
    /// Malformed structures met while reading (a stream without the group, an odd entry…).
    problems: Vec<String>,
}

/// Lists the job records matching `ARGV[1]` and reads them, in one atomic step: the name, the
/// type and the value of each (a packed record's string, an earlier-format record's field/value
/// array, nothing for another type). `KEYS[1]` (the queue's stats key) names the queue's slot, so
/// it runs on the node owning the queue in a cluster.
const READ_RECORDS: &str = r#"#!lua flags=no-writes
local out = {}
for _, name in ipairs(redis.call('KEYS', ARGV[1])) do
    local kind = redis.call('TYPE', name)['ok']
    out[#out + 1] = name
    out[#out + 1] = kind
    if kind == 'string' then
        out[#out + 1] = redis.call('GET', name)
    elseif kind == 'hash' then
        out[#out + 1] = redis.call('HGETALL', name)
    else
        out[#out + 1] = ''
    end
end
return out
"#;

impl Snapshot {
    fn read(conn: &mut Connection, backend: Backend, queue: &str, keys: &QueueKeys) -> Snapshot {
        let pattern = QueueKeys::new(&glob_escape(queue)).job("*");
        let mut tx = redis::pipe();
        tx.atomic().ignore_errors();
        tx.cmd("TIME");
        tx.cmd("EVAL")
            .arg(READ_RECORDS)
            .arg(1)
            .arg(keys.stats())
            .arg(&pattern);
        for state in KEPT_STATES {
            tx.cmd("HGETALL").arg(records_key(keys, state));
            tx.cmd("XRANGE").arg(log_key(keys, state)).arg("-").arg("+");
        }
        let states = zset_states(keys);
        for (_, key) in &states {
            tx.cmd("ZRANGE").arg(key).arg(0).arg(-1).arg("WITHSCORES");
        }
        for priority in 0..=MAX_PRIORITY {
            let stream = keys.stream_at(priority);
            tx.cmd("XINFO").arg("GROUPS").arg(&stream);
            tx.cmd("XRANGE").arg(&stream).arg("-").arg("+");
            tx.cmd("XPENDING")
                .arg(&stream)
                .arg(GROUP)
                .arg("-")
                .arg("+")
                .arg(i64::MAX);
        }
        tx.cmd("HGETALL").arg(keys.unique());
        tx.cmd("HKEYS").arg(keys.schedules());
        tx.cmd("ZRANGE").arg(keys.ticks()).arg(0).arg(-1);
        tx.add_command(backend.command("info", &[queue.as_bytes()]));
        let replies: Vec<Value> = tx
            .query(conn)
            .unwrap_or_else(|e| panic!("audit: reading queue {queue} failed: {e}"));
        let mut replies = Replies(replies.into_iter());
        let (secs, micros): (i64, i64) = replies.next();
        let mut snapshot = Snapshot {
            now: secs * 1000 + micros / 1000,
            records: BTreeMap::new(),
            kept: Kept::new(),
            logs: Logs::new(),
            indexes: Vec::new(),
            streams: Streams::new(),
            held: Held::new(),
            unique: BTreeMap::new(),
            schedules: BTreeSet::new(),
            ticks: BTreeSet::new(),
            info: BTreeMap::new(),
            problems: Vec::new(),
        };
        let prefix = keys.job("");
        let records: Vec<(String, String, Value)> = replies.next();
        for (name, kind, value) in records {
            let id = name.strip_prefix(&prefix).unwrap_or(&name).to_string();
            match snapshot.record(&name, &kind, value) {
                Ok(record) => {
                    snapshot.records.insert(id, record);
                }
                Err(problem) => snapshot.problems.push(format!("job {id}: {problem}")),
            }
        }
        for state in KEPT_STATES {
            snapshot.add_kept(keys, state, &mut replies);
        }
        for (state, _) in states {
            let members: Vec<(String, f64)> = replies.next();
            snapshot
                .indexes
                .push((state, members.into_iter().collect()));
        }
        for priority in 0..=MAX_PRIORITY {
            snapshot.add_stream(keys, priority, &mut replies);
        }
        snapshot.unique = replies.next();
        snapshot.schedules = replies.next();
        snapshot.ticks = replies.next();
        // A key of the wrong type makes INFO fail (WRONGTYPE): that is reported, not fatal.
        match replies.next_or_error() {
            Ok(info) => snapshot.info = info_numbers(info),
            Err(e) => snapshot
                .problems
                .push(format!("ZRQ.INFO {queue} failed: {e}")),
        }
        snapshot
    }

    /// Reads the HGETALL of the `state` records hash and the XRANGE of its log: each field is a
    /// packed record without its state (the hash says it), added to the records with that state.
    fn add_kept(&mut self, keys: &QueueKeys, state: State, replies: &mut Replies) {
        let hash = records_key(keys, state);
        let log = log_key(keys, state);
        let fields: Option<Vec<(String, Vec<u8>)>> = replies.next_unless_error();
        let entries: Option<LogEntries> = replies.next_unless_error();
        match entries {
            Some(entries) => self.logs.push((state, entries)),
            None => self.problems.push(format!("{log} is not a stream")),
        }
        let Some(fields) = fields else {
            self.problems.push(format!("{hash} is not a hash"));
            return;
        };
        for (id, raw) in fields {
            let mut record = match packed_record(&hash, &raw) {
                Ok(record) => record,
                Err(problem) => {
                    self.problems
                        .push(format!("job {id}: field of {hash}: {problem}"));
                    continue;
                }
            };
            // The hash says the state; a stored one is never written (and one that differs
            // makes the record CORRUPT for the commands).
            if let Some(stored) = record.get("state") {
                self.problems.push(if stored == state.as_str() {
                    format!("job {id}: field of {hash} stores its state")
                } else {
                    format!(
                        "job {id}: field of {hash} stores state {stored}: field 'state' does not match its place"
                    )
                });
            }
            record.insert("state".to_string(), state.as_str().to_string());
            if let Some(other) = self.kept.get(&id) {
                self.problems.push(format!(
                    "job {id} is in the {other} and {state} records hashes"
                ));
                continue;
            }
            if self.records.contains_key(&id) {
                self.problems.push(format!(
                    "job {id} has two records: {} and a field of {hash}",
                    keys.job(&id)
                ));
                continue;
            }
            self.kept.insert(id.clone(), state);
            self.records.insert(id, record);
        }
    }

    /// The record stored at `name` from its type and value: a packed string (decoded with
    /// `zrq_core::packed`) or a hash of the earlier format; anything else is a problem.
    fn record(&self, name: &str, kind: &str, value: Value) -> Result<Record, String> {
        match kind {
            "string" => {
                let raw: Vec<u8> = redis::from_redis_value(value)
                    .map_err(|e| format!("record {name} unreadable: {e}"))?;
                packed_record(name, &raw)
            }
            "hash" => {
                redis::from_redis_value(value).map_err(|e| format!("record {name} unreadable: {e}"))
            }
            other => Err(format!("record {name} is a {other}")),
        }
    }
}

/// A packed record (the value of a job key, or a field of a records hash at `name`), decoded
/// with `zrq_core::packed`; its fields must be in record order.
fn packed_record(name: &str, raw: &[u8]) -> Result<Record, String> {
    let fields = zrq_core::packed::decode(name, raw).map_err(|e| {
        format!(
            "packed record {:?} does not decode: {e}",
            String::from_utf8_lossy(raw)
        )
    })?;
    // Both backends write the fields in record order (so byte-identical records).
    let order: Vec<Option<usize>> = fields
        .iter()
        .map(|(field, _)| {
            zrq_core::packed::TAGS
                .iter()
                .position(|(name, _)| name == field)
        })
        .collect();
    if order.windows(2).any(|w| w[0] >= w[1]) {
        let names: Vec<&str> = fields.iter().map(|(f, _)| f.as_str()).collect();
        return Err(format!(
            "packed record's fields are not in record order: {names:?}"
        ));
    }
    Ok(fields
        .into_iter()
        .map(|(field, value)| (field.to_string(), value))
        .collect())
}

impl Snapshot {
    /// Reads the XINFO GROUPS, XRANGE and XPENDING replies of one priority's stream.
    fn add_stream(&mut self, keys: &QueueKeys, priority: i64, replies: &mut Replies) {
        let key = keys.stream_at(priority);
        let groups: Option<Vec<BTreeMap<String, Value>>> = replies.next_unless_error();
        let entries: Vec<(String, Vec<(String, String)>)> = replies.next();
        let pending: Option<Vec<(String, String, i64, i64)>> = replies.next_unless_error();
        let Some(groups) = groups else {
            return; // no such stream
        };
        let group = groups
            .iter()
            .find(|g| g.get("name").map(text).as_deref() == Some(GROUP));
        let (Some(group), Some(pending)) = (group, pending) else {
            self.problems
                .push(format!("stream {key} has no consumer group {GROUP}"));
            return;
        };
        let last_delivered =
            stream_id(&group.get("last-delivered-id").map(text).unwrap_or_default());
        let holders: BTreeMap<String, String> = pending
            .into_iter()
            .map(|(entry, consumer, _, _)| (entry, consumer))
            .collect();
        for (entry_id, fields) in entries {
            let job = match fields.as_slice() {
                [(field, job)] if field == ENTRY_FIELD => job.clone(),
                other if other.iter().any(|(field, _)| field == ENTRY_FIELD) => {
                    self.problems.push(format!(
                        "stream {key} entry {entry_id} holds {other:?}, not one job field"
                    ));
                    continue;
                }
                // An inline entry: it holds its pending job, which has no record unless one was
                // written while it is pending (then the record is checked as any other).
                _ => match self.add_inline(keys, priority, &entry_id, fields) {
                    Some(id) => id,
                    None => continue,
                },
            };
            let deliverable = stream_id(&entry_id) > last_delivered;
            let holder = holders.get(&entry_id).cloned();
            self.streams.insert(
                (priority, entry_id),
                Entry {
                    priority,
                    job,
                    holder,
                    deliverable,
                },
            );
        }
        for (entry_id, consumer) in holders {
            self.held.insert((priority, entry_id), consumer);
        }
    }
}

impl Snapshot {
    /// Reads inline entry `entry_id` of the stream of `priority`: it must read as a pending job
    /// ([`zrq_core::job::Job::from_entry`]) and hold exactly the fields that job's entry is
    /// written with (task, payload, then only the options that differ from their defaults, in
    /// the record's field order). A job without a record gets the record it stands for, so the
    /// other checks see it as a pending job. Returns the job's id.
    fn add_inline(
        &mut self,
        keys: &QueueKeys,
        priority: i64,
        entry_id: &str,
        fields: Vec<(String, String)>,
    ) -> Option<String> {
        let key = keys.stream_at(priority);
        let job = match zrq_core::job::Job::from_entry(
            &key,
            keys.queue(),
            priority,
            entry_id,
            fields.clone(),
        ) {
            Ok(job) => job,
            Err(e) => {
                self.problems.push(format!(
                    "stream {key} inline entry {entry_id} does not read as a job: {e}"
                ));
                return None;
            }
        };
        let written: Vec<(String, String)> = job
            .entry_fields()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.into_owned()))
            .collect();
        if written != fields {
            self.problems.push(format!(
                "stream {key} inline entry {entry_id} holds {fields:?}, not {written:?}"
            ));
        }
        if !self.records.contains_key(&job.id) {
            let record = job
                .to_fields()
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.into_owned()))
                .collect();
            self.records.insert(job.id.clone(), record);
        }
        Some(job.id)
    }
}

/// The replies of the snapshot transaction, taken in order.
struct Replies(std::vec::IntoIter<Value>);

impl Replies {
    /// The next reply as `T`; the audit cannot go on without it.
    fn next<T: redis::FromRedisValue>(&mut self) -> T {
        self.next_unless_error()
            .unwrap_or_else(|| panic!("audit: a read of the snapshot failed"))
    }

    /// The next reply, or the error the server answered it with.
    fn next_or_error(&mut self) -> Result<Value, String> {
        match self
            .0
            .next()
            .expect("audit: a reply of the snapshot is missing")
        {
            Value::ServerError(e) => Err(format!("{e:?}")),
            value => Ok(value),
        }
    }

    /// The next reply as `T`, or `None` if the server answered it with an error.
    fn next_unless_error<T: redis::FromRedisValue>(&mut self) -> Option<T> {
        let value = self
            .0
            .next()
            .expect("audit: a reply of the snapshot is missing");
        if let Value::ServerError(_) = value {
            return None;
        }
        Some(
            redis::from_redis_value(value)
                .unwrap_or_else(|e| panic!("audit: unexpected reply shape: {e}")),
        )
    }
}

/// A glob pattern matching `text` literally.
fn glob_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A stream id `ms-seq` as a comparable pair.
fn stream_id(text: &str) -> (u64, u64) {
    let (ms, seq) = text.split_once('-').unwrap_or((text, "0"));
    (ms.parse().unwrap_or(0), seq.parse().unwrap_or(0))
}

fn text(value: &Value) -> String {
    match value {
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        Value::SimpleString(s) => s.clone(),
        Value::Int(n) => n.to_string(),
        other => format!("{other:?}"),
    }
}

/// `ZRQ.INFO`'s reply as name → number (non-numeric fields left out).
fn info_numbers(value: Value) -> BTreeMap<String, i64> {
    let pairs: Vec<(Value, Value)> = match value {
        Value::Map(pairs) => pairs,
        Value::Array(items) => items
            .chunks(2)
            .filter_map(|p| Some((p.first()?.clone(), p.get(1)?.clone())))
            .collect(),
        other => panic!("audit: ZRQ.INFO replied {other:?}"),
    };
    pairs
        .into_iter()
        .filter_map(|(name, value)| Some((text(&name), text(&value).parse().ok()?)))
        .collect()
}
