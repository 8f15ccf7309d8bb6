//! What the `zrq` binary's tests share.

use std::path::PathBuf;

/// The `zrq` binary of this crate.
pub fn cli() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_zrq"))
}
