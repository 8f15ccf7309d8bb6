//! Direct key access through the module API (`RedisModule_OpenKey` and the type-specific calls),
//! where it measured cheaper than `RedisModule_Call`: reads (a call builds a fake client, argument
//! objects and a reply that is then converted again), sorted-set writes, and skipping writes that
//! would change nothing. Multi-field hash writes and stream appends measured cheaper as calls
//! (the call's replication reuses its argument objects), so they stay calls (see BENCHMARKS.md).
//!
//! Writes here replicate nothing by themselves: the store replicates each effect with
//! `RedisModule_Replicate` and explicit arguments (see `store.rs`).

// Reading a `raw::RedisModule_*` function pointer is `unsafe` only because the pointers are
// `static mut`: RedisModule_Init fills them once, before any command, timer or callback can run,
// and nothing writes them afterwards, so every read below sees the final value.

use std::ffi::c_void;
use std::os::raw::c_int;
use std::ptr;

use redis_module::{raw, Context, RedisString};

/// An open key, closed on drop.
pub struct Key {
    inner: *mut raw::RedisModuleKey,
    // The key name must outlive the open key.
    _name: RedisString,
}

/// Redis' key types as `RedisModule_KeyType` reports them.
pub const EMPTY: c_int = raw::REDISMODULE_KEYTYPE_EMPTY as c_int;
/// A hash.
pub const HASH: c_int = raw::REDISMODULE_KEYTYPE_HASH as c_int;
/// A sorted set.
pub const ZSET: c_int = raw::REDISMODULE_KEYTYPE_ZSET as c_int;

/// A string the module API can take (freed on drop).
pub fn string(ctx: &Context, text: &[u8]) -> RedisString {
    ctx.create_string(text)
}

fn text_of(s: *const raw::RedisModuleString) -> Option<String> {
    let mut len = 0usize;
    // SAFETY: `s` is a live string handed to us by Redis for the duration of the call.
    let data = unsafe { raw::RedisModule_StringPtrLen?(s, &mut len) };
    if data.is_null() {
        return None;
    }
    // SAFETY: Redis guarantees `data` points to `len` readable bytes while `s` lives.
    let bytes = unsafe { std::slice::from_raw_parts(data.cast::<u8>(), len) };
    std::str::from_utf8(bytes).ok().map(str::to_string)
}

impl Key {
    /// Opens `name` for reading, or for reading and writing. A missing key opened for reading
    /// is `EMPTY` (Redis gives no handle for it); only its `kind` may be asked.
    pub fn open(ctx: &Context, name: &str, write: bool) -> Option<Key> {
        let name = string(ctx, name.as_bytes());
        let mode = if write {
            raw::REDISMODULE_READ | raw::REDISMODULE_WRITE
        } else {
            raw::REDISMODULE_READ
        };
        // SAFETY: `ctx.ctx` is the live context of the running command or timer, `name` a valid
        // string that outlives the key (kept in the returned struct).
        let inner = unsafe { raw::RedisModule_OpenKey?(ctx.ctx, name.inner, mode as c_int) };
        if inner.is_null() && write {
            return None;
        }
        Some(Key { inner, _name: name })
    }

    /// The key's type (`EMPTY` when it does not exist).
    pub fn kind(&self) -> c_int {
        if self.inner.is_null() {
            return EMPTY;
        }
        // SAFETY: `self.inner` is an open key.
        unsafe { raw::RedisModule_KeyType.map_or(EMPTY, |f| f(self.inner)) }
    }

    /// One hash field's value as text.
    pub fn hash_get(&self, field: &RedisString) -> Option<String> {
        let get = unsafe { raw::RedisModule_HashGet }?;
        let mut value: *mut raw::RedisModuleString = ptr::null_mut();
        // SAFETY: an open key; `value` receives a string owned by the context's auto memory or
        // us (freed below); the list is NULL-terminated.
        unsafe {
            get(
                self.inner,
                raw::REDISMODULE_HASH_NONE as c_int,
                field.inner,
                &mut value as *mut *mut raw::RedisModuleString,
                ptr::null_mut::<raw::RedisModuleString>(),
            )
        };
        if value.is_null() {
            return None;
        }
        let text = text_of(value);
        // SAFETY: RedisModule_HashGet returned a new string we own (no auto memory in use).
        unsafe {
            if let Some(free) = raw::RedisModule_FreeString {
                free(ptr::null_mut(), value);
            }
        }
        text
    }

    /// Every field of a hash, in the hash's own order, skipping non-UTF-8 fields or values.
    pub fn hash_all(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        let (Some(create), Some(scan), Some(destroy)) = (unsafe {
            (
                raw::RedisModule_ScanCursorCreate,
                raw::RedisModule_ScanKey,
                raw::RedisModule_ScanCursorDestroy,
            )
        }) else {
            return out;
        };
        extern "C" fn collect(
            _key: *mut raw::RedisModuleKey,
            field: *mut raw::RedisModuleString,
            value: *mut raw::RedisModuleString,
            privdata: *mut c_void,
        ) {
            // SAFETY: privdata is the `out` vector passed below, alive for the scan.
            let out = unsafe { &mut *privdata.cast::<Vec<(String, String)>>() };
            if let (Some(f), Some(v)) = (text_of(field), text_of(value)) {
                out.push((f, v));
            }
        }
        // SAFETY: an open hash key; the cursor is created and destroyed here; the callback only
        // touches `out`, which outlives the scan.
        unsafe {
            let cursor = create();
            while scan(
                self.inner,
                cursor,
                Some(collect),
                (&mut out as *mut Vec<(String, String)>).cast::<c_void>(),
            ) != 0
            {}
            destroy(cursor);
        }
        out
    }

