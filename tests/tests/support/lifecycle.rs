//! Helpers shared by the lifecycle test files (they import it as `lifecycle_support`).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use zrq_tests::redis::{self, Connection, Value};
use zrq_tests::{jobs, map, JobMap, Server, Zrq};

/// The client's clock in unix ms (the test servers run on the same host, so the same clock).
pub fn now_ms() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970");
    i64::try_from(since.as_millis()).expect("ms fit in i64")
}

/// A reply as short comparable text: `nil`, integers, strings, `OK`; arrays as `[a,b]`.
pub fn show(value: &Value) -> String {
    match value {
        Value::Nil => "nil".to_string(),
        Value::Int(n) => n.to_string(),
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        Value::SimpleString(s) => s.clone(),
        Value::Okay => "OK".to_string(),
        Value::Array(items) => {
            format!("[{}]", items.iter().map(show).collect::<Vec<_>>().join(","))
        }
        other => format!("{other:?}"),
    }
}

/// The ids of a reply that is an array of jobs (FETCH, RECLAIM), as `jobs:[id,…]`.
pub fn show_jobs(value: Value) -> String {
    let ids: Vec<String> = jobs(value).into_iter().map(|j| j["id"].clone()).collect();
    format!("jobs:[{}]", ids.join(","))
}

/// Runs a zrq command expected to succeed, returning its raw reply.
pub fn ok(zrq: &mut Zrq, name: &str, args: &[&str]) -> Value {
    zrq.call::<Value>(name, args)
        .unwrap_or_else(|e| panic!("ZRQ.{} {args:?} failed: {e}", name.to_uppercase()))
}

/// Runs a zrq command whose reply is an integer.
pub fn int(zrq: &mut Zrq, name: &str, args: &[&str]) -> i64 {
    match ok(zrq, name, args) {
        Value::Int(n) => n,
        other => panic!(
            "ZRQ.{} {args:?}: expected an integer, got {other:?}",
            name.to_uppercase()
        ),
    }
}

/// A job's field, which must be present.
pub fn field(zrq: &mut Zrq, queue: &str, id: &str, name: &str) -> String {
    let job = zrq
        .job(queue, id)
        .unwrap_or_else(|| panic!("job {id} of {queue} is gone"));
    job.get(name)
        .unwrap_or_else(|| panic!("job {id} has no {name}: {job:?}"))
        .clone()
}

/// `ZRQ.INFO <queue>` as field → value.
pub fn info(zrq: &mut Zrq, queue: &str) -> JobMap {
    map(ok(zrq, "info", &[queue]))
}

/// One integer field of `ZRQ.INFO`.
pub fn info_int(zrq: &mut Zrq, queue: &str, name: &str) -> i64 {
    let info = info(zrq, queue);
    info.get(name)
        .unwrap_or_else(|| panic!("ZRQ.INFO {queue} has no {name}: {info:?}"))
        .parse()
        .expect("integer INFO field")
}

/// A paged reply (`[next-cursor, [job…]]`): the cursor and the jobs.
pub fn page(value: Value) -> (String, Vec<JobMap>) {
    let Value::Array(mut parts) = value else {
        panic!("expected [cursor, jobs], got {value:?}")
    };
    assert_eq!(parts.len(), 2, "expected [cursor, jobs], got {parts:?}");
    let items = parts.pop().expect("jobs");
    let cursor = show(&parts[0]);
    (cursor, jobs(items))
}

/// `ZRQ.LIST <queue> <state> …` → (cursor, ids).
pub fn list(zrq: &mut Zrq, queue: &str, state: &str, extra: &[&str]) -> (String, Vec<String>) {
    let mut args = vec![queue, state];
    args.extend_from_slice(extra);
    let (cursor, jobs) = page(ok(zrq, "list", &args));
    (cursor, jobs.into_iter().map(|j| j["id"].clone()).collect())
}

/// Every id in a state, following the cursor with pages of `count`.
pub fn list_all(zrq: &mut Zrq, queue: &str, state: &str, count: usize) -> Vec<String> {
    let (mut cursor, mut ids) = ("0".to_string(), Vec::new());
    let count = count.to_string();
    for _ in 0..10_000 {
        let (next, page) = list(zrq, queue, state, &["COUNT", &count, "CURSOR", &cursor]);
        ids.extend(page);
        if next == "0" {
            return ids;
        }
        cursor = next;
    }
    panic!("LIST {queue} {state} never ended")
}

fn stream_keys(queue: &str) -> Vec<String> {
    (0..=9)
        .map(|p| {
            if p == 0 {
                format!("zrq:{{{queue}}}:stream")
            } else {
                format!("zrq:{{{queue}}}:stream:{p}")
            }
        })
        .collect()
}

