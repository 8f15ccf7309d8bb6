//! The command table: names, Redis command flags and a one-line summary of each command.
//!
//! The module registers exactly these commands, with the names, flags and key positions given
//! here; the Lua library provides one function per entry (`zrq.enqueue` → `zrq_enqueue`), its
//! flags generated from this table (`no-writes` where the command is read-only).
//! Tests compare both backends against this table.

/// One zrq command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandSpec {
    /// Full command name, lower case.
    pub name: &'static str,
    /// Redis command flags used when registering the module command.
    pub flags: &'static str,
    /// Whether the command only reads (its Lua function is flagged `no-writes`).
    pub readonly: bool,
    /// Position of the command's one key, the queue, among its arguments: 1, or 0 for a command
    /// that names no queue (QUEUES). The module registers it as first key, last key and step.
    pub key: i32,
    /// Syntax line, as documented.
    pub syntax: &'static str,
}

impl CommandSpec {
    /// Name of the Lua function implementing the command (`zrq.enqueue` → `zrq_enqueue`).
    pub fn function_name(&self) -> String {
        self.name.replace('.', "_")
    }
}

/// `ZRQ.ENQUEUE`.
pub const ENQUEUE: CommandSpec = CommandSpec {
    name: "zrq.enqueue",
    flags: "write deny-oom",
    readonly: false,
    key: 1,
    syntax: "ZRQ.ENQUEUE <queue> <task> <payload> [ID <id>] [RETRIES <n>] [TIMEOUT <ms>] [DELAY <ms> | AT <unix-ms>] [BACKOFF <ms>] [PRIORITY <0-9>] [UNIQUE <key>] [KEEP <ms>] [AFTER <id> ...] [WITHRESULTS] [ONPARENTFAIL cancel|run]",
};

/// `ZRQ.FETCH`.
pub const FETCH: CommandSpec = CommandSpec {
    name: "zrq.fetch",
    flags: "write",
    readonly: false,
    key: 1,
    syntax: "ZRQ.FETCH <queue> <consumer> [COUNT <n>] [BLOCK <ms>]",
};

/// `ZRQ.ACK`.
pub const ACK: CommandSpec = CommandSpec {
    name: "zrq.ack",
    flags: "write",
    readonly: false,
    key: 1,
    syntax: "ZRQ.ACK <queue> <id> [RESULT <json>] [LEASE <token>]",
};

/// `ZRQ.FAIL`.
pub const FAIL: CommandSpec = CommandSpec {
    name: "zrq.fail",
    flags: "write",
    readonly: false,
    key: 1,
    syntax: "ZRQ.FAIL <queue> <id> <error> [RETRYIN <ms>] [LEASE <token>]",
};

/// `ZRQ.TOUCH`.
pub const TOUCH: CommandSpec = CommandSpec {
    name: "zrq.touch",
    flags: "write fast",
    readonly: false,
    key: 1,
    syntax: "ZRQ.TOUCH <queue> <id> [TIMEOUT <ms>] [PROGRESS <0-100>] [LEASE <token>]",
};

/// `ZRQ.RELEASE`.
pub const RELEASE: CommandSpec = CommandSpec {
    name: "zrq.release",
    flags: "write",
    readonly: false,
    key: 1,
    syntax: "ZRQ.RELEASE <queue> <id> [LEASE <token>]",
};

/// `ZRQ.RECLAIM`.
pub const RECLAIM: CommandSpec = CommandSpec {
    name: "zrq.reclaim",
    flags: "write",
    readonly: false,
    key: 1,
    syntax: "ZRQ.RECLAIM <queue> <consumer> [COUNT <n>]",
};

/// `ZRQ.STATE`.
pub const STATE: CommandSpec = CommandSpec {
    name: "zrq.state",
    flags: "readonly fast",
    readonly: true,
    key: 1,
    syntax: "ZRQ.STATE <queue> <id>",
};

/// `ZRQ.JOB`.
pub const JOB: CommandSpec = CommandSpec {
    name: "zrq.job",
    flags: "readonly",
    readonly: true,
    key: 1,
    syntax: "ZRQ.JOB <queue> <id>",
};

/// `ZRQ.RESULT`.
pub const RESULT: CommandSpec = CommandSpec {
    name: "zrq.result",
    flags: "readonly",
    readonly: true,
    key: 1,
    syntax: "ZRQ.RESULT <queue> <id> [BLOCK <ms>]",
};

/// `ZRQ.CANCEL`.
pub const CANCEL: CommandSpec = CommandSpec {
    name: "zrq.cancel",
    flags: "write",
    readonly: false,
    key: 1,
    syntax: "ZRQ.CANCEL <queue> <id>",
};

/// `ZRQ.DEAD`.
pub const DEAD: CommandSpec = CommandSpec {
    name: "zrq.dead",
    flags: "readonly",
    readonly: true,
    key: 1,
    syntax: "ZRQ.DEAD <queue> [COUNT <n>] [CURSOR <c>]",
};

