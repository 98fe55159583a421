//! `StreamHarness`: one connection's send buffer and the app's requests
//! without a stack, for unit tests of a `TcpApp` (ours, and a service
//! author's): lend a [`Stream`] with `stream()`, call the app, read back
//! what it wrote with `take_sent()` and what it asked with the accessors.

use super::app::{ConnectionId, Requests, Stream};
use super::buffer::SendBuffer;
use alloc::vec::Vec;
use core::net::{Ipv4Addr, SocketAddrV4};

/// A connection's send buffer and requests, with a clock the test sets.
#[derive(Debug)]
pub struct StreamHarness {
    pub(crate) send: SendBuffer,
    pub(crate) requests: Requests,
    pub(crate) now_ns: u64,
}

impl StreamHarness {
    /// A connection whose send buffer holds up to `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Self {
            send: SendBuffer::new(limit),
            requests: Requests::default(),
            now_ns: 0,
        }
    }

    /// A [`Stream`] over this connection, from 192.0.2.1:40000.
    pub fn stream(&mut self) -> Stream<'_> {
        Stream {
            id: ConnectionId {
                slot: 0,
                generation: 0,
            },
            peer: SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 40000),
            now_ns: self.now_ns,
            send: &mut self.send,
            requests: &mut self.requests,
        }
    }

    /// Takes everything written so far out of the send buffer (as if the
    /// peer had acknowledged it).
    pub fn take_sent(&mut self) -> Vec<u8> {
        let mut out = alloc::vec![0; self.send.len()];
        self.send.copy_out(0, &mut out);
        self.send.consume(out.len());
        out
    }

    /// Sets the clock streams report.
    pub fn set_now_ns(&mut self, now_ns: u64) {
        self.now_ns = now_ns;
    }

    /// True once the app asked to close its side.
    pub fn close_requested(&self) -> bool {
        self.requests.close
    }

    /// True once the app aborted the connection.
    pub fn aborted(&self) -> bool {
        self.requests.abort
    }

    /// True once the app asked to be told when it can write.
    pub fn wants_writable(&self) -> bool {
        self.requests.want_writable
    }

    /// The connection the app asked to open (peer, token), if any.
    pub fn connect_requested(&self) -> Option<(SocketAddrV4, u64)> {
        self.requests.connect
    }

    /// The app's last wish about reading: `Some(true)` paused it.
    pub fn reading_paused(&self) -> Option<bool> {
        self.requests.pause_reading
    }

    /// The app's last timer request: `Some(0)` cleared it.
    pub fn timeout_ms(&self) -> Option<u32> {
        self.requests.timeout_ms
    }

    /// The app's last timer request, forgotten here: a call after this
    /// that returns `None` shows the app did not set its timer since.
    pub fn take_timeout_ms(&mut self) -> Option<u32> {
        self.requests.timeout_ms.take()
    }
}
