//! Derives the library version from the library's own text, so every change to the Lua sources
//! changes the version a client compares (and no one has to remember to bump it).

use std::fs;
use std::path::Path;

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
    let mut files: Vec<_> = fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.sort();
    // The config defaults are generated into the library text (src/lib.rs): they are part of it.
    files.push(Path::new("../core/src/config.rs").to_path_buf());
    let mut hash = 0xcbf2_9ce4_8422_2325;
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
        hash = fnv1a(&fs::read(file).unwrap_or_default(), hash);
    }
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    println!(
        "cargo:rustc-env=ZRQ_LUA_VERSION={version}+{:08x}",
        hash >> 32
    );
}
