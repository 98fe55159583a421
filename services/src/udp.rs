//! `Udp`: verifies UDP checksums (0 = none), dispatches datagrams to the
//! app bound to their destination port, and answers closed ports with a
//! rate-limited ICMP port unreachable.
//!
//! A UDP length shorter than the IP payload leaves padding behind the
//! datagram (RFC 768): apps read the datagram through
//! `UdpPacket::payload`, which stops at the UDP length, and an app that
//! sends the packet back (echo) trims it first.

use crate::icmp_error::ErrorLimiter;
use crate::route::LocalAddresses;
use crate::uniform::{Decide, dispatch_uniform};
use crate::wire::icmp::unreachable;
use crate::wire::{Ipv4Packet, UdpPacket, WireError};
use alloc::boxed::Box;
use alloc::vec;
use dataplane::drop_reasons;
use dataplane::{Batch, Nanoservice, Outputs, Packet, Verdict};

/// Most apps (ports) one core's `udp` node dispatches to.
pub const MAX_UDP_APPS: usize = 8;

drop_reasons! {
    /// Why [`Udp`] drops a datagram.
    UdpDrop {
        /// Shorter than the 8-byte UDP header.
        Truncated = "truncated",
        /// Length field below 8 or beyond the IP payload.
        BadLength = "bad-length",
        /// Checksum mismatch.
        BadChecksum = "bad-checksum",
        /// No app on the port (ICMP port unreachable sent to unicast).
        PortClosed = "port-closed",
    }
}

/// Why a port could not be bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindError {
    /// Already bound.
    PortInUse(u16),
    /// [`MAX_UDP_APPS`] ports are bound already.
    TooManyApps,
}

/// The app of every port, indexed by the port as its two bytes arrive
/// read in host order (no byte swap per packet): 0 for a closed port,
/// `n + 1` for app `n` (VPP's `udp_dst_port` table, one byte an entry).
/// 64 KiB per core's `udp` node; a lookup is one load.
struct PortTable {
    apps: Box<[u8; PortTable::PORTS]>,
    bound: usize,
}

impl PortTable {
    const PORTS: usize = 1 << 16;

    fn new() -> Self {
        Self {
            apps: Self::boxed(vec![0u8; Self::PORTS]),
            bound: 0,
        }
    }

    /// `entries` (2^16 of them) boxed on the heap without passing the
    /// stack (`Box::new` of a 64 KiB array would, on a kernel stack).
    fn boxed(entries: alloc::vec::Vec<u8>) -> Box<[u8; Self::PORTS]> {
        let Ok(apps) = entries.into_boxed_slice().try_into() else {
            unreachable!("the table is built with PORTS entries");
        };
        apps
    }

    /// Where `port` (host order) sits: its wire bytes read natively.
    #[inline(always)]
    fn index(port: u16) -> usize {
        usize::from(u16::from_ne_bytes(port.to_be_bytes()))
    }

    /// The app bound to the port whose wire bytes are `raw`, if any.
    #[inline(always)]
    fn app(&self, raw: [u8; 2]) -> Option<usize> {
        // 2^16 entries: any u16 indexes them, no bounds check.
        usize::from(self.apps[usize::from(u16::from_ne_bytes(raw))]).checked_sub(1)
    }

    fn bind(&mut self, port: u16) -> Result<usize, BindError> {
        let index = Self::index(port);
        if self.apps[index] != 0 {
            return Err(BindError::PortInUse(port));
        }
        if self.bound == MAX_UDP_APPS {
            return Err(BindError::TooManyApps);
        }
        self.bound += 1;
        // `bound <= MAX_UDP_APPS` (8) fits a byte.
        self.apps[index] = self.bound as u8;
        Ok(self.bound - 1)
    }
}

impl Clone for PortTable {
    fn clone(&self) -> Self {
        Self {
            apps: Self::boxed(self.apps.to_vec()),
            bound: self.bound,
        }
    }
}

impl core::fmt::Debug for PortTable {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let mut bound: [Option<u16>; MAX_UDP_APPS] = [None; MAX_UDP_APPS];
        for port in 0..=u16::MAX {
            if let Some(slot) = self
                .app(port.to_be_bytes())
                .and_then(|app| bound.get_mut(app))
            {
                *slot = Some(port);
            }
        }
        f.debug_list().entries(bound.iter().flatten()).finish()
    }
}

