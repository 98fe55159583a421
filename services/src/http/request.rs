//! The request head (RFC 9112 sections 2 to 6): found incrementally in the
//! bytes the stack lends, then parsed into offsets and flags, with no
//! allocation and no copy.

use super::decimal::parse_decimal;
use super::error::RequestError;

/// Longest request line we accept (or `max_header_bytes`, if smaller):
/// longer ones are answered 414.
pub const MAX_REQUEST_LINE: usize = 4096;

/// Most header fields in one request: more are answered 431.
pub const MAX_HEADERS: usize = 100;

/// A request method (RFC 9110 section 9). Methods are case-sensitive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// `GET`.
    Get,
    /// `HEAD`: as `GET`, without the body.
    Head,
    /// `POST`.
    Post,
    /// `PUT`.
    Put,
    /// `DELETE`.
    Delete,
    /// `OPTIONS`.
    Options,
    /// `PATCH` (RFC 5789).
    Patch,
    /// `TRACE`.
    Trace,
    /// `CONNECT`.
    Connect,
}

impl Method {
    /// The method named by `token`, if it is one we know.
    pub fn from_token(token: &[u8]) -> Option<Self> {
        Some(match token {
            b"GET" => Self::Get,
            b"HEAD" => Self::Head,
            b"POST" => Self::Post,
            b"PUT" => Self::Put,
            b"DELETE" => Self::Delete,
            b"OPTIONS" => Self::Options,
            b"PATCH" => Self::Patch,
            b"TRACE" => Self::Trace,
            b"CONNECT" => Self::Connect,
            _ => return None,
        })
    }

    /// The method as it is written.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Head => "HEAD",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Delete => "DELETE",
            Self::Options => "OPTIONS",
            Self::Patch => "PATCH",
            Self::Trace => "TRACE",
            Self::Connect => "CONNECT",
        }
    }
}

/// The HTTP versions we serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// HTTP/1.0: one request per connection unless `Connection: keep-alive`.
    Http10,
    /// HTTP/1.1: persistent unless `Connection: close`.
    Http11,
}

/// How the request's body is delimited (RFC 9112 section 6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BodyFraming {
    /// No body.
    None,
    /// Exactly this many bytes follow the head.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// A parsed request head: the request line and the header fields the
/// server acts on, as offsets into the head's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestHead {
    /// The method.
    pub method: Method,
    /// Where the request target starts in the head.
    pub target_start: usize,
    /// Where the request target ends.
    pub target_end: usize,
    /// The version.
    pub version: Version,
    /// How the body is delimited.
    pub framing: BodyFraming,
    /// The connection persists after the response.
    pub keep_alive: bool,
    /// `Expect: 100-continue`: the client waits before sending the body.
    pub expect_continue: bool,
    /// Bytes of the head, through the empty line that ends it.
    pub length: usize,
}

impl RequestHead {
    /// The request target as written, from `head` (the bytes parsed).
    pub fn target<'a>(&self, head: &'a [u8]) -> &'a [u8] {
        &head[self.target_start..self.target_end]
    }

    /// The target's path: the origin form without its query; the path of
    /// an absolute form (`http://host/path`); `*` as it is.
    pub fn path<'a>(&self, head: &'a [u8]) -> &'a [u8] {
        let mut target = self.target(head);
        for scheme in [&b"http://"[..], b"https://"] {
            if target.len() >= scheme.len() && target[..scheme.len()].eq_ignore_ascii_case(scheme) {
                let rest = &target[scheme.len()..];
                target = match rest.iter().position(|byte| *byte == b'/') {
                    Some(slash) => &rest[slash..],
                    None => b"/",
                };
            }
        }
        match target.iter().position(|byte| *byte == b'?') {
            Some(question) => &target[..question],
            None => target,
        }
    }

    /// The target's query, after `?` (empty when there is none).
    pub fn query<'a>(&self, head: &'a [u8]) -> &'a [u8] {
        let target = self.target(head);
        match target.iter().position(|byte| *byte == b'?') {
            Some(question) => &target[question + 1..],
            None => &[],
        }
    }
}

