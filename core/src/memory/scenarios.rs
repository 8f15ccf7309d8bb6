//! The command logic over [`MemoryStore`]: each test runs commands parsed from their arguments as
//! the module does, and checks what they replied and left in the keyspace.

use super::{MemoryStore, Value};
use crate::commands::{
    ack::Ack, batch::Batch, batchinfo::BatchInfo, cancel::Cancel, dead::Dead, delete::Delete,
    enqueue::Enqueue, fail::Fail, fetch::Fetch, info::Info, job::JobOf, list::List, pause::Pause,
    promote::promote, queues::Queues, reclaim::Reclaim, release::Release, requeue::Requeue,
    result::ResultOf, schedule::Schedule, state::StateOf, touch::Touch,
};
use crate::job::Job;
use crate::store::{KeyType, Store};
use crate::{ErrorCode, Reply};

/// The clock the tests start at.
const T: i64 = 1_700_000_000_000;

/// A store and a source of ids for jobs that are not plain.
struct World {
    store: MemoryStore,
    ids: u64,
}

impl World {
    fn new() -> Self {
        World {
            store: MemoryStore::new(T),
            ids: 0,
        }
    }

    /// Runs one command given as `NAME arg …` (arguments split at spaces), as the module does:
    /// parsed from bytes, then applied. FETCH and RECLAIM reply with their jobs' maps.
    fn run(&mut self, line: &str) -> crate::Result<Reply> {
        let mut words = line.split(' ');
        let name = words.next().unwrap_or_default();
        let args: Vec<&[u8]> = words.map(str::as_bytes).collect();
        let config = self.store.config;
        let store = &mut self.store;
        let jobs = |jobs: Vec<Job>| Reply::Array(jobs.iter().map(Job::to_reply).collect());
        match name {
            "ENQUEUE" => {
                self.ids += 1;
                let id = format!("job-{}", self.ids);
                Enqueue::parse(&args, &config)?.apply(store, || id)
            }
            "BATCH" => {
                let ids = &mut self.ids;
                let mut new_id = || {
                    *ids += 1;
                    format!("job-{ids}")
                };
                Batch::parse(&args, &config)?.apply(store, &mut new_id)
            }
            "FETCH" => Fetch::parse(&args)?.apply(store).map(jobs),
            "RECLAIM" => Reclaim::parse(&args)?.apply(store).map(jobs),
            "ACK" => Ack::parse(&args, &config)?.apply(store),
            "FAIL" => Fail::parse(&args)?.apply(store),
            "RELEASE" => Release::parse(&args)?.apply(store),
            "CANCEL" => Cancel::parse(&args)?.apply(store),
            "STATE" => StateOf::parse(&args)?.apply(store),
            "JOB" => JobOf::parse(&args)?.apply(store),
            "INFO" => Info::parse(&args)?.apply(store),
            "TOUCH" => Touch::parse(&args)?.apply(store),
            "REQUEUE" => Requeue::parse(&args, &config)?.apply(store),
            "DELETE" => Delete::parse(&args)?.apply(store),
            "LIST" => List::parse(&args)?.apply(store),
            "DEAD" => Dead::parse(&args)?.apply(store),
            "QUEUES" => Queues::parse(&args)?.apply(store),
            "SCHEDULE" => Schedule::parse(&args, &config)?.apply(store),
            "BATCHINFO" => BatchInfo::parse(&args)?.apply(store),
            "RESULT" => ResultOf::parse(&args)?.apply(store),
            "PAUSE" => Pause::parse(&args, true)?.apply(store),
            "RESUME" => Pause::parse(&args, false)?.apply(store),
            "PROMOTE" => {
                let mut n = 0;
                let mut new_id = || {
                    n += 1;
                    format!("tick-{n}")
                };
                let next = promote(store, line.trim_start_matches("PROMOTE "), &mut new_id)?;
                Ok(next.map_or(Reply::Nil, Reply::Int))
            }
            _ => panic!("unknown command {name}"),
        }
    }

    /// Runs a command that must succeed.
    fn ok(&mut self, line: &str) -> Reply {
        match self.run(line) {
            Ok(reply) => reply,
            Err(err) => panic!("{line}: {err}"),
        }
    }

    /// The job id an ENQUEUE replied.
    fn enqueue(&mut self, args: &str) -> String {
        match self.ok(&format!("ENQUEUE {args}")) {
            Reply::Bulk(id) => id,
            other => panic!("ENQUEUE {args}: {other:?}"),
        }
    }

    /// The state of job `id` of queue `q` (STATE), `None` when there is no such job.
    fn state(&mut self, id: &str) -> Option<String> {
        match self.ok(&format!("STATE q {id}")) {
            Reply::Bulk(state) => Some(state),
            Reply::Nil => None,
            other => panic!("STATE: {other:?}"),
        }
    }

    /// The ids and lease tokens of the jobs a FETCH or RECLAIM delivered.
    fn delivered(&mut self, line: &str) -> Vec<(String, String)> {
        let Reply::Array(jobs) = self.ok(line) else {
            panic!("{line}: not an array");
        };
        jobs.iter()
            .map(|job| (text(job, "id"), text(job, "lease")))
            .collect()
    }

    /// The messages published, emptied.
    fn take_events(&mut self) -> Vec<String> {
        let events = self.store.events();
        self.store.published.clear();
        events
    }

    /// The counters of queue `q`.
    fn stats(&mut self) -> Vec<(String, String)> {
        let mut stats = self.store.hash("zrq:{q}:stats");
        stats.sort();
        stats
    }
}

/// Field `name` of a job's map reply, as text (integers printed).
fn field(job: &Reply, name: &str) -> Option<String> {
    let Reply::Map(fields) = job else {
        panic!("not a job: {job:?}");
    };
    fields
        .iter()
        .find(|(f, _)| *f == name)
        .map(|(_, value)| match value {
            Reply::Bulk(text) => text.clone(),
            Reply::Int(n) => n.to_string(),
            other => panic!("{name}: {other:?}"),
        })
}

