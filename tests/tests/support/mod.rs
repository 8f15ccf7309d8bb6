//! Helpers shared by the integration tests; those of the lifecycle tests are in `lifecycle`.

pub mod lifecycle;

use std::collections::{BTreeMap, BTreeSet};

use zrq_core::ErrorCode;
use zrq_tests::redis::{self, Connection, Value};
use zrq_tests::{Server, Zrq};

/// The rules of tenant A's user, as docs/ACL.md gives them (tests add restrictions to them).
pub const TENANT_A: &[&str] = &[
    "~tenantA",
    "~zrq:{tenantA}:*",
    "&zrq:{tenantA}:*",
    "+@all",
    "-@dangerous",
];

/// The full text of an error reply, as the server sent it: `CODE message`.
pub fn error_text(err: &redis::RedisError) -> String {
    match (err.code(), err.detail()) {
        (Some(code), Some(detail)) => format!("{code} {detail}"),
        (Some(code), None) => code.to_string(),
        _ => format!("<not a server error: {err}>"),
    }
}

/// Runs ZRQ.<command> `args`, which must be refused (the bad-input tests; `case` names the call
/// in messages): an error whose first word is a code of the error table, then the caller's own
/// `check(text, code)`; the keyspace must be unchanged and the server must still answer.
pub fn assert_refused(
    server: &Server,
    zrq: &mut Zrq,
    case: &impl std::fmt::Debug,
    command: &str,
    args: &[Vec<u8>],
    check: impl FnOnce(&str, &str),
) {
    let before = server.snapshot();
    let args: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
    let err = match zrq.call_raw(command, &args) {
        Ok(value) => panic!("{case:?}: expected an error, got {value:?}"),
        Err(err) => err,
    };
    let text = error_text(&err);
    let code = text.split(' ').next().unwrap_or("");
    assert!(
        ErrorCode::ALL.iter().any(|c| c.as_str() == code),
        "{case:?}: error code '{code}' is not in the error table: {text}"
    );
    check(&text, code);
    assert_eq!(
        server.snapshot(),
        before,
        "{case:?} changed the keyspace although it replied {text}"
    );
    let pong: String = redis::cmd("PING").query(&mut zrq.conn).expect("PING");
    assert_eq!(pong, "PONG");
}

/// A text value of a reply.
pub fn text(value: &Value) -> String {
    match value {
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        Value::SimpleString(s) => s.clone(),
        Value::Int(n) => n.to_string(),
        Value::Okay => "OK".to_string(),
        other => format!("{other:?}"),
    }
}

/// One field of `INFO <section>`.
pub fn info_field(conn: &mut Connection, section: &str, field: &str) -> Option<String> {
    let info: String = redis::cmd("INFO").arg(section).query(conn).ok()?;
    info.lines()
        .find_map(|line| line.strip_prefix(&format!("{field}:")))
        .map(|v| v.trim().to_string())
}

/// Where a job is, read from the raw Redis structures (not through zrq).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Place {
    /// In the stream, not yet delivered.
    Waiting,
    /// In the stream's pending-entries list and in the active zset, owned by a consumer.
    Running(String),
    /// Left the stream, state completed.
    Completed,
    /// Left the stream, in the dead zset.
    Dead,
}

/// The raw view of one queue: stream entries, pending entries, leases, dead set, job states.
#[derive(Debug, Default)]
pub struct QueueView {
    /// Stream entry id → job id.
    pub stream: BTreeMap<String, String>,
    /// Pending (delivered, unacknowledged) entry id → consumer: only entries an older zrq
    /// delivered (FETCH delivers without acknowledgement now).
    pub pel: BTreeMap<String, String>,
    /// Members of the active zset.
    pub active: BTreeSet<String>,
    /// Members of the dead zset.
    pub dead: BTreeSet<String>,
}

impl QueueView {
    /// Reads the queue's structures.
    pub fn read(conn: &mut Connection, queue: &str) -> QueueView {
        let stream_key = format!("zrq:{{{queue}}}:stream");
        let mut view = QueueView::default();
        for (entry, fields) in stream_entries(conn, &stream_key) {
            let job = entry_job(&stream_key, &entry, &fields);
            view.stream.insert(entry, job);
        }
        for (entry, consumer, _, _) in pending_entries(conn, &stream_key) {
            view.pel.insert(entry, consumer);
        }
        let zset = |conn: &mut Connection, key: String| -> BTreeSet<String> {
            redis::cmd("ZRANGE")
                .arg(key)
                .arg(0)
                .arg(-1)
                .query::<Vec<String>>(conn)
                .expect("ZRANGE")
                .into_iter()
                .collect()
        };
        view.active = zset(conn, format!("zrq:{{{queue}}}:active"));
        view.dead = zset(conn, format!("zrq:{{{queue}}}:dead"));
        view
    }

