//! Direct key access through the module API (`RedisModule_OpenKey` and the type-specific calls),
//! where it measured cheaper than `RedisModule_Call`: reads (a call builds a fake client, argument
//! objects and a reply that is then converted again), sorted-set writes, stream appends
//! (`RedisModule_StreamAdd`), hash field writes, and skipping writes that would change
//! nothing (see BENCHMARKS.md).
//!
//! Writes here replicate nothing by themselves: the store replicates each effect with
//! `RedisModule_Replicate` and explicit arguments (see `store.rs`).

// Reading a `raw::RedisModule_*` function pointer is `unsafe` only because the pointers are
// `static mut`: RedisModule_Init fills them once, before any command, timer or callback can run,
// and nothing writes them afterwards, so every read below sees the final value.

use std::ffi::{c_void, CStr};
use std::marker::PhantomData;
use std::os::raw::c_int;
use std::ptr;
use std::sync::OnceLock;

use redis_module::{raw, Context, NotifyEvent, RedisString};

/// An open key, closed on drop.
pub struct Key<'n> {
    inner: *mut raw::RedisModuleKey,
    // The key name must outlive the open key.
    _name: PhantomData<&'n RedisString>,
}

/// Redis' key types as `RedisModule_KeyType` reports them.
pub const EMPTY: c_int = raw::REDISMODULE_KEYTYPE_EMPTY as c_int;
/// A string.
pub const STRING: c_int = raw::REDISMODULE_KEYTYPE_STRING as c_int;
/// A list.
pub const LIST: c_int = raw::REDISMODULE_KEYTYPE_LIST as c_int;
/// A hash.
pub const HASH: c_int = raw::REDISMODULE_KEYTYPE_HASH as c_int;
/// A set.
pub const SET: c_int = raw::REDISMODULE_KEYTYPE_SET as c_int;
/// A sorted set.
pub const ZSET: c_int = raw::REDISMODULE_KEYTYPE_ZSET as c_int;
/// A stream.
pub const STREAM: c_int = raw::REDISMODULE_KEYTYPE_STREAM as c_int;

/// A string the module API can take (freed on drop). Made from the bytes directly: the crate's
/// `Context::create_string` copies them into a `CString` first (an allocation and a scan, and a
/// panic on a NUL byte).
pub fn string(ctx: &Context, text: &[u8]) -> RedisString {
    RedisString::create_from_slice(ctx.ctx, text)
}

/// The decimal text of `n` as a module string (as a command's integer argument replicates).
pub fn integer_string(ctx: &Context, n: i64) -> RedisString {
    // SAFETY: a live context; the new string is owned by the returned value, freed on drop.
    let inner = unsafe {
        raw::RedisModule_CreateStringFromLongLong.map_or(ptr::null_mut(), |f| f(ctx.ctx, n))
    };
    if inner.is_null() {
        return string(ctx, n.to_string().as_bytes());
    }
    RedisString::from_redis_module_string(ctx.ctx, inner)
}

/// A stream id as the module string XADD replicates (`ms-seq`), and as text. Formatted here:
/// `RedisModule_CreateStringFromStreamID` measured ~1k instructions (Redis formats it through
/// `sdscatfmt`).
pub fn stream_id_string(ctx: &Context, id: &raw::RedisModuleStreamID) -> (RedisString, String) {
    let mut buffer = [0u8; 41];
    let bytes = stream_id_bytes(id.ms, id.seq, &mut buffer);
    let text = std::str::from_utf8(bytes)
        .map(str::to_owned)
        .unwrap_or_default();
    (string(ctx, bytes), text)
}

/// `ms-seq` written backwards into a buffer that fits any two u64s and the dash (pushing char by
/// char into a String measured ~0.2k instructions more).
fn stream_id_bytes(ms: u64, seq: u64, buffer: &mut [u8; 41]) -> &[u8] {
    let mut at = put_decimal(buffer, seq);
    at -= 1;
    buffer[at] = b'-';
    at = put_decimal(&mut buffer[..at], ms);
    &buffer[at..]
}

/// Writes the decimal digits of `n` at the end of `out` (which has room for 20), returning where
/// they start (no `format!` machinery).
fn put_decimal(out: &mut [u8], mut n: u64) -> usize {
    let mut at = out.len();
    loop {
        at -= 1;
        out[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return at;
        }
    }
}

/// How many strings [`with_pointers`] passes without allocating.
const ON_STACK: usize = 16;

