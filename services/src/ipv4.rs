//! `Ipv4`: validates received IPv4 packets, delivers ours to `icmp`, `udp`
//! or a service attached at `ipv4:proto:<n>`, and hands packets for others
//! to the service attached at `ipv4:forward` (l3fwd), if any.
//!
//! Fragments are **not reassembled**: every fragment is dropped and counted
//! as `fragment`. Packets leaving the node start at the IP header; the
//! link-layer padding behind `total_len` is trimmed.

use crate::icmp_error::{ErrorLimiter, is_martian};
use crate::route::{LocalAddresses, Locality};
use crate::wire::icmp::{kind, unreachable};
use crate::wire::ipv4::protocol;
use crate::wire::{Ipv4Packet, WireError};
use arrayvec::ArrayVec;
use dataplane::{Batch, Nanoservice, Outputs, Packet, Verdict, drop_reasons};

drop_reasons! {
    /// Why [`Ipv4`] drops a packet.
    Ipv4Drop {
        /// Shorter than a 20-byte header.
        Truncated = "truncated",
        /// Version is not 4.
        BadVersion = "bad-version",
        /// IHL below 5, or a header longer than the packet.
        BadHeaderLength = "bad-header-length",
        /// Total length below the header or beyond the frame.
        BadTotalLength = "bad-total-length",
        /// Header checksum mismatch.
        BadChecksum = "bad-checksum",
        /// A fragment (we do not reassemble).
        Fragment = "fragment",
        /// Arrived with TTL 0.
        TtlZero = "ttl-zero",
        /// Source is a martian (0/8, loopback, multicast, reserved,
        /// broadcast) or one of ours.
        BadSource = "bad-source",
        /// For us, but no service takes its protocol (ICMP protocol
        /// unreachable sent, rate-limited, when the destination was unicast).
        UnknownProtocol = "unknown-protocol",
        /// Not for us and nothing forwards (or multicast).
        NotForUs = "not-for-us",
    }
}

/// Most protocols besides ICMP and UDP that services can attach to
/// (`ipv4:proto:<n>`) on one core.
pub const MAX_PROTOCOL_HOOKS: usize = 4;

/// Why a protocol hook could not be bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtocolHookError {
    /// [`MAX_PROTOCOL_HOOKS`] protocols are bound already.
    TooMany,
}

/// IPv4 input: validation, then local delivery by protocol, or the
/// `forward` output for packets to others (when something forwards).
#[derive(Debug, Clone)]
pub struct Ipv4 {
    local: LocalAddresses,
    forwarding: bool,
    protocols: ArrayVec<u8, MAX_PROTOCOL_HOOKS>,
    errors: ErrorLimiter,
}

impl Ipv4 {
    /// Output for ICMP to us.
    pub const ICMP: usize = 0;
    /// Output for UDP to us.
    pub const UDP: usize = 1;
    /// Output for unicast packets to others (`ipv4:forward`).
    pub const FORWARD: usize = 2;
    /// Output of the first bound protocol; protocol hook `n` is
    /// `PROTOCOL_0 + n`.
    pub const PROTOCOL_0: usize = 3;
    /// Output for ICMP errors we originate (to `ipv4-out`).
    pub const ERRORS: usize = 3 + MAX_PROTOCOL_HOOKS;

    /// A node for a core with these addresses; `forwarding` when a service
    /// is attached at `ipv4:forward` (otherwise packets to others are
    /// dropped as `not-for-us`). Errors go through the core's `errors`
    /// limiter.
    pub fn new(local: LocalAddresses, forwarding: bool, errors: ErrorLimiter) -> Self {
        Self {
            local,
            forwarding,
            protocols: ArrayVec::new(),
            errors,
        }
    }

    /// Delivers packets of IP protocol `protocol` to us on output
    /// `proto<n>` (`n` returned). ICMP and UDP have outputs of their own.
    pub fn bind_protocol(&mut self, protocol: u8) -> Result<usize, ProtocolHookError> {
        if let Some(index) = self.protocols.iter().position(|bound| *bound == protocol) {
            return Ok(index);
        }
        self.protocols
            .try_push(protocol)
            .map_err(|_| ProtocolHookError::TooMany)?;
        Ok(self.protocols.len() - 1)
    }

    /// Validates `packet` and decides where it goes: to `icmp` or `udp`
    /// (trimmed to its total length), forwarded, or dropped.
    #[inline(always)]
    fn receive(&mut self, packet: &mut Packet, out: &mut Outputs<'_>) -> Verdict {
        let view = match Ipv4Packet::new_checked(packet.payload()) {
            Ok(view) => view,
            Err(error) => {
                return Verdict::drop(match error {
                    WireError::Truncated => Ipv4Drop::Truncated,
                    WireError::BadVersion => Ipv4Drop::BadVersion,
                    WireError::BadHeaderLength => Ipv4Drop::BadHeaderLength,
                    WireError::BadLength => Ipv4Drop::BadTotalLength,
                });
            }
        };
        let reason = if !view.verify_checksum() {
            Some(Ipv4Drop::BadChecksum)
        } else if view.is_fragment() {
            Some(Ipv4Drop::Fragment)
        } else if view.ttl() == 0 {
            Some(Ipv4Drop::TtlZero)
        } else {
            let source = view.source();
            (is_martian(source) || self.local.is_ours(source)).then_some(Ipv4Drop::BadSource)
        };
        if let Some(reason) = reason {
            return Verdict::drop(reason);
        }
        let (total_len, destination, protocol) =
            (view.total_len(), view.destination(), view.protocol());
        packet.truncate(usize::from(total_len));
        match self.local.locality(destination) {
            Locality::Unicast | Locality::Broadcast => match protocol {
                protocol::ICMP => Verdict::emit(Self::ICMP),
                protocol::UDP => Verdict::emit(Self::UDP),
                other => match self.protocols.iter().position(|bound| *bound == other) {
                    Some(index) => Verdict::emit(Self::PROTOCOL_0 + index),
                    None => self.protocol_unreachable(packet, destination, out),
                },
            },
            Locality::Remote if self.forwarding && !destination.is_multicast() => {
                Verdict::emit(Self::FORWARD)
            }
            Locality::Remote => Verdict::drop(Ipv4Drop::NotForUs),
        }
    }

    /// Answers a packet for a protocol nobody takes with ICMP protocol
    /// unreachable (RFC 1122 3.2.2.1), when allowed, and drops it.
    #[cold]
    fn protocol_unreachable(
        &self,
        packet: &Packet,
        destination: core::net::Ipv4Addr,
        out: &mut Outputs<'_>,
    ) -> Verdict {
        if let Some(error) = self.errors.error_for(
            out,
            &self.local,
            packet.payload(),
            destination,
            (kind::DESTINATION_UNREACHABLE, unreachable::PROTOCOL),
        ) {
            out.emit(Self::ERRORS, error);
        }
        Verdict::drop(Ipv4Drop::UnknownProtocol)
    }
}

impl Nanoservice for Ipv4 {
    fn name(&self) -> &'static str {
        "ipv4"
    }

    fn outputs(&self) -> &'static [&'static str] {
        &[
            "icmp", "udp", "forward", "proto0", "proto1", "proto2", "proto3", "errors",
        ]
    }

    fn drop_reasons(&self) -> &'static [&'static str] {
        Ipv4Drop::NAMES
    }

    fn process(&mut self, batch: &mut Batch, out: &mut Outputs<'_>) {
        out.dispatch(batch, |packet, out| self.receive(packet, out));
    }
}
