//! `L3fwd`: forwards IPv4 packets that are not for us (attached at
//! `ipv4:forward`): TTL decrement with an incremental checksum,
//! longest-prefix route, ARP resolution on the egress interface, and
//! rate-limited ICMP errors (time exceeded, net unreachable). A packet
//! longer than the egress MTU is fragmented, or, with don't-fragment set,
//! dropped with ICMP fragmentation needed (3/4) carrying the MTU (RFC 1191).

use crate::MAX_INTERFACES;
use crate::arp::prepend_resolution_header;
use crate::fragment::{Fragmenter, MTU};
use crate::icmp_error::ErrorLimiter;
use crate::route::{LocalAddresses, RoutingTable};
use crate::wire::icmp::{kind, unreachable};
use crate::wire::{IcmpPacket, Ipv4Packet};
use dataplane::{Batch, Nanoservice, Outputs, Packet, Verdict, drop_reasons};

drop_reasons! {
    /// Why [`L3fwd`] drops a packet.
    L3fwdDrop {
        /// Not a well-formed IPv4 packet (a bug upstream).
        Malformed = "malformed",
        /// No route to the destination (ICMP net unreachable sent).
        NoRoute = "no-route",
        /// TTL would reach 0 (ICMP time exceeded sent).
        TtlExpired = "ttl-expired",
        /// No headroom for the link-layer header.
        NoHeadroom = "no-headroom",
        /// Longer than the egress MTU with don't-fragment set (ICMP
        /// fragmentation needed sent).
        FragmentationNeeded = "fragmentation-needed",
        /// Longer than the egress MTU and the pool ran dry fragmenting it.
        NoBuffer = "no-buffer",
    }
}

/// The IPv4 forwarder of one core.
#[derive(Debug, Clone)]
pub struct L3fwd {
    local: LocalAddresses,
    routes: RoutingTable,
    errors: ErrorLimiter,
}

impl L3fwd {
    /// Output for ICMP errors we originate (to `ipv4-out`).
    pub const ERRORS: usize = 0;
    /// Output for packets leaving on interface 0; interface `n` is
    /// `INTERFACE_0 + n`.
    pub const INTERFACE_0: usize = 1;

    /// A forwarder with these addresses (ICMP errors come from ours) and
    /// routes, sending its errors through the core's `errors` limiter.
    pub fn new(local: LocalAddresses, routes: RoutingTable, errors: ErrorLimiter) -> Self {
        Self {
            local,
            routes,
            errors,
        }
    }

    /// Sends the ICMP error `(msg_type, code)` about `packet` back to its
    /// source (rate-limited; none about errors, fragments, broadcasts).
    fn send_error(&mut self, packet: &Packet, msg_type: u8, code: u8, out: &mut Outputs<'_>) {
        if let Some(error) = self.error(packet, msg_type, code, out) {
            out.emit(Self::ERRORS, error);
        }
    }

    /// Builds the ICMP error `send_error` sends.
    fn error(
        &mut self,
        packet: &Packet,
        msg_type: u8,
        code: u8,
        out: &mut Outputs<'_>,
    ) -> Option<Packet> {
        let offending = packet.payload();
        let view = Ipv4Packet::new_checked(offending).ok()?;
        // Answer from our address on the interface that leads back.
        let source = self
            .routes
            .lookup(view.source())
            .and_then(|(interface, _)| self.local.on_interface(interface))?;
        self.errors
            .error_for(out, &self.local, offending, source, (msg_type, code))
    }

    /// A packet longer than the MTU (TTL checked, not yet decremented):
    /// fragments, or fragmentation needed when it says don't fragment.
    #[cold]
    #[inline(never)]
    fn too_big(&mut self, mut packet: Packet, out: &mut Outputs<'_>) {
        let Ok(view) = Ipv4Packet::new_checked(packet.payload()) else {
            return out.drop(packet, L3fwdDrop::Malformed);
        };
        let (dont_fragment, destination) = (view.dont_fragment(), view.destination());
        let Some((interface, next_hop)) = self.routes.lookup(destination) else {
            return out.drop(packet, L3fwdDrop::NoRoute);
        };
        if dont_fragment {
            if let Some(mut error) = self.error(
                &packet,
                kind::DESTINATION_UNREACHABLE,
                unreachable::FRAGMENTATION_NEEDED,
                out,
            ) {
                // RFC 1191: the next-hop MTU in the second half of the
                // otherwise unused word.
                let message = &mut error.payload_mut()[crate::wire::ipv4::HEADER_LEN..];
                message[6..8].copy_from_slice(&(MTU as u16).to_be_bytes());
                IcmpPacket::new_unchecked(message).fill_checksum();
                out.emit(Self::ERRORS, error);
            }
            return out.drop(packet, L3fwdDrop::FragmentationNeeded);
        }
        let output = Self::INTERFACE_0 + interface.min(MAX_INTERFACES - 1);
        Ipv4Packet::new_unchecked(packet.payload_mut()).decrement_ttl();
        let Ok(mut cutter) = Fragmenter::new(packet.payload(), MTU) else {
            return out.drop(packet, L3fwdDrop::Malformed);
        };
        while !cutter.is_done() {
            let Some(mut piece) = out.alloc() else {
                return out.drop(packet, L3fwdDrop::NoBuffer);
            };
            if cutter.write_next(&mut piece).is_err() {
                return out.drop(packet, L3fwdDrop::NoBuffer);
            }
            if prepend_resolution_header(&mut piece, next_hop, None).is_err() {
                return out.drop(packet, L3fwdDrop::NoHeadroom);
            }
            out.emit(output, piece);
        }
    }

    /// Routes `packet` to its egress interface's ARP stage.
    fn forward(&mut self, packet: &mut Packet, out: &mut Outputs<'_>) -> Verdict {
        let Ok(view) = Ipv4Packet::new_checked(packet.payload()) else {
            return Verdict::drop(L3fwdDrop::Malformed);
        };
        let (ttl, destination) = (view.ttl(), view.destination());
        if ttl <= 1 {
            self.send_error(packet, kind::TIME_EXCEEDED, 0, out);
            return Verdict::drop(L3fwdDrop::TtlExpired);
        }
        let Some((interface, next_hop)) = self.routes.lookup(destination) else {
            self.send_error(packet, kind::DESTINATION_UNREACHABLE, unreachable::NET, out);
            return Verdict::drop(L3fwdDrop::NoRoute);
        };
        if packet.len() > MTU {
            // Handled after the burst (the error quotes the TTL as it came,
            // as Linux does).
            return Verdict::Keep;
        }
        Ipv4Packet::new_unchecked(packet.payload_mut()).decrement_ttl();
        if prepend_resolution_header(packet, next_hop, None).is_err() {
            return Verdict::drop(L3fwdDrop::NoHeadroom);
        }
        Verdict::emit(Self::INTERFACE_0 + interface.min(MAX_INTERFACES - 1))
    }
}

impl Nanoservice for L3fwd {
    fn name(&self) -> &'static str {
        "l3fwd"
    }

    fn outputs(&self) -> &'static [&'static str] {
        &["errors", "if0", "if1", "if2", "if3"]
    }

    fn drop_reasons(&self) -> &'static [&'static str] {
        L3fwdDrop::NAMES
    }

    fn process(&mut self, batch: &mut Batch, out: &mut Outputs<'_>) {
        out.dispatch(batch, |packet, out| self.forward(packet, out));
        // What `forward` kept: packets longer than the MTU.
        for packet in batch.drain() {
            self.too_big(packet, out);
        }
    }
}
