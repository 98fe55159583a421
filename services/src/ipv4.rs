//! `Ipv4`: validates received IPv4 packets, delivers ours to `icmp`, `udp`
//! or a service attached at `ipv4:proto:<n>`, and hands packets for others
//! to the service attached at `ipv4:forward` (l3fwd), if any.
//!
//! Fragments for us are reassembled (see [`crate::reassembly`]): each one
//! taken in leaves on the `held` output (a discard), and the complete
//! datagram is delivered like any packet. Fragments for others are
//! forwarded as they are. Packets leaving the node start at the IP header;
//! the link-layer padding behind `total_len` is trimmed.

use crate::claim::{LocalClaim, claimed};
use crate::icmp_error::{ErrorLimiter, is_martian};
use crate::reassembly::{FragmentError, Outcome, Reassembly, into_regular_buffer};
use crate::route::{LocalAddresses, Locality};
use crate::wire::icmp::{kind, time_exceeded, unreachable};
use crate::wire::ipv4::PlainHeader;
use crate::wire::ipv4::protocol;
use crate::wire::{Ipv4Packet, WireError};
use alloc::vec::Vec;
use arrayvec::ArrayVec;
use core::net::Ipv4Addr;
use dataplane::{Batch, Checked, Nanoservice, Outputs, Packet, Verdict, drop_reasons};

drop_reasons! {
    /// Why [`Ipv4`] drops a packet.
    Ipv4Drop {
        /// Shorter than a 20-byte header.
        Truncated = "truncated",
        /// Version is not 4.
        BadVersion = "bad-version",
        /// IHL below 5, or a header longer than the packet.
        BadHeaderLength = "bad-header-length",
        /// Total length below the header or beyond the frame.
        BadTotalLength = "bad-total-length",
        /// Header checksum mismatch.
        BadChecksum = "bad-checksum",
        /// A fragment with no room to reassemble it: reassembly is off, no
        /// buffer is free, or its datagram has too many holes (and is
        /// dropped).
        Fragment = "fragment",
        /// Source is a martian (0/8, loopback, multicast, reserved,
        /// broadcast) or one of ours.
        BadSource = "bad-source",
        /// For us, but no service takes its protocol (ICMP protocol
        /// unreachable sent, rate-limited, when the destination was unicast).
        UnknownProtocol = "unknown-protocol",
        /// Not for us and nothing forwards (or multicast).
        NotForUs = "not-for-us",
        /// A fragment with no data, or not the last and not a multiple of
        /// 8 bytes.
        FragmentBadLength = "fragment-bad-length",
        /// A fragment reaching past the reassembly limit or 65535 bytes.
        FragmentTooLarge = "fragment-too-large",
        /// A fragment entirely inside data already received (ignored).
        FragmentDuplicate = "fragment-duplicate",
        /// A fragment overlapping received data partially, or contradicting
        /// its datagram's end: the whole datagram is dropped.
        FragmentOverlap = "fragment-overlap",
        /// A datagram incomplete after 30 s (ICMP time exceeded sent when
        /// its first fragment had come); counted once per datagram.
        ReassemblyTimeout = "reassembly-timeout",
        /// The oldest datagram in progress, dropped to make room for a new
        /// one (counted on the fragment that made it go).
        ReassemblyEvicted = "reassembly-evicted",
    }
}

/// An address's wire bytes read natively, widened: one compare tells two
/// addresses apart.
#[inline(always)]
fn address_key(octets: [u8; 4]) -> u64 {
    u64::from(u32::from_ne_bytes(octets))
}

/// True when `header`'s source is neither a martian nor ours and its
/// destination is ours (`ours` as [`address_key`] makes it): what the
/// plain path asks of a packet's addresses.
#[inline(always)]
fn addresses_accepted(header: &PlainHeader, ours: u64) -> bool {
    let source = header.source_octets();
    !is_martian(Ipv4Addr::from(source))
        && address_key(source) != ours
        && address_key(header.destination_octets()) == ours
}