    /// Adds or updates a sorted-set member.
    pub fn zset_add(&self, score: f64, member: &RedisString) -> bool {
        let Some(add) = (unsafe { raw::RedisModule_ZsetAdd }) else {
            return false;
        };
        let mut flags: c_int = 0;
        // SAFETY: an open writable key, a valid member string.
        unsafe { add(self.inner, score, member.inner, &mut flags) == raw::REDISMODULE_OK as c_int }
    }

    /// Removes a sorted-set member; true if it was there.
    pub fn zset_rem(&self, member: &RedisString) -> bool {
        let Some(rem) = (unsafe { raw::RedisModule_ZsetRem }) else {
            return false;
        };
        let mut deleted: c_int = 0;
        // SAFETY: an open writable key, a valid member string.
        let ok = unsafe { rem(self.inner, member.inner, &mut deleted) };
        ok == raw::REDISMODULE_OK as c_int && deleted != 0
    }

    /// Whether a sorted set has `member`.
    pub fn zset_has(&self, member: &RedisString) -> bool {
        let Some(score) = (unsafe { raw::RedisModule_ZsetScore }) else {
            return true;
        };
        let mut value = 0f64;
        // SAFETY: an open key, a valid member string.
        unsafe { score(self.inner, member.inner, &mut value) == raw::REDISMODULE_OK as c_int }
    }

    /// Whether a sorted set has a member with score at most `max`.
    pub fn zset_any_upto(&self, max: f64) -> bool {
        let (Some(first), Some(end), Some(stop)) = (unsafe {
            (
                raw::RedisModule_ZsetFirstInScoreRange,
                raw::RedisModule_ZsetRangeEndReached,
                raw::RedisModule_ZsetRangeStop,
            )
        }) else {
            return true;
        };
        // SAFETY: an open sorted-set key; the range is stopped before returning.
        unsafe {
            if first(self.inner, f64::NEG_INFINITY, max, 0, 0) != raw::REDISMODULE_OK as c_int {
                return false;
            }
            let any = end(self.inner) == 0;
            stop(self.inner);
            any
        }
    }
}

impl Drop for Key {
    fn drop(&mut self) {
        if self.inner.is_null() {
            return;
        }
        // SAFETY: `inner` was opened by RedisModule_OpenKey and is closed exactly once.
        unsafe {
            if let Some(close) = raw::RedisModule_CloseKey {
                close(self.inner);
            }
        }
    }
}

/// Publishes `message` on `channel` to this server's subscribers (nothing is replicated).
pub fn publish(ctx: &Context, channel: &str, message: &str) {
    let (channel, message) = (
        string(ctx, channel.as_bytes()),
        string(ctx, message.as_bytes()),
    );
    // SAFETY: a live context and two valid strings.
    unsafe {
        if let Some(publish) = raw::RedisModule_PublishMessage {
            publish(ctx.ctx, channel.inner, message.inner);
        }
    }
}

/// Replicates `command args…` to replicas and the AOF, after this command's other effects so far.
pub fn replicate(ctx: &Context, command: &str, args: &[&[u8]]) {
    ctx.replicate(command, args);
}

/// Whether Redis is at or over `maxmemory` (false when none is set): the state in which it
/// refuses `deny-oom` commands. Module writes are never refused, so the timer asks first.
pub fn memory_full() -> bool {
    // SAFETY: the pointer is read as described at the top of this file.
    let Some(ratio) = (unsafe { raw::RedisModule_GetUsedMemoryRatio }) else {
        return false;
    };
    // SAFETY: it takes no argument and reads the server's memory counters on the main thread.
    (unsafe { ratio() }) >= 1.0
}

/// The keys among `keys` that the user of the running command may read, by its ACL key
/// permissions (Redis checks a command's declared keys, never a module's own key access). With
/// no user to check (no client), none.
pub fn readable_by_current_user(ctx: &Context, keys: Vec<String>) -> Vec<String> {
    // SAFETY: a live context; the user name string and the user are released below, exactly once,
    // and the key strings outlive each check.
    unsafe {
        let (Some(user_name), Some(user_of), Some(check), Some(free_user), Some(free_string)) = (
            raw::RedisModule_GetCurrentUserName,
            raw::RedisModule_GetModuleUserFromUserName,
            raw::RedisModule_ACLCheckKeyPermissions,
            raw::RedisModule_FreeModuleUser,
            raw::RedisModule_FreeString,
        ) else {
            return Vec::new();
        };
        let name = user_name(ctx.ctx);
        if name.is_null() {
            return Vec::new();
        }
        let user = user_of(name);
        free_string(ctx.ctx, name);
        if user.is_null() {
            return Vec::new();
        }
        let access = raw::REDISMODULE_CMD_KEY_ACCESS as c_int;
        let readable = keys
            .into_iter()
            .filter(|key| {
                let key_name = string(ctx, key.as_bytes());
                check(user, key_name.inner, access) == raw::REDISMODULE_OK as c_int
            })
            .collect();
        free_user(user);
        readable
    }
}
