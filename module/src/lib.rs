//! zrq as a Redis module: `libzrq.so`, loaded with `redis-server --loadmodule`.
//!
//! Adds the `ZRQ.*` commands. Each command is one atomic step over native Redis types (see
//! `docs/PROTOCOL.md`); the queue logic is in `zrq_core`, this crate binds it to Redis: the
//! store over the module API, blocking on keys, replies, and panic containment.

mod blocking;
mod clock;
mod commands;
mod guard;
mod reply;
mod store;

use redis_module::{redis_module, Context, RedisString, RedisValue, Status};

/// Warns at load when the eviction policy could delete zrq's keys: an evicted job is a lost job.
fn init(ctx: &Context, _args: &[RedisString]) -> Status {
    let policy = ctx.call("CONFIG", &["GET", "maxmemory-policy"]);
    if let Ok(RedisValue::Array(items)) = policy {
        let value = items.get(1).map(|v| format!("{v:?}")).unwrap_or_default();
        if !value.contains("noeviction") {
            ctx.log_warning(&format!(
                "zrq: maxmemory-policy is {value}; eviction can silently delete jobs. \
                 Set maxmemory-policy noeviction."
            ));
        }
    }
    Status::Ok
}

/// The module's registration with Redis (generated entry points carry no docs of their own).
#[allow(missing_docs)]
mod registration {
    use super::{commands, init, redis_module};

    redis_module! {
        name: "zrq",
        version: 1,
        allocator: (redis_module::alloc::RedisAlloc, redis_module::alloc::RedisAlloc),
        data_types: [],
        init: init,
        commands: [
            ["zrq.enqueue", commands::enqueue, "write deny-oom", 1, 1, 1, ""],
            ["zrq.fetch", commands::fetch, "write", 1, 1, 1, ""],
            ["zrq.ack", commands::ack, "write", 1, 1, 1, ""],
            ["zrq.state", commands::state, "readonly fast", 1, 1, 1, ""],
            ["zrq.job", commands::job, "readonly", 1, 1, 1, ""],
            ["zrq.reclaim", commands::reclaim, "write", 1, 1, 1, ""],
        ],
    }
}
