//! `ZRQ.QUEUES [CURSOR <c>] [COUNT <n>]`: one bounded step of a scan per call, listing only the
//! queues the caller may read (issue #11 section 4, issue #12 "Tenancy"), on both backends.

use crate::support;

use std::collections::BTreeSet;

use support::{error_text, TENANT_A};
use zrq_tests::redis::{self, Value};
use zrq_tests::{conformance, Backend, Server, Zrq};

/// One step: the next cursor and the names of the page.
fn step(zrq: &mut Zrq, cursor: &str, count: &str) -> (String, Vec<String>) {
    zrq.call("queues", &["CURSOR", cursor, "COUNT", count])
        .expect("QUEUES")
}

/// Every name of a full scan with steps of `count` keys, in the order the pages gave them
/// (duplicates kept), and how many steps it took.
fn scan_all(zrq: &mut Zrq, count: &str) -> (Vec<String>, usize) {
    let (mut names, mut steps, mut cursor) = (Vec::new(), 0, "0".to_string());
    loop {
        let (next, page) = step(zrq, &cursor, count);
        steps += 1;
        let mut sorted = page.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(page, sorted, "a page is sorted, each name once");
        names.extend(page);
        if next == "0" {
            return (names, steps);
        }
        assert_ne!(next, cursor, "the scan moves on");
        cursor = next;
    }
}

/// Queues `q000`…, each with a job, among `filler` unrelated keys; returns the queue names.
fn populate(server: &Server, backend: Backend, queues: usize, filler: usize) -> Vec<String> {
    let mut zrq = server.zrq(backend);
    let names: Vec<String> = (0..queues).map(|n| format!("q{n:03}")).collect();
    for name in &names {
        zrq.enqueue(name, "t", "{}", &[]);
    }
    let _: () = redis::cmd("DEBUG")
        .arg("POPULATE")
        .arg(filler)
        .arg("filler")
        .query(&mut server.conn())
        .expect("DEBUG POPULATE");
    names
}

fn paging_lists_every_queue_once(backend: Backend) {
    let server = backend.server();
    let queues = populate(&server, backend, 40, 3000);
    let mut zrq = server.zrq(backend);
    let keys: i64 = redis::cmd("DBSIZE")
        .query(&mut server.conn())
        .expect("DBSIZE");
    for count in ["1", "7", "100", "250"] {
        let (names, steps) = scan_all(&mut zrq, count);
        // Nothing is written during the scan and the table keeps its size (DEBUG POPULATE sized
        // it first), so SCAN returns each key once: each queue once.
        let unique: BTreeSet<String> = names.iter().cloned().collect();
        assert_eq!(unique.len(), names.len(), "COUNT {count}: {names:?}");
        assert_eq!(unique, queues.iter().cloned().collect(), "COUNT {count}");
        // Each step examines about COUNT keys (SCAN examines at least COUNT slots of its table
        // per step unless it ends): a full scan takes many steps, never one unbounded one.
        let count: i64 = count.parse().expect("count");
        let at_least = (keys / count / 8).max(1);
        assert!(
            steps as i64 >= at_least,
            "COUNT {count}: {steps} steps for {keys} keys"
        );
    }
    // The default COUNT is 100, the maximum 250.
    let (_, page): (String, Vec<String>) = zrq.call("queues", &[]).expect("QUEUES");
    assert!(page.len() <= 40);
    let err = zrq
        .call::<Value>("queues", &["COUNT", "251"])
        .expect_err("COUNT 251");
    assert_eq!(
        error_text(&err),
        "ERR COUNT must be an integer from 1 to 250, got '251'"
    );
}

fn a_small_server_answers_in_one_step(backend: Backend) {
    let server = backend.server();
    let mut zrq = server.zrq(backend);
    let empty: (String, Vec<String>) = zrq.call("queues", &[]).expect("QUEUES");
    assert_eq!(empty, ("0".to_string(), vec![]));
    for queue in ["zeta", "alpha", "mid:dle"] {
        zrq.enqueue(queue, "t", "{}", &[]);
    }
    // Not a queue: a marker-like key whose name is not a valid queue name, another key.
    let _: () = redis::cmd("HSET")
        .arg("zrq:{a}:b}:stats")
        .arg("x")
        .arg("1")
        .query(&mut server.conn())
        .expect("HSET");
    let _: () = redis::cmd("SET")
        .arg("zrq:{beta}:other")
        .arg("1")
        .query(&mut server.conn())
        .expect("SET");
    let page: (String, Vec<String>) = zrq.call("queues", &[]).expect("QUEUES");
    assert_eq!(
        page,
        (
            "0".to_string(),
            vec!["alpha".into(), "mid:dle".into(), "zeta".into()]
        )
    );
    // A cursor given with leading zeros is the same cursor.
    let again: (String, Vec<String>) = zrq
        .call("queues", &["CURSOR", "000", "COUNT", "250"])
        .expect("QUEUES");
    assert_eq!(again, page);
}

