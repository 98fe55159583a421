//! `Arp`: one interface's ARP (RFC 826). Answers requests for our address
//! in place, learns senders into an [`ArpCache`], resolves next hops for
//! outgoing IPv4 (queueing up to a burst per destination while a request is
//! out) and announces itself with a gratuitous ARP on its first tick.
//!
//! Its input carries two kinds of frames, told apart by EtherType:
//! * `0x0806`: ARP from the wire (via `eth`).
//! * `0x0800`: IPv4 packets waiting for link-layer resolution, behind a
//!   *resolution header* written by [`prepend_resolution_header`]: an
//!   Ethernet header whose first four destination bytes hold the next hop.
//!   Frames from the wire never arrive here with that EtherType.
//!
//! **Reply hint.** A reply built in place (echo, UDP echo) still has the
//! request's Ethernet header in its headroom. When that header was unicast
//! to our MAC on the egress interface, `ipv4-out` keeps the request's
//! source MAC in the resolution header (byte 4 = 1, bytes 6..12 = MAC) and
//! `arp` sends the reply there when its cache has no binding. With several
//! queues, ARP replies may land on another core's queue; the hint keeps
//! replies flowing without a per-core binding. Forwarded packets and fresh
//! buffers never carry a hint.

use crate::arp_cache::ArpCache;
use crate::icmp_error::is_martian;
use crate::neighbour::Neighbour;
use crate::wire::arp::{self, ArpOperation, ArpPacket};
use crate::wire::ethernet::{self, EtherType, EthernetFrame};
use alloc::sync::Arc;
use arrayvec::ArrayVec;
use core::net::Ipv4Addr;
use dataplane::Ipv4Cidr;
use dataplane::drop_reasons;
use dataplane::{Batch, MacAddr, Nanoservice, Outputs, Packet, PacketError, Verdict};
use dataplane::{Consumer, Producer, SpscRing};

/// Destinations that may wait for resolution at once.
pub const MAX_PENDING_DESTINATIONS: usize = 8;
/// Packets that may wait per destination: a whole receive burst. The
/// first burst towards a next hop nobody resolved yet arrives in one poll
/// (a router's l3fwd, a load balancer's new backend), before any reply
/// can: with 4 (as before) the other 28 of a full burst were dropped as
/// `queue-full` at the start of every forwarding run (the bench's last
/// 6–26 "lost" probes). Linux holds about 100 small packets per neighbour
/// (`unres_qlen_bytes`). At most 8 × 32 buffers wait, for at most 1 s.
pub const PENDING_PACKETS_PER_DESTINATION: usize = dataplane::BURST_SIZE;
/// Interval between ARP requests for one destination.
pub const REQUEST_INTERVAL_NS: u64 = 250_000_000;
/// How long packets wait for a reply before they are dropped.
pub const RESOLUTION_TIMEOUT_NS: u64 = 1_000_000_000;

drop_reasons! {
    /// Why [`Arp`] drops a frame.
    ArpDrop {
        /// Shorter than Ethernet + 28 bytes of ARP.
        Truncated = "truncated",
        /// Not Ethernet/IPv4 ARP, or an operation other than request/reply.
        UnsupportedFormat = "unsupported-format",
        /// A request or reply about another host (ignored, after refreshing
        /// a cached sender).
        NotForUs = "not-for-us",
        /// Sender is a multicast/zero MAC, or claims our address or one no
        /// neighbour can own: unspecified, 0/8, loopback, multicast,
        /// reserved, broadcast or the subnet's broadcast (as Linux's
        /// `arp_process` ignores them).
        BadSender = "bad-sender",
        /// The destination's wait queue was full.
        QueueFull = "queue-full",
        /// Too many destinations waiting already.
        PendingFull = "pending-full",
        /// No reply within the resolution timeout.
        ResolutionTimeout = "resolution-timeout",
        /// An IPv4 frame without a valid resolution header.
        BadResolutionHeader = "bad-resolution-header",
    }
}

