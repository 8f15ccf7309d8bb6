//! The command handlers: arguments in, engine call, reply out. The logic is in `zrq_core`.

use redis_module::{
    CallOptionResp, CallOptionsBuilder, CallReply, CallResult, Context, RedisError, RedisResult,
    RedisString, RedisValue,
};
use zrq_core::commands::{
    ack::Ack, batch::Batch, batchinfo::BatchInfo, cancel::Cancel, dead::Dead, delete::Delete,
    enqueue::Enqueue, fail::Fail, fetch::Fetch, info::Info, job::JobOf, list::List, pause::Pause,
    queues::Queues, reclaim::Reclaim, release::Release, requeue::Requeue, result::ResultOf,
    schedule::Schedule, schedules::Schedules, state::StateOf, touch::Touch, unschedule::Unschedule,
};
use zrq_core::Reply;

use crate::blocking::{block_on_keys, can_block, forward};
use crate::reply::{error, send};
use crate::store::RedisStore;
use crate::{guard, settings};

/// Runs a handler over the raw arguments (without the command name), catching panics.
fn run(
    args: Vec<RedisString>,
    ctx: &Context,
    handler: impl FnOnce(&Context, &[&[u8]]) -> RedisResult,
) -> RedisResult {
    guard::catch(|| {
        let raw: Vec<&[u8]> = args.iter().skip(1).map(RedisString::as_slice).collect();
        handler(ctx, &raw)
    })?
}

