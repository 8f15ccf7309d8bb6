//! [`Store`] over the Redis module API.
//!
//! Every write is replicated as the effect it had (XADD with the id this primary generated,
//! PEXPIREAT with the absolute time, a job record's SET with the timestamps this primary read and
//! a finished job's retention as PXAT); a replica or an AOF replay never recomputes an id or a
//! clock. Redis wraps the writes of one command in MULTI/EXEC on the replication stream, so
//! replicas apply a command atomically too.
//!
//! Where direct key access measured cheaper than `RedisModule_Call` (callgrind, see
//! docs/BENCHMARKS.md), it is used ([`crate::direct`]): job record reads (a packed string decoded
//! in place from `RedisModule_StringDMA`, or a hash of the earlier format), job record writes
//! (`RedisModule_StringSet` and the TTL: ~0.5k instructions cheaper per ACK than a `SET` call,
//! the same per FETCH), hash field reads (HGET) and writes (HSET: a finished job kept for the
//! queue's retention is one field of its state's records hash), sorted-set writes (ZADD, and ZREM, which first
//! checks read-only whether the member is there at all: most removals find nothing), stream
//! appends (`RedisModule_StreamAdd`: ~2k instructions cheaper per ENQUEUE than an XADD call,
//! replicated as XADD with the id it generated), and the due-index checks of the retention and
//! timer paths (nothing due: no command at all). Those writes replicate their effect explicitly
//! with `RedisModule_Replicate` and fire the keyspace events the commands fire (`set` and
//! `expire`, `zadd`, `zrem`, `del`, `xadd`, and `hset` for a counter restarted). Everything else
//! stays on
//! `RedisModule_Call` with the `!` flag:
//! consumer-group operations, XDEL and XTRIM (whose command forms maintain the stream's metadata),
//! HDEL (a retention step removes up to a thousand fields at once: as a call, its replication
//! reuses the call's argument objects), the stats counters' HINCRBY (the key API's read, parse and write plus a
//! `RedisModule_Replicate` measured ~0.5k more per ENQUEUE and per ACK than the call; a counter
//! that is no integer is still restarted through the key API), PEXPIRE, and the rare or operator
//! paths. Both kinds of
//! propagation go to one queue in call order, so the replication stream keeps the order of the
//! writes.
//!
//! A direct write pays only when the command's own work is well above what replicating it
//! costs: `RedisModule_Replicate` alone is ~2.9k instructions (it looks the command name up
//! through an sds copy, ~1.3k, and builds an argument array), against ~3.5k of overhead for a
//! `RedisModule_Call`. A direct PEXPIRE (`RedisModule_SetAbsExpire`, the `expire` event,
//! PEXPIREAT replicated) measured only 0.2k cheaper per ACK than the call, so it stays a call.
//!
//! State-change events are published with `RedisModule_PublishMessage` to this server's
//! subscribers; they are not replicated (nor was the `PUBLISH` call this replaced: subscribers of
//! a replica did not receive it either).

use std::borrow::Cow;
use std::ffi::CStr;
use std::sync::OnceLock;

use redis_module::{Context, NotifyEvent, RedisString};
use zrq_core::config::Config;
use zrq_core::state::State;
use zrq_core::store::{entry_before, KeyType, Store, StoredRecord, StreamEntry};
use zrq_core::{Result, ZrqError};

use crate::direct::{self, CallReply, Key, ReplyPart, Word};
use crate::{blocking, settings, stats, timer};

impl RedisStore<'_> {
    /// [`Store::set_record`] through the key API: `SET key packed PXAT <now + ms>` (the command's
    /// clock, which also scores the job in its finished index) or `SET key packed KEEPTTL`, done
    /// and replicated by hand, with the command's keyspace events. `RedisModule_StringSet` drops
    /// the old value with its TTL, so a kept TTL is read first and set again.
    fn set_record_direct(&mut self, key: &str, packed: &str, expire_ms: Option<i64>) -> Result<()> {
        let at = self.keep_name(key);
        let (name, value) = (self.kept(at)?, self.string(packed));
        let handle = self.open(name, true)?;
        let expire_at = match expire_ms {
            Some(ms) => Some(self.now.saturating_add(ms)),
            None => handle.abs_expire(),
        };
        let failed = || ZrqError::internal("SET failed");
        if !handle.string_set(&value) {
            return Err(failed());
        }
        if let Some(at) = expire_at {
            if !handle.set_abs_expire(at) {
                return Err(failed());
            }
        }
        drop(handle);
        self.notify(NotifyEvent::STRING, c"set", name);
        match (expire_ms, expire_at) {
            (Some(_), Some(at)) => {
                self.notify(NotifyEvent::GENERIC, c"expire", name);
                static PXAT: OnceLock<Word> = OnceLock::new();
                let (pxat, at) = (
                    direct::word(&PXAT, b"PXAT"),
                    direct::integer_string(self.ctx, at),
                );
                direct::replicate(self.ctx, c"SET", &[name, &value, pxat, &at]);
            }
            _ => {
                static KEEPTTL: OnceLock<Word> = OnceLock::new();
                let keepttl = direct::word(&KEEPTTL, b"KEEPTTL");
                direct::replicate(self.ctx, c"SET", &[name, &value, keepttl]);
            }
        }
        Ok(())
    }
}

