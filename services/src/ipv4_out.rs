//! `Ipv4Out`: routes IPv4 packets this core originates (echo replies, UDP
//! replies, ICMP errors) to the ARP stage of their egress interface, in
//! fragments when longer than the MTU (the echo of a reassembled 65507-byte
//! ping).
//!
//! When the interface's `arp` published the next hop's binding (see
//! [`crate::neighbour`]), the packet gets its whole Ethernet header here
//! and leaves on `tx<n>`, straight to the port: the common reply path
//! does not pass through `arp`. Everything else goes to `arp` on `if<n>`
//! behind a resolution header, as before.
//!
//! Only datagrams over the MTU come without link headroom (reassembled
//! ones, in the reassembly pool's buffers), so the length is looked at
//! only when the link header does not fit: the common path pays nothing.
//! A service that builds a packet over the MTU in a regular buffer (2048
//! bytes of data) must keep it within the MTU itself.

use crate::MAX_INTERFACES;
use crate::arp::prepend_resolution_header;
use crate::fragment::{Fragmenter, MTU};
use crate::neighbour::Neighbour;
use crate::route::RoutingTable;
use crate::wire::Ipv4Packet;
use crate::wire::ethernet::{self, EtherType};
use alloc::sync::Arc;
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
        /// Longer than the MTU and the pool ran dry while fragmenting it
        /// (the fragments made so far were sent).
        NoBuffer = "no-buffer",
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
    /// By interface, the binding its `arp` publishes (none: every packet
    /// goes through `arp`).
    neighbours: [Option<Arc<Neighbour>>; MAX_INTERFACES],
}

/// The Ethernet header `ipv4-out` wrote last in a burst, and where that
/// frame went: the next packet to the same destination gets a copy.
#[derive(Debug, Clone, Copy)]
struct Rewrite {
    /// The destination's address bits as its wire bytes read natively,
    /// widened; [`Rewrite::NO_DESTINATION`] (which no address equals)
    /// before a header was written. One compare tells a repeat.
    key: u64,
    /// `TX_0 + interface`.
    output: u8,
    /// The header's bytes 0..8 and 6..14: written as two overlapping
    /// 8-byte stores instead of a 14-byte copy in five pieces.
    front: [u8; 8],
    back: [u8; 8],
}

impl Rewrite {
    /// Above every address's 32 bits.
    const NO_DESTINATION: u64 = 1 << 32;

    /// Nothing written yet in this burst.
    const NONE: Self = Self {
        key: Self::NO_DESTINATION,
        output: 0,
        front: [0; 8],
        back: [0; 8],
    };

    /// The key of `destination`'s wire bytes.
    #[inline(always)]
    fn key(destination: [u8; 4]) -> u64 {
        u64::from(u32::from_ne_bytes(destination))
    }

    /// Remembers `header`, sent on `output`, for `destination`.
    #[inline(always)]
    fn new(destination: Ipv4Addr, output: u8, header: &[u8; ethernet::HEADER_LEN]) -> Self {
        let (mut front, mut back) = ([0; 8], [0; 8]);
        front.copy_from_slice(&header[..8]);
        back.copy_from_slice(&header[6..]);
        Self {
            key: Self::key(destination.octets()),
            output,
            front,
            back,
        }
    }

    /// Writes the remembered header.
    #[inline(always)]
    fn write(&self, header: &mut [u8; ethernet::HEADER_LEN]) {
        header[..8].copy_from_slice(&self.front);
        header[6..].copy_from_slice(&self.back);
    }

    /// Puts the remembered header in front of `packet` when it goes to
    /// the same destination (by its upstream claim) and has the headroom:
    /// true, and it leaves on `output`. Otherwise false, and `packet` is
    /// as it was.
    #[inline(always)]
    fn send_again(&self, packet: &mut Packet) -> bool {
        let Some(destination) = checked_destination(packet) else {
            return false;
        };
        if Self::key(destination) != self.key {
            return false;
        }
        let Ok(header) = packet.prepend(ethernet::HEADER_LEN) else {
            return false;
        };
        if let Some(header) = header.first_chunk_mut::<{ ethernet::HEADER_LEN }>() {
            self.write(header);
        }
        true
    }
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
    /// Output for interface 0 (to its `arp`); interface `n` is
    /// `INTERFACE_0 + n`.
    pub const INTERFACE_0: usize = 0;
    /// Output for frames completed here for interface 0 (to its port);
    /// interface `n` is `TX_0 + n`.
    pub const TX_0: usize = MAX_INTERFACES;