/// The plain path (see [`Ipv4::receive_plain`]) for a packet behind a
/// burst's first, whose plain header `first` it took: true when
/// `packet`'s header is alike (see [`PlainHeader::read_alike`]: the same
/// flow, so the same addresses, which passed the checks, and the same
/// protocol and output), trimmed and claimed as the plain path does;
/// otherwise false, and `packet` is as it was.
#[inline(always)]
fn plain_again(packet: &mut Packet, first: &PlainHeader) -> bool {
    let Some(header) = PlainHeader::read_alike(packet.payload(), first) else {
        return false;
    };
    packet.truncate(usize::from(header.total_len()));
    // After `truncate`, which forgets claims (see `Ipv4::receive`).
    packet.set_checked(Checked::IPV4_HEADER.local_unicast());
    true
}

/// A pair of addresses (as [`PlainHeader::addresses`] reads them) that
/// [`addresses_accepted`] accepts for a core whose single address is
/// `ours`: to `ours` from 10.0.0.1, or from 10.0.0.2 when 10.0.0.1 is ours. It
/// seeds a burst's last accepted pair, so that the plain path needs no
/// test for "none yet". Out of line: the loop gets the pair as one word
/// (inlined, the compiler kept its eight bytes apart and joined them for
/// every packet's compare).
#[inline(never)]
fn accepted_seed(ours: Ipv4Addr) -> u64 {
    let peer = if ours == Ipv4Addr::new(10, 0, 0, 1) {
        Ipv4Addr::new(10, 0, 0, 2)
    } else {
        Ipv4Addr::new(10, 0, 0, 1)
    };
    let ([s0, s1, s2, s3], [d0, d1, d2, d3]) = (peer.octets(), ours.octets());
    u64::from_ne_bytes([s0, s1, s2, s3, d0, d1, d2, d3])
}

/// Most protocols besides ICMP and UDP that services can attach to
/// (`ipv4:proto:<n>`) on one core.
pub const MAX_PROTOCOL_HOOKS: usize = 4;

/// Why a protocol hook could not be bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtocolHookError {
    /// [`MAX_PROTOCOL_HOOKS`] protocols are bound already.
    TooMany,
}

/// The output of each IP protocol for us, by its number: one load where
/// a match on ICMP and UDP and a search of the bound protocols took a
/// compare each.
#[derive(Debug, Clone)]
struct ProtocolOutputs {
    /// [`Self::NONE`] where nothing takes the protocol.
    by_number: [u8; 256],
}

impl ProtocolOutputs {
    /// No output.
    const NONE: u8 = u8::MAX;

    /// ICMP and UDP to their outputs, nothing else.
    fn new() -> Self {
        let mut by_number = [Self::NONE; 256];
        by_number[usize::from(protocol::ICMP)] = Ipv4::ICMP as u8;
        by_number[usize::from(protocol::UDP)] = Ipv4::UDP as u8;
        Self { by_number }
    }

    /// Delivers `protocol` on `output`, unless it is ICMP or UDP, which
    /// keep their own outputs.
    fn bind(&mut self, protocol: u8, output: usize) {
        if protocol != protocol::ICMP && protocol != protocol::UDP {
            // Outputs are below `Ipv4::ERRORS`, far below 255.
            self.by_number[usize::from(protocol)] = output as u8;
        }
    }

    /// The output of `protocol`, if any.
    #[inline(always)]
    fn get(&self, protocol: u8) -> Option<usize> {
        self.get_byte(protocol).map(usize::from)
    }

    /// The output of `protocol` as the byte a [`Verdict::Emit`] holds,
    /// if any: no widening, and no clamp as [`Verdict::emit`] makes.
    #[inline(always)]
    fn get_byte(&self, protocol: u8) -> Option<u8> {
        match self.by_number[usize::from(protocol)] {
            Self::NONE => None,
            output => Some(output),
        }
    }
}

/// IPv4 input: validation and reassembly, then local delivery by
/// protocol, or the `forward` output for packets to others (when something
/// forwards).
#[derive(Debug)]
pub struct Ipv4 {
    local: LocalAddresses,
    forwarding: bool,
    protocols: ArrayVec<u8, MAX_PROTOCOL_HOOKS>,
    /// The output of each protocol for us, by its number.
    outputs: ProtocolOutputs,
    errors: ErrorLimiter,
    reassembly: Reassembly,
    /// Packets for us that a service at `ipv4:forward` takes (NAT).
    claims: Vec<LocalClaim>,
}

