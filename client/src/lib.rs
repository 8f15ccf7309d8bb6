//! Rust client for zrq, the job queue that lives inside Redis.
//!
//! - Producers: [`Client::connect`], [`Client::queue`], [`Queue::enqueue`] (with
//!   [`EnqueueOptions`]), [`Queue::enqueue_many`] (one round trip), [`JobHandle::wait`].
//! - Workers: [`Worker`] with async handlers per task, a concurrency limit, heartbeats,
//!   cancellation, timeouts and graceful shutdown.
//! - Typed tasks: [`Task`] declares a task's name and types once for both sides.
//!
//! The server does the queue logic (`ZRQ.*` commands of the module, or the Redis Functions
//! library through [`Backend::Lua`]); this crate makes it pleasant and safe to use.

pub mod backend;
pub mod client;
pub mod error;
pub mod job;
pub mod queue;
pub mod record;
pub mod task;
pub mod worker;

pub use backend::Backend;
pub use client::Client;
pub use error::{Error, Result};
pub use job::{wait_all, CancelOutcome, JobHandle, Outcome};
pub use queue::{Batch, BatchInfo, EnqueueOptions, Every, NewJob, ParentFailure, Queue, Schedule};
pub use record::{JobRecord, JobState, Page, QueueInfo};
pub use task::Task;
pub use worker::{
    shutdown_signal, HandlerError, HandlerResult, JobContext, TimeLimit, Worker, WorkerStats,
};
