//! Engine replies written straight to the client, and engine errors as Redis errors.
//!
//! A reply goes out through the module API's reply calls (`RedisModule_ReplyWith*`) as it is
//! walked: no intermediate `RedisValue`, no copy of its texts. Maps are RESP3 maps (flat
//! key/value arrays in RESP2) with their keys sorted by name, which is the order clients have
//! always received: the replies used to go out through a `BTreeMap` (where a repeated key kept
//! its last value, as here). A job's map is written from the job itself ([`Job::reply_values`]),
//! in an order computed at compile time.

use std::ffi::CString;
use std::os::raw::{c_char, c_long};
use std::sync::OnceLock;

use redis_module::{raw, Context, RedisError, RedisResult, RedisValue};
use zrq_core::job::{Job, ReplyValue, FIELDS};
use zrq_core::{Reply, ZrqError};

/// What a command answers: written to the client as it is walked.
pub trait Answer {
    /// Writes the whole reply to the client of `ctx`.
    fn write(&self, ctx: *mut raw::RedisModuleCtx);
}

impl Answer for Reply {
    fn write(&self, ctx: *mut raw::RedisModuleCtx) {
        match self {
            Reply::Nil => {
                raw::reply_with_null(ctx);
            }
            Reply::Status(s) => status(ctx, s),
            Reply::Int(n) => {
                raw::reply_with_long_long(ctx, *n);
            }
            Reply::Bulk(s) => bulk(ctx, s),
            Reply::Array(items) => {
                raw::reply_with_array(ctx, len(items.len()));
                for item in items {
                    item.write(ctx);
                }
            }
            Reply::Map(entries) => map(ctx, entries),
        }
    }
}

/// Jobs: an array of job maps.
impl Answer for [Job] {
    fn write(&self, ctx: *mut raw::RedisModuleCtx) {
        raw::reply_with_array(ctx, len(self.len()));
        for job in self {
            job_map(ctx, job);
        }
    }
}

impl Answer for Vec<Job> {
    fn write(&self, ctx: *mut raw::RedisModuleCtx) {
        self.as_slice().write(ctx);
    }
}

/// Writes `answer` to the client of `ctx`; the command then returns what this returns, which
/// tells the command wrapper that the reply is written already.
pub fn send(ctx: &Context, answer: &(impl Answer + ?Sized)) -> RedisResult {
    answer.write(ctx.ctx);
    Ok(RedisValue::NoReply)
}

/// An engine error as a Redis error reply (its text starts with the code).
pub fn error(err: ZrqError) -> RedisError {
    RedisError::String(err.to_string())
}

/// A length as the reply API takes it.
fn len(n: usize) -> c_long {
    c_long::try_from(n).unwrap_or(c_long::MAX)
}

fn bulk(ctx: *mut raw::RedisModuleCtx, s: &str) {
    raw::reply_with_string_buffer(ctx, s.as_ptr().cast::<c_char>(), s.len());
}

/// A status reply: the API takes a C string, so a NUL (none of zrq's statuses has one) would
/// end it; it becomes a space rather than cut the status short.
fn status(ctx: *mut raw::RedisModuleCtx, s: &str) {
    let text: Vec<u8> = s.bytes().map(|b| if b == 0 { b' ' } else { b }).collect();
    let text = CString::new(text).unwrap_or_default();
    raw::reply_with_simple_string(ctx, text.as_ptr());
}

