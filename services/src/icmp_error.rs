//! ICMP error messages (destination unreachable, time exceeded): when they
//! may be sent (RFC 1122 3.2.2), a token-bucket rate limit, and building one
//! in a fresh pool buffer that quotes the offending header.

use crate::wire::icmp::{self, IcmpPacket};
use crate::wire::ipv4::{self, Ipv4Packet};
use crate::wire::{ethernet, udp};
use core::net::Ipv4Addr;
use dataplane::{Outputs, Packet};

/// Errors allowed per second, sustained.
pub const ERRORS_PER_SECOND: u64 = 100;
/// Errors allowed in a burst.
pub const ERROR_BURST: u64 = 20;

/// A token bucket on the platform clock.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    /// Accumulated credit, in nanoseconds.
    credit_ns: u64,
    last_ns: Option<u64>,
    interval_ns: u64,
    burst_ns: u64,
}

impl TokenBucket {
    /// `per_second` tokens a second, at most `burst` at once (starts full).
    pub const fn new(per_second: u64, burst: u64) -> Self {
        let interval_ns = 1_000_000_000 / per_second;
        Self {
            credit_ns: interval_ns * burst,
            last_ns: None,
            interval_ns,
            burst_ns: interval_ns * burst,
        }
    }

    /// Takes a token if there is one.
    #[inline]
    pub fn allow(&mut self, now_ns: u64) -> bool {
        if let Some(last) = self.last_ns {
            self.credit_ns = self
                .credit_ns
                .saturating_add(now_ns.saturating_sub(last))
                .min(self.burst_ns);
        }
        self.last_ns = Some(now_ns);
        if self.credit_ns >= self.interval_ns {
            self.credit_ns -= self.interval_ns;
            true
        } else {
            false
        }
    }
}

impl Default for TokenBucket {
    fn default() -> Self {
        Self::new(ERRORS_PER_SECOND, ERROR_BURST)
    }
}

/// True when RFC 1122 allows an ICMP error about `offending`: not about an
/// ICMP error, a non-first fragment, or a packet from a non-unicast source.
/// (Callers check that the destination was not a broadcast.)
pub fn may_answer_with_error(offending: &[u8]) -> bool {
    let Ok(packet) = Ipv4Packet::new_checked(offending) else {
        return false;
    };
    let source = packet.source();
    if source.is_broadcast() || source.is_multicast() || source.is_unspecified() {
        return false;
    }
    if packet.fragment_offset() != 0 {
        return false;
    }
    if packet.protocol() == ipv4::protocol::ICMP {
        return match IcmpPacket::new_checked(packet.payload()) {
            Ok(message) => !message.is_error(),
            Err(_) => false,
        };
    }
    true
}

/// Builds an ICMP error from `source` about `offending` (an IP packet) in a
/// fresh buffer, with link-layer headroom for the Ethernet header. `None`
/// when the pool is empty.
pub fn build_error(
    out: &mut Outputs<'_>,
    offending: &[u8],
    source: Ipv4Addr,
    msg_type: u8,
    code: u8,
) -> Option<Packet> {
    let original = Ipv4Packet::new_checked(offending).ok()?;
    let quoted_len =
        (original.header_len() + udp::HEADER_LEN).min(usize::from(original.total_len()));
    let message_len = icmp::HEADER_LEN + quoted_len;
    let total = ipv4::HEADER_LEN + message_len;
    let mut packet = out.alloc()?;
    // Zeroed link-layer room: a recycled buffer's old header must not
    // pass for a reply hint.
    packet.append(ethernet::HEADER_LEN + total).ok()?.fill(0);
    packet.trim_front(ethernet::HEADER_LEN).ok()?;
    let bytes = packet.payload_mut();
    let (header, message) = bytes.split_at_mut(ipv4::HEADER_LEN);
    IcmpPacket::new_unchecked(&mut message[..]).emit_error(
        msg_type,
        code,
        &offending[..quoted_len],
    );
    Ipv4Packet::new_unchecked(header).emit_header(
        source,
        original.source(),
        ipv4::protocol::ICMP,
        message_len as u16,
        ipv4::DEFAULT_TTL,
    );
    Some(packet)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_a_burst_then_the_rate() {
        let mut bucket = TokenBucket::new(10, 3);
        assert!(bucket.allow(0) && bucket.allow(0) && bucket.allow(0));
        assert!(!bucket.allow(0));
        assert!(!bucket.allow(50_000_000));
        assert!(bucket.allow(100_000_000));
        assert!(!bucket.allow(100_000_000));
        assert!(bucket.allow(10_000_000_000) && bucket.allow(10_000_000_000));
        assert!(bucket.allow(10_000_000_000) && !bucket.allow(10_000_000_000));
    }

    #[test]
    fn never_answers_errors_fragments_or_broadcast_sources() {
        let mut header = crate::wire::ipv4::fixtures::HEADER;
        assert!(may_answer_with_error(&header));
        header[12..16].copy_from_slice(&[255, 255, 255, 255]);
        assert!(!may_answer_with_error(&header));
        let mut later = crate::wire::ipv4::fixtures::HEADER;
        later[6..8].copy_from_slice(&[0, 1]);
        assert!(!may_answer_with_error(&later));
        let mut error = [0u8; 28];
        error[..20].copy_from_slice(&crate::wire::ipv4::fixtures::HEADER);
        error[3] = 28;
        error[9] = 1;
        error[20] = 3;
        assert!(!may_answer_with_error(&error));
        error[20] = 8;
        assert!(may_answer_with_error(&error));
        assert!(!may_answer_with_error(&error[..10]));
    }
}
