//! The server's per-core counters: plain integers, bumped on the core's
//! own thread, summed across cores when read.

use super::error::RequestError;

/// Refused requests by why (each answered with its status).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestErrorCounters {
    /// [`RequestError::Malformed`].
    pub malformed: u64,
    /// [`RequestError::MissingHost`].
    pub missing_host: u64,
    /// [`RequestError::BadFraming`].
    pub bad_framing: u64,
    /// [`RequestError::UnknownMethod`].
    pub unknown_method: u64,
    /// [`RequestError::UnsupportedTransferCoding`].
    pub unsupported_transfer_coding: u64,
    /// [`RequestError::TargetTooLong`].
    pub target_too_long: u64,
    /// [`RequestError::HeadersTooLarge`].
    pub headers_too_large: u64,
    /// [`RequestError::BodyTooLarge`].
    pub body_too_large: u64,
    /// [`RequestError::UnsupportedVersion`].
    pub unsupported_version: u64,
    /// [`RequestError::UnsupportedExpectation`].
    pub unsupported_expectation: u64,
}

impl RequestErrorCounters {
    /// The counter of `error`.
    pub fn get(&self, error: RequestError) -> u64 {
        match error {
            RequestError::Malformed => self.malformed,
            RequestError::MissingHost => self.missing_host,
            RequestError::BadFraming => self.bad_framing,
            RequestError::UnknownMethod => self.unknown_method,
            RequestError::UnsupportedTransferCoding => self.unsupported_transfer_coding,
            RequestError::TargetTooLong => self.target_too_long,
            RequestError::HeadersTooLarge => self.headers_too_large,
            RequestError::BodyTooLarge => self.body_too_large,
            RequestError::UnsupportedVersion => self.unsupported_version,
            RequestError::UnsupportedExpectation => self.unsupported_expectation,
        }
    }

    /// Counts one `error`.
    pub fn count(&mut self, error: RequestError) {
        self.add(error, 1);
    }

    /// Adds `count` to the counter of `error`.
    pub fn add(&mut self, error: RequestError, count: u64) {
        let counter = match error {
            RequestError::Malformed => &mut self.malformed,
            RequestError::MissingHost => &mut self.missing_host,
            RequestError::BadFraming => &mut self.bad_framing,
            RequestError::UnknownMethod => &mut self.unknown_method,
            RequestError::UnsupportedTransferCoding => &mut self.unsupported_transfer_coding,
            RequestError::TargetTooLong => &mut self.target_too_long,
            RequestError::HeadersTooLarge => &mut self.headers_too_large,
            RequestError::BodyTooLarge => &mut self.body_too_large,
            RequestError::UnsupportedVersion => &mut self.unsupported_version,
            RequestError::UnsupportedExpectation => &mut self.unsupported_expectation,
        };
        *counter += count;
    }

    /// All refused requests.
    pub fn total(&self) -> u64 {
        RequestError::ALL.iter().map(|error| self.get(*error)).sum()
    }
}

/// One core's HTTP counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HttpCounters {
    /// Connections accepted.
    pub connections: u64,
    /// Request heads read (well formed or not).
    pub requests: u64,
    /// Responses with a 2xx status.
    pub responses_2xx: u64,
    /// Responses with a 4xx status.
    pub responses_4xx: u64,
    /// Responses with a 5xx status.
    pub responses_5xx: u64,
    /// Request bytes consumed (heads and bodies).
    pub bytes_received: u64,
    /// Response bytes written (heads, bodies, chunk framing).
    pub bytes_sent: u64,
    /// Connections closed for being idle.
    pub idle_timeouts: u64,
    /// Refused requests by why.
    pub request_errors: RequestErrorCounters,
}

impl HttpCounters {
    /// Counts a response of `status`.
    pub fn response(&mut self, status: u16) {
        match status {
            200..=299 => self.responses_2xx += 1,
            400..=499 => self.responses_4xx += 1,
            500..=599 => self.responses_5xx += 1,
            _ => {}
        }
    }

    /// Adds `other` (another core's counters) to these.
    pub fn add(&mut self, other: &Self) {
        self.connections += other.connections;
        self.requests += other.requests;
        self.responses_2xx += other.responses_2xx;
        self.responses_4xx += other.responses_4xx;
        self.responses_5xx += other.responses_5xx;
        self.bytes_received += other.bytes_received;
        self.bytes_sent += other.bytes_sent;
        self.idle_timeouts += other.idle_timeouts;
        for error in RequestError::ALL {
            let count = other.request_errors.get(error);
            self.request_errors.add(error, count);
        }
    }
}
