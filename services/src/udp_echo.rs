//! `UdpEcho`: sends every datagram back to where it came from, in place:
//! addresses and ports swapped (the UDP checksum stays valid), fresh TTL
//! (the header checksum updated incrementally: its input comes from `udp`,
//! behind `ipv4`, which verified it).

use crate::route::{LocalAddresses, Locality};
use crate::uniform::{Decide, dispatch_expecting};
use crate::wire::ipv4::{self, DEFAULT_TTL};
use crate::wire::{Ipv4Packet, UdpPacket, udp};
use dataplane::drop_reasons;
use dataplane::{Batch, Checked, Nanoservice, Outputs, Packet, Verdict};

drop_reasons! {
    /// Why [`UdpEcho`] drops a datagram.
    UdpEchoDrop {
        /// Not IPv4/UDP (a bug upstream).
        Malformed = "malformed",
        /// Sent to a broadcast address (we never answer from one).
        Broadcast = "broadcast",
    }
}

/// The UDP echo app (RFC 862).
#[derive(Debug, Clone)]
pub struct UdpEcho {
    local: LocalAddresses,
}

impl UdpEcho {
    /// Output for echoed datagrams (to `ipv4-out`).
    pub const OUT: usize = 0;

    /// An echo app answering from these addresses.
    pub fn new(local: LocalAddresses) -> Self {
        Self { local }
    }

    /// Turns the datagram in `packet` into its echo.
    #[inline(always)]
    fn echo(&self, packet: &mut Packet) -> Verdict {
        if let Some(verdict) = Self::echo_checked(packet) {
            return verdict;
        }
        let Ok(mut ip) = Ipv4Packet::new_checked(packet.payload_mut()) else {
            return Verdict::drop(UdpEchoDrop::Malformed);
        };
        if self.local.locality(ip.destination()) != Locality::Unicast {
            return Verdict::drop(UdpEchoDrop::Broadcast);
        }
        let datagram = ip.payload_mut();
        // The common case in one compare: a UDP length equal to the IP
        // payload's (at least a header) makes a valid view. Anything else
        // is padding (RFC 768) or malformed, told apart out of line.
        let exact = datagram.len() >= udp::HEADER_LEN
            && usize::from(u16::from_be_bytes([datagram[4], datagram[5]])) == datagram.len();
        if !exact {
            // Handled after the burst: no call on this path.
            return Verdict::Keep;
        }
        let mut udp = UdpPacket::new_unchecked(datagram);
        udp.swap_ports();
        ip.swap_addresses();
        // `ipv4` verified the header checksum before `udp` passed the
        // datagram on, so the incremental update writes the bytes a
        // full recomputation would.
        ip.set_ttl_updating_checksum(DEFAULT_TTL);
        Verdict::emit(Self::OUT)
    }
}

impl UdpEcho {
    /// The echo of a datagram whose IPv4 header (to one of our unicast
    /// addresses) and UDP header and checksum were checked upstream (the
    /// packet's [`Checked`] claims): nothing is parsed again. `None` when
    /// the claims are missing or the datagram is padded: [`Self::echo`]
    /// then checks it itself.
    #[inline(always)]
    fn echo_checked(packet: &mut Packet) -> Option<Verdict> {
        // One masked compare: `udp`'s plain path vouched for the IPv4
        // header (no options, ours), the UDP header and checksum, and a
        // datagram that fills the packet. Anything else (options, padding,
        // no claims) goes the general way.
        if !packet.checked().is_plain_local_udp() {
            return None;
        }
        // Every offset below is a constant into one 28-byte array, so
        // nothing is bounds-checked again.
        let headers = packet.payload_mut().first_chunk_mut::<ECHO_HEADERS>()?;
        let (ip, header) = headers.split_at_mut(ipv4::HEADER_LEN);
        UdpPacket::new_unchecked(header).swap_ports();
        let mut ip = Ipv4Packet::new_unchecked(ip);
        ip.swap_addresses();
        ip.set_ttl_updating_checksum(DEFAULT_TTL);
        // The header is as valid as it was (checksum updated), and the
        // datagram too (a swap leaves its checksum right); the destination
        // is the peer now.
        packet.set_checked(Checked::IPV4_HEADER.udp());
        Some(Verdict::emit(Self::OUT))
    }
}

