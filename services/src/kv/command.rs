//! memcached text protocol command lines: where a line ends (and when one
//! is too long), and one line parsed into a [`Command`] that borrows its
//! keys from the received bytes. Data blocks are the app's business.

use super::reply;

/// Longest key, in bytes (memcached's `KEY_MAX_LENGTH`).
pub const MAX_KEY_LENGTH: usize = 250;
/// Longest command line without its terminator, except `get` and `gets`.
pub const MAX_LINE_LENGTH: usize = 2048;
/// Longest `get`/`gets` line: a multi-key get may name many keys
/// (memcached grows its buffer for them; we bound it).
pub const MAX_GET_LINE_LENGTH: usize = 65536;
/// Most tokens a command other than `get` has (`cas` with `noreply`).
const MAX_TOKENS: usize = 7;

/// Where the next command line ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line {
    /// A line of `length` bytes (without `\r\n` or `\n`); `consumed` counts
    /// the terminator too.
    Complete {
        /// Bytes of the line itself.
        length: usize,
        /// Bytes up to and including the `\n`.
        consumed: usize,
    },
    /// No `\n` yet: wait for more bytes.
    Incomplete,
    /// No `\n` within the limit: the connection is closed.
    TooLong,
}

/// Finds the first line of `data`.
pub fn find_line(data: &[u8]) -> Line {
    let limit = if data.starts_with(b"get ") || data.starts_with(b"gets ") {
        MAX_GET_LINE_LENGTH
    } else {
        MAX_LINE_LENGTH
    };
    // A line of `limit` bytes may be followed by `\r\n`.
    let window = &data[..data.len().min(limit + 2)];
    match window.iter().position(|byte| *byte == b'\n') {
        Some(end) => {
            let length = if end > 0 && window[end - 1] == b'\r' {
                end - 1
            } else {
                end
            };
            if length > limit {
                return Line::TooLong;
            }
            Line::Complete {
                length,
                consumed: end + 1,
            }
        }
        None if data.len() > limit + 1 => Line::TooLong,
        None => Line::Incomplete,
    }
}

/// How a storage command stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreMode {
    /// `set`: store.
    Set,
    /// `add`: store only if absent.
    Add,
    /// `replace`: store only if present.
    Replace,
    /// `append`: add the data after the present value.
    Append,
    /// `prepend`: add the data before the present value.
    Prepend,
    /// `cas`: store only if unchanged since the client's `gets` returned
    /// this unique.
    Cas(u64),
}

/// Which way `incr`/`decr` counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// `incr`: adds, wrapping at 2^64.
    Increment,
    /// `decr`: subtracts, stopping at 0.
    Decrement,
}

/// The keys of a `get`: the rest of its line, split on spaces when read.
/// Every key was checked when the line was parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keys<'a>(&'a [u8]);

impl<'a> Keys<'a> {
    /// The keys, in request order.
    pub fn iter(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        tokens(self.0)
    }
}

/// One command line, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command<'a> {
    /// `get`/`gets <key>*`.
    Get {
        /// The keys.
        keys: Keys<'a>,
        /// `gets`: answers carry the cas unique.
        with_cas: bool,
    },
    /// `set`/`add`/`replace`/`append`/`prepend`/`cas`; a data block of
    /// `bytes` bytes and `\r\n` follows the line.
    Store {
        /// How to store.
        mode: StoreMode,
        /// The key.
        key: &'a [u8],
        /// Opaque client flags.
        flags: u32,
        /// Expiry as the client wrote it (see `Store`).
        exptime: i64,
        /// Length of the data block.
        bytes: usize,
        /// Answer nothing.
        noreply: bool,
    },
    /// `delete <key> [0] [noreply]`.
    Delete {
        /// The key.
        key: &'a [u8],
        /// Answer nothing.
        noreply: bool,
    },
    /// `incr`/`decr <key> <delta> [noreply]`.
    Arithmetic {
        /// The key.
        key: &'a [u8],
        /// The amount.
        delta: u64,
        /// Up or down.
        direction: Direction,
        /// Answer nothing.
        noreply: bool,
    },
    /// `touch <key> <exptime> [noreply]`.
    Touch {
        /// The key.
        key: &'a [u8],
        /// The new expiry.
        exptime: i64,
        /// Answer nothing.
        noreply: bool,
    },
    /// `flush_all [delay] [noreply]`.
    FlushAll {
        /// Seconds until the flush takes effect (0: now).
        delay: i64,
        /// Answer nothing.
        noreply: bool,
    },
    /// `version`.
    Version,
    /// `stats`.
    Stats,
    /// `quit`: close the connection.
    Quit,
}

