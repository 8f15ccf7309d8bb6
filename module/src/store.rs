//! [`Store`] over the Redis module API.
//!
//! Every write is replicated as the effect it had (XADD with the id this primary generated,
//! PEXPIREAT with the absolute time, HSET with the timestamp this primary read); a replica or an
//! AOF replay never recomputes an id or a clock. Redis wraps the writes of one command in
//! MULTI/EXEC on the replication stream, so replicas apply a command atomically too.
//!
//! Where direct key access measured cheaper than `RedisModule_Call` (callgrind, see
//! docs/BENCHMARKS.md), it is used ([`crate::direct`]): job record reads (HGETALL/HGET),
//! sorted-set writes (ZADD, and ZREM, which first checks read-only whether the member is there at
//! all: most removals find nothing), and the due-index checks of the retention and timer paths
//! (nothing due: no command at all). Those writes replicate their effect explicitly with
//! `RedisModule_Replicate` and fire the keyspace events the commands fire (`zadd`, `zrem`, `del`). Everything else stays on `RedisModule_Call` with the `!` flag:
//! consumer-group operations, XADD, XDEL and XTRIM (whose command forms maintain the stream's metadata),
//! multi-field HSET/HDEL and HINCRBY (as calls they measured cheaper: the call's replication
//! reuses its argument objects), and the rare or operator paths. Both kinds of propagation go to
//! one queue in call order, so the replication stream keeps the order of the writes.
//!
//! State-change events are published with `RedisModule_PublishMessage` to this server's
//! subscribers; they are not replicated (nor was the `PUBLISH` call this replaced: subscribers of
//! a replica did not receive it either).

use redis_module::{
    CallOptions, CallOptionsBuilder, CallResult, Context, KeyType as RedisKeyType, RedisValue,
};
use zrq_core::config::Config;
use zrq_core::state::State;
use zrq_core::store::{entry_before, entry_id, KeyType, Store, StreamEntry};
use zrq_core::{Result, ZrqError};

use crate::direct::{self, Key};
use crate::{blocking, settings, stats, timer};

/// A store bound to the context of the command being executed.
pub struct RedisStore<'a> {
    ctx: &'a Context,
    now: i64,
    config: Config,
    writes: CallOptions,
    reads: CallOptions,
}

impl<'a> RedisStore<'a> {
    /// A store for one command; the clock is read once so every timestamp of the command agrees.
    pub fn new(ctx: &'a Context) -> Self {
        RedisStore {
            ctx,
            now: crate::clock::now_ms(),
            config: settings::current(),
            writes: CallOptionsBuilder::new()
                .replicate()
                .errors_as_replies()
                .build(),
            reads: CallOptionsBuilder::new().errors_as_replies().build(),
        }
    }

    fn call(&self, options: &CallOptions, command: &str, args: &[&[u8]]) -> Result<RedisValue> {
        let reply: CallResult<'static> = self.ctx.call_ext(command, options, args);
        match reply {
            Ok(value) => Ok(RedisValue::from(&value)),
            Err(err) => Err(ZrqError::internal(&format!(
                "{command} failed: {}",
                err.to_utf8_string().unwrap_or_default()
            ))),
        }
    }

    fn write(&self, command: &str, args: &[&[u8]]) -> Result<RedisValue> {
        self.call(&self.writes, command, args)
    }

    fn read(&self, command: &str, args: &[&[u8]]) -> Result<RedisValue> {
        self.call(&self.reads, command, args)
    }

    fn open(&self, key: &str, write: bool) -> Result<Key> {
        Key::open(self.ctx, key, write).ok_or_else(|| ZrqError::internal("could not open a key"))
    }

    fn string(&self, text: &str) -> redis_module::RedisString {
        direct::string(self.ctx, text.as_bytes())
    }

    /// Fires the keyspace event the equivalent command fires (direct writes fire none).
    fn notify(&self, kind: redis_module::NotifyEvent, event: &str, key: &str) {
        self.ctx
            .notify_keyspace_event(kind, event, &self.string(key));
    }
}