/// Three queues: tenant A's, one whose name only starts like it, tenant B's.
fn tenants(server: &Server, backend: Backend) {
    let mut operator = server.zrq(backend);
    for queue in ["tenantA", "tenantAB", "tenantB", "shared"] {
        operator.enqueue(queue, "t", "{}", &[]);
    }
}

fn tenant_b() -> Vec<&'static str> {
    vec![
        "~tenantB",
        "~zrq:{tenantB}:*",
        "&zrq:{tenantB}:*",
        "+@all",
        "-@dangerous",
    ]
}

fn each_tenant_sees_only_its_queues(backend: Backend) {
    let server = backend.server();
    tenants(&server, backend);
    let mut a = server.zrq_as(backend, "ta", TENANT_A);
    let mut b = server.zrq_as(backend, "tb", &tenant_b());
    assert_eq!(scan_all(&mut a, "1").0, ["tenantA"]);
    assert_eq!(scan_all(&mut a, "250").0, ["tenantA"]);
    assert_eq!(scan_all(&mut b, "250").0, ["tenantB"]);
    // Read permission on the queue's name is what counts: a read-only key pattern is enough.
    let mut reader = server.zrq_as(
        backend,
        "reader",
        &["%R~shared", "%R~zrq:{shared}:*", "+@all", "-@dangerous"],
    );
    assert_eq!(scan_all(&mut reader, "250").0, ["shared"]);
    // Write-only is not reading.
    let mut writer = server.zrq_as(
        backend,
        "writer",
        &["%W~shared", "%W~zrq:{shared}:*", "+@all", "-@dangerous"],
    );
    assert!(scan_all(&mut writer, "250").0.is_empty());
    let mut operator = server.zrq(backend);
    assert_eq!(
        scan_all(&mut operator, "250").0,
        ["shared", "tenantA", "tenantAB", "tenantB"]
    );
}

/// A user may not run SCAN (as docs/ACL.md advises for tenants): the module lists its queues (it
/// needs no SCAN permission); the Lua library cannot scan for it and says so with NOPERM, never
/// INTERNAL and never another tenant's names.
fn without_scan(backend: Backend) {
    let server = backend.server();
    tenants(&server, backend);
    let mut rules = TENANT_A.to_vec();
    rules.push("-scan");
    let mut a = server.zrq_as(backend, "ta", &rules);
    let reply = a.call::<(String, Vec<String>)>("queues", &["COUNT", "250"]);
    match backend {
        Backend::Module => assert_eq!(reply.expect("QUEUES").1, ["tenantA"]),
        Backend::Lua => assert_eq!(
            error_text(&reply.expect_err("NOPERM")),
            "NOPERM zrq_queues needs SCAN on the Lua backend, which this user may not run; \
             see docs/ACL.md"
        ),
    }
    // Bad options are reported first, as on the module.
    let bad = a
        .call::<Value>("queues", &["COUNT", "0"])
        .expect_err("COUNT 0");
    assert_eq!(
        error_text(&bad),
        "ERR COUNT must be an integer from 1 to 250, got '0'"
    );
}

conformance!(
    paging_lists_every_queue_once,
    a_small_server_answers_in_one_step,
    each_tenant_sees_only_its_queues,
    without_scan
);

/// The replies of both backends agree step by step for the same keyspace: with one server per
/// backend the order of SCAN differs (Redis seeds its hash per process), so compare what a full
/// scan lists and the shape of each page.
#[test]
fn both_backends_list_the_same_queues() {
    let mut all = Vec::new();
    for backend in [Backend::Module, Backend::Lua] {
        let server = backend.server();
        populate(&server, backend, 25, 500);
        tenants(&server, backend);
        let mut zrq = server.zrq(backend);
        let (names, _) = scan_all(&mut zrq, "10");
        let unique: BTreeSet<String> = names.into_iter().collect();
        let mut a = server.zrq_as(backend, "ta", TENANT_A);
        all.push((unique, scan_all(&mut a, "10").0));
    }
    assert_eq!(all[0], all[1]);
    assert_eq!(all[0].0.len(), 29);
}