/// `ZRQ.REQUEUE`.
pub const REQUEUE: CommandSpec = CommandSpec {
    name: "zrq.requeue",
    flags: "write deny-oom",
    readonly: false,
    key: 1,
    syntax: "ZRQ.REQUEUE <queue> <id> | ALL [COUNT <n>] [CURSOR <c>]",
};

/// `ZRQ.DELETE`.
pub const DELETE: CommandSpec = CommandSpec {
    name: "zrq.delete",
    flags: "write",
    readonly: false,
    key: 1,
    syntax: "ZRQ.DELETE <queue> <id>",
};

/// `ZRQ.PAUSE`.
pub const PAUSE: CommandSpec = CommandSpec {
    name: "zrq.pause",
    flags: "write",
    readonly: false,
    key: 1,
    syntax: "ZRQ.PAUSE <queue>",
};

/// `ZRQ.RESUME`.
pub const RESUME: CommandSpec = CommandSpec {
    name: "zrq.resume",
    flags: "write",
    readonly: false,
    key: 1,
    syntax: "ZRQ.RESUME <queue>",
};

/// `ZRQ.SCHEDULE`.
pub const SCHEDULE: CommandSpec = CommandSpec {
    name: "zrq.schedule",
    flags: "write deny-oom",
    readonly: false,
    key: 1,
    syntax: "ZRQ.SCHEDULE <queue> <name> EVERY <ms> | CRON <expr> <task> <payload> [RETRIES <n>] [TIMEOUT <ms>] [BACKOFF <ms>] [PRIORITY <0-9>] [UNIQUE <key>] [KEEP <ms>]",
};

/// `ZRQ.UNSCHEDULE`.
pub const UNSCHEDULE: CommandSpec = CommandSpec {
    name: "zrq.unschedule",
    flags: "write",
    readonly: false,
    key: 1,
    syntax: "ZRQ.UNSCHEDULE <queue> <name>",
};

/// `ZRQ.SCHEDULES`.
pub const SCHEDULES: CommandSpec = CommandSpec {
    name: "zrq.schedules",
    flags: "readonly",
    readonly: true,
    key: 1,
    syntax: "ZRQ.SCHEDULES <queue>",
};

/// `ZRQ.BATCH`.
pub const BATCH: CommandSpec = CommandSpec {
    name: "zrq.batch",
    flags: "write deny-oom",
    readonly: false,
    key: 1,
    syntax: "ZRQ.BATCH <queue> <batch-id> [ON-COMPLETE <task> <payload>] [RETRIES <n>] [TIMEOUT <ms>] [BACKOFF <ms>] [PRIORITY <0-9>] [KEEP <ms>] JOB <task> <payload> [JOB <task> <payload> ...]",
};

/// `ZRQ.BATCHINFO`.
pub const BATCHINFO: CommandSpec = CommandSpec {
    name: "zrq.batchinfo",
    flags: "readonly",
    readonly: true,
    key: 1,
    syntax: "ZRQ.BATCHINFO <queue> <batch-id>",
};

/// `ZRQ.INFO`.
pub const INFO: CommandSpec = CommandSpec {
    name: "zrq.info",
    flags: "readonly",
    readonly: true,
    key: 1,
    syntax: "ZRQ.INFO <queue>",
};

/// `ZRQ.LIST`.
pub const LIST: CommandSpec = CommandSpec {
    name: "zrq.list",
    flags: "readonly",
    readonly: true,
    key: 1,
    syntax: "ZRQ.LIST <queue> <state> [COUNT <n>] [CURSOR <c>]",
};

/// `ZRQ.QUEUES`.
pub const QUEUES: CommandSpec = CommandSpec {
    name: "zrq.queues",
    flags: "readonly",
    readonly: true,
    key: 0,
    syntax: "ZRQ.QUEUES [CURSOR <c>] [COUNT <n>]",
};

/// Every command, in documentation order.
pub const COMMANDS: &[CommandSpec] = &[
    ENQUEUE, FETCH, ACK, FAIL, TOUCH, RELEASE, RECLAIM, STATE, JOB, RESULT, CANCEL, DEAD, REQUEUE,
    DELETE, PAUSE, RESUME, SCHEDULE, UNSCHEDULE, SCHEDULES, BATCH, BATCHINFO, INFO, LIST, QUEUES,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_lowercase_and_flags_match_readonly() {
        for c in COMMANDS {
            assert_eq!(c.name, c.name.to_lowercase());
            assert!(c.syntax.to_lowercase().starts_with(c.name));
            assert_eq!(c.flags.contains("readonly"), c.readonly, "{}", c.name);
            let names_a_queue = c.syntax.contains(" <queue>");
            assert_eq!(c.key, i32::from(names_a_queue), "{}", c.name);
        }
    }
}