impl Ipv4 {
    /// Output for ICMP to us.
    pub const ICMP: usize = 0;
    /// Output for UDP to us.
    pub const UDP: usize = 1;
    /// Output for unicast packets to others (`ipv4:forward`).
    pub const FORWARD: usize = 2;
    /// Output of the first bound protocol; protocol hook `n` is
    /// `PROTOCOL_0 + n`.
    pub const PROTOCOL_0: usize = 3;
    /// Output for ICMP errors we originate (to `ipv4-out`).
    pub const ERRORS: usize = 3 + MAX_PROTOCOL_HOOKS;
    /// Output for fragments taken into reassembly (a discard: their bytes
    /// are copied).
    pub const HELD: usize = Self::ERRORS + 1;

    /// A node for a core with these addresses; `forwarding` when a service
    /// is attached at `ipv4:forward` (otherwise packets to others are
    /// dropped as `not-for-us`). Errors go through the core's `errors`
    /// limiter; fragments for us into `reassembly`.
    pub fn new(
        local: LocalAddresses,
        forwarding: bool,
        errors: ErrorLimiter,
        reassembly: Reassembly,
    ) -> Self {
        Self {
            local,
            forwarding,
            protocols: ArrayVec::new(),
            outputs: ProtocolOutputs::new(),
            errors,
            reassembly,
            claims: Vec::new(),
        }
    }

    /// Sends packets for us that `claim` covers to the `forward` output
    /// instead of delivering them (a NAT's replies and forwarded ports);
    /// only when something forwards.
    pub fn claim(&mut self, claim: LocalClaim) {
        if self.forwarding {
            self.claims.push(claim);
        }
    }

    /// Delivers packets of IP protocol `protocol` to us on output
    /// `proto<n>` (`n` returned). ICMP and UDP have outputs of their own.
    pub fn bind_protocol(&mut self, protocol: u8) -> Result<usize, ProtocolHookError> {
        if let Some(index) = self.protocols.iter().position(|bound| *bound == protocol) {
            return Ok(index);
        }
        self.protocols
            .try_push(protocol)
            .map_err(|_| ProtocolHookError::TooMany)?;
        let index = self.protocols.len() - 1;
        self.outputs.bind(protocol, Self::PROTOCOL_0 + index);
        Ok(index)
    }

    /// The output of the packet nearly every one is, or `None`: a plain
    /// header (version 4, no options, no fragment, total length in bounds,
    /// checksum right: see [`PlainHeader`]) from a source that is neither
    /// a martian nor ours, to `ours`, ICMP or UDP. `ours` is the core's
    /// single address as [`address_key`] makes it. `accepted` is the
    /// last pair of addresses (see [`PlainHeader::addresses`]) whose
    /// source and destination passed those checks, kept for the burst:
    /// a packet with the same pair (a burst from one peer) passes them in
    /// one compare, and a new pair that passes becomes `accepted`.
    /// Everything else goes through [`Self::receive`], which checks it
    /// step by step and names what is wrong: nothing here decides
    /// otherwise than it would. `CLAIMS` is false when the node has no
    /// claims (see [`Self::claim`]): that loop then has no test for them.
    #[inline(always)]
    fn receive_plain<const CLAIMS: bool>(
        &self,
        packet: &mut Packet,
        ours: u64,
        accepted: &mut u64,
    ) -> Option<u8> {
        let header = PlainHeader::read(packet.payload())?;
        if header.addresses() != *accepted {
            if !addresses_accepted(&header, ours) {
                return None;
            }
            *accepted = header.addresses();
        }
        let output = self.outputs.get_byte(header.protocol())?;
        packet.truncate(usize::from(header.total_len()));
        // After `truncate`, which forgets claims (see `receive`).
        packet.set_checked(Checked::IPV4_HEADER.local_unicast());
        if CLAIMS && claimed(&self.claims, packet.payload()) {
            // `FORWARD` is 2.
            return Some(Self::FORWARD as u8);
        }
        Some(output)
    }