/// A store bound to the context of the command being executed.
pub struct RedisStore<'a> {
    ctx: &'a Context,
    now: i64,
    config: Config,
    names: Names,
    /// The events channel's name as last published to (a FETCH announces every job it hands
    /// out on one channel).
    channel: Option<RedisString>,
}

/// How many key names a store keeps for reuse (see [`Names`]): a command's type checks and
/// writes cycle through a few fixed keys of its queue and the job's own key.
const KEPT_NAMES: usize = 8;

/// The module strings of the key names of this command's most recent key accesses, so the next
/// access to the same key (a type check, then its write; a record read, then its write and its
/// waiters' signal) reuses the string instead of making and freeing another (~0.35k
/// instructions each, callgrind). The store owns them (freed with it, or when a newer name takes
/// the slot, which only a `&mut` access can do, so never while a borrowed name is in use);
/// Redis never changes a string it shares, and whatever it keeps of one (an open key, a
/// replicated argument, a ready key) holds its own counted reference. Only names are kept,
/// never open keys.
struct Names {
    slots: [Option<KeptName>; KEPT_NAMES],
    /// The slot the next new name takes (the oldest, once all are taken).
    next: usize,
}

/// A kept key name with what tells most names apart without reading its bytes: its length and
/// its last (up to) eight bytes (job keys differ in their ids' ends, fixed keys in their
/// suffixes).
struct KeptName {
    len: usize,
    tail: u64,
    name: RedisString,
}

/// The last (up to) eight bytes of `bytes` as one number.
fn tail_of(bytes: &[u8]) -> u64 {
    match bytes.len().checked_sub(8).and_then(|at| bytes.get(at..)) {
        Some(last) => {
            let mut word = [0u8; 8];
            word.copy_from_slice(last);
            u64::from_le_bytes(word)
        }
        None => bytes
            .iter()
            .fold(0u64, |tail, &b| (tail << 8) | u64::from(b)),
    }
}

impl Names {
    /// The slot of the kept name `key`, made and kept now if it is not kept yet.
    fn keep(&mut self, ctx: &Context, key: &str) -> usize {
        let (bytes, len) = (key.as_bytes(), key.len());
        let tail = tail_of(bytes);
        let found = self.slots.iter().position(|slot| {
            slot.as_ref().is_some_and(|kept| {
                kept.len == len
                    && kept.tail == tail
                    && direct::string_bytes(&kept.name) == Some(bytes)
            })
        });
        if let Some(at) = found {
            return at;
        }
        let at = self.next;
        if let Some(slot) = self.slots.get_mut(at) {
            *slot = Some(KeptName {
                len,
                tail,
                name: direct::string(ctx, bytes),
            });
        }
        self.next = (at + 1) % KEPT_NAMES;
        at
    }

    /// The name in slot `at` (as [`Names::keep`] returned it).
    fn at(&self, at: usize) -> Result<&RedisString> {
        match self.slots.get(at) {
            Some(Some(kept)) => Ok(&kept.name),
            _ => Err(ZrqError::internal("a key name was not kept")),
        }
    }
}

impl<'a> RedisStore<'a> {
    /// A store for one command; the clock is read once so every timestamp of the command agrees.
    pub fn new(ctx: &'a Context) -> Self {
        RedisStore {
            ctx,
            now: crate::clock::now_ms(),
            config: settings::current(),
            names: Names {
                slots: Default::default(),
                next: 0,
            },
            channel: None,
        }
    }

    /// Keeps the module string of the key name `key` (see [`Names`]); read it with
    /// [`RedisStore::kept`].
    fn keep_name(&mut self, key: &str) -> usize {
        self.names.keep(self.ctx, key)
    }

    /// A kept key name (see [`RedisStore::keep_name`]).
    fn kept(&self, at: usize) -> Result<&RedisString> {
        self.names.at(at)
    }

    fn call(&self, write: bool, command: &CStr, args: &[&[u8]]) -> Result<CallReply> {
        direct::call(self.ctx, command, write, args).map_err(|err| {
            ZrqError::internal(&format!(
                "{} failed: {err}",
                command.to_str().unwrap_or_default()
            ))
        })
    }