    /// Where job `id` is: asserts it is in exactly one place, consistently in every structure and
    /// in its record.
    pub fn place(&self, conn: &mut Connection, queue: &str, id: &str) -> Place {
        let key = job_key(queue, id);
        // A completed job kept with the queue's retention is a field of the records hash.
        let record = stored_record(conn, &key)
            .or_else(|| kept_record(conn, queue, "completed", id))
            .unwrap_or_default();
        if record.is_empty() {
            // A plain pending job without a record: its inline entry (whose id is the job's)
            // holds it.
            assert!(
                self.stream.get(id).is_some_and(|job| job == id),
                "job {id} vanished: no record {key}, no inline entry"
            );
            assert!(
                !self.active.contains(id) && !self.dead.contains(id),
                "job {id} is held by its inline entry and has a lease or a dead mark"
            );
            return Place::Waiting;
        }
        let entries: Vec<&String> = self
            .stream
            .iter()
            .filter(|(_, job)| job.as_str() == id)
            .map(|(entry, _)| entry)
            .collect();
        assert!(entries.len() <= 1, "job {id} is in the stream twice");
        let in_active = self.active.contains(id);
        let in_dead = self.dead.contains(id);
        let state = record.get("state").map(String::as_str).unwrap_or("");
        let place = match entries.first() {
            Some(entry) => {
                assert_eq!(
                    record.get("entry"),
                    Some(*entry),
                    "job {id}: record names another stream entry"
                );
                assert!(!in_dead, "job {id} is in the stream and dead");
                match self.pel.get(*entry) {
                    Some(consumer) => {
                        assert!(in_active, "job {id} is delivered but has no lease");
                        assert_eq!(
                            record.get("consumer"),
                            Some(consumer),
                            "job {id}: record and PEL disagree on the owner"
                        );
                        Place::Running(consumer.clone())
                    }
                    None => {
                        assert!(!in_active, "job {id} is undelivered but has a lease");
                        Place::Waiting
                    }
                }
            }
            // A running job's entry left the stream when FETCH delivered it: its lease and its
            // record say who runs it (and an entry field only if an older zrq delivered it, in
            // which case the pending list still names the entry).
            None if in_active => {
                assert!(!in_dead, "job {id} has a lease and is dead");
                let consumer = record.get("consumer").cloned().unwrap_or_default();
                if let Some(entry) = record.get("entry") {
                    assert_eq!(
                        self.pel.get(entry),
                        Some(&consumer),
                        "job {id}: running with entry field {entry}, which the pending list does not hold for its consumer"
                    );
                }
                Place::Running(consumer)
            }
            None => {
                if in_dead {
                    Place::Dead
                } else {
                    Place::Completed
                }
            }
        };
        let want = match place {
            Place::Waiting => "pending",
            Place::Running(_) => "active",
            Place::Completed => "completed",
            Place::Dead => "dead",
        };
        assert_eq!(state, want, "job {id}: record state vs structures {self:?}");
        place
    }
}

/// A stream's entries: entry id and field/value pairs (none if the key does not exist).
/// The job stream entry `entry` of stream `stream_key` stands for: the id a reference entry
/// names (its one field `job`), or the id of the job an inline entry holds (its own id, prefixed
/// `p<n>:` in the stream of priority n: `zrq_core::job::inline_id`).
pub fn entry_job(stream_key: &str, entry: &str, fields: &[(String, String)]) -> String {
    match fields {
        [(field, job)] if field == "job" => job.clone(),
        _ => {
            assert!(
                !fields.iter().any(|(f, _)| f == "job"),
                "a reference entry holds only the job id: {fields:?}"
            );
            let priority = stream_key
                .rsplit_once(":stream:")
                .and_then(|(_, p)| p.parse().ok())
                .unwrap_or(0);
            zrq_core::job::inline_id(priority, entry)
        }
    }
}

pub fn stream_entries(conn: &mut Connection, key: &str) -> Vec<(String, Vec<(String, String)>)> {
    match redis::cmd("XRANGE")
        .arg(key)
        .arg("-")
        .arg("+")
        .query::<Value>(conn)
        .expect("XRANGE")
    {
        Value::Array(items) => items
            .into_iter()
            .map(|entry| {
                let Value::Array(parts) = entry else {
                    panic!("stream entry {entry:?}")
                };
                let id = text(&parts[0]);
                let Value::Array(fields) = &parts[1] else {
                    panic!("stream fields {parts:?}")
                };
                let fields = fields
                    .chunks(2)
                    .map(|p| (text(&p[0]), text(&p[1])))
                    .collect();
                (id, fields)
            })
            .collect(),
        other => panic!("XRANGE reply {other:?}"),
    }
}