/// Writes the resolution header in front of an IPv4 packet bound for
/// `next_hop` (see the module docs). With `reply_from = Some(mac)`, the
/// source MAC of the Ethernet header still in the headroom becomes the
/// reply hint if that header was IPv4 unicast to `mac`.
pub fn prepend_resolution_header(
    packet: &mut Packet,
    next_hop: Ipv4Addr,
    reply_from: Option<MacAddr>,
) -> Result<(), PacketError> {
    // `prepend` returns exactly the header's bytes; as an array, every
    // index below is checked at compile time.
    let Some(header) = packet
        .prepend(ethernet::HEADER_LEN)?
        .first_chunk_mut::<{ ethernet::HEADER_LEN }>()
    else {
        return Err(PacketError::NoHeadroom);
    };
    let ipv4 = EtherType::IPV4.0.to_be_bytes();
    let hint = reply_from.is_some_and(|ours| header[..6] == ours.0 && header[12..14] == ipv4)
        && ethernet::mac_at(&header[6..12]).is_unicast();
    header[..4].copy_from_slice(&next_hop.octets());
    header[4] = u8::from(hint);
    header[5] = 0;
    if !hint {
        header[6..12].fill(0);
    }
    header[12..14].copy_from_slice(&ipv4);
    Ok(())
}

/// The next hop in the resolution header in front of `packet` (which holds
/// a whole Ethernet header), read as one word.
#[inline(always)]
fn next_hop_of(packet: &Packet) -> Ipv4Addr {
    let mut octets = [0u8; 4];
    octets.copy_from_slice(&packet.payload()[..4]);
    Ipv4Addr::from(octets)
}

/// A next hop and its MAC, remembered between the packets of one burst:
/// replies go back to few peers, often one per burst.
#[derive(Debug, Clone, Copy)]
struct Resolved {
    next_hop: Ipv4Addr,
    mac: MacAddr,
}

impl Resolved {
    /// Remembers nothing: the broadcast next hop resolves to the broadcast
    /// MAC anyway, so it needs no sentinel.
    const NONE: Self = Self {
        next_hop: Ipv4Addr::BROADCAST,
        mac: MacAddr::BROADCAST,
    };
}

#[derive(Debug)]
struct Pending {
    next_hop: Ipv4Addr,
    first_ns: u64,
    last_request_ns: u64,
    packets: ArrayVec<Packet, PENDING_PACKETS_PER_DESTINATION>,
}

/// Bindings one core's ARP of an interface passes to the other cores'
/// (one ring per pair of cores and direction).
pub const RELAY_RING_CAPACITY: usize = 256;

/// One core's ends of the rings that share what ARP learns on one
/// interface between the cores: each core's cache is its own, and an ARP
/// reply lands on one core only (a NIC steers ARP by a hash that does not
/// see the addresses, so all of an interface's ARP may reach one core),
/// while any core may have to forward to that neighbour (a firewall hands
/// a flow to its owner core). Bindings, not frames, cross: no buffer, no
/// lock; a full ring loses the binding (the core asks again). Only
/// bindings from replies cross: a core that needs a neighbour asks, and
/// the answer reaches it wherever it lands.
pub struct ArpRelay {
    /// The interface's index.
    pub interface: usize,
    to: alloc::vec::Vec<Producer<(Ipv4Addr, MacAddr)>>,
    from: alloc::vec::Vec<Consumer<(Ipv4Addr, MacAddr)>>,
}

impl core::fmt::Debug for ArpRelay {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "ArpRelay(if{}, {} peers)", self.interface, self.to.len())
    }
}