/// The text of a string reply; zrq stores only UTF-8 text, so anything else is foreign data.
fn text(value: RedisValue) -> Option<String> {
    match value {
        RedisValue::SimpleString(s) | RedisValue::BulkString(s) => Some(s),
        RedisValue::SimpleStringStatic(s) => Some(s.to_string()),
        RedisValue::StringBuffer(bytes) => String::from_utf8(bytes).ok(),
        _ => None,
    }
}

fn integer(value: RedisValue) -> Option<i64> {
    match value {
        RedisValue::Integer(n) => Some(n),
        other => text(other)?.parse().ok(),
    }
}

fn array(value: RedisValue) -> Vec<RedisValue> {
    match value {
        RedisValue::Array(items) => items,
        _ => Vec::new(),
    }
}

/// Pairs up a flat field/value array, skipping values that are not UTF-8 text.
fn pairs(items: Vec<RedisValue>) -> Vec<(String, String)> {
    let mut out = Vec::with_capacity(items.len() / 2);
    let mut items = items.into_iter();
    while let (Some(field), Some(value)) = (items.next(), items.next()) {
        if let (Some(field), Some(value)) = (text(field), text(value)) {
            out.push((field, value));
        }
    }
    out
}

/// Field/value pairs as the flat argument list HSET and XADD take.
fn flatten<'f>(fields: &[(&'f str, &'f str)]) -> Vec<&'f [u8]> {
    fields
        .iter()
        .flat_map(|(f, v)| [f.as_bytes(), v.as_bytes()])
        .collect()
}