/// The pending entries of a stream's `zrq` group: (entry, consumer, idle ms, deliveries); none if
/// the stream does not exist.
pub fn pending_entries(conn: &mut Connection, key: &str) -> Vec<(String, String, i64, i64)> {
    let exists: i64 = redis::cmd("EXISTS").arg(key).query(conn).expect("EXISTS");
    if exists == 0 {
        return Vec::new();
    }
    redis::cmd("XPENDING")
        .arg(key)
        .arg("zrq")
        .arg("-")
        .arg("+")
        .arg(100_000)
        .query(conn)
        .expect("XPENDING")
}

/// Every key of `server`, sorted, each with `value(conn, key)`.
pub fn each_key<T>(
    server: &Server,
    mut value: impl FnMut(&mut Connection, &str) -> T,
) -> Vec<(String, T)> {
    let mut conn = server.conn();
    let mut keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut conn).expect("KEYS");
    keys.sort();
    keys.into_iter()
        .map(|key| {
            let v = value(&mut conn, &key);
            (key, v)
        })
        .collect()
}

/// `DEBUG DIGEST-VALUE` of every key, to name the keys that differ between two servers.
pub fn key_digests(server: &Server) -> Vec<(String, String)> {
    each_key(server, |conn, key| {
        let digest: Vec<String> = redis::cmd("DEBUG")
            .arg("DIGEST-VALUE")
            .arg(key)
            .query(conn)
            .expect("DEBUG DIGEST-VALUE");
        digest.join("")
    })
}

/// Every key with its absolute expire time (PEXPIRETIME; -1 without one).
pub fn expire_times(server: &Server) -> Vec<(String, i64)> {
    each_key(server, |conn, key| {
        redis::cmd("PEXPIRETIME")
            .arg(key)
            .query(conn)
            .expect("PEXPIRETIME")
    })
}

/// Runs raw commands (`[command, args…]`) that set up a fixture, ignoring their replies.
pub fn run_commands(conn: &mut Connection, commands: &[&[&str]]) {
    for args in commands {
        let _: Value = redis::cmd(args[0])
            .arg(&args[1..])
            .query(conn)
            .expect("fixture");
    }
}

/// Waits until the replica has applied everything the primary sent.
pub fn wait_replica_caught_up(primary: &Server, replica: &Server) {
    let mut p = primary.conn();
    primary.wait_for(|_| {
        let master = info_field(&mut p, "replication", "master_repl_offset");
        let mut r = replica.conn();
        let applied = info_field(&mut r, "replication", "master_repl_offset");
        master.is_some() && master == applied
    });
}

/// Every job of `queue` (ids from the `zrq:{queue}:job:*` keys, the inline entries of plain
/// pending jobs and the fields of the finished jobs' records hashes), sorted.
pub fn job_ids(conn: &mut Connection, queue: &str) -> Vec<String> {
    let prefix = format!("zrq:{{{queue}}}:job:");
    let mut keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query(conn)
        .expect("KEYS");
    let mut ids: BTreeSet<String> = keys
        .drain(..)
        .map(|k| k.strip_prefix(&prefix).unwrap_or(&k).to_string())
        .collect();
    ids.extend(inline_jobs(conn, queue).into_keys());
    for state in FINISHED_STATES {
        ids.extend(kept_records(conn, queue, state).into_keys());
    }
    ids.into_iter().collect()
}

/// The final states whose jobs, kept with the queue's retention, are fields of a records hash
/// with an entry in a log stream (DONE-SPEC): `completed` and `cancelled` (dead jobs keep their
/// own keys).
pub const FINISHED_STATES: [&str; 2] = ["completed", "cancelled"];

/// `zrq:{queue}:<state>:records`: the hash of the jobs that ended in `state` kept with the
/// queue's retention, id → packed record without its state.
pub fn records_key(queue: &str, state: &str) -> String {
    format!("zrq:{{{queue}}}:{state}:records")
}

/// `zrq:{queue}:<state>:log`: one entry (`id <job id>`) per job of [`records_key`], in order of
/// finishing; the entry id's ms is the job's `finished_at`.
pub fn log_key(queue: &str, state: &str) -> String {
    format!("zrq:{{{queue}}}:{state}:log")
}

/// The raw packed value of job `id`'s field in the `state` records hash, if any.
pub fn kept_raw(conn: &mut Connection, queue: &str, state: &str, id: &str) -> Option<Vec<u8>> {
    redis::cmd("HGET")
        .arg(records_key(queue, state))
        .arg(id)
        .query(conn)
        .expect("HGET records")
}

