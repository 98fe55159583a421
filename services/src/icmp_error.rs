//! ICMP error messages (destination unreachable, time exceeded): when they
//! may be sent (RFC 1122 3.2.2), the rate limiter every error kind of one
//! core shares (a token bucket per destination, like Linux), and building
//! one in a fresh pool buffer that quotes the offending header.

use crate::route::{LocalAddresses, Locality};
use crate::wire::icmp::{self, IcmpPacket};
use crate::wire::ipv4::{self, Ipv4Packet};
use crate::wire::{ethernet, udp};
use alloc::rc::Rc;
use arrayvec::ArrayVec;
use core::cell::RefCell;
use core::net::Ipv4Addr;
use dataplane::{Outputs, Packet};

/// Errors allowed per second to one destination, sustained (Linux
/// `icmp_ratelimit`: 1000 ms).
pub const ERRORS_PER_SECOND: u64 = 1;
/// Errors allowed in a burst to one destination (Linux `XRLIM_BURST_FACTOR`).
pub const ERROR_BURST: u64 = 6;
/// Errors allowed per second from one core to everybody (Linux
/// `icmp_msgs_per_sec`).
pub const GLOBAL_ERRORS_PER_SECOND: u64 = 1000;
/// Errors allowed in a burst from one core (Linux `icmp_msgs_burst`).
pub const GLOBAL_ERROR_BURST: u64 = 50;
/// Destinations with a bucket of their own; the least recently used one
/// makes room for a new destination (which starts with a full burst).
pub const LIMITED_DESTINATIONS: usize = 16;

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

    /// When a token was last asked for.
    fn last_ns(&self) -> u64 {
        self.last_ns.unwrap_or(0)
    }
}

/// The buckets of one core: one per recent destination and one for all.
#[derive(Debug)]
struct Buckets {
    global: TokenBucket,
    destinations: ArrayVec<(Ipv4Addr, TokenBucket), LIMITED_DESTINATIONS>,
}

impl Buckets {
    fn allow(&mut self, destination: Ipv4Addr, now_ns: u64) -> bool {
        let index = match self
            .destinations
            .iter()
            .position(|(address, _)| *address == destination)
        {
            Some(index) => index,
            None => {
                let fresh = (
                    destination,
                    TokenBucket::new(ERRORS_PER_SECOND, ERROR_BURST),
                );
                if let Err(error) = self.destinations.try_push(fresh) {
                    let oldest = self
                        .destinations
                        .iter()
                        .enumerate()
                        .min_by_key(|(_, (_, bucket))| bucket.last_ns())
                        .map_or(0, |(index, _)| index);
                    self.destinations[oldest] = error.element();
                    oldest
                } else {
                    self.destinations.len() - 1
                }
            }
        };
        // The destination's bucket first: a peer over its own limit does
        // not spend the tokens everybody shares.
        self.destinations[index].1.allow(now_ns) && self.global.allow(now_ns)
    }
}

/// The ICMP error limiter of one core, shared by every node that sends
/// errors (`ipv4`, `udp`, `l3fwd`): cloning it shares the buckets. Linux's
/// scheme: a bucket per destination (1/s, burst 6) behind a global one
/// (1000/s, burst 50). Echo replies are not limited.
#[derive(Debug, Clone)]
pub struct ErrorLimiter {
    buckets: Rc<RefCell<Buckets>>,
}

impl Default for ErrorLimiter {
    fn default() -> Self {
        Self::new()
    }
}

impl ErrorLimiter {
    /// A limiter with full buckets.
    pub fn new() -> Self {
        Self {
            buckets: Rc::new(RefCell::new(Buckets {
                global: TokenBucket::new(GLOBAL_ERRORS_PER_SECOND, GLOBAL_ERROR_BURST),
                destinations: ArrayVec::new(),
            })),
        }
    }

    /// Takes a token for an error to `destination` if there is one.
    pub fn allow(&self, destination: Ipv4Addr, now_ns: u64) -> bool {
        self.buckets.borrow_mut().allow(destination, now_ns)
    }

