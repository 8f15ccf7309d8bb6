//! Reply values produced by the engine, independent of how they are sent (RESP2 or RESP3).

/// A reply to a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Nil (RESP2 null bulk, RESP3 null).
    Nil,
    /// A status reply such as `OK`.
    Status(&'static str),
    /// An integer.
    Int(i64),
    /// A bulk string.
    Bulk(String),
    /// An array.
    Array(Vec<Reply>),
    /// A map (RESP3 map; a flat field/value array in RESP2).
    Map(Vec<(&'static str, Reply)>),
}
