//! Criterion benches of the pure engine code (no Redis): argument parsing, the job record's
//! encoding and decoding, the key schema and cron's next run.
//!
//! `cargo bench -p zrq-benches --bench core`

#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use zrq_core::commands::{ack::Ack, enqueue::Enqueue, fetch::Fetch};
use zrq_core::config::Config;
use zrq_core::cron::Cron;
use zrq_core::job::Job;
use zrq_core::keys::QueueKeys;

const PAYLOAD: &str = r#"{"p":"0123456789abcd"}"#;
const ID: &str = "0193a5c4-7b1e-7c3a-9f00-0123456789ab";

/// A running job's record, built through the decoder so the bench follows the record's fields.
fn sample_fields() -> Vec<(String, String)> {
    [
        // A record as stored: `id`, `queue` and the defaults left out.
        ("task", "send"),
        ("payload", PAYLOAD),
        ("state", "active"),
        ("attempt", "1"),
        ("created_at", "1763840000000"),
        ("started_at", "1763840000123"),
        ("consumer", "host-1234-abcdef01"),
        ("entry", "1763840000000-0"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn parsing(c: &mut Criterion) {
    let enqueue: Vec<&[u8]> = vec![b"emails", b"send", PAYLOAD.as_bytes()];
    c.bench_function("parse/enqueue", |b| {
        b.iter(|| Enqueue::parse(black_box(&enqueue), &Config::DEFAULT).map(|e| e.priority))
    });
    let enqueue_all: Vec<&[u8]> = vec![
        b"emails",
        b"send",
        PAYLOAD.as_bytes(),
        b"ID",
        ID.as_bytes(),
        b"RETRIES",
        b"5",
        b"TIMEOUT",
        b"60000",
        b"PRIORITY",
        b"3",
        b"UNIQUE",
        b"k1",
        b"KEEP",
        b"1000",
    ];
    c.bench_function("parse/enqueue_all_options", |b| {
        b.iter(|| Enqueue::parse(black_box(&enqueue_all), &Config::DEFAULT).map(|e| e.priority))
    });
    let fetch: Vec<&[u8]> = vec![b"emails", b"w1", b"COUNT", b"100", b"BLOCK", b"1000"];
    c.bench_function("parse/fetch", |b| {
        b.iter(|| Fetch::parse(black_box(&fetch)).map(|f| f.count))
    });
    let ack: Vec<&[u8]> = vec![b"emails", ID.as_bytes(), b"RESULT", b"{\"ok\":true}"];
    c.bench_function("parse/ack", |b| {
        b.iter(|| Ack::parse(black_box(&ack), &Config::DEFAULT).map(|a| a.id.len()))
    });
}

fn records(c: &mut Criterion) {
    let fields = sample_fields();
    let key = format!("zrq:{{emails}}:job:{ID}");
    let Ok(job) = Job::from_fields(&key, "emails", ID, fields.clone()) else {
        return;
    };
    c.bench_function("job/encode", |b| b.iter(|| black_box(&job).pack()));
    c.bench_function("job/decode", |b| {
        b.iter(|| Job::from_fields(&key, "emails", ID, black_box(fields.clone())))
    });
    let packed = job.pack();
    c.bench_function("job/decode_packed", |b| {
        b.iter(|| {
            zrq_core::packed::decode(&key, black_box(packed.as_bytes()))
                .and_then(|fields| Job::from_fields(&key, "emails", ID, fields))
        })
    });
    c.bench_function("job/reply", |b| b.iter(|| black_box(&job).to_reply()));
    c.bench_function("job/new_id", |b| b.iter(zrq_core::job::new_id));
}

fn keys(c: &mut Criterion) {
    c.bench_function("keys/queue_keys_and_job", |b| {
        b.iter(|| {
            let keys = QueueKeys::new(black_box("emails"));
            keys.job(black_box(ID))
        })
    });
    let keys = QueueKeys::new("emails");
    c.bench_function("keys/all_fixed_keys", |b| {
        b.iter(|| {
            let mut n = 0;
            for p in 0..=9 {
                n += keys.stream_at(p).len();
            }
            for k in [
                keys.active(),
                keys.scheduled(),
                keys.retrying(),
                keys.completed(),
                keys.cancelled(),
                keys.dead(),
                keys.ticks(),
                keys.unique(),
                keys.schedules(),
                keys.stats(),
                keys.paused(),
            ] {
                n += k.len();
            }
            n
        })
    });
}

fn cron(c: &mut Criterion) {
    let now = 1_763_840_000_000;
    for (name, expr) in [
        ("every_minute", "* * * * *"),
        ("hourly_weekdays", "0 * * * 1-5"),
        ("yearly", "0 0 1 1 *"),
    ] {
        let Ok(cron) = Cron::parse(expr) else {
            continue;
        };
        c.bench_function(&format!("cron/next_after/{name}"), |b| {
            b.iter(|| cron.next_after(black_box(now)))
        });
    }
    c.bench_function("cron/parse", |b| {
        b.iter(|| Cron::parse(black_box("*/5 8-18 * * 1-5")).is_ok())
    });
}

criterion_group!(benches, parsing, records, keys, cron);
criterion_main!(benches);
