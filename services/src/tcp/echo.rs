//! `tcp-echo`: sends every byte back (RFC 862 over TCP), the smallest TCP
//! app and the one the stack's loss and transfer tests drive.

use super::app::{Stream, TcpApp};
use crate::registry::{BuildContext, TcpServiceKind, UdpPort};
use core::net::SocketAddrV4;
use serde::Deserialize;

/// The echo app: no state per connection.
#[derive(Debug, Default)]
pub struct TcpEcho;

impl TcpApp for TcpEcho {
    type Session = ();

    fn accept(&mut self, _peer: SocketAddrV4, _io: &mut Stream<'_>) -> Option<()> {
        Some(())
    }

    fn data(&mut self, _session: &mut (), data: &[u8], io: &mut Stream<'_>) -> usize {
        let written = io.write(data);
        if written < data.len() {
            // The rest stays with the stack and comes back once the peer
            // has acknowledged enough to make room.
            io.want_writable();
        }
        written
    }
}

/// `tcp-echo`'s table: `port = 7`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TcpEchoConfig {
    /// The TCP port to echo on.
    pub port: UdpPort,
}

/// `tcp-echo`: answers every byte on its port with itself.
#[derive(Debug)]
pub struct TcpEchoKind;

impl TcpServiceKind for TcpEchoKind {
    const NAME: &'static str = "tcp-echo";
    type Config = TcpEchoConfig;
    type App = TcpEcho;

    fn port(config: &TcpEchoConfig) -> u16 {
        config.port.0
    }

    fn build(_config: &TcpEchoConfig, _context: &BuildContext<'_>) -> TcpEcho {
        TcpEcho
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp::StreamHarness;

    #[test]
    fn echoes_what_fits_and_asks_to_be_called_back() {
        let mut echo = TcpEcho;
        let mut stream = StreamHarness::new(4);
        let consumed = echo.data(&mut (), b"hello", &mut stream.stream());
        assert_eq!(consumed, 4);
        assert!(stream.requests.want_writable);
        assert_eq!(stream.take_sent(), b"hell");
    }
}
