#!/usr/bin/env bash
# Builds the Linux peer guest for benchmarks from Debian packages: Debian's
# kernel (linux-image-amd64) and a busybox-static initramfs holding the
# virtio-net and igb modules, a static UDP echo server, Debian's nginx (from
# nginx-light) and memcached with the shared libraries ldd finds for them,
# and an init that configures the NICs from the kernel command line:
#   wc.mode=echo|forward|sink|tcp  wc.eth0=ADDR/PREFIX  wc.eth1=ADDR/PREFIX
# wc.mode=tcp runs nginx on port 80 (`/` answers a 20-byte body, as
# examples/http.toml does) and memcached on 11211, one worker or thread per
# vCPU. nginx and memcached are copied from the host's installation (apt
# installs nginx-light and memcached when they are missing and we are root).
# Output (cached; rebuilt when the echo server is newer): OUT/bzImage and
# OUT/initramfs.cpio.gz.
#
# usage: build-linux-guest.sh OUT ECHO_SERVER_BINARY
set -euo pipefail
out=${1:?usage: build-linux-guest.sh OUT ECHO_SERVER_BINARY}
echo_server=${2:?usage: build-linux-guest.sh OUT ECHO_SERVER_BINARY}
[ -x "$echo_server" ] || { echo "build-linux-guest: $echo_server is not an executable" >&2; exit 2; }
mkdir -p "$out"
out=$(cd "$out" && pwd)
echo_server=$(realpath "$echo_server")
nginx_conf=$(realpath "$(dirname "$0")/../perf/peers/nginx.conf")
if [ -f "$out/bzImage" ] && [ -f "$out/initramfs.cpio.gz" ] && [ "$out/initramfs.cpio.gz" -nt "$echo_server" ] \
    && [ "$out/initramfs.cpio.gz" -nt "$0" ] && [ "$out/initramfs.cpio.gz" -nt "$nginx_conf" ]; then
  exit 0
fi

need() { command -v "$1" >/dev/null 2>&1 || missing="$missing $2"; }
missing=""
need cpio cpio
need dpkg-deb dpkg
need gzip gzip
need nginx nginx-light
need memcached memcached
if [ -n "$missing" ]; then
  [ "$(id -u)" = 0 ] || { echo "build-linux-guest: install:$missing" >&2; exit 2; }
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$out" "$work/debs" "$work/root"
cd "$work/debs"
download() { apt-get download "$@" >/dev/null 2>&1 || { apt-get update -qq && apt-get download "$@" >/dev/null; }; }
kernel_package=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
if [ -z "$kernel_package" ]; then
  apt-get update -qq
  kernel_package=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
fi
[ -n "$kernel_package" ] || { echo "build-linux-guest: cannot find Debian's linux-image-amd64" >&2; exit 2; }
download "$kernel_package" busybox-static
for deb in *.deb; do dpkg-deb -x "$deb" "$work/extract"; done

cp "$work"/extract/boot/vmlinuz-* "$out/bzImage"
modules=$(echo "$work"/extract/lib/modules/*/kernel)
root="$work/root"
mkdir -p "$root"/{bin,dev,proc,sys,modules}
cp "$work/extract/bin/busybox" "$root/bin/busybox"
cp "$echo_server" "$root/bin/udp-echo-server"
# nginx and memcached with every shared library ldd lists, at the same paths.
for program in "$(command -v nginx)" "$(command -v memcached)"; do
  cp "$program" "$root/bin/"
  for library in $(ldd "$program" | grep -o '/[^ ]*'); do
    mkdir -p "$root$(dirname "$library")"
    cp -L "$library" "$root$library"
  done
done
mkdir -p "$root"/{etc/nginx,tmp,var/log/nginx}
printf 'root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$root/etc/group"
cp "$nginx_conf" "$root/etc/nginx/nginx.conf"
for module in drivers/virtio/virtio drivers/virtio/virtio_ring drivers/virtio/virtio_pci_modern_dev \
    drivers/virtio/virtio_pci_legacy_dev drivers/virtio/virtio_pci net/core/failover \
    drivers/net/net_failover drivers/net/virtio_net; do
  source=$(ls "$modules/$module.ko"* | head -n 1)
  case "$source" in
    *.xz) xz -dc "$source" > "$root/modules/$(basename "$module").ko" ;;
    *) cp "$source" "$root/modules/" ;;
  esac
done

# Linux's igb (QEMU's -device igb) and the modules it needs, dependencies
# first, found through each module's own `depends` field (the package ships
# no modules.dep, and kmod's modinfo need not be installed); the init loads
# them in that order.
: > "$root/modules/igb.order"
add_module() {
  local name=$1 source dependency
  grep -qx "$name" "$root/modules/igb.order" && return 0
  source=$(find "$modules" -name "$name.ko*" | head -n 1)
  [ -n "$source" ] || { echo "build-linux-guest: no module $name" >&2; return 1; }
  case "$source" in
    *.xz) xz -dc "$source" > "$work/$name.ko" ;;
    *) cp "$source" "$work/$name.ko" ;;
  esac
  # The .modinfo section holds `depends=a,b` as a NUL-terminated string.
  for dependency in $(grep -a -o -m 1 'depends=[a-z0-9_,-]*' "$work/$name.ko" | head -n 1 \
      | sed 's/^depends=//' | tr ',' ' '); do
    add_module "$(echo "$dependency" | tr '-' '_')" || add_module "$dependency"
  done
  cp "$work/$name.ko" "$root/modules/$name.ko"
  echo "$name" >> "$root/modules/igb.order"
}
add_module igb

cat > "$root/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for module in virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci failover net_failover virtio_net; do
  insmod /modules/$module.ko || echo "linux-guest: insmod $module failed"
done
for module in $(cat /modules/igb.order); do
  insmod /modules/$module.ko || echo "linux-guest: insmod $module failed"
done
mode=echo
for word in $(cat /proc/cmdline); do
  case "$word" in
    wc.mode=*) mode=${word#wc.mode=} ;;
    wc.eth*=*) name=${word%%=*}; name=${name#wc.}; address=${word#*=}
               ip addr add "$address" dev "$name" && ip link set "$name" up ;;
  esac
done
ip link set lo up
case "$mode" in
  echo) udp-echo-server --port 7 >/dev/null & ;;
  forward) echo 1 > /proc/sys/net/ipv4/ip_forward ;;
  sink) ;;
  tcp) cpus=$(grep -c ^processor /proc/cpuinfo)
       nginx -c /etc/nginx/nginx.conf -g "worker_processes $cpus;" &
       memcached -u root -p 11211 -U 0 -m 64 -c 4096 -t "$cpus" &
       sleep 1 ;;
esac
echo "linux-guest ready mode=$mode"
while true; do sleep 3600; done
INIT
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) > "$out/initramfs.cpio.gz"
echo "build-linux-guest: $out/bzImage ($kernel_package) and $out/initramfs.cpio.gz"
