# Sourced by scripts/test and scripts/demo: makes sure what building and running zrq needs is
# there. On a fresh Debian 12 machine, run as root, it installs what is missing (redis-server,
# and libclang, which the module's bindings are generated with); elsewhere it names what to
# install and exits. Needs Rust (cargo) already.

zrq_prerequisites() {
    local script="$1"
    local need_apt=()
    command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
    # bindgen (used by the redis-module crate) loads libclang at build time.
    compgen -G "/usr/lib/llvm-14/lib/libclang*.so*" >/dev/null || need_apt+=(libclang-common-14-dev libclang-14-dev)
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
    # bindgen finds libclang through this when it is not on the default library path.
    if [ -z "${LIBCLANG_PATH:-}" ] && [ -d /usr/lib/llvm-14/lib ]; then
        export LIBCLANG_PATH=/usr/lib/llvm-14/lib
    fi
}
