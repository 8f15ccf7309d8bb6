//! Generates the library's constants from zrq-core (src/generate.rs, written to
//! `OUT_DIR/core.lua`) and derives the library version from the library's own text, so every
//! change to the Lua sources or to a generated constant changes the version a client compares
//! (and no one has to remember to bump it).

use std::fs;
use std::path::Path;

#[path = "src/generate.rs"]
mod generate;

/// FNV-1a, 64 bits: a stable fingerprint with no dependencies.
fn fnv1a(bytes: &[u8], mut hash: u64) -> u64 {
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

fn main() {
    let dir = Path::new("src/lua");
    println!("cargo:rerun-if-changed=src/lua");
    println!("cargo:rerun-if-changed=src/generate.rs");
    let mut files: Vec<_> = fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.sort();
    let mut hash = 0xcbf2_9ce4_8422_2325;
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
        hash = fnv1a(&fs::read(file).unwrap_or_default(), hash);
    }
    // The constants generated from zrq-core are part of the library text. (A change to zrq-core
    // rebuilds this script, a build dependency, and so runs it again.)
    let core = generate::core_lua();
    hash = fnv1a(core.as_bytes(), hash);
    let out = std::env::var("OUT_DIR").unwrap_or_default();
    if let Err(e) = fs::write(Path::new(&out).join("core.lua"), &core) {
        println!("cargo:warning=cannot write {out}/core.lua: {e}");
        std::process::exit(1);
    }
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    println!(
        "cargo:rustc-env=ZRQ_LUA_VERSION={version}+{:08x}",
        hash >> 32
    );
}
