# Sourced by scripts/test, scripts/demo and scripts/server: makes sure what building and running zrq
# needs is there. On a fresh Debian 12 machine, run as root, it installs what is missing
# (redis-server, and libclang, which the module's bindings are generated with); elsewhere it names
# what to install and exits. Needs Rust (cargo) already.

# The directories searched for libclang, in order. LIBCLANG_PATH, when set, is the only one, as for
# bindgen (clang-sys searches nothing else then). ZRQ_LIBCLANG_DIRS overrides the list (tests).
zrq_libclang_dirs() {
    if [ -n "${ZRQ_LIBCLANG_DIRS:-}" ]; then
        printf '%s\n' $ZRQ_LIBCLANG_DIRS
    elif [ -n "${LIBCLANG_PATH:-}" ]; then
        printf '%s\n' "$LIBCLANG_PATH"
    else
        local multiarch
        multiarch="$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)"
        printf '%s\n' /usr/lib/llvm-*/lib "/usr/lib/$multiarch" /usr/lib /usr/local/lib
    fi
}

# Prints the first directory holding a library that bindgen (clang-sys) would load, and fails if
# there is none. It matches what clang-sys matches at build time: `libclang.so`, `libclang-*.so`,
# `libclang.so.*`, `libclang-*.so.*`, skipping `libclang-cpp.*` (the C++ library that every fresh
# Debian machine has in /usr/lib/llvm-14/lib, which is not the one bindgen needs).
zrq_libclang_dir() {
    local dir file name
    while IFS= read -r dir; do
        [ -d "$dir" ] || continue
        for file in "$dir"/libclang.so "$dir"/libclang-*.so "$dir"/libclang.so.* "$dir"/libclang-*.so.*; do
            [ -e "$file" ] || continue
            name="${file##*/}"
            case "$name" in *-cpp.*) continue ;; esac
            printf '%s\n' "$dir"
            return 0
        done
    done < <(zrq_libclang_dirs)
    return 1
}

# Prints the Debian packages that are missing, one per line. With ZRQ_WITH_PYTHON set (scripts/test),
# also Python 3 with venv, which the Python package's checks run in (clients/python/check).
zrq_missing_packages() {
    command -v redis-server >/dev/null 2>&1 || echo redis-server
    zrq_libclang_dir >/dev/null || printf '%s\n' libclang-14-dev libclang-common-14-dev
    if [ -n "${ZRQ_WITH_PYTHON:-}" ]; then
        command -v python3 >/dev/null 2>&1 || echo python3
        python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || echo python3-venv
    fi
    # With ZRQ_WITH_BROWSER set (scripts/test), what the dashboard's browser tests run
    # (cli/tests/browser.rs): the very binary they start, /usr/bin/chromium, and chromedriver.
    if [ -n "${ZRQ_WITH_BROWSER:-}" ]; then
        [ -x /usr/bin/chromium ] || echo chromium
        command -v chromedriver >/dev/null 2>&1 || echo chromium-driver
    fi
}

zrq_prerequisites() {
    local script="$1"
    local need_apt
    mapfile -t need_apt < <(zrq_missing_packages)
    if [ "${#need_apt[@]}" -gt 0 ]; then
        if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
            echo "$script: installing ${need_apt[*]}"
            export DEBIAN_FRONTEND=noninteractive
            apt-get update -qq
            apt-get install -y -qq --no-install-recommends "${need_apt[@]}" </dev/null
        else
            echo "$script: missing ${need_apt[*]}; install them (Debian: apt-get install ${need_apt[*]})" >&2
            exit 1
        fi
    fi
    if ! command -v cargo >/dev/null 2>&1; then
        echo "$script: cargo is missing; install Rust from https://rustup.rs" >&2
        exit 1
    fi
    # Point bindgen at the very directory checked above, so the build loads what was found.
    local libclang
    if ! libclang="$(zrq_libclang_dir)"; then
        echo "$script: no libclang that bindgen can load (libclang.so or libclang-*.so*) in: $(zrq_libclang_dirs | tr '\n' ' ')" >&2
        exit 1
    fi
    export LIBCLANG_PATH="$libclang"
}
