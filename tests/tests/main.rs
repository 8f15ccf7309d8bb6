//! zrq's integration tests against real `redis-server` processes, one module per subject (both
//! backends where a subject applies to both).
//!
//! They are one test binary rather than one per file: each binary links every dependency again
//! (35 binaries took 0.5 GB of disk), and `support` is compiled once.
//! One subject runs with `cargo test -p zrq-tests --test integration <module>::`.

mod support;

mod acl_denied_calls;
mod acl_roles;
mod audit;
mod bad_input;
mod bad_input_lifecycle;
mod blocking;
mod config_file;
mod cross_backend;
mod finished_records;
mod guarantees;
mod inline_jobs;
mod leases;
mod lifecycle_control;
mod lifecycle_core;
mod lifecycle_failures;
mod lifecycle_states;
mod limits;
mod metadata;
mod packed_records;
mod persistence;
mod persistence_lifecycle;
mod prerequisites;
mod queues;
mod record_format;
mod replication;
mod replication_lifecycle;
mod reply_bytes;
mod schedules;
mod spec_drift;
mod stalls;
mod stored_data;
mod storm;
mod timers;
mod upgrade;
mod workflows;

/// Every file of `tests/` is a module here: with `autotests = false`, cargo builds no file on its
/// own, so one left out would silently never run.
#[test]
fn every_test_file_is_a_module_of_this_binary() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let declared: Vec<&str> = include_str!("main.rs")
        .lines()
        .filter_map(|line| line.strip_prefix("mod ")?.strip_suffix(';'))
        .collect();
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .expect("read tests/")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "rs"))
        .filter_map(|path| Some(path.file_stem()?.to_str()?.to_string()))
        .filter(|name| name != "main")
        .collect();
    files.sort();
    let missing: Vec<&String> = files
        .iter()
        .filter(|name| !declared.contains(&name.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "not declared in tests/main.rs: {missing:?}"
    );
    assert!(
        declared.contains(&"support") && files.len() > 30,
        "{files:?}"
    );
}
