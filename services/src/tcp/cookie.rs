//! Initial sequence numbers (RFC 6528) and SYN cookies: when the SYN queue
//! is full, the SYN-ACK's sequence number itself carries what the
//! connection needs (the peer's MSS, coarsely), signed with a keyed hash,
//! so a flood of SYNs costs no memory and a real client still gets in.
//!
//! A cookie is `time (5 bits) | MSS index (3 bits) | hash (24 bits)`;
//! `time` counts 64-second periods and a cookie is good in its period and
//! the next. With timestamps, the low 5 bits of our TSval carry the
//! peer's window scale (the ACK echoes them back).

use super::seq::Seq;
use super::siphash::SipKey;
use core::net::SocketAddrV4;

/// MSS values a cookie can carry, smallest first.
const MSS_TABLE: [u16; 8] = [536, 1024, 1220, 1360, 1400, 1440, 1460, 8960];
/// Milliseconds per cookie period (a power of two).
const PERIOD_MS: u64 = 64 * 1024;
/// TSval bits that carry the peer's options: bit 5 says SACK was
/// permitted, bit 4 that a window scale was offered, bits 0-3 hold it.
pub const TIMESTAMP_OPTION_BITS: u32 = 6;

/// The secrets of one core's TCP stack.
#[derive(Debug, Clone)]
pub struct Secrets {
    isn: SipKey,
    cookie: SipKey,
}

/// What a valid cookie gives back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CookieGrant {
    /// The MSS to send with (at most the peer's).
    pub mss: u16,
}

/// The connection's four addresses, as bytes for hashing.
fn tuple_bytes(local: SocketAddrV4, remote: SocketAddrV4) -> [u8; 12] {
    let mut bytes = [0u8; 12];
    bytes[..4].copy_from_slice(&local.ip().octets());
    bytes[4..6].copy_from_slice(&local.port().to_be_bytes());
    bytes[6..10].copy_from_slice(&remote.ip().octets());
    bytes[10..].copy_from_slice(&remote.port().to_be_bytes());
    bytes
}

impl Secrets {
    /// Secrets derived from `seed` (which should be random; see the
    /// platform's seed in `BuildContext`).
    pub fn new(seed: u64) -> Self {
        let mix = |value: u64| {
            let mut x = value ^ 0x9e37_79b9_7f4a_7c15;
            x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            x ^ (x >> 31)
        };
        Self {
            isn: SipKey([mix(seed), mix(seed.wrapping_add(1))]),
            cookie: SipKey([mix(seed.wrapping_add(2)), mix(seed.wrapping_add(3))]),
        }
    }

    /// The initial sequence number for a connection (RFC 6528): a 4 µs
    /// clock plus a keyed hash of the addresses, so that numbers of one
    /// connection's incarnations increase and others' cannot be guessed.
    pub fn initial_sequence(&self, local: SocketAddrV4, remote: SocketAddrV4, now_ns: u64) -> Seq {
        let hash = self.isn.hash(&tuple_bytes(local, remote)) as u32;
        Seq(hash.wrapping_add((now_ns / 4000) as u32))
    }

    /// The 24-bit signature of a cookie.
    fn signature(
        &self,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        peer_initial: Seq,
        time: u32,
        mss_index: u32,
    ) -> u32 {
        let mut bytes = [0u8; 20];
        bytes[..12].copy_from_slice(&tuple_bytes(local, remote));
        bytes[12..16].copy_from_slice(&peer_initial.0.to_be_bytes());
        bytes[16..].copy_from_slice(&(time << 3 | mss_index).to_be_bytes());
        (self.cookie.hash(&bytes) as u32) & 0x00ff_ffff
    }

    /// The cookie to send as our initial sequence number in answer to a
    /// SYN whose sequence number is `peer_initial`, offering `peer_mss`.
    pub fn make_cookie(
        &self,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        peer_initial: Seq,
        peer_mss: u16,
        now_ms: u64,
    ) -> Seq {
        let time = ((now_ms / PERIOD_MS) & 0x1f) as u32;
        let mss_index = MSS_TABLE
            .iter()
            .rposition(|mss| *mss <= peer_mss)
            .unwrap_or(0) as u32;
        let signature = self.signature(local, remote, peer_initial, time, mss_index);
        Seq(time << 27 | mss_index << 24 | signature)
    }

    /// Checks the cookie an ACK returns (`acknowledgment - 1`) for a SYN
    /// whose sequence number was `peer_initial` (`sequence - 1`).
    pub fn check_cookie(
        &self,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        peer_initial: Seq,
        cookie: Seq,
        now_ms: u64,
    ) -> Option<CookieGrant> {
        let time = cookie.0 >> 27;
        let mss_index = (cookie.0 >> 24) & 0x7;
        let now = ((now_ms / PERIOD_MS) & 0x1f) as u32;
        if time != now && time != (now.wrapping_sub(1) & 0x1f) {
            return None;
        }
        let signature = self.signature(local, remote, peer_initial, time, mss_index);
        (signature == cookie.0 & 0x00ff_ffff).then(|| CookieGrant {
            mss: MSS_TABLE[mss_index as usize],
        })
    }
}

