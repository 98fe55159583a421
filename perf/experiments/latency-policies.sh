#!/usr/bin/env bash
# The experiments behind perf/RESULTS.md, "p99 at half the Linux guest's
# peak: what sets it": boots warpcore (perf/specs/tcp.toml as the bench
# writes it, or $SPEC) or the Linux peer guest ONCE under the bench's QEMU
# command line on a tap in a fresh namespace, then runs tcp-load at RATE
# once per VARIANT with that variant's host scheduling policy, printing
# tcp-load's percentiles and, per QEMU thread that ran over 20 ms, its
# run time, run-queue wait and switches (/proc/PID/task/TID/schedstat).
# Not part of `cargo xtask bench`; build first (the bench does), run as
# root under the build lock:
#   flock /tmp/warpcore-build.lock perf/experiments/latency-policies.sh warpcore 2000 \
#     "name=warm dur=3" "name=base1 dur=3" "name=rt1 dur=3 rt=1 crt=1"
# VARIANT is shell assignments, unset between variants:
#   name=LABEL dur=SECONDS (5) conns=N (16) r=RATE (overrides RATE; 0 closed loop)
#   qemu_pin=CPUS      every QEMU thread on CPUS (taskset)
#   vcpu_pin=CPU main_pin=CPU   the vCPU thread on one, the others on the other
#   client=CPUS        tcp-load on CPUS
#   nice=N             QEMU's threads at nice N
#   rt=P / crt=P       QEMU's threads / tcp-load under SCHED_FIFO priority P
#   slice=NS           QEMU's threads and tcp-load with an EEVDF slice of NS
#                      (sched-slice.py; no more CPU, earlier wake-up preemption)
#   cap=1              tcpdump (or dumpcap) on the tap; prints the tap-to-tap
#                      (QEMU + guest) percentiles (tap-latency.py) and, joined
#                      with tcp-load's --trace, each request's time split into
#                      client lateness, host out, QEMU + guest, host back, with
#                      TCP's retransmissions, dup ACKs and window updates
#                      (request-path.py)
#   psched=1           `perf sched record` during the run
#   extra=ARGS         more tcp-load arguments
# Environment: SETTLE (seconds after listening, 1), TCGOPT (-accel ...),
# SPEC (warpcore's spec), APPEND (warpcore's command line), OUT (files, /tmp/p99),
# NETOPT (more virtio-net-pci options; the bench's `,in_order=on` by default).
# For warpcore, each variant also prints the appliance's own counters over
# the run (serial `c` dumps before and after): packets, sleeps, wake-ups by
# cause, TCP retransmissions.
set -u
sys=$1; rate=$2; shift 2
W=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${OUT:-/tmp/p99}; mkdir -p "$OUT"
here=$(cd "$(dirname "$0")" && pwd)
if [ -z "${SPEC:-}" ]; then
  SPEC=$OUT/tcp.toml
  sed 's/^queues = .*/queues = 1/' "$W/perf/specs/tcp.toml" > "$SPEC"
fi
ns=p99ns$$; tap=p99t$$
ip netns add $ns; ip -n $ns link set lo up
ip netns exec $ns sysctl -q -w net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
ip -n $ns tuntap add dev $tap mode tap
ip -n $ns addr add 10.0.0.1/24 dev $tap; ip -n $ns link set $tap up
rm -f $OUT/serial.in $OUT/serial.out; mkfifo $OUT/serial.in $OUT/serial.out
common="-M q35 -m 512 -smp 1 ${TCGOPT:--accel tcg,thread=multi} -device isa-debug-exit,iobase=0xf4,iosize=0x04 -no-reboot -display none -nic none -serial pipe:$OUT/serial -monitor none -name $sys,debug-threads=on"
net="-netdev tap,id=net0,ifname=$tap,script=no,downscript=no,vhost=off -device virtio-net-pci,netdev=net0,mac=02:00:00:00:00:01,romfile=${NETOPT-,in_order=on}"
if [ $sys = warpcore ]; then
  ip netns exec $ns qemu-system-x86_64 $common -kernel $W/target/x86_64-unknown-none/release/kernel ${APPEND:+-append "$APPEND"} -initrd $SPEC $net </dev/null &
else
  ip netns exec $ns qemu-system-x86_64 $common -kernel $W/target/linux-guest/bzImage -append "console=ttyS0 quiet wc.mode=tcp wc.eth0=10.0.0.2/24" -initrd $W/target/linux-guest/initramfs.cpio.gz $net </dev/null &
