//! `WireError`: why bytes are not a valid header.

/// Why bytes do not form a valid header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireError {
    /// Fewer bytes than the fixed header (or than a length field says).
    Truncated,
    /// IPv4 version field is not 4.
    BadVersion,
    /// IPv4 IHL below 5 or beyond the buffer.
    BadHeaderLength,
    /// A length field smaller than its header or larger than the buffer.
    BadLength,
    /// TCP data offset below 5 or beyond the segment.
    BadDataOffset,
    /// A TCP option with a length below 2, running past the header, or of
    /// the wrong length for its kind.
    BadOption,
}

impl core::fmt::Display for WireError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::Truncated => "truncated header",
            Self::BadVersion => "wrong IP version",
            Self::BadHeaderLength => "bad header length",
            Self::BadLength => "length field disagrees with the buffer",
            Self::BadDataOffset => "TCP data offset below 5 or beyond the segment",
            Self::BadOption => "malformed TCP option",
        })
    }
}
