//! A firewall rule as a spec writes it, and its pieces: action, protocol,
//! prefixes, port ranges and conntrack state.

use super::classifier::RuleMatch;
use alloc::string::String;
use core::fmt;
use core::str::FromStr;
use dataplane::Ipv4Cidr;
use serde::Deserialize;

/// What a rule does with the packets it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Pass the packet on (and let its flow be tracked).
    Allow,
    /// Drop it silently.
    Drop,
    /// Drop it and tell the sender: a TCP RST for TCP, ICMP port
    /// unreachable for anything else.
    Reject,
}

/// `state = "new" | "established" | "invalid"`: the packet's relation to
/// tracked flows. `established` matches related ICMP errors too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StateMatch {
    /// The flow has seen packets one way only.
    New,
    /// The flow has seen packets both ways, or an ICMP error about it.
    Established,
    /// The packet fits no flow.
    Invalid,
}

impl StateMatch {
    /// The code [`FlowFields::state`](super::FlowFields) carries.
    pub const fn code(self) -> u8 {
        match self {
            Self::New => 1,
            Self::Established => 2,
            Self::Invalid => 3,
        }
    }
}

/// `protocol = "tcp" | "udp" | "icmp" | <0-255>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "ProtocolText")]
pub struct ProtocolMatch(pub u8);

#[derive(Deserialize)]
#[serde(untagged)]
enum ProtocolText {
    Number(i64),
    Name(String),
}

impl TryFrom<ProtocolText> for ProtocolMatch {
    type Error = String;

    fn try_from(text: ProtocolText) -> Result<Self, String> {
        match text {
            ProtocolText::Number(number) => u8::try_from(number)
                .map(Self)
                .map_err(|_| alloc::format!("expected a protocol from 0 to 255, got {number}")),
            ProtocolText::Name(name) => match name.as_str() {
                "icmp" => Ok(Self(1)),
                "tcp" => Ok(Self(6)),
                "udp" => Ok(Self(17)),
                _ => Err(alloc::format!(
                    "expected tcp, udp, icmp or a protocol number, got \"{name}\""
                )),
            },
        }
    }
}

/// An address prefix, `10.0.0.0/8`, or one address, `10.0.0.1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Prefix(pub Ipv4Cidr);

impl TryFrom<String> for Prefix {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        let bad = || alloc::format!("expected an IPv4 prefix like 10.0.0.0/8, got \"{text}\"");
        let cidr = match text.split_once('/') {
            Some(_) => Ipv4Cidr::from_str(&text).map_err(|_| bad())?,
            None => {
                let address = text.parse().map_err(|_| bad())?;
                Ipv4Cidr::new(address, 32).ok_or_else(bad)?
            }
        };
        Ok(Self(cidr))
    }
}

/// A port, `80`, or an inclusive range, `"1024-65535"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "PortText")]
pub struct PortRange(pub u16, pub u16);

#[derive(Deserialize)]
#[serde(untagged)]
enum PortText {
    Number(i64),
    Range(String),
}

impl TryFrom<PortText> for PortRange {
    type Error = String;

    fn try_from(text: PortText) -> Result<Self, String> {
        let port = |number: i64| u16::try_from(number).ok();
        let range = match &text {
            PortText::Number(number) => port(*number).map(|port| Self(port, port)),
            PortText::Range(range) => range.split_once('-').and_then(|(low, high)| {
                let low = port(low.trim().parse().ok()?)?;
                let high = port(high.trim().parse().ok()?)?;
                (low <= high).then_some(Self(low, high))
            }),
        };
        range.ok_or_else(|| match text {
            PortText::Number(number) => {
                alloc::format!("expected a port from 0 to 65535, got {number}")
            }
            PortText::Range(range) => {
                alloc::format!("expected a port or a range like \"1024-65535\", got \"{range}\"")
            }
        })
    }
}

/// One `[[service.rules]]` table. Fields left out match anything.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// What to do with matching packets.
    pub action: Action,
    /// IP protocol.
    pub protocol: Option<ProtocolMatch>,
    /// Source prefix.
    pub source: Option<Prefix>,
    /// Destination prefix.
    pub destination: Option<Prefix>,
    /// Source port or range (TCP and UDP; ICMP echo identifier).
    pub source_port: Option<PortRange>,
    /// Destination port or range.
    pub destination_port: Option<PortRange>,
    /// Conntrack state.
    pub state: Option<StateMatch>,
}

impl RuleConfig {
    /// The rule's match for the classifier.
    pub fn to_match(&self) -> RuleMatch {
        let prefix = |prefix: Option<Prefix>| {
            prefix.map_or((0, 0), |Prefix(cidr)| {
                (cidr.address.to_bits(), cidr.prefix_len)
            })
        };
        let ports = |range: Option<PortRange>| range.map_or((0, u16::MAX), |r| (r.0, r.1));
        RuleMatch {
            source: prefix(self.source),
            destination: prefix(self.destination),
            source_ports: ports(self.source_port),
            destination_ports: ports(self.destination_port),
            protocol: self.protocol.map(|protocol| protocol.0),
            state: self.state.map(StateMatch::code),
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Allow => "allow",
            Self::Drop => "drop",
            Self::Reject => "reject",
        })
    }
}