    fn write(&self, command: &CStr, args: &[&[u8]]) -> Result<CallReply> {
        self.call(true, command, args)
    }

    fn read(&self, command: &CStr, args: &[&[u8]]) -> Result<CallReply> {
        self.call(false, command, args)
    }

    fn open<'n>(&self, name: &'n RedisString, write: bool) -> Result<Key<'n>> {
        Key::open(self.ctx, name, write).ok_or_else(|| ZrqError::internal("could not open a key"))
    }

    fn string(&self, text: &str) -> RedisString {
        direct::string(self.ctx, text.as_bytes())
    }

    /// Fires the keyspace event the equivalent command fires (direct writes fire none).
    fn notify(&self, kind: NotifyEvent, event: &CStr, key: &RedisString) {
        direct::notify(self.ctx, kind, event, key);
    }
}

/// What a reader of [`crate::resp`] made of `command`'s reply; `INTERNAL` when the reply was
/// not RESP2 (Redis never makes such a reply).
fn parsed<T>(command: &str, read: Option<T>) -> Result<T> {
    read.ok_or_else(|| ZrqError::internal(&format!("{command} returned no RESP2 reply")))
}

/// The constant names written once per job, as words made once (see [`direct::word`]): the
/// stats counters bumped per job (ENQUEUE, ACK, a failure) and the fields of a stream entry (a
/// reference entry's `job`; an inline entry's `task` and `payload`, the fields every inline job
/// has; a log entry's `id`). Any other name is made per call.
fn word_for(name: &str) -> Option<&'static RedisString> {
    static ENQUEUED: OnceLock<Word> = OnceLock::new();
    static COMPLETED: OnceLock<Word> = OnceLock::new();
    static FAILED: OnceLock<Word> = OnceLock::new();
    static JOB: OnceLock<Word> = OnceLock::new();
    static TASK: OnceLock<Word> = OnceLock::new();
    static PAYLOAD: OnceLock<Word> = OnceLock::new();
    static ID: OnceLock<Word> = OnceLock::new();
    let (cell, text): (&'static OnceLock<Word>, &[u8]) = match name {
        "enqueued" => (&ENQUEUED, b"enqueued"),
        "completed" => (&COMPLETED, b"completed"),
        "failed" => (&FAILED, b"failed"),
        "job" => (&JOB, b"job"),
        "task" => (&TASK, b"task"),
        "payload" => (&PAYLOAD, b"payload"),
        "id" => (&ID, b"id"),
        _ => return None,
    };
    Some(direct::word(cell, text))
}

/// The kind of key Redis reports as `kind`.
fn key_type_of(kind: std::os::raw::c_int) -> KeyType {
    match kind {
        direct::EMPTY => KeyType::Missing,
        direct::STRING => KeyType::String,
        direct::LIST => KeyType::List,
        direct::HASH => KeyType::Hash,
        direct::SET => KeyType::Set,
        direct::ZSET => KeyType::ZSet,
        direct::STREAM => KeyType::Stream,
        _ => KeyType::Other,
    }
}

