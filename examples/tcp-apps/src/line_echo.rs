//! `line-echo`: sends each whole line back as soon as its newline
//! arrives; `quit` closes the connection.

use crate::PortConfig;
use core::net::SocketAddrV4;
use services::registry::{BuildContext, TcpServiceKind};
use services::tcp::{Stream, TcpApp};

/// The app: no state per connection.
#[derive(Debug)]
pub struct LineEcho;

impl TcpApp for LineEcho {
    type Session = ();

    fn accept(&mut self, _peer: SocketAddrV4, _io: &mut Stream<'_>) -> Option<()> {
        Some(())
    }

    /// Echoes every whole line; the unfinished last one waits for more.
    fn data(&mut self, _: &mut (), data: &[u8], io: &mut Stream<'_>) -> usize {
        let mut consumed = 0;
        while let Some(newline) = data[consumed..].iter().position(|b| *b == b'\n') {
            let line = &data[consumed..consumed + newline + 1];
            if line.trim_ascii() == b"quit" {
                io.close();
                return data.len();
            }
            if io.send_capacity() < line.len() {
                io.want_writable();
                break;
            }
            io.write(line);
            consumed += line.len();
        }
        consumed
    }
}

/// `kind = "line-echo"`.
#[derive(Debug)]
pub struct LineEchoKind;

impl TcpServiceKind for LineEchoKind {
    const NAME: &'static str = "line-echo";
    type Config = PortConfig;
    type App = LineEcho;

    fn port(config: &PortConfig) -> u16 {
        config.port
    }

    fn build(_config: &PortConfig, _context: &BuildContext<'_>) -> LineEcho {
        LineEcho
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use services::tcp::StreamHarness;

    #[test]
    fn echoes_whole_lines_and_closes_on_quit() {
        let mut harness = StreamHarness::new(4096);
        let consumed = LineEcho.data(&mut (), b"one\ntwo\nthr", &mut harness.stream());
        assert_eq!(consumed, 8);
        assert_eq!(harness.take_sent(), b"one\ntwo\n");
        let consumed = LineEcho.data(&mut (), b"three\nquit\r\n", &mut harness.stream());
        assert_eq!(consumed, 12);
        assert_eq!(harness.take_sent(), b"three\n");
        assert!(harness.close_requested());
    }
}
