//! `PacketSink`: builds the segments the stack sends as IPv4 packets in
//! fresh pool buffers (link headroom left in front), payload copied once
//! from the connection's send buffer, checksums filled.

use super::buffer::SendBuffer;
use super::connection::{FourTuple, Outgoing, SegmentSink};
use super::node::TcpOutput;
use super::seq::Seq;
use crate::wire::ethernet;
use crate::wire::ipv4::{self, DEFAULT_TTL, protocol};
use crate::wire::tcp::{TcpFlags, TcpHeader, TcpOptions};
use crate::wire::{Ipv4Packet, TcpPacket};
use dataplane::Outputs;

/// Sends segments through a node's `out` output.
pub struct PacketSink<'o, 'a> {
    out: &'o mut Outputs<'a>,
}

impl<'o, 'a> PacketSink<'o, 'a> {
    /// A sink over the node's outputs.
    pub fn new(out: &'o mut Outputs<'a>) -> Self {
        Self { out }
    }

    /// Builds and sends one segment; `payload` fills its payload bytes.
    fn build(
        &mut self,
        tuple: &FourTuple,
        header: &TcpHeader,
        payload_len: usize,
        payload: impl FnOnce(&mut [u8]),
    ) -> bool {
        let Some(mut packet) = self.out.alloc() else {
            return false;
        };
        let header_len = header.header_len();
        let total = ipv4::HEADER_LEN + header_len + payload_len;
        // Link-layer room in front, zeroed: a recycled buffer's old header
        // must not pass for a reply hint.
        let Ok(room) = packet.append(ethernet::HEADER_LEN + total) else {
            return false;
        };
        room[..ethernet::HEADER_LEN].fill(0);
        if packet.trim_front(ethernet::HEADER_LEN).is_err() {
            return false;
        }
        let bytes = packet.payload_mut();
        let (ip_header, segment) = bytes.split_at_mut(ipv4::HEADER_LEN);
        header.emit(segment);
        payload(&mut segment[header_len..]);
        let (source, destination) = (*tuple.local.ip(), *tuple.remote.ip());
        TcpPacket::new_unchecked(&mut segment[..]).fill_checksum(source, destination);
        Ipv4Packet::new_unchecked(ip_header).emit_header(
            source,
            destination,
            protocol::TCP,
            (header_len + payload_len) as u16,
            DEFAULT_TTL,
        );
        self.out.emit(TcpOutput::Out.into(), packet);
        true
    }

    /// Sends a segment with no payload and no connection behind it (RST,
    /// cookie SYN-ACK, TIME-WAIT ACK).
    pub fn send_raw(
        &mut self,
        tuple: &FourTuple,
        seq: Seq,
        ack: Seq,
        flags: TcpFlags,
        window: u16,
        options: TcpOptions,
    ) -> bool {
        let header = TcpHeader {
            source_port: tuple.local.port(),
            destination_port: tuple.remote.port(),
            sequence: seq.0,
            acknowledgment: ack.0,
            flags,
            window,
            options,
        };
        self.build(tuple, &header, 0, |_| {})
    }
}

impl SegmentSink for PacketSink<'_, '_> {
    fn send(&mut self, tuple: &FourTuple, segment: &Outgoing, send: &SendBuffer) -> bool {
        let header = TcpHeader {
            source_port: tuple.local.port(),
            destination_port: tuple.remote.port(),
            sequence: segment.seq.0,
            acknowledgment: if segment.flags.contains(TcpFlags::ACK) {
                segment.ack.0
            } else {
                0
            },
            flags: segment.flags,
            window: segment.window,
            options: segment.options,
        };
        self.build(tuple, &header, segment.payload_len, |payload| {
            send.copy_out(segment.payload_offset, payload);
        })
    }
}