/// Job `id`'s record from the `state` records hash (its packed value decoded and checked as
/// [`packed_fields`] does, which must hold no state), with `state` filled in as readers do.
pub fn kept_record(
    conn: &mut Connection,
    queue: &str,
    state: &str,
    id: &str,
) -> Option<BTreeMap<String, String>> {
    let raw = kept_raw(conn, queue, state, id)?;
    Some(kept_fields(queue, state, id, &raw))
}

/// Decodes the packed value of a records hash field (see [`kept_record`]).
fn kept_fields(queue: &str, state: &str, id: &str, raw: &[u8]) -> BTreeMap<String, String> {
    let key = records_key(queue, state);
    let mut fields = decode_record(&key, raw);
    assert!(
        !fields.contains_key("state"),
        "{key} field {id} stores its state: {:?}",
        String::from_utf8_lossy(raw)
    );
    fields.insert("state".to_string(), state.to_string());
    fields
}

/// Every job of the `state` records hash: id → record with its state filled in
/// ([`kept_record`]).
pub fn kept_records(
    conn: &mut Connection,
    queue: &str,
    state: &str,
) -> BTreeMap<String, BTreeMap<String, String>> {
    let key = records_key(queue, state);
    if key_type(conn, &key) == "none" {
        return BTreeMap::new();
    }
    let all: BTreeMap<String, Vec<u8>> = redis::cmd("HGETALL")
        .arg(&key)
        .query(conn)
        .expect("HGETALL records");
    all.into_iter()
        .map(|(id, raw)| {
            let fields = kept_fields(queue, state, &id, &raw);
            (id, fields)
        })
        .collect()
}

/// Writes `fields` (their `state` left out: the hash says it) packed, in record order, as job
/// `id`'s field of the `state` records hash: to set up or change a kept job by hand.
pub fn write_kept(
    conn: &mut Connection,
    queue: &str,
    state: &str,
    id: &str,
    fields: &BTreeMap<String, String>,
) {
    let mut fields = fields.clone();
    fields.remove("state");
    let packed = zrq_core::packed::encode(&in_record_order(&fields)).expect("encode a record");
    let _: i64 = redis::cmd("HSET")
        .arg(records_key(queue, state))
        .arg(id)
        .arg(packed)
        .query(conn)
        .expect("HSET records");
}

/// The entries of the `state` log, oldest first: (entry id, the job id its `id` field names).
/// Fails the test on an entry holding anything but one `id` field.
pub fn log_entries(conn: &mut Connection, queue: &str, state: &str) -> Vec<(String, String)> {
    let key = log_key(queue, state);
    stream_entries(conn, &key)
        .into_iter()
        .map(|(entry, fields)| match fields.as_slice() {
            [(field, id)] if field == "id" => (entry, id.clone()),
            other => panic!("{key} entry {entry} holds {other:?}, not one id field"),
        })
        .collect()
}

/// The ms of a stream entry id `<ms>-<seq>`.
pub fn entry_ms(entry: &str) -> i64 {
    entry
        .split_once('-')
        .and_then(|(ms, _)| ms.parse().ok())
        .unwrap_or_else(|| panic!("{entry} is not a stream entry id"))
}

/// The jobs of `queue` held by inline stream entries (plain pending jobs), id → the record each
/// stands for (`zrq_core::job::Job::from_entry`, stored as a record would be), whether or not a
/// record was written for it meanwhile.
pub fn inline_jobs(
    conn: &mut Connection,
    queue: &str,
) -> BTreeMap<String, BTreeMap<String, String>> {
    let keys = zrq_core::keys::QueueKeys::new(queue);
    let mut out = BTreeMap::new();
    for priority in 0..=zrq_core::keys::MAX_PRIORITY {
        let stream = keys.stream_at(priority);
        for (entry, fields) in stream_entries(conn, &stream) {
            if fields.iter().any(|(f, _)| f == "job") {
                continue;
            }
            let job = zrq_core::job::Job::from_entry(&stream, queue, priority, &entry, fields)
                .unwrap_or_else(|e| panic!("inline entry {entry} of {stream}: {e}"));
            let record = job
                .to_fields()
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.into_owned()))
                .collect();
            out.insert(job.id, record);
        }
    }
    out
}

/// A job's raw record; for a plain pending job without one, the record its inline entry stands
/// for ([`inline_jobs`]); for a finished job kept with the queue's retention, its field of a
/// records hash with the state the hash says ([`kept_record`]). The record is read whatever its
/// format ([`stored_record`]); empty if the job has none.
pub fn record(conn: &mut Connection, queue: &str, id: &str) -> BTreeMap<String, String> {
    if let Some(stored) = stored_record(conn, &job_key(queue, id)) {
        return stored;
    }
    if let Some(inline) = inline_jobs(conn, queue).remove(id) {
        return inline;
    }
    FINISHED_STATES
        .iter()
        .find_map(|state| kept_record(conn, queue, state, id))
        .unwrap_or_default()
}

