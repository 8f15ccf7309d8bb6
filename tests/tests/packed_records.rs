//! Packed job records (docs/PROTOCOL.md "Keys", PACKED.md), on both backends.
//!
//! A job record is a string `<tag><len>:<value>` per field, in record order, one space between
//! fields. Checked here:
//! - what zrq stores is exactly the spec's encoding (written here independently of the codec
//!   under test: `support::pack_by_spec`), as one string, with the retention TTL on a finished
//!   job;
//! - a record of the earlier format (a hash, compact or full) in each state works through the
//!   rest of its life exactly like a packed record of the same job made at the same moment (the
//!   "control"): same replies, same TTLs; it is read without being rewritten, and its first write
//!   replaces it with the packed string, its TTL kept (or set or dropped as the command does for
//!   a packed record);
//! - a string that is not a packed record (bad tag, bad length, missing ':', stray spaces, a tag
//!   twice, empty…) is `CORRUPT` for every command that reads it, and nothing is written.

use crate::support;

use std::collections::{BTreeMap, BTreeSet};

use support::lifecycle::{now_ms, wait_until};
use support::{error_text, job_key, key_type, record};
use zrq_tests::audit::assert_consistent;
use zrq_tests::redis::{self, Connection, Value};
use zrq_tests::{conformance, Backend, Zrq};

/// Retention given to the jobs here (ms).
const KEEP: i64 = 600_000;

fn pttl(conn: &mut Connection, queue: &str, id: &str) -> i64 {
    redis::cmd("PTTL")
        .arg(job_key(queue, id))
        .query(conn)
        .expect("PTTL")
}

// ------------------------------------------------------------------------------------------------
// The stored bytes.
// ------------------------------------------------------------------------------------------------

