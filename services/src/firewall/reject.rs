//! What `reject` sends back: a TCP RST for a TCP segment (RFC 9293 3.10.7.1:
//! the sequence number from the segment's ACK, or an ACK of everything it
//! carried), ICMP port unreachable for the rest.

use crate::wire::ethernet;
use crate::wire::ipv4::{self, DEFAULT_TTL, protocol};
use crate::wire::tcp::{TcpFlags, TcpHeader, TcpOptions};
use crate::wire::{Ipv4Packet, TcpPacket};
use dataplane::{Outputs, Packet};

/// A RST answering the TCP segment in `ip`, from its destination; `None`
/// for a RST (never answered), a malformed segment or an empty pool.
pub(crate) fn reset_for(ip: &[u8], out: &mut Outputs<'_>) -> Option<Packet> {
    let view = Ipv4Packet::new_checked(ip).ok()?;
    let segment = TcpPacket::new_checked(view.payload()).ok()?;
    let flags = segment.flags();
    if flags.contains(TcpFlags::RST) {
        return None;
    }
    let (sequence, acknowledgment, reply_flags) = if flags.contains(TcpFlags::ACK) {
        (segment.acknowledgment_number(), 0, TcpFlags::RST)
    } else {
        let length = segment.payload().len() as u32
            + u32::from(flags.contains(TcpFlags::SYN))
            + u32::from(flags.contains(TcpFlags::FIN));
        (
            0,
            segment.sequence_number().wrapping_add(length),
            TcpFlags::RST | TcpFlags::ACK,
        )
    };
    let header = TcpHeader {
        source_port: segment.destination_port(),
        destination_port: segment.source_port(),
        sequence,
        acknowledgment,
        flags: reply_flags,
        window: 0,
        options: TcpOptions::default(),
    };
    let (source, destination) = (view.destination(), view.source());
    let mut packet = out.alloc()?;
    let header_len = header.header_len();
    let total = ipv4::HEADER_LEN + header_len;
    // Link-layer room in front, zeroed (as the TCP stack's segments).
    let room = packet.append(ethernet::HEADER_LEN + total).ok()?;
    room[..ethernet::HEADER_LEN].fill(0);
    packet.trim_front(ethernet::HEADER_LEN).ok()?;
    let (ip_header, tcp_bytes) = packet.payload_mut().split_at_mut(ipv4::HEADER_LEN);
    header.emit(tcp_bytes);
    TcpPacket::new_unchecked(&mut tcp_bytes[..]).fill_checksum(source, destination);
    Ipv4Packet::new_unchecked(ip_header).emit_header(
        source,
        destination,
        protocol::TCP,
        header_len as u16,
        DEFAULT_TTL,
    );
    Some(packet)
}