/// An IPv4 header without options and a UDP header: what the claimed
/// path of [`UdpEcho::echo_checked`] reads as one array.
const ECHO_HEADERS: usize = ipv4::HEADER_LEN + udp::HEADER_LEN;

/// The datagrams `echo` kept, echoed or dropped one by one.
#[cold]
#[inline(never)]
fn echo_kept(batch: &mut Batch, out: &mut Outputs<'_>) {
    for mut packet in batch.drain() {
        match echo_padded(&mut packet) {
            Verdict::Emit(output) => out.emit(usize::from(output), packet),
            Verdict::Drop(reason) => out.drop(packet, reason),
            Verdict::Keep => out.drop(packet, UdpEchoDrop::Malformed),
        }
    }
}

/// Echoes a datagram with padding behind it (RFC 768): exactly the
/// UDP-length bytes go back, with the IP total length and header checksum
/// fixed. Drops a malformed one.
#[cold]
#[inline(never)]
fn echo_padded(packet: &mut Packet) -> Verdict {
    let Ok(mut ip) = Ipv4Packet::new_checked(packet.payload_mut()) else {
        return Verdict::drop(UdpEchoDrop::Malformed);
    };
    let header_len = ip.header_len() as u16;
    let Ok(mut udp) = UdpPacket::new_checked(ip.payload_mut()) else {
        return Verdict::drop(UdpEchoDrop::Malformed);
    };
    udp.swap_ports();
    let total_len = header_len + udp.length();
    ip.swap_addresses();
    ip.set_ttl(DEFAULT_TTL);
    ip.set_total_len(total_len);
    ip.fill_checksum();
    packet.truncate(usize::from(total_len));
    Verdict::emit(UdpEcho::OUT)
}

impl Decide for UdpEcho {
    #[inline(always)]
    fn decide(&mut self, packet: &mut Packet) -> Verdict {
        self.echo(packet)
    }
}