/// The stored string of a job is the spec's encoding of its fields, byte for byte: a job with
/// every kind of value (spaces, colons, digits, an empty-looking JSON, multi-byte UTF-8) at each
/// step of its life, and the spec's own example.
fn stored_bytes_are_the_spec_encoding(backend: Backend) {
    let server = backend.server();
    server.leave_leases_to_reclaim();
    let mut zrq = server.zrq(backend);
    let mut conn = server.conn();
    let q = "bytes";
    let payload = r#"{"s":"a b: c 12:x é中😀","n":[1,2]}"#;
    let keep = KEEP.to_string();
    let id = zrq.enqueue(
        q,
        "task:3:x",
        payload,
        &["ID", "j1", "RETRIES", "2", "TIMEOUT", "900", "KEEP", &keep],
    );
    let check = |conn: &mut Connection, when: &str| -> BTreeMap<String, String> {
        let key = job_key(q, &id);
        assert_eq!(key_type(conn, &key), "string", "{when}: a packed record");
        let raw = support::raw_string(conn, &key).expect("record");
        // `packed_fields` compares the bytes with the spec's encoding of what they decode to.
        let fields: BTreeMap<String, String> =
            support::packed_fields(&key, &raw).into_iter().collect();
        assert!(
            !fields.contains_key("id") && !fields.contains_key("queue"),
            "{when}: {fields:?}"
        );
        fields
    };
    let pending = check(&mut conn, "pending");
    assert_eq!(pending["task"], "task:3:x");
    assert_eq!(pending["payload"], payload);
    assert_eq!(pending["state"], "pending");
    assert_eq!(pending["max_attempts"], "3");
    assert_eq!(pending["keep"], keep);
    assert_eq!(pttl(&mut conn, q, &id), -1, "no TTL while pending");

    let fetched = zrq.fetch(q, "worker:1", 1);
    assert_eq!(fetched.len(), 1);
    let active = check(&mut conn, "active");
    assert_eq!(
        (active["state"].as_str(), active["attempt"].as_str()),
        ("active", "1")
    );
    assert_eq!(active["consumer"], "worker:1");
    let result = r#"{"r":"ok: 1 2 3"}"#;
    let acked: i64 = zrq.call("ack", &[q, &id, "RESULT", result]).expect("ACK");
    assert_eq!(acked, 1);
    let done = check(&mut conn, "completed");
    assert_eq!(done["state"], "completed");
    assert_eq!(done["result"], result);
    let ttl = pttl(&mut conn, q, &id);
    assert!(
        ttl > KEEP - 60_000 && ttl <= KEEP,
        "retention set with the record: PTTL {ttl}"
    );
    // The exact bytes of the finished record, field by field in the spec's order.
    let raw = support::raw_string(&mut conn, &job_key(q, &id)).expect("record");
    let want: Vec<(&str, &str)> = [
        "task",
        "payload",
        "state",
        "attempt",
        "max_attempts",
        "timeout",
        "keep",
        "created_at",
        "started_at",
        "finished_at",
        "consumer",
        "lease",
        "result",
    ]
    .iter()
    .filter_map(|f| done.get(*f).map(|v| (*f, v.as_str())))
    .collect();
    assert_eq!(want.len(), done.len(), "no other field: {done:?}");
    assert_eq!(
        String::from_utf8_lossy(&raw),
        String::from_utf8_lossy(&support::pack_by_spec(&want))
    );

    // PACKED.md's example, byte for byte.
    assert_eq!(
        support::pack_by_spec(&[
            ("task", "noop"),
            ("payload", r#"{"n":1}"#),
            ("state", "active"),
            ("attempt", "1")
        ]),
        br#"t4:noop p7:{"n":1} s6:active a1:1"#.to_vec()
    );
    // The codec under test agrees with it both ways.
    assert_eq!(
        zrq_core::packed::encode(&[
            ("task", "noop"),
            ("payload", r#"{"n":1}"#),
            ("state", "active"),
            ("attempt", "1")
        ])
        .expect("encode"),
        r#"t4:noop p7:{"n":1} s6:active a1:1"#
    );
    assert_eq!(
        support::decode_record("k", br#"t4:noop p7:{"n":1} s6:active a1:1"#),
        BTreeMap::from([
            ("task".to_string(), "noop".to_string()),
            ("payload".to_string(), r#"{"n":1}"#.to_string()),
            ("state".to_string(), "active".to_string()),
            ("attempt".to_string(), "1".to_string()),
        ])
    );
}

// ------------------------------------------------------------------------------------------------
// Records of the earlier format.
// ------------------------------------------------------------------------------------------------

/// Two jobs made alike at the same moment: `new` stays as zrq wrote it (packed), `old` is turned
/// into a record of the earlier format.
struct Pair {
    new: String,
    old: String,
}

/// Fields that differ between two jobs made a moment apart.
const VARYING: [&str; 8] = [
    "id",
    "created_at",
    "started_at",
    "finished_at",
    "run_at",
    "lease",
    "entry",
    "unique",
];

fn without_varying(mut map: BTreeMap<String, String>) -> BTreeMap<String, String> {
    for field in VARYING {
        map.remove(field);
    }
    map
}

struct Upgrade {
    zrq: Zrq,
    conn: Connection,
    queue: &'static str,
    /// Whether old records are in the full format (with `id`, `queue` and every default) rather
    /// than the compact hash written just before packed records.
    full: bool,
    /// Every job made, for the audit.
    ids: BTreeSet<String>,
}

impl Upgrade {
    /// Enqueues the pair `<name>-new`, `<name>-old` with `options`.
    fn pair(&mut self, name: &str, options: &[&str]) -> Pair {
        let mut made = Vec::new();
        for which in ["new", "old"] {
            let id = format!("{name}-{which}");
            let mut args = vec!["ID", id.as_str()];
            args.extend_from_slice(options);
            let got = self.zrq.enqueue(self.queue, "t", r#"{"p":1}"#, &args);
            assert_eq!(got, id);
            self.ids.insert(id.clone());
            made.push(id);
        }
        let old = made.pop().expect("old");
        let new = made.pop().expect("new");
        Pair { new, old }
    }

    /// Rewrites `pair.old`'s record as a hash of the earlier format (its TTL kept), as an older
    /// zrq left it; checks it reads as before.
    fn make_old(&mut self, pair: &Pair) {
        let before = self.zrq.job(self.queue, &pair.old);
        let (queue, id, full) = (self.queue, pair.old.clone(), self.full);
        let ttl = pttl(&mut self.conn, queue, &pair.old);
        support::tamper_hash(&mut self.conn, queue, &pair.old, |record| {
            if full {
                record.insert("id".to_string(), id.clone());
                record.insert("queue".to_string(), queue.to_string());
                for (name, default) in zrq_core::job::DEFAULTS {
                    record
                        .entry(name.to_string())
                        .or_insert_with(|| default.to_string());
                }
            }
        });
        assert_eq!(self.kind(&pair.old), "hash");
        let after = pttl(&mut self.conn, queue, &pair.old);
        assert!(
            (ttl < 0 && after == ttl) || (ttl > 0 && after > 0 && after <= ttl),
            "TTL kept: {ttl} then {after}"
        );
        assert_eq!(
            self.zrq.job(self.queue, &pair.old),
            before,
            "the old record reads as the packed one did"
        );
    }

    fn kind(&mut self, id: &str) -> String {
        key_type(&mut self.conn, &job_key(self.queue, id))
    }

    /// Reads `pair` every way a client can, and checks that did not write the old record (still
    /// a hash, same TTL, same bytes).
    fn read_without_writing(&mut self, pair: &Pair, when: &str) {
        let key = job_key(self.queue, &pair.old);
        let dump = |conn: &mut Connection| -> Vec<u8> {
            redis::cmd("DUMP").arg(&key).query(conn).expect("DUMP")
        };
        let before = dump(&mut self.conn);
        let state = self.zrq.state(self.queue, &pair.old).expect("state");
        assert_eq!(
            self.zrq.state(self.queue, &pair.new).as_deref(),
            Some(state.as_str())
        );
        let _: Value = self
            .zrq
            .call("result", &[self.queue, &pair.old])
            .expect("RESULT");
        let (_, listed): (String, Value) = self
            .zrq
            .call("list", &[self.queue, &state, "COUNT", "100"])
            .expect("LIST");
        let listed = zrq_tests::jobs(listed);
        assert!(
            listed.iter().any(|j| j["id"] == pair.old),
            "{when}: LIST {state} lists {}: {listed:?}",
            pair.old
        );
        let _: Value = self.zrq.call("info", &[self.queue]).expect("INFO");
        assert_eq!(self.kind(&pair.old), "hash", "{when}: a read rewrote it");
        assert_eq!(dump(&mut self.conn), before, "{when}: a read changed it");
    }

    /// The two jobs read alike (JOB), their records hold the same (once the old one is packed),
    /// and their TTLs agree: none on both, or both within a minute of each other.
    fn alike(&mut self, pair: &Pair, when: &str) {
        let (new, old) = (
            self.zrq.job(self.queue, &pair.new).expect("new job"),
            self.zrq.job(self.queue, &pair.old).expect("old job"),
        );
        assert_eq!(
            without_varying(new),
            without_varying(old),
            "{when}: JOB of {} and {}",
            pair.new,
            pair.old
        );
        if self.kind(&pair.old) == "string" {
            let (new, old) = (
                record(&mut self.conn, self.queue, &pair.new),
                record(&mut self.conn, self.queue, &pair.old),
            );
            assert_eq!(
                without_varying(new.clone()).keys().collect::<Vec<_>>(),
                without_varying(old.clone()).keys().collect::<Vec<_>>(),
                "{when}: stored fields"
            );
            assert_eq!(
                without_varying(new),
                without_varying(old),
                "{when}: stored records"
            );
        }
        let (tn, to) = (
            pttl(&mut self.conn, self.queue, &pair.new),
            pttl(&mut self.conn, self.queue, &pair.old),
        );
        assert!(
            (tn == -1 && to == -1) || (tn > 0 && to > 0 && (tn - to).abs() < 60_000),
            "{when}: TTLs {tn} (packed) and {to} (old)"
        );
    }

    /// The first write: `pair.old` is now the packed string (its fields as the packed job's).
    fn upgraded(&mut self, pair: &Pair, when: &str) {
        assert_eq!(self.kind(&pair.new), "string", "{when}: {}", pair.new);
        assert_eq!(
            self.kind(&pair.old),
            "string",
            "{when}: the first write packs {}",
            pair.old
        );
        self.alike(pair, when);
    }

    /// FETCHes until both jobs of `pair` are delivered (to `consumer`); returns their leases.
    fn fetch_both(&mut self, pair: &Pair, consumer: &str) -> BTreeMap<String, String> {
        let mut leases = BTreeMap::new();
        let (queue, zrq) = (self.queue, &mut self.zrq);
        wait_until(
            std::time::Duration::from_secs(30),
            "both jobs delivered",
            || {
                for job in zrq.fetch(queue, consumer, 10) {
                    assert!(
                        job["id"] == pair.new || job["id"] == pair.old,
                        "another job was pending: {job:?}"
                    );
                    leases.insert(job["id"].clone(), job["lease"].clone());
                }
                leases.len() == 2
            },
        );
        leases
    }

    /// Runs `command <queue> <id> args…` on both jobs of `pair`; the replies must agree.
    fn both(&mut self, pair: &Pair, command: &str, args: &[&str]) -> Value {
        let mut replies = Vec::new();
        for id in [&pair.new, &pair.old] {
            let mut all = vec![self.queue, id.as_str()];
            all.extend_from_slice(args);
            let reply: Value = self
                .zrq
                .call(command, &all)
                .unwrap_or_else(|e| panic!("{command} {id}: {e}"));
            replies.push(reply);
        }
        assert_eq!(
            replies[0], replies[1],
            "{command}: packed and old replied alike"
        );
        replies.remove(0)
    }

    fn assert_ttl_near_keep(&mut self, pair: &Pair, when: &str) {
        for id in [&pair.new, &pair.old] {
            let ttl = pttl(&mut self.conn, self.queue, id);
            assert!(
                ttl > KEEP - 60_000 && ttl <= KEEP,
                "{when}: {id} retention PTTL {ttl}"
            );
        }
    }
}

/// Old records in each state work through the rest of their life like packed ones, and become
/// packed strings on their first write with their TTL as a packed record's.
fn old_records_upgrade_on_their_first_write(backend: Backend) {
    let server = backend.server();
    server.leave_leases_to_reclaim();
    for (queue, full) in [("compact", false), ("full", true)] {
        let mut t = Upgrade {
            zrq: server.zrq(backend),
            conn: server.conn(),
            queue,
            full,
            ids: BTreeSet::new(),
        };
        let keep = KEEP.to_string();
        let keep = ["KEEP", keep.as_str()];

        // Pending with a record: FETCH is its first write; then ACK sets the retention.
        let p = t.pair("pending", &keep);
        t.make_old(&p);
        t.read_without_writing(&p, "pending");
        t.alike(&p, "pending");
        t.fetch_both(&p, "w");
        t.upgraded(&p, "pending, after FETCH");
        t.both(&p, "ack", &["RESULT", "[1]"]);
        t.upgraded(&p, "pending, after ACK");
        t.assert_ttl_near_keep(&p, "pending, after ACK");

        // Pending with a record and a TTL (nothing zrq sets, but a write that does not end the
        // job keeps a key's TTL, whatever the record's format).
        let e = t.pair("expiring", &keep);
        for id in [&e.new, &e.old] {
            let _: i64 = redis::cmd("PEXPIRE")
                .arg(job_key(queue, id))
                .arg(500_000)
                .query(&mut t.conn)
                .expect("PEXPIRE");
        }
        t.make_old(&e);
        t.fetch_both(&e, "w");
        t.upgraded(&e, "expiring, after FETCH");
        for id in [&e.new, &e.old] {
            let ttl = pttl(&mut t.conn, queue, id);
            assert!(
                ttl > 440_000 && ttl <= 500_000,
                "FETCH kept {id}'s TTL: {ttl}"
            );
        }
        t.both(&e, "ack", &[]);
        t.assert_ttl_near_keep(&e, "expiring, after ACK");

        // Active: TOUCH is its first write, then ACK.
        let a = t.pair("active", &keep);
        t.fetch_both(&a, "w");
        t.make_old(&a);
        t.read_without_writing(&a, "active");
        t.both(&a, "touch", &["PROGRESS", "50"]);
        t.upgraded(&a, "active, after TOUCH");
        t.both(&a, "ack", &[]);
        t.upgraded(&a, "active, after ACK");
        t.assert_ttl_near_keep(&a, "active, after ACK");

        // Active: ACK is its first write (the packed record and its retention in one write).
        let a2 = t.pair("active2", &keep);
        t.fetch_both(&a2, "w");
        t.make_old(&a2);
        t.both(&a2, "ack", &["RESULT", "\"x\""]);
        t.upgraded(&a2, "active, ACK first");
        t.assert_ttl_near_keep(&a2, "active, ACK first");

        // Active: FAIL (a retry), then its promotion and delivery, then ACK.
        let a3 = t.pair("active3", &keep);
        t.fetch_both(&a3, "w");
        t.make_old(&a3);
        let state = t.both(&a3, "fail", &["boom", "RETRYIN", "1"]);
        assert_eq!(state, Value::BulkString(b"retrying".to_vec()));
        // (Not compared field by field here: the timer may promote one before the other.)
        for id in [&a3.new, &a3.old] {
            assert_eq!(t.kind(id), "string", "FAIL packs {id}");
        }
        t.fetch_both(&a3, "w");
        t.alike(&a3, "retried, delivered again");
        t.both(&a3, "ack", &[]);
        t.assert_ttl_near_keep(&a3, "retried, after ACK");

        // Scheduled: its promotion (the module's timer, or Lua's FETCH) is its first write.
        let s = t.pair("scheduled", &["DELAY", "5000", "KEEP", &KEEP.to_string()]);
        t.make_old(&s);
        assert_eq!(
            t.zrq.state(queue, &s.old).as_deref(),
            Some("scheduled"),
            "converted before it was due"
        );
        t.read_without_writing(&s, "scheduled");
        t.alike(&s, "scheduled");
        t.fetch_both(&s, "w");
        t.upgraded(&s, "scheduled, after delivery");
        t.both(&s, "ack", &[]);
        t.assert_ttl_near_keep(&s, "scheduled, after ACK");

        // Scheduled: CANCEL is its first write, with the retention.
        let s2 = t.pair(
            "scheduled2",
            &["DELAY", "600000", "KEEP", &KEEP.to_string()],
        );
        t.make_old(&s2);
        t.both(&s2, "cancel", &[]);
        t.upgraded(&s2, "scheduled, after CANCEL");
        t.assert_ttl_near_keep(&s2, "scheduled, after CANCEL");

        // Completed with its retention: reads do not rewrite it and its TTL stays; DELETE
        // removes it like a packed one.
        let c = t.pair("completed", &keep);
        t.fetch_both(&c, "w");
        t.both(&c, "ack", &["RESULT", "7"]);
        t.make_old(&c);
        t.read_without_writing(&c, "completed");
        t.alike(&c, "completed");
        t.assert_ttl_near_keep(&c, "completed, old");
        let result = zrq_tests::map(t.zrq.call("result", &[queue, &c.old]).expect("RESULT"));
        assert_eq!(result["result"], "7");

        // Dead: REQUEUE is its first write (dropping no TTL: a dead job has none), then a new
        // life.
        let d = t.pair("dead", &["RETRIES", "0", "KEEP", &KEEP.to_string()]);
        t.fetch_both(&d, "w");
        t.both(&d, "fail", &["boom"]);
        t.make_old(&d);
        t.read_without_writing(&d, "dead");
        t.both(&d, "requeue", &[]);
        t.upgraded(&d, "dead, after REQUEUE");
        t.fetch_both(&d, "w");
        t.both(&d, "ack", &[]);
        t.upgraded(&d, "requeued, after ACK");
        t.assert_ttl_near_keep(&d, "requeued, after ACK");

        // Every record written since is packed; the untouched old completed one is still a hash.
        assert_consistent(&mut t.conn, backend, queue, Some(&t.ids));
        t.both(&c, "delete", &[]);
        for id in [&c.new, &c.old] {
            assert_eq!(t.zrq.state(queue, id), None, "{id} deleted");
        }
        t.ids.remove(&c.new);
        t.ids.remove(&c.old);
        for id in t.ids.clone() {
            assert_eq!(t.kind(&id), "string", "{id} was written: packed");
        }
        assert_consistent(&mut t.conn, backend, queue, Some(&t.ids));
    }
}

/// An old completed record ends by its TTL like a packed one: the key expires, and the index
/// member is trimmed (the module's timer, or Lua's FETCH).
fn old_finished_records_expire_by_their_ttl(backend: Backend) {
    let server = backend.server();
    let queue = "expire";
    let mut t = Upgrade {
        zrq: server.zrq(backend),
        conn: server.conn(),
        queue,
        full: false,
        ids: BTreeSet::new(),
    };
    let c = t.pair("c", &["KEEP", "1500"]);
    t.fetch_both(&c, "w");
    t.both(&c, "ack", &[]);
    t.make_old(&c);
    wait_until(
        std::time::Duration::from_secs(30),
        "both records expired and their index members trimmed",
        || {
            let _ = t.zrq.fetch(queue, "w", 1);
            let exists: i64 = redis::cmd("EXISTS")
                .arg(job_key(queue, &c.new))
                .arg(job_key(queue, &c.old))
                .query(&mut t.conn)
                .expect("EXISTS");
            let indexed: i64 = redis::cmd("ZCARD")
                .arg(format!("zrq:{{{queue}}}:completed"))
                .query(&mut t.conn)
                .expect("ZCARD");
            exists == 0 && indexed == 0
        },
    );
}

/// ENQUEUE with the `ID` of a job that has a record, in either format, replies that id and
/// writes nothing (the record exists: it is not read, so even a malformed one is left alone).
fn enqueue_id_finds_a_record_in_either_format(backend: Backend) {
    let server = backend.server();
    let mut zrq = server.zrq(backend);
    let mut conn = server.conn();
    let q = "dup";
    zrq.enqueue(q, "t", "{\"v\":1}", &["ID", "packed"]);
    zrq.enqueue(q, "t", "{\"v\":1}", &["ID", "old"]);
    support::tamper_hash(&mut conn, q, "old", |_| {});
    support::set_raw(&mut conn, &job_key(q, "broken"), b"t1:t s7:pending ");
    for id in ["packed", "old", "broken"] {
        let before = server.snapshot();
        assert_eq!(zrq.enqueue(q, "t", "{\"v\":2}", &["ID", id]), id);
        assert_eq!(server.snapshot(), before, "ENQUEUE ID {id} wrote");
    }
    assert_eq!(key_type(&mut conn, &job_key(q, "old")), "hash");
    assert_eq!(record(&mut conn, q, "old")["payload"], "{\"v\":1}");
}

/// A field an old record holds that is no job field (written by hand, say) is kept out of
/// replies, as before, and is not carried into the packed record (which has no tag for it).
fn unknown_fields_of_an_old_record_do_not_survive_its_first_write(backend: Backend) {
    let server = backend.server();
    let mut zrq = server.zrq(backend);
    let mut conn = server.conn();
    let q = "extra";
    zrq.enqueue(q, "t", "{}", &["ID", "j"]);
    support::tamper_hash(&mut conn, q, "j", |record| {
        record.insert("extra".to_string(), "kept out".to_string());
    });
    let job = zrq.job(q, "j").expect("job");
    assert!(!job.contains_key("extra"), "{job:?}");
    assert_eq!(zrq.fetch(q, "w", 1).len(), 1);
    assert_eq!(key_type(&mut conn, &job_key(q, "j")), "string");
    let stored = record(&mut conn, q, "j");
    assert!(!stored.contains_key("extra"), "{stored:?}");
    assert_eq!(stored["state"], "active");
}

// ------------------------------------------------------------------------------------------------
// Keyspace events.
// ------------------------------------------------------------------------------------------------

/// The keyspace events of a job record through its life are those of whole-string writes:
/// `set` for each write, `expire` with the retention at the end; never a hash event.
fn record_writes_notify_set_and_expire(backend: Backend) {
    let server = backend.server();
    let mut conn = server.conn();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("notify-keyspace-events")
        .arg("KA")
        .query(&mut conn)
        .expect("CONFIG SET notify-keyspace-events");
    let q = "events";
    let key = job_key(q, "j");
    let mut listener = server.conn();
    let mut pubsub = listener.as_pubsub();
    pubsub
        .subscribe(format!("__keyspace@0__:{key}"))
        .expect("SUBSCRIBE");
    pubsub
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .expect("read timeout");
    let mut zrq = server.zrq(backend);
    zrq.enqueue(q, "t", "{}", &["ID", "j", "KEEP", "60000"]);
    assert_eq!(zrq.fetch(q, "w", 1).len(), 1);
    let touched: i64 = zrq
        .call("touch", &[q, "j", "PROGRESS", "5"])
        .expect("TOUCH");
    assert_eq!(touched, 1);
    let acked: i64 = zrq.call("ack", &[q, "j", "RESULT", "1"]).expect("ACK");
    assert_eq!(acked, 1);
    // A marker on the same connection's subscription: every event before it has arrived.
    let _: i64 = redis::cmd("PUBLISH")
        .arg(format!("__keyspace@0__:{key}"))
        .arg("end")
        .query(&mut conn)
        .expect("PUBLISH");
    let mut events = Vec::new();
    loop {
        let msg = pubsub.get_message().expect("the events, then the marker");
        let event: String = msg.get_payload().expect("event name");
        if event == "end" {
            break;
        }
        events.push(event);
    }
    assert_eq!(
        events,
        ["set", "set", "set", "set", "expire"],
        "ENQUEUE, FETCH, TOUCH, ACK (with its retention)"
    );
}

// ------------------------------------------------------------------------------------------------
// Malformed packed strings.
// ------------------------------------------------------------------------------------------------

/// Every malformed string at a job key is `CORRUPT` for each command that reads the record (as a
/// pending job, and as an active one with a lease), with the same text on both backends (the
/// cross-backend test compares them), and nothing is written.
fn malformed_packed_records_are_corrupt_and_write_nothing(backend: Backend) {
    let server = backend.server();
    server.leave_leases_to_reclaim();
    let mut zrq = server.zrq(backend);
    let mut conn = server.conn();
    let q = "bad";
    let key = job_key(q, "j");
    let prefix = format!("CORRUPT '{key}' is not a zrq record: ");
    for (what, raw) in support::malformed_packed() {
        for active in [false, true] {
            let _: i64 = redis::cmd("DEL")
                .arg(&key)
                .arg(format!("zrq:{{{q}}}:active"))
                .query(&mut conn)
                .expect("DEL");
            support::set_raw(&mut conn, &key, &raw);
            if active {
                // A lease in the index: ACK, FAIL, TOUCH, RELEASE and RECLAIM read the record.
                let _: i64 = redis::cmd("ZADD")
                    .arg(format!("zrq:{{{q}}}:active"))
                    .arg(now_ms() + 600_000)
                    .arg("j")
                    .query(&mut conn)
                    .expect("ZADD");
            }
            let commands: &[(&str, &[&str])] = &[
                ("job", &[]),
                ("state", &[]),
                ("result", &[]),
                ("ack", &[]),
                ("ack", &["RESULT", "1"]),
                ("fail", &["boom"]),
                ("touch", &[]),
                ("cancel", &[]),
                ("release", &[]),
                ("delete", &[]),
            ];
            for (command, rest) in commands {
                let case = format!("{what} ({raw:?}), active {active}: {command} {rest:?}");
                let mut args: Vec<Vec<u8>> = vec![q.into(), b"j".to_vec()];
                args.extend(rest.iter().map(|a| a.as_bytes().to_vec()));
                support::assert_refused(&server, &mut zrq, &case, command, &args, |text, code| {
                    assert_eq!(code, "CORRUPT", "{case}: {text}");
                    assert!(text.starts_with(&prefix), "{case}: {text}");
                });
            }
            let before = server.snapshot();
            let err = zrq.call::<Value>("job", &[q, "j"]).expect_err("corrupt");
            assert!(error_text(&err).starts_with(&prefix));
            assert_eq!(server.snapshot(), before);
        }
    }
}

/// A malformed record does not stop other jobs: FETCH drops a stream entry whose record does
/// not decode (as it drops one whose hash record cannot be read), and serves the next job.
fn fetch_steps_over_a_malformed_record(backend: Backend) {
    let server = backend.server();
    let mut zrq = server.zrq(backend);
    let mut conn = server.conn();
    let q = "skip";
    zrq.enqueue(q, "t", "{}", &["ID", "broken"]);
    let good = zrq.enqueue(q, "t", "{}", &["ID", "good"]);
    support::set_raw(&mut conn, &job_key(q, "broken"), b"t1:t s7:pending c1:1 ");
    let fetched = zrq.fetch(q, "w", 10);
    let ids: Vec<&str> = fetched.iter().map(|j| j["id"].as_str()).collect();
    assert_eq!(ids, [good.as_str()]);
    let err = zrq
        .call::<Value>("job", &[q, "broken"])
        .expect_err("still corrupt");
    assert!(error_text(&err).starts_with("CORRUPT "), "{err}");
}

conformance!(
    stored_bytes_are_the_spec_encoding,
    old_records_upgrade_on_their_first_write,
    old_finished_records_expire_by_their_ttl,
    malformed_packed_records_are_corrupt_and_write_nothing,
    fetch_steps_over_a_malformed_record,
    record_writes_notify_set_and_expire,
    enqueue_id_finds_a_record_in_either_format,
    unknown_fields_of_an_old_record_do_not_survive_its_first_write,
);