/// Finds the end of a request head in bytes that grow between calls,
/// scanning each byte once: the stack lends the unconsumed bytes again
/// with more behind them, and nothing is consumed until the head is whole.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HeadScanner {
    /// Bytes already scanned (from the start of the lent bytes).
    scanned: usize,
    /// The request line's end was seen.
    line_complete: bool,
}

impl HeadScanner {
    /// Looks for the empty line that ends the head in `bytes` (the lent
    /// bytes from the head's first byte). `Ok(Some(length))` when the head
    /// is whole; `Ok(None)` to wait for more; an error when a limit is
    /// passed. The scanner starts afresh after `Some` or an error.
    pub fn scan(
        &mut self,
        bytes: &[u8],
        max_header_bytes: usize,
    ) -> Result<Option<usize>, RequestError> {
        let line_limit = MAX_REQUEST_LINE.min(max_header_bytes);
        let mut index = self.scanned.min(bytes.len());
        while let Some(offset) = bytes[index..].iter().position(|byte| *byte == b'\n') {
            index += offset;
            if !self.line_complete {
                self.line_complete = true;
                if index > line_limit {
                    *self = Self::default();
                    return Err(RequestError::TargetTooLong);
                }
            }
            let empty_line = (index >= 1 && bytes[index - 1] == b'\n')
                || (index >= 2 && bytes[index - 1] == b'\r' && bytes[index - 2] == b'\n');
            index += 1;
            if empty_line {
                *self = Self::default();
                if index > max_header_bytes {
                    return Err(RequestError::HeadersTooLarge);
                }
                return Ok(Some(index));
            }
        }
        self.scanned = bytes.len();
        if !self.line_complete && bytes.len() > line_limit {
            *self = Self::default();
            return Err(RequestError::TargetTooLong);
        }
        if bytes.len() > max_header_bytes {
            *self = Self::default();
            return Err(RequestError::HeadersTooLarge);
        }
        Ok(None)
    }
}

/// The `tchar`s of RFC 9110 section 5.6.2, by byte value: one load per
/// byte of every method and field name.
const TOKEN_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 256 {
        let value = byte as u8;
        table[byte] = value.is_ascii_alphanumeric()
            || matches!(
                value,
                b'!' | b'#'
                    | b'$'
                    | b'%'
                    | b'&'
                    | b'\''
                    | b'*'
                    | b'+'
                    | b'-'
                    | b'.'
                    | b'^'
                    | b'_'
                    | b'`'
                    | b'|'
                    | b'~'
            );
        byte += 1;
    }
    table
};

/// A `tchar` of RFC 9110 section 5.6.2: what tokens (methods, field names)
/// are made of.
fn is_token_byte(byte: u8) -> bool {
    TOKEN_BYTES[usize::from(byte)]
}

/// A byte allowed in a field value: visible, space, tab or obs-text.
fn is_value_byte(byte: u8) -> bool {
    byte == b'\t' || byte == b' ' || (0x21..=0x7e).contains(&byte) || byte >= 0x80
}

/// `bytes` without leading and trailing spaces and tabs.
fn trim(bytes: &[u8]) -> &[u8] {
    let blank = |byte: &u8| *byte == b' ' || *byte == b'\t';
    let start = bytes.iter().position(|b| !blank(b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !blank(b))
        .map_or(start, |end| end + 1);
    &bytes[start..end]
}

/// The elements of a comma-separated field value, trimmed, empty ones
/// skipped (RFC 9110 section 5.6.1).
fn list(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|byte| *byte == b',')
        .map(trim)
        .filter(|element| !element.is_empty())
}

