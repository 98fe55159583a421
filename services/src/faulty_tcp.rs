//! `faulty-tcp`, a test-only TCP app kind (cargo feature `test-services`
//! registers it; never in a release image unless asked): a line echo that
//! panics on a request holding its panic mark, and burns CPU on one
//! holding its slow mark, so that tests can prove the `tcp` node contains
//! a failing app, keeps its other apps serving, and rebuilds it.

use crate::registry::{BuildContext, TcpServiceKind, UdpPort};
use crate::tcp::{Stream, TcpApp};
use alloc::string::String;
use core::net::SocketAddrV4;
use serde::Deserialize;

/// A TCP echo with faults on demand.
#[derive(Debug)]
pub struct FaultyTcp {
    panic_mark: String,
    slow_mark: String,
    slow_spins: u64,
}

/// True when `data` holds `mark` (an empty mark never matches).
fn holds(data: &[u8], mark: &str) -> bool {
    !mark.is_empty()
        && data
            .windows(mark.len())
            .any(|window| window == mark.as_bytes())
}

impl TcpApp for FaultyTcp {
    type Session = ();

    fn accept(&mut self, _peer: SocketAddrV4, _io: &mut Stream<'_>) -> Option<()> {
        Some(())
    }

    fn data(&mut self, _session: &mut (), data: &[u8], io: &mut Stream<'_>) -> usize {
        if holds(data, &self.panic_mark) {
            panic!("faulty-tcp: a marked request");
        }
        if holds(data, &self.slow_mark) {
            for spin in 0..self.slow_spins {
                core::hint::black_box(spin);
            }
        }
        let written = io.write(data);
        if written < data.len() {
            io.want_writable();
        }
        written
    }
}

fn default_panic_mark() -> String {
    String::from("PANIC")
}

fn default_slow_mark() -> String {
    String::from("SLOW")
}

impl FaultyTcp {
    /// The app `config` describes.
    pub fn new(config: &FaultyTcpConfig) -> Self {
        Self {
            panic_mark: config.panic_mark.clone(),
            slow_mark: config.slow_mark.clone(),
            slow_spins: config.slow_spins,
        }
    }
}

/// `faulty-tcp`'s table: `port`, and optionally `panic_mark` (default
/// `"PANIC"`), `slow_mark` (default `"SLOW"`) and `slow_spins` (loop
/// iterations a slow request costs, default 0); an empty mark never
/// matches.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultyTcpConfig {
    /// The TCP port to echo on.
    pub port: UdpPort,
    /// Received bytes holding this make the app panic.
    #[serde(default = "default_panic_mark")]
    pub panic_mark: String,
    /// Received bytes holding this cost `slow_spins`.
    #[serde(default = "default_slow_mark")]
    pub slow_mark: String,
    /// Loop iterations a slow request costs.
    #[serde(default)]
    pub slow_spins: u64,
}

/// `faulty-tcp`: a TCP echo at `tcp:<port>` that fails on marked requests
/// (tests only).
#[derive(Debug)]
pub struct FaultyTcpKind;

impl TcpServiceKind for FaultyTcpKind {
    const NAME: &'static str = "faulty-tcp";
    type Config = FaultyTcpConfig;
    type App = FaultyTcp;

    fn port(config: &FaultyTcpConfig) -> u16 {
        config.port.0
    }

    fn build(config: &FaultyTcpConfig, _context: &BuildContext<'_>) -> FaultyTcp {
        FaultyTcp::new(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp::StreamHarness;

    fn app() -> FaultyTcp {
        FaultyTcp {
            panic_mark: default_panic_mark(),
            slow_mark: default_slow_mark(),
            slow_spins: 3,
        }
    }

    #[test]
    fn echoes_plain_and_slow_requests() {
        let mut app = app();
        let mut stream = StreamHarness::new(64);
        assert_eq!(app.data(&mut (), b"hi SLOW\n", &mut stream.stream()), 8);
        assert_eq!(stream.take_sent(), b"hi SLOW\n");
    }

    #[test]
    #[should_panic(expected = "faulty-tcp: a marked request")]
    fn panics_on_the_mark_anywhere_in_the_data() {
        let mut stream = StreamHarness::new(64);
        app().data(&mut (), b"say PANIC now\n", &mut stream.stream());
    }
}
