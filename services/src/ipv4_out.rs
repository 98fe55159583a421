//! `Ipv4Out`: routes IPv4 packets this core originates (echo replies, UDP
//! replies, ICMP errors) to the ARP stage of their egress interface.

use crate::MAX_INTERFACES;
use crate::arp::prepend_resolution_header;
use crate::route::RoutingTable;
use crate::wire::Ipv4Packet;
use alloc::vec::Vec;
use core::net::Ipv4Addr;
use dataplane::drop_reasons;
use dataplane::{Batch, MacAddr, Nanoservice, Outputs, Packet, Verdict};

drop_reasons! {
    /// Why [`Ipv4Out`] drops a packet.
    Ipv4OutDrop {
        /// Not a well-formed IPv4 packet (a bug upstream).
        Malformed = "malformed",
        /// No route to the destination.
        NoRoute = "no-route",
        /// No headroom for the link-layer header.
        NoHeadroom = "no-headroom",
    }
}

/// Routing for locally originated packets.
#[derive(Debug, Clone)]
pub struct Ipv4Out {
    routes: RoutingTable,
    macs: Vec<MacAddr>,
    /// The last lookup: replies go back to few peers, often one per
    /// burst. The table never changes after construction, so an entry
    /// never goes stale.
    last_route: Option<CachedRoute>,
}

/// A route lookup's result for one destination.
#[derive(Debug, Clone, Copy)]
struct CachedRoute {
    destination: Ipv4Addr,
    interface: usize,
    next_hop: Ipv4Addr,
    reply_from: Option<MacAddr>,
}

impl Ipv4Out {
    /// Output for interface 0; interface `n` is `INTERFACE_0 + n`.
    pub const INTERFACE_0: usize = 0;

    /// Routes with `routes`; `macs` are our MACs by interface index, for
    /// the reply hint (see [`crate::arp`]).
    pub fn new(routes: RoutingTable, macs: Vec<MacAddr>) -> Self {
        Self {
            routes,
            macs,
            last_route: None,
        }
    }

    /// The route for `destination`, from the one-entry cache or the table.
    #[inline]
    fn route(&mut self, destination: Ipv4Addr) -> Option<&CachedRoute> {
        if self
            .last_route
            .is_none_or(|route| route.destination != destination)
        {
            let (interface, next_hop) = self.routes.lookup(destination)?;
            self.last_route = Some(CachedRoute {
                destination,
                interface,
                next_hop,
                reply_from: self.macs.get(interface).copied(),
            });
        }
        self.last_route.as_ref()
    }

    /// Puts the resolution header for its route in front of `packet`.
    #[inline(always)]
    fn send(&mut self, packet: &mut Packet) -> Verdict {
        let destination = match Ipv4Packet::new_checked(packet.payload()) {
            Ok(view) => view.destination(),
            Err(_) => return Verdict::drop(Ipv4OutDrop::Malformed),
        };
        let Some(&CachedRoute {
            interface,
            next_hop,
            reply_from,
            ..
        }) = self.route(destination)
        else {
            return Verdict::drop(Ipv4OutDrop::NoRoute);
        };
        if prepend_resolution_header(packet, next_hop, reply_from).is_err() {
            return Verdict::drop(Ipv4OutDrop::NoHeadroom);
        }
        Verdict::emit(Self::INTERFACE_0 + interface.min(MAX_INTERFACES - 1))
    }
}

impl Nanoservice for Ipv4Out {
    fn name(&self) -> &'static str {
        "ipv4-out"
    }

    fn outputs(&self) -> &'static [&'static str] {
        &["if0", "if1", "if2", "if3"]
    }

    fn drop_reasons(&self) -> &'static [&'static str] {
        Ipv4OutDrop::NAMES
    }

    fn process(&mut self, batch: &mut Batch, out: &mut Outputs<'_>) {
        out.dispatch(batch, |packet, _| self.send(packet));
    }
}