    /// [`Nanoservice::process`] for a core with the single address `ours`
    /// (as [`address_key`] makes it) and a node without claims. The busy
    /// path: when the first packet takes the plain path, those behind it
    /// that are plain too, from the same peer and of the same protocol
    /// (a burst of one flow) are told in a loop of their own, one compare
    /// each for addresses and protocol, and the burst moves on whole.
    /// From the first packet that is not, the rest go one by one as
    /// before. `accepted` seeds the pair of addresses last accepted.
    #[inline(always)]
    fn receive_burst(
        &self,
        batch: &mut Batch,
        out: &mut Outputs<'_>,
        ours: u64,
        mut accepted: u64,
        single: Option<Ipv4Addr>,
    ) {
        let mut packets = batch.iter_mut();
        let Some(first) = packets.next() else {
            return;
        };
        let verdict = match PlainHeader::read(first.payload()) {
            Some(header) => match self.receive_plain::<false>(first, ours, &mut accepted) {
                Some(output) => {
                    let behind = packets.len();
                    if packets.all(|packet| plain_again(packet, &header)) {
                        out.emit_batch(usize::from(output), batch);
                        return;
                    }
                    // Those that passed; the one that did not is decided
                    // again below, untouched.
                    let decided = behind - packets.len();
                    return self.receive_rest(
                        batch,
                        out,
                        (Verdict::Emit(output), decided),
                        ours,
                        accepted,
                    );
                }
                None => self.receive(first, single),
            },
            None => self.receive(first, single),
        };
        self.receive_rest(batch, out, (verdict, 1), ours, accepted);
    }

    /// Sends `batch`, whose packets `0..decided` got `verdict` already,
    /// each where the plain path or [`Self::receive`] says (`accepted` as
    /// the packets before the rest left it); `Keep` packets stay in
    /// `batch`.
    #[inline(never)]
    fn receive_rest(
        &self,
        batch: &mut Batch,
        out: &mut Outputs<'_>,
        (verdict, decided): (Verdict, usize),
        ours: u64,
        mut accepted: u64,
    ) {
        let single = self.local.single();
        let mut index = 0;
        out.dispatch(batch, |packet, _| {
            index += 1;
            if index <= decided {
                return verdict;
            }
            match self.receive_plain::<false>(packet, ours, &mut accepted) {
                Some(output) => Verdict::Emit(output),
                None => self.receive(packet, single),
            }
        });
    }

    /// [`Self::receive_checked`] out of line, behind the plain path: the
    /// packets [`Self::receive_plain`] leaves are few, and the loop keeps
    /// its registers for those it takes.
    #[inline(never)]
    fn receive(&self, packet: &mut Packet, single: Option<Ipv4Addr>) -> Verdict {
        self.receive_checked(packet, single)
    }

