//! The command table: names, Redis command flags and a one-line summary of each command.
//!
//! The module registers exactly these commands; the Lua library must provide one function per
//! entry (`zrq.enqueue` → `zrq_enqueue`), flagged `no-writes` where the command is read-only.
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
    /// Syntax line, as documented.
    pub syntax: &'static str,
}

impl CommandSpec {
    /// Name of the Lua function implementing the command (`zrq.enqueue` → `zrq_enqueue`).
    pub fn function_name(&self) -> String {
        self.name.replace('.', "_")
    }
}

/// Every command, in documentation order.
pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        name: "zrq.enqueue",
        flags: "write deny-oom",
        readonly: false,
        syntax: "ZRQ.ENQUEUE <queue> <task> <payload> [ID <id>] [RETRIES <n>] [TIMEOUT <ms>] [DELAY <ms> | AT <unix-ms>] [BACKOFF <ms>] [PRIORITY <0-9>] [UNIQUE <key>] [KEEP <ms>] [AFTER <id> ...] [WITHRESULTS] [ONPARENTFAIL cancel|run]",
    },
    CommandSpec {
        name: "zrq.fetch",
        flags: "write",
        readonly: false,
        syntax: "ZRQ.FETCH <queue> <consumer> [COUNT <n>] [BLOCK <ms>]",
    },
    CommandSpec {
        name: "zrq.ack",
        flags: "write",
        readonly: false,
        syntax: "ZRQ.ACK <queue> <id> [RESULT <json>] [LEASE <token>]",
    },
    CommandSpec {
        name: "zrq.fail",
        flags: "write",
        readonly: false,
        syntax: "ZRQ.FAIL <queue> <id> <error> [RETRYIN <ms>] [LEASE <token>]",
    },
    CommandSpec {
        name: "zrq.touch",
        flags: "write fast",
        readonly: false,
        syntax: "ZRQ.TOUCH <queue> <id> [TIMEOUT <ms>] [PROGRESS <0-100>] [LEASE <token>]",
    },
    CommandSpec {
        name: "zrq.release",
        flags: "write",
        readonly: false,
        syntax: "ZRQ.RELEASE <queue> <id> [LEASE <token>]",
    },
    CommandSpec {
        name: "zrq.reclaim",
        flags: "write",
        readonly: false,
        syntax: "ZRQ.RECLAIM <queue> <consumer> [COUNT <n>]",
    },
    CommandSpec {
        name: "zrq.state",
        flags: "readonly fast",
        readonly: true,
        syntax: "ZRQ.STATE <queue> <id>",
    },
    CommandSpec {
        name: "zrq.job",
        flags: "readonly",
        readonly: true,
        syntax: "ZRQ.JOB <queue> <id>",
    },
    CommandSpec {
        name: "zrq.result",
        flags: "readonly",
        readonly: true,
        syntax: "ZRQ.RESULT <queue> <id> [BLOCK <ms>]",
    },
    CommandSpec {
        name: "zrq.cancel",
        flags: "write",
        readonly: false,
        syntax: "ZRQ.CANCEL <queue> <id>",
    },
    CommandSpec {
        name: "zrq.dead",
        flags: "readonly",
        readonly: true,
        syntax: "ZRQ.DEAD <queue> [COUNT <n>] [CURSOR <c>]",
    },
    CommandSpec {
        name: "zrq.requeue",
        flags: "write deny-oom",
        readonly: false,
        syntax: "ZRQ.REQUEUE <queue> <id> | ALL [COUNT <n>] [CURSOR <c>]",
    },
    CommandSpec {
        name: "zrq.delete",
        flags: "write",
        readonly: false,
        syntax: "ZRQ.DELETE <queue> <id>",
    },
    CommandSpec {
        name: "zrq.pause",
        flags: "write",
        readonly: false,
        syntax: "ZRQ.PAUSE <queue>",
    },
    CommandSpec {
        name: "zrq.resume",
        flags: "write",
        readonly: false,
        syntax: "ZRQ.RESUME <queue>",
    },
    CommandSpec {
        name: "zrq.schedule",
        flags: "write deny-oom",
        readonly: false,
        syntax: "ZRQ.SCHEDULE <queue> <name> EVERY <ms> | CRON <expr> <task> <payload> [RETRIES <n>] [TIMEOUT <ms>] [BACKOFF <ms>] [PRIORITY <0-9>] [UNIQUE <key>] [KEEP <ms>]",
    },
    CommandSpec {
        name: "zrq.unschedule",
        flags: "write",
        readonly: false,
        syntax: "ZRQ.UNSCHEDULE <queue> <name>",
    },
    CommandSpec {
        name: "zrq.schedules",
        flags: "readonly",
        readonly: true,
        syntax: "ZRQ.SCHEDULES <queue>",
    },
    CommandSpec {
        name: "zrq.batch",
        flags: "write deny-oom",
        readonly: false,
        syntax: "ZRQ.BATCH <queue> <batch-id> [ON-COMPLETE <task> <payload>] [RETRIES <n>] [TIMEOUT <ms>] [BACKOFF <ms>] [PRIORITY <0-9>] [KEEP <ms>] JOB <task> <payload> [JOB <task> <payload> ...]",
    },
    CommandSpec {
        name: "zrq.batchinfo",
        flags: "readonly",
        readonly: true,
        syntax: "ZRQ.BATCHINFO <queue> <batch-id>",
    },
    CommandSpec {
        name: "zrq.info",
        flags: "readonly",
        readonly: true,
        syntax: "ZRQ.INFO <queue>",
    },
    CommandSpec {
        name: "zrq.list",
        flags: "readonly",
        readonly: true,
        syntax: "ZRQ.LIST <queue> <state> [COUNT <n>] [CURSOR <c>]",
    },
    CommandSpec {
        name: "zrq.queues",
        flags: "readonly",
        readonly: true,
        syntax: "ZRQ.QUEUES [CURSOR <c>] [COUNT <n>]",
    },
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
        }
    }
}
