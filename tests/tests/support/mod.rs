//! Helpers shared by the integration tests (each test binary uses a subset); those of the
//! lifecycle tests are in `lifecycle`.
#![allow(dead_code)]

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
        let key = format!("zrq:{{{queue}}}:job:{id}");
        let record: BTreeMap<String, String> = redis::cmd("HGETALL")
            .arg(&key)
            .query(conn)
            .expect("HGETALL");
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

/// Every job of `queue` (ids from the `zrq:{queue}:job:*` keys), sorted.
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
    ids.into_iter().collect()
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
/// for ([`inline_jobs`]).
pub fn record(conn: &mut Connection, queue: &str, id: &str) -> BTreeMap<String, String> {
    let stored: BTreeMap<String, String> = redis::cmd("HGETALL")
        .arg(format!("zrq:{{{queue}}}:job:{id}"))
        .query(conn)
        .expect("HGETALL");
    if !stored.is_empty() {
        return stored;
    }
    inline_jobs(conn, queue).remove(id).unwrap_or_default()
}

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
