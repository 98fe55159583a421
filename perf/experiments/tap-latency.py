"""Per request: time from the request frame on the tap to the response frame on the tap
(QEMU + guest), as percentiles; HTTP on port 80.
usage: tap-latency.py CAPTURE.pcap"""
import struct, sys
data = open(sys.argv[1], 'rb').read()
magic = struct.unpack('<I', data[:4])[0]
nano = magic == 0xa1b23c4d
off = 24
pending = {}
lat = []
gaps = []
while off + 16 <= len(data):
    sec, frac, incl, orig = struct.unpack('<IIII', data[off:off+16])
    t = sec + frac / (1e9 if nano else 1e6)
    pkt = data[off+16:off+16+incl]
    off += 16 + incl
    if len(pkt) < 34 or pkt[12:14] != b'\x08\x00':
        continue
    ihl = (pkt[14] & 15) * 4
    total = struct.unpack('>H', pkt[16:18])[0]
    tcp = 14 + ihl
    sport, dport = struct.unpack('>HH', pkt[tcp:tcp+4])
    doff = (pkt[tcp+12] >> 4) * 4
    payload = total - ihl - doff
    if payload <= 0:
        continue
    if dport == 80:
        pending[sport] = t
    elif sport == 80 and dport in pending:
        lat.append((t - pending.pop(dport)) * 1e6)
lat.sort()
if lat:
    q = lambda x: lat[min(len(lat)-1, int(round((len(lat)-1)*x)))]
    print("  tap-to-tap (QEMU+guest) n=%d p50=%.0f p90=%.0f p99=%.0f p999=%.0f max=%.0f" % (len(lat), q(.5), q(.9), q(.99), q(.999), lat[-1]))