fi
qpid=$!
cat $OUT/serial.out > $OUT/serial-$sys.log & catpid=$!
exec 7>$OUT/serial.in
cleanup() { kill $qpid 2>/dev/null; wait $qpid 2>/dev/null; kill $catpid 2>/dev/null; ip -n $ns link del $tap 2>/dev/null; ip netns del $ns; }
# The appliance's counters now (warpcore only), as `name value` lines.
dump() {
  [ $sys = warpcore ] || return 0
  local before; before=$(wc -c < $OUT/serial-$sys.log)
  printf c >&7
  for i in $(seq 1 50); do tail -c +$((before + 1)) $OUT/serial-$sys.log | grep -q 'counters end' && break; sleep 0.1; done
  tail -c +$((before + 1)) $OUT/serial-$sys.log | sed -n '/counters begin/,/counters end/p' \
    | grep -E 'executor=(rx_packets|polls) |idle=|node=tcp (event|stat)=' \
    | sed 's/^counter core=0 //; s/ value=/\t/; s/ /:/g; s/\t/ /' | sort
}
trap cleanup EXIT
for i in $(seq 1 300); do ip netns exec $ns bash -c 'exec 3<>/dev/tcp/10.0.0.2/80' 2>/dev/null && break; sleep 0.2; done
sleep ${SETTLE:-1}
tids() { for t in /proc/$qpid/task/*; do echo "$(basename $t) $(cat $t/comm)"; done; }
tids > $OUT/threads-$sys.txt
vcpu=$(awk '/\/TCG|\/KVM/{print $1; exit}' $OUT/threads-$sys.txt)
for v in "$@"; do
  unset r crt psched cap rt name qemu_pin vcpu_pin main_pin client nice conns dur slice
  eval "$v"
  taskset -a -p -c 0,1 $qpid >/dev/null
  renice -n 0 -p $qpid >/dev/null
  for t in /proc/$qpid/task/*; do renice -n 0 -p $(basename $t) >/dev/null; chrt -o -p 0 $(basename $t); done
  [ -n "${qemu_pin:-}" ] && taskset -a -p -c $qemu_pin $qpid >/dev/null
  if [ -n "${vcpu_pin:-}" ]; then
    for t in /proc/$qpid/task/*; do taskset -p -c ${main_pin} $(basename $t) >/dev/null; done
    taskset -p -c $vcpu_pin $vcpu >/dev/null
  fi
  [ -n "${nice:-}" ] && for t in /proc/$qpid/task/*; do renice -n $nice -p $(basename $t) >/dev/null; done
  python3 $here/sched-slice.py ${slice:-0} $qpid
  [ -n "${rt:-}" ] && for t in /proc/$qpid/task/*; do chrt -f -p $rt $(basename $t); done
  pre=""; [ -n "${client:-}" ] && pre="taskset -c $client"
  [ -n "${crt:-}" ] && pre="$pre chrt -f $crt"
  [ -n "${slice:-}" ] && pre="$pre python3 $here/sched-slice.py $slice exec"
  # schedstat before: per thread run ns, wait ns
  declare -A before=()
  for t in /proc/$qpid/task/*; do before[$(basename $t)]=$(cat $t/schedstat); done
  trace=""
  if [ -n "${cap:-}" ]; then
    trace="--trace $OUT/trace-$sys-$name.csv"
    if command -v tcpdump >/dev/null; then
      ip netns exec $ns tcpdump -q -i $tap -s 96 -B 8192 -w $OUT/cap-$sys-$name.pcap 'tcp port 80' 2>/dev/null & cpid=$!
    else
      ip netns exec $ns dumpcap -q -P -i $tap -s 96 -B 8 -f 'tcp port 80' -w $OUT/cap-$sys-$name.pcap 2>/dev/null & cpid=$!
    fi
    sleep 1
  fi
  dump > $OUT/counters-before.txt
  [ -n "${psched:-}" ] && { perf sched record -o $OUT/sched-$sys-$name.data -- sleep $(( ${dur:-5} + 1 )) >/dev/null 2>&1 & spid=$!; }
  out=$(ip netns exec $ns $pre $W/target/release/tcp-load --target 10.0.0.2:80 --protocol http --connections ${conns:-16} --duration-secs ${dur:-5} --rate ${r:-$rate} $trace ${extra:-})
  dump > $OUT/counters-after.txt
  # counters that moved over the run
  join $OUT/counters-before.txt $OUT/counters-after.txt 2>/dev/null | awk '$3 != $2 {printf "  guest %s %d\n", $1, $3 - $2}'
  if [ -n "${cap:-}" ]; then
    sleep 0.3; kill $cpid; wait $cpid 2>/dev/null
    python3 $here/tap-latency.py $OUT/cap-$sys-$name.pcap
    python3 $here/request-path.py $OUT/trace-$sys-$name.csv $OUT/cap-$sys-$name.pcap | sed 's/^/  /'
  fi
  [ -n "${psched:-}" ] && wait $spid
  sched=""
  for t in /proc/$qpid/task/*; do
    id=$(basename $t); read r0 w0 n0 <<<"${before[$id]:-0 0 0}"; read r1 w1 n1 < $t/schedstat
    d=$(( (r1-r0)/1000000 )); [ $d -gt 20 ] && sched="$sched $(cat $t/comm | tr ' ' _):run${d}ms/wait$(( (w1-w0)/1000000 ))ms/n$((n1-n0))"
  done
  echo "$sys $name rate=${r:-$rate} $(echo "$out" | python3 -c 'import json,sys; r=json.load(sys.stdin); s=r["summary"]; print("rx=%.0f p50=%d p90=%d p99=%d p999=%d max=%d err=%d" % (r["received_pps"], s["latency_p50_ns"]/1000, s["latency_p90_ns"]/1000, s["latency_p99_ns"]/1000, s["latency_p999_ns"]/1000, s["latency_max_ns"]/1000, s["lost"]))') |$sched"
done
