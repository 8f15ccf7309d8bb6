//! Fuzzes every parser of untrusted bytes in zrq-core: each command's argument parsing (under the
//! default limits and under tiny ones), job record (hash fields and packed) and inline entry decoding, generated job ids,
//! schedule definitions, cron expressions and the JSON check. A panic anywhere is a crash (in Redis it would be an abort);
//! a few properties that must hold are asserted too.
//!
//! Input: a selector byte, then the arguments separated by 0x00 bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zrq_core::args;
use zrq_core::commands::schedule::Definition;
use zrq_core::commands::{
    ack::Ack, batch::Batch, batchinfo::BatchInfo, cancel::Cancel, dead::Dead, delete::Delete,
    enqueue::Enqueue, fail::Fail, fetch::Fetch, info::Info, job::JobOf, list::List, pause::Pause,
    queues::Queues, reclaim::Reclaim, requeue::Requeue, result::ResultOf, schedule::Schedule,
    schedules::Schedules, state::StateOf, touch::Touch, unschedule::Unschedule,
};
use zrq_core::config::Config;
use zrq_core::cron::Cron;
use zrq_core::job::Job;
use zrq_core::packed;

/// Limits small enough that fuzzed inputs reach them.
const TINY: Config = Config {
    payload_max_bytes: 16,
    result_max_bytes: 16,
    json_depth_max: 2,
    after_max: 2,
    batch_max: 2,
    every_min_ms: 1000,
    requeue_max: 2,
    ..Config::DEFAULT
};

/// 2026-11-30, a time to plan cron runs from.
const NOW: i64 = 1_795_996_800_000;

fn commands(selector: u8, argv: &[&[u8]], config: &Config) {
    // Only "did not panic" matters here: every result is a valid outcome.
    let _ = match selector % 24 {
        0 => Enqueue::parse(argv, config).map(drop),
        1 => Batch::parse(argv, config).map(drop),
        2 => Schedule::parse(argv, config).map(drop),
        3 => Ack::parse(argv, config).map(drop),
        4 => Fetch::parse(argv).map(drop),
        5 => Fail::parse(argv).map(drop),
        6 => Touch::parse(argv).map(drop),
        7 => Reclaim::parse(argv).map(drop),
        8 => StateOf::parse(argv).map(drop),
        9 => JobOf::parse(argv).map(drop),
        10 => ResultOf::parse(argv).map(drop),
        11 => Cancel::parse(argv).map(drop),
        12 => Dead::parse(argv).map(drop),
        13 => Requeue::parse(argv, config).map(drop),
        14 => Delete::parse(argv).map(drop),
        15 => Pause::parse(argv, true).map(drop),
        16 => Unschedule::parse(argv).map(drop),
        17 => Schedules::parse(argv).map(drop),
        18 => BatchInfo::parse(argv).map(drop),
        19 => Info::parse(argv).map(drop),
        20 => List::parse(argv).map(drop),
        21 => Queues::parse(argv).map(drop),
        _ => Ok(()),
    };
}

fn records(selector: u8, argv: &[&[u8]], data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    match selector % 4 {
        0 => {
            // A job record: field, value, field, value, …
            let fields: Vec<(String, String)> = argv
                .chunks(2)
                .filter_map(|pair| match pair {
                    [f, v] => Some((
                        String::from_utf8_lossy(f).into_owned(),
                        String::from_utf8_lossy(v).into_owned(),
                    )),
                    _ => None,
                })
                .collect();
            // The seed's record names job `j` of queue `q` (as the earlier format stored them).
            if let Ok(job) = Job::from_fields("k", "q", "j", fields.clone()) {
                // What decodes, encodes and decodes again to the same job.
                let again: Vec<(String, String)> = job
                    .to_fields()
                    .into_iter()
                    .map(|(f, v)| (f.to_string(), v.into_owned()))
                    .collect();
                assert_eq!(
                    Job::from_fields("k", "q", "j", again).ok(),
                    Some(job.clone())
                );
                let _ = job.to_reply();
                // And packed (the stored form), it unpacks to the same job.
                if let Ok(packed) = packed::encode(&job.to_fields()) {
                    let unpacked = packed::decode("k", packed.as_bytes()).unwrap_or_default();
                    assert_eq!(
                        Job::from_fields("k", "q", "j", unpacked).ok(),
                        Some(job.clone())
                    );
                }
            }
            // The same fields as an inline stream entry: what decodes, written as an entry
            // (`entry_fields`), decodes again to the same job.
            const ENTRY: &str = "1764489600000-7";
            if let Ok(job) = Job::from_entry("s", "q", 3, ENTRY, fields) {
                let entry: Vec<(String, String)> = job
                    .entry_fields()
                    .into_iter()
                    .map(|(f, v)| (f.to_string(), v.into_owned()))
                    .collect();
                assert_eq!(
                    Job::from_entry("s", "q", 3, ENTRY, entry).ok(),
                    Some(job.clone())
                );
                assert_eq!(job.id, "p3:1764489600000-7");
            }
        }
        1 => {
            if let Ok(definition) = Definition::from_json("k", &text) {
                let _ = definition.next_run(NOW, NOW, TINY.every_min_ms);
                let _ = definition.to_reply(None);
            }
        }
        2 => {
            // A job id: one naming an inline entry maps back to itself, and has the form a
            // producer's ID may not have.
            if let Some((priority, entry)) = zrq_core::job::inline_entry(&text) {
                assert_eq!(zrq_core::job::inline_id(priority, entry), text);
                assert!(zrq_core::job::has_generated_form(&text));
            }
            // A packed record is read strictly: whatever decodes is in the one canonical form,
            // so packing what was read gives back the very bytes.
            if let Ok(fields) = packed::decode("k", data) {
                assert_eq!(
                    packed::encode(&fields).ok().as_deref().map(str::as_bytes),
                    Some(data)
                );
            }
            if let Ok(cron) = Cron::parse(&text) {
                if let Some(next) = cron.next_after(NOW) {
                    assert!(next > NOW);
                }
            }
        }
        _ => {
            // The JSON check (with no depth limit) accepts whatever serde_json can read; and
            // with a depth limit it accepts nothing serde_json cannot read, but for what JSON's
            // grammar allows and serde_json refuses on top: numbers beyond f64's range (`1e999`)
            // and escapes of lone UTF-16 surrogates (`"\udddd"`). The check follows the
            // grammar, as the Lua library's does.
            let unlimited = args::json("payload", data, i64::MAX).is_ok();
            let limited = args::json("payload", data, 100).is_ok();
            let parsed = serde_json::from_slice::<serde_json::Value>(data);
            let beyond_grammar = matches!(&parsed, Err(e) if SERDE_ONLY_REFUSALS
                .iter()
                .any(|refusal| e.to_string().starts_with(refusal)));
            assert!(
                parsed.is_err() || unlimited,
                "serde_json reads it but the check refused it"
            );
            assert!(
                !limited || parsed.is_ok() || beyond_grammar,
                "the check accepted what serde_json cannot read"
            );
        }
    }
}

/// serde_json's refusals of text that JSON's grammar allows (its error messages' beginnings).
const SERDE_ONLY_REFUSALS: &[&str] = &[
    "number out of range",
    "lone leading surrogate in hex escape",
    "unexpected end of hex escape",
    "invalid unicode code point",
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let argv: Vec<&[u8]> = rest.split(|&b| b == 0).collect();
    match selector >> 6 {
        0 => commands(selector, &argv, &Config::DEFAULT),
        1 => commands(selector, &argv, &TINY),
        _ => records(selector, &argv, rest),
    }
});
