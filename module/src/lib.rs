//! zrq as a Redis module: `libzrq.so`, loaded with `redis-server --loadmodule`.
//!
//! Adds the `ZRQ.*` commands. Each command is one atomic step over native Redis types (see
//! `docs/PROTOCOL.md`); the queue logic is in `zrq_core`, this crate binds it to Redis: the
//! store over the module API, blocking on keys, replies, and panic containment.

// Unit-test builds leave out the registration, so most of the module is unused there.
#![cfg_attr(test, allow(dead_code, unused_imports))]

mod blocking;
mod clock;
mod commands;
mod direct;
mod guard;
mod reply;
mod resp;
mod settings;
mod stats;
mod store;
mod timer;

use redis_module::{redis_module, Context, RedisString, RedisValue, Status};

/// Warns at load when the eviction policy could delete zrq's keys: an evicted job is a lost job.
fn init(ctx: &Context, _args: &[RedisString]) -> Status {
    let policy = ctx.call("CONFIG", &["GET", "maxmemory-policy"]);
    if let Ok(RedisValue::Array(items)) = policy {
        let value = match items.get(1) {
            Some(RedisValue::SimpleString(s) | RedisValue::BulkString(s)) => s.clone(),
            Some(RedisValue::StringBuffer(bytes)) => String::from_utf8_lossy(bytes).into_owned(),
            Some(other) => format!("{other:?}"),
            None => String::new(),
        };
        if value != "noeviction" {
            ctx.log_warning(&format!(
                "zrq: maxmemory-policy is {value}; eviction can silently delete jobs. \
                 Set maxmemory-policy noeviction."
            ));
        }
    }
    // Replaces the crate's INFO callback (registered just before `init`) with zrq's section.
    redis_module::raw::register_info_function(ctx.ctx, Some(stats::info_callback));
    timer::arm(ctx);
    reply::prepare(ctx.ctx);
    Status::Ok
}

/// The module's commands: each entry of zrq_core::spec with its handler. Names, flags and key
/// positions come from the spec, the one definition; only the pairing with a handler is written
/// here, and a unit test checks that the pairs are exactly `spec::COMMANDS`, in order. Calls
/// `$then!` with `SPEC => handler, …`.
macro_rules! command_table {
    ($then:ident) => {
        $then! {
            ENQUEUE => enqueue,
            FETCH => fetch,
            ACK => ack,
            FAIL => fail,
            TOUCH => touch,
            RELEASE => release,
            RECLAIM => reclaim,
            STATE => state,
            JOB => job,
            RESULT => result,
            CANCEL => cancel,
            DEAD => dead,
            REQUEUE => requeue,
            DELETE => delete,
            PAUSE => pause,
            RESUME => resume,
            SCHEDULE => schedule,
            UNSCHEDULE => unschedule,
            SCHEDULES => schedules,
            BATCH => batch,
            BATCHINFO => batchinfo,
            INFO => info,
            LIST => list,
            QUEUES => queues,
        }
    };
}

/// The module's registration with Redis (generated entry points carry no docs of their own).
/// Left out of unit-test builds: it installs Redis' allocator, which only exists inside Redis.
#[cfg(not(test))]
#[allow(missing_docs)]
mod registration {
    use super::{commands, init, redis_module, settings};
    use redis_module::configuration::ConfigurationFlags;
    use zrq_core::{config, spec};

