//! Blocking a client on a key until a retry succeeds: a safe wrapper over
//! `RedisModule_BlockClientOnKeys`, which the `redis-module` crate does not wrap.
//!
//! A command that finds nothing to deliver calls [`block_on_key`] with a retry closure. Redis then
//! parks the client (no thread, no polling) and calls the closure each time the key is signalled
//! (an XADD to the stream signals it), in the order clients blocked. A retry that returns `None`
//! leaves its client blocked, so one new job wakes exactly one of several waiting workers; the
//! others stay parked. When the timeout passes, the client gets the `on_timeout` reply.

// Reading a `raw::RedisModule_*` function pointer is `unsafe` only because the pointers are
// `static mut`: RedisModule_Init fills them once, before any command, timer or callback can run,
// and nothing writes them afterwards, so every read below sees the final value.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::c_void;
use std::os::raw::c_int;

use redis_module::{raw, CallReply, Context, ContextFlags, RedisError, RedisString, RedisValue};

use crate::guard;

/// A retry: `None` keeps the client blocked, `Some(reply)` answers it.
type Retry = Box<dyn Fn(&Context) -> Option<Result<RedisValue, RedisError>>>;

/// What a blocked client needs when it is woken: how to retry, and what to reply on timeout;
/// and the job record it waits for, if it does ([`awaited`]).
struct Waiter {
    retry: Retry,
    on_timeout: RedisValue,
    awaits: Option<AwaitedKey>,
}

/// A job record key in its database.
type AwaitedKey = (c_int, Vec<u8>);

thread_local! {
    /// How many blocked clients wait for each job record key (`RESULT … BLOCK`). Only Redis' main
    /// thread blocks clients, ends jobs and frees waiters, so this is read and written there only.
    static AWAITED: RefCell<HashMap<AwaitedKey, usize>> = RefCell::new(HashMap::new());
}

/// `key` in the database of `ctx`.
fn awaited_key(ctx: &Context, key: &[u8]) -> AwaitedKey {
    // SAFETY: `ctx.ctx` is the live context of the running command, callback or timer.
    let db = unsafe { raw::RedisModule_GetSelectedDb.map_or(0, |f| f(ctx.ctx)) };
    (db, key.to_vec())
}

/// Whether a client blocked by [`block_on_keys`] waits for the job whose record key is `key`.
pub fn awaited(ctx: &Context, key: &[u8]) -> bool {
    // Asked at every ending of a job: with no waiter at all (the common case), nothing is looked
    // up or copied.
    AWAITED.with(|awaited| {
        let awaited = awaited.borrow();
        !awaited.is_empty() && awaited.contains_key(&awaited_key(ctx, key))
    })
}

/// Parks the calling client until `retry` returns a reply or `timeout_ms` passes (0 = forever);
/// `retry` runs whenever one of `keys` is signalled while it exists. `awaits` names the job
/// record key the client waits for, if any: while it is blocked, [`awaited`] says so.
///
/// `retry` returns `None` to stay blocked, `Some(reply)` to reply and unblock.
pub fn block_on_keys(
    ctx: &Context,
    keys: &[RedisString],
    awaits: Option<&[u8]>,
    timeout_ms: i64,
    on_timeout: RedisValue,
    retry: impl Fn(&Context) -> Option<Result<RedisValue, RedisError>> + 'static,
) -> Result<(), RedisError> {
    let block = raw_api(unsafe { raw::RedisModule_BlockClientOnKeys })?;
    let awaits = awaits.map(|key| awaited_key(ctx, key));
    let waiter = Box::into_raw(Box::new(Waiter {
        retry: Box::new(retry),
        on_timeout,
        awaits: awaits.clone(),
    }));
    let mut keys: Vec<*mut raw::RedisModuleString> = keys.iter().map(|k| k.inner).collect();
    let count = std::os::raw::c_int::try_from(keys.len()).unwrap_or(0);
    // SAFETY: `ctx.ctx` is the live context of the executing command. `keys` holds `count` valid
    // RedisModuleStrings that Redis retains (incrRefCount) for as long as the client is blocked,
    // so they may be freed by us afterwards. `waiter` is a leaked Box that Redis hands back to
    // `on_reply`/`on_timeout` and finally to `free_waiter`, which is its only owner from here on.
    // The callbacks match the RedisModuleCmdFunc / free-privdata signatures.
    let blocked = unsafe {
        block(
            ctx.ctx,
            Some(on_reply),
            Some(on_timeout_cb),
            Some(free_waiter),
            timeout_ms,
            keys.as_mut_ptr(),
            count,
            waiter.cast::<c_void>(),
        )
    };
    if blocked.is_null() {
        // SAFETY: Redis did not take the private data, so we still own the box.
        drop(unsafe { Box::from_raw(waiter) });
        return Err(RedisError::Str("INTERNAL could not block the client"));
    }
    // Counted once blocked: `free_waiter` counts it off, however the wait ends.
    if let Some(key) = awaits {
        AWAITED.with(|awaited| *awaited.borrow_mut().entry(key).or_insert(0) += 1);
    }
    Ok(())
}