    /// Validates `packet` and decides where it goes: to `icmp` or `udp`
    /// (trimmed to its total length), forwarded, or dropped.
    /// `single` is `self.local.single()`, read once per burst.
    #[inline(always)]
    fn receive_checked(&self, packet: &mut Packet, single: Option<Ipv4Addr>) -> Verdict {
        let view = match Ipv4Packet::new_checked(packet.payload()) {
            Ok(view) => view,
            Err(error) => {
                return Verdict::drop(match error {
                    WireError::Truncated => Ipv4Drop::Truncated,
                    WireError::BadVersion => Ipv4Drop::BadVersion,
                    WireError::BadHeaderLength => Ipv4Drop::BadHeaderLength,
                    WireError::BadLength => Ipv4Drop::BadTotalLength,
                    // TCP's errors: `Ipv4Packet` never returns them.
                    WireError::BadDataOffset | WireError::BadOption => Ipv4Drop::BadHeaderLength,
                });
            }
        };
        let reason = if !view.verify_checksum() {
            Some(Ipv4Drop::BadChecksum)
        } else {
            // No TTL check: RFC 1122 3.2.1.7, a host MUST NOT discard a
            // datagram for being received with a TTL below 2 (l3fwd drops
            // those it would forward).
            let source = view.source();
            let ours = match single {
                Some(address) => address == source,
                None => self.local.is_ours(source),
            };
            (is_martian(source) || ours).then_some(Ipv4Drop::BadSource)
        };
        if let Some(reason) = reason {
            return Verdict::drop(reason);
        }
        let (total_len, destination, protocol) =
            (view.total_len(), view.destination(), view.protocol());
        let fragment = view.is_fragment();
        packet.truncate(usize::from(total_len));
        if fragment {
            // Handled after the burst (see `handle_kept`).
            return Verdict::Keep;
        }
        // Claimed after `truncate` (which forgets claims): the header is
        // checked, the packet ends where it says, and it is no fragment.
        let locality = match single {
            Some(address) if address == destination => Locality::Unicast,
            _ => self.local.locality(destination),
        };
        let checked = Checked::IPV4_HEADER;
        packet.set_checked(if locality == Locality::Unicast {
            checked.local_unicast()
        } else {
            checked
        });
        match locality {
            Locality::Unicast
                if !self.claims.is_empty() && claimed(&self.claims, packet.payload()) =>
            {
                Verdict::emit(Self::FORWARD)
            }
            Locality::Unicast | Locality::Broadcast => match self.outputs.get(protocol) {
                Some(output) => Verdict::emit(output),
                // Answered after the burst (see `handle_kept`).
                None => Verdict::Keep,
            },
            Locality::Remote => self.not_ours(destination),
        }
    }

    /// Where a packet for others goes: forwarded when something forwards
    /// (and it is not multicast), else dropped.
    #[inline(always)]
    fn not_ours(&self, destination: Ipv4Addr) -> Verdict {
        if self.forwarding && !destination.is_multicast() {
            Verdict::emit(Self::FORWARD)
        } else {
            Verdict::drop(Ipv4Drop::NotForUs)
        }
    }

    /// What `receive` kept, valid and trimmed: fragments (reassembled when
    /// for us, else treated like any packet for others) and packets for a
    /// protocol nobody takes. Out of the per-packet loop, which then
    /// needs no call and no outputs.
    #[cold]
    #[inline(never)]
    fn handle_kept(&mut self, batch: &mut Batch, out: &mut Outputs<'_>) {
        for packet in batch.drain() {
            let Ok(view) = Ipv4Packet::new_checked(packet.payload()) else {
                out.drop(packet, Ipv4Drop::BadTotalLength);
                continue;
            };
            let (destination, fragment) = (view.destination(), view.is_fragment());
            let local = self.local.locality(destination) != Locality::Remote;
            let verdict = match (fragment, local) {
                (true, true) => self.reassemble(&packet, out),
                (true, false) => self.not_ours(destination),
                (false, _) => self.protocol_unreachable(&packet, destination, out),
            };
            match verdict {
                Verdict::Emit(output) => out.emit(usize::from(output), packet),
                Verdict::Drop(reason) => out.drop(packet, reason),
                Verdict::Keep => out.drop(packet, Ipv4Drop::Fragment),
            }
        }
    }

    /// Where a whole datagram for us goes, by protocol.
    fn deliver(
        &self,
        packet: &Packet,
        protocol: u8,
        destination: Ipv4Addr,
        out: &mut Outputs<'_>,
    ) -> Verdict {
        match self.outputs.get(protocol) {
            Some(output) => Verdict::emit(output),
            None => self.protocol_unreachable(packet, destination, out),
        }
    }

