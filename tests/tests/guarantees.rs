//! The queue's guarantees: a job is always in exactly one place, nothing is lost or duplicated
//! when a worker dies, and a corrupt record is reported without taking the server down.

use crate::support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use support::{error_text, job_ids, Place, QueueView};
use zrq_tests::audit::{assert_consistent, audit};
use zrq_tests::{conformance, jobs, redis, Backend, JobMap, Rng, Server};

const Q: &str = "g";

/// Checks every known job against the raw structures and returns where each one is.
fn places(server: &Server, known: &BTreeSet<String>) -> BTreeMap<String, Place> {
    let mut conn = server.conn();
    let view = QueueView::read(&mut conn, Q);
    // Nothing in the structures that is not a known job.
    for job in view.stream.values() {
        assert!(known.contains(job), "stream entry for unknown job {job}");
    }
    for entry in view.pel.keys() {
        assert!(
            view.stream.contains_key(entry),
            "pending entry {entry} is not in the stream"
        );
    }
    for id in view.active.iter().chain(&view.dead) {
        assert!(
            known.contains(id),
            "lease or dead mark for unknown job {id}"
        );
    }
    // Every job has a record, or is held by its inline entry (whose id is the entry's).
    let mut ids: BTreeSet<String> = job_ids(&mut conn, Q).into_iter().collect();
    let inline = view.stream.iter().filter(|(entry, job)| entry == job);
    ids.extend(inline.map(|(_, job)| job.clone()));
    assert_eq!(
        &ids, known,
        "job records and inline entries vs jobs enqueued"
    );
    known
        .iter()
        .map(|id| (id.clone(), view.place(&mut conn, Q, id)))
        .collect()
}

fn stats(server: &Server) -> BTreeMap<String, i64> {
    redis::cmd("HGETALL")
        .arg(format!("zrq:{{{Q}}}:stats"))
        .query(&mut server.conn())
        .expect("stats")
}

fn random_operations_keep_every_job_in_exactly_one_place(backend: Backend) {
    for seed in [7, 2024] {
        random_run(backend, seed, 250);
    }
}