/// Our TSval for a cookie SYN-ACK: the clock with its low bits replaced
/// by the peer's window scale, moved back a period if that put it ahead
/// of the clock (the peer's PAWS check must accept our next TSval).
pub fn cookie_timestamp(now_ts: u32, window_scale: Option<u8>, sack_permitted: bool) -> u32 {
    let bits = window_scale.map_or(0, |scale| 0x10 | u32::from(scale.min(14)))
        | if sack_permitted { 0x20 } else { 0 };
    let mask = (1 << TIMESTAMP_OPTION_BITS) - 1;
    let value = (now_ts & !mask) | bits;
    if value > now_ts {
        value.wrapping_sub(1 << TIMESTAMP_OPTION_BITS)
    } else {
        value
    }
}

/// The window scale a cookie SYN-ACK's TSval carried (echoed as TSecr).
pub fn cookie_window_scale(echoed: u32) -> Option<u8> {
    (echoed & 0x10 != 0).then_some((echoed & 0x0f) as u8)
}

/// Whether a cookie SYN-ACK's TSval said the peer permitted SACK.
pub fn cookie_sack_permitted(echoed: u32) -> bool {
    echoed & 0x20 != 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::Ipv4Addr;

    fn addresses() -> (SocketAddrV4, SocketAddrV4) {
        (
            SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 80),
            SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 40000),
        )
    }

    #[test]
    fn a_cookie_checks_in_its_period_and_the_next_only() {
        let secrets = Secrets::new(42);
        let (local, remote) = addresses();
        let cookie = secrets.make_cookie(local, remote, Seq(1000), 1460, 5_000);
        let grant = secrets.check_cookie(local, remote, Seq(1000), cookie, 5_000);
        assert_eq!(grant, Some(CookieGrant { mss: 1460 }));
        assert!(
            secrets
                .check_cookie(local, remote, Seq(1000), cookie, 5_000 + PERIOD_MS)
                .is_some()
        );
        assert!(
            secrets
                .check_cookie(local, remote, Seq(1000), cookie, 5_000 + 2 * PERIOD_MS)
                .is_none()
        );
        // Another peer sequence, port or secret: refused.
        assert!(
            secrets
                .check_cookie(local, remote, Seq(1001), cookie, 5_000)
                .is_none()
        );
        let other = SocketAddrV4::new(*remote.ip(), 40001);
        assert!(
            secrets
                .check_cookie(local, other, Seq(1000), cookie, 5_000)
                .is_none()
        );
        assert!(
            Secrets::new(43)
                .check_cookie(local, remote, Seq(1000), cookie, 5_000)
                .is_none()
        );
        assert!(
            secrets
                .check_cookie(local, remote, Seq(1000), cookie + 1u32, 5_000)
                .is_none()
        );
    }

    #[test]
    fn the_mss_is_rounded_down_to_the_table() {
        let secrets = Secrets::new(7);
        let (local, remote) = addresses();
        for (offered, granted) in [(1460, 1460), (1459, 1440), (9000, 8960), (100, 536)] {
            let cookie = secrets.make_cookie(local, remote, Seq(9), offered, 0);
            let grant = secrets.check_cookie(local, remote, Seq(9), cookie, 0);
            assert_eq!(grant.map(|grant| grant.mss), Some(granted), "{offered}");
        }
    }

    #[test]
    fn timestamps_carry_the_window_scale_without_running_ahead() {
        for now in [0u32, 31, 32, 1000, 1_000_017] {
            for scale in [None, Some(0), Some(7), Some(14)] {
                for sack in [false, true] {
                    let value = cookie_timestamp(now, scale, sack);
                    assert!(value <= now || now < 64, "{now} {scale:?}");
                    assert_eq!(cookie_window_scale(value), scale);
                    assert_eq!(cookie_sack_permitted(value), sack);
                }
            }
        }
    }

    #[test]
    fn initial_sequence_numbers_differ_by_connection_and_grow_with_time() {
        let secrets = Secrets::new(1);
        let (local, remote) = addresses();
        let first = secrets.initial_sequence(local, remote, 0);
        assert_eq!(secrets.initial_sequence(local, remote, 4000), first + 1u32);
        let other = SocketAddrV4::new(*remote.ip(), 40001);
        assert_ne!(secrets.initial_sequence(local, other, 0), first);
    }
}