    /// Builds an ICMP error from `source` about `offending` (an IP packet
    /// that arrived here, header first) when RFC 1122 allows one (see
    /// [`may_answer_with_error`]; `local` tells whether its destination
    /// was a broadcast) and the limiter has a token for its source.
    pub fn error_for(
        &self,
        out: &mut Outputs<'_>,
        local: &LocalAddresses,
        offending: &[u8],
        source: Ipv4Addr,
        kind: (u8, u8),
    ) -> Option<Packet> {
        let original = Ipv4Packet::new_checked(offending).ok()?;
        let quoted_len =
            (original.header_len() + udp::HEADER_LEN).min(usize::from(original.total_len()));
        self.error_quoting(out, local, &offending[..quoted_len], source, kind)
    }

    /// Sends destination unreachable `code` about `offending` (from our
    /// address `source`) on output `output`, when the limiter allows: the
    /// answer of `ipv4` to an unknown protocol and of `udp` to a closed port.
    pub fn send_unreachable(
        &self,
        out: &mut Outputs<'_>,
        local: &LocalAddresses,
        offending: &[u8],
        source: Ipv4Addr,
        (code, output): (u8, usize),
    ) {
        let kind = (crate::wire::icmp::kind::DESTINATION_UNREACHABLE, code);
        if let Some(error) = self.error_for(out, local, offending, source, kind) {
            out.emit(output, error);
        }
    }

    /// [`error_for`](Self::error_for) from what the error quotes: the
    /// offending header as it arrived and up to 8 bytes of its payload
    /// (for a datagram whose fragments are gone, like one that timed out
    /// in reassembly).
    pub fn error_quoting(
        &self,
        out: &mut Outputs<'_>,
        local: &LocalAddresses,
        quoted: &[u8],
        source: Ipv4Addr,
        (msg_type, code): (u8, u8),
    ) -> Option<Packet> {
        if !may_quote(quoted) {
            return None;
        }
        let original = Ipv4Packet::new_unchecked(quoted);
        let destination = original.destination();
        if destination.is_multicast() || local.locality(destination) == Locality::Broadcast {
            return None;
        }
        if !self.allow(original.source(), out.now_ns()) {
            return None;
        }
        build_error(out, quoted, source, msg_type, code)
    }
}

/// True when `address` can be no neighbour's own: unspecified, "this
/// network" (0/8), loopback (127/8), multicast, reserved (240/4) or the
/// limited broadcast (Linux's martians).
#[inline]
pub fn is_martian(address: Ipv4Addr) -> bool {
    // One load from a table by the first octet, instead of three compares
    // on every received packet's source.
    MARTIAN_FIRST_OCTETS[usize::from(address.octets()[0])]
}

/// By first octet, whether an address is a martian (see [`is_martian`]):
/// 0 (0/8), 127 (loopback), 224 and above (multicast, reserved,
/// broadcast).
const MARTIAN_FIRST_OCTETS: [bool; 256] = {
    let mut table = [false; 256];
    let mut first = 0;
    while first < 256 {
        table[first] = first == 0 || first == 127 || first >= 224;
        first += 1;
    }
    table
};

/// True when RFC 1122 allows an ICMP error about `offending`: not about an
/// ICMP error, a non-first fragment, or a packet from a martian source
/// (see [`is_martian`]). (Callers check that the destination was not a
/// broadcast, or use [`ErrorLimiter::error_for`], which does.)
pub fn may_answer_with_error(offending: &[u8]) -> bool {
    let Ok(packet) = Ipv4Packet::new_checked(offending) else {
        return false;
    };
    let quoted_len = (packet.header_len() + udp::HEADER_LEN).min(usize::from(packet.total_len()));
    may_quote(&offending[..quoted_len])
}

/// [`may_answer_with_error`] on a quote: a whole header, then up to 8
/// bytes of payload (all 8 when it is ICMP, to tell errors apart).
fn may_quote(quoted: &[u8]) -> bool {
    if quoted.len() < ipv4::HEADER_LEN {
        return false;
    }
    let packet = Ipv4Packet::new_unchecked(quoted);
    let header_len = packet.header_len();
    if header_len < ipv4::HEADER_LEN || header_len > quoted.len() {
        return false;
    }
    if is_martian(packet.source()) || packet.fragment_offset() != 0 {
        return false;
    }
    if packet.protocol() == ipv4::protocol::ICMP {
        return match IcmpPacket::new_checked(&quoted[header_len..]) {
            Ok(message) => !message.is_error(),
            Err(_) => false,
        };
    }
    true
}

