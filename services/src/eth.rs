//! `Eth`: the first stage of every interface. Demultiplexes by EtherType
//! (ARP frames whole, IPv4 with the Ethernet header trimmed) and drops what
//! is not ours.

use crate::uniform::{Decide, dispatch_expecting};
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
    /// `mac` as the first six bytes of a frame read by [`frame_word`]: one
    /// xor and shift tell a frame to us.
    mac_word: u64,
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
        let [b0, b1, b2, b3, b4, b5] = mac.0;
        Self {
            mac,
            mac_word: u64::from_le_bytes([b0, b1, b2, b3, b4, b5, 0, 0]),
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
        let len = packet.len();
        // Both bounds in one compare: a runt wraps around past the top.
        if len.wrapping_sub(ethernet::HEADER_LEN) > ethernet::MAX_FRAME_LEN - ethernet::HEADER_LEN {
            return Verdict::drop(if len < ethernet::HEADER_LEN {
                EthDrop::Runt
            } else {
                EthDrop::Oversized
            });
        }
        let Some(header) = packet.payload().first_chunk::<{ ethernet::HEADER_LEN }>() else {
            return Verdict::drop(EthDrop::Runt);
        };
        // Ours in one load, an xor and a shift that drops the two bytes
        // behind the MAC (it sets the flags: no compare); broadcast and
        // multicast after.
        if (frame_word(header) ^ self.mac_word) << 16 != 0 {
            let frame = EthernetFrame::new_unchecked(&header[..]);
            if !self.accepts(frame.destination()) {
                return Verdict::drop(EthDrop::NotForUs);
            }
        }
        // The EtherType as it lies in the frame, compared with constants
        // laid out the same way: no byte swap.
        let ethertype = u16::from_ne_bytes([header[12], header[13]]);
        if ethertype == wire_order(EtherType::IPV4) {
            // Cannot fail: the frame holds a whole header.
            let _ = packet.trim_front(ethernet::HEADER_LEN);
            Verdict::emit(Self::IPV4)
        } else {
            self.classify_other(ethertype)
        }
    }

    /// Where a frame that is not IPv4 goes, by its EtherType as it lies in
    /// the frame: out of line, so that IPv4, the busy case, is tested
    /// first and alone (inlined, the compiler tested ARP first). `#[cold]`
    /// covers every frame that is not IPv4: ARP, the EtherTypes a service
    /// bound with [`bind_ethertype`](Self::bind_ethertype) (those frames
    /// take this call too, still counted and sent on their output) and
    /// the unknown ones it drops.
    #[cold]
    #[inline(never)]
    fn classify_other(&self, ethertype: u16) -> Verdict {
        if ethertype == wire_order(EtherType::ARP) {
            return Verdict::emit(Self::ARP);
        }
        let ethertype = u16::from_be_bytes(ethertype.to_ne_bytes());
        match self.ethertypes.iter().position(|bound| *bound == ethertype) {
            Some(index) => Verdict::emit(Self::ETHERTYPE_0 + index),
            None => Verdict::drop(EthDrop::UnknownEthertype),
        }
    }
}

/// The first eight bytes of a frame as a little-endian word: the
/// destination MAC in the low 48 bits, as in `Eth::mac_word` (one 8-byte
/// load).
#[inline(always)]
fn frame_word(header: &[u8; ethernet::HEADER_LEN]) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&header[..8]);
    u64::from_le_bytes(word)
}

/// `ethertype` as its two wire bytes read in host order.
#[inline(always)]
const fn wire_order(ethertype: EtherType) -> u16 {
    u16::from_ne_bytes(ethertype.0.to_be_bytes())
}

impl Decide for Eth {
    #[inline(always)]
    fn decide(&mut self, packet: &mut Packet) -> Verdict {
        self.classify(packet)
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
        dispatch_expecting(self, batch, out, Verdict::emit(Self::IPV4));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dataplane::Mempool;

    const OURS: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);

    /// A frame of `len` bytes (at least the header) to `destination`.
    fn classify(eth: &Eth, destination: MacAddr, ethertype: u16, len: usize) -> (Verdict, usize) {
        let pool = Mempool::with_heap(1, 0).unwrap();
        let mut packet = pool.alloc().unwrap();
        let bytes = packet.append(len).unwrap();
        if len >= ethernet::HEADER_LEN {
            bytes[..6].copy_from_slice(&destination.0);
            bytes[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
            bytes[12..14].copy_from_slice(&ethertype.to_be_bytes());
        }
        let verdict = eth.classify(&mut packet);
        (verdict, packet.len())
    }

    #[test]
    fn frames_are_sorted_by_length_destination_and_ethertype() {
        let mut eth = Eth::new(OURS);
        let group = MacAddr([0x01, 0x00, 0x5e, 0, 0, 1]);
        assert!(eth.join_multicast(group));
        assert_eq!(eth.bind_ethertype(0x88cc), Ok(0));
        let ipv4 = EtherType::IPV4.0;
        let arp = EtherType::ARP.0;
        let runt = Verdict::drop(EthDrop::Runt);
        assert_eq!(classify(&eth, OURS, ipv4, 0), (runt, 0));
        assert_eq!(classify(&eth, OURS, ipv4, 13), (runt, 13));
        assert_eq!(
            classify(&eth, OURS, ipv4, 14),
            (Verdict::emit(Eth::IPV4), 0)
        );
        let longest = ethernet::MAX_FRAME_LEN;
        assert_eq!(
            classify(&eth, OURS, ipv4, longest),
            (Verdict::emit(Eth::IPV4), longest - 14)
        );
        let oversized = Verdict::drop(EthDrop::Oversized);
        assert_eq!(
            classify(&eth, OURS, ipv4, longest + 1),
            (oversized, longest + 1)
        );
        assert_eq!(classify(&eth, OURS, arp, 42), (Verdict::emit(Eth::ARP), 42));
        let broadcast = MacAddr::BROADCAST;
        assert_eq!(
            classify(&eth, broadcast, arp, 42),
            (Verdict::emit(Eth::ARP), 42)
        );
        assert_eq!(
            classify(&eth, group, ipv4, 60),
            (Verdict::emit(Eth::IPV4), 46)
        );
        let not_for_us = Verdict::drop(EthDrop::NotForUs);
        for other in [MacAddr([2, 0, 0, 0, 0, 2]), MacAddr([3, 0, 0, 0, 0, 1])] {
            assert_eq!(classify(&eth, other, ipv4, 60), (not_for_us, 60));
        }
        // Our MAC in the first six bytes only: the source's bytes behind
        // it do not count.
        assert_eq!(
            classify(&eth, OURS, 0x88cc, 60),
            (Verdict::emit(Eth::ETHERTYPE_0), 60)
        );
        let unknown = Verdict::drop(EthDrop::UnknownEthertype);
        assert_eq!(classify(&eth, OURS, 0x86dd, 60), (unknown, 60));
        assert_eq!(classify(&eth, OURS, 0x0008, 60), (unknown, 60));
    }
}
