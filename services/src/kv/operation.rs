//! Operations on one shard's store and their answers: the same code runs
//! a command for a key this core owns and a request from another core.

use super::command::{Direction, StoreMode};
use super::reply::{self, Sink};
use super::store::{ArithmeticOutcome, Store, StoreOutcome};
use alloc::vec::Vec;

/// An operation on one key (or on the whole shard), its bytes borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation<'a> {
    /// A storage command with its data block (without `\r\n`).
    Store {
        /// How.
        mode: StoreMode,
        /// The key.
        key: &'a [u8],
        /// Client flags.
        flags: u32,
        /// Expiry as written.
        exptime: i64,
        /// The data block.
        data: &'a [u8],
    },
    /// `delete`.
    Delete {
        /// The key.
        key: &'a [u8],
    },
    /// `incr`/`decr`.
    Arithmetic {
        /// The key.
        key: &'a [u8],
        /// The amount.
        delta: u64,
        /// Which way.
        direction: Direction,
    },
    /// `touch`.
    Touch {
        /// The key.
        key: &'a [u8],
        /// The new expiry.
        exptime: i64,
    },
    /// `flush_all`.
    FlushAll {
        /// Seconds until it takes effect.
        delay: i64,
    },
}

/// An [`Operation`] owning its bytes, to travel to the owning core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnedOperation {
    /// See [`Operation::Store`].
    Store {
        /// How.
        mode: StoreMode,
        /// The key.
        key: Vec<u8>,
        /// Client flags.
        flags: u32,
        /// Expiry as written.
        exptime: i64,
        /// The data block.
        data: Vec<u8>,
    },
    /// See [`Operation::Delete`].
    Delete {
        /// The key.
        key: Vec<u8>,
    },
    /// See [`Operation::Arithmetic`].
    Arithmetic {
        /// The key.
        key: Vec<u8>,
        /// The amount.
        delta: u64,
        /// Which way.
        direction: Direction,
    },
    /// See [`Operation::Touch`].
    Touch {
        /// The key.
        key: Vec<u8>,
        /// The new expiry.
        exptime: i64,
    },
    /// See [`Operation::FlushAll`].
    FlushAll {
        /// Seconds until it takes effect.
        delay: i64,
    },
}

impl Operation<'_> {
    /// A copy that owns its bytes: the key written into `key_buffer`
    /// (a spare from [`Buffers`](super::buffers::Buffers), which the
    /// owner keeps for its answers) and the data block copied (one
    /// allocation).
    pub fn to_owned(self, key_buffer: Vec<u8>) -> OwnedOperation {
        let mut key_buffer = key_buffer;
        let mut owned_key = |key: &[u8]| {
            key_buffer.clear();
            key_buffer.extend_from_slice(key);
            core::mem::take(&mut key_buffer)
        };
        match self {
            Self::Store {
                mode,
                key,
                flags,
                exptime,
                data,
            } => OwnedOperation::Store {
                mode,
                key: owned_key(key),
                flags,
                exptime,
                data: data.to_vec(),
            },
            Self::Delete { key } => OwnedOperation::Delete {
                key: owned_key(key),
            },
            Self::Arithmetic {
                key,
                delta,
                direction,
            } => OwnedOperation::Arithmetic {
                key: owned_key(key),
                delta,
                direction,
            },
            Self::Touch { key, exptime } => OwnedOperation::Touch {
                key: owned_key(key),
                exptime,
            },
            Self::FlushAll { delay } => OwnedOperation::FlushAll { delay },
        }
    }
}

impl OwnedOperation {
    /// The key's buffer, once the operation has run (none for
    /// `flush_all`).
    pub fn into_key(self) -> Option<Vec<u8>> {
        match self {
            Self::Store { key, .. }
            | Self::Delete { key }
            | Self::Arithmetic { key, .. }
            | Self::Touch { key, .. } => Some(key),
            Self::FlushAll { .. } => None,
        }
    }

    /// The operation with its bytes borrowed.
    pub fn borrow(&self) -> Operation<'_> {
        match self {
            Self::Store {
                mode,
                key,
                flags,
                exptime,
                data,
            } => Operation::Store {
                mode: *mode,
                key,
                flags: *flags,
                exptime: *exptime,
                data,
            },
            Self::Delete { key } => Operation::Delete { key },
            Self::Arithmetic {
                key,
                delta,
                direction,
            } => Operation::Arithmetic {
                key,
                delta: *delta,
                direction: *direction,
            },
            Self::Touch { key, exptime } => Operation::Touch {
                key,
                exptime: *exptime,
            },
            Self::FlushAll { delay } => Operation::FlushAll { delay: *delay },
        }
    }
}

/// Runs `operation` on `store` at second `now` and writes memcached's
/// answer into `sink`.
pub fn apply(store: &mut Store, operation: Operation<'_>, now: u64, sink: &mut impl Sink) {
    let answer: &[u8] = match operation {
        Operation::Store {
            mode,
            key,
            flags,
            exptime,
            data,
        } => match store.store(mode, key, flags, exptime, data, now) {
            StoreOutcome::Stored => reply::STORED,
            StoreOutcome::NotStored => reply::NOT_STORED,
            StoreOutcome::Exists => reply::EXISTS,
            StoreOutcome::NotFound => reply::NOT_FOUND,
            StoreOutcome::TooLarge => reply::TOO_LARGE,
        },
        Operation::Delete { key } => match store.delete(key, now) {
            true => reply::DELETED,
            false => reply::NOT_FOUND,
        },
        Operation::Arithmetic {
            key,
            delta,
            direction,
        } => match store.arithmetic(key, delta, direction, now) {
            ArithmeticOutcome::Value(value) => {
                reply::number(sink, value);
                return;
            }
            ArithmeticOutcome::NotFound => reply::NOT_FOUND,
            ArithmeticOutcome::NonNumeric => reply::NON_NUMERIC,
        },
        Operation::Touch { key, exptime } => match store.touch(key, exptime, now) {
            true => reply::TOUCHED,
            false => reply::NOT_FOUND,
        },
        Operation::FlushAll { delay } => {
            store.flush(delay, now);
            reply::OK
        }
    };
    sink.put(answer);
}

/// Writes the `VALUE` block of `key`, if it is held, into `sink` (no
/// `END`: a get's keys may live on several shards).
pub fn get(store: &mut Store, key: &[u8], with_cas: bool, now: u64, sink: &mut impl Sink) {
    if let Some(item) = store.get(key, now) {
        let cas = with_cas.then_some(item.cas);
        reply::value(sink, &item.key, item.flags, &item.value, cas);
    }
}
