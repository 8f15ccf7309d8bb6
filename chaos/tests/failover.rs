//! Replication failover: a primary and a replica (module on both) behind one stable address,
//! producers confirming each enqueue with `WAIT 1`, worker processes running. The primary is
//! SIGKILLed, the replica promoted (`REPLICAOF NO ONE`) and the address switched to it: every
//! WAIT-confirmed job survives and completes, and the same worker processes carry on by
//! themselves, reconnecting to the same address.
// Test code fails by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use zrq_chaos::ChaosArgs;
use zrq_tests::audit::assert_consistent;
use zrq_tests::proxy::Proxy;
use zrq_tests::redis::{self, Connection};
use zrq_tests::{Backend, Server};

const Q: &str = "failover";
/// Confirmed jobs before the failover, and again after it, at least.
const PER_PHASE: usize = 300;

/// One job of the producer: every other one fails once on purpose, one in ten is delayed.
fn job(n: usize) -> Planned {
    let mut options: Vec<String> = ["RETRIES", "10", "TIMEOUT", "1000", "BACKOFF", "50"]
        .map(String::from)
        .into();
    if n.is_multiple_of(10) {
        options.extend(["DELAY".to_string(), "500".to_string()]);
    }
    Planned {
        id: format!("f{n}"),
        args: ChaosArgs {
            fail_first: (n % 2) as i64,
            work_ms: 2,
        },
        options,
    }
}

/// ENQUEUE then `WAIT 1 1000`: whether a replica has the job now. On an error the caller
/// reconnects; unconfirmed or not, it sends the same job again (same `ID`) until confirmed.
fn enqueue_confirmed(conn: &mut Connection, job: &Planned) -> redis::RedisResult<bool> {
    let _: String = job.command(Q).query(conn)?;
    let replicas: i64 = redis::cmd("WAIT").arg(1).arg(1000).query(conn)?;
    Ok(replicas >= 1)
}

/// Produces jobs through `url` until `stop`, each sent until a replica confirmed it,
/// reconnecting after errors; confirmed ids go to `confirmed`.
fn produce(url: String, confirmed: Arc<Mutex<Vec<String>>>, stop: Arc<AtomicBool>) {
    let client = redis::Client::open(url).unwrap();
    let mut conn: Option<Connection> = None;
    for n in 0.. {
        let job = job(n);
        loop {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            match conn.as_mut().map(|c| enqueue_confirmed(c, &job)) {
                Some(Ok(true)) => break,
                Some(Ok(false)) => {}
                Some(Err(_)) | None => {
                    conn = client
                        .get_connection_with_timeout(Duration::from_secs(2))
                        .ok();
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        confirmed.lock().unwrap().push(job.id);
    }
}

fn wait_confirmed(confirmed: &Mutex<Vec<String>>, count: usize) {
    wait_until(
        &format!("{count} confirmed enqueues"),
        Duration::from_secs(60),
        || confirmed.lock().unwrap().len() >= count,
    );
}

/// Promotes `replica` the way an operator (or Sentinel) does.
fn promote(replica: &Server) {
    let _: () = redis::cmd("REPLICAOF")
        .arg("NO")
        .arg("ONE")
        .query(&mut replica.conn())
        .expect("REPLICAOF NO ONE");
}

#[test]
fn primary_killed_replica_promoted_every_confirmed_job_completes() {
    let mut primary = Backend::Module.server();
    let replica = primary.start_replica();
    let proxy = Proxy::start(primary.port());
    let mut workers = Workers::start(Target::Url(proxy.url()), &[Q], 2, 8, 8);
    let confirmed = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let producer = {
        let (url, confirmed, stop) = (proxy.url(), confirmed.clone(), stop.clone());
        std::thread::spawn(move || produce(url, confirmed, stop))
    };
    wait_confirmed(&confirmed, PER_PHASE);

    primary.kill();
    let before: BTreeSet<String> = confirmed.lock().unwrap().iter().cloned().collect();
    promote(&replica);
    proxy.switch(replica.port());
    // A new replica for the new primary, so producers' WAIT 1 can confirm again.
    let _spare = replica.start_replica();
    wait_confirmed(&confirmed, before.len() + PER_PHASE);
    stop.store(true, Ordering::Relaxed);
    producer.join().unwrap();

    let expected: BTreeSet<String> = confirmed.lock().unwrap().iter().cloned().collect();
    let mut conn = replica.conn();
    let found = outcomes(&mut conn, Q, &before);
    let lost: Vec<&String> = before
        .iter()
        .filter(|id| !found.contains_key(*id))
        .collect();
    assert!(
        lost.is_empty(),
        "WAIT-confirmed jobs lost in the failover: {lost:?}"
    );
    wait_until(
        "every confirmed job completes on the new primary",
        Duration::from_secs(60),
        || {
            let found = outcomes(&mut conn, Q, &expected);
            found.len() == expected.len() && found.values().all(|o| o.state == "completed")
        },
    );
    // Only the two original worker processes ever ran: they reconnected to the same address by
    // themselves, served the jobs confirmed after the failover, and still shut down cleanly.
    workers.stop_all();
    assert_consistent(&mut conn, Backend::Module, Q, Some(&expected));
}