/// A map with its keys sorted by name; of a repeated key only the last entry counts.
fn map(ctx: *mut raw::RedisModuleCtx, entries: &[(&'static str, Reply)]) {
    let mut sorted: Vec<&(&str, Reply)> = entries.iter().collect();
    // Stable: entries of a repeated key stay in their order, and the last one is kept below.
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let last_of_key = |i: usize| match (sorted.get(i), sorted.get(i + 1)) {
        (Some(entry), Some(next)) => entry.0 != next.0,
        _ => true,
    };
    let kept = (0..sorted.len()).filter(|&i| last_of_key(i)).count();
    raw::reply_with_map(ctx, len(kept));
    for (i, (key, value)) in sorted.iter().enumerate() {
        if last_of_key(i) {
            bulk(ctx, key);
            value.write(ctx);
        }
    }
}

/// The indices of [`FIELDS`] in the order of their names: a job map's key order.
const JOB_ORDER: [usize; FIELDS.len()] = sorted_fields();

/// [`FIELDS`]' indices sorted by name (an insertion sort, run by the compiler).
const fn sorted_fields() -> [usize; FIELDS.len()] {
    let mut order = [0; FIELDS.len()];
    let mut i = 0;
    while i < order.len() {
        order[i] = i;
        i += 1;
    }
    let mut i = 1;
    while i < order.len() {
        let mut j = i;
        while j > 0 && name_before(FIELDS[order[j]].0, FIELDS[order[j - 1]].0) {
            let swapped = order[j];
            order[j] = order[j - 1];
            order[j - 1] = swapped;
            j -= 1;
        }
        i += 1;
    }
    order
}

/// Whether `a` sorts before `b` (byte order, as `str`'s `Ord`); usable at compile time.
const fn name_before(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut i = 0;
    while i < a.len() && i < b.len() {
        if a[i] != b[i] {
            return a[i] < b[i];
        }
        i += 1;
    }
    a.len() < b.len()
}

/// A field name's whole bulk string (`$<len>\r\n<name>\r\n`) as the reply of an `ECHO` made
/// at load, kept for the module's life and never freed (a few dozen bytes each; freeing would
/// touch the context it was made with, which is gone by then).
struct Encoded(*mut raw::RedisModuleCallReply);

// SAFETY: the reply is made once at load and only read afterwards, by
// `RedisModule_ReplyWithCallReply` on Redis' main thread (module commands and their reply
// callbacks run there); nothing mutates or frees it.
unsafe impl Send for Encoded {}
// SAFETY: as for `Send`: shared only for reading, on the main thread.
unsafe impl Sync for Encoded {}

/// [`FIELDS`]' names as whole bulk strings, by field index; `None` where one could not be made
/// (e.g. `ECHO` renamed away), which is then written as before.
static FIELD_NAMES: OnceLock<Vec<Option<Encoded>>> = OnceLock::new();

/// Makes [`FIELD_NAMES`] (at load). A job's map then writes each name with one append to the
/// client's reply buffer (`RedisModule_ReplyWithCallReply`: `addReplyProto` of the bytes as
/// they are) instead of three (`RedisModule_ReplyWithStringBuffer`: the `$<len>` header, the
/// bytes, CRLF): ~300 instructions less a name, 13 names a job. The bytes are the same in RESP2
/// and RESP3 (a bulk string; the reply is a RESP2 one, so Redis writes it to either client), and
/// each is checked against the expected encoding before it is used.
pub fn prepare(ctx: *mut raw::RedisModuleCtx) {
    FIELD_NAMES.get_or_init(|| FIELDS.iter().map(|(name, _)| encode(ctx, name)).collect());
}

/// `name`'s bulk string as a call reply, if `ECHO name` answers exactly that.
fn encode(ctx: *mut raw::RedisModuleCtx, name: &str) -> Option<Encoded> {
    let arg = CString::new(name).ok()?;
    // SAFETY: the pointers are read after RedisModule_Init filled them (load time, main thread).
    let (call, proto, free) = unsafe {
        (
            raw::RedisModule_Call?,
            raw::RedisModule_CallReplyProto?,
            raw::RedisModule_FreeCallReply?,
        )
    };
    // `ReplyWithCallReply` is looked up here so that a name is never made without it.
    // SAFETY: as above.
    unsafe { raw::RedisModule_ReplyWithCallReply? };
    // SAFETY: a live context at load; a NUL-terminated command name, format and argument (`c`:
    // one C string), which live until the call returns.
    let reply = unsafe { call(ctx, c"ECHO".as_ptr(), c"c".as_ptr(), arg.as_ptr()) };
    if reply.is_null() {
        return None;
    }
    let expected = format!("${}\r\n{name}\r\n", name.len());
    let mut proto_len = 0usize;
    // SAFETY: a live root reply; its bytes are read while it lives.
    let bytes = unsafe {
        let data = proto(reply, &mut proto_len);
        (!data.is_null()).then(|| std::slice::from_raw_parts(data.cast::<u8>(), proto_len))
    };
    if bytes == Some(expected.as_bytes()) {
        return Some(Encoded(reply));
    }
    // SAFETY: the root reply made above, freed once, right away (its context still lives).
    unsafe { free(reply) };
    None
}

/// Writes field `index`'s name: its prepared encoding, or as a bulk string.
fn field_name(ctx: *mut raw::RedisModuleCtx, index: usize, name: &str) {
    if let Some(Some(Encoded(encoded))) = FIELD_NAMES.get().and_then(|names| names.get(index)) {
        // SAFETY: the pointer is set (checked when the name was made) and never changes; the
        // reply lives for the module's life; `ctx` is the command's live context.
        if let Some(reply_with) = unsafe { raw::RedisModule_ReplyWithCallReply } {
            // SAFETY: as above.
            unsafe { reply_with(ctx, *encoded) };
            return;
        }
    }
    bulk(ctx, name);
}

/// A job's map: the fields of [`Job::to_reply`], keys sorted by name, nothing copied.
fn job_map(ctx: *mut raw::RedisModuleCtx, job: &Job) {
    let values = job.reply_values();
    raw::reply_with_map(ctx, len(values.iter().flatten().count()));
    for i in JOB_ORDER {
        let (Some((name, _)), Some(Some(value))) = (FIELDS.get(i), values.get(i)) else {
            continue;
        };
        field_name(ctx, i, name);
        match value {
            ReplyValue::Int(n) => {
                raw::reply_with_long_long(ctx, *n);
            }
            ReplyValue::Text(s) => bulk(ctx, s),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use zrq_core::state::State;

    use super::*;

    #[test]
    fn the_job_order_is_the_sorted_order_of_the_names() {
        let names: Vec<&str> = JOB_ORDER.iter().map(|&i| FIELDS[i].0).collect();
        let sorted: Vec<&str> = FIELDS
            .iter()
            .map(|(name, _)| (*name, ()))
            .collect::<BTreeMap<_, _>>()
            .into_keys()
            .collect();
        assert_eq!(names, sorted);
        assert!(names.windows(2).all(|w| w[0] < w[1]));
        // Every field once.
        let mut seen = JOB_ORDER.to_vec();
        seen.sort_unstable();
        assert_eq!(seen, (0..FIELDS.len()).collect::<Vec<_>>());
    }
}
