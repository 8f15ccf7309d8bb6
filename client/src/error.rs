//! The client's error type.

/// Everything that can go wrong talking to zrq.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The connection failed or Redis could not be reached.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// The server refused the command; `code` is the first word of the error reply
    /// (`ERR`, `WRONGTYPE`, `BADJSON`, `NOJOB`, …).
    #[error("{code} {message}")]
    Server {
        /// The machine-readable code.
        code: String,
        /// The rest of the error reply.
        message: String,
    },
    /// Arguments or a result could not be turned into or out of JSON.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    /// The server replied with something this client does not understand.
    #[error("unexpected reply: {0}")]
    Protocol(String),
    /// No job with this id exists in the queue.
    #[error("no job '{id}' in queue '{queue}'")]
    NoJob {
        /// The queue asked.
        queue: String,
        /// The id asked for.
        id: String,
    },
    /// The job finished without a result: it died or was cancelled.
    #[error("job {id} ended {state}{}", .error.as_deref().map(|e| format!(": {e}")).unwrap_or_default())]
    JobFailed {
        /// The job id.
        id: String,
        /// Its final state (`dead` or `cancelled`).
        state: String,
        /// Its last error, if any.
        error: Option<String>,
    },
    /// Waiting for a job's result took longer than allowed.
    #[error("timed out waiting for job {0}")]
    WaitTimeout(String),
    /// The backend asked for is not available on the server (no module, no Redis Functions), or
    /// its library could not be loaded.
    #[error("{0}")]
    Backend(String),
    /// The job's parents' results are not what was asked for (none, or several where one was
    /// expected).
    #[error("{0}")]
    Parents(String),
    /// A configuration value is not usable (a URL, an option).
    #[error("{0}")]
    Config(String),
}

impl Error {
    /// The server error code (`ERR`, `NOJOB`, …) when the server refused the command.
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Server { code, .. } => Some(code),
            _ => None,
        }
    }

    /// Whether the error is about the connection (worth retrying after a reconnect) rather than
    /// about the command.
    pub fn is_connection(&self) -> bool {
        match self {
            Error::Redis(e) => {
                e.is_io_error()
                    || e.is_connection_dropped()
                    || e.is_timeout()
                    || e.is_unrecoverable_error()
                    || e.code().is_some_and(|c| c == "LOADING" || c == "TRYAGAIN")
            }
            _ => false,
        }
    }

    /// Whether the server does not know the command (a zrq command not available on this server).
    pub fn is_unknown_command(&self) -> bool {
        let text = self.to_string().to_lowercase();
        text.contains("unknown command") || text.contains("function not found")
    }

    /// Turns a Redis error reply into [`Error::Server`], keeping connection errors as they are.
    pub(crate) fn from_redis(e: redis::RedisError) -> Error {
        match e.code() {
            Some(code) if code != "LOADING" && code != "TRYAGAIN" => Error::Server {
                code: code.to_string(),
                message: e.detail().unwrap_or_default().to_string(),
            },
            _ => Error::Redis(e),
        }
    }
}

/// The client's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