/// A stream's entries as (entry id, job id): the job a reference entry names or an inline
/// entry holds.
fn stream_entries(conn: &mut Connection, key: &str) -> Vec<(String, String)> {
    super::stream_entries(conn, key)
        .into_iter()
        .map(|(id, fields)| {
            let job = super::entry_job(key, &id, &fields);
            (id, job)
        })
        .collect()
}

/// A stream's pending entries as (entry id, consumer, deliveries).
fn pel(conn: &mut Connection, key: &str) -> Vec<(String, String, i64)> {
    super::pending_entries(conn, key)
        .into_iter()
        .map(|(entry, consumer, _, deliveries)| (entry, consumer, deliveries))
        .collect()
}

/// Where job `id` is, read from the raw structures: `stream` (undelivered entry), `pel:<consumer>`
/// (delivered entry), the names of the sorted sets that hold it (`active`, `scheduled`,
/// `retrying`, `completed`, `cancelled`, `dead`), `ttl` when its record expires, and
/// `<state>:records` / `<state>:log` when a records hash holds it / a log entry names it (a
/// finished job kept with the queue's retention).
pub fn placement(conn: &mut Connection, queue: &str, id: &str) -> BTreeSet<String> {
    let mut places = BTreeSet::new();
    for key in stream_keys(queue) {
        let delivered = pel(conn, &key);
        for (entry, job) in stream_entries(conn, &key) {
            if job == id {
                match delivered.iter().find(|(e, _, _)| *e == entry) {
                    Some((_, consumer, _)) => places.insert(format!("pel:{consumer}")),
                    None => places.insert("stream".to_string()),
                };
            }
        }
    }
    for set in [
        "active",
        "scheduled",
        "retrying",
        "completed",
        "cancelled",
        "dead",
    ] {
        let score: Option<f64> = redis::cmd("ZSCORE")
            .arg(format!("zrq:{{{queue}}}:{set}"))
            .arg(id)
            .query(conn)
            .expect("ZSCORE");
        if score.is_some() {
            places.insert(set.to_string());
        }
    }
    let ttl: i64 = redis::cmd("PTTL")
        .arg(format!("zrq:{{{queue}}}:job:{id}"))
        .query(conn)
        .expect("PTTL");
    if ttl >= 0 {
        places.insert("ttl".to_string());
    }
    for state in super::FINISHED_STATES {
        if super::kept_raw(conn, queue, state, id).is_some() {
            places.insert(format!("{state}:records"));
        }
        let logged = super::log_entries(conn, queue, state)
            .iter()
            .filter(|(_, job)| job == id)
            .count();
        for _ in 0..logged {
            // Twice in a log shows as two places of one name: a set holds it once, so count it.
            if !places.insert(format!("{state}:log")) {
                places.insert(format!("{state}:log (twice)"));
            }
        }
    }
    places
}

/// Where a job in `state` must be (see [`placement`]); a finished job kept with the queue's
/// retention (no per-job KEEP) is in its state's records hash and log.
pub fn expected_placement(state: &str) -> BTreeSet<String> {
    let names: Vec<String> = match state {
        "scheduled" => vec!["scheduled".into()],
        "pending" => vec!["stream".into()],
        // FETCH delivers without acknowledgement and trims the entry: a running job is in its
        // lease index only (`pel:` names only jobs an older zrq delivered).
        "active" => vec!["active".into()],
        "retrying" => vec!["retrying".into()],
        "completed" => vec!["completed:records".into(), "completed:log".into()],
        "cancelled" => vec!["cancelled:records".into(), "cancelled:log".into()],
        "dead" => vec!["dead".into()],
        other => panic!("unknown state {other}"),
    };
    names.into_iter().collect()
}

/// Asserts the job's state (through ZRQ.STATE and its record) and its placement agree.
pub fn assert_placed(server: &Server, zrq: &mut Zrq, queue: &str, id: &str, state: &str) {
    assert_eq!(
        zrq.state(queue, id).as_deref(),
        Some(state),
        "state of job {id}"
    );
    let mut conn = server.conn();
    assert_eq!(
        placement(&mut conn, queue, id),
        expected_placement(state),
        "placement of job {id} in state {state}"
    );
}