/// The key of job `id`'s record: `zrq:{queue}:job:<id>`.
pub fn job_key(queue: &str, id: &str) -> String {
    zrq_core::keys::QueueKeys::new(queue).job(id)
}

/// The Redis type of `key` (`string`, `hash`, `none`, …).
pub fn key_type(conn: &mut Connection, key: &str) -> String {
    redis::cmd("TYPE").arg(key).query(conn).expect("TYPE")
}

/// The raw bytes of string `key` (None if it does not exist).
pub fn raw_string(conn: &mut Connection, key: &str) -> Option<Vec<u8>> {
    redis::cmd("GET").arg(key).query(conn).expect("GET")
}

/// The job record stored at `key`, field → value, whatever its format: a packed string
/// (decoded with `zrq_core::packed`, which must accept it: a record zrq wrote that does not
/// decode fails the test) or a hash of the earlier format. None if the key does not exist; any
/// other type fails the test.
pub fn stored_record(conn: &mut Connection, key: &str) -> Option<BTreeMap<String, String>> {
    match key_type(conn, key).as_str() {
        "none" => None,
        // (Read again by GET and HGETALL: a record that expired meanwhile is no record.)
        "string" => raw_string(conn, key).map(|raw| decode_record(key, &raw)),
        "hash" => {
            let fields: BTreeMap<String, String> =
                redis::cmd("HGETALL").arg(key).query(conn).expect("HGETALL");
            (!fields.is_empty()).then_some(fields)
        }
        other => panic!("job record {key} is a {other}"),
    }
}

/// Decodes a packed record with zrq_core's codec; fails the test if it does not decode, or if
/// it is not exactly the spec's form of what it holds ([`packed_fields`]).
pub fn decode_record(key: &str, raw: &[u8]) -> BTreeMap<String, String> {
    packed_fields(key, raw).into_iter().collect()
}

/// The fields of a packed record in stored order, decoded with zrq_core's codec. Fails the test
/// if it does not decode, if its fields are not in record order (`zrq_core::job::FIELDS`), or if
/// the spec's encoding of those fields ([`pack_by_spec`]) is not byte for byte what is stored.
pub fn packed_fields(key: &str, raw: &[u8]) -> Vec<(String, String)> {
    let shown = String::from_utf8_lossy(raw);
    let fields: Vec<(String, String)> = match zrq_core::packed::decode(key, raw) {
        Ok(fields) => fields
            .into_iter()
            .map(|(name, value)| (name.to_string(), value))
            .collect(),
        Err(e) => panic!("{key} holds {shown:?}, which does not decode: {e}"),
    };
    let order: Vec<usize> = fields
        .iter()
        .map(|(name, _)| {
            zrq_core::job::FIELDS
                .iter()
                .position(|(f, _)| f == name)
                .unwrap_or_else(|| panic!("{key}: {name} is not a record field"))
        })
        .collect();
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "{key}: fields not in record order: {shown:?}"
    );
    let pairs: Vec<(&str, &str)> = fields
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        String::from_utf8_lossy(&pack_by_spec(&pairs)),
        shown,
        "{key}: stored record is not the spec's encoding of its fields"
    );
    fields
}

/// A packed record as comparable text: its fields in stored order, `tag len:value` as stored,
/// the values of the fields `blank` names (times, say) shown as `<name>` (with their lengths).
/// Checks the record as [`packed_fields`] does.
pub fn packed_view(key: &str, raw: &[u8], blank: impl Fn(&str) -> bool) -> String {
    let fields = packed_fields(key, raw);
    let shown: Vec<String> = fields
        .iter()
        .map(|(name, value)| {
            let tag = SPEC_TAGS
                .iter()
                .find(|(f, _)| f == name)
                .map(|(_, t)| char::from(*t))
                .unwrap_or('?');
            if blank(name) {
                format!("{tag}<len>:<{name}>")
            } else {
                format!("{tag}{}:{value}", value.len())
            }
        })
        .collect();
    shown.join(" ")
}

/// `fields` in the order a record stores them (`zrq_core::job::FIELDS`); a field with no place
/// there fails the test.
fn in_record_order(fields: &BTreeMap<String, String>) -> Vec<(&str, &str)> {
    for name in fields.keys() {
        assert!(
            zrq_core::job::FIELDS.iter().any(|(f, _)| f == name),
            "{name} is not a field of a job record"
        );
    }
    zrq_core::job::FIELDS
        .iter()
        .filter_map(|(name, _)| fields.get(*name).map(|v| (*name, v.as_str())))
        .collect()
}