/// Runs `f` over the raw pointers of `strings` (an argument array for the module API), kept on
/// the stack when there are few (a heap array per call measured ~0.1k instructions).
fn with_pointers<R>(
    strings: &[&RedisString],
    f: impl FnOnce(&mut [*mut raw::RedisModuleString]) -> R,
) -> R {
    if strings.len() <= ON_STACK {
        let mut argv = [ptr::null_mut(); ON_STACK];
        for (slot, string) in argv.iter_mut().zip(strings) {
            *slot = string.inner;
        }
        return f(&mut argv[..strings.len()]);
    }
    let mut argv: Vec<*mut raw::RedisModuleString> = strings.iter().map(|s| s.inner).collect();
    f(&mut argv)
}

/// A module string made once and kept for the module's whole life: a constant word of the
/// commands the store replicates (making it per call, then freeing it, measured ~0.3k
/// instructions). Redis only reads it: it holds a reference while it propagates the command.
pub struct Word(RedisString);

// SAFETY: a `Word` is only made and used on Redis' main thread (commands and timers), which is
// the only thread that touches a module string's (non-atomic) reference count; it is never freed.
unsafe impl Sync for Word {}
// SAFETY: as above.
unsafe impl Send for Word {}

/// The word `text`, made the first time `cell` is asked.
pub fn word(cell: &'static OnceLock<Word>, text: &[u8]) -> &'static RedisString {
    &cell
        .get_or_init(|| Word(RedisString::create_from_slice(ptr::null_mut(), text)))
        .0
}

/// The bytes of a module string, valid while it lives.
pub fn string_bytes(s: &RedisString) -> Option<&[u8]> {
    bytes_of(s.inner)
}

fn bytes_of<'s>(s: *const raw::RedisModuleString) -> Option<&'s [u8]> {
    let mut len = 0usize;
    // SAFETY: `s` is a live string handed to us by Redis for the duration of the call.
    let data = unsafe { raw::RedisModule_StringPtrLen?(s, &mut len) };
    if data.is_null() {
        return None;
    }
    // SAFETY: Redis guarantees `data` points to `len` readable bytes while `s` lives.
    Some(unsafe { std::slice::from_raw_parts(data.cast::<u8>(), len) })
}

fn text_of(s: *const raw::RedisModuleString) -> Option<String> {
    std::str::from_utf8(bytes_of(s)?).ok().map(str::to_string)
}

impl<'n> Key<'n> {
    /// Opens the key `name`, for reading, or for reading and writing. A missing key opened for
    /// reading is `EMPTY` (Redis gives no handle for it); only its `kind` may be asked.
    pub fn open(ctx: &Context, name: &'n RedisString, write: bool) -> Option<Key<'n>> {
        let mode = if write {
            raw::REDISMODULE_READ | raw::REDISMODULE_WRITE
        } else {
            raw::REDISMODULE_READ
        };
        // SAFETY: `ctx.ctx` is the live context of the running command or timer, `name` a valid
        // string that outlives the key (the lifetime `'n`).
        let inner = unsafe { raw::RedisModule_OpenKey?(ctx.ctx, name.inner, mode as c_int) };
        if inner.is_null() && write {
            return None;
        }
        Some(Key {
            inner,
            _name: PhantomData,
        })
    }

    /// The key's type (`EMPTY` when it does not exist).
    pub fn kind(&self) -> c_int {
        if self.inner.is_null() {
            return EMPTY;
        }
        // SAFETY: `self.inner` is an open key.
        unsafe { raw::RedisModule_KeyType.map_or(EMPTY, |f| f(self.inner)) }
    }

    /// The bytes of a string key, read in place (`RedisModule_StringDMA`, read-only): valid while
    /// the key is open and nothing writes it. `None` for a key of another type. Redis hands out
    /// its own buffer for a string stored raw (a packed record of 45 bytes or more); a shorter one,
    /// stored embedded, it first turns into a raw string of the same bytes.
    pub fn string_bytes(&self) -> Option<&[u8]> {
        if self.inner.is_null() {
            return None;
        }
        let dma = unsafe { raw::RedisModule_StringDMA }?;
        let mut len = 0usize;
        // SAFETY: an open key; in read mode the pointer is only read, and it lives as long as
        // the key stays open and unwritten, which the borrow of `self` guarantees here.
        let data = unsafe { dma(self.inner, &mut len, raw::REDISMODULE_READ as c_int) };
        if data.is_null() {
            return None;
        }
        // SAFETY: Redis guarantees `data` points to `len` readable bytes (see above).
        Some(unsafe { std::slice::from_raw_parts(data.cast::<u8>(), len) })
    }

    /// Sets the key to the string `value`, replacing whatever it held (`RedisModule_StringSet`:
    /// the old value and its TTL go). The key must be open for writing.
    pub fn string_set(&self, value: &RedisString) -> bool {
        let Some(set) = (unsafe { raw::RedisModule_StringSet }) else {
            return false;
        };
        // SAFETY: an open writable key, a valid string (Redis retains it).
        unsafe { set(self.inner, value.inner) == raw::REDISMODULE_OK as c_int }
    }

    /// When the key expires, unix ms (`None`: it has no TTL, or does not exist).
    pub fn abs_expire(&self) -> Option<i64> {
        if self.inner.is_null() {
            return None;
        }
        let get = unsafe { raw::RedisModule_GetAbsExpire }?;
        // SAFETY: an open key.
        let at = unsafe { get(self.inner) };
        (at != i64::from(raw::REDISMODULE_NO_EXPIRE)).then_some(at)
    }

    /// Makes the key expire at `at` (unix ms). The key must be open for writing and exist.
    pub fn set_abs_expire(&self, at: i64) -> bool {
        let Some(set) = (unsafe { raw::RedisModule_SetAbsExpire }) else {
            return false;
        };
        // SAFETY: an open writable key.
        unsafe { set(self.inner, at) == raw::REDISMODULE_OK as c_int }
    }

    /// What `read` makes of one hash field's value (`None`: the field or the key is missing).
    /// The value is a string Redis makes for the call, freed here once `read` is done with it.
    fn hash_value<T>(
        &self,
        field: &RedisString,
        read: impl FnOnce(*mut raw::RedisModuleString) -> T,
    ) -> Option<T> {
        if self.inner.is_null() {
            return None;
        }
        let get = unsafe { raw::RedisModule_HashGet }?;
        let mut value: *mut raw::RedisModuleString = ptr::null_mut();
        // SAFETY: an open key; `value` receives a new string we own (freed below, no auto
        // memory in use); the list is NULL-terminated.
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
        let made = read(value);
        // SAFETY: RedisModule_HashGet returned a new string we own; freed exactly once.
        unsafe {
            if let Some(free) = raw::RedisModule_FreeString {
                free(ptr::null_mut(), value);
            }
        }
        Some(made)
    }

    /// One hash field's value as text.
    pub fn hash_get(&self, field: &RedisString) -> Option<String> {
        self.hash_value(field, |value| text_of(value)).flatten()
    }

    /// One hash field's value as an integer, the way HINCRBY reads it: `Ok(None)` when the
    /// field (or the key) is missing, `Err(())` when the value is not a strict decimal `i64`.
    pub fn hash_integer(&self, field: &RedisString) -> std::result::Result<Option<i64>, ()> {
        let parse = unsafe { raw::RedisModule_StringToLongLong }.ok_or(())?;
        let parsed = self.hash_value(field, |value| {
            let mut n: std::os::raw::c_longlong = 0;
            // SAFETY: `value` is the live string RedisModule_HashGet just returned.
            let ok = unsafe { parse(value, &mut n) } == raw::REDISMODULE_OK as c_int;
            ok.then_some(n)
        });
        match parsed {
            None => Ok(None),
            Some(Some(n)) => Ok(Some(n)),
            Some(None) => Err(()),
        }
    }

    /// Sets one hash field (creating the hash if the key is empty). The key must be open for
    /// writing and be a hash or empty.
    pub fn hash_set(&self, field: &RedisString, value: &RedisString) -> bool {
        let Some(set) = (unsafe { raw::RedisModule_HashSet }) else {
            return false;
        };
        // SAFETY: an open writable key, valid strings (Redis copies them), NULL-terminated. With
        // COUNT_ALL a created field counts too, so 0 means nothing was written.
        unsafe {
            set(
                self.inner,
                raw::REDISMODULE_HASH_COUNT_ALL as c_int,
                field.inner,
                value.inner,
                ptr::null_mut::<raw::RedisModuleString>(),
            ) > 0
        }
    }

    /// Appends a stream entry of `fields` (field, value, field, value…) with an id Redis
    /// generates (`RedisModule_StreamAdd` with AUTOID, XADD's `*`), returned. The key must be open
    /// for writing and be a stream or empty. Clients blocked on the stream are signalled when the
    /// key is closed (Redis 7.0's module.c does it in moduleCloseKey, or on creating the key).
    pub fn stream_add(&self, fields: &[&RedisString]) -> Option<raw::RedisModuleStreamID> {
        let add = unsafe { raw::RedisModule_StreamAdd }?;
        let mut id = raw::RedisModuleStreamID { ms: 0, seq: 0 };
        let pairs = i64::try_from(fields.len() / 2).ok()?;
        let ok = with_pointers(fields, |argv| {
            // SAFETY: an open writable key, `argv` holds `2 * pairs` valid strings (Redis copies
            // their bytes into the stream), `id` receives the generated id.
            unsafe {
                add(
                    self.inner,
                    raw::REDISMODULE_STREAM_ADD_AUTOID as c_int,
                    &mut id,
                    argv.as_mut_ptr(),
                    pairs,
                )
            }
        });
        (ok == raw::REDISMODULE_OK as c_int).then_some(id)
    }

    /// Every field of a hash, in the hash's own order, skipping non-UTF-8 fields or values.
    pub fn hash_all(&self) -> Vec<(String, String)> {
        // SAFETY: an open key; for a hash its length is its number of fields.
        let fields = unsafe { raw::RedisModule_ValueLength.map_or(0, |f| f(self.inner)) };
        let mut out: Vec<(String, String)> = Vec::with_capacity(fields);
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

impl Drop for Key<'_> {
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
pub fn publish(ctx: &Context, channel: &RedisString, message: &[u8]) {
    let message = string(ctx, message);
    // SAFETY: a live context and two valid strings.
    unsafe {
        if let Some(publish) = raw::RedisModule_PublishMessage {
            publish(ctx.ctx, channel.inner, message.inner);
        }
    }
}

/// Fires the keyspace event `event` on `key` (the crate's `notify_keyspace_event` copies the
/// event name into a `CString` each time).
pub fn notify(ctx: &Context, kind: NotifyEvent, event: &CStr, key: &RedisString) {
    // SAFETY: a live context, a NUL-terminated event name and a valid key name.
    unsafe {
        if let Some(notify) = raw::RedisModule_NotifyKeyspaceEvent {
            notify(ctx.ctx, kind.bits(), event.as_ptr(), key.inner);
        }
    }
}

/// Replicates `command args…` to replicas and the AOF, after this command's other effects so
/// far. The arguments are strings the caller made already (the crate's `replicate` makes new
/// ones from bytes, and a `CString` of the command name).
pub fn replicate(ctx: &Context, command: &CStr, args: &[&RedisString]) {
    // SAFETY: the pointer is read as described at the top of this file.
    let Some(replicate) = (unsafe { raw::RedisModule_Replicate }) else {
        return;
    };
    let (ctx, command) = (ctx.ctx, command.as_ptr());
    // SAFETY: a live context, a NUL-terminated command name, and per format one valid string
    // per `s` (borrowed for the call; Redis retains what it keeps), or the "v" format's (array,
    // length) pair. Two to eight arguments (an XADD of two fields is six) go as `s` each: with
    // "v" Redis grows its argument array a second time (measured ~350 instructions).
    unsafe {
        match args {
            [a, b] => replicate(ctx, command, c"ss".as_ptr(), a.inner, b.inner),
            [a, b, c] => replicate(ctx, command, c"sss".as_ptr(), a.inner, b.inner, c.inner),
            [a, b, c, d] => replicate(
                ctx,
                command,
                c"ssss".as_ptr(),
                a.inner,
                b.inner,
                c.inner,
                d.inner,
            ),
            [a, b, c, d, e] => replicate(
                ctx,
                command,
                c"sssss".as_ptr(),
                a.inner,
                b.inner,
                c.inner,
                d.inner,
                e.inner,
            ),
            [a, b, c, d, e, f] => replicate(
                ctx,
                command,
                c"ssssss".as_ptr(),
                a.inner,
                b.inner,
                c.inner,
                d.inner,
                e.inner,
                f.inner,
            ),
            [a, b, c, d, e, f, g] => replicate(
                ctx,
                command,
                c"sssssss".as_ptr(),
                a.inner,
                b.inner,
                c.inner,
                d.inner,
                e.inner,
                f.inner,
                g.inner,
            ),
            [a, b, c, d, e, f, g, h] => replicate(
                ctx,
                command,
                c"ssssssss".as_ptr(),
                a.inner,
                b.inner,
                c.inner,
                d.inner,
                e.inner,
                f.inner,
                g.inner,
                h.inner,
            ),
            _ => with_pointers(args, |argv| {
                replicate(ctx, command, c"v".as_ptr(), argv.as_ptr(), argv.len())
            }),
        };
    }
}

/// The reply of a `RedisModule_Call`, read in place (no conversion to `RedisValue`); the whole
/// reply is freed on drop.
pub struct CallReply {
    root: *mut raw::RedisModuleCallReply,
}

/// One element of a [`CallReply`] (or the reply itself), valid while the reply lives.
#[derive(Clone, Copy)]
pub struct ReplyPart<'r> {
    inner: *mut raw::RedisModuleCallReply,
    _root: PhantomData<&'r CallReply>,
}

impl CallReply {
    /// The reply as a whole. Asking it (or an element) anything makes Redis parse the whole
    /// reply into a tree first.
    pub fn part(&self) -> ReplyPart<'_> {
        ReplyPart {
            inner: self.root,
            _root: PhantomData,
        }
    }

    /// The reply's RESP2 bytes as the command wrote them (`RedisModule_CallReplyProto`: nothing
    /// is parsed), valid while the reply lives.
    pub fn proto(&self) -> &[u8] {
        let mut len = 0usize;
        // SAFETY: the pointer is read as described at the top of this file; `root` is a live
        // root reply.
        let data = unsafe {
            raw::RedisModule_CallReplyProto.map_or(ptr::null(), |f| f(self.root, &mut len))
        };
        if data.is_null() {
            return &[];
        }
        // SAFETY: Redis guarantees `data` points to `len` readable bytes while the reply lives,
        // which the borrow of `self` guarantees.
        unsafe { std::slice::from_raw_parts(data.cast::<u8>(), len) }
    }
}

impl Drop for CallReply {
    fn drop(&mut self) {
        // SAFETY: the root reply RedisModule_Call returned, freed exactly once (nested elements
        // belong to it).
        unsafe {
            if let Some(free) = raw::RedisModule_FreeCallReply {
                free(self.root);
            }
        }
    }
}

/// Whether a reply part is a string (bulk or status; RESP2, so no verbatim strings).
const REPLY_STRING: c_int = raw::REDISMODULE_REPLY_STRING as c_int;
const REPLY_INTEGER: c_int = raw::REDISMODULE_REPLY_INTEGER as c_int;
const REPLY_ARRAY: c_int = raw::REDISMODULE_REPLY_ARRAY as c_int;

impl<'r> ReplyPart<'r> {
    fn kind(self) -> c_int {
        // SAFETY: a live reply part.
        unsafe {
            raw::RedisModule_CallReplyType
                .map_or(raw::REDISMODULE_REPLY_UNKNOWN as c_int, |f| f(self.inner))
        }
    }

    fn raw_bytes(self) -> Option<&'r [u8]> {
        let mut len = 0usize;
        // SAFETY: a live string or error reply; the bytes live as long as the reply.
        let data = unsafe { raw::RedisModule_CallReplyStringPtr?(self.inner, &mut len) };
        if data.is_null() {
            return None;
        }
        // SAFETY: Redis guarantees `data` points to `len` readable bytes while the reply lives.
        Some(unsafe { std::slice::from_raw_parts(data.cast::<u8>(), len) })
    }

    /// The bytes of a string reply.
    pub fn bytes(self) -> Option<&'r [u8]> {
        if self.kind() != REPLY_STRING {
            return None;
        }
        self.raw_bytes()
    }

    /// The text of a string reply; zrq stores only UTF-8 text, so anything else is foreign data.
    pub fn text(self) -> Option<String> {
        std::str::from_utf8(self.bytes()?).ok().map(str::to_string)
    }

    /// An integer reply, or a string reply holding an integer.
    pub fn integer(self) -> Option<i64> {
        if self.kind() == REPLY_INTEGER {
            // SAFETY: a live integer reply.
            return unsafe { raw::RedisModule_CallReplyInteger.map(|f| f(self.inner)) };
        }
        std::str::from_utf8(self.bytes()?).ok()?.parse().ok()
    }

    /// The elements of an array reply; none for anything else (a nil reply among them).
    pub fn items(self) -> impl Iterator<Item = ReplyPart<'r>> {
        let len = if self.kind() == REPLY_ARRAY {
            // SAFETY: a live array reply.
            unsafe { raw::RedisModule_CallReplyLength.map_or(0, |f| f(self.inner)) }
        } else {
            0
        };
        (0..len).filter_map(move |index| {
            // SAFETY: a live array reply and an index below its length.
            let inner = unsafe { raw::RedisModule_CallReplyArrayElement?(self.inner, index) };
            (!inner.is_null()).then_some(ReplyPart {
                inner,
                _root: PhantomData,
            })
        })
    }

    /// The `index`th element of an array reply.
    pub fn get(self, index: usize) -> Option<ReplyPart<'r>> {
        if self.kind() != REPLY_ARRAY {
            return None;
        }
        // SAFETY: a live array reply; an index past its end gives NULL.
        let inner = unsafe { raw::RedisModule_CallReplyArrayElement?(self.inner, index) };
        (!inner.is_null()).then_some(ReplyPart {
            inner,
            _root: PhantomData,
        })
    }
}