/// Defines a handler that parses with `$parse` and replies with what `$apply` returns (a
/// [`crate::reply::Answer`]), written straight to the client.
macro_rules! handler {
    ($(#[$doc:meta])* $name:ident: $parse:expr => $apply:expr) => {
        $(#[$doc])*
        pub fn $name(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
            run(args, ctx, |ctx, args| {
                let cmd = $parse(args).map_err(error)?;
                let mut store = RedisStore::new(ctx);
                let answer = $apply(&cmd, &mut store).map_err(error)?;
                send(ctx, &answer)
            })
        }
    };
}

handler!(
    /// `ZRQ.ENQUEUE`.
    enqueue: |a| Enqueue::parse(a, &settings::current()) => |c: &Enqueue, s: &mut RedisStore| c.apply(s, zrq_core::job::new_id)
);
handler!(
    /// `ZRQ.ACK`.
    ack: |a| Ack::parse(a, &settings::current()) => |c: &Ack, s: &mut RedisStore| c.apply(s)
);
handler!(
    /// `ZRQ.FAIL`.
    fail: Fail::parse => |c: &Fail, s: &mut RedisStore| c.apply(s)
);
handler!(
    /// `ZRQ.TOUCH`.
    touch: Touch::parse => |c: &Touch, s: &mut RedisStore| c.apply(s)
);
handler!(
    /// `ZRQ.RELEASE`.
    release: Release::parse => |c: &Release, s: &mut RedisStore| c.apply(s)
);
handler!(
    /// `ZRQ.RECLAIM`.
    reclaim: Reclaim::parse => |c: &Reclaim, s: &mut RedisStore| c.apply(s)
);
handler!(
    /// `ZRQ.STATE`.
    state: StateOf::parse => |c: &StateOf, s: &mut RedisStore| c.apply(s)
);
handler!(
    /// `ZRQ.JOB`.
    job: JobOf::parse => |c: &JobOf, s: &mut RedisStore| c.apply(s)
);
handler!(
    /// `ZRQ.CANCEL`.
    cancel: Cancel::parse => |c: &Cancel, s: &mut RedisStore| c.apply(s)
);
handler!(
    /// `ZRQ.DEAD`.
    dead: Dead::parse => |c: &Dead, s: &mut RedisStore| c.apply(s)
);
handler!(
    /// `ZRQ.REQUEUE`.
    requeue: |a| Requeue::parse(a, &settings::current()) => |c: &Requeue, s: &mut RedisStore| c.apply(s)
);
handler!(
    /// `ZRQ.DELETE`.
    delete: Delete::parse => |c: &Delete, s: &mut RedisStore| c.apply(s)
);
handler!(
    /// `ZRQ.PAUSE`.
    pause: |a| Pause::parse(a, true) => |c: &Pause, s: &mut RedisStore| c.apply(s)
);
handler!(
    /// `ZRQ.RESUME`.
    resume: |a| Pause::parse(a, false) => |c: &Pause, s: &mut RedisStore| c.apply(s)
);
handler!(
    /// `ZRQ.SCHEDULE`.
    schedule: |a| Schedule::parse(a, &settings::current()) => |c: &Schedule, s: &mut RedisStore| c.apply(s)
);
handler!(
    /// `ZRQ.UNSCHEDULE`.
    unschedule: Unschedule::parse => |c: &Unschedule, s: &mut RedisStore| c.apply(s)
);
handler!(
    /// `ZRQ.SCHEDULES`.
    schedules: Schedules::parse => |c: &Schedules, s: &mut RedisStore| c.apply(s)
);
handler!(
    /// `ZRQ.BATCH`.
    batch: |a| Batch::parse(a, &settings::current()) => |c: &Batch, s: &mut RedisStore| c.apply(s, &mut zrq_core::job::new_id)
);
handler!(
    /// `ZRQ.BATCHINFO`.
    batchinfo: BatchInfo::parse => |c: &BatchInfo, s: &mut RedisStore| c.apply(s)
);
handler!(
    /// `ZRQ.INFO`.
    info: Info::parse => |c: &Info, s: &mut RedisStore| c.apply(s)
);
handler!(
    /// `ZRQ.LIST`.
    list: List::parse => |c: &List, s: &mut RedisStore| c.apply(s)
);
handler!(
    /// `ZRQ.QUEUES`.
    queues: Queues::parse => |c: &Queues, s: &mut RedisStore| c.apply(s)
);

/// `ZRQ.FETCH`, blocking on the queue when asked and allowed.
pub fn fetch(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    run(args, ctx, |ctx, args| {
        let cmd = Fetch::parse(args).map_err(error)?;
        let delivered = cmd.apply(&mut RedisStore::new(ctx)).map_err(error)?;
        match cmd.block {
            Some(timeout) if delivered.is_empty() && can_block(ctx) => {
                let key = ctx.create_string(cmd.wait_key());
                let count = cmd.count.to_string();
                block_on_keys(
                    ctx,
                    &[key],
                    None,
                    timeout,
                    RedisValue::Array(Vec::new()),
                    move |ctx| retry_fetch(ctx, &cmd.queue, &cmd.consumer, &count),
                )?;
                Ok(RedisValue::NoReply)
            }
            _ => send(ctx, delivered.as_slice()),
        }
    })
}

/// The retry of a blocked FETCH once its queue is signalled: `None` while nothing is delivered.
///
/// It runs a non-blocking `ZRQ.FETCH` as a command of its own (through `RedisModule_Call`)
/// rather than the engine directly: on Redis 7.0 a reply callback is not a command, and writes
/// made there directly reach replicas and the AOF one by one; inside a called command they are
/// wrapped in one MULTI/EXEC like every other command's.
fn retry_fetch(ctx: &Context, queue: &str, consumer: &str, count: &str) -> Option<RedisResult> {
    let options = CallOptionsBuilder::new()
        .replicate()
        .errors_as_replies()
        .resp(CallOptionResp::Auto)
        .build();
    let reply: CallResult = ctx.call_ext("ZRQ.FETCH", &options, &[queue, consumer, "COUNT", count]);
    match reply {
        Ok(CallReply::Array(delivered)) if delivered.len() == 0 => None,
        Ok(delivered) => {
            forward(ctx, &delivered);
            Some(Ok(RedisValue::NoReply))
        }
        Err(err) => Some(Err(RedisError::String(
            err.to_utf8_string()
                .unwrap_or_else(|| "INTERNAL FETCH failed".to_string()),
        ))),
    }
}

/// `ZRQ.RESULT`, blocking on the job when asked and allowed.
pub fn result(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    run(args, ctx, |ctx, args| {
        let cmd = ResultOf::parse(args).map_err(error)?;
        let outcome = cmd.apply(&mut RedisStore::new(ctx)).map_err(error)?;
        match cmd.block {
            Some(timeout) if outcome == Reply::Nil && can_block(ctx) => {
                let wait_keys = cmd.wait_keys();
                let keys: Vec<RedisString> = wait_keys
                    .iter()
                    .map(|k| ctx.create_string(k.as_str()))
                    .collect();
                // The first is the job's record key: the job keeps it when it ends (see
                // `Store::awaited`).
                let awaits = wait_keys.first().map(|k| k.as_bytes());
                block_on_keys(
                    ctx,
                    &keys,
                    awaits,
                    timeout,
                    RedisValue::Null,
                    move |ctx| match cmd.apply(&mut RedisStore::new(ctx)) {
                        Ok(Reply::Nil) => None,
                        Ok(outcome) => Some(send(ctx, &outcome)),
                        Err(err) => Some(Err(error(err))),
                    },
                )?;
                Ok(RedisValue::NoReply)
            }
            _ => send(ctx, &outcome),
        }
    })
}