impl Nanoservice for UdpEcho {
    fn name(&self) -> &'static str {
        "udp-echo"
    }

    fn drop_reasons(&self) -> &'static [&'static str] {
        UdpEchoDrop::NAMES
    }

    fn process(&mut self, batch: &mut Batch, out: &mut Outputs<'_>) {
        dispatch_expecting(self, batch, out, Verdict::emit(Self::OUT));
        // What `echo` kept: datagrams with padding behind them, or
        // malformed ones.
        if !batch.is_empty() {
            echo_kept(batch, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;
    use core::net::Ipv4Addr;
    use dataplane::{Ipv4Cidr, Mempool};

    const PEER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const US: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

    /// A request from the peer to our port 7: `options` bytes of IPv4
    /// options (NOPs), `padding` bytes behind the datagram inside the IP
    /// payload (RFC 768), both checksums right.
    fn request(options: usize, padding: usize) -> Vec<u8> {
        let payload = b"echo this";
        let header_len = ipv4::HEADER_LEN + options;
        let udp_len = udp::HEADER_LEN + payload.len();
        let mut bytes = alloc::vec![0u8; header_len + udp_len + padding];
        let datagram = &mut bytes[header_len..header_len + udp_len];
        datagram[..2].copy_from_slice(&40_000u16.to_be_bytes());
        datagram[2..4].copy_from_slice(&7u16.to_be_bytes());
        datagram[4..6].copy_from_slice(&(udp_len as u16).to_be_bytes());
        datagram[8..].copy_from_slice(payload);
        UdpPacket::new_unchecked(&mut datagram[..]).fill_checksum(PEER, US);
        let mut ip = Ipv4Packet::new_unchecked(&mut bytes[..]);
        ip.emit_header(PEER, US, ipv4::protocol::UDP, udp_len as u16, 9);
        bytes[0] = 0x40 | (header_len / 4) as u8;
        bytes[ipv4::HEADER_LEN..header_len].fill(1);
        let mut ip = Ipv4Packet::new_unchecked(&mut bytes[..]);
        ip.set_total_len((header_len + udp_len + padding) as u16);
        ip.fill_checksum();
        bytes
    }

    /// The echo of `request`, built field by field from scratch.
    fn expected_echo(request: &[u8]) -> Vec<u8> {
        let ip = Ipv4Packet::new_checked(request).unwrap();
        let header_len = ip.header_len();
        let udp = UdpPacket::new_checked(&request[header_len..]).unwrap();
        let mut echo = request[..header_len + usize::from(udp.length())].to_vec();
        let mut ip = Ipv4Packet::new_unchecked(&mut echo[..]);
        ip.set_source(US);
        ip.set_destination(PEER);
        ip.set_ttl(DEFAULT_TTL);
        ip.set_total_len((header_len + usize::from(udp.length())) as u16);
        ip.fill_checksum();
        let mut reply = UdpPacket::new_unchecked(&mut echo[header_len..]);
        reply.set_source_port(7);
        reply.set_destination_port(40_000);
        echo
    }

    /// Runs `echo`, and the kept path as `process` would.
    fn echoed(app: &UdpEcho, bytes: &[u8], checked: Checked) -> (Verdict, Vec<u8>, Checked) {
        let pool = Mempool::with_heap(1, 0).unwrap();
        let mut packet = pool.alloc().unwrap();
        packet.append(bytes.len()).unwrap().copy_from_slice(bytes);
        packet.set_checked(checked);
        let mut verdict = app.echo(&mut packet);
        if verdict == Verdict::Keep {
            verdict = echo_padded(&mut packet);
        }
        (verdict, packet.payload().to_vec(), packet.checked())
    }

    #[test]
    fn claimed_and_unclaimed_options_and_padding_all_echo_the_same_bytes() {
        let app = UdpEcho::new(LocalAddresses::new(alloc::vec![Ipv4Cidr {
            address: US,
            prefix_len: 24,
        }]));
        // What `udp`'s plain path claims, and what its general path does.
        let claimed = Checked::IPV4_HEADER.local_unicast().udp().plain();
        let general = Checked::IPV4_HEADER.local_unicast().udp();
        for (options, padding) in [(0, 0), (4, 0), (0, 6), (8, 3)] {
            let request = request(options, padding);
            let expected = expected_echo(&request);
            for checked in [claimed, general, Checked::NONE, Checked::IPV4_HEADER.udp()] {
                // The plain claim is only ever made of a plain datagram.
                if checked == claimed && (options, padding) != (0, 0) {
                    continue;
                }
                let (verdict, echo, after) = echoed(&app, &request, checked);
                let case = (options, padding, checked);
                assert_eq!(verdict, Verdict::emit(UdpEcho::OUT), "{case:?}");
                assert_eq!(echo, expected, "{case:?}");
                // Only the claimed path, on a datagram it echoes itself,
                // vouches for the result; the others claim nothing.
                let vouched = checked == claimed;
                let claims = if vouched {
                    Checked::IPV4_HEADER.udp()
                } else {
                    Checked::NONE
                };
                assert_eq!(after, claims, "{case:?}");
            }
        }
    }

    #[test]
    fn a_broadcast_or_a_malformed_datagram_is_dropped_without_claims() {
        let app = UdpEcho::new(LocalAddresses::new(alloc::vec![Ipv4Cidr {
            address: US,
            prefix_len: 24,
        }]));
        let mut broadcast = request(0, 0);
        let mut ip = Ipv4Packet::new_unchecked(&mut broadcast[..]);
        ip.set_destination(Ipv4Addr::new(10, 0, 0, 255));
        ip.fill_checksum();
        let (verdict, ..) = echoed(&app, &broadcast, Checked::NONE);
        assert_eq!(verdict, Verdict::drop(UdpEchoDrop::Broadcast));
        let mut short = request(0, 0);
        short[ipv4::HEADER_LEN + 4..ipv4::HEADER_LEN + 6].copy_from_slice(&4u16.to_be_bytes());
        let (verdict, ..) = echoed(&app, &short, Checked::NONE);
        assert_eq!(verdict, Verdict::drop(UdpEchoDrop::Malformed));
    }
}
