//! `FiveTuple` and `FlowPacket`: what the flow table needs from an IPv4
//! packet, read once through the checked wire views.

use crate::wire::icmp::kind;
use crate::wire::ipv4::protocol;
use crate::wire::tcp::{TcpFlags, parse_options};
use crate::wire::{IcmpPacket, Ipv4Packet, TcpPacket, UdpPacket};
use core::net::Ipv4Addr;

/// A flow's addresses, ports and protocol as one packet carries them. ICMP
/// echo flows put the echo identifier in both port fields, so that the
/// reply's reversed tuple is the request's; other protocols have ports 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FiveTuple {
    /// Source address.
    pub source: Ipv4Addr,
    /// Destination address.
    pub destination: Ipv4Addr,
    /// Source port (TCP, UDP), echo identifier (ICMP echo), or 0.
    pub source_port: u16,
    /// Destination port (TCP, UDP), echo identifier (ICMP echo), or 0.
    pub destination_port: u16,
    /// IP protocol number.
    pub protocol: u8,
}

impl FiveTuple {
    /// The same flow seen from the other end.
    pub const fn reversed(&self) -> Self {
        Self {
            source: self.destination,
            destination: self.source,
            source_port: self.destination_port,
            destination_port: self.source_port,
            protocol: self.protocol,
        }
    }

    /// The tuple in one canonical direction (lower address and port
    /// first), and whether that is the packet's own direction: both
    /// directions of a flow share the canonical form.
    pub fn canonical(&self) -> (Self, bool) {
        let forward = (self.source.to_bits(), self.source_port)
            <= (self.destination.to_bits(), self.destination_port);
        if forward {
            (*self, true)
        } else {
            (self.reversed(), false)
        }
    }
}

/// Which way a packet travels along its flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From the host that opened the flow.
    Original,
    /// Back to it.
    Reply,
}

/// Where a TCP segment lies in its sender's sequence space, for window
/// tracking (all zero for other protocols).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Segment {
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number (meaningful with the ACK flag).
    pub ack: u32,
    /// The window field, unscaled.
    pub window: u16,
    /// Sequence space taken: payload bytes, one more each for SYN and FIN.
    pub len: u32,
    /// The window scale a SYN offers (its option), if any.
    pub window_scale: Option<u8>,
}

/// What the tracker reads from one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowPacket {
    /// The packet's tuple.
    pub tuple: FiveTuple,
    /// TCP control bits (none for other protocols).
    pub tcp_flags: TcpFlags,
    /// The TCP segment's sequence space (zero for other protocols).
    pub segment: Segment,
    /// For an ICMP error: the tuple of the packet it quotes, reversed to
    /// the direction of the flow it belongs to (the error travels back
    /// to the quoted packet's source).
    pub quoted: Option<FiveTuple>,
    /// True when the packet may open a flow: any UDP datagram or packet of
    /// another protocol, a plain TCP SYN, an ICMP request (echo,
    /// timestamp, information, address mask), never a reply or an error.
    pub opens: bool,
}

/// Why a packet carries no trackable flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    /// Not a well-formed IPv4 packet.
    Ip,
    /// A non-first fragment: no transport header to read.
    Fragment,
    /// A TCP, UDP or ICMP header that is cut short.
    Transport,
    /// An ICMP error whose quoted packet is not a readable IPv4 header
    /// with 8 bytes of its transport header.
    Quote,
}

/// Ports of a transport header (`bytes` starts at it), or 0s.
fn ports(protocol_number: u8, bytes: &[u8]) -> Option<(u16, u16)> {
    match protocol_number {
        protocol::TCP | protocol::UDP => {
            let header = bytes.get(..4)?;
            Some((
                u16::from_be_bytes([header[0], header[1]]),
                u16::from_be_bytes([header[2], header[3]]),
            ))
        }
        protocol::ICMP => {
            // The quoted echo's identifier (type, code, checksum, id).
            let header = bytes.get(..8)?;
            match header[0] {
                kind::ECHO_REQUEST | kind::ECHO_REPLY => {
                    let ident = u16::from_be_bytes([header[4], header[5]]);
                    Some((ident, ident))
                }
                _ => Some((0, 0)),
            }
        }
        _ => Some((0, 0)),
    }
}

