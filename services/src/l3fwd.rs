//! `L3fwd`: forwards IPv4 packets that are not for us (attached at
//! `ipv4:forward`): TTL decrement with an incremental checksum,
//! longest-prefix route, ARP resolution on the egress interface, and
//! rate-limited ICMP errors (time exceeded, net unreachable).

use crate::MAX_INTERFACES;
use crate::arp::prepend_resolution_header;
use crate::icmp_error::ErrorLimiter;
use crate::route::{LocalAddresses, RoutingTable};
use crate::wire::Ipv4Packet;
use crate::wire::icmp::{kind, unreachable};
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

    fn send_error(&mut self, packet: &Packet, msg_type: u8, code: u8, out: &mut Outputs<'_>) {
        let offending = packet.payload();
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
        if let Some(error) =
            self.errors
                .error_for(out, &self.local, offending, source, (msg_type, code))
        {
            out.emit(Self::ERRORS, error);
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
    }
}
