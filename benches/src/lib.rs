//! Benchmark support for zrq: a `redis-server` of the harness's own, a lean RESP client for the
//! measuring loops, and the result format the plot is drawn from.

pub mod resp;
pub mod server;

use serde::{Deserialize, Serialize};

/// One measured figure.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Measure {
    /// What was measured (`enqueue`, `drain`, `latency`, `memory`, `scale_workers`, `scale_depth`).
    pub bench: String,
    /// `module`, `lua` or `xadd`.
    pub backend: String,
    /// The varied parameter (in-flight commands, worker processes, queue depth…), 0 if none.
    pub param: u64,
    /// Operations measured.
    pub n: u64,
    /// Seconds taken (0 if not a timing).
    pub seconds: f64,
    /// The figure: operations per second, microseconds or bytes per job (see `unit`).
    pub value: f64,
    /// Unit of `value`.
    pub unit: String,
    /// Free text (how it was measured).
    pub note: String,
}

/// A whole run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Report {
    /// When and where: `date`, `uname`, CPU, load average at start and end.
    pub machine: Vec<(String, String)>,
    /// Every figure.
    pub measures: Vec<Measure>,
    /// Derived ratios: (name, value).
    pub ratios: Vec<(String, f64)>,
}

impl Report {
    /// The first measure matching `bench`, `backend` and `param`.
    pub fn find(&self, bench: &str, backend: &str, param: u64) -> Option<&Measure> {
        self.measures
            .iter()
            .find(|m| m.bench == bench && m.backend == backend && m.param == param)
    }
}
