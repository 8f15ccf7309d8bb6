//! `scripts/lib/prerequisites.sh` decides what a fresh machine must install. Its libclang check
//! must look for the library bindgen loads (`libclang.so`, `libclang-*.so*`), not a neighbour:
//! every fresh Debian 12 machine has `/usr/lib/llvm-14/lib/libclang-cpp.so.14`, which is not it.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs `snippet` in bash after sourcing the prerequisites script, with `ZRQ_LIBCLANG_DIRS` set to
/// `dirs`; returns (exit code, stdout).
fn run_check(dirs: &[&Path], snippet: &str) -> (i32, String) {
    let joined = dirs
        .iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(" ");
    let output = Command::new("bash")
        .arg("-c")
        .arg(format!("source scripts/lib/prerequisites.sh; {snippet}"))
        .current_dir(repo_root())
        .env("ZRQ_LIBCLANG_DIRS", joined)
        .env_remove("LIBCLANG_PATH")
        .output()
        .expect("run bash");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

/// A library directory holding exactly these (empty) files.
fn fake_lib_dir(files: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for file in files {
        std::fs::write(dir.path().join(file), b"").expect("write fake library");
    }
    dir
}

#[test]
fn libclang_check_matches_what_bindgen_loads() {
    // (files in the directory, whether bindgen would find libclang there)
    let cases: &[(&[&str], bool)] = &[
        (&[], false),
        // A fresh Debian 12 machine: only the C++ library. This is the case that broke the quick start.
        (&["libclang-cpp.so.14"], false),
        (&["libclang-cpp.so.14", "libclang-cpp.so"], false),
        (&["libLLVM-14.so.1", "libclangBasic.a"], false),
        // What libclang1-14 and libclang-14-dev install.
        (&["libclang-cpp.so.14", "libclang-14.so.1"], true),
        (&["libclang.so.1"], true),
        (&["libclang.so"], true),
        (&["libclang-14.so"], true),
    ];
    for (files, found) in cases {
        let dir = fake_lib_dir(files);
        let (code, stdout) = run_check(&[dir.path()], "zrq_libclang_dir");
        assert_eq!(
            code == 0,
            *found,
            "files {files:?}: exit {code}, stdout {stdout:?}"
        );
        if *found {
            assert_eq!(
                stdout.trim(),
                dir.path().display().to_string(),
                "files {files:?}"
            );
        }
    }
}

#[test]
fn a_machine_with_only_libclang_cpp_decides_to_install_libclang() {
    let only_cpp = fake_lib_dir(&["libclang-cpp.so.14"]);
    let (_, missing) = run_check(&[only_cpp.path()], "zrq_missing_packages");
    assert!(
        missing.lines().any(|p| p == "libclang-14-dev"),
        "must install libclang-14-dev, decided: {missing:?}"
    );

    let installed = fake_lib_dir(&["libclang-cpp.so.14", "libclang-14.so.1", "libclang.so"]);
    let (_, missing) = run_check(&[only_cpp.path(), installed.path()], "zrq_missing_packages");
    assert!(
        !missing.lines().any(|p| p.starts_with("libclang")),
        "libclang is there, decided: {missing:?}"
    );
}

#[test]
fn the_build_is_pointed_at_the_directory_that_was_checked() {
    let installed = fake_lib_dir(&["libclang-14.so.1"]);
    let (code, stdout) = run_check(
        &[installed.path()],
        // redis-server and cargo are on this machine (the tests run under cargo, against Redis).
        "zrq_prerequisites test >/dev/null && echo \"$LIBCLANG_PATH\"",
    );
    assert_eq!(code, 0);
    assert_eq!(stdout.trim(), installed.path().display().to_string());
}