/// Why a line is refused, with memcached's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandError {
    /// Unknown command, or the wrong number of tokens: `ERROR`.
    Unknown,
    /// A bad key or number: `CLIENT_ERROR bad command line format`.
    BadFormat,
    /// `delete` with extra tokens other than `0` and `noreply`.
    BadDelete,
    /// `incr`/`decr` delta that is not a 64-bit decimal.
    InvalidDelta,
    /// `touch` exptime that is not a number.
    InvalidExptime,
}

impl CommandError {
    /// memcached's answer, with `\r\n`.
    pub fn reply(self) -> &'static [u8] {
        match self {
            Self::Unknown => reply::ERROR,
            Self::BadFormat => reply::BAD_FORMAT,
            Self::BadDelete => reply::BAD_DELETE,
            Self::InvalidDelta => reply::INVALID_DELTA,
            Self::InvalidExptime => reply::INVALID_EXPTIME,
        }
    }
}

/// A refused line: the error, and whether the line asked for no answer
/// (memcached stays silent then, as it decides `noreply` first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejected {
    /// Why.
    pub error: CommandError,
    /// The line ended in `noreply`.
    pub noreply: bool,
}

/// The space-separated tokens of `line` (runs of spaces count as one).
fn tokens(line: &[u8]) -> impl Iterator<Item = &[u8]> {
    line.split(|byte| *byte == b' ')
        .filter(|token| !token.is_empty())
}

/// Parses one command line (without its terminator).
pub fn parse_line(line: &[u8]) -> Result<Command<'_>, Rejected> {
    let mut words = tokens(line);
    let Some(name) = words.next() else {
        return Err(reject(CommandError::Unknown, false));
    };
    if name == b"get" || name == b"gets" {
        return parse_get(line, name.len(), name == b"gets");
    }
    let mut args: arrayvec::ArrayVec<&[u8], MAX_TOKENS> = arrayvec::ArrayVec::new();
    for word in words {
        if args.try_push(word).is_err() {
            return Err(reject(CommandError::Unknown, false));
        }
    }
    let noreply = args.last() == Some(&&b"noreply"[..]);
    let mode = match name {
        b"set" => Some(StoreMode::Set),
        b"add" => Some(StoreMode::Add),
        b"replace" => Some(StoreMode::Replace),
        b"append" => Some(StoreMode::Append),
        b"prepend" => Some(StoreMode::Prepend),
        b"cas" => Some(StoreMode::Cas(0)),
        _ => None,
    };
    if let Some(mode) = mode {
        return parse_store(mode, &args, noreply);
    }
    match (name, args.len()) {
        (b"delete", 1..=3) => parse_delete(&args),
        (b"incr" | b"decr", 2 | 3) => {
            let key = checked_key(args[0], noreply)?;
            let delta = parse_u64(args[1]).ok_or(reject(CommandError::InvalidDelta, noreply))?;
            let direction = if name == b"incr" {
                Direction::Increment
            } else {
                Direction::Decrement
            };
            Ok(Command::Arithmetic {
                key,
                delta,
                direction,
                noreply,
            })
        }
        (b"touch", 2 | 3) => {
            let key = checked_key(args[0], noreply)?;
            let exptime =
                parse_i64(args[1]).ok_or(reject(CommandError::InvalidExptime, noreply))?;
            Ok(Command::Touch {
                key,
                exptime,
                noreply,
            })
        }
        (b"flush_all", 0..=2) => {
            let delay = match (args.len(), noreply) {
                (0, _) | (1, true) => 0,
                (1, false) | (2, true) => {
                    parse_i64(args[0]).ok_or(reject(CommandError::BadFormat, noreply))?
                }
                _ => return Err(reject(CommandError::BadFormat, false)),
            };
            Ok(Command::FlushAll {
                delay: delay.max(0),
                noreply,
            })
        }
        (b"version", 0) => Ok(Command::Version),
        (b"stats", 0) => Ok(Command::Stats),
        (b"quit", 0) => Ok(Command::Quit),
        _ => Err(reject(CommandError::Unknown, false)),
    }
}