fn text(job: &Reply, name: &str) -> String {
    field(job, name).unwrap_or_else(|| panic!("no {name} in {job:?}"))
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

fn bulk(text: &str) -> Reply {
    Reply::Bulk(text.to_string())
}

#[test]
fn plain_job_enqueue_fetch_ack() {
    let mut w = World::new();
    let id = w.enqueue("q t {\"n\":1}");
    // A plain job's id is its stream entry's, made from the clock.
    assert_eq!(id, format!("{T}-0"));
    assert_eq!(w.state(&id).as_deref(), Some("pending"));
    assert_eq!(
        w.store.key_type(&format!("zrq:{{q}}:job:{id}")),
        Ok(KeyType::Missing)
    );
    assert_eq!(w.store.stream_entries("zrq:{q}:stream").len(), 1);
    assert_eq!(w.take_events(), [format!("pending {id}")]);

    w.store.advance(5);
    let delivered = w.delivered("FETCH q w1");
    assert_eq!(delivered, [(id.clone(), format!("{id}:1"))]);
    assert_eq!(w.state(&id).as_deref(), Some("active"));
    // The inline entry is trimmed; the job lives on in its record and its lease.
    assert!(w.store.stream_entries("zrq:{q}:stream").is_empty());
    // One write of its whole record, packed in a string. Its creation time and its lease are
    // those its id says, so they are left out.
    let key = format!("zrq:{{q}}:job:{id}");
    assert_eq!(w.store.record_writes, std::slice::from_ref(&key));
    let started = (T + 5).to_string();
    assert_eq!(
        w.store.get(&key),
        Some(&Value::String(format!(
            "t1:t p7:{{\"n\":1}} s6:active a1:1 g13:{started} w2:w1"
        )))
    );
    let record = w.store.job_record(&key);
    let get = |name: &str| {
        record
            .iter()
            .find(|(f, _)| f == name)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(get("state"), Some("active"));
    assert_eq!(get("consumer"), Some("w1"));
    assert_eq!(get("attempt"), Some("1"));
    assert_eq!(get("entry"), None);
    assert_eq!(get("started_at"), Some((T + 5).to_string().as_str()));
    assert_eq!(
        w.store.zset("zrq:{q}:active"),
        [(T + 5 + 30_000, id.clone())]
    );
    assert_eq!(
        w.store.wakes.last(),
        Some(&("q".to_string(), T + 5 + 30_000))
    );
    assert_eq!(w.take_events(), [format!("active {id}")]);

    w.store.advance(10);
    let ack = format!("ACK q {id} RESULT [42] LEASE {id}:1");
    assert_eq!(w.ok(&ack), Reply::Int(1));
    assert_eq!(w.state(&id).as_deref(), Some("completed"));
    let job = w.ok(&format!("JOB q {id}"));
    assert_eq!(field(&job, "result").as_deref(), Some("[42]"));
    assert_eq!(field(&job, "finished_at"), Some((T + 15).to_string()));
    assert_eq!(field(&job, "payload").as_deref(), Some("{\"n\":1}"));
    let keep = w.store.config.keep_ms;
    // Kept for the queue's retention: a field of the records hash (no state: the hash says it)
    // and an entry of the log whose time is its end; no key of its own, no index member.
    assert!(w.store.zset("zrq:{q}:completed").is_empty());
    assert_eq!(
        w.store.key_type(&format!("zrq:{{q}}:job:{id}")),
        Ok(KeyType::Missing)
    );
    assert_eq!(
        w.store.hash("zrq:{q}:completed:records"),
        [(
            id.clone(),
            format!(
                "t1:t p7:{{\"n\":1}} a1:1 g13:{started} f13:{} w2:w1 v4:[42]",
                T + 15
            )
        )]
    );
    let log = w.store.stream_entries("zrq:{q}:completed:log");
    assert_eq!(log.len(), 1);
    assert!(log[0].0.starts_with(&format!("{}-", T + 15)), "{log:?}");
    assert_eq!(log[0].1, [("id".to_string(), id.clone())]);
    assert!(w.store.zset("zrq:{q}:active").is_empty());
    assert_eq!(w.store.key_type("zrq:{q}:active"), Ok(KeyType::Missing));
    assert_eq!(w.stats(), pairs(&[("completed", "1"), ("enqueued", "1")]));
    assert_eq!(w.take_events(), [format!("completed {id}")]);
    assert!(w.store.signalled.contains(&format!("zrq:{{q}}:job:{id}")));
    // A second ACK finds nothing to do; the queue's timer drops the job when its retention ends.
    assert_eq!(w.ok(&ack), Reply::Int(0));
    w.store.advance(keep - 1);
    assert_eq!(w.ok("PROMOTE q"), Reply::Int(T + 15 + keep));
    assert_eq!(w.state(&id).as_deref(), Some("completed"));
    w.store.advance(1);
    assert_eq!(w.ok("PROMOTE q"), Reply::Nil);
    assert_eq!(w.state(&id), None);
    assert_eq!(w.store.key_type("zrq:{q}:completed"), Ok(KeyType::Missing));
    assert_eq!(
        w.store.key_type("zrq:{q}:completed:records"),
        Ok(KeyType::Missing)
    );
    assert!(w.store.stream_entries("zrq:{q}:completed:log").is_empty());
}

#[test]
fn fail_retries_with_backoff_then_buries() {
    let mut w = World::new();
    let id = w.enqueue("q t {} RETRIES 1 BACKOFF 1000");
    assert_eq!(w.delivered("FETCH q w").len(), 1);
    // random 0: the first retry waits half the base (equal jitter).
    assert_eq!(w.ok(&format!("FAIL q {id} boom")), bulk("retrying"));
    assert_eq!(w.state(&id).as_deref(), Some("retrying"));
    assert_eq!(w.store.zset("zrq:{q}:retrying"), [(T + 500, id.clone())]);
    assert!(w.store.zset("zrq:{q}:active").is_empty());
    assert_eq!(w.store.wakes.last(), Some(&("q".to_string(), T + 500)));
    // Not due yet: the timer leaves it; then it is due and goes back to its stream.
    assert_eq!(w.ok("PROMOTE q"), Reply::Int(T + 500));
    assert_eq!(w.state(&id).as_deref(), Some("retrying"));
    w.store.advance(500);
    w.ok("PROMOTE q");
    assert_eq!(w.state(&id).as_deref(), Some("pending"));
    assert!(w.store.zset("zrq:{q}:retrying").is_empty());
    // A reference entry now: the job has a record.
    let entries = w.store.stream_entries("zrq:{q}:stream");
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].1, pairs(&[("job", &id)]));

    let delivered = w.delivered("FETCH q w");
    assert_eq!(delivered.len(), 1);
    assert!(delivered[0].1.ends_with(":2"), "{delivered:?}");
    assert_eq!(w.ok(&format!("FAIL q {id} again")), bulk("dead"));
    assert_eq!(w.state(&id).as_deref(), Some("dead"));
    assert_eq!(w.store.zset("zrq:{q}:dead"), [(T + 500, id.clone())]);
    let job = w.ok(&format!("JOB q {id}"));
    assert_eq!(field(&job, "error").as_deref(), Some("again"));
    assert_eq!(field(&job, "attempt").as_deref(), Some("2"));
    assert_eq!(
        w.stats(),
        pairs(&[("dead", "1"), ("enqueued", "1"), ("failed", "2")])
    );
    assert_eq!(
        w.take_events(),
        [
            format!("pending {id}"),
            format!("active {id}"),
            format!("retrying {id}"),
            format!("pending {id}"),
            format!("active {id}"),
            format!("dead {id}"),
        ]
    );
    // A dead job keeps its record (no TTL).
    assert_eq!(w.store.expires_at(&format!("zrq:{{q}}:job:{id}")), None);
}

#[test]
fn cancel_of_a_pending_job_removes_its_entry() {
    let mut w = World::new();
    let id = w.enqueue("q t {}");
    assert_eq!(w.ok(&format!("CANCEL q {id}")), Reply::Int(1));
    assert_eq!(w.state(&id).as_deref(), Some("cancelled"));
    assert!(w.store.stream_entries("zrq:{q}:stream").is_empty());
    let records = w.store.hash("zrq:{q}:cancelled:records");
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].0, id);
    assert_eq!(w.store.stream_entries("zrq:{q}:cancelled:log").len(), 1);
    // Nothing left to deliver, and a second CANCEL does nothing.
    assert!(w.delivered("FETCH q w").is_empty());
    assert_eq!(w.ok(&format!("CANCEL q {id}")), Reply::Int(0));
    assert_eq!(w.ok("CANCEL q nosuchjob"), Reply::Int(0));
    assert_eq!(
        w.take_events(),
        [format!("pending {id}"), format!("cancelled {id}")]
    );
}

#[test]
fn cancel_of_a_running_job_is_requested_then_ends_it() {
    let mut w = World::new();
    let id = w.enqueue("q t {}");
    w.delivered("FETCH q w");
    assert_eq!(w.ok(&format!("CANCEL q {id}")), Reply::Int(2));
    assert_eq!(w.state(&id).as_deref(), Some("active"));
    assert_eq!(w.ok(&format!("ACK q {id}")), Reply::Int(-1));
    assert_eq!(w.state(&id).as_deref(), Some("cancelled"));
    assert!(w.store.hash("zrq:{q}:completed:records").is_empty());
    assert_eq!(w.store.hash("zrq:{q}:cancelled:records").len(), 1);
}

#[test]
fn release_gives_the_attempt_back() {
    let mut w = World::new();
    let id = w.enqueue("q t {} RETRIES 0");
    let [(_, lease)] = &w.delivered("FETCH q w")[..] else {
        panic!("one job expected");
    };
    // Under another lease: nothing.
    assert_eq!(w.ok(&format!("RELEASE q {id} LEASE 1-0:9")), Reply::Int(0));
    assert_eq!(
        w.ok(&format!("RELEASE q {id} LEASE {lease}")),
        Reply::Int(1)
    );
    assert_eq!(w.state(&id).as_deref(), Some("pending"));
    assert!(w.store.zset("zrq:{q}:active").is_empty());
    let job = w.ok(&format!("JOB q {id}"));
    assert_eq!(field(&job, "attempt").as_deref(), Some("0"));
    // Even without retries left it runs again, with a new lease.
    w.store.advance(1);
    let again = w.delivered("FETCH q w2");
    assert_eq!(again.len(), 1);
    assert_ne!(&again[0].1, lease);
    assert!(again[0].1.ends_with(":1"), "{again:?}");
    // The old lease no longer acknowledges it.
    assert_eq!(w.ok(&format!("ACK q {id} LEASE {lease}")), Reply::Int(0));
    assert_eq!(w.state(&id).as_deref(), Some("active"));
}

