//! `Eth`: the first stage of every interface. Demultiplexes by EtherType
//! (ARP frames whole, IPv4 with the Ethernet header trimmed) and drops what
//! is not ours.

use crate::wire::ethernet::{self, EtherType, EthernetFrame};
use arrayvec::ArrayVec;
use dataplane::drop_reasons;
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
        /// Neither ARP nor IPv4 nor an EtherType a service attached to
        /// (IPv6, VLAN tags and the rest).
        UnknownEthertype = "unknown-ethertype",
    }
}

/// Most multicast groups an interface listens to.
pub const MAX_MULTICAST: usize = 8;

/// Most EtherTypes besides ARP and IPv4 that services can attach to
/// (`eth:<ethertype>`) on one interface.
pub const MAX_ETHERTYPE_HOOKS: usize = 4;

/// Why an EtherType hook could not be bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EthertypeHookError {
    /// ARP and IPv4 belong to the stack: attach at `port:rx` or at an
    /// `ipv4:` hook point instead.
    OwnedByTheStack(u16),
    /// [`MAX_ETHERTYPE_HOOKS`] EtherTypes are bound already.
    TooMany,
}

/// Ethernet demultiplexer for one interface.
#[derive(Debug, Clone)]
pub struct Eth {
    mac: MacAddr,
    multicast: ArrayVec<MacAddr, MAX_MULTICAST>,
    ethertypes: ArrayVec<u16, MAX_ETHERTYPE_HOOKS>,
}

impl Eth {
    /// Output for ARP frames (whole frame).
    pub const ARP: usize = 0;
    /// Output for IPv4 packets (Ethernet header trimmed).
    pub const IPV4: usize = 1;
    /// Output of the first bound EtherType (whole frames); hook `n` is
    /// `ETHERTYPE_0 + n`.
    pub const ETHERTYPE_0: usize = 2;

    /// Accepts frames to `mac` and to broadcast.
    pub fn new(mac: MacAddr) -> Self {
        Self {
            mac,
            multicast: ArrayVec::new(),
            ethertypes: ArrayVec::new(),
        }
    }

    /// Sends whole frames of `ethertype` to output `ethertype<n>` (`n`
    /// returned) instead of dropping them as unknown.
    pub fn bind_ethertype(&mut self, ethertype: u16) -> Result<usize, EthertypeHookError> {
        if ethertype == EtherType::ARP.0 || ethertype == EtherType::IPV4.0 {
            return Err(EthertypeHookError::OwnedByTheStack(ethertype));
        }
        if let Some(index) = self.ethertypes.iter().position(|bound| *bound == ethertype) {
            return Ok(index);
        }
        self.ethertypes
            .try_push(ethertype)
            .map_err(|_| EthertypeHookError::TooMany)?;
        Ok(self.ethertypes.len() - 1)
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
            match self
                .ethertypes
                .iter()
                .position(|bound| *bound == ethertype.0)
            {
                Some(index) => Verdict::emit(Self::ETHERTYPE_0 + index),
                None => Verdict::drop(EthDrop::UnknownEthertype),
            }
        }
    }
}

impl Nanoservice for Eth {
    fn name(&self) -> &'static str {
        "eth"
    }

    fn outputs(&self) -> &'static [&'static str] {
        &[
            "arp",
            "ipv4",
            "ethertype0",
            "ethertype1",
            "ethertype2",
            "ethertype3",
        ]
    }

    fn drop_reasons(&self) -> &'static [&'static str] {
        EthDrop::NAMES
    }

    fn process(&mut self, batch: &mut Batch, out: &mut Outputs<'_>) {
        out.dispatch(batch, |packet, _| self.classify(packet));
    }
}
