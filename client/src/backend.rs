//! The backend seam: how a zrq command is spelled on the wire.
//!
//! The module registers `ZRQ.<CMD> <queue> …`; the Redis Functions library registers one function
//! per command, called as `FCALL zrq_<cmd> 1 <queue> …`. Everything above this file speaks in
//! command names and arguments and does not care which backend serves them.

/// Which server-side implementation of the zrq protocol the client talks to (the one chosen;
/// see [`BackendChoice`] for how it is chosen at connect time).
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
        zrq_core::keys::QueueKeys::new(queue).wake()
    }
}

/// How [`crate::Client::connect_with`] picks the backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BackendChoice {
    /// The module if the server has it (`COMMAND INFO zrq.enqueue`), else the Redis Functions
    /// library, loaded or upgraded by the client. The default.
    #[default]
    Auto,
    /// The module; connecting fails with [`crate::Error::Backend`] if the server does not have it.
    Module,
    /// The Redis Functions library, even on a server that has the module.
    Lua,
}

impl std::str::FromStr for BackendChoice {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.to_ascii_lowercase().as_str() {
            "auto" => Ok(BackendChoice::Auto),
            "module" => Ok(BackendChoice::Module),
            "lua" | "functions" => Ok(BackendChoice::Lua),
            other => Err(format!("unknown backend '{other}' (auto, module or lua)")),
        }
    }
}

/// Settings of [`crate::Client::connect_with`] and [`crate::Client::connect_cluster_with`].
///
/// ```
/// let options = zrq::ConnectOptions::new().backend(zrq::BackendChoice::Lua);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectOptions {
    backend: BackendChoice,
    manage_library: bool,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            backend: BackendChoice::Auto,
            manage_library: true,
        }
    }
}

impl ConnectOptions {
    /// The defaults: detect the backend, load or upgrade the Functions library when it is used.
    pub fn new() -> Self {
        Self::default()
    }

    /// Which backend to use (default [`BackendChoice::Auto`]).
    pub fn backend(mut self, backend: BackendChoice) -> Self {
        self.backend = backend;
        self
    }

    /// Whether the client loads the Functions library (`FUNCTION LOAD REPLACE`) when the Lua
    /// backend is used and the server has no library or another version (default true). Turn off
    /// where the library is installed by hand (e.g. a user without the `FUNCTION` permission).
    pub fn manage_library(mut self, manage: bool) -> Self {
        self.manage_library = manage;
        self
    }

    /// The backend setting.
    pub fn backend_choice(&self) -> BackendChoice {
        self.backend
    }

    /// Whether the library is loaded or upgraded at connect time.
    pub fn manages_library(&self) -> bool {
        self.manage_library
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

    #[test]
    fn backend_choice_parses() {
        assert_eq!("auto".parse(), Ok(BackendChoice::Auto));
        assert_eq!("Module".parse(), Ok(BackendChoice::Module));
        assert_eq!("lua".parse(), Ok(BackendChoice::Lua));
        assert!("redis".parse::<BackendChoice>().is_err());
    }
}