/// A [`Rejected`].
const fn reject(error: CommandError, noreply: bool) -> Rejected {
    Rejected { error, noreply }
}

/// `get`/`gets` and its keys: at least one, each valid.
fn parse_get(line: &[u8], name_end: usize, with_cas: bool) -> Result<Command<'_>, Rejected> {
    let start = line
        .iter()
        .position(|byte| *byte != b' ')
        .map_or(line.len(), |first| first + name_end);
    let rest = &line[start..];
    let mut count = 0;
    for key in tokens(rest) {
        checked_key(key, false)?;
        count += 1;
    }
    if count == 0 {
        return Err(reject(CommandError::Unknown, false));
    }
    Ok(Command::Get {
        keys: Keys(rest),
        with_cas,
    })
}

/// `<key> <flags> <exptime> <bytes> [<cas unique>] [noreply]`.
fn parse_store<'a>(
    mode: StoreMode,
    args: &[&'a [u8]],
    noreply: bool,
) -> Result<Command<'a>, Rejected> {
    let wanted = if matches!(mode, StoreMode::Cas(_)) {
        5
    } else {
        4
    };
    if args.len() != wanted && args.len() != wanted + 1 {
        return Err(reject(CommandError::Unknown, false));
    }
    let bad = reject(CommandError::BadFormat, noreply);
    let key = checked_key(args[0], noreply)?;
    let flags = parse_u64(args[1])
        .and_then(|flags| u32::try_from(flags).ok())
        .ok_or(bad)?;
    let exptime = parse_i64(args[2]).ok_or(bad)?;
    let bytes = parse_i64(args[3])
        .filter(|bytes| (0..=i64::from(i32::MAX) - 2).contains(bytes))
        .ok_or(bad)?;
    let mode = match mode {
        StoreMode::Cas(_) => StoreMode::Cas(parse_u64(args[4]).ok_or(bad)?),
        other => other,
    };
    Ok(Command::Store {
        mode,
        key,
        flags,
        exptime,
        bytes: bytes as usize,
        noreply,
    })
}

/// `delete <key>`, `delete <key> 0`, `delete <key> noreply`,
/// `delete <key> 0 noreply`.
fn parse_delete<'a>(args: &[&'a [u8]]) -> Result<Command<'a>, Rejected> {
    let noreply = args.last() == Some(&&b"noreply"[..]);
    let valid = match args {
        [_] => true,
        [_, extra] => *extra == b"0" || *extra == b"noreply",
        [_, hold, _] => *hold == b"0" && noreply,
        _ => false,
    };
    if !valid {
        return Err(reject(CommandError::BadDelete, false));
    }
    Ok(Command::Delete {
        key: checked_key(args[0], noreply)?,
        noreply,
    })
}

/// `key` if it is at most [`MAX_KEY_LENGTH`] bytes without control
/// characters.
fn checked_key(key: &[u8], noreply: bool) -> Result<&[u8], Rejected> {
    if key.len() > MAX_KEY_LENGTH || key.iter().any(|byte| *byte < 0x20 || *byte == 0x7f) {
        return Err(reject(CommandError::BadFormat, noreply));
    }
    Ok(key)
}

/// A decimal `u64` (digits only, no overflow).
pub(crate) fn parse_u64(text: &[u8]) -> Option<u64> {
    if text.is_empty() || text.len() > 20 {
        return None;
    }
    text.iter().try_fold(0u64, |value, byte| {
        let digit = byte.checked_sub(b'0').filter(|digit| *digit < 10)?;
        value.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

/// A decimal `i64`, with an optional leading `-`.
fn parse_i64(text: &[u8]) -> Option<i64> {
    match text.strip_prefix(b"-") {
        Some(digits) => {
            let magnitude = parse_u64(digits)?;
            0i64.checked_sub_unsigned(magnitude)
        }
        None => i64::try_from(parse_u64(text)?).ok(),
    }
}
