//! [`Store`] over the Redis module API.
//!
//! Writes go through `RedisModule_Call` with the `!` flag, so Redis replicates each write as the
//! effect it had (XADD with the id it generated, HSET with the timestamp this primary read); a
//! replica or an AOF replay never recomputes an id or a clock. Redis wraps the writes of one
//! command in MULTI/EXEC on the replication stream, so replicas apply a command atomically too.

use redis_module::{
    CallOptions, CallOptionsBuilder, CallResult, Context, KeyType as RedisKeyType, RedisValue,
};
use zrq_core::store::{KeyType, Store, StreamEntry};
use zrq_core::{Result, ZrqError};

/// A store bound to the context of the command being executed.
pub struct RedisStore<'a> {
    ctx: &'a Context,
    now: i64,
    writes: CallOptions,
    reads: CallOptions,
}

impl<'a> RedisStore<'a> {
    /// A store for one command; the clock is read once so every timestamp of the command agrees.
    pub fn new(ctx: &'a Context) -> Self {
        RedisStore {
            ctx,
            now: crate::clock::now_ms(),
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

impl Store for RedisStore<'_> {
    fn now_ms(&self) -> i64 {
        self.now
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
        Ok(pairs(array(self.read("HGETALL", &[key.as_bytes()])?)))
    }

    fn hget(&mut self, key: &str, field: &str) -> Result<Option<String>> {
        Ok(text(
            self.read("HGET", &[key.as_bytes(), field.as_bytes()])?,
        ))
    }

    fn hset(&mut self, key: &str, fields: &[(&str, &str)]) -> Result<()> {
        let args: Vec<&[u8]> = std::iter::once(key.as_bytes())
            .chain(flatten(fields))
            .collect();
        self.write("HSET", &args).map(drop)
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

    fn xreadgroup(
        &mut self,
        stream: &str,
        group: &str,
        consumer: &str,
        count: i64,
    ) -> Result<Vec<StreamEntry>> {
        let count = count.to_string();
        let args: [&[u8]; 8] = [
            b"GROUP",
            group.as_bytes(),
            consumer.as_bytes(),
            b"COUNT",
            count.as_bytes(),
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

    fn xclaim(&mut self, stream: &str, group: &str, consumer: &str, entry: &str) -> Result<()> {
        let args: [&[u8]; 6] = [
            stream.as_bytes(),
            group.as_bytes(),
            consumer.as_bytes(),
            b"0",
            entry.as_bytes(),
            b"JUSTID",
        ];
        self.write("XCLAIM", &args).map(drop)
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
        let score = score.to_string();
        self.write(
            "ZADD",
            &[key.as_bytes(), score.as_bytes(), member.as_bytes()],
        )
        .map(drop)
    }

    fn zrem(&mut self, key: &str, member: &str) -> Result<()> {
        self.write("ZREM", &[key.as_bytes(), member.as_bytes()])
            .map(drop)
    }

    fn zrange_upto(&mut self, key: &str, max: i64, count: i64) -> Result<Vec<String>> {
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