    /// Routes with `routes`; `macs` are our MACs by interface index, for
    /// the reply hint (see [`crate::arp`]).
    pub fn new(routes: RoutingTable, macs: Vec<MacAddr>) -> Self {
        Self {
            routes,
            macs,
            last_route: None,
            neighbours: Default::default(),
        }
    }

    /// Completes frames itself, to the port, for the next hop the
    /// interface's `arp` publishes in `neighbours[interface]`.
    pub fn with_neighbours(mut self, neighbours: [Option<Arc<Neighbour>>; MAX_INTERFACES]) -> Self {
        self.neighbours = neighbours;
        self
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

    /// Puts the link header for its route in front of `packet`: the
    /// burst's last header again when the packet goes where the one
    /// before went (see [`Rewrite::send_again`]), else
    /// [`Self::send_first`]'s, remembered in `last`. Keeps a packet
    /// without headroom for it (see [`Self::send_fragments`]).
    #[inline(always)]
    fn send(&mut self, packet: &mut Packet, now_ns: u64, last: &mut Rewrite) -> Verdict {
        if last.send_again(packet) {
            // The burst's last destination again: its route, its next
            // hop's binding and so its header hold for the whole burst.
            return Verdict::Emit(last.output);
        }
        self.send_new(packet, now_ns, last)
    }

    /// [`Self::send`] for a packet that does not go where the one before
    /// went: [`Self::send_first`]'s header, remembered in `last` when it
    /// went straight to the port.
    #[inline(always)]
    fn send_new(&mut self, packet: &mut Packet, now_ns: u64, last: &mut Rewrite) -> Verdict {
        let (verdict, rewrite) = self.send_first(packet, now_ns);
        if let Some(rewrite) = rewrite {
            *last = rewrite;
        }
        verdict
    }

    /// [`Self::send`] for the first packet of a burst to its destination
    /// (or one without the upstream claim): the route and the next hop's
    /// binding looked up, and the header written, returned to be
    /// remembered when it went straight to the port. Out of line and
    /// returning the header by value, so that the loop keeps the
    /// remembered header in registers (a `&mut` into a call made it live
    /// on the stack, reloaded each packet).
    #[inline(never)]
    fn send_first(&mut self, packet: &mut Packet, now_ns: u64) -> (Verdict, Option<Rewrite>) {
        let destination = match checked_destination(packet) {
            Some(destination) => Ipv4Addr::from(destination),
            None => match Ipv4Packet::new_checked(packet.payload()) {
                Ok(view) => view.destination(),
                Err(_) => return (Verdict::drop(Ipv4OutDrop::Malformed), None),
            },
        };
        let Some(&CachedRoute {
            interface,
            next_hop,
            reply_from,
            ..
        }) = self.route(destination)
        else {
            return (Verdict::drop(Ipv4OutDrop::NoRoute), None);
        };
        let interface = interface.min(MAX_INTERFACES - 1);
        if let Some(source) = reply_from
            && let Some(next_hop_mac) = self.neighbours[interface]
                .as_ref()
                .and_then(|neighbour| neighbour.lookup(next_hop, now_ns))
        {
            let Ok(header) = packet.prepend(ethernet::HEADER_LEN) else {
                return (Verdict::Keep, None);
            };
            let mut rewrite = [0u8; ethernet::HEADER_LEN];
            rewrite[..6].copy_from_slice(&next_hop_mac.0);
            rewrite[6..12].copy_from_slice(&source.0);
            rewrite[12..].copy_from_slice(&EtherType::IPV4.0.to_be_bytes());
            if let Some(header) = header.first_chunk_mut::<{ ethernet::HEADER_LEN }>() {
                *header = rewrite;
            }
            let output = Self::TX_0 + interface;
            // `TX_0 + interface` is below 8.
            let remembered = Rewrite::new(destination, output as u8, &rewrite);
            return (Verdict::emit(output), Some(remembered));
        }
        if prepend_resolution_header(packet, next_hop, reply_from).is_err() {
            return (Verdict::Keep, None);
        }
        (Verdict::emit(Self::INTERFACE_0 + interface), None)
    }
}

/// The destination's wire bytes of a packet whose IPv4 header was checked
/// upstream (the packet's claim): read at its usual place, not parsed
/// again. `None` without the claim.
#[inline(always)]
fn checked_destination(packet: &Packet) -> Option<[u8; 4]> {
    if !packet.checked().is_ipv4() {
        return None;
    }
    let header = packet
        .payload()
        .first_chunk::<{ crate::wire::ipv4::HEADER_LEN }>()?;
    // One 4-byte load (the bytes taken one by one made four).
    let mut destination = [0; 4];
    destination.copy_from_slice(&header[16..]);
    Some(destination)
}

impl Ipv4Out {
    /// Sends `batch`, whose packets `0..decided` got `verdict` already,
    /// each where [`Self::send`] says (`last` as the packet before the
    /// rest left it); `Keep` packets stay in `batch`.
    #[inline(never)]
    fn send_rest(
        &mut self,
        batch: &mut Batch,
        out: &mut Outputs<'_>,
        (verdict, decided): (Verdict, usize),
        now_ns: u64,
        mut last: Rewrite,
    ) {
        let mut index = 0;
        out.dispatch(batch, |packet, _| {
            index += 1;
            if index <= decided {
                verdict
            } else {
                self.send(packet, now_ns, &mut last)
            }
        });
    }

