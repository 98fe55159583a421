//! `Ipv4Cidr`: an IPv4 address with a prefix length, and subnet arithmetic.

use core::net::Ipv4Addr;

/// An IPv4 address with a prefix length, like `10.0.0.2/24`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Cidr {
    /// The address as written (host bits may be set for an interface).
    pub address: Ipv4Addr,
    /// Prefix length, 0..=32.
    pub prefix_len: u8,
}

impl Ipv4Cidr {
    /// `address/prefix_len`; `None` when `prefix_len > 32`.
    pub const fn new(address: Ipv4Addr, prefix_len: u8) -> Option<Self> {
        if prefix_len > 32 {
            None
        } else {
            Some(Self {
                address,
                prefix_len,
            })
        }
    }

    /// The netmask as a host-order integer.
    pub const fn mask(&self) -> u32 {
        if self.prefix_len == 0 {
            0
        } else {
            u32::MAX << (32 - self.prefix_len as u32)
        }
    }

    /// The network address (host bits cleared).
    pub const fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from_bits(self.address.to_bits() & self.mask())
    }

    /// The subnet's directed broadcast address.
    pub const fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from_bits(self.address.to_bits() | !self.mask())
    }

    /// True when `address` is inside the subnet.
    pub const fn contains(&self, address: Ipv4Addr) -> bool {
        (address.to_bits() ^ self.address.to_bits()) & self.mask() == 0
    }
}

impl core::fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix_len)
    }
}

impl core::str::FromStr for Ipv4Cidr {
    type Err = ();

    fn from_str(text: &str) -> Result<Self, ()> {
        let (address, prefix) = text.split_once('/').ok_or(())?;
        let address: Ipv4Addr = address.parse().map_err(|_| ())?;
        if prefix.is_empty() || prefix.len() > 2 || !prefix.bytes().all(|b| b.is_ascii_digit()) {
            return Err(());
        }
        let prefix_len: u8 = prefix.parse().map_err(|_| ())?;
        Self::new(address, prefix_len).ok_or(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn cidr_arithmetic() {
        let cidr: Ipv4Cidr = "10.0.1.7/24".parse().unwrap();
        assert_eq!(cidr.network(), Ipv4Addr::new(10, 0, 1, 0));
        assert_eq!(cidr.broadcast(), Ipv4Addr::new(10, 0, 1, 255));
        assert!(cidr.contains(Ipv4Addr::new(10, 0, 1, 200)));
        assert!(!cidr.contains(Ipv4Addr::new(10, 0, 2, 1)));
        let default: Ipv4Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(default.contains(Ipv4Addr::new(8, 8, 8, 8)));
        assert_eq!(default.mask(), 0);
        let host: Ipv4Cidr = "1.2.3.4/32".parse().unwrap();
        assert_eq!(host.mask(), u32::MAX);
        for bad in [
            "10.0.0.1",
            "10.0.0.1/33",
            "10.0.0.1/",
            "10.0.0/8",
            "10.0.0.1/+8",
            "x/8",
        ] {
            assert!(bad.parse::<Ipv4Cidr>().is_err(), "{bad}");
        }
        assert_eq!(cidr.to_string(), "10.0.1.7/24");
    }
}