#[test]
fn reclaim_takes_over_an_expired_lease() {
    let mut w = World::new();
    let id = w.enqueue("q t {} TIMEOUT 1000 RETRIES 1");
    let first = w.delivered("FETCH q dead-worker");
    // Not expired yet: nothing to reclaim. A lease at its deadline has expired.
    w.store.advance(999);
    assert!(w.delivered("RECLAIM q w2").is_empty());
    w.store.advance(1);
    let reclaimed = w.delivered("RECLAIM q w2");
    assert_eq!(reclaimed.len(), 1);
    assert_eq!(reclaimed[0].0, id);
    assert_eq!(reclaimed[0].1, format!("{id}:2"));
    assert_ne!(reclaimed[0].1, first[0].1);
    let job = w.ok(&format!("JOB q {id}"));
    assert_eq!(field(&job, "consumer").as_deref(), Some("w2"));
    assert!(text(&job, "error").starts_with("lease expired after 1000 ms"));
    assert_eq!(
        w.store.zset("zrq:{q}:active"),
        [(T + 1000 + 1000, id.clone())]
    );
    // The old worker's ACK is refused; the new one's completes it.
    assert_eq!(
        w.ok(&format!("ACK q {id} LEASE {}", first[0].1)),
        Reply::Int(0)
    );
    assert_eq!(w.ok(&format!("ACK q {id} LEASE {id}:2")), Reply::Int(1));
    assert_eq!(
        w.stats(),
        pairs(&[("completed", "1"), ("enqueued", "1"), ("failed", "1")])
    );
}

#[test]
fn expired_lease_without_attempts_left_dies_at_reclaim() {
    let mut w = World::new();
    let id = w.enqueue("q t {} TIMEOUT 10 RETRIES 0");
    w.delivered("FETCH q w");
    w.store.advance(11);
    assert!(w.delivered("RECLAIM q w2").is_empty());
    assert_eq!(w.state(&id).as_deref(), Some("dead"));
    assert_eq!(w.store.zset("zrq:{q}:dead"), [(T + 11, id)]);
}

#[test]
fn timer_expires_leases_back_to_the_stream() {
    let mut w = World::new();
    let id = w.enqueue("q t {} TIMEOUT 10");
    w.delivered("FETCH q w");
    w.store.advance(11);
    w.ok("PROMOTE q");
    assert_eq!(w.state(&id).as_deref(), Some("pending"));
    assert_eq!(w.store.stream_entries("zrq:{q}:stream").len(), 1);
    // With zrq.expire-leases off the timer leaves it to RECLAIM.
    let mut w = World::new();
    w.store.config.expire_leases = false;
    let id = w.enqueue("q t {} TIMEOUT 10");
    w.delivered("FETCH q w");
    w.store.advance(11);
    w.ok("PROMOTE q");
    assert_eq!(w.state(&id).as_deref(), Some("active"));
}

#[test]
fn scheduled_job_is_promoted_by_the_timer() {
    let mut w = World::new();
    let id = w.enqueue("q t {} DELAY 2000");
    assert_eq!(id, "job-1");
    assert_eq!(w.state(&id).as_deref(), Some("scheduled"));
    assert_eq!(w.store.zset("zrq:{q}:scheduled"), [(T + 2000, id.clone())]);
    assert_eq!(w.store.wakes, [("q".to_string(), T + 2000)]);
    assert!(w.delivered("FETCH q w").is_empty());
    assert_eq!(w.ok("PROMOTE q"), Reply::Int(T + 2000));
    w.store.advance(2000);
    assert_eq!(w.ok("PROMOTE q"), Reply::Nil);
    assert_eq!(w.state(&id).as_deref(), Some("pending"));
    assert_eq!(w.store.key_type("zrq:{q}:scheduled"), Ok(KeyType::Missing));
    let job = w.ok(&format!("JOB q {id}"));
    assert_eq!(field(&job, "run_at"), None);
    assert_eq!(
        w.delivered("FETCH q w"),
        [(id.clone(), format!("{}-0:1", T + 2000))]
    );
    assert_eq!(
        w.take_events(),
        [
            format!("scheduled {id}"),
            format!("pending {id}"),
            format!("active {id}"),
        ]
    );
}

#[test]
fn unique_returns_the_unfinished_holder() {
    let mut w = World::new();
    let first = w.enqueue("q t {} UNIQUE k");
    assert_eq!(w.enqueue("q t {} UNIQUE k"), first);
    assert_eq!(w.store.stream_entries("zrq:{q}:stream").len(), 1);
    assert_eq!(w.store.hash("zrq:{q}:unique"), pairs(&[("k", &first)]));
    w.delivered("FETCH q w");
    assert_eq!(w.enqueue("q t {} UNIQUE k"), first, "still unfinished");
    w.ok(&format!("ACK q {first}"));
    // Finished: the key is free, and the next job takes it.
    assert_eq!(w.store.key_type("zrq:{q}:unique"), Ok(KeyType::Missing));
    w.store.advance(1);
    let second = w.enqueue("q t {} UNIQUE k");
    assert_ne!(second, first);
    assert_eq!(w.store.hash("zrq:{q}:unique"), pairs(&[("k", &second)]));
    assert_eq!(
        w.stats()
            .iter()
            .find(|(f, _)| f == "enqueued")
            .map(|(_, v)| v.as_str()),
        Some("2")
    );
}

#[test]
fn higher_priorities_are_served_first() {
    let mut w = World::new();
    let low = w.enqueue("q t {}");
    let high = w.enqueue("q t {} PRIORITY 9");
    let mid = w.enqueue("q t {} PRIORITY 5");
    let low2 = w.enqueue("q t {}");
    assert_eq!(high, format!("p9:{T}-0"));
    assert_eq!(low2, format!("{T}-1"));
    // Workers block on the priority-0 stream: a job of another priority signals it.
    assert!(w.store.signalled.contains(&"zrq:{q}:stream".to_string()));
    let order: Vec<String> = w
        .delivered("FETCH q w COUNT 10")
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(order, [high, mid, low, low2]);
    for priority in ["stream", "stream:5", "stream:9"] {
        assert!(w
            .store
            .stream_entries(&format!("zrq:{{q}}:{priority}"))
            .is_empty());
    }
}

#[test]
fn fetch_is_bounded_by_count_and_the_reply_budget() {
    let mut w = World::new();
    let ids: Vec<String> = (0..4)
        .map(|_| w.enqueue("q t {\"pad\":\"xxxxxxxxxx\"}"))
        .collect();
    let got: Vec<String> = w
        .delivered("FETCH q w COUNT 2")
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(got, ids[..2]);
    // A budget of one record: the page stops after the first job, and hands the rest back.
    w.store.config.reply_max_bytes = 1;
    let got: Vec<String> = w
        .delivered("FETCH q w COUNT 2")
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(got, ids[2..3]);
    assert_eq!(w.state(&ids[3]).as_deref(), Some("pending"));
    let got: Vec<String> = w
        .delivered("FETCH q w COUNT 5")
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(got, ids[3..]);
    assert!(w.store.stream_entries("zrq:{q}:stream").is_empty());
}

#[test]
fn a_paused_queue_delivers_nothing() {
    let mut w = World::new();
    let id = w.enqueue("q t {}");
    w.store.put("zrq:{q}:paused", Value::String("1".into()));
    assert!(w.delivered("FETCH q w").is_empty());
    assert_eq!(w.state(&id).as_deref(), Some("pending"));
}

#[test]
fn wrong_type_refusals_write_nothing() {
    // (a key of the queue holding a list, the command refused)
    let cases = [
        ("zrq:{q}:stream", "ENQUEUE q t {}"),
        ("zrq:{q}:stats", "ENQUEUE q t {}"),
        ("zrq:{q}:scheduled", "ENQUEUE q t {} DELAY 10"),
        ("zrq:{q}:unique", "ENQUEUE q t {} UNIQUE k"),
        ("zrq:{q}:completed:records", "ACK q JOB"),
        ("zrq:{q}:completed:log", "ACK q JOB"),
        ("zrq:{q}:cancelled:log", "CANCEL q JOB"),
        ("zrq:{q}:active", "FETCH q w"),
        ("zrq:{q}:dead", "FAIL q JOB err"),
        ("zrq:{q}:retrying", "FAIL q JOB err"),
        ("zrq:{q}:cancelled", "CANCEL q JOB"),
        ("zrq:{q}:ticks", "RECLAIM q w"),
        ("zrq:{q}:schedules", "RELEASE q JOB"),
    ];
    for (key, line) in cases {
        let mut w = World::new();
        let id = w.enqueue("q t {} RETRIES 0");
        w.delivered("FETCH q w");
        w.enqueue("q t {}");
        w.store.published.clear();
        w.store.put(key, Value::List(vec!["x".into()]));
        let before = w.store.snapshot();
        let line = line.replace("JOB", &id);
        let err = w.run(&line).expect_err(&line);
        assert_eq!(err.code, ErrorCode::WrongType, "{line}: {err}");
        assert!(err.message.contains(key), "{line}: {err}");
        assert_eq!(w.store.snapshot(), before, "{line} wrote");
        assert!(w.store.published.is_empty(), "{line} announced");
    }
}