impl Store for RedisStore<'_> {
    fn now_ms(&self) -> i64 {
        self.now
    }

    fn random(&mut self) -> u64 {
        crate::clock::random()
    }

    fn config(&self) -> Config {
        self.config
    }

    fn memory_full(&mut self) -> bool {
        direct::memory_full()
    }

    fn count_skipped_tick(&mut self) {
        stats::SKIPPED_TICKS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    fn del(&mut self, key: &str) -> Result<()> {
        // The key's name is usually kept already (its record was read).
        let at = self.keep_name(key);
        let name = self.kept(at)?;
        direct::call_strings(self.ctx, c"DEL", true, &[name])
            .map(drop)
            .map_err(|err| ZrqError::internal(&format!("DEL failed: {err}")))
    }

    fn set(&mut self, key: &str, value: &str) -> Result<()> {
        self.write(c"SET", &[key.as_bytes(), value.as_bytes()])
            .map(drop)
    }

    fn pexpire(&mut self, key: &str, ms: i64) -> Result<()> {
        let ms = ms.to_string();
        self.write(c"PEXPIRE", &[key.as_bytes(), ms.as_bytes()])
            .map(drop)
    }

    fn signal(&mut self, key: &str) {
        let at = self.keep_name(key);
        if let Ok(name) = self.kept(at) {
            blocking::signal(self.ctx, name);
        }
    }

    fn awaited(&mut self, key: &str) -> bool {
        blocking::awaited(self.ctx, key.as_bytes())
    }

    fn wake_at(&mut self, queue: &str, due: i64) {
        timer::wake_at(self.ctx, queue, due);
    }

    fn announce(&mut self, channel: &str, id: &str, state: State) -> Result<()> {
        stats::count(state);
        // Built by hand (`format!` measured 1.6k instructions for this), on the stack when it
        // fits (any job id of zrq's own making does).
        let (state, id) = (state.as_str().as_bytes(), id.as_bytes());
        let len = state.len() + 1 + id.len();
        let mut buffer = [0u8; 96];
        let message: Cow<'_, [u8]> = match buffer.get_mut(..len) {
            Some(message) => {
                let (head, tail) = message.split_at_mut(state.len());
                head.copy_from_slice(state);
                if let Some((space, rest)) = tail.split_first_mut() {
                    *space = b' ';
                    rest.copy_from_slice(id);
                }
                Cow::Borrowed(message)
            }
            None => Cow::Owned([state, b" ", id].concat()),
        };
        // The channel's name is made once per command (see `channel`).
        let kept = self
            .channel
            .as_ref()
            .is_some_and(|name| direct::string_bytes(name) == Some(channel.as_bytes()));
        if !kept {
            self.channel = Some(self.string(channel));
        }
        if let Some(channel) = &self.channel {
            direct::publish(self.ctx, channel, &message);
        }
        Ok(())
    }

    fn scan_page(&mut self, cursor: i64, pattern: &str, count: i64) -> Result<(i64, Vec<String>)> {
        let (cursor, count) = (cursor.to_string(), count.to_string());
        let args: [&[u8]; 5] = [
            cursor.as_bytes(),
            b"MATCH",
            pattern.as_bytes(),
            b"COUNT",
            count.as_bytes(),
        ];
        let reply = self.read(c"SCAN", &args)?;
        let next = reply
            .part()
            .get(0)
            .and_then(ReplyPart::text)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| ZrqError::internal("SCAN returned no cursor"))?;
        let keys = reply
            .part()
            .get(1)
            .into_iter()
            .flat_map(ReplyPart::items)
            .filter_map(ReplyPart::text)
            .collect();
        Ok((next, keys))
    }

    fn readable(&mut self, keys: Vec<String>) -> Vec<String> {
        direct::readable_by_current_user(self.ctx, keys)
    }

    fn key_type(&mut self, key: &str) -> Result<KeyType> {
        let at = self.keep_name(key);
        let name = self.kept(at)?;
        let kind = self.open(name, false)?.kind();
        Ok(key_type_of(kind))
    }

    fn hgetall(&mut self, key: &str) -> Result<Vec<(String, String)>> {
        let reply = self.read(c"HGETALL", &[key.as_bytes()])?;
        parsed("HGETALL", crate::resp::read_pairs(reply.proto()))
    }

    fn record(&mut self, key: &str) -> Result<Option<StoredRecord>> {
        // One lookup of the key for its type and its value; a packed record is copied out of
        // Redis' buffer once, whole (the job is read from those bytes without a string made per
        // field: Job::from_packed).
        let at = self.keep_name(key);
        let name = self.kept(at)?;
        let handle = self.open(name, false)?;
        match handle.kind() {
            direct::EMPTY => Ok(None),
            direct::STRING => {
                let packed = handle
                    .string_bytes()
                    .ok_or_else(|| ZrqError::internal("could not read a string key"))?;
                Ok(Some(StoredRecord::Packed(packed.to_vec())))
            }
            direct::HASH => Ok(Some(StoredRecord::Hash(handle.hash_all()))),
            found => Err(ZrqError::wrong_type(
                key,
                key_type_of(found).as_str(),
                KeyType::String.as_str(),
            )),
        }
    }

    fn set_record(&mut self, key: &str, packed: &str, expire_ms: Option<i64>) -> Result<()> {
        // Measured against `SET … PX` / `SET … KEEPTTL` through RedisModule_Call (callgrind, 3,000
        // jobs): ~0.5k instructions cheaper per ACK, the same per FETCH.
        self.set_record_direct(key, packed, expire_ms)
    }

    fn hlen(&mut self, key: &str) -> Result<i64> {
        Ok(self
            .read(c"HLEN", &[key.as_bytes()])?
            .part()
            .integer()
            .unwrap_or(0))
    }

    fn hget(&mut self, key: &str, field: &str) -> Result<Option<String>> {
        let at = self.keep_name(key);
        let name = self.kept(at)?;
        let handle = self.open(name, false)?;
        match handle.kind() {
            direct::EMPTY => Ok(None),
            direct::HASH => Ok(handle.hash_get(&self.string(field))),
            _ => Ok(self
                .read(c"HGET", &[key.as_bytes(), field.as_bytes()])?
                .part()
                .text()),
        }
    }

    fn hset(&mut self, key: &str, fields: &[(&str, &str)]) -> Result<()> {
        // Through the key API (every finished job kept for the queue's retention is one HSET of
        // its record), replicated as the `HSET key field value…` it is, with HSET's keyspace
        // event.
        let failed = |why: &str| ZrqError::internal(&format!("HSET failed: {why}"));
        let at = self.keep_name(key);
        let name = self.kept(at)?;
        // Field, value, field, value…
        let made: Vec<RedisString> = fields
            .iter()
            .flat_map(|(field, value)| [self.string(field), self.string(value)])
            .collect();
        let handle = self.open(name, true)?;
        if !matches!(handle.kind(), direct::EMPTY | direct::HASH) {
            return Err(failed(
                "WRONGTYPE Operation against a key holding the wrong kind of value",
            ));
        }
        for pair in made.chunks_exact(2) {
            if let [field, value] = pair {
                if !handle.hash_set(field, value) {
                    return Err(failed("ERR could not write the field"));
                }
            }
        }
        drop(handle);
        if made.is_empty() {
            return Ok(());
        }
        self.notify(NotifyEvent::HASH, c"hset", name);
        // One field (a kept job's record) needs no argument array of its own.
        if let [field, value] = made.as_slice() {
            direct::replicate(self.ctx, c"HSET", &[name, field, value]);
            return Ok(());
        }
        let args: Vec<&RedisString> = std::iter::once(name).chain(&made).collect();
        direct::replicate(self.ctx, c"HSET", &args);
        Ok(())
    }

    fn hdel(&mut self, key: &str, fields: &[&str]) -> Result<()> {
        let args: Vec<&[u8]> = std::iter::once(key)
            .chain(fields.iter().copied())
            .map(str::as_bytes)
            .collect();
        self.write(c"HDEL", &args).map(drop)
    }

    fn hincrby(&mut self, key: &str, field: &str, by: i64) -> Result<()> {
        // As the command itself, `HINCRBY key field by` through RedisModule_Call (replicated as
        // it is: deterministic, so the command is its own effect, with its keyspace event):
        // ~2k instructions cheaper than the key API's read, parse, write and a
        // `RedisModule_Replicate` (which looks the command's name up through an sds copy and a
        // split, ~1.4k). The counters bumped once per job, and an increment of 1, are words
        // made once (see `word_for`). A counter that is no integer, or would overflow, fails the
        // command, which then wrote nothing; the key API below handles it (and a key of another
        // type) as before.
        let at = self.keep_name(key);
        let name = self.kept(at)?;
        let made_field;
        let field = match word_for(field) {
            Some(word) => word,
            None => {
                made_field = self.string(field);
                &made_field
            }
        };
        static ONE: OnceLock<Word> = OnceLock::new();
        let made_by;
        let by_string = if by == 1 {
            direct::word(&ONE, b"1")
        } else {
            made_by = direct::integer_string(self.ctx, by);
            &made_by
        };
        if direct::call_strings(self.ctx, c"HINCRBY", true, &[name, field, by_string]).is_ok() {
            return Ok(());
        }
        let failed = |why: &str| ZrqError::internal(&format!("HINCRBY failed: {why}"));
        let handle = self.open(name, true)?;
        if !matches!(handle.kind(), direct::EMPTY | direct::HASH) {
            return Err(failed(
                "WRONGTYPE Operation against a key holding the wrong kind of value",
            ));
        }
        // A counter that is no integer, or would overflow, starts again at `by` (see
        // `Store::hincrby`), written and replicated as the HSET it is.
        let new = match handle.hash_integer(field) {
            Ok(old) => old.unwrap_or(0).checked_add(by),
            Err(()) => None,
        };
        let value = direct::integer_string(self.ctx, new.unwrap_or(by));
        if !handle.hash_set(field, &value) {
            return Err(failed("ERR could not write the field"));
        }
        drop(handle);
        if new.is_none() {
            self.notify(NotifyEvent::HASH, c"hset", name);
            direct::replicate(self.ctx, c"HSET", &[name, field, &value]);
            return Ok(());
        }
        self.notify(NotifyEvent::HASH, c"hincrby", name);
        direct::replicate(self.ctx, c"HINCRBY", &[name, field, by_string]);
        Ok(())
    }

    fn create_stream_with_group(&mut self, stream: &str, group: &str) -> Result<()> {
        let args: [&[u8]; 5] = [
            b"CREATE",
            stream.as_bytes(),
            group.as_bytes(),
            b"0",
            b"MKSTREAM",
        ];
        self.write(c"XGROUP", &args).map(drop)
    }

    fn xadd(&mut self, stream: &str, fields: &[(&str, &str)]) -> Result<String> {
        // `RedisModule_StreamAdd` with an id Redis generates, replicated as `XADD key <that id>
        // field value…` (the effect: a replica or a replay never generates its own id), with
        // XADD's keyspace event; closing the key wakes the clients blocked on the stream.
        let at = self.keep_name(stream);
        let name = self.kept(at)?;
        // The field names are mostly words made once; the values (and any other name) are made
        // here, all before any is borrowed.
        let mut made: Vec<RedisString> = Vec::with_capacity(2 * fields.len());
        for (field, value) in fields {
            if word_for(field).is_none() {
                made.push(self.string(field));
            }
            made.push(self.string(value));
        }
        // What is replicated: the key, the id (once known), then the entry's fields.
        let id: RedisString;
        let mut replicated: Vec<&RedisString> = Vec::with_capacity(2 + 2 * fields.len());
        replicated.extend([name, name]);
        let mut made_ones = made.iter();
        for (field, _) in fields {
            let (field, value) = (
                word_for(field).or_else(|| made_ones.next()),
                made_ones.next(),
            );
            if let (Some(field), Some(value)) = (field, value) {
                replicated.extend([field, value]);
            }
        }
        let handle = self.open(name, true)?;
        if !matches!(handle.kind(), direct::EMPTY | direct::STREAM) {
            return Err(ZrqError::internal(
                "XADD failed: WRONGTYPE Operation against a key holding the wrong kind of value",
            ));
        }
        let added = handle
            .stream_add(replicated.get(2..).unwrap_or_default())
            .ok_or_else(|| ZrqError::internal("XADD failed: could not add the entry"))?;
        drop(handle);
        self.notify(NotifyEvent::STREAM, c"xadd", name);
        let text;
        (id, text) = direct::stream_id_string(self.ctx, &added);
        if let Some(slot) = replicated.get_mut(1) {
            *slot = &id;
        }
        direct::replicate(self.ctx, c"XADD", &replicated);
        Ok(text)
    }

    fn xentry(&mut self, stream: &str, entry: &str) -> Result<Option<Vec<(String, String)>>> {
        let args: [&[u8]; 5] = [
            stream.as_bytes(),
            entry.as_bytes(),
            entry.as_bytes(),
            b"COUNT",
            b"1",
        ];
        // Reply: [[entry-id, [field, value, …]]], or [] when there is no such entry.
        let reply = self.read(c"XRANGE", &args)?;
        let found = parsed("XRANGE", crate::resp::read_entry_list(reply.proto()))?;
        Ok(found.into_iter().next().map(|(_, fields)| fields))
    }

    fn xdel(&mut self, stream: &str, entry: &str) -> Result<()> {
        self.write(c"XDEL", &[stream.as_bytes(), entry.as_bytes()])
            .map(drop)
    }

    fn xlen(&mut self, stream: &str) -> Result<i64> {
        Ok(self
            .read(c"XLEN", &[stream.as_bytes()])?
            .part()
            .integer()
            .unwrap_or(0))
    }

    fn xrange_after(
        &mut self,
        stream: &str,
        after: Option<&str>,
        count: i64,
    ) -> Result<Vec<StreamEntry>> {
        let start = after.map_or_else(|| "-".to_string(), |id| format!("({id}"));
        let count = count.to_string();
        let args: [&[u8]; 5] = [
            stream.as_bytes(),
            start.as_bytes(),
            b"+",
            b"COUNT",
            count.as_bytes(),
        ];
        let reply = self.read(c"XRANGE", &args)?;
        parsed("XRANGE", crate::resp::read_entry_list(reply.proto()))
    }

    fn pending_summary(&mut self, stream: &str, group: &str) -> Result<(i64, Option<String>)> {
        // Reply: [count, smallest id, greatest id, consumers].
        let summary = self.read(c"XPENDING", &[stream.as_bytes(), group.as_bytes()])?;
        let pending = summary
            .part()
            .get(0)
            .and_then(ReplyPart::integer)
            .unwrap_or(0);
        Ok((pending, summary.part().get(2).and_then(ReplyPart::text)))
    }

    fn xreadgroup(
        &mut self,
        stream: &str,
        group: &str,
        consumer: &str,
        count: i64,
    ) -> Result<Vec<StreamEntry>> {
        let count = count.to_string();
        let args: [&[u8]; 9] = [
            b"GROUP",
            group.as_bytes(),
            consumer.as_bytes(),
            b"COUNT",
            count.as_bytes(),
            b"NOACK",
            b"STREAMS",
            stream.as_bytes(),
            b">",
        ];
        // Reply: [[stream, [[entry-id, [field, value, …]], …]]], or nil when nothing is new.
        // Read from its RESP2 bytes (see `resp`): walking the call reply's parsed tree measured
        // ~7.5k instructions more per job (callgrind, 100 entries a call).
        let reply = self.write(c"XREADGROUP", &args)?;
        parsed("XREADGROUP", crate::resp::read_entries(reply.proto()))
    }

    fn xtrim_below(&mut self, stream: &str, min_id: &str) -> Result<()> {
        // Exact, not `~`: the trim must remove exactly the delivered entries, and it stops at the
        // first node that keeps an entry (one node's walk per FETCH, not one per job).
        let args: [&[u8]; 3] = [stream.as_bytes(), b"MINID", min_id.as_bytes()];
        self.write(c"XTRIM", &args).map(drop)
    }

    fn prune_consumers(&mut self, stream: &str, group: &str, idle_ms: i64) -> Result<()> {
        // Reply: one flat [name, n, pending, n, idle, ms, …] array per consumer.
        let consumers = self.read(
            c"XINFO",
            &[b"CONSUMERS", stream.as_bytes(), group.as_bytes()],
        )?;
        for consumer in consumers.part().items() {
            let fields: Vec<ReplyPart<'_>> = consumer.items().collect();
            let field = |name: &str| {
                fields
                    .chunks(2)
                    .find(|pair| pair[0].bytes() == Some(name.as_bytes()))
                    .and_then(|pair| pair.get(1).copied())
            };
            let (Some(name), Some(pending), Some(idle)) = (
                field("name").and_then(ReplyPart::text),
                field("pending").and_then(ReplyPart::integer),
                field("idle").and_then(ReplyPart::integer),
            ) else {
                continue;
            };
            if pending == 0 && idle > idle_ms {
                self.write(
                    c"XGROUP",
                    &[
                        b"DELCONSUMER",
                        stream.as_bytes(),
                        group.as_bytes(),
                        name.as_bytes(),
                    ],
                )?;
            }
        }
        Ok(())
    }

    fn undeliver(&mut self, stream: &str, group: &str, first: &str) -> Result<()> {
        let before = entry_before(first)
            .ok_or_else(|| ZrqError::internal("a stream entry id is not one"))?;
        self.write(
            c"XGROUP",
            &[
                b"SETID",
                stream.as_bytes(),
                group.as_bytes(),
                before.as_bytes(),
            ],
        )
        .map(drop)
    }

    fn xack_del(&mut self, stream: &str, group: &str, entry: &str) -> Result<()> {
        self.write(
            c"XACK",
            &[stream.as_bytes(), group.as_bytes(), entry.as_bytes()],
        )?;
        self.write(c"XDEL", &[stream.as_bytes(), entry.as_bytes()])
            .map(drop)
    }

    fn zadd(&mut self, key: &str, score: i64, member: &str) -> Result<()> {
        let at = self.keep_name(key);
        let (name, member) = (self.kept(at)?, self.string(member));
        let handle = self.open(name, true)?;
        if !matches!(handle.kind(), direct::EMPTY | direct::ZSET)
            || !handle.zset_add(score as f64, &member)
        {
            return Err(ZrqError::internal("ZADD failed"));
        }
        drop(handle);
        self.notify(NotifyEvent::ZSET, c"zadd", name);
        let score = direct::integer_string(self.ctx, score);
        direct::replicate(self.ctx, c"ZADD", &[name, &score, &member]);
        Ok(())
    }

    fn zadd_many(&mut self, key: &str, members: &[(i64, &str)]) -> Result<()> {
        let at = self.keep_name(key);
        let name = self.kept(at)?;
        // Each member's name, made once: added, then replicated after the key with its score.
        let made: Vec<RedisString> = members
            .iter()
            .map(|(_, member)| self.string(member))
            .collect();
        // The scores, one string per run of equal ones: the leases of one FETCH share one
        // deadline (a score string made per member measured ~0.4k instructions a job).
        let mut scores: Vec<(i64, RedisString)> = Vec::new();
        for (score, _) in members {
            if scores.last().map(|(last, _)| last) != Some(score) {
                scores.push((*score, direct::integer_string(self.ctx, *score)));
            }
        }
        // What is replicated, put together before anything is written.
        let mut argv = Vec::with_capacity(1 + 2 * made.len());
        argv.push(name);
        let mut runs = scores.iter().peekable();
        for ((score, _), member) in members.iter().zip(&made) {
            // The run of this score: the current one, or the next.
            if runs.peek().is_some_and(|(run, _)| run != score) {
                runs.next();
            }
            match runs.peek() {
                Some((_, string)) => argv.push(string),
                None => return Err(ZrqError::internal("ZADD failed")),
            }
            argv.push(member);
        }
        let handle = self.open(name, true)?;
        if !matches!(handle.kind(), direct::EMPTY | direct::ZSET) {
            return Err(ZrqError::internal("ZADD failed"));
        }
        for ((score, _), member) in members.iter().zip(&made) {
            if !handle.zset_add(*score as f64, member) {
                return Err(ZrqError::internal("ZADD failed"));
            }
        }
        drop(handle);
        self.notify(NotifyEvent::ZSET, c"zadd", name);
        direct::replicate(self.ctx, c"ZADD", &argv);
        Ok(())
    }

    fn zrem(&mut self, key: &str, member: &str) -> Result<()> {
        // Looked up read-only first: most removals find nothing (a missing index, or a job that
        // is not in it), and a key opened for writing counts as modified (WATCH) even then.
        let at = self.keep_name(key);
        let (name, member) = (self.kept(at)?, self.string(member));
        let handle = self.open(name, false)?;
        match handle.kind() {
            direct::EMPTY => return Ok(()),
            direct::ZSET if !handle.zset_has(&member) => return Ok(()),
            direct::ZSET => {}
            _ => return Err(ZrqError::internal("ZREM on a key that is not a sorted set")),
        }
        drop(handle);
        let handle = self.open(name, true)?;
        if !handle.zset_rem(&member) {
            return Ok(());
        }
        // Removing the last member deletes the key, which the open key then reports as empty.
        let deleted = handle.kind() == direct::EMPTY;
        // Closed before the events, as the command does (closing signals the modification).
        drop(handle);
        self.notify(NotifyEvent::ZSET, c"zrem", name);
        if deleted {
            self.notify(NotifyEvent::GENERIC, c"del", name);
        }
        direct::replicate(self.ctx, c"ZREM", &[name, &member]);
        Ok(())
    }

    fn zcard(&mut self, key: &str) -> Result<i64> {
        Ok(self
            .read(c"ZCARD", &[key.as_bytes()])?
            .part()
            .integer()
            .unwrap_or(0))
    }

    fn zrange(&mut self, key: &str, start: i64, count: i64) -> Result<Vec<String>> {
        if count <= 0 {
            return Ok(Vec::new());
        }
        let (first, last) = (
            start.to_string(),
            start.saturating_add(count - 1).to_string(),
        );
        let members = self.read(
            c"ZRANGE",
            &[key.as_bytes(), first.as_bytes(), last.as_bytes()],
        )?;
        Ok(members.part().items().filter_map(ReplyPart::text).collect())
    }

    fn zscore(&mut self, key: &str, member: &str) -> Result<Option<i64>> {
        let score = self
            .read(c"ZSCORE", &[key.as_bytes(), member.as_bytes()])?
            .part()
            .text();
        Ok(score.and_then(|s| s.parse::<f64>().ok()).map(|s| s as i64))
    }

    fn zfirst_score(&mut self, key: &str) -> Result<Option<i64>> {
        let args: [&[u8]; 4] = [key.as_bytes(), b"0", b"0", b"WITHSCORES"];
        let reply = self.read(c"ZRANGE", &args)?;
        Ok(reply
            .part()
            .get(1)
            .and_then(ReplyPart::text)
            .and_then(|s| s.parse::<f64>().ok())
            .map(|s| s as i64))
    }

    fn zremrange_score(&mut self, key: &str, max: i64) -> Result<()> {
        let upto = max.to_string();
        self.write(
            c"ZREMRANGEBYSCORE",
            &[key.as_bytes(), b"-inf", upto.as_bytes()],
        )?;
        Ok(())
    }

    fn zrange_upto(&mut self, key: &str, max: i64, count: i64) -> Result<Vec<String>> {
        // Usually nothing is due: answered without a command.
        let at = self.keep_name(key);
        let name = self.kept(at)?;
        let handle = self.open(name, false)?;
        match handle.kind() {
            direct::EMPTY => return Ok(Vec::new()),
            direct::ZSET if !handle.zset_any_upto(max as f64) => return Ok(Vec::new()),
            _ => {}
        }
        drop(handle);
        let (max, count) = (max.to_string(), count.to_string());
        let args: [&[u8]; 7] = [
            key.as_bytes(),
            b"-inf",
            max.as_bytes(),
            b"BYSCORE",
            b"LIMIT",
            b"0",
            count.as_bytes(),
        ];
        let members = self.read(c"ZRANGE", &args)?;
        Ok(members.part().items().filter_map(ReplyPart::text).collect())
    }
}