/// UDP demultiplexer.
#[derive(Debug, Clone)]
pub struct Udp {
    local: LocalAddresses,
    ports: PortTable,
    errors: ErrorLimiter,
}

impl Udp {
    /// Output for ICMP errors (to `ipv4-out`).
    pub const ERRORS: usize = 0;
    /// Output of the first app; app `n` is `APP_0 + n`.
    pub const APP_0: usize = 1;

    /// A demultiplexer for these addresses, no port bound, sending its
    /// errors through the core's `errors` limiter.
    pub fn new(local: LocalAddresses, errors: ErrorLimiter) -> Self {
        Self {
            local,
            ports: PortTable::new(),
            errors,
        }
    }

    /// Binds `port`; datagrams to it leave on output `app<n>` (returned).
    pub fn bind(&mut self, port: u16) -> Result<usize, BindError> {
        self.ports.bind(port)
    }

    /// Checks the datagram in `packet` and picks the app bound to its
    /// port; a closed port is answered with an ICMP error.
    #[inline(always)]
    fn demultiplex(&mut self, packet: &mut Packet) -> Verdict {
        let checked = packet.checked();
        let bytes = packet.payload();
        if checked.is_ipv4()
            && let Some(port) = plain_datagram_port(bytes)
        {
            let Some(port) = port else {
                return Verdict::drop(UdpDrop::BadChecksum);
            };
            // No options, no padding: `udp-echo` reads its headers at
            // constant offsets on this claim alone.
            packet.set_checked(checked.udp().plain());
            return self.to_app(port);
        }
        match Self::demultiplex_general(packet) {
            Ok(port) => self.to_app(port),
            Err(reason) => Verdict::drop(reason),
        }
    }

    /// `demultiplex` of a packet off the plain fast path (no IPv4 claim,
    /// options, padding, a bad length): the port's wire bytes of a good
    /// datagram (the UDP claim set), or why it is dropped. Out of line, so
    /// that its registers are not taken from the fast path's loop, and the
    /// port looked up by the fast path's code.
    #[cold]
    #[inline(never)]
    fn demultiplex_general(packet: &mut Packet) -> Result<[u8; 2], UdpDrop> {
        let checked = packet.checked();
        let bytes = packet.payload();
        // The IPv4 header `ipv4` checked (the claim in the packet) is not
        // parsed again; a packet without the claim is checked here.
        let claimed = checked
            .is_ipv4()
            .then(|| bytes.first_chunk::<{ crate::wire::ipv4::HEADER_LEN }>())
            .flatten();
        let (addresses, datagram) = match claimed {
            Some(header) => {
                let header_len = usize::from(header[0] & 0x0f) * 4;
                let Some(datagram) = bytes.get(header_len..) else {
                    return Err(UdpDrop::Truncated);
                };
                (addresses_of(header), datagram)
            }
            None => {
                let Ok(ip) = Ipv4Packet::new_checked(bytes) else {
                    return Err(UdpDrop::Truncated);
                };
                let datagram = &bytes[ip.header_len()..usize::from(ip.total_len())];
                ((ip.source(), ip.destination()), datagram)
            }
        };
        let (source, destination) = addresses;
        let port = match UdpPacket::new_checked(datagram) {
            Ok(udp) if !udp.verify_checksum(source, destination) => {
                return Err(UdpDrop::BadChecksum);
            }
            // Back to the wire's bytes: the swap and its undo cancel.
            Ok(udp) => udp.destination_port().to_be_bytes(),
            Err(WireError::Truncated) => return Err(UdpDrop::Truncated),
            Err(_) => return Err(UdpDrop::BadLength),
        };
        packet.set_checked(checked.udp());
        Ok(port)
    }

    /// Where a checked datagram to the port whose wire bytes are `port`
    /// goes: its app's output, or kept for `closed_ports`.
    #[inline(always)]
    fn to_app(&self, port: [u8; 2]) -> Verdict {
        match self.ports.app(port) {
            Some(app) => Verdict::emit(Self::APP_0 + app),
            // Answered after the burst, out of the per-packet loop.
            None => Verdict::Keep,
        }
    }

    /// What `demultiplex` kept: datagrams to closed ports.
    #[cold]
    #[inline(never)]
    fn closed_ports(&self, batch: &mut Batch, out: &mut Outputs<'_>) {
        for packet in batch.drain() {
            let Ok(ip) = Ipv4Packet::new_checked(packet.payload()) else {
                out.drop(packet, UdpDrop::Truncated);
                continue;
            };
            let destination = ip.destination();
            match self.port_closed(&packet, destination, out) {
                Verdict::Drop(reason) => out.drop(packet, reason),
                _ => out.drop(packet, UdpDrop::PortClosed),
            }
        }
    }

