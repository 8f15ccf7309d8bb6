//! The zrq Redis Functions library (`#!lua name=zrq`), as text ready for `FUNCTION LOAD REPLACE`.
//!
//! For servers that cannot load the zrq module: every `ZRQ.<CMD> <queue> <args…>` is
//! `FCALL zrq_<cmd> 1 <queue> <args…>`, over the same keys, with the same replies and error texts.
//! The sources live in `src/lua/` (a header, the shared helpers, one file per command); this crate
//! concatenates them at compile time into the one library text. See `docs/LUA.md`.

/// The library version as a literal, so it can be spliced into the library text by `concat!`:
/// the crate version and a fingerprint of the Lua sources (computed by `build.rs`), so any change
/// to the library text gives a new version.
macro_rules! version {
    () => {
        env!("ZRQ_LUA_VERSION")
    };
}

/// The library version: `FCALL zrq_version 0` returns it. A client that finds another version
/// loaded replaces the library.
pub const VERSION: &str = version!();

/// The library name given in its `#!lua name=` line (`FUNCTION DELETE zrq` removes it).
pub const LIBRARY_NAME: &str = "zrq";

const LIBRARY: &str = concat!(
    include_str!("lua/00_header.lua"),
    "\nlocal VERSION = '",
    version!(),
    "'\n\n",
    include_str!("lua/10_helpers.lua"),
    "\n",
    include_str!("lua/20_enqueue.lua"),
    "\n",
    include_str!("lua/21_fetch.lua"),
    "\n",
    include_str!("lua/22_ack.lua"),
    "\n",
    include_str!("lua/23_state.lua"),
    "\n",
    include_str!("lua/24_job.lua"),
    "\n",
    include_str!("lua/25_reclaim.lua"),
    "\n",
    include_str!("lua/26_lifecycle.lua"),
    "\n",
    include_str!("lua/27_schedules.lua"),
    "\n",
    include_str!("lua/90_version.lua"),
);

/// The library source.
pub fn library() -> &'static str {
    LIBRARY
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_starts_with_its_shebang_and_carries_the_version() {
        assert!(library().starts_with("#!lua name=zrq\n"));
        assert!(library().contains(&format!("local VERSION = '{VERSION}'")));
    }
}
