//! A stack stand-in for fuzzing and tests: one connection to a one-core
//! kv app, fed chunks as a TCP stack would lend them (unconsumed bytes
//! lent again with the next chunk), answers collected. Built with the
//! `fuzzing` feature (and in tests).

use super::app::KvApp;
use super::session::KvSession;
use crate::tcp::StreamHarness;
use crate::tcp::TcpApp;
use crate::tcp::app::Requests;
use alloc::vec::Vec;
use core::net::{Ipv4Addr, SocketAddrV4};

/// Send buffer of the harness's connection: large, so that only the
/// app's own limits stop it.
const SEND_BUFFER: usize = 1 << 20;

/// One connection to a one-core kv app.
#[derive(Debug)]
pub struct KvHarness {
    app: KvApp,
    session: Option<KvSession>,
    stream: StreamHarness,
    /// Bytes lent and not consumed, lent again with the next chunk.
    kept: Vec<u8>,
    /// Everything the app wrote.
    output: Vec<u8>,
    paused: bool,
    closed: bool,
}

impl KvHarness {
    /// A connection to a fresh app with these limits.
    pub fn new(memory_bytes: usize, max_item_bytes: usize) -> Self {
        let mut app = KvApp::new(memory_bytes, max_item_bytes, None);
        let mut stream = StreamHarness::new(SEND_BUFFER);
        let peer = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 40000);
        let session = app.accept(peer, &mut stream.stream());
        Self {
            app,
            session,
            stream,
            kept: Vec::new(),
            output: Vec::new(),
            paused: false,
            closed: false,
        }
    }

    /// Sets the clock the app sees.
    pub fn set_now_ns(&mut self, now_ns: u64) {
        self.stream.now_ns = now_ns;
    }

    /// Delivers `chunk` (after whatever was kept) and runs the app until
    /// it has nothing more to do with it.
    pub fn feed(&mut self, chunk: &[u8]) {
        self.kept.extend_from_slice(chunk);
        let Some(session) = self.session.as_mut() else {
            return;
        };
        loop {
            let mut progressed = false;
            if !self.paused && !self.kept.is_empty() && !self.closed {
                let consumed = self
                    .app
                    .data(session, &self.kept, &mut self.stream.stream());
                assert!(consumed <= self.kept.len(), "consumed more than lent");
                self.kept.drain(..consumed);
                progressed = consumed > 0;
            }
            let requests = core::mem::take(&mut self.stream.requests);
            self.closed |= requests.close || requests.abort;
            if let Some(paused) = requests.pause_reading {
                progressed |= self.paused && !paused;
                self.paused = paused;
            }
            let sent = self.stream.take_sent();
            progressed |= !sent.is_empty();
            self.output.extend_from_slice(&sent);
            if requests.want_writable {
                self.app.writable(session, &mut self.stream.stream());
                progressed = true;
            }
            if !progressed || requests == Requests::default() && self.kept.is_empty() {
                break;
            }
        }
    }

    /// Everything the app wrote so far.
    pub fn output(&self) -> &[u8] {
        &self.output
    }

    /// Takes what the app wrote so far.
    pub fn take_output(&mut self) -> Vec<u8> {
        core::mem::take(&mut self.output)
    }

    /// True once the app closed or aborted the connection.
    pub fn closed(&self) -> bool {
        self.closed
    }

    /// The app (its counters, its items).
    pub fn app(&self) -> &KvApp {
        &self.app
    }
}
