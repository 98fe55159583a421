//! `LocalClaim`: packets for one of our addresses that a service at
//! `ipv4:forward` takes instead of the local stack (NAT: replies to
//! masqueraded flows and forwarded ports arrive addressed to us).

use crate::wire::icmp::kind;
use crate::wire::ipv4::protocol;
use alloc::vec::Vec;
use core::net::Ipv4Addr;

/// A block of ports on one of our addresses, claimed for `ipv4:forward`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalClaim {
    /// Our address the claim is on.
    pub address: Ipv4Addr,
    /// TCP and UDP destination ports and ICMP echo identifiers, inclusive:
    /// TCP and UDP to these ports, echo replies with these identifiers
    /// and ICMP errors quoting a packet we sent from them are claimed.
    pub ports: (u16, u16),
    /// Single `(protocol, port)` pairs claimed besides (forwarded ports).
    pub extra: Vec<(u8, u16)>,
}

impl LocalClaim {
    /// True when `(protocol_number, port)` falls in the claim.
    fn covers(&self, protocol_number: u8, port: u16) -> bool {
        let in_range = self.ports.0 <= port && port <= self.ports.1;
        match protocol_number {
            protocol::TCP | protocol::UDP => {
                in_range || self.extra.contains(&(protocol_number, port))
            }
            protocol::ICMP => in_range,
            _ => false,
        }
    }
}

/// True when `ip` (a checked IPv4 packet, not a fragment, to one of our
/// addresses) is claimed by one of `claims`.
pub fn claimed(claims: &[LocalClaim], ip: &[u8]) -> bool {
    let Some(&first) = ip.first() else {
        return false;
    };
    let header_len = usize::from(first & 0x0f) * 4;
    let (Some(destination), Some(&protocol_number), Some(transport)) =
        (ip.get(16..20), ip.get(9), ip.get(header_len..))
    else {
        return false;
    };
    let destination = Ipv4Addr::new(
        destination[0],
        destination[1],
        destination[2],
        destination[3],
    );
    let Some(claim) = claims.iter().find(|claim| claim.address == destination) else {
        return false;
    };
    match protocol_number {
        protocol::TCP | protocol::UDP => transport.get(2..4).is_some_and(|port| {
            claim.covers(protocol_number, u16::from_be_bytes([port[0], port[1]]))
        }),
        protocol::ICMP => match transport.first() {
            Some(&kind::ECHO_REPLY) => transport.get(4..6).is_some_and(|ident| {
                claim.covers(protocol::ICMP, u16::from_be_bytes([ident[0], ident[1]]))
            }),
            // Errors (unreachable, source quench, redirect, time exceeded,
            // parameter problem) about a packet we sent from a claimed port.
            Some(3 | 4 | 5 | 11 | 12) => quoted_source_port(transport.get(8..).unwrap_or(&[]))
                .is_some_and(|(quoted_protocol, port)| claim.covers(quoted_protocol, port)),
            _ => false,
        },
        _ => false,
    }
}

/// The protocol and source port (echo identifier for ICMP echo) of the
/// packet an ICMP error quotes.
fn quoted_source_port(quote: &[u8]) -> Option<(u8, u16)> {
    let first = *quote.first()?;
    let header_len = usize::from(first & 0x0f) * 4;
    if first >> 4 != 4 || header_len < 20 {
        return None;
    }
    let quoted_protocol = *quote.get(9)?;
    let transport = quote.get(header_len..header_len + 8)?;
    let port = match quoted_protocol {
        protocol::TCP | protocol::UDP => u16::from_be_bytes([transport[0], transport[1]]),
        protocol::ICMP if matches!(transport[0], kind::ECHO_REQUEST | kind::ECHO_REPLY) => {
            u16::from_be_bytes([transport[4], transport[5]])
        }
        _ => return None,
    };
    Some((quoted_protocol, port))
}
