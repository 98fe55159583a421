//! `TcpFlow`: the TCP connection a capture leaves out of itself (the one
//! that carries the capture: captured, each of its segments would be
//! captured again, and the capture would fill with itself), and the
//! bounds-checked look at a frame's headers that finds it.

use core::net::{Ipv4Addr, SocketAddrV4};

const ETHERTYPE_IPV4: u16 = 0x0800;
const PROTOCOL_TCP: u8 = 6;
const ETHERNET_HEADER: usize = 14;

/// One TCP connection, seen from here: the peer's address and port, and
/// our port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpFlow {
    /// The other end.
    pub peer: SocketAddrV4,
    /// Our port.
    pub local_port: u16,
}

impl TcpFlow {
    /// The flow in one word (peer address, peer port, our port), as the
    /// board keeps it; never 0 for a real peer (its port is not 0).
    pub(super) fn pack(self) -> u64 {
        u64::from(u32::from(*self.peer.ip())) << 32
            | u64::from(self.peer.port()) << 16
            | u64::from(self.local_port)
    }

    /// The flow `word` holds (see [`pack`](Self::pack)).
    pub(super) fn unpack(word: u64) -> Self {
        Self {
            peer: SocketAddrV4::new(Ipv4Addr::from((word >> 32) as u32), (word >> 16) as u16),
            local_port: word as u16,
        }
    }

    /// True when `frame` is an IPv4 TCP segment of this connection, either
    /// way. Anything too short or not IPv4 TCP is not.
    pub fn carries(&self, frame: &[u8]) -> bool {
        let Some((source, destination)) = tcp_endpoints(frame) else {
            return false;
        };
        let peer = *self.peer.ip();
        let port = self.peer.port();
        (*source.ip() == peer && source.port() == port && destination.port() == self.local_port)
            || (*destination.ip() == peer
                && destination.port() == port
                && source.port() == self.local_port)
    }
}

/// The source and destination of an untagged Ethernet frame holding an
/// IPv4 TCP segment (the first fragment, which has the ports).
fn tcp_endpoints(frame: &[u8]) -> Option<(SocketAddrV4, SocketAddrV4)> {
    let be16 = |bytes: &[u8], at: usize| -> Option<u16> {
        Some(u16::from_be_bytes([*bytes.get(at)?, *bytes.get(at + 1)?]))
    };
    let address = |bytes: &[u8], at: usize| -> Option<Ipv4Addr> {
        let octets: [u8; 4] = bytes.get(at..at + 4)?.try_into().ok()?;
        Some(Ipv4Addr::from(octets))
    };
    if be16(frame, 12)? != ETHERTYPE_IPV4 {
        return None;
    }
    let ip = frame.get(ETHERNET_HEADER..)?;
    let version_and_length = *ip.first()?;
    let header_length = usize::from(version_and_length & 0x0f) * 4;
    if version_and_length >> 4 != 4 || header_length < 20 || *ip.get(9)? != PROTOCOL_TCP {
        return None;
    }
    // Later fragments carry no TCP header.
    if be16(ip, 6)? & 0x1fff != 0 {
        return None;
    }
    let tcp = ip.get(header_length..)?;
    Some((
        SocketAddrV4::new(address(ip, 12)?, be16(tcp, 0)?),
        SocketAddrV4::new(address(ip, 16)?, be16(tcp, 2)?),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 10.0.0.1:40000 -> 10.0.0.2:8080, a SYN (IPv4 header of 20 bytes).
    const SEGMENT: &str = "020000000001020000000002080045000028000140004006268c0a0000010a0000029c401f90000000000000000050022000917c0000";

    fn hex(text: &str) -> alloc::vec::Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|at| u8::from_str_radix(&text[at..at + 2], 16).unwrap())
            .collect()
    }

    fn flow(peer_port: u16, local_port: u16) -> TcpFlow {
        TcpFlow {
            peer: SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), peer_port),
            local_port,
        }
    }

    #[test]
    fn finds_its_segments_both_ways_and_nothing_else() {
        let segment = hex(SEGMENT);
        assert!(flow(40000, 8080).carries(&segment));
        assert!(!flow(40001, 8080).carries(&segment));
        assert!(!flow(40000, 80).carries(&segment));
        // The reply: addresses and ports swapped.
        let mut reply = segment.clone();
        reply[26..30].copy_from_slice(&[10, 0, 0, 2]);
        reply[30..34].copy_from_slice(&[10, 0, 0, 1]);
        reply[34..36].copy_from_slice(&8080u16.to_be_bytes());
        reply[36..38].copy_from_slice(&40000u16.to_be_bytes());
        assert!(flow(40000, 8080).carries(&reply));
    }

    #[test]
    fn other_frames_and_short_ones_are_not_its() {
        let segment = hex(SEGMENT);
        let this = flow(40000, 8080);
        for length in 0..segment.len() - 16 {
            // Cut before the ports: not recognisable, never a panic.
            assert!(!this.carries(&segment[..length]), "{length}");
        }
        let mut udp = segment.clone();
        udp[23] = 17;
        assert!(!this.carries(&udp));
        let mut arp = segment.clone();
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert!(!this.carries(&arp));
        let mut later_fragment = segment.clone();
        later_fragment[20..22].copy_from_slice(&[0x00, 0x10]);
        assert!(!this.carries(&later_fragment));
        let mut options = segment.clone();
        options[14] = 0x46;
        assert!(!this.carries(&options), "the ports moved past the options");
    }

    #[test]
    fn packs_and_unpacks() {
        let this = flow(40000, 8080);
        assert_eq!(TcpFlow::unpack(this.pack()), this);
        assert_ne!(this.pack(), 0);
    }
}
