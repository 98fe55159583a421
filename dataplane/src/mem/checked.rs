//! `Checked`: what a parser upstream verified about the bytes at a packet's
//! head, carried in the packet descriptor so that nodes down the chain do
//! not verify it again (VPP's per-buffer metadata).
//!
//! The claims hold for the bytes as the parser saw them. A packet forgets
//! them whenever those bytes or its bounds may change: `payload_mut`,
//! `prepend`, `append`, `trim_front`, `truncate` and `set_range` all clear
//! them, so a node that edits a packet and keeps a claim true (the UDP echo
//! swapping addresses and updating the checksum) sets it again itself. A
//! node that finds a claim missing checks the bytes as if none had been
//! made: the claims are a shortcut, never a requirement.

/// Claims about a packet's bytes, from its head (see the module docs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Checked {
    bits: u8,
}

impl Checked {
    /// Nothing checked: what every packet starts with.
    pub const NONE: Self = Self { bits: 0 };
    /// The head is an IPv4 header of version 4 whose header length (its
    /// IHL, at least 20 bytes) fits the packet, whose total length is the
    /// packet's length, whose header checksum is right, and which is not a
    /// fragment.
    const IPV4: u8 = 1;
    /// With [`Self::IPV4`]: its destination is one of this host's unicast
    /// addresses.
    const LOCAL_UNICAST: u8 = 2;
    /// With [`Self::IPV4`]: a UDP header follows the IPv4 header, its
    /// length field is at least 8 and at most the rest of the packet, and
    /// its checksum is right (or absent).
    const UDP: u8 = 4;
    /// With [`Self::UDP`]: the IPv4 header has no options (IHL 5) and the
    /// UDP length field is exactly the rest of the packet (no padding
    /// behind the datagram), so its headers lie at constant offsets.
    const PLAIN: u8 = 8;

    /// An IPv4 header was checked as described above (`IPV4`).
    pub const IPV4_HEADER: Self = Self { bits: Self::IPV4 };

    /// `self`, and its destination is ours and unicast.
    #[inline(always)]
    pub const fn local_unicast(self) -> Self {
        Self {
            bits: self.bits | Self::LOCAL_UNICAST,
        }
    }

    /// `self`, and its UDP header and checksum were checked.
    #[inline(always)]
    pub const fn udp(self) -> Self {
        Self {
            bits: self.bits | Self::UDP,
        }
    }

    /// True when the IPv4 header at the head was checked.
    #[inline(always)]
    pub const fn is_ipv4(self) -> bool {
        self.bits & Self::IPV4 != 0
    }

    /// `self`, and its IPv4 header has no options and its UDP datagram
    /// fills the packet exactly (`PLAIN`).
    #[inline(always)]
    pub const fn plain(self) -> Self {
        Self {
            bits: self.bits | Self::PLAIN,
        }
    }

    /// True when the IPv4 header and the UDP datagram were checked, the
    /// header has no options and the datagram fills the packet, and the
    /// destination is ours and unicast: every claim in one masked compare.
    #[inline(always)]
    pub const fn is_plain_local_udp(self) -> bool {
        const ALL: u8 = Checked::IPV4 | Checked::LOCAL_UNICAST | Checked::UDP | Checked::PLAIN;
        self.bits & ALL == ALL
    }

    /// True when the IPv4 header was checked and its destination found
    /// ours and unicast.
    #[inline(always)]
    pub const fn is_local_unicast(self) -> bool {
        self.bits & (Self::IPV4 | Self::LOCAL_UNICAST) == Self::IPV4 | Self::LOCAL_UNICAST
    }

    /// True when the IPv4 header and the UDP datagram behind it were both
    /// checked.
    #[inline(always)]
    pub const fn is_udp(self) -> bool {
        self.bits & (Self::IPV4 | Self::UDP) == Self::IPV4 | Self::UDP
    }

    /// The claims as one byte, as the packet keeps them.
    #[inline(always)]
    pub(crate) const fn bits(self) -> u8 {
        self.bits
    }

    /// The claims `bits` stands for.
    #[inline(always)]
    pub(crate) const fn from_bits(bits: u8) -> Self {
        Self { bits }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Mempool;

    #[test]
    fn claims_combine_and_read_back() {
        assert!(!Checked::NONE.is_ipv4());
        assert!(!Checked::NONE.is_udp());
        assert!(!Checked::NONE.is_local_unicast());
        let ip = Checked::IPV4_HEADER;
        assert!(ip.is_ipv4());
        assert!(!ip.is_udp());
        assert!(!ip.is_local_unicast());
        let all = ip.local_unicast().udp();
        assert!(all.is_local_unicast() && all.is_udp() && all.is_ipv4());
        assert!(!all.is_plain_local_udp());
        assert!(all.plain().is_plain_local_udp());
        // The plain claim needs every other one.
        assert!(!ip.local_unicast().plain().is_plain_local_udp());
        assert!(!ip.udp().plain().is_plain_local_udp());
        assert!(
            !Checked::NONE
                .local_unicast()
                .udp()
                .plain()
                .is_plain_local_udp()
        );
        // A claim above IPv4 means nothing without the IPv4 claim.
        assert!(!Checked::NONE.udp().is_udp());
        assert!(!Checked::NONE.local_unicast().is_local_unicast());
    }

    #[test]
    fn every_change_of_bytes_or_bounds_forgets_the_claims() {
        let pool = Mempool::with_heap(1, 32).unwrap();
        let mut packet = pool.alloc().unwrap();
        packet.append(64).unwrap();
        let claim = Checked::IPV4_HEADER.udp();
        let changes: [fn(&mut crate::Packet); 6] = [
            |packet| {
                packet.payload_mut();
            },
            |packet| {
                packet.prepend(2).unwrap();
            },
            |packet| {
                packet.append(2).unwrap();
            },
            |packet| packet.trim_front(2).unwrap(),
            |packet| packet.truncate(packet.len() - 1),
            |packet| packet.set_range(32, 40).unwrap(),
        ];
        for change in changes {
            packet.set_checked(claim);
            assert_eq!(packet.checked(), claim);
            let _ = packet.payload();
            assert_eq!(packet.checked(), claim, "reading keeps the claims");
            change(&mut packet);
            assert_eq!(packet.checked(), Checked::NONE);
        }
        packet.set_checked(claim);
        drop(packet);
        let fresh = pool.alloc().unwrap();
        assert_eq!(fresh.checked(), Checked::NONE, "a buffer starts unchecked");
        drop(fresh);
        assert_eq!(pool.available(), 1, "the claims never touch the index");
    }
}
