//! `Icmp`: answers echo requests to our unicast addresses, built in place
//! (type flipped, addresses swapped, checksums recomputed).

use crate::route::{LocalAddresses, Locality};
use crate::wire::icmp::kind;
use crate::wire::ipv4::DEFAULT_TTL;
use crate::wire::{IcmpPacket, Ipv4Packet};
use dataplane::drop_reasons;
use dataplane::{Batch, Nanoservice, Outputs};

drop_reasons! {
    /// Why [`Icmp`] drops a message.
    IcmpDrop {
        /// Shorter than the 8-byte ICMP header (or not IPv4).
        Truncated = "truncated",
        /// ICMP checksum mismatch.
        BadChecksum = "bad-checksum",
        /// Anything but an echo request (replies, errors, timestamps...).
        UnsupportedType = "unsupported-type",
        /// Echo request to a broadcast address (not answered, like Linux).
        Broadcast = "broadcast",
    }
}

/// ICMP echo responder.
#[derive(Debug, Clone)]
pub struct Icmp {
    local: LocalAddresses,
}

impl Icmp {
    /// Output for replies (to `ipv4-out`).
    pub const OUT: usize = 0;

    /// A responder for these addresses.
    pub fn new(local: LocalAddresses) -> Self {
        Self { local }
    }
}

impl Nanoservice for Icmp {
    fn name(&self) -> &'static str {
        "icmp"
    }

    fn drop_reasons(&self) -> &'static [&'static str] {
        IcmpDrop::NAMES
    }

    fn process(&mut self, batch: &mut Batch, out: &mut Outputs<'_>) {
        for mut packet in batch.drain() {
            let Ok(mut ip) = Ipv4Packet::new_checked(packet.payload_mut()) else {
                out.drop(packet, IcmpDrop::Truncated);
                continue;
            };
            let destination = ip.destination();
            let Ok(mut message) = IcmpPacket::new_checked(ip.payload_mut()) else {
                out.drop(packet, IcmpDrop::Truncated);
                continue;
            };
            if !message.verify_checksum() {
                out.drop(packet, IcmpDrop::BadChecksum);
                continue;
            }
            // Any code is answered and copied into the reply, as Linux does
            // (RFC 792 defines only code 0; a reply that mirrors the request
            // is what a prober comparing the two expects).
            if message.msg_type() != kind::ECHO_REQUEST {
                out.drop(packet, IcmpDrop::UnsupportedType);
                continue;
            }
            if self.local.locality(destination) != Locality::Unicast {
                out.drop(packet, IcmpDrop::Broadcast);
                continue;
            }
            message.set_msg_type(kind::ECHO_REPLY);
            message.fill_checksum();
            ip.swap_addresses();
            ip.set_ttl(DEFAULT_TTL);
            ip.fill_checksum();
            out.emit(Self::OUT, packet);
        }
    }
}
