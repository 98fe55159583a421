#!/usr/bin/env bash
# Builds the Linux peer guest for benchmarks from Debian packages: Debian's
# kernel (linux-image-amd64) and a busybox-static initramfs holding the
# virtio-net and igb modules, a static UDP echo server, Debian's nginx (from
# nginx-light) and memcached with the shared libraries ldd finds for them,
# and an init that configures the NICs from the kernel command line:
#   wc.mode=echo|forward|sink|tcp|firewall|nat|lb
#   wc.eth0=ADDR/PREFIX  wc.eth1=ADDR/PREFIX
# wc.mode=tcp runs nginx on port 80 (`/` answers a 20-byte body, as
# examples/http.toml does) and memcached on 11211, one worker or thread per
# vCPU. nginx and memcached are copied from the host's installation (apt
# installs nginx-light and memcached when they are missing and we are root).
# The datacenter appliances (issue 20), as Linux does them: wc.mode=firewall
# loads perf/peers/nftables-firewall.conf (nftables with conntrack),
# wc.mode=nat perf/peers/nftables-nat.conf (conntrack and masquerade), and
# wc.mode=lb sets up IPVS in NAT mode with examples/lb.toml's VIP and
# backends and the Maglev scheduler (ip_vs_mh, hashing address and port).
# nft (Debian's nftables) and ipvsadm are copied with the libraries ldd
# lists; the netfilter and IPVS modules come from the kernel package and are
# loaded, dependencies first, only in those modes. A line `stats` on the
# serial console prints the guest's counters (nft list ruleset, ipvsadm -Ln
# --stats, conntrack) and then `linux-guest stats end`.
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
peers=$(realpath "$(dirname "$0")/../perf/peers")
nginx_conf=$peers/nginx.conf
fresh=1
for input in "$echo_server" "$0" "$nginx_conf" "$peers/nftables-firewall.conf" "$peers/nftables-nat.conf"; do
  [ "$out/initramfs.cpio.gz" -nt "$input" ] || fresh=0
done
if [ -f "$out/bzImage" ] && [ -f "$out/initramfs.cpio.gz" ] && [ "$fresh" = 1 ]; then
  exit 0
fi

need() { command -v "$1" >/dev/null 2>&1 || missing="$missing $2"; }
missing=""
need cpio cpio
need dpkg-deb dpkg
need gzip gzip
need nginx nginx-light
need memcached memcached
need nft nftables
need ipvsadm ipvsadm
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
# nginx, memcached, nft and ipvsadm with every shared library ldd lists, at
# the same paths.
for program in "$(command -v nginx)" "$(command -v memcached)" "$(command -v nft)" \
    "$(command -v ipvsadm)"; do
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
mkdir -p "$root/etc/nftables"
cp "$peers/nftables-firewall.conf" "$root/etc/nftables/firewall.conf"
cp "$peers/nftables-nat.conf" "$root/etc/nftables/nat.conf"
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
: > "$root/modules/netfilter.order"
order=igb.order
add_module() {
  local name=$1 source dependency
  grep -qx "$name" "$root/modules/$order" && return 0
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
  echo "$name" >> "$root/modules/$order"
}
add_module igb
# nftables with conntrack, NAT, masquerade and reject, and IPVS with the
# Maglev (mh) and round-robin schedulers, in netfilter.order.
order=netfilter.order
# libcrc32c asks the crypto API for crc32c at load (a soft dependency,
# not in `depends`): crc32c_generic first.
for module in crc32c_generic nf_tables nf_conntrack nf_nat nft_ct nft_chain_nat nft_nat nft_masq \
    nf_reject_ipv4 nft_reject nft_reject_ipv4 ip_vs ip_vs_rr ip_vs_mh; do
  add_module "$module"
done

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
load_netfilter() {
  # A hash table as large as warpcore's flow tables (65 536), and room
  # for every flow a benchmark opens.
  for module in $(cat /modules/netfilter.order); do
    case "$module" in
      nf_conntrack) options="hashsize=65536" ;;
      ip_vs) options="conn_tab_bits=16" ;;
      *) options="" ;;
    esac
    insmod /modules/$module.ko $options || echo "linux-guest: insmod $module failed"
  done
  echo 262144 > /proc/sys/net/netfilter/nf_conntrack_max
  echo 1 > /proc/sys/net/ipv4/ip_forward
}
stats() {
  echo "linux-guest stats begin"
  nft list ruleset
  ipvsadm -Ln --stats 2>/dev/null
  echo "conntrack entries: $(cat /proc/sys/net/netfilter/nf_conntrack_count 2>/dev/null)"
  cat /proc/net/stat/nf_conntrack 2>/dev/null | head -n 2
  cat /proc/net/dev
  echo "linux-guest stats end"
}
case "$mode" in
  echo) udp-echo-server --port 7 >/dev/null & ;;
  forward) echo 1 > /proc/sys/net/ipv4/ip_forward ;;
  sink) ;;
  tcp) cpus=$(grep -c ^processor /proc/cpuinfo)
       nginx -c /etc/nginx/nginx.conf -g "worker_processes $cpus;" &
       memcached -u root -p 11211 -U 0 -m 64 -c 4096 -t "$cpus" &
       sleep 1 ;;
  firewall) load_netfilter
            nft -f /etc/nftables/firewall.conf || echo "linux-guest: nft firewall failed" ;;
  nat) load_netfilter
       nft -f /etc/nftables/nat.conf || echo "linux-guest: nft nat failed" ;;
  lb) load_netfilter
      # examples/lb.toml: VIP 10.0.2.100:80 (TCP and UDP) over three
      # backends, NAT mode (-m), Maglev hashing of the client's address
      # and port (mh with mh-port; rr when mh is missing).
      ip addr add 10.0.2.100/32 dev lo
      for protocol in -t -u; do
        ipvsadm -A $protocol 10.0.2.100:80 -s mh -b mh-port \
          || ipvsadm -A $protocol 10.0.2.100:80 -s rr
        for backend in 10.0.2.2 10.0.2.3 10.0.2.4; do
          ipvsadm -a $protocol 10.0.2.100:80 -r $backend:8000 -m
        done
      done
      ipvsadm -Ln ;;
esac
echo "linux-guest ready mode=$mode"
while read -r line; do
  case "$line" in
    stats) stats ;;
  esac
done
while true; do sleep 3600; done
INIT
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) > "$out/initramfs.cpio.gz"
echo "build-linux-guest: $out/bzImage ($kernel_package) and $out/initramfs.cpio.gz"
