//! Engine replies and errors as Redis replies.

use std::collections::BTreeMap;

use redis_module::redisvalue::RedisValueKey;
use redis_module::{RedisError, RedisValue};
use zrq_core::job::Job;
use zrq_core::{Reply, ZrqError};

/// An engine reply as a Redis value (maps become RESP3 maps, flat arrays in RESP2).
pub fn value(reply: Reply) -> RedisValue {
    match reply {
        Reply::Nil => RedisValue::Null,
        Reply::Status(s) => RedisValue::SimpleStringStatic(s),
        Reply::Int(n) => RedisValue::Integer(n),
        Reply::Bulk(s) => RedisValue::BulkString(s),
        Reply::Array(items) => RedisValue::Array(items.into_iter().map(value).collect()),
        Reply::Map(entries) => RedisValue::OrderedMap(
            entries
                .into_iter()
                .map(|(k, v)| (RedisValueKey::String(k.to_string()), value(v)))
                .collect::<BTreeMap<_, _>>(),
        ),
    }
}

/// Jobs as an array of maps.
pub fn jobs(jobs: Vec<Job>) -> RedisValue {
    value(Reply::Array(jobs.iter().map(Job::to_reply).collect()))
}

/// An engine error as a Redis error reply (its text starts with the code).
pub fn error(err: ZrqError) -> RedisError {
    RedisError::String(err.to_string())
}
