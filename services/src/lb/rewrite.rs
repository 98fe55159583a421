//! The NAT-mode rewrites: a packet's destination (towards a backend) or
//! source (a backend's reply, back to the VIP) address and port, with the
//! IPv4 header checksum and the TCP or UDP checksum (whose pseudo-header
//! covers the addresses) updated incrementally (RFC 1624), not recomputed.

use crate::wire::checksum::update;
use crate::wire::ipv4::protocol;
use crate::wire::{Ipv4Packet, TcpPacket, UdpPacket};
use core::net::Ipv4Addr;

/// An address and port: a VIP or a backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Endpoint {
    /// The IPv4 address.
    pub address: Ipv4Addr,
    /// The TCP or UDP port.
    pub port: u16,
}

/// Why a packet could not be rewritten.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RewriteError {
    /// Not an IPv4 packet with a whole TCP or UDP header.
    Malformed,
    /// A non-first fragment: its ports are in another packet.
    Fragment,
}

/// Which end of the packet to rewrite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Source,
    Destination,
}

/// The 16-bit words of an address.
fn words(address: Ipv4Addr) -> [u16; 2] {
    let octets = address.octets();
    [
        u16::from_be_bytes([octets[0], octets[1]]),
        u16::from_be_bytes([octets[2], octets[3]]),
    ]
}

/// `checksum` after the words `old` became `new`.
fn update_all(mut checksum: u16, old: &[u16], new: &[u16]) -> u16 {
    for (&before, &after) in old.iter().zip(new) {
        checksum = update(checksum, before, after);
    }
    checksum
}

fn rewrite(ip: &mut [u8], end: End, to: Endpoint) -> Result<(), RewriteError> {
    let mut view = Ipv4Packet::new_checked(&mut *ip).map_err(|_| RewriteError::Malformed)?;
    if view.fragment_offset() != 0 {
        return Err(RewriteError::Fragment);
    }
    let old_address = match end {
        End::Source => view.source(),
        End::Destination => view.destination(),
    };
    let (old_words, new_words) = (words(old_address), words(to.address));
    let proto = view.protocol();
    // Check and rewrite the transport header first, so that a packet cut
    // short is left as it came.
    {
        let payload = view.payload_mut();
        match proto {
            protocol::TCP => {
                let mut tcp =
                    TcpPacket::new_checked(&mut *payload).map_err(|_| RewriteError::Malformed)?;
                let old_port = match end {
                    End::Source => tcp.source_port(),
                    End::Destination => tcp.destination_port(),
                };
                let checksum = update_all(
                    tcp.checksum(),
                    &[old_words[0], old_words[1], old_port],
                    &[new_words[0], new_words[1], to.port],
                );
                match end {
                    End::Source => tcp.set_source_port(to.port),
                    End::Destination => tcp.set_destination_port(to.port),
                }
                tcp.set_checksum(checksum);
            }
            protocol::UDP => {
                let mut udp =
                    UdpPacket::new_checked(&mut *payload).map_err(|_| RewriteError::Malformed)?;
                let old_port = match end {
                    End::Source => udp.source_port(),
                    End::Destination => udp.destination_port(),
                };
                // 0 means "no checksum" (RFC 768) and stays so; a sum that
                // comes out 0 is sent as its other form, 0xffff.
                if udp.checksum() != 0 {
                    let checksum = update_all(
                        udp.checksum(),
                        &[old_words[0], old_words[1], old_port],
                        &[new_words[0], new_words[1], to.port],
                    );
                    udp.set_checksum(if checksum == 0 { 0xffff } else { checksum });
                }
                match end {
                    End::Source => udp.set_source_port(to.port),
                    End::Destination => udp.set_destination_port(to.port),
                }
            }
            _ => return Err(RewriteError::Malformed),
        }
    }
    let checksum = update_all(view.checksum(), &old_words, &new_words);
    match end {
        End::Source => view.set_source(to.address),
        End::Destination => view.set_destination(to.address),
    }
    view.set_checksum(checksum);
    Ok(())
}

/// Sends `ip` (an IPv4 TCP or UDP packet) to `to`: its destination
/// address and port, and the checksums. Leaves it unchanged on error.
pub fn rewrite_destination(ip: &mut [u8], to: Endpoint) -> Result<(), RewriteError> {
    rewrite(ip, End::Destination, to)
}

/// Makes `ip` come from `from`: its source address and port, and the
/// checksums. Leaves it unchanged on error.
pub fn rewrite_source(ip: &mut [u8], from: Endpoint) -> Result<(), RewriteError> {
    rewrite(ip, End::Source, from)
}
