//! `KvSession`: one connection's state: where its input stands (a command
//! line, a data block arriving in pieces, or bytes to throw away) and its
//! queue of answers.

use super::command::StoreMode;
use super::replies::ReplyQueue;
use crate::tcp::ConnectionId;
use alloc::boxed::Box;
use alloc::vec::Vec;

/// A storage command whose data block is arriving.
#[derive(Debug)]
pub(super) struct PendingStore {
    pub(super) mode: StoreMode,
    pub(super) key: Box<[u8]>,
    pub(super) flags: u32,
    pub(super) exptime: i64,
    pub(super) noreply: bool,
    /// The block so far, with its `\r\n`: `bytes + 2` long when complete.
    pub(super) block: Vec<u8>,
    /// Length of the data block without `\r\n`.
    pub(super) bytes: usize,
}

impl PendingStore {
    /// Bytes of the block (with `\r\n`) still to come.
    pub(super) fn missing(&self) -> usize {
        self.bytes + 2 - self.block.len()
    }
}

/// Where a connection's input stands.
#[derive(Debug, Default)]
pub(super) enum Reading {
    /// At the start of a command line.
    #[default]
    Line,
    /// Inside a storage command's data block.
    Block(PendingStore),
    /// Throwing away this many bytes (the block of a refused item).
    Swallow(usize),
}

/// One connection of the kv app.
#[derive(Debug)]
pub struct KvSession {
    /// The connection (remote answers are addressed to it).
    pub(super) id: ConnectionId,
    pub(super) reading: Reading,
    pub(super) replies: ReplyQueue,
    /// `quit` or a fatal error: input is ignored, the connection closes
    /// once the queued answers are written.
    pub(super) closing: bool,
    /// Reading is paused until the queue shrinks.
    pub(super) paused: bool,
}

impl KvSession {
    /// A new connection's state.
    pub(super) fn new(id: ConnectionId) -> Self {
        Self {
            id,
            reading: Reading::Line,
            replies: ReplyQueue::default(),
            closing: false,
            paused: false,
        }
    }
}