#[test]
fn a_record_of_another_type_is_wrongtype() {
    let mut w = World::new();
    w.store.put("zrq:{q}:job:x", Value::List(vec!["v".into()]));
    for line in [
        "STATE q x",
        "JOB q x",
        "ACK q x",
        "CANCEL q x",
        "ENQUEUE q t {} ID x",
    ] {
        let err = w.run(line).expect_err(line);
        assert_eq!(err.code, ErrorCode::WrongType, "{line}: {err}");
        assert!(err.message.contains("string"), "{line}: {err}");
    }
}

#[test]
fn a_string_that_is_not_a_packed_record_is_corrupt() {
    let mut w = World::new();
    for bad in ["v", "", "s6:active ", "s6:active s4:dead", "s6:active q1:x"] {
        w.store.put("zrq:{q}:job:x", Value::String(bad.into()));
        let before = w.store.snapshot();
        for line in [
            "STATE q x",
            "JOB q x",
            "ACK q x",
            "CANCEL q x",
            "DELETE q x",
        ] {
            let err = w.run(line).expect_err(line);
            assert_eq!(err.code, ErrorCode::Corrupt, "{bad:?} {line}: {err}");
            assert!(err.message.contains("zrq:{q}:job:x"), "{line}: {err}");
            assert_eq!(w.store.snapshot(), before, "{line} wrote");
        }
        // ENQUEUE … ID finds the id taken: a record exists, readable or not.
        assert_eq!(w.ok("ENQUEUE q t {} ID x"), bulk("x"));
    }
}

#[test]
fn info_counts_pending_jobs_across_priorities() {
    let mut w = World::new();
    for args in ["q t {}", "q t {} PRIORITY 3", "q t {}"] {
        w.enqueue(args);
    }
    w.delivered("FETCH q w");
    let info = w.ok("INFO q");
    assert_eq!(field(&info, "pending").as_deref(), Some("2"), "{info:?}");
    assert_eq!(field(&info, "active").as_deref(), Some("1"), "{info:?}");
}

/// The ids in a `[cursor, [job…]]` page, and its cursor.
fn page_ids(reply: &Reply) -> (String, Vec<String>) {
    let Reply::Array(parts) = reply else {
        panic!("not a page: {reply:?}");
    };
    let [Reply::Bulk(cursor), Reply::Array(items)] = &parts[..] else {
        panic!("not a page: {reply:?}");
    };
    let ids = items
        .iter()
        .map(|item| match item {
            Reply::Bulk(name) => name.clone(),
            job => text(job, "id"),
        })
        .collect();
    (cursor.clone(), ids)
}

#[test]
fn a_parent_ack_releases_its_child_in_the_same_step() {
    let mut w = World::new();
    let parent = w.enqueue("q t {}");
    let child = w.enqueue(&format!("q t {{}} AFTER {parent} WITHRESULTS"));
    assert_eq!(w.state(&child).as_deref(), Some("waiting"));
    assert_eq!(w.store.zset("zrq:{q}:waiting"), [(T, child.clone())]);
    // The parent, held by its inline entry, got a record to list its child.
    let parent_key = format!("zrq:{{q}}:job:{parent}");
    assert_eq!(w.store.key_type(&parent_key), Ok(KeyType::String));
    let delivered = w.delivered("FETCH q w");
    assert_eq!(delivered.len(), 1, "only the parent is pending");
    w.ok(&format!("ACK q {parent} RESULT {{\"r\":7}}"));
    assert_eq!(w.state(&child).as_deref(), Some("pending"));
    assert_eq!(w.store.key_type("zrq:{q}:waiting"), Ok(KeyType::Missing));
    let job = w.ok(&format!("JOB q {child}"));
    assert_eq!(
        field(&job, "parents"),
        Some(format!("{{\"{parent}\":{{\"r\":7}}}}"))
    );
    assert_eq!(w.delivered("FETCH q w")[0].0, child);
}

#[test]
fn a_dead_parent_cancels_its_child_unless_told_to_run() {
    let mut w = World::new();
    let parent = w.enqueue("q t {} RETRIES 0");
    let cancelled = w.enqueue(&format!("q t {{}} AFTER {parent}"));
    let runs = w.enqueue(&format!("q t {{}} AFTER {parent} ONPARENTFAIL run"));
    w.delivered("FETCH q w");
    assert_eq!(w.ok(&format!("FAIL q {parent} boom")), bulk("dead"));
    assert_eq!(w.state(&cancelled).as_deref(), Some("cancelled"));
    assert_eq!(w.state(&runs).as_deref(), Some("pending"));
    let job = w.ok(&format!("JOB q {cancelled}"));
    assert!(text(&job, "error").contains(&parent), "{job:?}");
    // A child enqueued after its parent died is cancelled at once.
    let late = w.enqueue(&format!("q t {{}} AFTER {parent}"));
    assert_eq!(w.state(&late).as_deref(), Some("cancelled"));
}

