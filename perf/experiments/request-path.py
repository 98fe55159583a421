"""Where each request of a tcp-load run spent its time: joins tcp-load's
--trace CSV (slot, write, reply read; wall-clock ns) with a capture taken on
the server's side of the path (the host side of the tap: QEMU and the
guest are on the far side of it) and splits every request's latency into
  late      slot -> the client begins writing (the client's own lateness)
  out       write -> request frame on the tap (client syscall, host TCP)
  server    request frame -> last reply frame on the tap (QEMU + guest)
  back      last reply frame -> reply read (host TCP, client wake-up)
Prints each part's percentiles over all requests and over the slowest 1 %
(total at or above p99), which part was the largest in each slow request,
and what TCP did meanwhile (tshark's analysis flags: retransmissions, dup
ACKs, window updates, zero windows) for all and for the slow ones.
Needs tshark. usage: request-path.py TRACE.csv CAPTURE [SERVER_PORT (80)]"""
import bisect, collections, csv, subprocess, sys

trace_path, capture = sys.argv[1], sys.argv[2]
server_port = int(sys.argv[3]) if len(sys.argv) > 3 else 80
flags = ["tcp.analysis.retransmission", "tcp.analysis.fast_retransmission",
         "tcp.analysis.spurious_retransmission", "tcp.analysis.duplicate_ack",
         "tcp.analysis.window_update", "tcp.analysis.zero_window",
         "tcp.analysis.out_of_order", "tcp.analysis.lost_segment"]
fields = ["frame.time_epoch", "tcp.srcport", "tcp.dstport", "tcp.len"] + flags
out = subprocess.run(["tshark", "-r", capture, "-Y", "tcp.port == %d" % server_port, "-T", "fields",
                      "-E", "separator=\t"] + sum([["-e", f] for f in fields], []),
                     capture_output=True, text=True, check=True).stdout
# per client port: times of request data frames, of reply data frames, and
# of every frame with an analysis flag (port -> [(t, flag, direction)])
requests, replies = collections.defaultdict(list), collections.defaultdict(list)
events = collections.defaultdict(list)
frames = 0
for line in out.splitlines():
    cols = line.split("\t")
    t = int(round(float(cols[0]) * 1e9))
    sport, dport, length = int(cols[1]), int(cols[2]), int(cols[3] or 0)
    inbound = dport == server_port
    port = sport if inbound else dport
    frames += 1
    if length > 0:
        (requests if inbound else replies)[port].append(t)
    for name, value in zip(flags, cols[4:]):
        if value:
            events[port].append((t, name.split(".")[-1], "to-server" if inbound else "to-client"))

rows = [dict((k, int(v)) for k, v in r.items()) for r in csv.DictReader(open(trace_path))]
by_port = collections.defaultdict(list)
for r in rows:
    by_port[r["port"]].append(r)
parts = ["late", "out", "server", "back"]
joined = []
unmatched = 0
for port, records in by_port.items():
    records.sort(key=lambda r: r["slot_ns"])
    req, rep = requests.get(port, []), replies.get(port, [])
    previous = 0
    for r in records:
        # one request outstanding per connection: this request's frames lie
        # after the previous reply was read and before this one was
        lo = max(previous, r["written_ns"] - 1_000_000)
        i = bisect.bisect_left(req, lo)
        j = bisect.bisect_right(rep, r["replied_ns"]) - 1
        previous = r["replied_ns"]
        if i >= len(req) or j < 0 or req[i] > r["replied_ns"] or rep[j] < req[i]:
            unmatched += 1
            continue
        total = r["replied_ns"] - r["slot_ns"]
        split = {"late": r["written_ns"] - r["slot_ns"], "out": req[i] - r["written_ns"],
                 "server": rep[j] - req[i], "back": r["replied_ns"] - rep[j]}
        noted = [e for e in events.get(port, []) if r["slot_ns"] <= e[0] <= r["replied_ns"]]
        joined.append((total, split, noted))

if not joined:
    sys.exit("no request of the trace found in the capture (%d frames)" % frames)
joined.sort(key=lambda x: x[0])
def q(values, x):
    values = sorted(values)
    return values[min(len(values) - 1, int(round((len(values) - 1) * x)))]
def line(label, group):
    totals = [g[0] for g in group]
    text = "%-24s n=%-6d total p50 %6.0f p99 %7.0f max %7.0f |" % (
        label, len(group), q(totals, .5) / 1e3, q(totals, .99) / 1e3, totals[-1] / 1e3)
    for p in parts:
        v = [g[1][p] for g in group]
        text += " %s p50 %5.0f p99 %6.0f |" % (p, q(v, .5) / 1e3, q(v, .99) / 1e3)
    print(text)
p99 = q([g[0] for g in joined], .99)
slow = [g for g in joined if g[0] >= p99]
print("requests joined %d of %d (%d frames in the capture); times in µs" % (len(joined), len(rows), frames))
line("all", joined)
line("slowest 1%% (>= %.0f µs)" % (p99 / 1e3), slow)
largest = collections.Counter(max(parts, key=lambda p: g[1][p]) for g in slow)
print("largest part in the slow ones: " + ", ".join("%s %d" % kv for kv in largest.most_common()))
for label, group in (("all", joined), ("slow", slow)):
    kinds = collections.Counter((e[1], e[2]) for g in group for e in g[2])
    print("TCP analysis flags during %s requests: %s" % (
        label, ", ".join("%s %s %d" % (k[0], k[1], v) for k, v in kinds.most_common()) or "none"))
