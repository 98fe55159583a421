//! The API's bearer token: its SHA-256 compared in constant time with the
//! configured digest, and a lockout after repeated wrong tokens.

use sha2::{Digest, Sha256};

/// Wrong tokens in a row (within [`LOCKOUT_NS`]) that lock the API.
pub const MAX_FAILURES: u32 = 5;

/// How long failures are remembered, and how long the lockout lasts: 10 s.
pub const LOCKOUT_NS: u64 = 10_000_000_000;

/// `Retry-After` while locked, in seconds.
pub const RETRY_AFTER_SECONDS: &str = "10";

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// True when the digests are equal; the time taken does not depend on
/// where they differ (no early exit).
pub fn digests_equal(left: &[u8; 32], right: &[u8; 32]) -> bool {
    let mut difference = 0u8;
    for (a, b) in left.iter().zip(right) {
        difference |= a ^ b;
    }
    core::hint::black_box(difference) == 0
}

/// Parses 64 hexadecimal digits (either case): a `token_sha256` as a spec
/// writes it.
pub fn parse_sha256_hex(text: &str) -> Option<[u8; 32]> {
    let text = text.as_bytes();
    if text.len() != 64 {
        return None;
    }
    let mut digest = [0u8; 32];
    for (byte, pair) in digest.iter_mut().zip(text.chunks_exact(2)) {
        let high = char::from(pair[0]).to_digit(16)?;
        let low = char::from(pair[1]).to_digit(16)?;
        *byte = (high * 16 + low) as u8;
    }
    Some(digest)
}

/// The token of an `Authorization: Bearer <token>` value (the scheme is
/// case-insensitive, RFC 9110 section 11.1).
pub fn bearer_token(value: &[u8]) -> Option<&[u8]> {
    let (scheme, token) = value.split_at_checked(7)?;
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return None;
    }
    let token = token.trim_ascii();
    (!token.is_empty()).then_some(token)
}

/// What the guard says of one request to a protected endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The token is right.
    Allowed,
    /// No token is configured: 403.
    NoTokenConfigured,
    /// Too many wrong tokens lately: 429.
    Locked,
    /// No token, or a wrong one: 401.
    Denied,
}

/// Checks tokens and counts wrong ones, for every client of this core
/// together (a guesser gets [`MAX_FAILURES`] tries per 10 s).
#[derive(Debug, Clone, Default)]
pub struct TokenGuard {
    token_sha256: Option<[u8; 32]>,
    failures: u32,
    first_failure_ns: u64,
    locked_until_ns: Option<u64>,
}

impl TokenGuard {
    /// A guard for the token whose SHA-256 is `token_sha256`.
    pub fn new(token_sha256: Option<[u8; 32]>) -> Self {
        Self {
            token_sha256,
            ..Self::default()
        }
    }

    /// True while wrong tokens have locked the API (at `now_ns`).
    pub fn locked(&self, now_ns: u64) -> bool {
        self.locked_until_ns.is_some_and(|until| now_ns < until)
    }

    /// Judges a request carrying `authorization` (the field's value) at
    /// `now_ns`. A wrong token counts as a failure; a missing one does
    /// not (it is no guess).
    pub fn check(&mut self, authorization: Option<&[u8]>, now_ns: u64) -> Verdict {
        let Some(expected) = self.token_sha256 else {
            return Verdict::NoTokenConfigured;
        };
        if let Some(until) = self.locked_until_ns {
            if now_ns < until {
                return Verdict::Locked;
            }
            self.locked_until_ns = None;
        }
        let Some(token) = authorization.and_then(bearer_token) else {
            return Verdict::Denied;
        };
        if digests_equal(&sha256(token), &expected) {
            self.failures = 0;
            return Verdict::Allowed;
        }
        if self.failures == 0 || now_ns.saturating_sub(self.first_failure_ns) >= LOCKOUT_NS {
            self.failures = 0;
            self.first_failure_ns = now_ns;
        }
        self.failures += 1;
        if self.failures >= MAX_FAILURES {
            self.failures = 0;
            self.locked_until_ns = Some(now_ns.saturating_add(LOCKOUT_NS));
        }
        Verdict::Denied
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_hex_and_bearer() {
        let digest = sha256(b"abc");
        let hex = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(parse_sha256_hex(hex), Some(digest));
        assert_eq!(parse_sha256_hex(&hex.to_uppercase()), Some(digest));
        assert_eq!(parse_sha256_hex(&hex[1..]), None);
        assert_eq!(parse_sha256_hex(&hex.replace('b', "g")), None);
        assert!(digests_equal(&digest, &digest));
        let mut other = digest;
        other[31] ^= 1;
        assert!(!digests_equal(&digest, &other));
        assert_eq!(bearer_token(b"bEaReR  abc "), Some(&b"abc"[..]));
        assert_eq!(bearer_token(b"Basic abc"), None);
        assert_eq!(bearer_token(b"Bearer "), None);
        assert_eq!(bearer_token(b"Bear"), None);
    }

    #[test]
    fn five_wrong_tokens_lock_for_ten_seconds() {
        let mut guard = TokenGuard::new(Some(sha256(b"right")));
        assert_eq!(guard.check(Some(b"Bearer right"), 0), Verdict::Allowed);
        for _ in 0..20 {
            assert_eq!(guard.check(None, 1), Verdict::Denied);
        }
        for attempt in 0..MAX_FAILURES {
            let verdict = guard.check(Some(b"Bearer wrong"), 1 + u64::from(attempt));
            assert_eq!(verdict, Verdict::Denied);
        }
        assert_eq!(guard.check(Some(b"Bearer right"), 1_000), Verdict::Locked);
        assert_eq!(
            guard.check(Some(b"Bearer right"), 5 + LOCKOUT_NS),
            Verdict::Allowed
        );
        // Failures spread over more than 10 s never lock.
        for attempt in 0..10 {
            let verdict = guard.check(Some(b"Bearer wrong"), attempt * LOCKOUT_NS * 2 / 3);
            assert_eq!(verdict, Verdict::Denied, "{attempt}");
        }
        assert_eq!(
            TokenGuard::new(None).check(Some(b"Bearer x"), 0),
            Verdict::NoTokenConfigured
        );
    }
}