/// `RedisModule_Call` formats by argument count: each argument as a string of its own (`s`), up
/// to five; more as one array (`v`), which makes Redis grow its argument array a second time
/// (measured ~350 instructions a call). `!`: replicated as the effect it had; `E`: errors as
/// replies.
const WRITE_FORMATS: [&CStr; 6] = [c"v!E", c"s!E", c"ss!E", c"sss!E", c"ssss!E", c"sssss!E"];
/// The formats of the reads (as [`WRITE_FORMATS`], not replicated).
const READ_FORMATS: [&CStr; 6] = [c"vE", c"sE", c"ssE", c"sssE", c"ssssE", c"sssssE"];

/// Runs `command args…` through `RedisModule_Call`, replicated (`write`) or not. An error reply
/// (or no reply at all) is the error's text.
pub fn call(
    ctx: &Context,
    command: &CStr,
    write: bool,
    args: &[&[u8]],
) -> std::result::Result<CallReply, String> {
    let strings: Vec<RedisString> = args
        .iter()
        .map(|arg| RedisString::create_from_slice(ptr::null_mut(), arg))
        .collect();
    let strings: Vec<&RedisString> = strings.iter().collect();
    call_strings(ctx, command, write, &strings)
}

/// [`call`] with arguments that are module strings already (a key name the store keeps).
pub fn call_strings(
    ctx: &Context,
    command: &CStr,
    write: bool,
    strings: &[&RedisString],
) -> std::result::Result<CallReply, String> {
    let formats = if write { &WRITE_FORMATS } else { &READ_FORMATS };
    let format = formats.get(strings.len()).unwrap_or(&formats[0]).as_ptr();
    let (ctx, command) = (ctx.ctx, command.as_ptr());
    // SAFETY: the pointer is read as described at the top of this file.
    let Some(call) = (unsafe { raw::RedisModule_Call }) else {
        return Err("no reply".to_string());
    };
    // SAFETY: a live context, a NUL-terminated command name, and the arguments the format names:
    // one valid string per `s`, or for `v` an (array, length) pair of valid strings. The strings
    // live (borrowed by `strings`) until the call returns; Redis retains what it keeps.
    let root = unsafe {
        match strings {
            [a] => call(ctx, command, format, a.inner),
            [a, b] => call(ctx, command, format, a.inner, b.inner),
            [a, b, c] => call(ctx, command, format, a.inner, b.inner, c.inner),
            [a, b, c, d] => call(ctx, command, format, a.inner, b.inner, c.inner, d.inner),
            [a, b, c, d, e] => call(
                ctx, command, format, a.inner, b.inner, c.inner, d.inner, e.inner,
            ),
            _ => with_pointers(strings, |argv| {
                call(ctx, command, format, argv.as_ptr(), argv.len())
            }),
        }
    };
    if root.is_null() {
        return Err("no reply".to_string());
    }
    let reply = CallReply { root };
    // Told from the reply's first byte (a RESP2 error is `-…`): asking the reply its type would
    // parse all of it, which a reply read from its bytes ([`CallReply::proto`]) never needs.
    if reply.proto().first() == Some(&b'-') {
        let message = reply.part().raw_bytes().unwrap_or_default();
        return Err(String::from_utf8(message.to_vec()).unwrap_or_default());
    }
    Ok(reply)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_id_is_written_as_xadd_writes_it() {
        let mut buffer = [0u8; 41];
        for (ms, seq) in [(0, 0), (1, 2), (1_764_550_000_123, 9), (u64::MAX, u64::MAX)] {
            assert_eq!(
                stream_id_bytes(ms, seq, &mut buffer),
                format!("{ms}-{seq}").as_bytes()
            );
        }
    }
}