/// Writes `fields` as the packed record at `key` (`SET key <packed> KEEPTTL`), in the order a
/// record stores them. `id` and `queue` cannot be packed: to store those, use
/// [`write_hash_record`].
pub fn write_packed(conn: &mut Connection, key: &str, fields: &BTreeMap<String, String>) {
    let ordered = in_record_order(fields);
    let packed = zrq_core::packed::encode(&ordered).expect("encode a record");
    set_raw(conn, key, packed.as_bytes());
}

/// Writes `bytes` as they are at `key` (`SET key <bytes> KEEPTTL`): for tests of malformed
/// packed records.
pub fn set_raw(conn: &mut Connection, key: &str, bytes: &[u8]) {
    let _: () = redis::cmd("SET")
        .arg(key)
        .arg(bytes)
        .arg("KEEPTTL")
        .query(conn)
        .expect("SET KEEPTTL");
}

/// Writes `fields` as a record of the earlier format at `key`: a hash, replacing whatever was
/// there, its TTL kept.
pub fn write_hash_record(conn: &mut Connection, key: &str, fields: &BTreeMap<String, String>) {
    let ttl: i64 = redis::cmd("PTTL").arg(key).query(conn).expect("PTTL");
    let mut tx = redis::pipe();
    tx.atomic();
    tx.cmd("DEL").arg(key).ignore();
    let mut hset = redis::cmd("HSET");
    hset.arg(key);
    for (name, value) in fields {
        hset.arg(name).arg(value);
    }
    tx.add_command(hset).ignore();
    if ttl > 0 {
        tx.cmd("PEXPIRE").arg(key).arg(ttl).ignore();
    }
    let _: () = tx.query(conn).expect("write a hash record");
}

/// Changes job `id`'s stored record, as a test that tweaks or corrupts a field does: reads it
/// (packed or hash; it must exist), lets `change` set or remove fields, and writes it back packed
/// (`SET … KEEPTTL`), whatever format it was in. Returns the record as written.
pub fn tamper(
    conn: &mut Connection,
    queue: &str,
    id: &str,
    change: impl FnOnce(&mut BTreeMap<String, String>),
) -> BTreeMap<String, String> {
    tamper_at(conn, &job_key(queue, id), change)
}

/// [`tamper`] of the record at `key`.
pub fn tamper_at(
    conn: &mut Connection,
    key: &str,
    change: impl FnOnce(&mut BTreeMap<String, String>),
) -> BTreeMap<String, String> {
    rewrite_record(conn, key, change, write_packed)
}

/// Reads the record at `key` (packed or hash; it must exist), lets `change` set or remove
/// fields, and writes it back with `write`. Returns the record as written. A job key without a
/// record whose job is kept in a records hash has its field there changed instead (written back
/// packed without its state, which stays the hash's: [`write_kept`]).
fn rewrite_record(
    conn: &mut Connection,
    key: &str,
    change: impl FnOnce(&mut BTreeMap<String, String>),
    write: fn(&mut Connection, &str, &BTreeMap<String, String>),
) -> BTreeMap<String, String> {
    if let Some(mut fields) = stored_record(conn, key) {
        change(&mut fields);
        write(conn, key, &fields);
        return fields;
    }
    let (queue, id, state, mut fields) =
        kept_at(conn, key).unwrap_or_else(|| panic!("tamper: {key} has no record"));
    change(&mut fields);
    write_kept(conn, &queue, &state, &id, &fields);
    fields
}

/// `zrq:{<queue>}:job:<id>` → (queue, id).
pub fn split_job_key(key: &str) -> Option<(String, String)> {
    let rest = key.strip_prefix("zrq:{")?;
    let (queue, id) = rest.split_once("}:job:")?;
    Some((queue.to_string(), id.to_string()))
}

/// The job of job key `key` as a records hash keeps it: (queue, id, state, record with the
/// state filled in), if it is kept there.
fn kept_at(
    conn: &mut Connection,
    key: &str,
) -> Option<(String, String, String, BTreeMap<String, String>)> {
    let (queue, id) = split_job_key(key)?;
    FINISHED_STATES.iter().find_map(|state| {
        kept_record(conn, &queue, state, &id)
            .map(|record| (queue.clone(), id.clone(), state.to_string(), record))
    })
}

/// The record of the job whose key is `key`: the one stored there ([`stored_record`]), else its
/// field of a records hash with its state filled in ([`kept_record`]); None if neither.
pub fn record_at(conn: &mut Connection, key: &str) -> Option<BTreeMap<String, String>> {
    stored_record(conn, key).or_else(|| kept_at(conn, key).map(|(_, _, _, record)| record))
}