/// The relays of `interface` between `cores` cores: element `core` is
/// that core's (none for one core).
pub fn link_relays(interface: usize, cores: usize) -> alloc::vec::Vec<ArpRelay> {
    let mut relays: alloc::vec::Vec<ArpRelay> = (0..cores)
        .map(|_| ArpRelay {
            interface,
            to: alloc::vec::Vec::new(),
            from: alloc::vec::Vec::new(),
        })
        .collect();
    if cores < 2 {
        return alloc::vec::Vec::new();
    }
    for source in 0..cores {
        for destination in 0..cores {
            if source == destination {
                continue;
            }
            let Ok((producer, consumer)) = SpscRing::with_capacity(RELAY_RING_CAPACITY) else {
                unreachable!("a power of two")
            };
            relays[source].to.push(producer);
            relays[destination].from.push(consumer);
        }
    }
    relays
}

/// ARP for one interface.
#[derive(Debug)]
pub struct Arp {
    mac: MacAddr,
    address: Ipv4Cidr,
    /// The subnet's broadcast address; 255.255.255.255 for /31 and /32,
    /// which have none (computed once: `address` never changes).
    directed_broadcast: Ipv4Addr,
    cache: ArpCache,
    pending: ArrayVec<Pending, MAX_PENDING_DESTINATIONS>,
    announced: bool,
    relay: Option<ArpRelay>,
    /// Where the binding in use is published for `ipv4-out` (see
    /// [`crate::neighbour`]).
    neighbour: Option<Arc<Neighbour>>,
}

impl Arp {
    /// Output to the interface's transmit queue.
    pub const TX: usize = 0;
    /// Output for ARP replies absorbed into the cache (a sink).
    pub const ABSORBED: usize = 1;

    /// ARP for an interface with `mac` and `address`.
    pub fn new(mac: MacAddr, address: Ipv4Cidr) -> Self {
        Self {
            mac,
            address,
            directed_broadcast: if address.prefix_len < 31 {
                address.broadcast()
            } else {
                Ipv4Addr::BROADCAST
            },
            cache: ArpCache::new(),
            pending: ArrayVec::new(),
            announced: false,
            relay: None,
            neighbour: None,
        }
    }

    /// Shares what this core learns with the other cores' ARP of the same
    /// interface, and learns what they do, over `relay`.
    pub fn with_relay(mut self, relay: ArpRelay) -> Self {
        self.relay = Some(relay);
        self
    }

    /// Publishes the binding it uses (the next hop it last resolved from
    /// its cache, or learned) in `neighbour`, for `ipv4-out`; `None`
    /// publishes nothing. A binding already cached is published the next
    /// time a packet to it passes.
    pub fn set_neighbour(&mut self, neighbour: Option<Arc<Neighbour>>) {
        self.neighbour = neighbour;
    }

    /// The cell it publishes in, if any (a graph change that carries this
    /// ARP over hands its cell to the new `ipv4-out`).
    pub fn neighbour(&self) -> Option<&Arc<Neighbour>> {
        self.neighbour.as_ref()
    }

    /// Learns or refreshes `ip` at `mac` in the cache; the published
    /// binding follows when it is about `ip` (a neighbour that moved) or
    /// when none is published.
    fn learn(&mut self, ip: Ipv4Addr, mac: MacAddr, now: u64) {
        self.cache.insert(ip, mac, now);
        if let Some(neighbour) = &self.neighbour
            && neighbour.address().is_none_or(|published| published == ip)
        {
            neighbour.publish(ip, mac, now);
        }
    }

    /// True when it shares what it learns with other cores (a rebuilt
    /// ARP takes the failed one's relay: its rings are made once per
    /// boot).
    pub fn has_relay(&self) -> bool {
        self.relay.is_some()
    }

    /// Passes a binding just learnt to the other cores.
    fn share(&mut self, ip: Ipv4Addr, mac: MacAddr) {
        if let Some(relay) = &mut self.relay {
            for producer in &mut relay.to {
                // Full: that core resolves for itself.
                let _ = producer.push((ip, mac));
            }
        }
    }