#[test]
fn a_batch_enqueues_its_callback_when_its_last_member_ends() {
    let mut w = World::new();
    let reply = w.ok("BATCH q b1 ON-COMPLETE done {} RETRIES 0 JOB t {\"n\":1} JOB t {\"n\":2}");
    let Reply::Array(ids) = reply else {
        panic!("{reply:?}");
    };
    let ids: Vec<String> = ids
        .iter()
        .map(|id| match id {
            Reply::Bulk(id) => id.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(ids.len(), 2);
    let delivered = w.delivered("FETCH q w COUNT 2");
    assert_eq!(delivered.len(), 2);
    w.ok(&format!("ACK q {}", ids[0]));
    let info = w.ok("BATCHINFO q b1");
    assert_eq!(field(&info, "done").as_deref(), Some("1"));
    assert_eq!(field(&info, "callback_id"), None);
    assert_eq!(w.ok(&format!("FAIL q {} no", ids[1])), bulk("dead"));
    let info = w.ok("BATCHINFO q b1");
    assert_eq!(field(&info, "succeeded").as_deref(), Some("1"));
    assert_eq!(field(&info, "failed").as_deref(), Some("1"));
    let callback = text(&info, "callback_id");
    assert_eq!(w.state(&callback).as_deref(), Some("pending"));
    let job = w.ok(&format!("JOB q {callback}"));
    assert_eq!(field(&job, "task").as_deref(), Some("done"));
    assert!(text(&job, "payload").contains("b1"), "{job:?}");
}

#[test]
fn a_schedule_ticks_through_the_timer() {
    let mut w = World::new();
    assert_eq!(w.ok("SCHEDULE q s EVERY 1000 t {}"), Reply::Int(T + 1000));
    assert_eq!(w.store.zset("zrq:{q}:ticks"), [(T + 1000, "s".to_string())]);
    assert_eq!(w.ok("PROMOTE q"), Reply::Int(T + 1000));
    w.store.advance(1000);
    assert_eq!(w.ok("PROMOTE q"), Reply::Int(T + 2000));
    assert_eq!(w.store.stream_entries("zrq:{q}:stream").len(), 1);
    // At maxmemory the tick is skipped, counted, and the schedule goes on.
    w.store.full = true;
    w.store.advance(1000);
    assert_eq!(w.ok("PROMOTE q"), Reply::Int(T + 3000));
    assert_eq!(w.store.skipped_ticks, 1);
    assert_eq!(w.store.stream_entries("zrq:{q}:stream").len(), 1);
    // After a long pause, one job for the missed ticks, and the grid goes on.
    w.store.full = false;
    w.store.advance(10_500);
    assert_eq!(w.ok("PROMOTE q"), Reply::Int(T + 13_000));
    assert_eq!(w.store.stream_entries("zrq:{q}:stream").len(), 2);
}

#[test]
fn dead_jobs_beyond_dead_max_are_dropped_oldest_first() {
    let mut w = World::new();
    w.store.config.dead_max = 2;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let id = w.enqueue("q t {} RETRIES 0");
        w.delivered("FETCH q w");
        w.ok(&format!("FAIL q {id} x"));
        ids.push(id);
        w.store.advance(1);
    }
    let dead: Vec<String> = w
        .store
        .zset("zrq:{q}:dead")
        .into_iter()
        .map(|(_, id)| id)
        .collect();
    assert_eq!(dead, ids[1..]);
    assert_eq!(w.state(&ids[0]), None, "its record is deleted");
    let (cursor, listed) = page_ids(&w.ok("DEAD q COUNT 1"));
    assert_eq!((cursor.as_str(), listed), ("1", vec![ids[1].clone()]));
    assert!(w
        .stats()
        .contains(&("dropped".to_string(), "1".to_string())));
}

#[test]
fn requeue_puts_a_dead_job_back_with_a_fresh_budget() {
    let mut w = World::new();
    let id = w.enqueue("q t {} RETRIES 0");
    w.delivered("FETCH q w");
    w.ok(&format!("FAIL q {id} x"));
    assert_eq!(w.ok(&format!("REQUEUE q {id}")), Reply::Int(1));
    assert_eq!(w.state(&id).as_deref(), Some("pending"));
    assert_eq!(w.store.key_type("zrq:{q}:dead"), Ok(KeyType::Missing));
    assert_eq!(w.ok(&format!("REQUEUE q {id}")), Reply::Int(0));
    assert_eq!(
        w.delivered("FETCH q w")[0].1,
        format!("{}:1", entry_of(&mut w, &id))
    );
}

/// The stream entry a job was last delivered from: the entry part of its lease.
fn entry_of(w: &mut World, id: &str) -> String {
    let job = w.ok(&format!("JOB q {id}"));
    let lease = text(&job, "lease");
    lease
        .rsplit_once(':')
        .map(|(entry, _)| entry.to_string())
        .unwrap_or_default()
}

#[test]
fn delete_removes_a_job_from_every_structure() {
    let mut w = World::new();
    let pending = w.enqueue("q t {}");
    let scheduled = w.enqueue("q t {} DELAY 100 UNIQUE u");
    for id in [&pending, &scheduled] {
        assert_eq!(w.ok(&format!("DELETE q {id}")), Reply::Int(1));
        assert_eq!(w.state(id), None);
        assert_eq!(w.ok(&format!("DELETE q {id}")), Reply::Int(0));
    }
    assert!(w.store.stream_entries("zrq:{q}:stream").is_empty());
    assert_eq!(w.store.key_type("zrq:{q}:scheduled"), Ok(KeyType::Missing));
    assert_eq!(w.store.key_type("zrq:{q}:unique"), Ok(KeyType::Missing));
    assert!(w.delivered("FETCH q w").is_empty());
}

#[test]
fn touch_extends_the_lease_from_now() {
    let mut w = World::new();
    let id = w.enqueue("q t {} TIMEOUT 100");
    let lease = w.delivered("FETCH q w")[0].1.clone();
    w.store.advance(90);
    assert_eq!(
        w.ok(&format!(
            "TOUCH q {id} TIMEOUT 500 PROGRESS 40 LEASE {lease}"
        )),
        Reply::Int(1)
    );
    assert_eq!(w.store.zset("zrq:{q}:active"), [(T + 590, id.clone())]);
    let job = w.ok(&format!("JOB q {id}"));
    assert_eq!(field(&job, "progress").as_deref(), Some("40"));
    w.store.advance(200);
    assert!(
        w.delivered("RECLAIM q w2").is_empty(),
        "the lease still holds"
    );
    assert_eq!(w.ok(&format!("TOUCH q {id} LEASE 1-1:1")), Reply::Int(0));
}

#[test]
fn result_reports_a_finished_job_only() {
    let mut w = World::new();
    let id = w.enqueue("q t {}");
    assert_eq!(w.ok(&format!("RESULT q {id}")), Reply::Nil);
    w.delivered("FETCH q w");
    w.ok(&format!("ACK q {id} RESULT \"ok\""));
    let outcome = w.ok(&format!("RESULT q {id}"));
    assert_eq!(field(&outcome, "state").as_deref(), Some("completed"));
    assert_eq!(field(&outcome, "result").as_deref(), Some("\"ok\""));
    let err = w.run("RESULT q nosuch").expect_err("no such job");
    assert_eq!(err.code, ErrorCode::NoJob);
}

#[test]
fn list_pages_pending_jobs_across_priorities() {
    let mut w = World::new();
    let low = w.enqueue("q t {}");
    let high = w.enqueue("q t {} PRIORITY 2");
    let delayed = w.enqueue("q t {} DELAY 5");
    w.store.advance(5);
    w.ok("PROMOTE q");
    let (cursor, first) = page_ids(&w.ok("LIST q pending COUNT 2"));
    assert_eq!(first, [high.clone(), low.clone()]);
    assert_ne!(cursor, "0");
    let (cursor, rest) = page_ids(&w.ok(&format!("LIST q pending COUNT 2 CURSOR {cursor}")));
    assert_eq!((cursor.as_str(), rest), ("0", vec![delayed]));
}

#[test]
fn queues_scans_the_stats_markers() {
    let mut w = World::new();
    for queue in ["b", "a", "c"] {
        w.enqueue(&format!("{queue} t {{}}"));
    }
    w.store.set("zrq:{x}:paused", "1").ok();
    // Matches the pattern but names no valid queue.
    w.store.hset("zrq:{a}:b}:stats", &[("enqueued", "1")]).ok();
    let (mut cursor, mut found) = ("0".to_string(), Vec::new());
    loop {
        let (next, names) = page_ids(&w.ok(&format!("QUEUES COUNT 2 CURSOR {cursor}")));
        found.extend(names);
        if next == "0" {
            break;
        }
        cursor = next;
    }
    found.sort();
    assert_eq!(found, ["a", "b", "c"]);
}

#[test]
fn pause_stops_delivery_until_resume() {
    let mut w = World::new();
    let id = w.enqueue("q t {}");
    assert_eq!(w.ok("PAUSE q"), Reply::Status("OK"));
    assert!(w.delivered("FETCH q w").is_empty());
    w.ok("RESUME q");
    assert!(w.store.signalled.contains(&"zrq:{q}:stream".to_string()));
    assert_eq!(w.delivered("FETCH q w")[0].0, id);
}

#[test]
fn reclaim_prunes_idle_consumers() {
    let mut w = World::new();
    w.enqueue("q t {}");
    w.delivered("FETCH q gone");
    w.ok(&format!("ACK q {T}-0"));
    let consumers = |w: &mut World| match w.store.get("zrq:{q}:stream") {
        Some(Value::Stream(s)) => s.groups["zrq"]
            .consumers
            .keys()
            .cloned()
            .collect::<Vec<_>>(),
        other => panic!("{other:?}"),
    };
    assert_eq!(consumers(&mut w), ["gone"]);
    w.store.advance(w.store.config.consumer_idle_ms);
    w.delivered("RECLAIM q w");
    assert_eq!(consumers(&mut w), ["gone"], "idle for exactly the limit");
    w.store.advance(1);
    w.delivered("RECLAIM q w");
    assert!(consumers(&mut w).is_empty());
}

#[test]
fn a_job_an_older_zrq_delivered_is_acknowledged_and_deleted() {
    // An older zrq delivered with acknowledgement: the entry stays in the stream and the group's
    // pending-entries list while the job runs.
    let mut w = World::new();
    w.enqueue("q t {} ID old");
    let entry = w.store.stream_entries("zrq:{q}:stream")[0].0.clone();
    let key = "zrq:{q}:job:old";
    // Its record as that zrq wrote it: a hash.
    let mut record = w.store.job_record(key);
    for (name, value) in [("state", "active"), ("attempt", "1"), ("consumer", "w")] {
        record.retain(|(f, _)| f != name);
        record.push((name.to_string(), value.to_string()));
    }
    w.store.put(key, Value::Hash(record));
    w.store.zadd("zrq:{q}:active", T + 30_000, "old").ok();
    if let Some(Value::Stream(s)) = w.store.keys.get_mut("zrq:{q}:stream").map(|e| &mut e.value) {
        let group = s.groups.get_mut("zrq").expect("group");
        let id = crate::store::entry_id(&entry).expect("id");
        group.pending.insert(id, "w".to_string());
        group.last_delivered = id;
    }
    w.store.advance(1);
    let new = w.enqueue("q t {}");
    let info = w.ok("INFO q");
    assert_eq!(field(&info, "pending").as_deref(), Some("1"), "{info:?}");
    let (_, listed) = page_ids(&w.ok("LIST q pending"));
    assert_eq!(listed, [new.as_str()]);
    assert_eq!(w.ok("ACK q old"), Reply::Int(1));
    let Some(Value::Stream(s)) = w.store.get("zrq:{q}:stream") else {
        panic!("no stream");
    };
    assert!(s.groups["zrq"].pending.is_empty());
    assert_eq!(s.entries.len(), 1);
    assert_eq!(w.delivered("FETCH q w")[0].0, new);
}

/// A queue with a job in each state a command acts on: `P` pending (plain), `A` active with
/// attempts left (its lease expired), `A0` active without (lease expired), `S` scheduled (due),
/// `D` dead, `C` waiting on `A`, `B` a member of batch `b` (active).
fn populated() -> (World, Vec<(&'static str, String)>) {
    let mut w = World::new();
    let a = w.enqueue("q t {} TIMEOUT 1000 RETRIES 2");
    let a0 = w.enqueue("q t {} TIMEOUT 1000 RETRIES 0");
    let d = w.enqueue("q t {} RETRIES 0");
    w.delivered("FETCH q w COUNT 3");
    w.ok(&format!("FAIL q {d} x"));
    let b = match w.ok("BATCH q b ON-COMPLETE cb {} JOB t {}") {
        Reply::Array(ids) => match &ids[..] {
            [Reply::Bulk(id)] => id.clone(),
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    };
    w.delivered("FETCH q w");
    let p = w.enqueue("q t {} PRIORITY 3");
    let s = w.enqueue("q t {} DELAY 1000 UNIQUE u");
    let c = w.enqueue(&format!("q t {{}} AFTER {a}"));
    w.ok("SCHEDULE q s1 EVERY 1000 t {}");
    w.store.advance(2000);
    let ids = vec![
        ("A0", a0),
        ("A", a),
        ("B", b),
        ("C", c),
        ("D", d),
        ("P", p),
        ("S", s),
    ];
    (w, ids)
}

#[test]
fn every_command_refuses_a_key_of_another_type_before_writing() {
    let lines = [
        "ENQUEUE q t {}",
        "ENQUEUE q t {} PRIORITY 3",
        "ENQUEUE q t {} DELAY 10",
        "ENQUEUE q t {} UNIQUE u",
        "ENQUEUE q t {} UNIQUE v",
        "ENQUEUE q t {} ID fresh",
        "ENQUEUE q t {} AFTER <A>",
        "ENQUEUE q t {} AFTER <D>",
        "FETCH q w COUNT 10",
        "ACK q <A>",
        "ACK q <A0>",
        "ACK q <B>",
        "FAIL q <A> e",
        "FAIL q <A0> e",
        "FAIL q <B> e",
        "TOUCH q <A>",
        "RELEASE q <A>",
        "RELEASE q <B>",
        "CANCEL q <P>",
        "CANCEL q <A>",
        "CANCEL q <S>",
        "CANCEL q <C>",
        "RECLAIM q w2",
        "REQUEUE q <D>",
        "REQUEUE q ALL",
        "DELETE q <P>",
        "DELETE q <A>",
        "DELETE q <C>",
        "DELETE q <S>",
        "SCHEDULE q s2 EVERY 1000 t {}",
        "BATCH q b2 JOB t {} JOB t {}",
        "PAUSE q",
        "RESUME q",
        "PROMOTE q",
    ];
    let (mut w, _) = populated();
    let mut keys: Vec<String> = w
        .store
        .key_names()
        .into_iter()
        .filter(|k| !k.contains(":job:"))
        .collect();
    keys.extend(
        ["stream:5", "waiting", "cancelled", "paused", "stats"].map(|k| format!("zrq:{{q}}:{k}")),
    );
    keys.sort();
    keys.dedup();
    let mut failures = Vec::new();
    for key in &keys {
        for template in lines {
            let (mut w, ids) = populated();
            let mut line = template.to_string();
            for (name, id) in &ids {
                line = line.replace(&format!("<{name}>"), id);
            }
            let wrong = Value::List(vec!["x".into()]);
            w.store.put(key, wrong.clone());
            w.store.published.clear();
            let before = w.store.snapshot();
            match w.run(&line) {
                Err(err) if err.code == ErrorCode::WrongType => {
                    if w.store.snapshot() != before || !w.store.published.is_empty() {
                        failures.push(format!("{key}: {template}: refused after writing"));
                    }
                }
                Err(err) => failures.push(format!("{key}: {template}: {err}")),
                Ok(_) => {
                    if w.store.get(key) != Some(&wrong) {
                        failures.push(format!("{key}: {template}: replaced the key"));
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_populated_queue_has_a_job_in_each_state() {
    let (mut w, ids) = populated();
    let states: Vec<(&str, Option<String>)> =
        ids.iter().map(|(name, id)| (*name, w.state(id))).collect();
    let want = [
        ("A0", "active"),
        ("A", "active"),
        ("B", "active"),
        ("C", "waiting"),
        ("D", "dead"),
        ("P", "pending"),
        ("S", "scheduled"),
    ]
    .map(|(name, state)| (name, Some(state.to_string())));
    assert_eq!(states, want);
}

#[test]
fn a_clock_behind_the_stream_still_makes_growing_ids() {
    let mut w = World::new();
    let first = w.enqueue("q t {}");
    w.store.now = T - 50;
    let second = w.enqueue("q t {}");
    assert_eq!(second, format!("{T}-1"));
    let job = w.ok(&format!("JOB q {second}"));
    assert_eq!(field(&job, "created_at"), Some(T.to_string()));
    let order: Vec<String> = w
        .delivered("FETCH q w COUNT 2")
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(order, [first, second]);
}

#[test]
fn cancel_of_a_pending_priority_job_removes_its_entry_from_its_stream() {
    let mut w = World::new();
    let id = w.enqueue("q t {} PRIORITY 4");
    assert_eq!(w.state(&id).as_deref(), Some("pending"));
    assert_eq!(w.ok(&format!("CANCEL q {id}")), Reply::Int(1));
    assert!(w.store.stream_entries("zrq:{q}:stream:4").is_empty());
    assert!(w.delivered("FETCH q w").is_empty());
    assert_eq!(w.state(&id).as_deref(), Some("cancelled"));
}

#[test]
fn a_running_job_being_cancelled_learns_it_from_touch_and_release() {
    let mut w = World::new();
    let id = w.enqueue("q t {}");
    w.delivered("FETCH q w");
    w.ok(&format!("CANCEL q {id}"));
    assert_eq!(w.ok(&format!("TOUCH q {id}")), Reply::Int(-1));
    assert_eq!(w.ok(&format!("RELEASE q {id}")), Reply::Int(-1));
    assert_eq!(w.state(&id).as_deref(), Some("cancelled"));
    assert!(w.store.zset("zrq:{q}:active").is_empty());
}

#[test]
fn delete_of_a_running_job_drops_its_lease() {
    let mut w = World::new();
    let id = w.enqueue("q t {} UNIQUE k");
    w.delivered("FETCH q w");
    assert_eq!(w.ok(&format!("DELETE q {id}")), Reply::Int(1));
    assert_eq!(w.store.key_type("zrq:{q}:active"), Ok(KeyType::Missing));
    assert_eq!(w.store.key_type("zrq:{q}:unique"), Ok(KeyType::Missing));
    assert_eq!(w.ok(&format!("ACK q {id}")), Reply::Int(0));
    assert_eq!(w.state(&id), None);
    assert!(w.store.signalled.contains(&"zrq:{q}:stats".to_string()));
}

#[test]
fn retryin_zero_is_due_at_once() {
    let mut w = World::new();
    let id = w.enqueue("q t {}");
    w.delivered("FETCH q w");
    assert_eq!(w.ok(&format!("FAIL q {id} e RETRYIN 0")), bulk("retrying"));
    assert_eq!(w.store.zset("zrq:{q}:retrying"), [(T, id.clone())]);
    w.ok("PROMOTE q");
    assert_eq!(w.delivered("FETCH q w")[0].0, id);
}

#[test]
fn backoff_follows_the_attempt_and_the_jitter() {
    // (random, base, attempt at failure) → delay
    let cases = [
        (0, 1000, 1, 500),
        (0, 1000, 2, 1000),
        (u64::MAX, 1000, 1, 500 + (u64::MAX % 501) as i64),
    ];
    for (random, base, attempts, want) in cases {
        let mut w = World::new();
        w.store.random = random;
        let id = w.enqueue(&format!("q t {{}} RETRIES 5 BACKOFF {base}"));
        for _ in 1..attempts {
            w.delivered("FETCH q w");
            w.ok(&format!("FAIL q {id} e RETRYIN 0"));
            w.ok("PROMOTE q");
        }
        w.delivered("FETCH q w");
        w.ok(&format!("FAIL q {id} e"));
        assert_eq!(
            w.store.zset("zrq:{q}:retrying"),
            [(T + want, id)],
            "{random} {attempts}"
        );
    }
}

#[test]
fn with_dead_max_zero_a_dead_job_is_dropped_at_once() {
    let mut w = World::new();
    w.store.config.dead_max = 0;
    let id = w.enqueue("q t {} RETRIES 0");
    w.delivered("FETCH q w");
    assert_eq!(w.ok(&format!("FAIL q {id} e")), bulk("dead"));
    assert_eq!(w.state(&id), None);
    assert_eq!(w.store.key_type("zrq:{q}:dead"), Ok(KeyType::Missing));
    assert!(w
        .stats()
        .contains(&("dropped".to_string(), "1".to_string())));
    assert_eq!(w.take_events().last(), Some(&format!("dead {id}")));
}

#[test]
fn requeue_all_pages_through_the_dead() {
    let mut w = World::new();
    let ids: Vec<String> = (0..3).map(|_| w.enqueue("q t {} RETRIES 0")).collect();
    w.delivered("FETCH q w COUNT 3");
    for id in &ids {
        w.ok(&format!("FAIL q {id} e"));
    }
    assert_eq!(
        w.ok("REQUEUE q ALL COUNT 2"),
        Reply::Array(vec![bulk("1"), Reply::Int(2)])
    );
    assert_eq!(
        w.ok("REQUEUE q ALL COUNT 2 CURSOR 1"),
        Reply::Array(vec![bulk("0"), Reply::Int(1)])
    );
    for id in &ids {
        assert_eq!(w.state(id).as_deref(), Some("pending"));
    }
}

#[test]
fn a_finished_holder_past_its_retention_frees_its_unique_key() {
    let mut w = World::new();
    let first = w.enqueue("q t {} UNIQUE k KEEP 10");
    w.delivered("FETCH q w");
    w.ok(&format!("ACK q {first}"));
    w.store.advance(10);
    assert_eq!(w.state(&first), None);
    let second = w.enqueue("q t {} UNIQUE k");
    assert_ne!(second, first);
}

/// Rewrites every job record of queue `q` as a record of the earlier format: a hash of its
/// fields with `id`, `queue` and the fields at their default stored too (the full format before
/// the compact one), its TTL kept.
fn to_old_format(w: &mut World) {
    let prefix = "zrq:{q}:job:";
    for key in w.store.key_names() {
        let Some(id) = key.strip_prefix(prefix) else {
            continue;
        };
        let mut fields = vec![
            ("id".to_string(), id.to_string()),
            ("queue".to_string(), "q".to_string()),
        ];
        fields.extend(w.store.job_record(&key));
        for (name, value) in crate::job::DEFAULTS {
            if !fields.iter().any(|(f, _)| f == name) {
                fields.push((name.to_string(), value.to_string()));
            }
        }
        if let Some(entry) = w.store.keys.get_mut(&key) {
            entry.value = Value::Hash(fields);
        }
    }
}

/// A job record as [`records`] reads it: its key, its compact fields (sorted), its expiry, and
/// whether it is a packed string.
type Seen = (String, Vec<(String, String)>, Option<i64>, bool);

/// Every job record of queue `q` (see [`Seen`]): the same job reads the same whichever format
/// holds it.
fn records(w: &mut World) -> Vec<Seen> {
    let mut out = Vec::new();
    for key in w.store.key_names() {
        if !key.starts_with("zrq:{q}:job:") {
            continue;
        }
        let mut fields = w.store.job_record(&key);
        fields.retain(|(name, value)| {
            let default = value.parse().is_ok_and(|n| crate::job::is_default(name, n));
            !crate::job::DERIVED.contains(&name.as_str()) && !default
        });
        fields.sort();
        let packed = w.store.key_type(&key) == Ok(KeyType::String);
        let expires = w.store.expires_at(&key);
        out.push((key, fields, expires, packed));
    }
    out
}

#[test]
fn old_hash_records_live_on_and_become_packed_on_their_first_write() {
    // The same commands on a queue written today and on the same queue with every record in the
    // earlier format: the same replies, events and keys; each old record becomes the string the
    // new queue has at its first write, its TTL kept; records not written stay hashes.
    let lines = [
        "STATE q <A>",
        "JOB q <S>",
        "LIST q active",
        "DEAD q",
        "TOUCH q <B> PROGRESS 10",
        "ENQUEUE q t {} ID <P>",
        "ENQUEUE q t {} AFTER <C>",
        "PROMOTE q",
        "FETCH q w COUNT 10",
        "ACK q <A> RESULT 1",
        "REQUEUE q <D>",
        "CANCEL q <B>",
        "FAIL q <S> e",
        "RESULT q <A>",
        "FETCH q w COUNT 10",
        "RELEASE q <D>",
    ];
    let (mut new, ids) = populated();
    let (mut old, _) = populated();
    to_old_format(&mut old);
    old.store.record_writes.clear();
    new.store.published.clear();
    old.store.published.clear();
    for template in lines {
        let mut line = template.to_string();
        for (name, id) in &ids {
            line = line.replace(&format!("<{name}>"), id);
        }
        assert_eq!(old.run(&line), new.run(&line), "{line}");
        assert_eq!(old.take_events(), new.take_events(), "{line}");
        let (old_records, new_records) = (records(&mut old), records(&mut new));
        for (o, n) in old_records.iter().zip(&new_records) {
            assert_eq!((&o.0, &o.1, o.2), (&n.0, &n.1, n.2), "{line}");
            let written = old.store.record_writes.contains(&o.0);
            assert_eq!(o.3, written, "{line}: {} packed iff written", o.0);
        }
        assert_eq!(old_records.len(), new_records.len(), "{line}");
        let others = |w: &mut World| {
            let mut snapshot = w.store.snapshot();
            snapshot.retain(|key, _| !key.starts_with("zrq:{q}:job:"));
            snapshot
        };
        assert_eq!(others(&mut old), others(&mut new), "{line}");
    }
    // Every job of the populated queue was written at least once along the way.
    for (name, id) in &ids {
        let key = format!("zrq:{{q}}:job:{id}");
        if old.store.key_type(&key) != Ok(KeyType::Missing) {
            assert_eq!(old.store.key_type(&key), Ok(KeyType::String), "{name}");
        }
    }
}

#[test]
fn an_old_finished_record_keeps_its_retention() {
    let mut w = World::new();
    let id = w.enqueue("q t {} ID c KEEP 1000");
    w.delivered("FETCH q w");
    w.ok(&format!("ACK q {id} RESULT [1]"));
    let key = "zrq:{q}:job:c";
    let expires = w.store.expires_at(key);
    assert_eq!(expires, Some(T + 1000));
    let job = w.ok("JOB q c");
    to_old_format(&mut w);
    assert_eq!(w.store.key_type(key), Ok(KeyType::Hash));
    assert_eq!(w.store.expires_at(key), expires);
    assert_eq!(w.ok("JOB q c"), job);
    assert_eq!(w.state("c").as_deref(), Some("completed"));
    let result = w.ok("RESULT q c");
    assert_eq!(field(&result, "result").as_deref(), Some("[1]"));
    w.store.advance(1000);
    assert_eq!(w.state("c"), None);
    assert_eq!(w.store.key_type(key), Ok(KeyType::Missing));
}

#[test]
fn a_write_keeps_the_ttl_of_an_old_record() {
    // A TTL an operator put on a running job's record survives the job's writes, as it survived
    // writes of some of its fields; finishing it moves it to the records hash of its state.
    let mut w = World::new();
    w.enqueue("q t {} ID a");
    w.delivered("FETCH q w");
    to_old_format(&mut w);
    let key = "zrq:{q}:job:a";
    w.store.pexpire(key, 50_000).ok();
    w.store.record_writes.clear();
    assert_eq!(w.ok("TOUCH q a PROGRESS 40"), Reply::Int(1));
    assert_eq!(w.store.record_writes, [key]);
    assert_eq!(w.store.key_type(key), Ok(KeyType::String));
    assert_eq!(w.store.expires_at(key), Some(T + 50_000));
    assert_eq!(field(&w.ok("JOB q a"), "progress").as_deref(), Some("40"));
    w.ok("ACK q a");
    assert_eq!(w.store.key_type(key), Ok(KeyType::Missing));
    assert_eq!(w.store.hash("zrq:{q}:completed:records").len(), 1);
    assert_eq!(w.state("a").as_deref(), Some("completed"));
}

#[test]
fn a_command_writes_each_job_record_once() {
    // (command, how many times it writes each job record it changes)
    let (mut w, ids) = populated();
    let id = |name: &str| {
        ids.iter()
            .find(|(n, _)| *n == name)
            .map(|(_, id)| id.clone())
            .unwrap_or_default()
    };
    let lines = [
        format!("TOUCH q {} TIMEOUT 5000 PROGRESS 5", id("B")),
        format!("FAIL q {} e", id("B")),
        "PROMOTE q".to_string(),
        "FETCH q w COUNT 10".to_string(),
        format!("ACK q {} RESULT 2", id("A")),
        format!("REQUEUE q {}", id("D")),
        format!("ENQUEUE q t {{}} AFTER {} AFTER {}", id("A"), id("C")),
    ];
    for line in lines {
        w.store.record_writes.clear();
        w.ok(&line);
        let mut written = w.store.record_writes.clone();
        let count = written.len();
        written.sort();
        written.dedup();
        assert_eq!(count, written.len(), "{line}: {:?}", w.store.record_writes);
        assert!(count > 0, "{line} wrote no record");
    }
}

#[test]
fn old_pending_and_scheduled_records_are_read_as_they_are_until_written() {
    let mut w = World::new();
    w.enqueue("q t {\"a\":1} ID pr");
    w.enqueue("q t {} ID sc DELAY 1000");
    let (pending, scheduled) = (w.ok("JOB q pr"), w.ok("JOB q sc"));
    to_old_format(&mut w);
    w.store.record_writes.clear();
    // Reads leave them hashes, and read the same job.
    assert_eq!(w.ok("JOB q pr"), pending);
    assert_eq!(w.ok("JOB q sc"), scheduled);
    assert_eq!(w.state("pr").as_deref(), Some("pending"));
    let (_, listed) = page_ids(&w.ok("LIST q pending"));
    assert_eq!(listed, ["pr"]);
    assert_eq!(field(&w.ok("INFO q"), "pending").as_deref(), Some("1"));
    assert!(w.store.record_writes.is_empty());
    for key in ["zrq:{q}:job:pr", "zrq:{q}:job:sc"] {
        assert_eq!(w.store.key_type(key), Ok(KeyType::Hash), "{key}");
    }
    // Their first writes pack them: FETCH, then the timer's promotion.
    assert_eq!(w.delivered("FETCH q w")[0].0, "pr");
    assert_eq!(w.store.record_writes, ["zrq:{q}:job:pr"]);
    assert_eq!(w.store.key_type("zrq:{q}:job:pr"), Ok(KeyType::String));
    assert_eq!(w.store.key_type("zrq:{q}:job:sc"), Ok(KeyType::Hash));
    w.store.advance(1000);
    w.ok("PROMOTE q");
    assert_eq!(w.store.key_type("zrq:{q}:job:sc"), Ok(KeyType::String));
    assert_eq!(w.state("sc").as_deref(), Some("pending"));
    let record = w.store.job_record("zrq:{q}:job:sc");
    let names: Vec<&str> = record.iter().map(|(name, _)| name.as_str()).collect();
    // Packed compact: no id, queue or defaults, in record order.
    assert_eq!(names, ["task", "payload", "state", "created_at", "entry"]);
}

#[test]
fn completed_jobs_are_listed_counted_deleted_and_expired_from_their_log() {
    let mut w = World::new();
    // Two with a retention of their own (the `completed` zset), three kept for the queue's.
    let mut own = Vec::new();
    let mut kept = Vec::new();
    for n in 0..5 {
        let keep = if n < 2 { " KEEP 500000000" } else { "" };
        let id = w.enqueue(&format!("q t {{}}{keep}"));
        w.delivered("FETCH q w");
        w.store.advance(1);
        assert_eq!(w.ok(&format!("ACK q {id}")), Reply::Int(1));
        if n < 2 {
            own.push(id)
        } else {
            kept.push(id)
        }
    }
    assert_eq!(w.store.zset("zrq:{q}:completed").len(), 2);
    assert_eq!(w.store.hash("zrq:{q}:completed:records").len(), 3);
    let info = w.ok("INFO q");
    assert_eq!(field(&info, "completed").as_deref(), Some("5"));

    // Paged by two: the zset by rank, then the log by entry; every job once.
    let mut listed = Vec::new();
    let mut cursors = Vec::new();
    let mut cursor = "0".to_string();
    loop {
        let (next, ids) = page_ids(&w.ok(&format!("LIST q completed COUNT 2 CURSOR {cursor}")));
        listed.extend(ids);
        if next == "0" {
            break;
        }
        cursors.push(next.clone());
        cursor = next;
    }
    let all: Vec<String> = own.iter().chain(&kept).cloned().collect();
    assert_eq!(listed, all);
    assert_eq!(
        cursors[0], "log:0-0",
        "the zset's last page points at the log"
    );
    assert!(cursors[1].starts_with("log:"), "{cursors:?}");
    assert!(w.run("LIST q completed CURSOR log:x").is_err());

    // DELETE takes the job out of the records hash and its entry out of the log.
    assert_eq!(w.ok(&format!("DELETE q {}", kept[1])), Reply::Int(1));
    assert_eq!(w.state(&kept[1]), None);
    assert_eq!(w.store.hash("zrq:{q}:completed:records").len(), 2);
    let log = w.store.stream_entries("zrq:{q}:completed:log");
    assert_eq!(log.len(), 2);
    assert!(log.iter().all(|(_, f)| f[0].1 != kept[1]), "{log:?}");
    let info = w.ok("INFO q");
    assert_eq!(field(&info, "completed").as_deref(), Some("4"));

    // The queue's retention ends: the log's jobs go, those with their own stay.
    w.store.advance(w.store.config.keep_ms);
    w.ok("PROMOTE q");
    assert_eq!(w.state(&kept[0]), None);
    assert_eq!(w.state(&kept[2]), None);
    assert_eq!(
        w.store.key_type("zrq:{q}:completed:records"),
        Ok(KeyType::Missing)
    );
    assert!(w.store.stream_entries("zrq:{q}:completed:log").is_empty());
    for id in &own {
        assert_eq!(w.state(id).as_deref(), Some("completed"));
    }
}

#[test]
fn a_records_field_that_stores_another_state_is_corrupt() {
    let mut w = World::new();
    w.store.put(
        "zrq:{q}:cancelled:records",
        Value::Hash(vec![("j".into(), "t1:t p2:{} s6:active".into())]),
    );
    let err = w.run("JOB q j").unwrap_err();
    assert_eq!(
        err,
        crate::ZrqError::corrupt(
            "zrq:{q}:cancelled:records",
            "field 'state' does not match its place"
        )
    );
}

#[test]
fn a_job_a_client_waits_for_keeps_its_key_when_it_ends() {
    // Redis wakes a blocked RESULT only through a key that exists: a waited-for job is kept at
    // its own key, with its retention as TTL and its member of the state's sorted set.
    let mut w = World::new();
    let id = w.enqueue("q t {}");
    w.delivered("FETCH q w");
    let key = format!("zrq:{{q}}:job:{id}");
    w.store.awaited.push(key.clone());
    assert_eq!(w.ok(&format!("ACK q {id}")), Reply::Int(1));
    assert_eq!(w.store.key_type(&key), Ok(KeyType::String));
    let keep = w.store.config.keep_ms;
    assert_eq!(w.store.expires_at(&key), Some(T + keep));
    assert_eq!(w.store.zset("zrq:{q}:completed"), [(T + keep, id.clone())]);
    assert_eq!(
        w.store.key_type("zrq:{q}:completed:records"),
        Ok(KeyType::Missing)
    );
    assert!(w.store.signalled.contains(&key));
}
