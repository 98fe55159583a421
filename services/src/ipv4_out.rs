//! `Ipv4Out`: routes IPv4 packets this core originates (echo replies, UDP
//! replies, ICMP errors) to the ARP stage of their egress interface.

use crate::arp::prepend_resolution_header;
use crate::reasons::drop_reasons;
use crate::route::RoutingTable;
use crate::wire::Ipv4Packet;
use alloc::vec::Vec;
use dataplane::spec::MAX_INTERFACES;
use dataplane::{Batch, MacAddr, Nanoservice, Outputs};

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
}

impl Ipv4Out {
    /// Output for interface 0; interface `n` is `INTERFACE_0 + n`.
    pub const INTERFACE_0: usize = 0;

    /// Routes with `routes`; `macs` are our MACs by interface index, for
    /// the reply hint (see [`crate::arp`]).
    pub fn new(routes: RoutingTable, macs: Vec<MacAddr>) -> Self {
        Self { routes, macs }
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
        for mut packet in batch.drain() {
            let destination = match Ipv4Packet::new_checked(packet.payload()) {
                Ok(view) => view.destination(),
                Err(_) => {
                    out.drop(packet, Ipv4OutDrop::Malformed);
                    continue;
                }
            };
            let Some((interface, next_hop)) = self.routes.lookup(destination) else {
                out.drop(packet, Ipv4OutDrop::NoRoute);
                continue;
            };
            if prepend_resolution_header(&mut packet, next_hop, self.macs.get(interface).copied())
                .is_err()
            {
                out.drop(packet, Ipv4OutDrop::NoHeadroom);
                continue;
            }
            out.emit(
                Self::INTERFACE_0 + interface.min(MAX_INTERFACES - 1),
                packet,
            );
        }
    }
}