    /// Answers a datagram to a closed port with ICMP port unreachable, when
    /// allowed, and drops it. The error quotes the header as it arrived,
    /// padding or not (Linux too: it trims the buffer, not the header).
    #[cold]
    #[inline(never)]
    fn port_closed(
        &self,
        packet: &Packet,
        destination: core::net::Ipv4Addr,
        out: &mut Outputs<'_>,
    ) -> Verdict {
        self.errors.send_unreachable(
            out,
            &self.local,
            packet.payload(),
            destination,
            (unreachable::PORT, Self::ERRORS),
        );
        Verdict::drop(UdpDrop::PortClosed)
    }
}

/// The common case, by constant offsets: `bytes` is a checked IPv4 packet
/// (its total length is the packet's length) with a 20-byte header (no
/// options) and a UDP datagram that fills the rest of it, no padding.
/// Then one compare of the UDP length against the packet's length checks
/// it (a packet of at least 28 bytes makes it at least 8), and the
/// checksum is summed over the header's addresses and the datagram as one
/// run. `Some(Some(port))`: the datagram is good, to the port with these
/// wire bytes; `Some(None)`: its checksum is wrong; `None`: not this case
/// (options, padding, too short, a bad length), which the general path
/// decides.
#[inline(always)]
fn plain_datagram_port(bytes: &[u8]) -> Option<Option<[u8; 2]>> {
    const PLAIN: usize = crate::wire::ipv4::HEADER_LEN;
    let header = bytes.first_chunk::<{ PLAIN + crate::wire::udp::HEADER_LEN }>()?;
    // The UDP length a datagram filling the packet has, as its wire bytes:
    // compared as they lie, with no byte swap of the field. A packet holds
    // at most 65 535 bytes (its bounds are 16-bit), so it fits.
    let length = ((bytes.len() - PLAIN) as u16).to_be_bytes();
    if header[0] != 0x45 || [header[PLAIN + 4], header[PLAIN + 5]] != length {
        return None;
    }
    let port = [header[PLAIN + 2], header[PLAIN + 3]];
    // From the source address (offset 12) to the end: the addresses, then
    // the whole datagram.
    let good = UdpPacket::<&[u8]>::verify_checksum_after_addresses(&bytes[12..])?;
    Some(good.then_some(port))
}

/// The source and destination addresses of an IPv4 header.
#[inline(always)]
fn addresses_of(header: &[u8; 20]) -> (core::net::Ipv4Addr, core::net::Ipv4Addr) {
    let [.., s0, s1, s2, s3, d0, d1, d2, d3] = *header;
    (
        core::net::Ipv4Addr::new(s0, s1, s2, s3),
        core::net::Ipv4Addr::new(d0, d1, d2, d3),
    )
}

impl Decide for Udp {
    #[inline(always)]
    fn decide(&mut self, packet: &mut Packet) -> Verdict {
        self.demultiplex(packet)
    }
}

