#!/usr/bin/env bash
# Installs QEMU for x86_64 guests (Debian/Ubuntu), used by `cargo xtask run|test`.
set -euo pipefail

if command -v qemu-system-x86_64 >/dev/null 2>&1; then
    echo "qemu-system-x86_64 already installed: $(qemu-system-x86_64 --version | head -n1)"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "error: installing QEMU needs root; run: sudo apt-get install -y qemu-system-x86" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y qemu-system-x86
qemu-system-x86_64 --version | head -n1
