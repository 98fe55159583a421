//! ICMPv4 messages (RFC 792): echo, destination unreachable, time exceeded.

use crate::fields::{field_getters, field_setters};
use crate::{WireError, checksum};

/// Byte ranges of the ICMP header.
mod field {
    use core::ops::Range;
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Range<usize> = 2..4;
    pub const IDENT: Range<usize> = 4..6;
    pub const SEQUENCE: Range<usize> = 6..8;
    pub const REST: Range<usize> = 4..8;
}

/// Length of the ICMP header (type, code, checksum, 4 bytes of rest).
pub const HEADER_LEN: usize = 8;

/// ICMP types we use.
pub mod kind {
    /// Echo reply.
    pub const ECHO_REPLY: u8 = 0;
    /// Destination unreachable.
    pub const DESTINATION_UNREACHABLE: u8 = 3;
    /// Echo request.
    pub const ECHO_REQUEST: u8 = 8;
    /// Time exceeded.
    pub const TIME_EXCEEDED: u8 = 11;
}

/// Destination-unreachable codes we send.
pub mod unreachable {
    /// Network unreachable (no route).
    pub const NET: u8 = 0;
    /// Protocol unreachable.
    pub const PROTOCOL: u8 = 2;
    /// Port unreachable.
    pub const PORT: u8 = 3;
    /// Fragmentation needed and DF set (the next-hop MTU in bytes 6..8,
    /// RFC 1191).
    pub const FRAGMENTATION_NEEDED: u8 = 4;
}

/// Time-exceeded codes we send.
pub mod time_exceeded {
    /// TTL exceeded in transit.
    pub const TRANSIT: u8 = 0;
    /// Fragment reassembly time exceeded.
    pub const REASSEMBLY: u8 = 1;
}

/// A view of an ICMP message (the whole IP payload).
#[derive(Debug, Clone)]
pub struct IcmpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> IcmpPacket<T> {
    /// Wraps `buffer` without checks.
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wraps `buffer` if it holds the 8-byte header.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        if buffer.as_ref().len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        Ok(Self { buffer })
    }

    /// The message type.
    #[inline]
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE]
    }

    /// The code.
    #[inline]
    pub fn code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    field_getters! {
        /// The checksum field.
        checksum: u16 = field::CHECKSUM;
        /// Echo identifier.
        echo_ident: u16 = field::IDENT;
        /// Echo sequence number.
        echo_sequence: u16 = field::SEQUENCE;
    }

    /// True for error messages (which must never trigger another error).
    #[inline]
    pub fn is_error(&self) -> bool {
        matches!(self.msg_type(), 3 | 4 | 5 | 11 | 12)
    }

    /// True when the checksum over the whole message is right.
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        checksum::verifies(self.buffer.as_ref(), 0)
    }

    /// Bytes after the header (echo data, or the quoted datagram).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> IcmpPacket<T> {
    /// Sets the type.
    #[inline]
    pub fn set_msg_type(&mut self, value: u8) {
        self.buffer.as_mut()[field::TYPE] = value;
    }

    /// Sets the code.
    #[inline]
    pub fn set_code(&mut self, value: u8) {
        self.buffer.as_mut()[field::CODE] = value;
    }

    field_setters! {
        /// Sets the checksum field.
        set_checksum: u16 = field::CHECKSUM;
    }

    /// Recomputes the checksum over the whole message.
    #[inline]
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let value = checksum::checksum(self.buffer.as_ref());
        self.set_checksum(value);
    }

    /// Writes an error message (`kind::DESTINATION_UNREACHABLE` or
    /// `kind::TIME_EXCEEDED`) quoting `quoted` (the offending IP header and
    /// the first 8 bytes of its payload). The buffer must be exactly
    /// `HEADER_LEN + quoted.len()` long.
    pub fn emit_error(&mut self, msg_type: u8, code: u8, quoted: &[u8]) {
        self.set_msg_type(msg_type);
        self.set_code(code);
        self.buffer.as_mut()[field::REST].copy_from_slice(&[0; 4]);
        self.buffer.as_mut()[HEADER_LEN..].copy_from_slice(quoted);
        self.fill_checksum();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An echo request, id 0x1234 seq 1, payload "abcd" (checksum 0x2104).
    const ECHO: [u8; 12] = [
        8, 0, 0x21, 0x04, 0x12, 0x34, 0x00, 0x01, b'a', b'b', b'c', b'd',
    ];

    #[test]
    fn parses_echo_and_checks_the_checksum() {
        let echo = IcmpPacket::new_checked(&ECHO[..]).unwrap();
        assert_eq!(echo.msg_type(), kind::ECHO_REQUEST);
        assert_eq!(echo.code(), 0);
        assert_eq!(echo.echo_ident(), 0x1234);
        assert_eq!(echo.echo_sequence(), 1);
        assert_eq!(echo.payload(), b"abcd");
        assert!(!echo.is_error());
        assert!(echo.verify_checksum());
        let mut bad = ECHO;
        bad[9] ^= 0x40;
        assert!(!IcmpPacket::new_checked(&bad[..]).unwrap().verify_checksum());
        assert_eq!(
            IcmpPacket::new_checked(&ECHO[..7]).unwrap_err(),
            WireError::Truncated
        );
    }

    #[test]
    fn builds_a_reply_and_an_error() {
        let mut bytes = ECHO;
        let mut echo = IcmpPacket::new_checked(&mut bytes[..]).unwrap();
        echo.set_msg_type(kind::ECHO_REPLY);
        echo.fill_checksum();
        assert_eq!(&bytes[..4], &[0, 0, 0x29, 0x04]);
        let mut error = [0u8; 12];
        let mut message = IcmpPacket::new_checked(&mut error[..]).unwrap();
        message.emit_error(kind::DESTINATION_UNREACHABLE, unreachable::PORT, b"wxyz");
        assert!(message.is_error());
        assert!(message.verify_checksum());
        assert_eq!(&error[..2], &[3, 3]);
        assert_eq!(&error[8..], b"wxyz");
    }
}