/// Like [`Server::snapshot`], but by value rather than by DUMP bytes: hashes as sorted fields,
/// sorted sets with scores, strings, and streams by their entries, pending entries and group
/// cursor. (A FETCH that delivers nothing still refreshes its consumer's seen-time, and an AOF
/// replay may lay out a small hash in another order: bookkeeping and encoding, not queue data.)
pub fn stable_snapshot(server: &Server) -> Vec<(String, String)> {
    let mut conn = server.conn();
    let mut keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut conn).expect("KEYS");
    keys.sort();
    keys.into_iter()
        .map(|key| {
            let kind: String = redis::cmd("TYPE").arg(&key).query(&mut conn).expect("TYPE");
            let value = match kind.as_str() {
                "stream" => stream_value(&mut conn, &key),
                "hash" => {
                    let fields: BTreeMap<String, String> = redis::cmd("HGETALL")
                        .arg(&key)
                        .query(&mut conn)
                        .expect("HGETALL");
                    format!("hash {fields:?}")
                }
                "zset" => {
                    let members: Vec<(String, String)> = redis::cmd("ZRANGE")
                        .arg(&key)
                        .arg(0)
                        .arg(-1)
                        .arg("WITHSCORES")
                        .query(&mut conn)
                        .expect("ZRANGE");
                    format!("zset {members:?}")
                }
                "string" => {
                    let value: Vec<u8> = redis::cmd("GET").arg(&key).query(&mut conn).expect("GET");
                    format!("string {value:?}")
                }
                other => {
                    let dump: Vec<u8> = redis::cmd("DUMP")
                        .arg(&key)
                        .query(&mut conn)
                        .unwrap_or_default();
                    format!("{other} {dump:?}")
                }
            };
            (key, value)
        })
        .collect()
}

fn stream_value(conn: &mut Connection, key: &str) -> String {
    let groups: Value = redis::cmd("XINFO")
        .arg("GROUPS")
        .arg(key)
        .query(conn)
        .expect("XINFO GROUPS");
    let groups = match groups {
        Value::Array(items) => items
            .iter()
            .map(|g| match g {
                Value::Array(kv) => kv
                    .chunks(2)
                    .filter(|p| {
                        matches!(
                            show(&p[0]).as_str(),
                            "name" | "last-delivered-id" | "pending"
                        )
                    })
                    .map(|p| format!("{}={}", show(&p[0]), show(&p[1])))
                    .collect::<Vec<_>>()
                    .join(" "),
                other => show(other),
            })
            .collect::<Vec<_>>()
            .join(";"),
        other => show(&other),
    };
    // A log of finished jobs (`<state>:log`) has no consumer group, hence no pending list; its
    // entries name jobs by an `id` field.
    if groups.is_empty() {
        let entries = super::stream_entries(conn, key);
        return format!("stream entries {entries:?}");
    }
    format!(
        "stream entries {:?} pel {:?} groups {groups}",
        stream_entries(conn, key),
        pel(conn, key)
    )
}

/// Sets a module config (`zrq.<name>`).
pub fn set_config(server: &Server, name: &str, value: &str) {
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg(format!("zrq.{name}"))
        .arg(value)
        .query(&mut server.conn())
        .unwrap_or_else(|e| panic!("CONFIG SET zrq.{name} {value}: {e}"));
}

/// The least time [`wait_until`] gives a condition: a loaded machine (a CI run beside other
/// work) can delay a timer or a worker by seconds, and waiting longer costs only a failing test.
const WAIT_FLOOR: Duration = Duration::from_secs(20);

/// Polls `check` every 5 ms until it holds or `limit` (at least [`WAIT_FLOOR`]) passes; returns
/// how long it took. A test that bounds a delay asserts on the returned duration itself.
pub fn wait_until(limit: Duration, what: &str, mut check: impl FnMut() -> bool) -> Duration {
    let limit = limit.max(WAIT_FLOOR);
    let start = Instant::now();
    while start.elapsed() < limit {
        if check() {
            return start.elapsed();
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("{what}: not reached within {limit:?}")
}

/// All job records of a queue (ids → fields), read raw, the records the inline entries of
/// plain pending jobs stand for ([`super::inline_jobs`]) and those of the finished jobs' records
/// hashes with their state filled in ([`super::kept_records`]).
pub fn records(conn: &mut Connection, queue: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut all = super::inline_jobs(conn, queue);
    for state in super::FINISHED_STATES {
        all.extend(super::kept_records(conn, queue, state));
    }
    all.extend(stored_records(conn, queue));
    all
}

/// All job records of a queue (ids → fields), read raw (packed or hash: [`super::stored_record`]).
fn stored_records(
    conn: &mut Connection,
    queue: &str,
) -> BTreeMap<String, BTreeMap<String, String>> {
    let prefix = format!("zrq:{{{queue}}}:job:");
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query(conn)
        .expect("KEYS");
    keys.into_iter()
        .map(|key| {
            let fields = super::stored_record(conn, &key).unwrap_or_default();
            (key.trim_start_matches(&prefix).to_string(), fields)
        })
        .collect()
}