    /// The packets `send` kept: fragmented when over the MTU, else
    /// dropped.
    #[cold]
    #[inline(never)]
    fn without_headroom(&mut self, batch: &mut Batch, out: &mut Outputs<'_>) {
        for packet in batch.drain() {
            if packet.len() > MTU {
                self.send_fragments(packet, out);
            } else {
                out.drop(packet, Ipv4OutDrop::NoHeadroom);
            }
        }
    }

    /// Sends a packet longer than the MTU as fragments in fresh buffers.
    #[cold]
    #[inline(never)]
    fn send_fragments(&mut self, packet: Packet, out: &mut Outputs<'_>) {
        let destination = match Ipv4Packet::new_checked(packet.payload()) {
            Ok(view) => view.destination(),
            Err(_) => return out.drop(packet, Ipv4OutDrop::Malformed),
        };
        let Some(&CachedRoute {
            interface,
            next_hop,
            ..
        }) = self.route(destination)
        else {
            return out.drop(packet, Ipv4OutDrop::NoRoute);
        };
        let output = Self::INTERFACE_0 + interface.min(MAX_INTERFACES - 1);
        let Ok(mut cutter) = Fragmenter::new(packet.payload(), MTU) else {
            return out.drop(packet, Ipv4OutDrop::Malformed);
        };
        while !cutter.is_done() {
            let Some(mut piece) = out.alloc() else {
                return out.drop(packet, Ipv4OutDrop::NoBuffer);
            };
            if cutter.write_next(&mut piece).is_err() {
                return out.drop(packet, Ipv4OutDrop::NoBuffer);
            }
            // A fresh buffer: no reply hint.
            if prepend_resolution_header(&mut piece, next_hop, None).is_err() {
                return out.drop(packet, Ipv4OutDrop::NoHeadroom);
            }
            out.emit(output, piece);
        }
    }
}

impl Nanoservice for Ipv4Out {
    fn name(&self) -> &'static str {
        "ipv4-out"
    }

    fn outputs(&self) -> &'static [&'static str] {
        &["if0", "if1", "if2", "if3", "tx0", "tx1", "tx2", "tx3"]
    }

    fn drop_reasons(&self) -> &'static [&'static str] {
        Ipv4OutDrop::NAMES
    }

    fn process(&mut self, batch: &mut Batch, out: &mut Outputs<'_>) {
        // The clock and the published bindings do not change during the
        // burst: a header built once holds for its destination until the
        // burst ends.
        let now_ns = out.now_ns();
        let mut last = Rewrite::NONE;
        let mut packets = batch.iter_mut();
        let Some(first) = packets.next() else {
            return;
        };
        let verdict = self.send_new(first, now_ns, &mut last);
        // The busy path: the first packet went straight to the port, and
        // so do those behind it, to the same destination. They get its
        // header in a loop that writes nothing else, and the burst moves
        // on whole.
        let mut decided = 1;
        if verdict == Verdict::Emit(last.output) {
            let behind = packets.len();
            // `all`, not `position`: no count kept per packet; what is
            // left of the walk tells where it stopped.
            if packets.all(|packet| last.send_again(packet)) {
                out.emit_batch(usize::from(last.output), batch);
                return;
            }
            // Those that took the header; the one that did not is
            // decided again below, untouched.
            decided += behind - packets.len() - 1;
        }
        // The packets `0..decided` got `verdict`; the rest one by one.
        self.send_rest(batch, out, (verdict, decided), now_ns, last);
        // What `send` kept: packets without link headroom. Datagrams over
        // the MTU are those (reassembled ones live in headroom-free
        // buffers of up to 65535 bytes): they leave in fragments.
        if !batch.is_empty() {
            self.without_headroom(batch, out);
        }
    }
}

#[cfg(test)]
mod tests;
