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