/// The lines of a head: split at LF, a CR before it removed.
fn lines(head: &[u8]) -> impl Iterator<Item = &[u8]> {
    head.split(|byte| *byte == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
}

/// The index of the first LF in `bytes` from `start` on.
fn find_line_end(bytes: &[u8], start: usize) -> Option<usize> {
    let rest = bytes.get(start..)?;
    rest.iter()
        .position(|byte| *byte == b'\n')
        .map(|offset| start + offset)
}

/// `line` without the CR before its LF.
fn without_cr(line: &[u8]) -> &[u8] {
    match line {
        [rest @ .., b'\r'] => rest,
        _ => line,
    }
}

/// Parses the request line's version.
fn version(text: &[u8]) -> Result<Version, RequestError> {
    match text {
        b"HTTP/1.1" => Ok(Version::Http11),
        b"HTTP/1.0" => Ok(Version::Http10),
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            Err(RequestError::UnsupportedVersion)
        }
        _ => Err(RequestError::Malformed),
    }
}

/// What the header fields said, while they are read.
#[derive(Default)]
struct Fields {
    length: Option<u64>,
    chunked: bool,
    transfer_encoding: bool,
    close: bool,
    keep_alive: bool,
    hosts: usize,
    expect_continue: bool,
}

impl Fields {
    /// Takes in one header field.
    fn field(&mut self, name: &[u8], value: &[u8]) -> Result<(), RequestError> {
        if name.eq_ignore_ascii_case(b"content-length") {
            let length = parse_decimal(value).ok_or(RequestError::BadFraming)?;
            if self.length.is_some_and(|earlier| earlier != length) {
                return Err(RequestError::BadFraming);
            }
            self.length = Some(length);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            self.transfer_encoding = true;
            for coding in list(value) {
                if !coding.eq_ignore_ascii_case(b"chunked") {
                    return Err(RequestError::UnsupportedTransferCoding);
                }
                if self.chunked {
                    return Err(RequestError::BadFraming);
                }
                self.chunked = true;
            }
        } else if name.eq_ignore_ascii_case(b"connection") {
            for option in list(value) {
                self.close |= option.eq_ignore_ascii_case(b"close");
                self.keep_alive |= option.eq_ignore_ascii_case(b"keep-alive");
            }
        } else if name.eq_ignore_ascii_case(b"host") {
            self.hosts += 1;
        } else if name.eq_ignore_ascii_case(b"expect") {
            if !value.eq_ignore_ascii_case(b"100-continue") {
                return Err(RequestError::UnsupportedExpectation);
            }
            self.expect_continue = true;
        }
        Ok(())
    }
}

/// The values of every header field called `name` (case-insensitive), in
/// order, trimmed, from a head [`parse_head`] accepted.
pub fn field_values<'a>(head: &'a [u8], name: &'a [u8]) -> impl Iterator<Item = &'a [u8]> {
    lines(head)
        .skip(1)
        .take_while(|line| !line.is_empty())
        .filter_map(move |line| {
            let colon = line.iter().position(|byte| *byte == b':')?;
            line[..colon]
                .eq_ignore_ascii_case(name)
                .then(|| trim(&line[colon + 1..]))
        })
}

/// Parses a whole head (what [`HeadScanner::scan`] found: the request
/// line, the header fields and the empty line).
pub fn parse_head(head: &[u8]) -> Result<RequestHead, RequestError> {
    match parse_request(head, usize::MAX)? {
        Some(parsed) if parsed.length == head.len() => Ok(parsed),
        _ => Err(RequestError::Malformed),
    }
}