/// Like [`tamper`], but writes the record back in the earlier format (a hash, TTL kept): for
/// changes a packed record cannot hold (an `id` or `queue` field, an unknown field), and for
/// tests of old records.
pub fn tamper_hash(
    conn: &mut Connection,
    queue: &str,
    id: &str,
    change: impl FnOnce(&mut BTreeMap<String, String>),
) -> BTreeMap<String, String> {
    tamper_hash_at(conn, &job_key(queue, id), change)
}

/// [`tamper_hash`] of the record at `key`.
pub fn tamper_hash_at(
    conn: &mut Connection,
    key: &str,
    change: impl FnOnce(&mut BTreeMap<String, String>),
) -> BTreeMap<String, String> {
    rewrite_record(conn, key, change, write_hash_record)
}

/// Runs a fixture command that may be one of the record pseudo-commands, which tests use where
/// they once ran HSET, HDEL or HGET on a job record: `RECORD-SET key field value` and
/// `RECORD-DEL key field` ([`tamper_at`]: written back packed), `RECORD-SET-HASH key field
/// value` ([`tamper_hash_at`]: written back as a hash of the earlier format), `RECORD-GET key
/// field` (the field's value, or nil; a job kept in a records hash is read there:
/// [`record_at`]). Any other command runs as it is. Returns the reply.
pub fn run_record_command(conn: &mut Connection, args: &[String]) -> redis::RedisResult<Value> {
    let set = |field: &String, value: &String| {
        let (field, value) = (field.clone(), value.clone());
        move |record: &mut BTreeMap<String, String>| {
            record.insert(field, value);
        }
    };
    match args {
        [cmd, key, field, value] if cmd == "RECORD-SET" => {
            tamper_at(conn, key, set(field, value));
            Ok(Value::Okay)
        }
        [cmd, key, field, value] if cmd == "RECORD-SET-HASH" => {
            tamper_hash_at(conn, key, set(field, value));
            Ok(Value::Okay)
        }
        [cmd, key, field] if cmd == "RECORD-DEL" => {
            tamper_at(conn, key, |record| {
                record.remove(field);
            });
            Ok(Value::Okay)
        }
        [cmd, key, field] if cmd == "RECORD-GET" => Ok(record_at(conn, key)
            .and_then(|mut record| record.remove(field))
            .map_or(Value::Nil, |v| Value::BulkString(v.into_bytes()))),
        _ => redis::cmd(&args[0]).arg(&args[1..]).query(conn),
    }
}

/// The packed form of `fields` as PACKED.md defines it, written here independently of
/// `zrq_core::packed` (to check the codec and both backends against the spec): each field
/// `<tag><byte length>:<value>` in the given order, separated by one space.
pub fn pack_by_spec<V: AsRef<[u8]>>(fields: &[(&str, V)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, (name, value)) in fields.iter().enumerate() {
        let tag = SPEC_TAGS
            .iter()
            .find(|(f, _)| f == name)
            .map(|(_, t)| *t)
            .unwrap_or_else(|| panic!("no tag for {name}"));
        if i > 0 {
            out.push(b' ');
        }
        let value = value.as_ref();
        out.push(tag);
        out.extend_from_slice(value.len().to_string().as_bytes());
        out.push(b':');
        out.extend_from_slice(value);
    }
    out
}

/// PACKED.md's tag table, copied from the spec (not from the code under test).
pub const SPEC_TAGS: &[(&str, u8)] = &[
    ("task", b't'),
    ("payload", b'p'),
    ("state", b's'),
    ("attempt", b'a'),
    ("max_attempts", b'm'),
    ("timeout", b'o'),
    ("priority", b'i'),
    ("backoff", b'b'),
    ("keep", b'k'),
    ("unique", b'u'),
    ("parents", b'P'),
    ("children", b'C'),
    ("waiting_on", b'W'),
    ("parents_done", b'D'),
    ("with_results", b'R'),
    ("on_parent_fail", b'F'),
    ("batch", b'B'),
    ("schedule", b'S'),
    ("created_at", b'c'),
    ("run_at", b'r'),
    ("started_at", b'g'),
    ("finished_at", b'f'),
    ("consumer", b'w'),
    ("lease", b'l'),
    ("progress", b'n'),
    ("cancel_requested", b'x'),
    ("entry", b'e'),
    ("result", b'v'),
    ("error", b'E'),
];

