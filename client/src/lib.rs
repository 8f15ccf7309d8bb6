//! Rust client for zrq, the job queue that lives inside Redis.
//!
//! - Producers: [`Client::connect`], [`Client::queue`], [`Queue::enqueue`] (with
//!   [`EnqueueOptions`]), [`Queue::enqueue_many`] (one round trip), [`JobHandle::wait`].
//! - Workers: [`Worker`] with async handlers per task, a concurrency limit, heartbeats,
//!   cancellation, timeouts and graceful shutdown.
//! - Typed tasks: [`Task`] declares a task's name and types once for both sides.
//! - Workflows resolved inside Redis: [`chain`] (each step gets the previous result),
//!   [`group`] with a callback ([`Batch::then`]), [`EnqueueOptions::after`].
//! - Backends: the module, or the Redis Functions library where modules cannot be loaded; picked
//!   (and the library loaded or upgraded) at connect time, see [`ConnectOptions`].
//!
//! The server does the queue logic (`ZRQ.*` commands of the module, or the Redis Functions
//! library through [`Backend::Lua`]); this crate makes it pleasant and safe to use.

pub mod backend;
pub mod client;
pub mod directory;
pub mod error;
pub mod job;
pub mod queue;
pub mod record;
pub mod task;
pub mod worker;

/// The Redis Functions library this client loads (its text and version), from the `zrq-lua`
/// crate.
pub use zrq_lua as lua;

pub use backend::{Backend, BackendChoice, ConnectOptions};
pub use client::Client;
pub use directory::{DirectoryOptions, Listing, QueueDirectory, QueueScan};
pub use error::{Error, Result};
pub use job::{wait_all, CancelOutcome, IntoJobId, JobHandle, Outcome};
pub use queue::{
    chain, group, Batch, BatchInfo, BatchOutcome, Chain, EnqueueOptions, Every, NewJob,
    ParentFailure, Queue, Schedule,
};
pub use record::{JobRecord, JobState, Page, QueueInfo};
pub use task::Task;
pub use worker::{
    shutdown_signal, HandlerError, HandlerResult, JobContext, TimeLimit, Worker, WorkerStats,
};