/// Wakes clients blocked on `key` (their retry runs before the server sleeps again).
pub fn signal(ctx: &Context, key: &RedisString) {
    // SAFETY: `ctx.ctx` is the live context of the running command or timer and `key` a valid
    // string for the duration of the call; Redis copies the key name it keeps.
    if let Some(signal) = unsafe { raw::RedisModule_SignalKeyAsReady } {
        unsafe { signal(ctx.ctx, key.inner) };
    }
}

/// Sends `reply`, the reply of a `RedisModule_Call`, to the context's client as it is.
pub fn forward(ctx: &Context, reply: &CallReply<'_>) {
    let (Some(send), Some(raw_reply)) = (
        unsafe { raw::RedisModule_ReplyWithCallReply },
        reply.get_raw(),
    ) else {
        return;
    };
    // SAFETY: `ctx.ctx` is the live context of the reply callback and `raw_reply` is owned by
    // `reply`, which outlives this call; Redis copies the reply into the client's buffer.
    unsafe { send(ctx.ctx, raw_reply) };
}

/// Whether this context may block its client: not inside MULTI, a script, or a context that
/// denies blocking (Redis' own blocking commands behave as non-blocking there too).
pub fn can_block(ctx: &Context) -> bool {
    !ctx.get_flags()
        .intersects(ContextFlags::MULTI | ContextFlags::LUA | ContextFlags::DENY_BLOCKING)
}

fn raw_api<T>(f: Option<T>) -> Result<T, RedisError> {
    f.ok_or(RedisError::Str(
        "INTERNAL this Redis lacks the blocking module API",
    ))
}

/// The waiter of the blocked client whose callback is running.
///
/// # Safety
/// `ctx` must be the context Redis passes to a reply or timeout callback of a client blocked by
/// [`block_on_key`], whose private data is therefore a live `Waiter`.
unsafe fn waiter<'a>(ctx: *mut raw::RedisModuleCtx) -> Option<&'a Waiter> {
    let get = unsafe { raw::RedisModule_GetBlockedClientPrivateData }?;
    // SAFETY: per this function's contract the private data is a `Waiter` that lives until
    // `free_waiter` runs, which Redis does only after the last callback.
    unsafe { get(ctx).cast::<Waiter>().as_ref() }
}

extern "C" fn on_reply(
    ctx: *mut raw::RedisModuleCtx,
    _argv: *mut *mut raw::RedisModuleString,
    _argc: c_int,
) -> c_int {
    let context = Context::new(ctx);
    // SAFETY: Redis calls this only as the reply callback of a client blocked by block_on_key.
    let Some(waiter) = (unsafe { waiter(ctx) }) else {
        return raw::REDISMODULE_ERR as c_int;
    };
    let reply = match guard::catch(|| (waiter.retry)(&context)) {
        Ok(None) => return raw::REDISMODULE_ERR as c_int,
        Ok(Some(reply)) => reply,
        Err(panicked) => Err(panicked),
    };
    context.reply(reply);
    raw::REDISMODULE_OK as c_int
}

extern "C" fn on_timeout_cb(
    ctx: *mut raw::RedisModuleCtx,
    _argv: *mut *mut raw::RedisModuleString,
    _argc: c_int,
) -> c_int {
    let context = Context::new(ctx);
    // SAFETY: Redis calls this only as the timeout callback of a client blocked by block_on_key.
    let reply = match unsafe { waiter(ctx) } {
        Some(waiter) => Ok(waiter.on_timeout.clone()),
        None => Err(RedisError::Str("INTERNAL blocked client lost its state")),
    };
    context.reply(reply);
    raw::REDISMODULE_OK as c_int
}

extern "C" fn free_waiter(_ctx: *mut raw::RedisModuleCtx, privdata: *mut c_void) {
    if !privdata.is_null() {
        // SAFETY: privdata is the `Waiter` box leaked in block_on_key; Redis calls this exactly
        // once, after the last callback, so reclaiming the box here is the single release.
        let waiter = unsafe { Box::from_raw(privdata.cast::<Waiter>()) };
        if let Some(key) = waiter.awaits {
            AWAITED.with(|awaited| {
                let mut awaited = awaited.borrow_mut();
                if let Some(count) = awaited.get_mut(&key) {
                    *count = count.saturating_sub(1);
                    if *count == 0 {
                        awaited.remove(&key);
                    }
                }
            });
        }
    }
}
