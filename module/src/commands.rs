//! The command handlers: arguments in, engine call, reply out. The logic is in `zrq_core`.

use redis_module::{Context, RedisResult, RedisString, RedisValue};
use zrq_core::commands::{
    ack::Ack, enqueue::Enqueue, fetch::Fetch, job::JobOf, reclaim::Reclaim, state::StateOf,
};

use crate::blocking::{block_on_key, can_block};
use crate::guard;
use crate::reply::{error, jobs, value};
use crate::store::RedisStore;

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

/// `ZRQ.ENQUEUE`.
pub fn enqueue(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    run(args, ctx, |ctx, args| {
        let cmd = Enqueue::parse(args).map_err(error)?;
        let reply = cmd
            .apply(&mut RedisStore::new(ctx), zrq_core::job::new_id)
            .map_err(error)?;
        Ok(value(reply))
    })
}

/// `ZRQ.FETCH`, blocking when asked and allowed.
pub fn fetch(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    run(args, ctx, |ctx, args| {
        let cmd = Fetch::parse(args).map_err(error)?;
        let delivered = cmd.apply(&mut RedisStore::new(ctx)).map_err(error)?;
        match cmd.block {
            Some(timeout) if delivered.is_empty() && can_block(ctx) => {
                let key = ctx.create_string(cmd.wait_key());
                block_on_key(
                    ctx,
                    &key,
                    timeout,
                    RedisValue::Array(Vec::new()),
                    move |ctx| match cmd.apply(&mut RedisStore::new(ctx)) {
                        Ok(delivered) if delivered.is_empty() => None,
                        Ok(delivered) => Some(Ok(jobs(delivered))),
                        Err(err) => Some(Err(error(err))),
                    },
                )?;
                Ok(RedisValue::NoReply)
            }
            _ => Ok(jobs(delivered)),
        }
    })
}

/// `ZRQ.ACK`.
pub fn ack(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    run(args, ctx, |ctx, args| {
        let cmd = Ack::parse(args).map_err(error)?;
        cmd.apply(&mut RedisStore::new(ctx))
            .map(value)
            .map_err(error)
    })
}

/// `ZRQ.STATE`.
pub fn state(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    run(args, ctx, |ctx, args| {
        let cmd = StateOf::parse(args).map_err(error)?;
        cmd.apply(&mut RedisStore::new(ctx))
            .map(value)
            .map_err(error)
    })
}

/// `ZRQ.JOB`.
pub fn job(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    run(args, ctx, |ctx, args| {
        let cmd = JobOf::parse(args).map_err(error)?;
        cmd.apply(&mut RedisStore::new(ctx))
            .map(value)
            .map_err(error)
    })
}

/// `ZRQ.RECLAIM`.
pub fn reclaim(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    run(args, ctx, |ctx, args| {
        let cmd = Reclaim::parse(args).map_err(error)?;
        cmd.apply(&mut RedisStore::new(ctx))
            .map(jobs)
            .map_err(error)
    })
}
