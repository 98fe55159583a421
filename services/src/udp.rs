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
use arrayvec::ArrayVec;
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

/// UDP demultiplexer.
#[derive(Debug, Clone)]
pub struct Udp {
    local: LocalAddresses,
    ports: ArrayVec<u16, MAX_UDP_APPS>,
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
            ports: ArrayVec::new(),
            errors,
        }
    }

    /// Binds `port`; datagrams to it leave on output `app<n>` (returned).
    pub fn bind(&mut self, port: u16) -> Result<usize, BindError> {
        if self.ports.contains(&port) {
            return Err(BindError::PortInUse(port));
        }
        self.ports
            .try_push(port)
            .map_err(|_| BindError::TooManyApps)?;
        Ok(self.ports.len() - 1)
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
            Ok(udp) => udp.destination_port(),
            Err(WireError::Truncated) => return Verdict::drop(UdpDrop::Truncated),
            Err(_) => return Verdict::drop(UdpDrop::BadLength),
        };
        packet.set_checked(checked.udp());
        match self.ports.iter().position(|bound| *bound == port) {
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