/// The queue stream's state as comparable text: entries, pending entries (id, consumer,
/// deliveries), `XINFO STREAM`, `XINFO GROUPS` and `XINFO CONSUMERS`, leaving out what is relative
/// to each server's clock (idle times) and the group's `entries-read` and `lag`.
///
/// `DEBUG DIGEST` on Redis 7.0 does not cover consumer groups, hence this. `entries-read` is left
/// out because Redis 7.0 propagates XREADGROUP as XCLAIM + `XGROUP SETID` without `ENTRIESREAD`,
/// so a replica or an AOF replay reports nil there for any consumer group (plain XREADGROUP
/// shows the same), and `lag`, computed from it, turns nil too once entries were deleted. Both
/// are derived counters; `last-delivered-id`, `pending`, the PEL and the entries are compared.
pub fn stream_state(conn: &mut Connection, queue: &str) -> Vec<String> {
    let key = format!("zrq:{{{queue}}}:stream");
    let exists: i64 = redis::cmd("EXISTS").arg(&key).query(conn).expect("EXISTS");
    if exists == 0 {
        return vec!["no stream".to_string()];
    }
    let mut out = Vec::new();
    let entries: Value = redis::cmd("XRANGE")
        .arg(&key)
        .arg("-")
        .arg("+")
        .query(conn)
        .expect("XRANGE");
    out.push(format!("XRANGE {entries:?}"));
    for (entry, consumer, _idle, deliveries) in pending_entries(conn, &key) {
        out.push(format!("PEL {entry} {consumer} {deliveries}"));
    }
    for what in ["STREAM", "GROUPS", "CONSUMERS"] {
        let mut cmd = redis::cmd("XINFO");
        cmd.arg(what).arg(&key);
        if what == "CONSUMERS" {
            cmd.arg("zrq");
        }
        let value: Value = cmd.query(conn).expect("XINFO");
        let records = match (what, value) {
            ("STREAM", value) => vec![value],
            (_, Value::Array(items)) => items,
            (_, other) => panic!("XINFO {what}: {other:?}"),
        };
        for record in records {
            let Value::Array(items) = record else {
                panic!("XINFO {what}: {record:?}")
            };
            for pair in items.chunks(2) {
                let field = text(&pair[0]);
                if !matches!(
                    field.as_str(),
                    "idle" | "inactive" | "seen-time" | "entries-read" | "lag"
                ) {
                    out.push(format!("XINFO {what} {field} {:?}", pair[1]));
                }
            }
        }
    }
    out
}

/// Packed strings that are not records, each with what is wrong with it (PACKED.md: strict
/// decoding). Each is the valid record `t1:t p2:{} s7:pending c1:1` broken in one way.
pub fn malformed_packed() -> Vec<(&'static str, Vec<u8>)> {
    let cases: &[(&str, &[u8])] = &[
        ("empty", b""),
        ("one space", b" "),
        ("unknown tag q", b"t1:t p2:{} s7:pending c1:1 q1:x"),
        ("unknown tag ?", b"?1:t p2:{} s7:pending c1:1"),
        ("id has no tag", b"d1:j t1:t p2:{} s7:pending c1:1"),
        ("two-letter tag", b"tt1:t p2:{} s7:pending c1:1"),
        ("length too short", b"t1:tt p2:{} s7:pending c1:1"),
        ("length too long", b"t2:t p2:{} s7:pending c1:1"),
        ("length beyond the string", b"t1:t p2:{} s7:pending c9:1"),
        ("length with a leading zero", b"t01:t p2:{} s7:pending c1:1"),
        ("length with a sign", b"t+1:t p2:{} s7:pending c1:1"),
        ("negative length", b"t-1:t p2:{} s7:pending c1:1"),
        ("no length", b"t:t p2:{} s7:pending c1:1"),
        (
            "eleven-digit length",
            b"t10000000000:t p2:{} s7:pending c1:1",
        ),
        (
            "ten-digit length beyond the string",
            b"t9999999999:t p2:{} s7:pending c1:1",
        ),
        ("length beyond u32", b"t4294967296:t p2:{} s7:pending c1:1"),
        ("missing ':'", b"t1t p2:{} s7:pending c1:1"),
        ("';' for ':'", b"t1;t p2:{} s7:pending c1:1"),
        ("trailing space", b"t1:t p2:{} s7:pending c1:1 "),
        ("leading space", b" t1:t p2:{} s7:pending c1:1"),
        ("two spaces", b"t1:t  p2:{} s7:pending c1:1"),
        ("no space", b"t1:tp2:{} s7:pending c1:1"),
        ("tab for space", b"t1:t\tp2:{} s7:pending c1:1"),
        ("duplicate tag", b"t1:t p2:{} s7:pending t1:u c1:1"),
        (
            "duplicate tag, same value",
            b"t1:t t1:t p2:{} s7:pending c1:1",
        ),
        ("tag only at the end", b"t1:t p2:{} s7:pending c1:1 a"),
        ("bare word", b"x"),
    ];
    cases
        .iter()
        .map(|(what, raw)| (*what, raw.to_vec()))
        .collect()
}
