#!/usr/bin/env bash
# Installs QEMU for x86_64 guests, used by `cargo xtask run|test|bench`.
#
#   install-qemu.sh [10]   QEMU 10.0, the default: Debian's qemu-system-x86 from
#                          bookworm-backports on bookworm (the suite is added for
#                          the QEMU packages only, pinned in apt preferences so
#                          nothing else is upgraded), the distribution's own
#                          package elsewhere (trixie has 10.0).
#   install-qemu.sh 7.2    QEMU 7.2 beside it, for comparisons and for the kernel
#                          scenarios on the oldest QEMU we support: bookworm's
#                          packages unpacked into /opt/warpcore/qemu-7.2 (not
#                          installed through dpkg, so both can be present), run
#                          through /opt/warpcore/qemu-7.2/bin/qemu-system-x86_64,
#                          which loads the firmware of its own release.
#                          xtask boots it when WARPCORE_QEMU names that path.
set -euo pipefail

version="${1:-10}"
prefix72=/opt/warpcore/qemu-7.2
backports_list=/etc/apt/sources.list.d/warpcore-bookworm-backports.sources
pin_file=/etc/apt/preferences.d/warpcore-qemu
# The QEMU family and its firmware: taken from backports together, because
# qemu-system-x86 10.0 wants qemu-system-common/-data of its exact version and
# seabios >> 1.16.3.
pinned_packages="qemu-system-x86 qemu-system-common qemu-system-data qemu-system-gui qemu-system-modules-* qemu-block-extra qemu-utils seabios"

codename() {
    # shellcheck disable=SC1091
    (. /etc/os-release && echo "${VERSION_CODENAME:-}")
}

need_root() {
    if [ "$(id -u)" -ne 0 ]; then
        echo "error: installing QEMU $version needs root: run sudo $0 $version" >&2
        exit 1
    fi
}

major_of() {
    "$1" --version 2>/dev/null | sed -n '1s/^QEMU emulator version \([0-9]*\)\..*/\1/p'
}

install_10() {
    if command -v qemu-system-x86_64 >/dev/null 2>&1 &&
        [ "$(major_of qemu-system-x86_64)" -ge 10 ] 2>/dev/null; then
        echo "qemu-system-x86_64 already installed: $(qemu-system-x86_64 --version | head -n1)"
        return
    fi
    need_root
    export DEBIAN_FRONTEND=noninteractive
    if [ "$(codename)" = bookworm ]; then
        if ! grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
            cat >"$backports_list" <<'EOF'
# Added by warpcore's scripts/install-qemu.sh for QEMU 10.0; see /etc/apt/preferences.d/warpcore-qemu.
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
        fi
        cat >"$pin_file" <<EOF
# Added by warpcore's scripts/install-qemu.sh: QEMU 10.0 and its firmware from
# bookworm-backports, every other package stays on bookworm.
Package: $pinned_packages
Pin: release n=bookworm-backports
Pin-Priority: 990

Package: *
Pin: release n=bookworm-backports
Pin-Priority: 100
EOF
    fi
    apt-get update
    apt-get install -y --no-install-recommends qemu-system-x86
    local major
    major="$(major_of qemu-system-x86_64)"
    qemu-system-x86_64 --version | head -n1
    if [ "${major:-0}" -lt 10 ]; then
        echo "error: this distribution's qemu-system-x86 is QEMU $major, not 10; install QEMU 10 by hand" >&2
        exit 1
    fi
}

install_72() {
    local binary="$prefix72/bin/qemu-system-x86_64"
    if [ -x "$binary" ] && [ "$(major_of "$binary")" = 7 ]; then
        echo "$binary already installed: $("$binary" --version | head -n1)"
        return
    fi
    need_root
    if [ "$(codename)" != bookworm ]; then
        echo "error: QEMU 7.2 comes from Debian bookworm's packages; this is $(codename)" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    # Its shared libraries are those of QEMU 10.0 (same distribution): install them.
    command -v qemu-system-x86_64 >/dev/null 2>&1 || install_10
    local work version_72 seabios_72
    work="$(mktemp -d)"
    chown _apt "$work" 2>/dev/null || true # apt-get download runs as _apt
    trap 'rm -rf "$work"' RETURN
    version_72="$(apt-cache madison qemu-system-x86 | awk '$3 ~ /^1:7\.2/ && /bookworm\/main/ {print $3; exit}')"
    seabios_72="$(apt-cache madison seabios | awk '/bookworm\/main/ && !/backports/ {print $3; exit}')"
    if [ -z "$version_72" ] || [ -z "$seabios_72" ]; then
        echo "error: bookworm's qemu-system-x86 7.2 or seabios not found by apt-cache madison" >&2
        exit 1
    fi
    local data_version
    data_version="$(apt-cache madison qemu-system-data | awk '$3 ~ /^1:7\.2/ && /bookworm\/main/ {print $3; exit}')"
    # qemu-system-common has the TCG accelerator module (accel-tcg-x86_64.so).
    (cd "$work" && apt-get download "qemu-system-x86=$version_72" \
        "qemu-system-common=$version_72" "qemu-system-data=$data_version" "seabios=$seabios_72")
    rm -rf "$prefix72"
    mkdir -p "$prefix72/bin"
    for deb in "$work"/*.deb; do
        dpkg-deb -x "$deb" "$prefix72"
    done
    # QEMU finds its firmware and modules relative to its own executable
    # (../share/qemu, ../share/seabios: see `-L help`; ../lib/x86_64-linux-gnu/qemu),
    # so the unpacked tree loads those of its own release, not the system's (QEMU 10's).
    ln -sfn ../usr/bin/qemu-system-x86_64 "$binary"
    "$binary" --version | head -n1
}

case "$version" in
10) install_10 ;;
7.2) install_72 ;;
*)
    echo "usage: $0 [10|7.2]" >&2
    exit 2
    ;;
esac
