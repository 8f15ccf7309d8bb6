//! The backend seam: how a zrq command is spelled on the wire.
//!
//! The module registers `ZRQ.<CMD> <queue> …`; the Redis Functions library registers one function
//! per command, called as `FCALL zrq_<cmd> 1 <queue> …`. Everything above this file speaks in
//! command names and arguments and does not care which backend serves them.

/// Which server-side implementation of the zrq protocol the client talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backend {
    /// The Redis module (`ZRQ.FETCH …`), with true server-side blocking. The default.
    #[default]
    Module,
    /// The Redis Functions library (`FCALL zrq_fetch 1 …`). Functions cannot block inside Redis,
    /// so blocking waits are done by the client with `BLPOP` on a wake-up key instead.
    Lua,
}

impl Backend {
    /// The command `name` (lower case, without prefix, e.g. `"fetch"`) for `queue` with `args`.
    /// `queue` is `None` only for commands without a queue (`queues`).
    pub fn command<A: redis::ToRedisArgs>(
        self,
        name: &str,
        queue: Option<&str>,
        args: &[A],
    ) -> redis::Cmd {
        let mut cmd = match self {
            Backend::Module => redis::cmd(&format!("ZRQ.{}", name.to_uppercase())),
            Backend::Lua => {
                let mut cmd = redis::cmd("FCALL");
                cmd.arg(format!("zrq_{}", name.to_lowercase()))
                    .arg(usize::from(queue.is_some()));
                cmd
            }
        };
        if let Some(queue) = queue {
            cmd.arg(queue);
        }
        for arg in args {
            cmd.arg(arg);
        }
        cmd
    }

    /// Whether `FETCH … BLOCK` and `RESULT … BLOCK` block inside Redis. When false, the client
    /// sends the command without `BLOCK` and, if nothing came back, waits on
    /// [`Backend::wake_key`] with `BLPOP`.
    pub fn blocks_server_side(self) -> bool {
        matches!(self, Backend::Module)
    }

    /// The list a client blocks on (`BLPOP`) to learn that `queue` has new work, for backends that
    /// cannot block inside Redis. Lives in the queue's hash slot.
    pub fn wake_key(self, queue: &str) -> String {
        format!("zrq:{{{queue}}}:wake")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(cmd: &redis::Cmd) -> Vec<String> {
        cmd.args_iter()
            .map(|a| match a {
                redis::Arg::Simple(b) => String::from_utf8_lossy(b).into_owned(),
                _ => "<other>".into(),
            })
            .collect()
    }

    #[test]
    fn module_and_lua_spelling() {
        let m = Backend::Module.command("fetch", Some("q"), &["w1", "COUNT", "5"]);
        assert_eq!(words(&m), ["ZRQ.FETCH", "q", "w1", "COUNT", "5"]);
        let l = Backend::Lua.command("fetch", Some("q"), &["w1"]);
        assert_eq!(words(&l), ["FCALL", "zrq_fetch", "1", "q", "w1"]);
        let none: [&str; 0] = [];
        let q = Backend::Lua.command("queues", None, &none);
        assert_eq!(words(&q), ["FCALL", "zrq_queues", "0"]);
    }
}
