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

/// The integers with which commands say what they did (docs/PROTOCOL.md). The one definition: the
/// module replies these, the Lua library's `REPLY` table is generated from them, and the clients
/// compare against them.
pub mod code {
    /// Done: ACK completed the job, TOUCH extended its lease, RELEASE put it back, CANCEL cancelled
    /// it at once, REQUEUE, DELETE and UNSCHEDULE did what they were asked.
    pub const DONE: i64 = 1;
    /// Nothing done: the job (or schedule) is not in a state the command acts on, does not exist,
    /// or is not held under the given lease.
    pub const NOTHING: i64 = 0;
    /// ACK, TOUCH, RELEASE: the job's cancellation was requested while it ran (ACK and RELEASE
    /// ended it cancelled; TOUCH tells the worker to stop).
    pub const CANCELLED: i64 = -1;
    /// CANCEL: the job is running; its cancellation is requested (its worker learns it from TOUCH
    /// or ACK).
    pub const CANCEL_REQUESTED: i64 = 2;
}