fn random_run(backend: Backend, seed: u64, steps: usize) {
    let server = backend.server();
    // Each step's expectation is checked against the keyspace right after it: expired leases
    // wait for this run's RECLAIM steps rather than for the module's timer.
    server.leave_leases_to_reclaim();
    let mut zrq = server.zrq(backend);
    let mut rng = Rng::new(seed);
    let mut known: BTreeSet<String> = BTreeSet::new();
    let mut finished: BTreeMap<String, Place> = BTreeMap::new();
    let consumers = ["w0", "w1", "w2"];
    let mut reclaims = 0;

    for step in 0..steps {
        let ctx = format!("seed {seed} step {step}");
        // What this step's reply says must now be true: (job, place).
        let mut expect: Vec<(String, Place)> = Vec::new();
        match rng.below(10) {
            0..=2 => {
                let retries = rng.below(3).to_string();
                let timeout = if rng.below(2) == 0 { "20" } else { "30000" };
                let mut options = vec!["RETRIES", &retries, "TIMEOUT", timeout];
                let chosen = format!("k{}", rng.below(12));
                if rng.below(3) == 0 {
                    options.extend(["ID", &chosen]);
                }
                let payload = format!("{{\"step\":{step}}}");
                let id = zrq.enqueue(Q, "t", &payload, &options);
                if known.insert(id.clone()) {
                    expect.push((id, Place::Waiting));
                }
            }
            3..=4 => {
                let consumer = consumers[rng.below(3) as usize];
                let count = 1 + rng.below(3) as usize;
                for job in zrq.fetch(Q, consumer, count) {
                    assert_eq!(job["consumer"], consumer, "{ctx}");
                    expect.push((job["id"].clone(), Place::Running(consumer.to_string())));
                }
            }
            5..=6 => {
                let Some(id) = known
                    .iter()
                    .nth(rng.below(known.len().max(1) as u64) as usize)
                else {
                    continue;
                };
                let id = id.clone();
                let before = zrq.state(Q, &id);
                let acked: i64 = if rng.below(2) == 0 {
                    zrq.call("ack", &[Q, &id, "RESULT", "{\"ok\":true}"])
                } else {
                    zrq.call("ack", &[Q, &id])
                }
                .expect("ACK");
                assert_eq!(
                    acked == 1,
                    before.as_deref() == Some("active"),
                    "{ctx}: ACK {id} in state {before:?} replied {acked}"
                );
                if acked == 1 {
                    expect.push((id, Place::Completed));
                }
            }
            7 => {
                let consumer = consumers[rng.below(3) as usize];
                let count = (1 + rng.below(5)).to_string();
                let reply: redis::Value = zrq
                    .call("reclaim", &[Q, consumer, "COUNT", &count])
                    .expect("RECLAIM");
                for job in jobs(reply) {
                    assert_eq!(job["consumer"], consumer, "{ctx}");
                    assert!(
                        job["attempt"].parse::<i64>().expect("attempt") >= 2,
                        "{ctx}"
                    );
                    expect.push((job["id"].clone(), Place::Running(consumer.to_string())));
                    reclaims += 1;
                }
            }
            8 => std::thread::sleep(Duration::from_millis(25)),
            _ => {
                // A refused command in the middle of the run changes nothing.
                let before = server.snapshot();
                let id = known.iter().next().cloned().unwrap_or_else(|| "k0".into());
                let refused = [
                    zrq.call::<redis::Value>("ack", &[Q, &id, "RESULT", "{bad"]),
                    zrq.call::<redis::Value>("enqueue", &[Q, "t", "{", "ID", "never"]),
                    zrq.call::<redis::Value>("fetch", &[Q, "w0", "COUNT", "0"]),
                    zrq.call::<redis::Value>("reclaim", &[Q, "w0", "COUNT", "-3"]),
                ];
                for reply in refused {
                    assert!(reply.is_err(), "{ctx}: {reply:?}");
                }
                assert_eq!(server.snapshot(), before, "{ctx}: a refused command wrote");
            }
        }
        let now = places(&server, &known);
        // The whole-queue audit, now and then (it reads every structure at once).
        if step.is_multiple_of(25) {
            let report = audit(&mut server.conn(), backend, Q, Some(&known));
            assert!(
                report.violations.is_empty(),
                "{ctx}: {:#?}",
                report.violations
            );
        }
        for (id, want) in expect {
            assert_eq!(now[&id], want, "{ctx}: job {id} after the reply");
        }
        for (id, place) in &finished {
            assert_eq!(&now[id], place, "{ctx}: finished job {id} moved");
        }
        for (id, place) in &now {
            if matches!(place, Place::Completed | Place::Dead) {
                finished.insert(id.clone(), place.clone());
            }
        }
    }

    // Drain: run everything still waiting or running to an end.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = places(&server, &known);
        let open: Vec<&String> = now
            .iter()
            .filter(|(_, p)| matches!(p, Place::Waiting | Place::Running(_)))
            .map(|(id, _)| id)
            .collect();
        if open.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "jobs never finished: {open:?}");
        for id in open {
            let _: i64 = zrq.call("ack", &[Q, id]).expect("ACK");
        }
        zrq.fetch(Q, "drain", 1000);
    }
    let now = places(&server, &known);
    assert_consistent(&mut server.conn(), backend, Q, Some(&known));
    let completed = now.values().filter(|p| **p == Place::Completed).count() as i64;
    let dead = now.values().filter(|p| **p == Place::Dead).count() as i64;
    assert_eq!(completed + dead, known.len() as i64);
    // The run went through every transition (else the seed is too tame to prove anything).
    assert!(
        reclaims > 0 && dead > 0 && finished.len() > 5 && known.len() > 20,
        "seed {seed}: {reclaims} reclaims, {dead} dead, {} finished, {} jobs",
        finished.len(),
        known.len()
    );
    let stats = stats(&server);
    assert_eq!(
        stats.get("enqueued"),
        Some(&(known.len() as i64)),
        "{stats:?}"
    );
    assert_eq!(stats.get("completed").copied().unwrap_or(0), completed);
    assert_eq!(stats.get("dead").copied().unwrap_or(0), dead);
    // Finished jobs left the stream: memory stays flat.
    let len: i64 = redis::cmd("XLEN")
        .arg(format!("zrq:{{{Q}}}:stream"))
        .query(&mut server.conn())
        .expect("XLEN");
    assert_eq!(len, 0);
}