impl FlowPacket {
    /// Reads `ip` (an IPv4 packet from its header on).
    pub fn parse(ip: &[u8]) -> Result<Self, ParseError> {
        let view = Ipv4Packet::new_checked(ip).map_err(|_| ParseError::Ip)?;
        if view.fragment_offset() != 0 {
            return Err(ParseError::Fragment);
        }
        let mut tuple = FiveTuple {
            source: view.source(),
            destination: view.destination(),
            source_port: 0,
            destination_port: 0,
            protocol: view.protocol(),
        };
        let mut tcp_flags = TcpFlags::NONE;
        let mut segment = Segment::default();
        let mut quoted = None;
        let mut opens = true;
        let payload = view.payload();
        match tuple.protocol {
            protocol::TCP => {
                let tcp = TcpPacket::new_checked(payload).map_err(|_| ParseError::Transport)?;
                (tuple.source_port, tuple.destination_port) =
                    (tcp.source_port(), tcp.destination_port());
                tcp_flags = tcp.flags();
                opens = super::TcpState::open(tcp_flags).is_some();
                segment = Self::segment(&tcp);
            }
            protocol::UDP => {
                let udp = UdpPacket::new_checked(payload).map_err(|_| ParseError::Transport)?;
                (tuple.source_port, tuple.destination_port) =
                    (udp.source_port(), udp.destination_port());
            }
            protocol::ICMP => {
                let icmp = IcmpPacket::new_checked(payload).map_err(|_| ParseError::Transport)?;
                // Requests: echo 8, timestamp 13, information 15, mask 17.
                opens = matches!(icmp.msg_type(), 8 | 13 | 15 | 17);
                match icmp.msg_type() {
                    kind::ECHO_REQUEST | kind::ECHO_REPLY => {
                        let ident = icmp.echo_ident();
                        (tuple.source_port, tuple.destination_port) = (ident, ident);
                    }
                    _ if icmp.is_error() => {
                        quoted = Some(Self::quote(icmp.payload())?);
                    }
                    _ => {}
                }
            }
            _ => {}
        }
        Ok(Self {
            tuple,
            tcp_flags,
            segment,
            quoted,
            opens,
        })
    }

    /// The sequence space of `tcp`; a SYN's window scale from its options
    /// (malformed options offer none, as if absent).
    fn segment(tcp: &TcpPacket<&[u8]>) -> Segment {
        let flags = tcp.flags();
        let syn = flags.contains(TcpFlags::SYN);
        let controls = u32::from(syn) + u32::from(flags.contains(TcpFlags::FIN));
        let window_scale = if syn {
            parse_options(tcp.options())
                .ok()
                .and_then(|options| options.window_scale)
        } else {
            None
        };
        Segment {
            seq: tcp.sequence_number(),
            ack: tcp.acknowledgment_number(),
            window: tcp.window(),
            len: tcp.payload().len() as u32 + controls,
            window_scale,
        }
    }

    /// The tuple of the packet an ICMP error quotes (its IP header and at
    /// least 8 bytes after it, RFC 792), as that packet travelled.
    fn quote(quote: &[u8]) -> Result<FiveTuple, ParseError> {
        // The quote is cut short, so the total length cannot be checked:
        // read the header by hand, within what is there.
        let first = *quote.first().ok_or(ParseError::Quote)?;
        let header_len = usize::from(first & 0x0f) * 4;
        if first >> 4 != 4 || header_len < 20 || quote.len() < header_len + 8 {
            return Err(ParseError::Quote);
        }
        let address =
            |at: usize| Ipv4Addr::new(quote[at], quote[at + 1], quote[at + 2], quote[at + 3]);
        let protocol_number = quote[9];
        let (source_port, destination_port) =
            ports(protocol_number, &quote[header_len..]).ok_or(ParseError::Quote)?;
        Ok(FiveTuple {
            source: address(12),
            destination: address(16),
            source_port,
            destination_port,
            protocol: protocol_number,
        })
    }
}
