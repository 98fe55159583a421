//! `UdpEcho`: sends every datagram back to where it came from, in place:
//! addresses and ports swapped (the UDP checksum stays valid), fresh TTL
//! (the header checksum updated incrementally: its input comes from `udp`,
//! behind `ipv4`, which verified it).

use crate::route::{LocalAddresses, Locality};
use crate::wire::ipv4::DEFAULT_TTL;
use crate::wire::{Ipv4Packet, UdpPacket, udp};
use dataplane::drop_reasons;
use dataplane::{Batch, Checked, Nanoservice, Outputs, Packet, Verdict};

drop_reasons! {
    /// Why [`UdpEcho`] drops a datagram.
    UdpEchoDrop {
        /// Not IPv4/UDP (a bug upstream).
        Malformed = "malformed",
        /// Sent to a broadcast address (we never answer from one).
        Broadcast = "broadcast",
    }
}

/// The UDP echo app (RFC 862).
#[derive(Debug, Clone)]
pub struct UdpEcho {
    local: LocalAddresses,
}

impl UdpEcho {
    /// Output for echoed datagrams (to `ipv4-out`).
    pub const OUT: usize = 0;

    /// An echo app answering from these addresses.
    pub fn new(local: LocalAddresses) -> Self {
        Self { local }
    }

    /// Turns the datagram in `packet` into its echo.
    #[inline(always)]
    fn echo(&self, packet: &mut Packet) -> Verdict {
        if let Some(verdict) = Self::echo_checked(packet) {
            return verdict;
        }
        let Ok(mut ip) = Ipv4Packet::new_checked(packet.payload_mut()) else {
            return Verdict::drop(UdpEchoDrop::Malformed);
        };
        if self.local.locality(ip.destination()) != Locality::Unicast {
            return Verdict::drop(UdpEchoDrop::Broadcast);
        }
        let datagram = ip.payload_mut();
        // The common case in one compare: a UDP length equal to the IP
        // payload's (at least a header) makes a valid view. Anything else
        // is padding (RFC 768) or malformed, told apart out of line.
        let exact = datagram.len() >= udp::HEADER_LEN
            && usize::from(u16::from_be_bytes([datagram[4], datagram[5]])) == datagram.len();
        if !exact {
            // Handled after the burst: no call on this path.
            return Verdict::Keep;
        }
        let mut udp = UdpPacket::new_unchecked(datagram);
        udp.swap_ports();
        ip.swap_addresses();
        // `ipv4` verified the header checksum before `udp` passed the
        // datagram on, so the incremental update writes the bytes a
        // full recomputation would.
        ip.set_ttl_updating_checksum(DEFAULT_TTL);
        Verdict::emit(Self::OUT)
    }
}

impl UdpEcho {
    /// The echo of a datagram whose IPv4 header (to one of our unicast
    /// addresses) and UDP header and checksum were checked upstream (the
    /// packet's [`Checked`] claims): nothing is parsed again. `None` when
    /// the claims are missing or the datagram is padded: [`Self::echo`]
    /// then checks it itself.
    #[inline(always)]
    fn echo_checked(packet: &mut Packet) -> Option<Verdict> {
        let checked = packet.checked();
        if !checked.is_udp() || !checked.is_local_unicast() {
            return None;
        }
        let bytes = packet.payload_mut();
        let offset = usize::from(*bytes.first()? & 0x0f) * 4;
        let length = bytes.len().checked_sub(offset)?;
        let (ip, datagram) = bytes.split_at_mut_checked(offset)?;
        let header = datagram.first_chunk_mut::<{ udp::HEADER_LEN }>()?;
        if usize::from(u16::from_be_bytes([header[4], header[5]])) != length {
            return None;
        }
        UdpPacket::new_unchecked(&mut header[..]).swap_ports();
        let mut ip = Ipv4Packet::new_unchecked(ip);
        ip.swap_addresses();
        ip.set_ttl_updating_checksum(DEFAULT_TTL);
        // The header is as valid as it was (checksum updated), and the
        // datagram too (a swap leaves its checksum right); the destination
        // is the peer now.
        packet.set_checked(Checked::IPV4_HEADER.udp());
        Some(Verdict::emit(Self::OUT))
    }
}

/// The datagrams `echo` kept, echoed or dropped one by one.
#[cold]
#[inline(never)]
fn echo_kept(batch: &mut Batch, out: &mut Outputs<'_>) {
    for mut packet in batch.drain() {
        match echo_padded(&mut packet) {
            Verdict::Emit(output) => out.emit(usize::from(output), packet),
            Verdict::Drop(reason) => out.drop(packet, reason),
            Verdict::Keep => out.drop(packet, UdpEchoDrop::Malformed),
        }
    }
}

/// Echoes a datagram with padding behind it (RFC 768): exactly the
/// UDP-length bytes go back, with the IP total length and header checksum
/// fixed. Drops a malformed one.
#[cold]
#[inline(never)]
fn echo_padded(packet: &mut Packet) -> Verdict {
    let Ok(mut ip) = Ipv4Packet::new_checked(packet.payload_mut()) else {
        return Verdict::drop(UdpEchoDrop::Malformed);
    };
    let header_len = ip.header_len() as u16;
    let Ok(mut udp) = UdpPacket::new_checked(ip.payload_mut()) else {
        return Verdict::drop(UdpEchoDrop::Malformed);
    };
    udp.swap_ports();
    let total_len = header_len + udp.length();
    ip.swap_addresses();
    ip.set_ttl(DEFAULT_TTL);
    ip.set_total_len(total_len);
    ip.fill_checksum();
    packet.truncate(usize::from(total_len));
    Verdict::emit(UdpEcho::OUT)
}

impl Nanoservice for UdpEcho {
    fn name(&self) -> &'static str {
        "udp-echo"
    }

    fn drop_reasons(&self) -> &'static [&'static str] {
        UdpEchoDrop::NAMES
    }

    fn process(&mut self, batch: &mut Batch, out: &mut Outputs<'_>) {
        out.dispatch(batch, |packet, _| self.echo(packet));
        // What `echo` kept: datagrams with padding behind them, or
        // malformed ones.
        if !batch.is_empty() {
            echo_kept(batch, out);
        }
    }
}
