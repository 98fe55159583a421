//! `Ipv4`: validates received IPv4 packets, delivers ours to `icmp`/`udp`,
//! forwards the rest when l3fwd is on (TTL decrement with an incremental
//! checksum, longest-prefix route, ARP resolution on the egress interface),
//! and sends rate-limited ICMP errors (time exceeded, net unreachable).
//!
//! Fragments are **not reassembled**: every fragment is dropped and counted
//! as `fragment`. Packets leaving the node start at the IP header; the
//! link-layer padding behind `total_len` is trimmed.

use crate::arp::prepend_resolution_header;
use crate::icmp_error::{TokenBucket, build_error, may_answer_with_error};
use crate::reasons::drop_reasons;
use crate::route::{LocalAddresses, Locality, RoutingTable};
use crate::wire::icmp::{kind, unreachable};
use crate::wire::ipv4::protocol;
use crate::wire::{Ipv4Packet, WireError};
use dataplane::spec::MAX_INTERFACES;
use dataplane::{Batch, Nanoservice, Outputs, Packet, Verdict};

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
        /// Source is broadcast, multicast, unspecified or one of ours.
        BadSource = "bad-source",
        /// For us, but neither ICMP nor UDP.
        UnknownProtocol = "unknown-protocol",
        /// Not for us and forwarding is off (or multicast).
        NotForUs = "not-for-us",
        /// To forward, with no route (ICMP net unreachable sent).
        NoRoute = "no-route",
        /// To forward, TTL would reach 0 (ICMP time exceeded sent).
        TtlExpired = "ttl-expired",
        /// No headroom for the link-layer header.
        NoHeadroom = "no-headroom",
    }
}

/// Output names of nodes that end in per-interface outputs.
pub(crate) const ROUTED_OUTPUTS: usize = 3;

/// IPv4 input: validation, local delivery, forwarding.
#[derive(Debug, Clone)]
pub struct Ipv4 {
    local: LocalAddresses,
    routes: RoutingTable,
    forwarding: bool,
    errors: TokenBucket,
}

impl Ipv4 {
    /// Output for ICMP to us.
    pub const ICMP: usize = 0;
    /// Output for UDP to us.
    pub const UDP: usize = 1;
    /// Output for ICMP errors we originate (to `ipv4-out`).
    pub const ERRORS: usize = 2;
    /// Output for forwarded packets leaving on interface 0; interface `n`
    /// is `INTERFACE_0 + n`.
    pub const INTERFACE_0: usize = ROUTED_OUTPUTS;

    /// A node for a core with these addresses and routes; `forwarding`
    /// when the core runs l3fwd.
    pub fn new(local: LocalAddresses, routes: RoutingTable, forwarding: bool) -> Self {
        Self {
            local,
            routes,
            forwarding,
            errors: TokenBucket::default(),
        }
    }

    fn send_error(&mut self, packet: &Packet, msg_type: u8, code: u8, out: &mut Outputs<'_>) {
        let offending = packet.payload();
        if !may_answer_with_error(offending) || !self.errors.allow(out.now_ns()) {
            return;
        }
        let Ok(view) = Ipv4Packet::new_checked(offending) else {
            return;
        };
        // Answer from our address on the interface that leads back.
        let Some(source) = self
            .routes
            .lookup(view.source())
            .and_then(|(interface, _)| self.local.on_interface(interface))
        else {
            return;
        };
        if let Some(error) = build_error(out, offending, source, msg_type, code) {
            out.emit(Self::ERRORS, error);
        }
    }

    fn forward(&mut self, packet: &mut Packet, out: &mut Outputs<'_>) -> Verdict {
        let (ttl, destination) = {
            let view = Ipv4Packet::new_unchecked(packet.payload());
            (view.ttl(), view.destination())
        };
        if ttl <= 1 {
            self.send_error(packet, kind::TIME_EXCEEDED, 0, out);
            return Verdict::drop(Ipv4Drop::TtlExpired);
        }
        let Some((interface, next_hop)) = self.routes.lookup(destination) else {
            self.send_error(packet, kind::DESTINATION_UNREACHABLE, unreachable::NET, out);
            return Verdict::drop(Ipv4Drop::NoRoute);
        };
        Ipv4Packet::new_unchecked(packet.payload_mut()).decrement_ttl();
        if prepend_resolution_header(packet, next_hop, None).is_err() {
            return Verdict::drop(Ipv4Drop::NoHeadroom);
        }
        Verdict::emit(Self::INTERFACE_0 + interface.min(MAX_INTERFACES - 1))
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
            (source.is_broadcast()
                || source.is_multicast()
                || source.is_unspecified()
                || self.local.is_ours(source))
            .then_some(Ipv4Drop::BadSource)
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
                _ => Verdict::drop(Ipv4Drop::UnknownProtocol),
            },
            Locality::Remote if self.forwarding && !destination.is_multicast() => {
                self.forward(packet, out)
            }
            Locality::Remote => Verdict::drop(Ipv4Drop::NotForUs),
        }
    }
}

impl Nanoservice for Ipv4 {
    fn name(&self) -> &'static str {
        "ipv4"
    }

    fn outputs(&self) -> &'static [&'static str] {
        &["icmp", "udp", "errors", "if0", "if1", "if2", "if3"]
    }

    fn drop_reasons(&self) -> &'static [&'static str] {
        Ipv4Drop::NAMES
    }

    fn process(&mut self, batch: &mut Batch, out: &mut Outputs<'_>) {
        out.dispatch(batch, |packet, out| self.receive(packet, out));
    }
}
