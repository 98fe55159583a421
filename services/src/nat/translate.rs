//! Rewriting a packet's addresses and ports in place with every checksum
//! that covers them updated incrementally (RFC 1624 eqn. 3,
//! `HC' = ~(~HC + ~m + m')` summed over the changed words): the IPv4
//! header checksum for the addresses, the TCP or UDP checksum for the
//! pseudo header and the ports, the ICMP checksum for an echo identifier,
//! and for an ICMP error the quoted header and its checksums, whose
//! changes the error's own ICMP checksum follows.

use super::super::conntrack::FiveTuple;
use crate::wire::checksum::fold;
use crate::wire::icmp::kind;
use crate::wire::ipv4::protocol;
use core::net::Ipv4Addr;

/// The sum of the changes to some 16-bit words, to apply to any checksum
/// that covers them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delta(u64);

impl Delta {
    /// Notes that a covered word went from `old` to `new`.
    pub fn word(&mut self, old: u16, new: u16) {
        self.0 += u64::from(!old) + u64::from(new);
    }

    /// The changes of `other` too.
    pub fn add(&mut self, other: Delta) {
        self.0 = u64::from(fold(self.0)) + u64::from(fold(other.0));
    }

    /// `checksum` updated for the changes.
    pub fn apply(self, checksum: u16) -> u16 {
        !fold(u64::from(!checksum) + self.0)
    }
}

/// Why a packet could not be rewritten.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Truncated;

fn read16(bytes: &[u8], at: usize) -> Result<u16, Truncated> {
    let word = bytes.get(at..at + 2).ok_or(Truncated)?;
    Ok(u16::from_be_bytes([word[0], word[1]]))
}

/// Writes `new` at `at` and notes the change in `delta`.
fn write16(bytes: &mut [u8], at: usize, new: u16, delta: &mut Delta) -> Result<(), Truncated> {
    let old = read16(bytes, at)?;
    if old != new {
        bytes[at..at + 2].copy_from_slice(&new.to_be_bytes());
        delta.word(old, new);
    }
    Ok(())
}

/// Writes address `new` at `at`, noting both words in `delta`.
fn write_address(
    bytes: &mut [u8],
    at: usize,
    new: Ipv4Addr,
    delta: &mut Delta,
) -> Result<(), Truncated> {
    let [a, b, c, d] = new.octets();
    write16(bytes, at, u16::from_be_bytes([a, b]), delta)?;
    write16(bytes, at + 2, u16::from_be_bytes([c, d]), delta)
}

/// Replaces a checksum at `at` with `delta` applied (`zero_means_none`:
/// a UDP checksum of 0 is absent and stays so, and a computed 0 is sent
/// as 0xffff, RFC 768); the change goes into `outer`.
fn update_checksum(
    bytes: &mut [u8],
    at: usize,
    delta: Delta,
    zero_means_none: bool,
    outer: &mut Delta,
) -> Result<(), Truncated> {
    let old = read16(bytes, at)?;
    if zero_means_none && old == 0 {
        return Ok(());
    }
    let mut new = delta.apply(old);
    if zero_means_none && new == 0 {
        new = 0xffff;
    }
    write16(bytes, at, new, outer)
}

/// Rewrites the IPv4 header at the start of `bytes` and the transport
/// header after it to carry `to`'s addresses and ports (the echo
/// identifier for ICMP echo). `quoted`: the bytes are the quote of an
/// ICMP error, cut short, so a transport checksum beyond them is left
/// alone. Returns the change to every word of `bytes`, for a checksum
/// that covers them (the quoting error's).
pub fn rewrite(bytes: &mut [u8], to: &FiveTuple, quoted: bool) -> Result<Delta, Truncated> {
    let first = *bytes.first().ok_or(Truncated)?;
    let header_len = usize::from(first & 0x0f) * 4;
    if header_len < 20 || bytes.len() < header_len + 8 {
        return Err(Truncated);
    }
    let protocol_number = bytes[9];
    let mut addresses = Delta::default();
    write_address(bytes, 12, to.source, &mut addresses)?;
    write_address(bytes, 16, to.destination, &mut addresses)?;
    let mut outer = addresses;
    update_checksum(bytes, 10, addresses, false, &mut outer)?;
    let transport = &mut bytes[header_len..];
    match protocol_number {
        protocol::TCP | protocol::UDP => {
            let mut ports = Delta::default();
            write16(transport, 0, to.source_port, &mut ports)?;
            write16(transport, 2, to.destination_port, &mut ports)?;
            let mut pseudo = addresses;
            pseudo.add(ports);
            outer.add(ports);
            let (at, udp) = if protocol_number == protocol::TCP {
                (16, false)
            } else {
                (6, true)
            };
            if !(quoted && transport.len() < at + 2) {
                update_checksum(transport, at, pseudo, udp, &mut outer)?;
            }
        }
        protocol::ICMP if matches!(transport[0], kind::ECHO_REQUEST | kind::ECHO_REPLY) => {
            let mut ident = Delta::default();
            write16(transport, 4, to.source_port, &mut ident)?;
            outer.add(ident);
            update_checksum(transport, 2, ident, false, &mut outer)?;
        }
        _ => {}
    }
    Ok(outer)
}

/// Rewrites an ICMP error (`bytes` from its IPv4 header on): its own
/// addresses to `source` and `destination`, the packet it quotes to
/// `quoted`, and the ICMP checksum for all the quote's changes.
pub fn rewrite_error(
    bytes: &mut [u8],
    source: Ipv4Addr,
    destination: Ipv4Addr,
    quoted: &FiveTuple,
) -> Result<(), Truncated> {
    let first = *bytes.first().ok_or(Truncated)?;
    let header_len = usize::from(first & 0x0f) * 4;
    if header_len < 20 || bytes.len() < header_len + 8 {
        return Err(Truncated);
    }
    let mut addresses = Delta::default();
    write_address(bytes, 12, source, &mut addresses)?;
    write_address(bytes, 16, destination, &mut addresses)?;
    let mut ignored = Delta::default();
    update_checksum(bytes, 10, addresses, false, &mut ignored)?;
    let icmp = &mut bytes[header_len..];
    let quote = rewrite(&mut icmp[8..], quoted, true)?;
    update_checksum(icmp, 2, quote, false, &mut ignored)
}
