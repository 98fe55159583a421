//! The kv app's input loop: lent bytes taken command by command, each
//! answered in order; data blocks taken whole when they are all there, or
//! gathered across calls when they are not (a block may exceed what the
//! stack keeps unconsumed).

use super::app::{KvApp, MAX_WAITING_PARTS, OUTPUT_HIGH_WATER};
use super::command::{Command, Line, find_line, parse_line};
use super::operation::Operation;
use super::reply::{self, Sink};
use super::session::{KvSession, PendingStore, Reading};
use super::store::item_size;
use crate::tcp::Stream;
use alloc::vec::Vec;

impl KvApp {
    /// Takes commands from `data` until it ends, a command is incomplete,
    /// or the connection's answers pile up; returns the bytes consumed.
    pub(super) fn consume(
        &mut self,
        session: &mut KvSession,
        data: &[u8],
        io: &mut Stream<'_>,
    ) -> usize {
        let mut at = 0;
        while at < data.len() {
            if session.closing {
                return data.len();
            }
            if session.replies.queued_bytes() > OUTPUT_HIGH_WATER
                || session.replies.waiting_parts() >= MAX_WAITING_PARTS
            {
                break;
            }
            match &mut session.reading {
                Reading::Swallow(remaining) => {
                    let taken = (*remaining).min(data.len() - at);
                    *remaining -= taken;
                    at += taken;
                    if *remaining == 0 {
                        session.reading = Reading::Line;
                    }
                }
                Reading::Block(pending) => {
                    let taken = pending.missing().min(data.len() - at);
                    pending.block.extend_from_slice(&data[at..at + taken]);
                    at += taken;
                    if pending.missing() == 0
                        && let Reading::Block(pending) = core::mem::take(&mut session.reading)
                    {
                        let PendingStore {
                            mode,
                            key,
                            flags,
                            exptime,
                            noreply,
                            block,
                            bytes,
                        } = pending;
                        let operation = Operation::Store {
                            mode,
                            key: &key,
                            flags,
                            exptime,
                            data: &block[..bytes],
                        };
                        self.store_block(session, operation, &block[bytes..], noreply, io);
                    }
                }
                Reading::Line => match find_line(&data[at..]) {
                    Line::Incomplete => break,
                    Line::TooLong => {
                        self.counters.protocol_errors += 1;
                        session
                            .replies
                            .sink(io, &mut self.buffers)
                            .put(reply::LINE_TOO_LONG);
                        session.closing = true;
                        return data.len();
                    }
                    Line::Complete { length, consumed } => {
                        let line = &data[at..at + length];
                        at += consumed;
                        at += self.line(session, line, &data[at..], io);
                    }
                },
            }
        }
        at
    }

    /// Runs one command line; `after` is what follows it. Returns how much
    /// of `after` it took (a storage command's data block).
    fn line(
        &mut self,
        session: &mut KvSession,
        line: &[u8],
        after: &[u8],
        io: &mut Stream<'_>,
    ) -> usize {
        let command = match parse_line(line) {
            Ok(command) => command,
            Err(rejected) => {
                self.counters.protocol_errors += 1;
                if !rejected.noreply {
                    session
                        .replies
                        .sink(io, &mut self.buffers)
                        .put(rejected.error.reply());
                }
                return 0;
            }
        };
        let Command::Store {
            mode,
            key,
            flags,
            exptime,
            bytes,
            noreply,
        } = command
        else {
            self.command(session, command, io);
            return 0;
        };
        let block = bytes + 2;
        if item_size(key.len(), bytes) > self.max_item_bytes {
            self.counters.protocol_errors += 1;
            if !noreply {
                session
                    .replies
                    .sink(io, &mut self.buffers)
                    .put(reply::TOO_LARGE);
            }
            if mode == super::command::StoreMode::Set {
                // memcached drops the old value of a refused set.
                self.operation(session, key, Operation::Delete { key }, true, io);
            }
            let taken = block.min(after.len());
            if taken < block {
                session.reading = Reading::Swallow(block - taken);
            }
            return taken;
        }
        if after.len() >= block {
            let operation = Operation::Store {
                mode,
                key,
                flags,
                exptime,
                data: &after[..bytes],
            };
            self.store_block(session, operation, &after[bytes..block], noreply, io);
            return block;
        }
        let mut gathered = Vec::with_capacity(block);
        gathered.extend_from_slice(after);
        session.reading = Reading::Block(PendingStore {
            mode,
            key: key.into(),
            flags,
            exptime,
            noreply,
            block: gathered,
            bytes,
        });
        after.len()
    }

    /// Runs a storage command whose data block is complete; `terminator`
    /// is what followed the block (it must be `\r\n`).
    fn store_block(
        &mut self,
        session: &mut KvSession,
        operation: Operation<'_>,
        terminator: &[u8],
        noreply: bool,
        io: &mut Stream<'_>,
    ) {
        if terminator != b"\r\n" {
            self.counters.protocol_errors += 1;
            if !noreply {
                session
                    .replies
                    .sink(io, &mut self.buffers)
                    .put(reply::BAD_DATA_CHUNK);
            }
            return;
        }
        let Operation::Store { key, .. } = operation else {
            return;
        };
        self.operation(session, key, operation, noreply, io);
    }
}
