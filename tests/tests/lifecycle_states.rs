//! The job state machine (`core/src/state.rs`), driven through commands: for each legal
//! transition, a job is brought into the source state, the event's command is applied, and the
//! reply, the new state and the job's placement (which keys hold it) are checked. Each illegal
//! event is refused with the documented reply and leaves the keyspace unchanged.
//!
//! `Promote` (scheduled/retrying → pending) needs the server-side timer: see `timers.rs`.

use crate::support;

use std::time::Duration;

use lifecycle_support::{
    assert_placed, expected_placement, field, ok, placement, show, show_jobs, stable_snapshot,
};
use support::lifecycle as lifecycle_support;
use zrq_tests::{conformance, Backend, Server, Zrq};

/// How a job is brought into its source state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// `DELAY` far in the future.
    Scheduled,
    Pending,
    /// Fetched by `w1`, attempts left, lease running.
    Active,
    /// Fetched by `w1` on its last attempt.
    ActiveLast,
    /// Fetched by `w1`, attempts left, lease expired.
    ActiveExpired,
    /// Fetched by `w1` on its last attempt, lease expired.
    ActiveExpiredLast,
    /// Fetched by `w1`, then CANCEL requested.
    CancelRequested,
    /// Fetched by `w1`, CANCEL requested, lease expired.
    CancelRequestedExpired,
    /// Failed with attempts left, retry far in the future.
    Retrying,
    Completed,
    Dead,
    Cancelled,
}

impl Source {
    fn state(self) -> &'static str {
        match self {
            Source::Scheduled => "scheduled",
            Source::Pending => "pending",
            Source::Active
            | Source::ActiveLast
            | Source::ActiveExpired
            | Source::ActiveExpiredLast
            | Source::CancelRequested
            | Source::CancelRequestedExpired => "active",
            Source::Retrying => "retrying",
            Source::Completed => "completed",
            Source::Dead => "dead",
            Source::Cancelled => "cancelled",
        }
    }
}

/// The command applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Fetch,
    Ack,
    Fail,
    Reclaim,
    Cancel,
    Requeue,
    RequeueAll,
    Touch,
}

const ALL_SOURCES: [Source; 12] = [
    Source::Scheduled,
    Source::Pending,
    Source::Active,
    Source::ActiveLast,
    Source::ActiveExpired,
    Source::ActiveExpiredLast,
    Source::CancelRequested,
    Source::CancelRequestedExpired,
    Source::Retrying,
    Source::Completed,
    Source::Dead,
    Source::Cancelled,
];

