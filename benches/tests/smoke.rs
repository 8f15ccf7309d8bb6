//! The harness still runs end to end (no timing is asserted): a `--quick` run of some sections
//! against the debug module, checking that it measured something and wrote its JSON.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::Command;

use zrq_benches::Report;

#[test]
fn quick_run_measures_and_writes_json() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let module = std::env::var_os("ZRQ_MODULE")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/debug/libzrq.so"));
    assert!(
        module.exists(),
        "{} is missing: cargo build -p zrq-module",
        module.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("out.json");
    let status = Command::new(env!("CARGO_BIN_EXE_throughput"))
        .args(["--quick", "--only", "enqueue,memory", "--json"])
        .arg(&json)
        .env("ZRQ_MODULE", &module)
        .status()
        .expect("run the harness");
    assert!(status.success());
    let report: Report = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    for backend in ["module", "lua", "xadd"] {
        let m = report
            .find("enqueue", backend, 16)
            .expect("an enqueue figure");
        assert!(m.n > 0 && m.value > 0.0, "{m:?}");
    }
    assert!(report.measures.iter().any(|m| m.bench == "memory_queued"));
    assert!(report
        .ratios
        .iter()
        .any(|(name, _)| name.starts_with("enqueue module/xadd")));

    let svg = dir.path().join("plot.svg");
    let status = Command::new(env!("CARGO_BIN_EXE_plot"))
        .arg(&json)
        .arg(&svg)
        .status()
        .expect("run the plot");
    assert!(status.success());
    assert!(std::fs::read_to_string(&svg).unwrap().starts_with("<svg"));
}