fn jobs_of_a_dead_worker_are_reclaimed_and_complete_once(backend: Backend) {
    let server = backend.server();
    // RECLAIM's way, on both backends (the module's timer would put the jobs back to pending).
    server.leave_leases_to_reclaim();
    let mut producer = server.zrq(backend);
    let n = 10;
    let enqueued: BTreeSet<String> = (0..n)
        .map(|i| producer.enqueue(Q, "t", &format!("{{\"i\":{i}}}"), &["TIMEOUT", "100"]))
        .collect();
    assert_eq!(enqueued.len(), n);

    // The first worker takes everything and dies without acknowledging.
    let mut doomed = server.zrq(backend);
    let taken: BTreeSet<String> = doomed
        .fetch(Q, "doomed", n)
        .into_iter()
        .map(|j| j["id"].clone())
        .collect();
    assert_eq!(taken, enqueued);
    drop(doomed);

    // Nothing else is handed out while the lease runs, and nothing is reclaimable yet.
    let mut rescuer = server.zrq(backend);
    assert!(rescuer.fetch(Q, "rescuer", n).is_empty());

    // After the lease, another worker reclaims every job, each once.
    let mut reclaimed: Vec<JobMap> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while reclaimed.len() < n && Instant::now() < deadline {
        let reply: redis::Value = rescuer
            .call("reclaim", &[Q, "rescuer", "COUNT", "100"])
            .expect("RECLAIM");
        reclaimed.extend(jobs(reply));
        std::thread::sleep(Duration::from_millis(20));
    }
    let ids: Vec<String> = reclaimed.iter().map(|j| j["id"].clone()).collect();
    let unique: BTreeSet<String> = ids.iter().cloned().collect();
    assert_eq!(
        ids.len(),
        unique.len(),
        "a job was reclaimed twice: {ids:?}"
    );
    assert_eq!(unique, enqueued, "every job comes back");
    for job in &reclaimed {
        assert_eq!(job["consumer"], "rescuer");
        assert_eq!(job["attempt"], "2");
        assert_eq!(job["state"], "active");
        assert!(job["error"].contains("lease expired"), "{job:?}");
    }
    // Reclaimed jobs are running again: FETCH does not hand them out a second time. (Whether they
    // are reclaimable again depends on how fast this machine is: their new lease is 100 ms too.)
    assert!(rescuer.fetch(Q, "other", n).is_empty());

    for id in &enqueued {
        let result = format!("{{\"done\":\"{id}\"}}");
        let acked: i64 = rescuer
            .call("ack", &[Q, id, "RESULT", &result])
            .expect("ACK");
        assert_eq!(acked, 1, "{id}");
    }
    // The dead worker comes back late: its acknowledgements find the jobs finished.
    let mut late = server.zrq(backend);
    for id in &enqueued {
        let acked: i64 = late.call("ack", &[Q, id]).expect("ACK");
        assert_eq!(acked, 0, "{id} completed twice");
    }
    let now = places(&server, &enqueued);
    for (id, place) in &now {
        assert_eq!(*place, Place::Completed, "{id}");
        let job = late.job(Q, id).expect("job");
        assert_eq!(job["result"], format!("{{\"done\":\"{id}\"}}"));
        assert_eq!(job["attempt"], "2");
    }
    let stats = stats(&server);
    assert_eq!(stats.get("enqueued"), Some(&(n as i64)));
    assert_eq!(stats.get("completed"), Some(&(n as i64)));
    assert_eq!(stats.get("dead"), None);
}

fn exhausted_jobs_die_once_and_are_not_returned(backend: Backend) {
    let server = backend.server();
    let mut zrq = server.zrq(backend);
    let id = zrq.enqueue(Q, "t", "{}", &["RETRIES", "0", "TIMEOUT", "30"]);
    assert_eq!(zrq.fetch(Q, "w", 1).len(), 1);
    std::thread::sleep(Duration::from_millis(60));
    let reply: redis::Value = zrq.call("reclaim", &[Q, "w2"]).expect("RECLAIM");
    assert!(
        jobs(reply).is_empty(),
        "a job out of attempts is not handed out"
    );
    let known: BTreeSet<String> = [id.clone()].into();
    assert_eq!(places(&server, &known)[&id], Place::Dead);
    let job = zrq.job(Q, &id).expect("job");
    assert!(job["error"].contains("lease expired"), "{job:?}");
    assert!(job.contains_key("finished_at"));
    let reply: redis::Value = zrq.call("reclaim", &[Q, "w3"]).expect("RECLAIM");
    assert!(jobs(reply).is_empty());
    assert_eq!(stats(&server).get("dead"), Some(&1));
}

