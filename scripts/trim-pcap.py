#!/usr/bin/env python3
"""Keep only the SYN and SYN-ACK packets of a pcap (Ethernet, IPv4, TCP; VXLAN's inner one too) and ARP, and
HTTP responses' first segments, and minify evidence.json: what the player's fixtures need, a tenth of the size. In place."""
import json, struct, sys

def keep(frame: bytes) -> bool:
    def tcp_syn(ip: bytes) -> bool:
        if len(ip) < 20 or ip[0] >> 4 != 4:
            return False
        ihl = (ip[0] & 15) * 4
        if ip[9] == 6:
            if len(ip) < ihl + 14:
                return False
            # The SYNs, and an HTTP response's first segment (httpResponse steps).
            return bool(ip[ihl + 13] & 0x02) or ip[ihl + (ip[ihl + 12] >> 4) * 4:].startswith(b'HTTP/')
        if ip[9] == 17 and len(ip) >= ihl + 8 + 8 + 14:  # VXLAN: UDP, 8-byte header, inner Ethernet
            return tcp_syn(ip[ihl + 8 + 8 + 14:])
        return False
    if len(frame) > 14 and frame[12:14] == b'\x08\x06':  # ARP: the frame steps of L2 announcements
        return True
    return len(frame) > 14 and frame[12:14] == b'\x08\x00' and tcp_syn(frame[14:])

for path in sys.argv[1:]:
    if path.endswith('.json'):
        with open(path) as f:
            data = json.load(f)
        with open(path, 'w') as f:
            json.dump(data, f, separators=(',', ':'))
        continue
    b = open(path, 'rb').read()
    out, off = [b[:24]], 24
    while off + 16 <= len(b):
        incl = struct.unpack('<I', b[off + 8:off + 12])[0]
        rec = b[off:off + 16 + incl]
        if keep(rec[16:]):
            out.append(rec)
        off += 16 + incl
    open(path, 'wb').write(b''.join(out))
