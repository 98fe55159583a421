"""Requests slower than THRESHOLD_US between the request frame and the reply
frame on the tap, with their start (seconds into the capture) and client port:
shows whether slow requests come alone or in bursts (a stalled path).
usage: tap-slow-requests.py CAPTURE.pcap THRESHOLD_US"""
import struct, sys
data = open(sys.argv[1], 'rb').read()
nano = struct.unpack('<I', data[:4])[0] == 0xa1b23c4d
off = 24; pending = {}; out = []; t0=None
while off + 16 <= len(data):
    sec, frac, incl, orig = struct.unpack('<IIII', data[off:off+16])
    t = sec + frac / (1e9 if nano else 1e6); t0 = t0 or t
    pkt = data[off+16:off+16+incl]; off += 16 + incl
    if len(pkt) < 34 or pkt[12:14] != b'\x08\x00': continue
    ihl = (pkt[14] & 15) * 4; total = struct.unpack('>H', pkt[16:18])[0]; tcp = 14 + ihl
    sport, dport = struct.unpack('>HH', pkt[tcp:tcp+4]); doff = (pkt[tcp+12] >> 4) * 4
    if total - ihl - doff <= 0: continue
    if dport == 80: pending[sport] = t
    elif sport == 80 and dport in pending:
        s = pending.pop(dport); l = (t - s) * 1e6
        if l > float(sys.argv[2]): out.append((s - t0, l, dport))
for s, l, p in out: print("%.4f %.0f %d" % (s, l, p))