    /// Takes a fragment for us into reassembly; a datagram it completes
    /// is delivered from here.
    #[cold]
    #[inline(never)]
    fn reassemble(&mut self, fragment: &Packet, out: &mut Outputs<'_>) -> Verdict {
        match self.reassembly.insert(fragment.payload(), out.now_ns()) {
            Outcome::Held { evicted: false } => Verdict::emit(Self::HELD),
            Outcome::Held { evicted: true } => Verdict::drop(Ipv4Drop::ReassemblyEvicted),
            Outcome::Complete(datagram) => {
                let datagram = into_regular_buffer(datagram, || out.alloc());
                let Ok(view) = Ipv4Packet::new_checked(datagram.payload()) else {
                    out.drop(datagram, Ipv4Drop::BadTotalLength);
                    return Verdict::emit(Self::HELD);
                };
                let (protocol, destination) = (view.protocol(), view.destination());
                match self.deliver(&datagram, protocol, destination, out) {
                    Verdict::Emit(output) => out.emit(usize::from(output), datagram),
                    Verdict::Drop(reason) => out.drop(datagram, reason),
                    Verdict::Keep => out.drop(datagram, Ipv4Drop::Fragment),
                }
                Verdict::emit(Self::HELD)
            }
            Outcome::Rejected(error) => Verdict::drop(match error {
                FragmentError::NoRoom => Ipv4Drop::Fragment,
                FragmentError::BadLength => Ipv4Drop::FragmentBadLength,
                FragmentError::TooLarge => Ipv4Drop::FragmentTooLarge,
                FragmentError::Duplicate => Ipv4Drop::FragmentDuplicate,
                FragmentError::Overlap => Ipv4Drop::FragmentOverlap,
            }),
        }
    }

    /// The reassembly table (for tests and management).
    pub fn reassembly(&self) -> &Reassembly {
        &self.reassembly
    }

    /// Answers a packet for a protocol nobody takes with ICMP protocol
    /// unreachable (RFC 1122 3.2.2.1), when allowed, and drops it.
    #[cold]
    fn protocol_unreachable(
        &self,
        packet: &Packet,
        destination: Ipv4Addr,
        out: &mut Outputs<'_>,
    ) -> Verdict {
        self.errors.send_unreachable(
            out,
            &self.local,
            packet.payload(),
            destination,
            (unreachable::PROTOCOL, Self::ERRORS),
        );
        Verdict::drop(Ipv4Drop::UnknownProtocol)
    }
}

impl Nanoservice for Ipv4 {
    fn name(&self) -> &'static str {
        "ipv4"
    }

    fn outputs(&self) -> &'static [&'static str] {
        &[
            "icmp", "udp", "forward", "proto0", "proto1", "proto2", "proto3", "errors", "held",
        ]
    }

    fn drop_reasons(&self) -> &'static [&'static str] {
        Ipv4Drop::NAMES
    }

    fn process(&mut self, batch: &mut Batch, out: &mut Outputs<'_>) {
        let single = self.local.single();
        // A core with several addresses: no packet is plain to it (the
        // plain path compares with one), so every packet takes the full
        // checks, inline. Otherwise a loop of its own for a node without
        // claims (no NAT), which then tests for none per packet.
        let Some(address) = single else {
            out.dispatch(batch, |packet, _| self.receive_checked(packet, None));
            if !batch.is_empty() {
                self.handle_kept(batch, out);
            }
            return;
        };
        let ours = address_key(address.octets());
        let mut accepted = accepted_seed(address);
        if self.claims.is_empty() {
            self.receive_burst(batch, out, ours, accepted, single);
        } else {
            out.dispatch_fast(
                batch,
                |packet| self.receive_plain::<true>(packet, ours, &mut accepted),
                |packet, _| self.receive(packet, single),
            );
        }
        if !batch.is_empty() {
            self.handle_kept(batch, out);
        }
    }

    fn tick(&mut self, out: &mut Outputs<'_>) {
        let Self {
            local,
            errors,
            reassembly,
            ..
        } = self;
        reassembly.expire(out.now_ns(), |buffer, quoted| {
            // RFC 1122 3.3.2: time exceeded (reassembly) when fragment
            // zero had come, from the address it was sent to.
            if quoted.len() >= crate::wire::ipv4::HEADER_LEN {
                let to_us = Ipv4Packet::new_unchecked(quoted).destination();
                if let Some(error) = errors.error_quoting(
                    out,
                    local,
                    quoted,
                    to_us,
                    (kind::TIME_EXCEEDED, time_exceeded::REASSEMBLY),
                ) {
                    out.emit(Self::ERRORS, error);
                }
            }
            out.drop(buffer, Ipv4Drop::ReassemblyTimeout);
        });
    }

    /// The next reassembly to time out.
    fn next_deadline_ns(&self) -> Option<u64> {
        self.reassembly.next_expiry_ns()
    }
}

#[cfg(test)]
mod tests;
