//! `RequestError`: why a request was refused, and the status that says so.

/// Why a request could not be served; each maps to one status code, and
/// the connection is closed after the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequestError {
    /// The request line, a header line or a chunk is not well formed
    /// (400).
    Malformed,
    /// An HTTP/1.1 request without exactly one `Host` header (400).
    MissingHost,
    /// `Content-Length` not a number, given twice with different values,
    /// or together with `Transfer-Encoding` (400).
    BadFraming,
    /// The method is a token we do not know (501).
    UnknownMethod,
    /// A transfer coding other than `chunked` (501).
    UnsupportedTransferCoding,
    /// The request line is longer than we accept (414).
    TargetTooLong,
    /// The header section (or a chunked body's trailer section) is larger
    /// than `max_header_bytes` (431).
    HeadersTooLarge,
    /// The body is larger than `max_body_bytes` (413).
    BodyTooLarge,
    /// An HTTP version other than 1.0 and 1.1 (505).
    UnsupportedVersion,
    /// An `Expect` other than `100-continue` (417).
    UnsupportedExpectation,
}

impl RequestError {
    /// Every error, in the order counters list them.
    pub const ALL: [Self; 10] = [
        Self::Malformed,
        Self::MissingHost,
        Self::BadFraming,
        Self::UnknownMethod,
        Self::UnsupportedTransferCoding,
        Self::TargetTooLong,
        Self::HeadersTooLarge,
        Self::BodyTooLarge,
        Self::UnsupportedVersion,
        Self::UnsupportedExpectation,
    ];

    /// The status code that answers it.
    pub const fn status(self) -> u16 {
        match self {
            Self::Malformed | Self::MissingHost | Self::BadFraming => 400,
            Self::UnknownMethod | Self::UnsupportedTransferCoding => 501,
            Self::TargetTooLong => 414,
            Self::HeadersTooLarge => 431,
            Self::BodyTooLarge => 413,
            Self::UnsupportedVersion => 505,
            Self::UnsupportedExpectation => 417,
        }
    }

    /// A name for counters, like `headers_too_large`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::MissingHost => "missing_host",
            Self::BadFraming => "bad_framing",
            Self::UnknownMethod => "unknown_method",
            Self::UnsupportedTransferCoding => "unsupported_transfer_coding",
            Self::TargetTooLong => "target_too_long",
            Self::HeadersTooLarge => "headers_too_large",
            Self::BodyTooLarge => "body_too_large",
            Self::UnsupportedVersion => "unsupported_version",
            Self::UnsupportedExpectation => "unsupported_expectation",
        }
    }
}

impl core::fmt::Display for RequestError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{} ({})", self.name(), self.status())
    }
}