impl RedisStore<'_> {
    /// The id of the newest entry in the group's pending list, if any.
    fn newest_pending(&self, stream: &str, group: &str) -> Result<Option<String>> {
        let summary = array(self.read("XPENDING", &[stream.as_bytes(), group.as_bytes()])?);
        Ok(summary.into_iter().nth(2).and_then(text))
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
        self.write("DEL", &[key.as_bytes()]).map(drop)
    }

    fn set(&mut self, key: &str, value: &str) -> Result<()> {
        self.write("SET", &[key.as_bytes(), value.as_bytes()])
            .map(drop)
    }

    fn pexpire(&mut self, key: &str, ms: i64) -> Result<()> {
        let ms = ms.to_string();
        self.write("PEXPIRE", &[key.as_bytes(), ms.as_bytes()])
            .map(drop)
    }

    fn persist(&mut self, key: &str) -> Result<()> {
        self.write("PERSIST", &[key.as_bytes()]).map(drop)
    }

    fn signal(&mut self, key: &str) {
        blocking::signal(self.ctx, key);
    }

    fn wake_at(&mut self, queue: &str, due: i64) {
        timer::wake_at(self.ctx, queue, due);
    }

    fn announce(&mut self, channel: &str, id: &str, state: State) -> Result<()> {
        stats::count(state);
        let message = format!("{} {id}", state.as_str());
        direct::publish(self.ctx, channel, &message);
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
        let mut reply = array(self.read("SCAN", &args)?).into_iter();
        let next = reply
            .next()
            .and_then(text)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| ZrqError::internal("SCAN returned no cursor"))?;
        let keys = reply
            .next()
            .map(array)
            .unwrap_or_default()
            .into_iter()
            .filter_map(text)
            .collect();
        Ok((next, keys))
    }

    fn readable(&mut self, keys: Vec<String>) -> Vec<String> {
        direct::readable_by_current_user(self.ctx, keys)
    }

    fn key_type(&mut self, key: &str) -> Result<KeyType> {
        let name = self.ctx.create_string(key);
        Ok(match self.ctx.open_key(&name).key_type() {
            RedisKeyType::Empty => KeyType::Missing,
            RedisKeyType::String => KeyType::String,
            RedisKeyType::List => KeyType::List,
            RedisKeyType::Hash => KeyType::Hash,
            RedisKeyType::Set => KeyType::Set,
            RedisKeyType::ZSet => KeyType::ZSet,
            RedisKeyType::Stream => KeyType::Stream,
            RedisKeyType::Module => KeyType::Other,
        })
    }

    fn hgetall(&mut self, key: &str) -> Result<Vec<(String, String)>> {
        // Job records are read field by name, so the hash's scan order is as good as HGETALL's;
        // other hashes keep HGETALL's order.
        if key.contains(":job:") {
            let handle = self.open(key, false)?;
            match handle.kind() {
                direct::EMPTY => return Ok(Vec::new()),
                direct::HASH => return Ok(handle.hash_all()),
                _ => {}
            }
        }
        Ok(pairs(array(self.read("HGETALL", &[key.as_bytes()])?)))
    }

    fn record(&mut self, key: &str) -> Result<Option<Vec<(String, String)>>> {
        // One lookup of the key for its type and its fields (the trait's default takes two).
        let handle = self.open(key, false)?;
        match handle.kind() {
            direct::EMPTY => Ok(None),
            direct::HASH => Ok(Some(handle.hash_all())),
            _ => {
                drop(handle);
                let found = self.key_type(key)?;
                Err(ZrqError::wrong_type(
                    key,
                    found.as_str(),
                    KeyType::Hash.as_str(),
                ))
            }
        }
    }

    fn hstrlen(&mut self, key: &str, field: &str) -> Result<i64> {
        Ok(integer(self.read("HSTRLEN", &[key.as_bytes(), field.as_bytes()])?).unwrap_or(0))
    }

    fn hlen(&mut self, key: &str) -> Result<i64> {
        Ok(integer(self.read("HLEN", &[key.as_bytes()])?).unwrap_or(0))
    }

    fn hget(&mut self, key: &str, field: &str) -> Result<Option<String>> {
        let handle = self.open(key, false)?;
        match handle.kind() {
            direct::EMPTY => Ok(None),
            direct::HASH => Ok(handle.hash_get(&self.string(field))),
            _ => Ok(text(
                self.read("HGET", &[key.as_bytes(), field.as_bytes()])?,
            )),
        }
    }

    fn hset(&mut self, key: &str, fields: &[(&str, &str)]) -> Result<()> {
        let args: Vec<&[u8]> = std::iter::once(key.as_bytes())
            .chain(flatten(fields))
            .collect();
        self.write("HSET", &args).map(drop)
    }

    fn hdel(&mut self, key: &str, fields: &[&str]) -> Result<()> {
        let args: Vec<&[u8]> = std::iter::once(key)
            .chain(fields.iter().copied())
            .map(str::as_bytes)
            .collect();
        self.write("HDEL", &args).map(drop)
    }

    fn hincrby(&mut self, key: &str, field: &str, by: i64) -> Result<()> {
        let by = by.to_string();
        self.write(
            "HINCRBY",
            &[key.as_bytes(), field.as_bytes(), by.as_bytes()],
        )
        .map(drop)
    }

    fn create_stream_with_group(&mut self, stream: &str, group: &str) -> Result<()> {
        let args: [&[u8]; 5] = [
            b"CREATE",
            stream.as_bytes(),
            group.as_bytes(),
            b"0",
            b"MKSTREAM",
        ];
        self.write("XGROUP", &args).map(drop)
    }

    fn xadd(&mut self, stream: &str, fields: &[(&str, &str)]) -> Result<String> {
        let args: Vec<&[u8]> = [stream.as_bytes(), b"*"]
            .into_iter()
            .chain(flatten(fields))
            .collect();
        text(self.write("XADD", &args)?).ok_or_else(|| ZrqError::internal("XADD returned no id"))
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
        Ok(array(self.read("XRANGE", &args)?)
            .into_iter()
            .next()
            .and_then(|found| array(found).into_iter().nth(1))
            .map(|fields| pairs(array(fields))))
    }

    fn xdel(&mut self, stream: &str, entry: &str) -> Result<()> {
        self.write("XDEL", &[stream.as_bytes(), entry.as_bytes()])
            .map(drop)
    }

    fn undelivered(
        &mut self,
        stream: &str,
        group: &str,
        after: Option<&str>,
        count: i64,
    ) -> Result<Vec<StreamEntry>> {
        // FETCH trims what it delivers, so the stream holds undelivered entries only, except
        // for entries an older zrq delivered (left in the group's pending list, and in the stream
        // until a FETCH trims them), all older than every undelivered one: what follows the
        // newest pending entry is exactly the undelivered part. A page resumes after the later
        // of that and `after`.
        let newest = self.newest_pending(stream, group)?;
        let start = [newest.as_deref(), after]
            .into_iter()
            .flatten()
            .max_by_key(|id| entry_id(id));
        let start = start.map_or_else(|| "-".to_string(), |id| format!("({id}"));
        let count = count.to_string();
        let args: [&[u8]; 5] = [
            stream.as_bytes(),
            start.as_bytes(),
            b"+",
            b"COUNT",
            count.as_bytes(),
        ];
        let entries = array(self.read("XRANGE", &args)?)
            .into_iter()
            .filter_map(|entry| {
                let mut parts = array(entry).into_iter();
                let id = text(parts.next()?)?;
                Some((id, pairs(array(parts.next()?))))
            })
            .collect();
        Ok(entries)
    }

    fn undelivered_len(&mut self, stream: &str, group: &str) -> Result<i64> {
        let length = integer(self.read("XLEN", &[stream.as_bytes()])?).unwrap_or(0);
        // Reply: [count, smallest id, greatest id, consumers].
        let mut summary =
            array(self.read("XPENDING", &[stream.as_bytes(), group.as_bytes()])?).into_iter();
        let pending = summary.next().and_then(integer).unwrap_or(0);
        let newest = summary.nth(1).and_then(text);
        let Some(newest) = newest.filter(|_| pending > 0) else {
            return Ok(length);
        };
        // Pending entries come only from an older zrq (FETCH acknowledges nothing now). They
        // are all in the stream until a FETCH trims what it delivers, which removes every one of
        // them (they precede what it delivered), and none afterwards: the stream's first entry
        // tells which.
        let args: [&[u8]; 5] = [stream.as_bytes(), b"-", b"+", b"COUNT", b"1"];
        let first = array(self.read("XRANGE", &args)?)
            .into_iter()
            .next()
            .and_then(|entry| array(entry).into_iter().next())
            .and_then(text);
        let untrimmed = first.is_some_and(|first| entry_id(&first) <= entry_id(&newest));
        Ok(if untrimmed { length - pending } else { length })
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
        let streams = array(self.write("XREADGROUP", &args)?);
        let entries = streams
            .into_iter()
            .flat_map(|s| array(s).into_iter().nth(1).map(array).unwrap_or_default());
        Ok(entries
            .filter_map(|entry| {
                let mut parts = array(entry).into_iter();
                let id = text(parts.next()?)?;
                Some((id, pairs(array(parts.next()?))))
            })
            .collect())
    }

    fn xtrim_below(&mut self, stream: &str, min_id: &str) -> Result<()> {
        // Exact, not `~`: the trim must remove exactly the delivered entries, and it stops at the
        // first node that keeps an entry (one node's walk per FETCH, not one per job).
        let args: [&[u8]; 3] = [stream.as_bytes(), b"MINID", min_id.as_bytes()];
        self.write("XTRIM", &args).map(drop)
    }

    fn prune_consumers(&mut self, stream: &str, group: &str, idle_ms: i64) -> Result<()> {
        // Reply: one flat [name, n, pending, n, idle, ms, …] array per consumer.
        let consumers = array(self.read(
            "XINFO",
            &[b"CONSUMERS", stream.as_bytes(), group.as_bytes()],
        )?);
        for consumer in consumers {
            let fields = array(consumer);
            let field = |name: &str| {
                fields
                    .chunks(2)
                    .find(|pair| text(pair[0].clone()).as_deref() == Some(name))
                    .and_then(|pair| pair.get(1).cloned())
            };
            let (Some(name), Some(pending), Some(idle)) = (
                field("name").and_then(text),
                field("pending").and_then(integer),
                field("idle").and_then(integer),
            ) else {
                continue;
            };
            if pending == 0 && idle > idle_ms {
                self.write(
                    "XGROUP",
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
            "XGROUP",
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
            "XACK",
            &[stream.as_bytes(), group.as_bytes(), entry.as_bytes()],
        )?;
        self.write("XDEL", &[stream.as_bytes(), entry.as_bytes()])
            .map(drop)
    }

    fn zadd(&mut self, key: &str, score: i64, member: &str) -> Result<()> {
        let handle = self.open(key, true)?;
        if !matches!(handle.kind(), direct::EMPTY | direct::ZSET)
            || !handle.zset_add(score as f64, &self.string(member))
        {
            return Err(ZrqError::internal("ZADD failed"));
        }
        drop(handle);
        self.notify(redis_module::NotifyEvent::ZSET, "zadd", key);
        let score = score.to_string();
        direct::replicate(
            self.ctx,
            "ZADD",
            &[key.as_bytes(), score.as_bytes(), member.as_bytes()],
        );
        Ok(())
    }

    fn zrem(&mut self, key: &str, member: &str) -> Result<()> {
        // Looked up read-only first: most removals find nothing (a missing index, or a job that
        // is not in it), and a key opened for writing counts as modified (WATCH) even then.
        let member_string = self.string(member);
        let handle = self.open(key, false)?;
        match handle.kind() {
            direct::EMPTY => return Ok(()),
            direct::ZSET if !handle.zset_has(&member_string) => return Ok(()),
            direct::ZSET => {}
            _ => return Err(ZrqError::internal("ZREM on a key that is not a sorted set")),
        }
        drop(handle);
        if self.open(key, true)?.zset_rem(&member_string) {
            self.notify(redis_module::NotifyEvent::ZSET, "zrem", key);
            if self.open(key, false)?.kind() == direct::EMPTY {
                self.notify(redis_module::NotifyEvent::GENERIC, "del", key);
            }
            direct::replicate(self.ctx, "ZREM", &[key.as_bytes(), member.as_bytes()]);
        }
        Ok(())
    }

    fn zcard(&mut self, key: &str) -> Result<i64> {
        Ok(integer(self.read("ZCARD", &[key.as_bytes()])?).unwrap_or(0))
    }

    fn zrange(&mut self, key: &str, start: i64, count: i64) -> Result<Vec<String>> {
        if count <= 0 {
            return Ok(Vec::new());
        }
        let (first, last) = (
            start.to_string(),
            start.saturating_add(count - 1).to_string(),
        );
        let members = array(self.read(
            "ZRANGE",
            &[key.as_bytes(), first.as_bytes(), last.as_bytes()],
        )?);
        Ok(members.into_iter().filter_map(text).collect())
    }

    fn zscore(&mut self, key: &str, member: &str) -> Result<Option<i64>> {
        let score = text(self.read("ZSCORE", &[key.as_bytes(), member.as_bytes()])?);
        Ok(score.and_then(|s| s.parse::<f64>().ok()).map(|s| s as i64))
    }

    fn zfirst_score(&mut self, key: &str) -> Result<Option<i64>> {
        let args: [&[u8]; 4] = [key.as_bytes(), b"0", b"0", b"WITHSCORES"];
        let reply = array(self.read("ZRANGE", &args)?);
        Ok(reply
            .into_iter()
            .nth(1)
            .and_then(text)
            .and_then(|s| s.parse::<f64>().ok())
            .map(|s| s as i64))
    }

    fn zremrange_upto(&mut self, key: &str, max: i64, count: i64) -> Result<()> {
        // Usually nothing is due: answered without a command (zrange_upto looks first).
        let members = self.zrange_upto(key, max, count)?;
        let Some(last) = members.last() else {
            return Ok(());
        };
        // A full page: remove up to the last member's score, not everything due.
        let upto = if i64::try_from(members.len()).unwrap_or(i64::MAX) >= count {
            self.zscore(key, last)?.unwrap_or(max).min(max)
        } else {
            max
        };
        let upto = upto.to_string();
        self.write(
            "ZREMRANGEBYSCORE",
            &[key.as_bytes(), b"-inf", upto.as_bytes()],
        )?;
        Ok(())
    }

    fn zrange_upto(&mut self, key: &str, max: i64, count: i64) -> Result<Vec<String>> {
        // Usually nothing is due: answered without a command.
        let handle = self.open(key, false)?;
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
        let members = array(self.read("ZRANGE", &args)?);
        Ok(members.into_iter().filter_map(text).collect())
    }
}