    /// The `redis_module!` invocation, given the command table (see `command_table!`).
    macro_rules! register {
        ($($spec:ident => $handler:ident),* $(,)?) => {
            redis_module! {
                name: "zrq",
                version: 1,
                // The module's own (Rust) allocations are short-lived per command; through Redis'
                // allocator each costs an extra size lookup for its memory accounting (a measured ~6%
                // of a command). They use the process allocator directly (Redis' jemalloc when linked
                // with it); data stored in Redis keys is allocated by Redis as always. See
                // docs/BENCHMARKS.md.
                allocator: (std::alloc::System, std::alloc::System),
                data_types: [],
                init: init,
                commands: [
                    $([
                        spec::$spec.name,
                        commands::$handler,
                        spec::$spec.flags,
                        spec::$spec.key,
                        spec::$spec.key,
                        spec::$spec.key,
                        ""
                    ]),*
                ],
                configurations: [
                    // One entry per zrq_core::config::SETTINGS (a test checks that none is missing).
                    i64: [
                        [config::BACKOFF_BASE_MS.name, &settings::BACKOFF_BASE_MS, config::BACKOFF_BASE_MS.default, config::BACKOFF_BASE_MS.min, config::BACKOFF_BASE_MS.max, ConfigurationFlags::DEFAULT, None],
                        [config::BACKOFF_MAX_MS.name, &settings::BACKOFF_MAX_MS, config::BACKOFF_MAX_MS.default, config::BACKOFF_MAX_MS.min, config::BACKOFF_MAX_MS.max, ConfigurationFlags::DEFAULT, None],
                        [config::KEEP_MS.name, &settings::KEEP_MS, config::KEEP_MS.default, config::KEEP_MS.min, config::KEEP_MS.max, ConfigurationFlags::DEFAULT, None],
                        [config::DEAD_MAX.name, &settings::DEAD_MAX, config::DEAD_MAX.default, config::DEAD_MAX.min, config::DEAD_MAX.max, ConfigurationFlags::DEFAULT, None],
                        [config::CONSUMER_IDLE_MS.name, &settings::CONSUMER_IDLE_MS, config::CONSUMER_IDLE_MS.default, config::CONSUMER_IDLE_MS.min, config::CONSUMER_IDLE_MS.max, ConfigurationFlags::DEFAULT, None],
                        [config::PAYLOAD_MAX_BYTES.name, &settings::PAYLOAD_MAX_BYTES, config::PAYLOAD_MAX_BYTES.default, config::PAYLOAD_MAX_BYTES.min, config::PAYLOAD_MAX_BYTES.max, ConfigurationFlags::DEFAULT, None],
                        [config::RESULT_MAX_BYTES.name, &settings::RESULT_MAX_BYTES, config::RESULT_MAX_BYTES.default, config::RESULT_MAX_BYTES.min, config::RESULT_MAX_BYTES.max, ConfigurationFlags::DEFAULT, None],
                        [config::JSON_DEPTH_MAX.name, &settings::JSON_DEPTH_MAX, config::JSON_DEPTH_MAX.default, config::JSON_DEPTH_MAX.min, config::JSON_DEPTH_MAX.max, ConfigurationFlags::DEFAULT, None],
                        [config::AFTER_MAX.name, &settings::AFTER_MAX, config::AFTER_MAX.default, config::AFTER_MAX.min, config::AFTER_MAX.max, ConfigurationFlags::DEFAULT, None],
                        [config::BATCH_MAX.name, &settings::BATCH_MAX, config::BATCH_MAX.default, config::BATCH_MAX.min, config::BATCH_MAX.max, ConfigurationFlags::DEFAULT, None],
                        [config::SCHEDULES_MAX.name, &settings::SCHEDULES_MAX, config::SCHEDULES_MAX.default, config::SCHEDULES_MAX.min, config::SCHEDULES_MAX.max, ConfigurationFlags::DEFAULT, None],
                        [config::EVERY_MIN_MS.name, &settings::EVERY_MIN_MS, config::EVERY_MIN_MS.default, config::EVERY_MIN_MS.min, config::EVERY_MIN_MS.max, ConfigurationFlags::DEFAULT, None],
                        [config::CHILDREN_MAX.name, &settings::CHILDREN_MAX, config::CHILDREN_MAX.default, config::CHILDREN_MAX.min, config::CHILDREN_MAX.max, ConfigurationFlags::DEFAULT, None],
                        [config::REQUEUE_MAX.name, &settings::REQUEUE_MAX, config::REQUEUE_MAX.default, config::REQUEUE_MAX.min, config::REQUEUE_MAX.max, ConfigurationFlags::DEFAULT, None],
                        [config::REPLY_MAX_BYTES.name, &settings::REPLY_MAX_BYTES, config::REPLY_MAX_BYTES.default, config::REPLY_MAX_BYTES.min, config::REPLY_MAX_BYTES.max, ConfigurationFlags::DEFAULT, None],
                        [config::PARENTS_MAX_BYTES.name, &settings::PARENTS_MAX_BYTES, config::PARENTS_MAX_BYTES.default, config::PARENTS_MAX_BYTES.min, config::PARENTS_MAX_BYTES.max, ConfigurationFlags::DEFAULT, None],
                    ],
                    string: [],
                    bool: [
                        ["expire-leases", &settings::EXPIRE_LEASES, true, ConfigurationFlags::DEFAULT, None],
                    ],
                    enum: [],
                    module_args_as_configuration: true,
                ]
            }
        };
    }

    command_table!(register);
}

#[cfg(test)]
mod tests {
    use zrq_core::spec::{self, CommandSpec};

    /// The command table as `(spec, handler name)` pairs.
    macro_rules! pairs {
        ($($spec:ident => $handler:ident),* $(,)?) => {
            [$((spec::$spec, stringify!($handler))),*]
        };
    }

    /// The module registers exactly spec::COMMANDS, in order, each with the handler of its name
    /// (`zrq.enqueue` → `commands::enqueue`).
    #[test]
    fn the_module_registers_exactly_the_command_table() {
        let pairs = command_table!(pairs);
        let registered: Vec<CommandSpec> = pairs.iter().map(|(spec, _)| *spec).collect();
        assert_eq!(registered, spec::COMMANDS);
        for (spec, handler) in pairs {
            assert_eq!(
                spec.name.strip_prefix("zrq."),
                Some(handler),
                "{}",
                spec.name
            );
        }
    }
}
