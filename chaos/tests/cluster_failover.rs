//! Redis Cluster with replicas (3 primaries, 3 replicas, module on all, node timeout 1 s):
//! worker processes serving twelve queues spread over the slots keep going through the
//! failover of one primary, SIGKILLed mid-run. Every job completes, and each queue passes the
//! audit on the primary that owns it.
// Test code fails by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::*;
use zrq_chaos::ChaosArgs;
use zrq_tests::audit::{assert_consistent, State};
use zrq_tests::cluster::{cluster_ok, owner_port, start_cluster};
use zrq_tests::redis::{self, Connection};
use zrq_tests::{Backend, Server};

const QUEUES: usize = 12;
/// Jobs per queue enqueued (and replicated) before the failover, and after it.
const BEFORE: usize = 150;
const AFTER: usize = 50;

fn queue_names() -> Vec<String> {
    (0..QUEUES).map(|i| format!("c{i}")).collect()
}

/// `count` jobs for `queue` numbered from `first`: one in four fails once on purpose.
fn jobs(queue: &str, first: usize, count: usize) -> Vec<Planned> {
    (first..first + count)
        .map(|n| Planned {
            id: format!("{queue}-{n}"),
            args: ChaosArgs {
                fail_first: i64::from(n.is_multiple_of(4)),
                work_ms: 2,
            },
            options: ["RETRIES", "10", "TIMEOUT", "1000", "BACKOFF", "50"]
                .map(String::from)
                .into(),
        })
        .collect()
}

/// The live node owning `queue`'s slot, as `any` (a live node) sees it.
fn owner<'a>(nodes: &'a [Server], any: &mut Connection, queue: &str) -> &'a Server {
    let port = owner_port(any, queue);
    nodes
        .iter()
        .find(|n| n.port() == port)
        .expect("owner is a node")
}

/// Enqueues `jobs` on `queue`'s owner; with `confirm`, waits until its replica has them.
fn enqueue_on_owner(
    nodes: &[Server],
    any: &mut Connection,
    queue: &str,
    jobs: &[Planned],
    confirm: bool,
) {
    let mut conn = owner(nodes, any, queue).conn();
    enqueue_all(&mut conn, queue, jobs);
    if confirm {
        let replicas: i64 = redis::cmd("WAIT")
            .arg(1)
            .arg(10_000)
            .query(&mut conn)
            .unwrap();
        assert_eq!(replicas, 1, "the replica of {queue}'s primary has its jobs");
    }
}

/// Jobs of every queue that are finished, summed over the queues' owners.
fn finished_everywhere(nodes: &[Server], any: &mut Connection) -> i64 {
    queue_names()
        .iter()
        .map(|q| finished(&mut owner(nodes, any, q).conn(), q))
        .sum()
}

#[test]
fn cluster_primary_killed_workers_carry_on_across_queues() {
    let mut nodes = start_cluster(3, 1, true, &[("cluster-node-timeout", "1000")]);
    let urls: Vec<String> = nodes.iter().map(Server::url).collect();
    let queues = queue_names();
    let mut expected: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    {
        let mut any = nodes[0].conn();
        for queue in &queues {
            let planned = jobs(queue, 0, BEFORE);
            enqueue_on_owner(&nodes, &mut any, queue, &planned, true);
            expected.insert(queue.clone(), ids(&planned));
        }
    }
    let names: Vec<&str> = queues.iter().map(String::as_str).collect();
    // The worker's defaults (concurrency 16, batch 16) for twelve queues: idle queues' fetchers
    // wait without holding permits, so no queue crawls (this test once found that they did; see
    // docs/RELIABILITY.md).
    let mut workers = Workers::start(Target::Cluster(urls), &names, 2, 16, 16);
    let total = (QUEUES * (BEFORE + AFTER)) as i64;
    {
        let mut any = nodes[0].conn();
        wait_until("a fifth of the jobs done", Duration::from_secs(60), || {
            finished_everywhere(&nodes, &mut any) >= (QUEUES * BEFORE / 5) as i64
        });
    }

    // SIGKILL the primary that owns the first queue; its replica takes over by itself.
    let victim_port = owner_port(&mut nodes[0].conn(), &queues[0]);
    let victim = nodes.iter().position(|n| n.port() == victim_port).unwrap();
    nodes[victim].kill();
    let survivor = (victim + 1) % nodes.len();
    let mut any = nodes[survivor].conn();
    wait_until("the cluster fails over", Duration::from_secs(30), || {
        cluster_ok(&mut any) && owner_port(&mut any, &queues[0]) != victim_port
    });

    // More work after the failover, on the new primary and the untouched ones.
    for queue in &queues {
        let planned = jobs(queue, BEFORE, AFTER);
        enqueue_on_owner(&nodes, &mut any, queue, &planned, false);
        expected.get_mut(queue).unwrap().extend(ids(&planned));
    }
    wait_until("every job completes", Duration::from_secs(90), || {
        finished_everywhere(&nodes, &mut any) >= total
    });
    workers.stop_all();
    for queue in &queues {
        let mut conn = owner(&nodes, &mut any, queue).conn();
        let report = assert_consistent(&mut conn, Backend::Module, queue, Some(&expected[queue]));
        assert_eq!(
            report.count(State::Completed),
            BEFORE + AFTER,
            "queue {queue}: every job completed"
        );
    }
}
