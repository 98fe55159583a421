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
                    return Verdict::drop(UdpDrop::Truncated);
                };
                (addresses_of(header), datagram)
            }
            None => {
                let Ok(ip) = Ipv4Packet::new_checked(bytes) else {
                    return Verdict::drop(UdpDrop::Truncated);
                };
                let datagram = &bytes[ip.header_len()..usize::from(ip.total_len())];
                ((ip.source(), ip.destination()), datagram)
            }
        };
        let (source, destination) = addresses;
        let port = match UdpPacket::new_checked(datagram) {
            Ok(udp) if !udp.verify_checksum(source, destination) => {
                return Verdict::drop(UdpDrop::BadChecksum);
            }
            // Back to the wire's bytes: the swap and its undo cancel.
            Ok(udp) => udp.destination_port().to_be_bytes(),
            Err(WireError::Truncated) => return Verdict::drop(UdpDrop::Truncated),
            Err(_) => return Verdict::drop(UdpDrop::BadLength),
        };
        packet.set_checked(checked.udp());
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

/// The source and destination addresses of an IPv4 header.
#[inline(always)]
fn addresses_of(header: &[u8; 20]) -> (core::net::Ipv4Addr, core::net::Ipv4Addr) {
    let [.., s0, s1, s2, s3, d0, d1, d2, d3] = *header;
    (
        core::net::Ipv4Addr::new(s0, s1, s2, s3),
        core::net::Ipv4Addr::new(d0, d1, d2, d3),
    )
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
        out.dispatch(batch, |packet, _| self.demultiplex(packet));
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