fn corrupt_records_are_reported_and_the_server_stays_up(backend: Backend) {
    let server = backend.server();
    let mut zrq = server.zrq(backend);
    let mut conn = server.conn();
    let key = |id: &str| format!("zrq:{{{Q}}}:job:{id}");

    let cases: &[(&str, &str, &str, &str)] = &[
        ("s1", "state", "garbage", "unknown state 'garbage'"),
        ("a1", "attempt", "one", "field 'attempt' is not an integer"),
        (
            "c1",
            "created_at",
            "yesterday",
            "field 'created_at' is not an integer",
        ),
    ];
    for (id, field, value, detail) in cases {
        zrq.enqueue(Q, "t", "{}", &["ID", id]);
        support::tamper(&mut conn, Q, id, |record| {
            record.insert(field.to_string(), value.to_string());
        });
        let before = server.snapshot();
        let want = format!("CORRUPT '{}' is not a zrq record: {detail}", key(id));
        let err = zrq.call::<redis::Value>("job", &[Q, id]).expect_err("JOB");
        assert_eq!(error_text(&err), want);
        let err = zrq.call::<redis::Value>("ack", &[Q, id]).expect_err("ACK");
        assert_eq!(error_text(&err), want);
        if *field == "state" {
            let err = zrq
                .call::<redis::Value>("state", &[Q, id])
                .expect_err("STATE");
            assert_eq!(
                error_text(&err),
                want,
                "STATE reads the state as strictly as JOB"
            );
        }
        assert_eq!(server.snapshot(), before, "a CORRUPT reply wrote");
        let pong: String = redis::cmd("PING").query(&mut conn).expect("PING");
        assert_eq!(pong, "PONG");
    }
    // A record missing a required field.
    zrq.enqueue(Q, "t", "{}", &["ID", "m1"]);
    support::tamper(&mut conn, Q, "m1", |record| {
        record.remove("task");
    });
    let err = zrq
        .call::<redis::Value>("job", &[Q, "m1"])
        .expect_err("JOB");
    assert_eq!(
        error_text(&err),
        format!(
            "CORRUPT '{}' is not a zrq record: field 'task' is missing",
            key("m1")
        )
    );
    // Other jobs of the queue are unaffected.
    let good = zrq.enqueue(Q, "t", "{}", &["ID", "good"]);
    assert_eq!(zrq.job(Q, &good).expect("job")["state"], "pending");
    let pong: String = redis::cmd("PING").query(&mut conn).expect("PING");
    assert_eq!(pong, "PONG");
}

fn duplicate_ids_never_create_a_second_job(backend: Backend) {
    let server = backend.server();
    let mut zrq = server.zrq(backend);
    let id = zrq.enqueue(Q, "t", "{\"v\":1}", &["ID", "once"]);
    assert_eq!(zrq.fetch(Q, "w", 1).len(), 1);
    // Re-enqueueing while it runs, and after it completed, adds nothing.
    assert_eq!(zrq.enqueue(Q, "t", "{\"v\":2}", &["ID", "once"]), id);
    let acked: i64 = zrq.call("ack", &[Q, &id]).expect("ACK");
    assert_eq!(acked, 1);
    assert_eq!(zrq.enqueue(Q, "t", "{\"v\":3}", &["ID", "once"]), id);
    assert!(zrq.fetch(Q, "w", 10).is_empty());
    let job = zrq.job(Q, &id).expect("job");
    assert_eq!(job["payload"], "{\"v\":1}");
    assert_eq!(job["state"], "completed");
    assert_eq!(stats(&server).get("enqueued"), Some(&1));
}

conformance!(
    random_operations_keep_every_job_in_exactly_one_place,
    jobs_of_a_dead_worker_are_reclaimed_and_complete_once,
    exhausted_jobs_die_once_and_are_not_returned,
    corrupt_records_are_reported_and_the_server_stays_up,
    duplicate_ids_never_create_a_second_job,
);
