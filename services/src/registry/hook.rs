//! `HookPoint`: a named place in a core's graph where services attach.

use core::fmt;
use core::str::FromStr;

/// Where a service attaches in a core's graph. Several services at one hook
/// point form a chain in spec order: each one's `pass` output leads to the
/// next, the last one's to what the hook point would otherwise feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HookPoint {
    /// `port:rx`: every frame a port receives, before the stack (one node
    /// per port). `pass` leads on to the stack's Ethernet stage, `out`
    /// transmits on the same port.
    PortRx,
    /// `eth:<ethertype>`: whole frames of an EtherType the stack does not
    /// handle (not ARP, not IPv4), one node per port. `out` transmits on
    /// the same port; `pass` drops.
    Ethertype(u16),
    /// `ipv4:proto:<n>`: IPv4 packets to us of protocol `n`, from the IP
    /// header on. `pass` leads on to the stack's own handler (ICMP, UDP)
    /// or drops; `out` and `errors` send IPv4 packets through routing.
    Ipv4Protocol(u8),
    /// `ipv4:forward`: unicast IPv4 packets to others (a router's job).
    /// `if<n>` outputs leave on interface `n` after ARP resolution.
    Ipv4Forward,
    /// `udp:<port>`: UDP datagrams to us on this port, from the IP header
    /// on. `out` sends IPv4 packets through routing; `pass` leads on to
    /// the next service on the port, or drops.
    Udp(u16),
    /// `tcp:<port>`: a TCP app ([`TcpServiceKind`](super::TcpServiceKind))
    /// serving this port on the core's TCP stack. One app per port.
    Tcp(u16),
}

impl HookPoint {
    /// True for hook points served by one node per port (layer 2); the
    /// others get one node per core.
    pub const fn per_port(self) -> bool {
        matches!(self, Self::PortRx | Self::Ethertype(_))
    }
}

impl fmt::Display for HookPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PortRx => f.write_str("port:rx"),
            Self::Ethertype(ethertype) => write!(f, "eth:0x{ethertype:04x}"),
            Self::Ipv4Protocol(protocol) => write!(f, "ipv4:proto:{protocol}"),
            Self::Ipv4Forward => f.write_str("ipv4:forward"),
            Self::Udp(port) => write!(f, "udp:{port}"),
            Self::Tcp(port) => write!(f, "tcp:{port}"),
        }
    }
}

/// What a hook point looks like, for error messages.
pub const HOOK_POINT_FORMS: &str = "a hook point: port:rx, eth:<ethertype>, ipv4:proto:<0-255>, ipv4:forward, udp:<1-65535> or tcp:<1-65535>";

/// A hook point name that is not one of [`HOOK_POINT_FORMS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownHookPoint;

impl fmt::Display for UnknownHookPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "expected {HOOK_POINT_FORMS}")
    }
}

/// Parses a decimal number, or hexadecimal with `0x`.
fn number<T: TryFrom<u32>>(text: &str) -> Option<T> {
    let value = match text.strip_prefix("0x") {
        Some(hex) if !hex.is_empty() && hex.len() <= 8 => u32::from_str_radix(hex, 16).ok()?,
        Some(_) => return None,
        None if !text.is_empty()
            && text.len() <= 10
            && text.bytes().all(|b| b.is_ascii_digit()) =>
        {
            text.parse().ok()?
        }
        None => return None,
    };
    T::try_from(value).ok()
}

impl FromStr for HookPoint {
    type Err = UnknownHookPoint;

    fn from_str(text: &str) -> Result<Self, UnknownHookPoint> {
        let parts: alloc::vec::Vec<&str> = text.split(':').collect();
        let hook = match parts.as_slice() {
            ["port", "rx"] => Self::PortRx,
            ["eth", ethertype] => Self::Ethertype(number(ethertype).ok_or(UnknownHookPoint)?),
            ["ipv4", "proto", protocol] => {
                Self::Ipv4Protocol(number(protocol).ok_or(UnknownHookPoint)?)
            }
            ["ipv4", "forward"] => Self::Ipv4Forward,
            ["udp", port] => match number(port) {
                Some(0) | None => return Err(UnknownHookPoint),
                Some(port) => Self::Udp(port),
            },
            ["tcp", port] => match number(port) {
                Some(0) | None => return Err(UnknownHookPoint),
                Some(port) => Self::Tcp(port),
            },
            _ => return Err(UnknownHookPoint),
        };
        Ok(hook)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn hook_points_parse_and_print() {
        for (text, hook, printed) in [
            ("port:rx", HookPoint::PortRx, "port:rx"),
            ("eth:0x88b5", HookPoint::Ethertype(0x88b5), "eth:0x88b5"),
            ("eth:34997", HookPoint::Ethertype(0x88b5), "eth:0x88b5"),
            ("ipv4:proto:6", HookPoint::Ipv4Protocol(6), "ipv4:proto:6"),
            ("ipv4:forward", HookPoint::Ipv4Forward, "ipv4:forward"),
            ("udp:7", HookPoint::Udp(7), "udp:7"),
            ("tcp:80", HookPoint::Tcp(80), "tcp:80"),
        ] {
            assert_eq!(text.parse::<HookPoint>(), Ok(hook), "{text}");
            assert_eq!(hook.to_string(), printed);
        }
        for bad in [
            "",
            "port",
            "port:tx",
            "eth:",
            "eth:0x",
            "eth:0x10000",
            "eth:-1",
            "ipv4:proto:256",
            "ipv4:proto:",
            "ipv4",
            "udp:0",
            "udp:65536",
            "udp:+7",
            "udp:7:8",
            "tcp:0",
            "tcp:65536",
            "a:b:c:d:e",
        ] {
            assert_eq!(bad.parse::<HookPoint>(), Err(UnknownHookPoint), "{bad}");
        }
        assert!(HookPoint::PortRx.per_port() && HookPoint::Ethertype(1).per_port());
        assert!(!HookPoint::Udp(7).per_port() && !HookPoint::Ipv4Forward.per_port());
    }
}