/// Parses the request head at the start of `bytes` in one pass, each
/// line checked as soon as its LF is seen: `Ok(Some(head))` when the head
/// is whole (`head.length` is where it ends), `Ok(None)` when the bytes
/// end before the head does and nothing in them is wrong so far, an error
/// for the first thing wrong or a limit passed ([`HeadScanner::scan`]'s:
/// the request line within [`MAX_REQUEST_LINE`] and `max_header_bytes`,
/// the head within `max_header_bytes`).
///
/// A head that arrives whole (the common case) is read once; one split
/// across arrivals should be found with [`HeadScanner`] before it is
/// parsed again, so that no byte is read more than a few times.
pub fn parse_request(
    bytes: &[u8],
    max_header_bytes: usize,
) -> Result<Option<RequestHead>, RequestError> {
    let line_limit = MAX_REQUEST_LINE.min(max_header_bytes);
    let Some(line_end) = find_line_end(bytes, 0) else {
        if bytes.len() > line_limit {
            return Err(RequestError::TargetTooLong);
        }
        return Ok(None);
    };
    if line_end > line_limit {
        return Err(RequestError::TargetTooLong);
    }
    let line = request_line(without_cr(&bytes[..line_end]))?;

    let mut fields = Fields::default();
    let mut count = 0;
    let mut start = line_end + 1;
    loop {
        let Some(end) = find_line_end(bytes, start) else {
            if bytes.len() > max_header_bytes {
                return Err(RequestError::HeadersTooLarge);
            }
            return Ok(None);
        };
        let line = without_cr(&bytes[start..end]);
        start = end + 1;
        if line.is_empty() {
            break;
        }
        count += 1;
        if count > MAX_HEADERS {
            return Err(RequestError::HeadersTooLarge);
        }
        let colon = line
            .iter()
            .position(|byte| *byte == b':')
            .ok_or(RequestError::Malformed)?;
        let (name, value) = (&line[..colon], trim(&line[colon + 1..]));
        // Also refuses obsolete line folding and space before the colon.
        if name.is_empty() || !name.iter().all(|byte| is_token_byte(*byte)) {
            return Err(RequestError::Malformed);
        }
        if !value.iter().all(|byte| is_value_byte(*byte)) {
            return Err(RequestError::Malformed);
        }
        fields.field(name, value)?;
    }
    if start > max_header_bytes {
        return Err(RequestError::HeadersTooLarge);
    }

    let version = line.version;
    if fields.transfer_encoding && (fields.length.is_some() || version == Version::Http10) {
        return Err(RequestError::BadFraming);
    }
    if fields.transfer_encoding && !fields.chunked {
        return Err(RequestError::BadFraming);
    }
    if fields.hosts > 1 || (version == Version::Http11 && fields.hosts == 0) {
        return Err(RequestError::MissingHost);
    }
    let framing = match (fields.chunked, fields.length) {
        (true, _) => BodyFraming::Chunked,
        (false, Some(0) | None) => BodyFraming::None,
        (false, Some(length)) => BodyFraming::Length(length),
    };
    let keep_alive = !fields.close && (version == Version::Http11 || fields.keep_alive);
    Ok(Some(RequestHead {
        method: line.method,
        target_start: line.target_start,
        target_end: line.target_end,
        version,
        framing,
        keep_alive,
        expect_continue: fields.expect_continue,
        length: start,
    }))
}

/// What a request line says.
struct RequestLine {
    method: Method,
    target_start: usize,
    target_end: usize,
    version: Version,
}