    /// Learns the bindings the other cores passed here, and sends what
    /// waited for them.
    fn take_shared(&mut self, out: &mut Outputs<'_>) {
        // One binding at a time, the relay left in place: a failure while
        // sending what waited leaves it in the failed node, for the
        // rebuilt one (`Nanoservice::take_links`).
        let now = out.now_ns();
        loop {
            let Some(relay) = &mut self.relay else {
                return;
            };
            let Some((ip, mac)) = relay.from.iter_mut().find_map(|consumer| consumer.pop()) else {
                return;
            };
            self.learn(ip, mac, now);
            self.flush_pending(ip, mac, out);
        }
    }

    /// The cache (for tests and management).
    pub fn cache(&self) -> &ArpCache {
        &self.cache
    }

    fn handle_arp(&mut self, mut packet: Packet, out: &mut Outputs<'_>) {
        let Ok(arp) = ArpPacket::new_checked(&packet.payload()[ethernet::HEADER_LEN..]) else {
            out.drop(packet, ArpDrop::Truncated);
            return;
        };
        let operation = arp.operation();
        if !arp.is_ethernet_ipv4()
            || (operation != ArpOperation::REQUEST && operation != ArpOperation::REPLY)
        {
            out.drop(packet, ArpDrop::UnsupportedFormat);
            return;
        }
        let (sender_mac, sender_ip, target_ip) =
            (arp.sender_mac(), arp.sender_ip(), arp.target_ip());
        let ours = self.address.address;
        if !sender_mac.is_unicast()
            || sender_ip == ours
            || is_martian(sender_ip)
            || sender_ip == self.directed_broadcast
        {
            out.drop(packet, ArpDrop::BadSender);
            return;
        }
        let now = out.now_ns();
        // RFC 826 merge: refresh a known sender whatever the target.
        let known = self.cache.contains(sender_ip);
        if known {
            self.learn(sender_ip, sender_mac, now);
        }
        if target_ip != ours {
            out.drop(packet, ArpDrop::NotForUs);
            return;
        }
        if !known && self.address.contains(sender_ip) {
            self.learn(sender_ip, sender_mac, now);
        }
        // An answer to a request: possibly another core's, whose answer
        // the NIC steered here.
        if operation == ArpOperation::REPLY && self.cache.contains(sender_ip) {
            self.share(sender_ip, sender_mac);
        }
        self.flush_pending(sender_ip, sender_mac, out);
        if operation == ArpOperation::REQUEST {
            let bytes = packet.payload_mut();
            let mut frame = EthernetFrame::new_unchecked(&mut bytes[..]);
            frame.set_destination(sender_mac);
            frame.set_source(self.mac);
            ArpPacket::new_unchecked(&mut bytes[ethernet::HEADER_LEN..]).emit(
                ArpOperation::REPLY,
                (self.mac, ours),
                (sender_mac, sender_ip),
            );
            out.emit(Self::TX, packet);
        } else {
            out.emit(Self::ABSORBED, packet);
        }
    }

    /// Sends the packets waiting for `ip` now that it is at `mac`.
    fn flush_pending(&mut self, ip: Ipv4Addr, mac: MacAddr, out: &mut Outputs<'_>) {
        let Some(index) = self
            .pending
            .iter()
            .position(|pending| pending.next_hop == ip)
        else {
            return;
        };
        let pending = self.pending.swap_remove(index);
        for mut packet in pending.packets {
            self.fill_macs(&mut packet, mac);
            out.emit(Self::TX, packet);
        }
    }

    /// Fills in both MACs (one bounds check for the 12 bytes). Every frame
    /// here holds a whole Ethernet header: `classify` checked it,
    /// `send_request` built it.
    #[inline(always)]
    fn fill_macs(&self, packet: &mut Packet, mac: MacAddr) {
        if let Some(addresses) = packet.payload_mut().first_chunk_mut::<12>() {
            let (destination, source) = addresses.split_at_mut(6);
            destination.copy_from_slice(&mac.0);
            source.copy_from_slice(&self.mac.0);
        }
    }