impl Nanoservice for Udp {
    fn name(&self) -> &'static str {
        "udp"
    }

    fn outputs(&self) -> &'static [&'static str] {
        &[
            "errors", "app0", "app1", "app2", "app3", "app4", "app5", "app6", "app7",
        ]
    }

    fn drop_reasons(&self) -> &'static [&'static str] {
        UdpDrop::NAMES
    }

    fn process(&mut self, batch: &mut Batch, out: &mut Outputs<'_>) {
        dispatch_uniform(self, batch, out);
        if !batch.is_empty() {
            self.closed_ports(batch, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_found_by_their_wire_bytes() {
        let mut table = PortTable::new();
        assert_eq!(table.bind(7), Ok(0));
        assert_eq!(table.bind(0x1234), Ok(1));
        assert_eq!(table.app([0, 7]), Some(0));
        assert_eq!(table.app([0x12, 0x34]), Some(1));
        // The same bytes the other way round are another port, closed.
        assert_eq!(table.app([7, 0]), None);
        assert_eq!(table.app([0x34, 0x12]), None);
        assert_eq!(table.app([0, 0]), None);
        assert_eq!(table.app([0xff, 0xff]), None);
    }

    #[test]
    fn a_port_binds_once_and_at_most_eight_apps() {
        let mut table = PortTable::new();
        assert_eq!(table.bind(53), Ok(0));
        assert_eq!(table.bind(53), Err(BindError::PortInUse(53)));
        for (app, port) in (1..MAX_UDP_APPS).zip(1000u16..) {
            assert_eq!(table.bind(port), Ok(app));
        }
        assert_eq!(table.bind(u16::MAX), Err(BindError::TooManyApps));
        assert_eq!(table.app(u16::MAX.to_be_bytes()), None);
        assert_eq!(table.app(1006u16.to_be_bytes()), Some(7));
    }

    /// An IPv4 packet (20-byte header) from 10.0.0.1 to 10.0.0.2 with a
    /// UDP datagram 40000 → 7 carrying `payload` and a right checksum,
    /// then `padding` zero bytes inside the IP total length.
    fn plain_packet(payload: &[u8], padding: usize) -> alloc::vec::Vec<u8> {
        use crate::wire::ipv4::HEADER_LEN;
        let udp_len = 8 + payload.len();
        let mut bytes = alloc::vec![0u8; HEADER_LEN + udp_len + padding];
        bytes[0] = 0x45;
        let total = bytes.len() as u16;
        bytes[2..4].copy_from_slice(&total.to_be_bytes());
        bytes[8] = 64;
        bytes[9] = 17;
        bytes[12..16].copy_from_slice(&[10, 0, 0, 1]);
        bytes[16..20].copy_from_slice(&[10, 0, 0, 2]);
        bytes[HEADER_LEN + 4..HEADER_LEN + 6].copy_from_slice(&(udp_len as u16).to_be_bytes());
        bytes[HEADER_LEN + 8..HEADER_LEN + udp_len].copy_from_slice(payload);
        let mut udp = UdpPacket::new_unchecked(&mut bytes[HEADER_LEN..HEADER_LEN + udp_len]);
        udp.set_source_port(40000);
        udp.set_destination_port(7);
        udp.fill_checksum(
            core::net::Ipv4Addr::new(10, 0, 0, 1),
            core::net::Ipv4Addr::new(10, 0, 0, 2),
        );
        bytes
    }

    /// What the general path decides for a checked IPv4 packet: the
    /// port's wire bytes, or the drop.
    fn general(bytes: &[u8]) -> Result<[u8; 2], UdpDrop> {
        let ip = Ipv4Packet::new_unchecked(bytes);
        let datagram = &bytes[ip.header_len()..];
        match UdpPacket::new_checked(datagram) {
            Ok(udp) if !udp.verify_checksum(ip.source(), ip.destination()) => {
                Err(UdpDrop::BadChecksum)
            }
            Ok(udp) => Ok(udp.destination_port().to_be_bytes()),
            Err(WireError::Truncated) => Err(UdpDrop::Truncated),
            Err(_) => Err(UdpDrop::BadLength),
        }
    }

    #[test]
    fn the_plain_fast_path_decides_as_the_general_path_or_not_at_all() {
        let mut taken = 0;
        for length in [0, 1, 7, 8, 9, 44, 52, 63, 64, 65, 100, 200] {
            let payload: alloc::vec::Vec<u8> = (0..length).map(|i| (i * 37 + 11) as u8).collect();
            for padding in [0, 1, 3] {
                let packet = plain_packet(&payload, padding);
                // Every bit of the UDP header and a few of the rest,
                // flipped one at a time, and the packet as built.
                let bits = (12 * 8..28 * 8).chain([28 * 8 + 3, packet.len() * 8 - 1]);
                for bit in core::iter::once(None).chain(bits.map(Some)) {
                    let mut bytes = packet.clone();
                    if let Some(bit) = bit.filter(|bit| bit / 8 < bytes.len()) {
                        bytes[bit / 8] ^= 1 << (bit % 8);
                    }
                    let Some(fast) = plain_datagram_port(&bytes) else {
                        continue;
                    };
                    taken += 1;
                    let fast = fast.ok_or(UdpDrop::BadChecksum);
                    assert_eq!(fast, general(&bytes), "{length} {padding} {bit:?}");
                }
                if padding == 0 {
                    assert_eq!(plain_datagram_port(&packet), Some(Some([0, 7])));
                } else {
                    assert_eq!(plain_datagram_port(&packet), None, "padding: general path");
                }
            }
        }
        assert!(taken > 1000, "{taken}");
        // Options go the general way; so does anything shorter than the
        // two headers.
        let mut options = plain_packet(b"ping", 0);
        options[0] = 0x46;
        assert_eq!(plain_datagram_port(&options), None);
        assert_eq!(plain_datagram_port(&plain_packet(b"", 0)[..27]), None);
    }

    /// `plain_packet` with `options` bytes of IPv4 options (NOPs) and the
    /// datagram to `port`, its checksum right (0: none).
    fn packet_with(
        payload: &[u8],
        options: usize,
        padding: usize,
        port: u16,
    ) -> alloc::vec::Vec<u8> {
        use crate::wire::ipv4::HEADER_LEN;
        let mut bytes = plain_packet(payload, padding);
        let udp_len = 8 + payload.len();
        let mut udp = UdpPacket::new_unchecked(&mut bytes[HEADER_LEN..HEADER_LEN + udp_len]);
        udp.set_destination_port(port);
        udp.fill_checksum(
            core::net::Ipv4Addr::new(10, 0, 0, 1),
            core::net::Ipv4Addr::new(10, 0, 0, 2),
        );
        bytes.splice(HEADER_LEN..HEADER_LEN, core::iter::repeat_n(1, options));
        bytes[0] = 0x45 + (options / 4) as u8;
        let total = bytes.len() as u16;
        bytes[2..4].copy_from_slice(&total.to_be_bytes());
        bytes
    }

    #[test]
    fn the_node_decides_every_datagram_as_the_general_path_does() {
        let mut node = Udp::new(LocalAddresses::new(alloc::vec![]), ErrorLimiter::new());
        assert_eq!(node.bind(7), Ok(0));
        let pool = dataplane::Mempool::with_heap(1, 0).unwrap();
        let mut fast = 0;
        for length in [0, 1, 8, 56, 63, 64, 65, 100, 128, 129, 200] {
            let payload: alloc::vec::Vec<u8> = (0..length).map(|i| (i * 29 + 3) as u8).collect();
            for (options, padding, port) in [(0, 0, 7), (0, 0, 9), (4, 0, 7), (0, 2, 7), (8, 3, 9)]
            {
                let good = packet_with(&payload, options, padding, port);
                let checksum_at = 20 + options + 6;
                let mut bad_checksum = good.clone();
                bad_checksum[checksum_at + 1] ^= 0x40;
                let mut bad_payload = good.clone();
                *bad_payload.last_mut().unwrap() ^= 0x01;
                let mut no_checksum = good.clone();
                no_checksum[checksum_at..checksum_at + 2].fill(0);
                for bytes in [good, bad_checksum, bad_payload, no_checksum] {
                    let expected = match general(&bytes) {
                        Ok([0, 7]) => Verdict::emit(Udp::APP_0),
                        Ok(_) => Verdict::Keep,
                        Err(reason) => Verdict::drop(reason),
                    };
                    let plain = options == 0 && padding == 0;
                    for claims in [dataplane::Checked::IPV4_HEADER, dataplane::Checked::NONE] {
                        let mut packet = pool.alloc().unwrap();
                        packet.append(bytes.len()).unwrap().copy_from_slice(&bytes);
                        packet.set_checked(claims);
                        let case = (length, options, padding, port, claims);
                        assert_eq!(node.decide(&mut packet), expected, "{case:?}");
                        let after = match expected {
                            Verdict::Drop(_) => claims,
                            _ if plain && claims.is_ipv4() => claims.udp().plain(),
                            _ => claims.udp(),
                        };
                        assert_eq!(packet.checked(), after, "{case:?}");
                        fast += usize::from(after == claims.udp().plain());
                    }
                }
            }
        }
        // The plain good datagrams, to port 7 or 9, with a checksum or
        // none, of the claimed packets: 11 lengths, 2 ports, 2 checksums.
        assert_eq!(fast, 44);
    }

    #[test]
    fn a_clone_is_a_table_of_its_own() {
        let mut table = PortTable::new();
        table.bind(9).unwrap();
        let mut copy = table.clone();
        copy.bind(10).unwrap();
        assert_eq!(table.app(10u16.to_be_bytes()), None);
        assert_eq!(copy.app(10u16.to_be_bytes()), Some(1));
        assert_eq!(alloc::format!("{table:?}"), "[9]");
        assert_eq!(alloc::format!("{copy:?}"), "[9, 10]");
    }
}
