#!/usr/bin/env bash
# Installs the three compilers that build the Wasm examples
# (examples/wasm/{rust,c,assemblyscript}), used by `cargo xtask wasm-examples`
# and `cargo xtask test`:
#
#   Rust            rustup's wasm32-unknown-unknown target (rust-toolchain.toml
#                   lists it, so a fresh rustup install brings it too)
#   C               Debian's clang and lld (clang --target=wasm32 links with wasm-ld)
#   AssemblyScript  npm's assemblyscript, the exact version pinned in
#                   wasm/toolchain/package.json and package-lock.json, into
#                   wasm/toolchain/node_modules (project-local; nothing global)
#
# Each part is skipped when already present; apt-get needs root.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
toolchain="$root/wasm/toolchain"
# rustup reads rust-toolchain.toml from the working directory.
cd "$root"

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
    rustup target add wasm32-unknown-unknown
fi
echo "rust: wasm32-unknown-unknown installed ($(rustc --version))"

if ! command -v clang >/dev/null 2>&1 || ! command -v wasm-ld >/dev/null 2>&1; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "error: clang and lld are missing and installing them needs root: run sudo $0" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends clang lld
fi
echo "c: $(clang --version | head -n1), wasm-ld $(wasm-ld --version | head -n1)"

if ! command -v npm >/dev/null 2>&1; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "error: npm is missing and installing it needs root: run sudo $0" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends nodejs npm
fi
want="$(sed -n 's/.*"assemblyscript": "\([^"]*\)".*/\1/p' "$toolchain/package.json")"
have="$(sed -n 's/.*"version": "\([^"]*\)".*/\1/p' \
    "$toolchain/node_modules/assemblyscript/package.json" 2>/dev/null | head -n1 || true)"
if [ "$have" != "$want" ]; then
    (cd "$toolchain" && npm ci --no-audit --no-fund)
fi
echo "assemblyscript: $("$toolchain/node_modules/.bin/asc" --version)"