    /// Where a frame goes, decided in place: outgoing IPv4 with a known
    /// link-layer destination is completed and sent; ARP from the wire and
    /// IPv4 that must wait stay in the batch for [`Self::handle_kept`].
    #[inline(always)]
    fn classify(&self, packet: &mut Packet, now: u64, last: &mut Resolved) -> Verdict {
        let ethertype = match EthernetFrame::new_checked(packet.payload()) {
            Ok(frame) => frame.ethertype(),
            Err(_) => return Verdict::drop(ArpDrop::Truncated),
        };
        if ethertype == EtherType::IPV4 {
            self.resolve(packet, now, last)
        } else if ethertype == EtherType::ARP {
            Verdict::Keep
        } else {
            Verdict::drop(ArpDrop::UnsupportedFormat)
        }
    }

    /// Completes the Ethernet header of an outgoing IPv4 packet (behind its
    /// resolution header) when its next hop's MAC is known: broadcast, in
    /// the cache, or the reply hint. `Keep` when it must wait. `last` is
    /// the last cache hit for this `now` (see [`Resolved`]).
    #[inline(always)]
    fn resolve(&self, packet: &mut Packet, now: u64, last: &mut Resolved) -> Verdict {
        let next_hop = next_hop_of(packet);
        let mac = if next_hop == last.next_hop {
            last.mac
        } else if next_hop.is_broadcast() || next_hop == self.directed_broadcast {
            MacAddr::BROADCAST
        } else if next_hop.is_unspecified() || next_hop.is_multicast() {
            return Verdict::drop(ArpDrop::BadResolutionHeader);
        } else if let Some((mac, learned_ns)) = self.cache.binding(next_hop, now) {
            *last = Resolved { next_hop, mac };
            // The next hop in use becomes the published one: `ipv4-out`
            // completes its frames itself from the next burst on.
            if let Some(neighbour) = &self.neighbour
                && neighbour.address() != Some(next_hop)
            {
                neighbour.publish(next_hop, mac, learned_ns);
            }
            mac
        } else if packet.payload()[4] == 1 {
            ethernet::mac_at(&packet.payload()[6..12])
        } else {
            return Verdict::Keep;
        };
        self.fill_macs(packet, mac);
        Verdict::emit(Self::TX)
    }

    /// A frame `classify` kept: ARP from the wire, or IPv4 whose next hop
    /// was unknown (resolved again first: an ARP reply earlier in the
    /// batch may have taught it).
    fn handle_kept(&mut self, mut packet: Packet, out: &mut Outputs<'_>) {
        if EthernetFrame::new_unchecked(packet.payload()).ethertype() == EtherType::ARP {
            self.handle_arp(packet, out);
            return;
        }
        let mut last = Resolved::NONE;
        match self.resolve(&mut packet, out.now_ns(), &mut last) {
            Verdict::Emit(output) => out.emit(usize::from(output), packet),
            Verdict::Drop(reason) => out.drop(packet, reason),
            Verdict::Keep => self.wait_for_resolution(packet, out),
        }
    }

    /// Queues `packet` until its next hop answers, asking for it if nobody
    /// asked yet.
    fn wait_for_resolution(&mut self, packet: Packet, out: &mut Outputs<'_>) {
        let next_hop = next_hop_of(&packet);
        if let Some(pending) = self
            .pending
            .iter_mut()
            .find(|pending| pending.next_hop == next_hop)
        {
            if let Err(error) = pending.packets.try_push(packet) {
                out.drop(error.element(), ArpDrop::QueueFull);
            }
            return;
        }
        if self.pending.is_full() {
            out.drop(packet, ArpDrop::PendingFull);
            return;
        }
        let now = out.now_ns();
        let mut packets = ArrayVec::new();
        packets.push(packet);
        self.pending.push(Pending {
            next_hop,
            first_ns: now,
            last_request_ns: now,
            packets,
        });
        self.send_request(next_hop, out);
    }