/// Parses the request line (without its line end): method, one space,
/// target, one space, version.
fn request_line(line: &[u8]) -> Result<RequestLine, RequestError> {
    let method_end = line
        .iter()
        .position(|byte| *byte == b' ')
        .ok_or(RequestError::Malformed)?;
    let method = &line[..method_end];
    if method.is_empty() || !method.iter().all(|byte| is_token_byte(*byte)) {
        return Err(RequestError::Malformed);
    }
    let target_start = method_end + 1;
    let target_length = line[target_start..]
        .iter()
        .position(|byte| *byte == b' ')
        .ok_or(RequestError::Malformed)?;
    let target_end = target_start + target_length;
    let target = &line[target_start..target_end];
    if target.is_empty() || !target.iter().all(|byte| (0x21..=0x7e).contains(byte)) {
        return Err(RequestError::Malformed);
    }
    // A third space (a fourth part) makes the version malformed.
    let version = version(&line[target_end + 1..])?;
    let method = Method::from_token(method).ok_or(RequestError::UnknownMethod)?;
    Ok(RequestLine {
        method,
        target_start,
        target_end,
        version,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &[u8]) -> Result<RequestHead, RequestError> {
        let mut scanner = HeadScanner::default();
        let length = scanner.scan(text, 8192)?.expect("a whole head");
        assert_eq!(length, text.len(), "the fixture is one head");
        parse_head(&text[..length])
    }

    #[test]
    fn a_get_with_query_and_keep_alive() {
        let text = b"GET /bytes?n=10 HTTP/1.1\r\nHost: a\r\nUser-Agent: curl\r\n\r\n";
        let head = parse(text).unwrap();
        assert_eq!(head.method, Method::Get);
        assert_eq!(head.target(text), b"/bytes?n=10");
        assert_eq!(head.path(text), b"/bytes");
        assert_eq!(head.query(text), b"n=10");
        assert_eq!(head.version, Version::Http11);
        assert_eq!(head.framing, BodyFraming::None);
        assert!(head.keep_alive && !head.expect_continue);
        assert_eq!(head.length, text.len());
    }

    #[test]
    fn bodies_connections_and_expectations() {
        let head = parse(b"POST /echo HTTP/1.1\r\nhost: a\r\ncontent-LENGTH: 5\r\nContent-Length: 5\r\nConnection: close\r\nExpect: 100-Continue\r\n\r\n").unwrap();
        assert_eq!(head.framing, BodyFraming::Length(5));
        assert!(!head.keep_alive && head.expect_continue);
        let head = parse(b"PUT /echo HTTP/1.1\nHost: a\nTransfer-Encoding:  chunked \n\n").unwrap();
        assert_eq!(head.framing, BodyFraming::Chunked);
        let head = parse(b"GET / HTTP/1.0\r\n\r\n").unwrap();
        assert!(!head.keep_alive);
        let head = parse(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").unwrap();
        assert!(head.keep_alive);
        let text = b"GET http://example.com/x?y HTTP/1.1\r\nHost: example.com\r\n\r\n";
        assert_eq!(parse(text).unwrap().path(text), b"/x");
        let text = b"GET / HTTP/1.1\r\nHost: a\r\nX-A:  1 \r\nx-a:2\r\n\r\n";
        let values: alloc::vec::Vec<&[u8]> = field_values(text, b"X-a").collect();
        assert_eq!(values, [&b"1"[..], b"2"]);
        assert_eq!(field_values(text, b"host").next(), Some(&b"a"[..]));
    }

    #[test]
    fn refusals_and_their_statuses() {
        for (text, error) in [
            (&b"GET /\r\n\r\n"[..], RequestError::Malformed),
            (b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", RequestError::Malformed),
            (b"GET / HTTP/1.1\r\nHost : a\r\n\r\n", RequestError::Malformed),
            (b"GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", RequestError::Malformed),
            (b"GET / HTTP/1.1\r\nHost: a\x00\r\n\r\n", RequestError::Malformed),
            (b"GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n", RequestError::Malformed),
            (b"GET / HTTP/1.1\r\nno colon\r\n\r\n", RequestError::Malformed),
            (b"G(T / HTTP/1.1\r\nHost: a\r\n\r\n", RequestError::Malformed),
            (b"GET / HTTP/1.1\r\n\r\n", RequestError::MissingHost),
            (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", RequestError::MissingHost),
            (b"BREW / HTTP/1.1\r\nHost: a\r\n\r\n", RequestError::UnknownMethod),
            (b"get / HTTP/1.1\r\nHost: a\r\n\r\n", RequestError::UnknownMethod),
            (b"PRI * HTTP/2.0\r\n\r\n", RequestError::UnsupportedVersion),
            (b"GET / HTTP/1.2\r\nHost: a\r\n\r\n", RequestError::UnsupportedVersion),
            (b"GET / HTTP/1\r\nHost: a\r\n\r\n", RequestError::Malformed),
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", RequestError::BadFraming),
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", RequestError::BadFraming),
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", RequestError::BadFraming),
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 1\r\n\r\n", RequestError::BadFraming),
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n", RequestError::BadFraming),
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", RequestError::BadFraming),
            (b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", RequestError::BadFraming),
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n", RequestError::BadFraming),
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", RequestError::UnsupportedTransferCoding),
            (b"GET / HTTP/1.1\r\nHost: a\r\nExpect: teapot\r\n\r\n", RequestError::UnsupportedExpectation),
        ] {
            assert_eq!(parse(text), Err(error), "{}", core::str::from_utf8(text).unwrap());
        }
        let mut many = alloc::vec::Vec::from(&b"GET / HTTP/1.1\r\nHost: a\r\n"[..]);
        for _ in 0..MAX_HEADERS {
            many.extend_from_slice(b"X: y\r\n");
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(parse(&many), Err(RequestError::HeadersTooLarge));
    }

    #[test]
    fn the_one_pass_parser_agrees_with_the_scanner_and_waits_on_every_prefix() {
        let heads: [&[u8]; 8] = [
            b"GET / HTTP/1.1\r\nHost: b\r\n\r\n",
            b"GET /bytes?n=10 HTTP/1.1\r\nHost: a\r\nUser-Agent: curl\r\n\r\n",
            b"POST /echo HTTP/1.1\nHost: a\nContent-Length: 5\n\n",
            b"HEAD / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
            b"PUT /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nX-A:  1 \r\nx-a:2\r\n\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n",
        ];
        for head in heads {
            let text = core::str::from_utf8(head).unwrap();
            let mut bytes = alloc::vec::Vec::from(head);
            bytes.extend_from_slice(b"GET / HTTP/1.1\r\n");
            let two_pass = HeadScanner::default()
                .scan(&bytes, 8192)
                .map(|length| parse_head(&bytes[..length.expect("whole")]));
            let one_pass = parse_request(&bytes, 8192);
            match two_pass {
                Ok(Ok(parsed)) => assert_eq!(one_pass, Ok(Some(parsed)), "{text}"),
                Ok(Err(error)) | Err(error) => assert_eq!(one_pass, Err(error), "{text}"),
            }
            if one_pass.is_ok() {
                // Nothing is refused before the head is whole.
                for end in 0..head.len() {
                    assert_eq!(
                        parse_request(&head[..end], 8192),
                        Ok(None),
                        "{text} [..{end}]"
                    );
                }
            }
        }
        // The scanner's limits, in one pass.
        let mut line = alloc::vec::Vec::from(&b"GET /"[..]);
        line.extend_from_slice(&[b'a'; 150]);
        assert_eq!(parse_request(&line, 100), Err(RequestError::TargetTooLong));
        line.extend_from_slice(b" HTTP/1.1\r\n");
        assert_eq!(parse_request(&line, 100), Err(RequestError::TargetTooLong));
        let head = b"GET / HTTP/1.1\r\nHost: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
        assert_eq!(parse_request(head, 60), Err(RequestError::HeadersTooLarge));
        assert_eq!(
            parse_request(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", 26),
            Err(RequestError::HeadersTooLarge)
        );
    }

    #[test]
    fn the_scanner_waits_resumes_and_limits() {
        let text = b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET";
        let mut scanner = HeadScanner::default();
        for end in 0..27 {
            assert_eq!(scanner.scan(&text[..end], 8192), Ok(None), "{end}");
        }
        assert_eq!(scanner.scan(&text[..], 8192), Ok(Some(27)));
        assert_eq!(scanner, HeadScanner::default());
        let long = [b'a'; 200];
        assert_eq!(scanner.scan(&long, 100), Err(RequestError::TargetTooLong));
        let mut line = alloc::vec::Vec::from(&b"GET /"[..]);
        line.extend_from_slice(&[b'a'; 150]);
        line.extend_from_slice(b" HTTP/1.1\r\n");
        assert_eq!(scanner.scan(&line, 100), Err(RequestError::TargetTooLong));
        let head = b"GET / HTTP/1.1\r\nHost: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
        assert_eq!(scanner.scan(head, 60), Err(RequestError::HeadersTooLarge));
        assert_eq!(
            scanner.scan(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", 10),
            Err(RequestError::TargetTooLong)
        );
        assert_eq!(
            scanner.scan(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", 26),
            Err(RequestError::HeadersTooLarge)
        );
    }
}
