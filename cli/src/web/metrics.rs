//! `GET /metrics`: every queue's figures in the Prometheus text format, labelled by queue. The
//! totals come from each queue's `stats` hash (through `ZRQ.INFO`), so they survive restarts of
//! Redis and of this process; nothing is counted in memory. Cost per scrape: one `ZRQ.INFO`, ten
//! `XINFO CONSUMERS`, a page of `ZRQ.LIST active` (200) and one `ZMSCORE` per queue.

use std::fmt::Write;

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use zrq::QueueInfo;

use super::views::{queue_infos, queue_workers};
use super::{ApiError, Shared};
use crate::STATES;

/// A worker counts as active if it fetched within this long, or holds jobs.
const ACTIVE_WITHIN_MS: i64 = 60_000;

/// The counters: metric name, the total's name in `ZRQ.INFO`, help text.
const TOTALS: [(&str, &str, &str); 6] = [
    (
        "zrq_enqueued_total",
        "enqueued",
        "Jobs enqueued since the queue was created.",
    ),
    (
        "zrq_completed_total",
        "completed",
        "Jobs completed since the queue was created.",
    ),
    (
        "zrq_failed_total",
        "failed",
        "Failed attempts (FAIL or an expired lease) since the queue was created.",
    ),
    (
        "zrq_dead_total",
        "dead",
        "Jobs that used all their attempts, since the queue was created.",
    ),
    (
        "zrq_cancelled_total",
        "cancelled",
        "Jobs cancelled since the queue was created.",
    ),
    (
        "zrq_dropped_total",
        "dropped",
        "Dead jobs deleted beyond zrq.dead-max, since the queue was created.",
    ),
];

/// A per-queue gauge: its name, help text, and how to read it off a queue's figures.
type Gauge = (&'static str, &'static str, fn(&QueueFigures) -> f64);

/// One queue's figures.
struct QueueFigures {
    info: QueueInfo,
    active_workers: usize,
}

/// `GET /metrics`.
pub async fn metrics(State(app): State<Shared>, headers: HeaderMap) -> Result<Response, ApiError> {
    app.auth.check_read(&headers)?;
    let mut queues = Vec::new();
    for info in queue_infos(&app).await? {
        // Running jobs come from the active list: FETCH leaves no pending entries.
        let workers = queue_workers(&app.client, &info.queue).await?.workers;
        let active_workers = workers
            .iter()
            .filter(|w| w.pending > 0 || w.idle_ms < ACTIVE_WITHIN_MS)
            .count();
        queues.push(QueueFigures {
            info,
            active_workers,
        });
    }
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        render(&queues),
    )
        .into_response())
}

/// The text format of `queues`' figures.
fn render(queues: &[QueueFigures]) -> String {
    let mut out = String::new();
    family(&mut out, "zrq_jobs", "gauge", "Jobs in each state now.");
    for q in queues {
        for state in STATES {
            sample(
                &mut out,
                "zrq_jobs",
                &q.info.queue,
                Some(state),
                q.info.get(state) as f64,
            );
        }
    }
    for (name, total, help) in TOTALS {
        family(&mut out, name, "counter", help);
        for q in queues {
            sample(
                &mut out,
                name,
                &q.info.queue,
                None,
                q.info.total(total) as f64,
            );
        }
    }
    let gauges: [Gauge; 3] = [
        (
            "zrq_oldest_pending_age_seconds",
            "Age of the oldest pending job (0 when none is pending).",
            |q| q.info.get("oldest_pending_age_ms") as f64 / 1000.0,
        ),
        ("zrq_paused", "1 while the queue is paused.", |q| {
            q.info.get("paused") as f64
        }),
        (
            "zrq_active_workers",
            "Workers that fetched from the queue within the last minute or hold its jobs.",
            |q| q.active_workers as f64,
        ),
    ];
    for (name, help, value) in gauges {
        family(&mut out, name, "gauge", help);
        for q in queues {
            sample(&mut out, name, &q.info.queue, None, value(q));
        }
    }
    out
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn sample(out: &mut String, name: &str, queue: &str, state: Option<&str>, value: f64) {
    let state = state.map(|s| format!(",state=\"{s}\"")).unwrap_or_default();
    let _ = writeln!(
        out,
        "{name}{{queue=\"{}\"{state}}} {}",
        escape(queue),
        value
    );
}

/// A label value as the text format writes it: `\`, `"` and newlines escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        for (raw, written) in [("q", "q"), (r#"a"b"#, r#"a\"b"#), (r"a\b", r"a\\b")] {
            assert_eq!(escape(raw), written);
        }
    }
}