/// Brings job `id` of `queue` into `source`.
fn drive(zrq: &mut Zrq, queue: &str, id: &str, source: Source) {
    let last = matches!(
        source,
        Source::ActiveLast | Source::ActiveExpiredLast | Source::Dead
    );
    let expired = matches!(
        source,
        Source::ActiveExpired | Source::ActiveExpiredLast | Source::CancelRequestedExpired
    );
    let mut options = vec!["ID", id, "RETRIES", if last { "0" } else { "1" }];
    options.extend(["TIMEOUT", if expired { "1" } else { "600000" }]);
    if source == Source::Scheduled {
        options.extend(["DELAY", "600000"]);
    }
    assert_eq!(zrq.enqueue(queue, "t", r#"{"n":1}"#, &options), id);
    if matches!(source, Source::Scheduled | Source::Pending) {
        return;
    }
    if source == Source::Cancelled {
        assert_eq!(show(&ok(zrq, "cancel", &[queue, id])), "1");
        return;
    }
    let fetched = zrq.fetch(queue, "w1", 1);
    assert_eq!(fetched.len(), 1, "{source:?}: the job is delivered");
    match source {
        Source::Retrying => {
            let reply = ok(zrq, "fail", &[queue, id, "boom", "RETRYIN", "600000"]);
            assert_eq!(show(&reply), "retrying");
        }
        Source::Completed => assert_eq!(show(&ok(zrq, "ack", &[queue, id])), "1"),
        Source::Dead => assert_eq!(show(&ok(zrq, "fail", &[queue, id, "boom"])), "dead"),
        Source::CancelRequested | Source::CancelRequestedExpired => {
            assert_eq!(show(&ok(zrq, "cancel", &[queue, id])), "2")
        }
        _ => {}
    }
    if expired {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        zrq.state(queue, id).as_deref(),
        Some(source.state()),
        "setup of {source:?}"
    );
}

/// Applies `action` to job `id`; the reply as text (`jobs:[…]` for FETCH and RECLAIM).
fn apply(zrq: &mut Zrq, queue: &str, id: &str, action: Action) -> String {
    match action {
        Action::Fetch => show_jobs(ok(zrq, "fetch", &[queue, "w2", "COUNT", "10"])),
        Action::Ack => show(&ok(zrq, "ack", &[queue, id, "RESULT", r#"{"ok":true}"#])),
        Action::Fail => show(&ok(zrq, "fail", &[queue, id, "it broke"])),
        Action::Reclaim => show_jobs(ok(zrq, "reclaim", &[queue, "w2"])),
        Action::Cancel => show(&ok(zrq, "cancel", &[queue, id])),
        Action::Requeue => show(&ok(zrq, "requeue", &[queue, id])),
        Action::RequeueAll => show(&ok(zrq, "requeue", &[queue, "ALL"])),
        Action::Touch => show(&ok(zrq, "touch", &[queue, id, "PROGRESS", "5"])),
    }
}

/// A legal transition: from `source`, `action` replies `reply` and leaves the job in `to`.
struct Legal {
    source: Source,
    action: Action,
    reply: &'static str,
    to: &'static str,
}

const fn legal(source: Source, action: Action, reply: &'static str, to: &'static str) -> Legal {
    Legal {
        source,
        action,
        reply,
        to,
    }
}

/// Every transition of `State::after` that a command causes (`{id}` in a reply is the job id).
const LEGAL: &[Legal] = &[
    // Fetch
    legal(Source::Pending, Action::Fetch, "jobs:[{id}]", "active"),
    // Ack
    legal(Source::Active, Action::Ack, "1", "completed"),
    legal(Source::ActiveLast, Action::Ack, "1", "completed"),
    // Retry, Bury
    legal(Source::Active, Action::Fail, "retrying", "retrying"),
    legal(Source::ActiveLast, Action::Fail, "dead", "dead"),
    // Reclaim, Exhaust
    legal(
        Source::ActiveExpired,
        Action::Reclaim,
        "jobs:[{id}]",
        "active",
    ),
    legal(
        Source::ActiveExpiredLast,
        Action::Reclaim,
        "jobs:[]",
        "dead",
    ),
    // Cancel
    legal(Source::Scheduled, Action::Cancel, "1", "cancelled"),
    legal(Source::Pending, Action::Cancel, "1", "cancelled"),
    legal(Source::Retrying, Action::Cancel, "1", "cancelled"),
    // A running job is only flagged.
    legal(Source::Active, Action::Cancel, "2", "active"),
    // Abandon: the worker of a cancel-requested job reports back, or its lease runs out.
    legal(Source::CancelRequested, Action::Ack, "-1", "cancelled"),
    legal(
        Source::CancelRequested,
        Action::Fail,
        "cancelled",
        "cancelled",
    ),
    legal(
        Source::CancelRequestedExpired,
        Action::Reclaim,
        "jobs:[]",
        "cancelled",
    ),
    // Requeue
    legal(Source::Dead, Action::Requeue, "1", "pending"),
    // ALL replies with a page: [next-cursor, requeued].
    legal(Source::Dead, Action::RequeueAll, "[0,1]", "pending"),
    // TOUCH keeps an active job active.
    legal(Source::Active, Action::Touch, "1", "active"),
];

/// An illegal event: from each source, `action` replies `reply` and changes nothing.
struct Illegal {
    action: Action,
    reply: &'static str,
    sources: &'static [Source],
}

const ILLEGAL: &[Illegal] = &[
    Illegal {
        action: Action::Ack,
        reply: "0",
        sources: &[
            Source::Scheduled,
            Source::Pending,
            Source::Retrying,
            Source::Completed,
            Source::Dead,
            Source::Cancelled,
        ],
    },
    Illegal {
        action: Action::Fail,
        reply: "nil",
        sources: &[
            Source::Scheduled,
            Source::Pending,
            Source::Retrying,
            Source::Completed,
            Source::Dead,
            Source::Cancelled,
        ],
    },
    Illegal {
        action: Action::Touch,
        reply: "0",
        sources: &[
            Source::Scheduled,
            Source::Pending,
            Source::Retrying,
            Source::Completed,
            Source::Dead,
            Source::Cancelled,
        ],
    },
    // TOUCH of a cancel-requested job tells the worker and extends nothing.
    Illegal {
        action: Action::Touch,
        reply: "-1",
        sources: &[Source::CancelRequested],
    },
    Illegal {
        action: Action::Cancel,
        reply: "0",
        sources: &[Source::Completed, Source::Dead, Source::Cancelled],
    },
    Illegal {
        action: Action::Requeue,
        reply: "0",
        sources: &[
            Source::Scheduled,
            Source::Pending,
            Source::Active,
            Source::Retrying,
            Source::Completed,
            Source::Cancelled,
            Source::CancelRequested,
        ],
    },
    Illegal {
        action: Action::RequeueAll,
        reply: "[0,0]",
        sources: &[
            Source::Scheduled,
            Source::Pending,
            Source::Active,
            Source::Retrying,
            Source::Completed,
            Source::Cancelled,
        ],
    },
    Illegal {
        action: Action::Fetch,
        reply: "jobs:[]",
        sources: &[
            Source::Scheduled,
            Source::Active,
            Source::Retrying,
            Source::Completed,
            Source::Dead,
            Source::Cancelled,
            Source::CancelRequested,
        ],
    },
    // RECLAIM only takes jobs whose lease expired.
    Illegal {
        action: Action::Reclaim,
        reply: "jobs:[]",
        sources: &[
            Source::Scheduled,
            Source::Pending,
            Source::Active,
            Source::ActiveLast,
            Source::Retrying,
            Source::Completed,
            Source::Dead,
            Source::Cancelled,
            Source::CancelRequested,
        ],
    },
];

fn every_legal_transition_moves_the_job(backend: Backend) {
    let server = backend.server();
    // Expired leases stay active until the action under test (RECLAIM) meets them.
    server.leave_leases_to_reclaim();
    let mut zrq = server.zrq(backend);
    let mut conn = server.conn();
    for (n, row) in LEGAL.iter().enumerate() {
        let (queue, id) = (format!("legal{n}"), format!("j{n}"));
        let what = format!("{:?} --{:?}-->", row.source, row.action);
        drive(&mut zrq, &queue, &id, row.source);
        let before = zrq.job(&queue, &id).expect("job");
        let reply = apply(&mut zrq, &queue, &id, row.action);
        assert_eq!(reply, row.reply.replace("{id}", &id), "{what} reply");
        assert_eq!(
            zrq.state(&queue, &id).as_deref(),
            Some(row.to),
            "{what} state"
        );
        let after = zrq.job(&queue, &id).expect("job still there");
        assert_eq!(
            placement(&mut conn, &queue, &id),
            expected_placement(row.to),
            "{what} placement; job {after:?}"
        );
        match (row.source, row.action) {
            (Source::Pending, Action::Fetch) => {
                assert_eq!(after["consumer"], "w2");
                assert_eq!(after["attempt"], "1");
            }
            (Source::ActiveExpired, Action::Reclaim) => {
                assert_eq!(after["consumer"], "w2", "{what} new owner");
                assert_eq!(after["attempt"], "2", "{what} a new attempt");
                assert!(after["error"].contains("lease expired"), "{after:?}");
            }
            (_, Action::Ack) if row.to == "completed" => {
                assert_eq!(after["result"], r#"{"ok":true}"#);
                assert!(after.contains_key("finished_at"));
            }
            (_, Action::Fail) => assert_eq!(after["error"], "it broke", "{what}"),
            (Source::Active, Action::Cancel) => {
                assert_eq!(after["cancel_requested"], "1", "{what}");
                assert_eq!(after["consumer"], "w1");
            }
            (Source::Dead, _) => {
                assert_eq!(after["attempt"], "0", "{what} fresh attempt budget");
                assert_eq!(after["error"], "boom", "{what} last error kept");
                assert!(!after.contains_key("finished_at"), "{after:?}");
            }
            (Source::Active, Action::Touch) => {
                assert_eq!(after["progress"], "5");
                assert_eq!(after["attempt"], before["attempt"]);
            }
            _ => {}
        }
        if row.to == "cancelled" || row.to == "completed" || row.to == "dead" {
            assert!(after.contains_key("finished_at"), "{what}: {after:?}");
        }
    }
}

fn every_illegal_event_is_refused_and_changes_nothing(backend: Backend) {
    let server = backend.server();
    // Expired leases stay active until the action under test (RECLAIM) meets them.
    server.leave_leases_to_reclaim();
    let mut zrq = server.zrq(backend);
    let mut n = 0;
    for row in ILLEGAL {
        for source in row.sources {
            n += 1;
            let (queue, id) = (format!("illegal{n}"), format!("j{n}"));
            let what = format!("{source:?} --{:?}-->", row.action);
            drive(&mut zrq, &queue, &id, *source);
            // FETCH refreshes its consumer's seen-time even when it delivers nothing.
            let snapshot = |s: &Server| {
                if row.action == Action::Fetch {
                    stable_snapshot(s)
                } else {
                    s.snapshot()
                        .into_iter()
                        .map(|(k, v)| (k, format!("{v:?}")))
                        .collect()
                }
            };
            let before = snapshot(&server);
            let reply = apply(&mut zrq, &queue, &id, row.action);
            assert_eq!(reply, row.reply, "{what} reply");
            assert_eq!(
                zrq.state(&queue, &id).as_deref(),
                Some(source.state()),
                "{what} state"
            );
            let changed: Vec<String> = {
                let after = snapshot(&server);
                after
                    .iter()
                    .filter(|e| !before.contains(e))
                    .chain(before.iter().filter(|e| !after.contains(e)))
                    .map(|(k, _)| k.clone())
                    .collect()
            };
            assert!(changed.is_empty(), "{what} changed keys {changed:?}");
            let mut conn = server.conn();
            assert_eq!(
                placement(&mut conn, &queue, &id),
                expected_placement(source.state()),
                "{what} placement"
            );
        }
    }
    assert!(n >= 50, "{n} illegal cases");
    // Every source state was covered by some illegal case.
    for source in ALL_SOURCES {
        if matches!(
            source,
            Source::ActiveExpired | Source::ActiveExpiredLast | Source::CancelRequestedExpired
        ) {
            continue;
        }
        assert!(
            ILLEGAL.iter().any(|r| r.sources.contains(&source)),
            "{source:?}"
        );
    }
}

fn unknown_jobs_get_the_documented_replies(backend: Backend) {
    let server = backend.server();
    let mut zrq = server.zrq(backend);
    zrq.enqueue("q", "t", "{}", &["ID", "real"]);
    let before = server.snapshot();
    for (action, want) in [
        (Action::Ack, "0"),
        (Action::Fail, "nil"),
        (Action::Touch, "0"),
        (Action::Cancel, "0"),
        (Action::Requeue, "0"),
    ] {
        assert_eq!(apply(&mut zrq, "q", "ghost", action), want, "{action:?}");
    }
    assert_eq!(show(&ok(&mut zrq, "delete", &["q", "ghost"])), "0");
    assert_eq!(server.snapshot(), before);
}

fn a_job_goes_through_a_whole_life_with_consistent_placement(backend: Backend) {
    // scheduled → cancelled; pending → active → retrying (via FAIL) is covered above; here one job
    // lives: pending → active → dead → pending (REQUEUE) → active → completed.
    let server = backend.server();
    let mut zrq = server.zrq(backend);
    let id = zrq.enqueue("life", "t", "{}", &["RETRIES", "0"]);
    assert_placed(&server, &mut zrq, "life", &id, "pending");
    assert_eq!(zrq.fetch("life", "w1", 1).len(), 1);
    assert_placed(&server, &mut zrq, "life", &id, "active");
    assert_eq!(show(&ok(&mut zrq, "fail", &["life", &id, "e1"])), "dead");
    assert_placed(&server, &mut zrq, "life", &id, "dead");
    assert_eq!(show(&ok(&mut zrq, "requeue", &["life", &id])), "1");
    assert_placed(&server, &mut zrq, "life", &id, "pending");
    let again = zrq.fetch("life", "w2", 1);
    assert_eq!(
        again[0]["attempt"], "1",
        "fresh budget: attempt counts from 1"
    );
    assert_placed(&server, &mut zrq, "life", &id, "active");
    assert_eq!(show(&ok(&mut zrq, "ack", &["life", &id])), "1");
    assert_placed(&server, &mut zrq, "life", &id, "completed");
    assert_eq!(field(&mut zrq, "life", &id, "consumer"), "w2");
    // Completed is final: nothing gets it out.
    for action in [
        Action::Fetch,
        Action::Ack,
        Action::Fail,
        Action::Cancel,
        Action::Requeue,
        Action::Touch,
    ] {
        let reply = apply(&mut zrq, "life", &id, action);
        assert!(
            matches!(reply.as_str(), "0" | "nil" | "jobs:[]"),
            "{action:?}: {reply}"
        );
    }
    assert_placed(&server, &mut zrq, "life", &id, "completed");
}

conformance!(
    every_legal_transition_moves_the_job,
    every_illegal_event_is_refused_and_changes_nothing,
    unknown_jobs_get_the_documented_replies,
    a_job_goes_through_a_whole_life_with_consistent_placement,
);
