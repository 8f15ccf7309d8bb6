//! The command logic over [`MemoryStore`]: each test runs commands parsed from their arguments as
//! the module does, and checks what they replied and left in the keyspace.

use super::{MemoryStore, Value};
use crate::commands::{
    ack::Ack, cancel::Cancel, enqueue::Enqueue, fail::Fail, fetch::Fetch, info::Info, job::JobOf,
    promote::promote, reclaim::Reclaim, release::Release, state::StateOf,
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
            "FETCH" => Fetch::parse(&args)?.apply(store).map(jobs),
            "RECLAIM" => Reclaim::parse(&args)?.apply(store).map(jobs),
            "ACK" => Ack::parse(&args, &config)?.apply(store),
            "FAIL" => Fail::parse(&args)?.apply(store),
            "RELEASE" => Release::parse(&args)?.apply(store),
            "CANCEL" => Cancel::parse(&args)?.apply(store),
            "STATE" => StateOf::parse(&args)?.apply(store),
            "JOB" => JobOf::parse(&args)?.apply(store),
            "INFO" => Info::parse(&args)?.apply(store),
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
    let record = w.store.hash(&format!("zrq:{{q}}:job:{id}"));
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
    assert_eq!(
        w.store.zset("zrq:{q}:completed"),
        [(T + 15 + keep, id.clone())]
    );
    assert!(w.store.zset("zrq:{q}:active").is_empty());
    assert_eq!(w.store.key_type("zrq:{q}:active"), Ok(KeyType::Missing));
    assert_eq!(
        w.store.expires_at(&format!("zrq:{{q}}:job:{id}")),
        Some(T + 15 + keep)
    );
    assert_eq!(w.stats(), pairs(&[("completed", "1"), ("enqueued", "1")]));
    assert_eq!(w.take_events(), [format!("completed {id}")]);
    assert!(w.store.signalled.contains(&format!("zrq:{{q}}:job:{id}")));
    // A second ACK finds nothing to do; the record expires with its retention.
    assert_eq!(w.ok(&ack), Reply::Int(0));
    w.store.advance(keep);
    assert_eq!(w.state(&id), None);
    assert_eq!(w.ok("PROMOTE q"), Reply::Nil);
    assert_eq!(w.store.key_type("zrq:{q}:completed"), Ok(KeyType::Missing));
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
    let keep = w.store.config.keep_ms;
    assert_eq!(w.store.zset("zrq:{q}:cancelled"), [(T + keep, id.clone())]);
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
    assert!(w.store.zset("zrq:{q}:completed").is_empty());
    assert_eq!(w.store.zset("zrq:{q}:cancelled").len(), 1);
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
        ("zrq:{q}:completed", "ACK q JOB"),
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
    w.store.put("zrq:{q}:job:x", Value::String("v".into()));
    for line in ["STATE q x", "JOB q x", "ACK q x", "CANCEL q x"] {
        let err = w.run(line).expect_err(line);
        assert_eq!(err.code, ErrorCode::WrongType, "{line}: {err}");
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
