//! `Eth`: the first stage of every interface. Demultiplexes by EtherType
//! (ARP frames whole, IPv4 with the Ethernet header trimmed) and drops what
//! is not ours.

use crate::reasons::drop_reasons;
use crate::wire::ethernet::{self, EtherType, EthernetFrame};
use arrayvec::ArrayVec;
use dataplane::{Batch, MacAddr, Nanoservice, Outputs, Packet, Verdict};

drop_reasons! {
    /// Why [`Eth`] drops a frame.
    EthDrop {
        /// Shorter than an Ethernet header.
        Runt = "runt",
        /// Longer than 1514 bytes (1500-byte MTU, no FCS).
        Oversized = "oversized",
        /// Unicast to another MAC, or a multicast group we did not join.
        NotForUs = "not-for-us",
        /// Neither ARP nor IPv4 (IPv6, VLAN tags and the rest).
        UnknownEthertype = "unknown-ethertype",
    }
}

/// Most multicast groups an interface listens to.
pub const MAX_MULTICAST: usize = 8;

/// Ethernet demultiplexer for one interface.
#[derive(Debug, Clone)]
pub struct Eth {
    mac: MacAddr,
    multicast: ArrayVec<MacAddr, MAX_MULTICAST>,
}

impl Eth {
    /// Output for ARP frames (whole frame).
    pub const ARP: usize = 0;
    /// Output for IPv4 packets (Ethernet header trimmed).
    pub const IPV4: usize = 1;

    /// Accepts frames to `mac` and to broadcast.
    pub fn new(mac: MacAddr) -> Self {
        Self {
            mac,
            multicast: ArrayVec::new(),
        }
    }

    /// Also accepts frames to the multicast group `group`; ignored beyond
    /// [`MAX_MULTICAST`] groups (returns false).
    pub fn join_multicast(&mut self, group: MacAddr) -> bool {
        self.multicast.try_push(group).is_ok()
    }

    #[inline]
    fn accepts(&self, destination: MacAddr) -> bool {
        destination == self.mac
            || destination.is_broadcast()
            || self.multicast.contains(&destination)
    }

    /// Where `packet` goes; an IPv4 packet loses its Ethernet header here.
    #[inline(always)]
    fn classify(&self, packet: &mut Packet) -> Verdict {
        let (destination, ethertype) = match EthernetFrame::new_checked(packet.payload()) {
            Ok(frame) => (frame.destination(), frame.ethertype()),
            Err(_) => return Verdict::drop(EthDrop::Runt),
        };
        if packet.len() > ethernet::MAX_FRAME_LEN {
            Verdict::drop(EthDrop::Oversized)
        } else if !self.accepts(destination) {
            Verdict::drop(EthDrop::NotForUs)
        } else if ethertype == EtherType::ARP {
            Verdict::emit(Self::ARP)
        } else if ethertype == EtherType::IPV4 {
            // Cannot fail: the frame holds a whole header.
            let _ = packet.trim_front(ethernet::HEADER_LEN);
            Verdict::emit(Self::IPV4)
        } else {
            Verdict::drop(EthDrop::UnknownEthertype)
        }
    }
}

impl Nanoservice for Eth {
    fn name(&self) -> &'static str {
        "eth"
    }

    fn outputs(&self) -> &'static [&'static str] {
        &["arp", "ipv4"]
    }

    fn drop_reasons(&self) -> &'static [&'static str] {
        EthDrop::NAMES
    }

    fn process(&mut self, batch: &mut Batch, out: &mut Outputs<'_>) {
        out.dispatch(batch, |packet, _| self.classify(packet));
    }
}