    /// Broadcasts "who has `target`?" (`target` = ours: gratuitous ARP).
    fn send_request(&self, target: Ipv4Addr, out: &mut Outputs<'_>) {
        let Some(mut packet) = out.alloc() else {
            return;
        };
        let Ok(bytes) = packet.append(ethernet::HEADER_LEN + arp::PACKET_LEN) else {
            return;
        };
        let mut frame = EthernetFrame::new_unchecked(&mut bytes[..]);
        frame.set_destination(MacAddr::BROADCAST);
        frame.set_source(self.mac);
        frame.set_ethertype(EtherType::ARP);
        ArpPacket::new_unchecked(&mut bytes[ethernet::HEADER_LEN..]).emit(
            ArpOperation::REQUEST,
            (self.mac, self.address.address),
            (MacAddr([0; 6]), target),
        );
        out.emit(Self::TX, packet);
    }
}

impl Nanoservice for Arp {
    fn name(&self) -> &'static str {
        "arp"
    }

    /// Its relay, for a rebuilt `arp` (the other cores keep theirs; the
    /// bindings still in the rings reach the new cache).
    fn take_links(&mut self) -> Option<alloc::boxed::Box<dyn core::any::Any>> {
        let relay = self.relay.take()?;
        Some(alloc::boxed::Box::new(relay))
    }

    fn adopt_links(&mut self, links: alloc::boxed::Box<dyn core::any::Any>) {
        if let Ok(relay) = links.downcast::<ArpRelay>() {
            self.relay = Some(*relay);
        }
    }

    fn outputs(&self) -> &'static [&'static str] {
        &["tx", "absorbed"]
    }

    fn drop_reasons(&self) -> &'static [&'static str] {
        ArpDrop::NAMES
    }

    fn process(&mut self, batch: &mut Batch, out: &mut Outputs<'_>) {
        self.take_shared(out);
        let now = out.now_ns();
        // The cache does not change while the burst is classified (ARP
        // frames are handled after it) and `now` is fixed: a cache hit
        // holds for the rest of the burst.
        let mut last = Resolved::NONE;
        out.dispatch(batch, |packet, _| self.classify(packet, now, &mut last));
        for packet in batch.drain() {
            self.handle_kept(packet, out);
        }
    }

    fn tick(&mut self, out: &mut Outputs<'_>) {
        self.take_shared(out);
        let now = out.now_ns();
        if !self.announced {
            self.announced = true;
            self.send_request(self.address.address, out);
        }
        self.cache.expire(now);
        let mut index = 0;
        while index < self.pending.len() {
            let pending = &mut self.pending[index];
            if now.saturating_sub(pending.first_ns) >= RESOLUTION_TIMEOUT_NS {
                let pending = self.pending.swap_remove(index);
                for packet in pending.packets {
                    out.drop(packet, ArpDrop::ResolutionTimeout);
                }
                continue;
            }
            if now.saturating_sub(pending.last_request_ns) >= REQUEST_INTERVAL_NS {
                pending.last_request_ns = now;
                let next_hop = pending.next_hop;
                self.send_request(next_hop, out);
            }
            index += 1;
        }
    }

    /// The gratuitous ARP not sent yet (now), the next request or give-up
    /// of a pending resolution, the next binding to go stale.
    fn next_deadline_ns(&self) -> Option<u64> {
        if !self.announced {
            return Some(0);
        }
        let pending = self.pending.iter().map(|pending| {
            let give_up = pending.first_ns.saturating_add(RESOLUTION_TIMEOUT_NS);
            let ask_again = pending.last_request_ns.saturating_add(REQUEST_INTERVAL_NS);
            give_up.min(ask_again)
        });
        pending.chain(self.cache.next_expiry_ns()).min()
    }
}