/// Builds an ICMP error from `source` quoting `quoted` (an IP header and up
/// to 8 bytes of its payload; at least a header) in a fresh buffer, with
/// link-layer headroom for the Ethernet header. `None` when the pool is
/// empty.
pub fn build_error(
    out: &mut Outputs<'_>,
    quoted: &[u8],
    source: Ipv4Addr,
    msg_type: u8,
    code: u8,
) -> Option<Packet> {
    if quoted.len() < ipv4::HEADER_LEN {
        return None;
    }
    let destination = Ipv4Packet::new_unchecked(quoted).source();
    let message_len = icmp::HEADER_LEN + quoted.len();
    let total = ipv4::HEADER_LEN + message_len;
    let mut packet = out.alloc()?;
    // Zeroed link-layer room: a recycled buffer's old header must not
    // pass for a reply hint.
    packet.append(ethernet::HEADER_LEN + total).ok()?.fill(0);
    packet.trim_front(ethernet::HEADER_LEN).ok()?;
    let bytes = packet.payload_mut();
    let (header, message) = bytes.split_at_mut(ipv4::HEADER_LEN);
    IcmpPacket::new_unchecked(&mut message[..]).emit_error(msg_type, code, quoted);
    Ipv4Packet::new_unchecked(header).emit_header(
        source,
        destination,
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

    #[test]
    fn never_answers_martian_sources() {
        for source in [[127, 0, 0, 1], [0, 1, 2, 3], [224, 0, 0, 1], [240, 0, 0, 1]] {
            let mut header = crate::wire::ipv4::fixtures::HEADER;
            header[12..16].copy_from_slice(&source);
            assert!(!may_answer_with_error(&header), "{source:?}");
        }
        assert!(!is_martian(Ipv4Addr::new(10, 0, 0, 1)));
    }

    #[test]
    fn martians_are_the_first_octets_linux_refuses() {
        let martian = [
            [0, 0, 0, 0],
            [0, 255, 1, 2],
            [127, 0, 0, 1],
            [127, 255, 255, 254],
            [224, 0, 0, 1],
            [239, 1, 1, 1],
            [240, 0, 0, 1],
            [255, 255, 255, 255],
        ];
        let fine = [
            [1, 0, 0, 0],
            [10, 0, 0, 1],
            [126, 255, 255, 255],
            [128, 0, 0, 1],
            [192, 168, 0, 1],
            [223, 255, 255, 255],
        ];
        for octets in martian {
            assert!(is_martian(Ipv4Addr::from(octets)), "{octets:?}");
        }
        for octets in fine {
            assert!(!is_martian(Ipv4Addr::from(octets)), "{octets:?}");
        }
    }

    #[test]
    fn limiter_keeps_a_bucket_per_destination_behind_a_global_one() {
        let limiter = ErrorLimiter::new();
        let shared = limiter.clone();
        let (a, b) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
        for _ in 0..ERROR_BURST {
            assert!(limiter.allow(a, 0));
        }
        // The clone shares the buckets: `a` is spent for both.
        assert!(!shared.allow(a, 0));
        assert!(shared.allow(b, 0), "another destination has its own burst");
        assert!(limiter.allow(a, 1_000_000_000), "one more a second later");
        assert!(!limiter.allow(a, 1_000_000_000));
        // The global bucket caps all destinations together.
        let limiter = ErrorLimiter::new();
        let allowed = (0..200u32)
            .filter(|index| limiter.allow(Ipv4Addr::from_bits(0x0a00_0000 + index), 0))
            .count();
        assert_eq!(allowed as u64, GLOBAL_ERROR_BURST);
    }

    #[test]
    fn limiter_recycles_the_least_recently_used_destination() {
        let limiter = ErrorLimiter::new();
        let first = Ipv4Addr::new(10, 0, 1, 0);
        for _ in 0..ERROR_BURST {
            assert!(limiter.allow(first, 0));
        }
        for index in 1..=LIMITED_DESTINATIONS as u32 {
            assert!(limiter.allow(Ipv4Addr::from_bits(first.to_bits() + index), 1));
        }
        // `first` lost its (empty) bucket and starts over with a full one.
        assert!(limiter.allow(first, 2));
        assert_eq!(
            limiter.buckets.borrow().destinations.len(),
            LIMITED_DESTINATIONS
        );
    }
}
