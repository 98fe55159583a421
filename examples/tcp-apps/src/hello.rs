//! `hello`: answers every HTTP request with `hello`, keeping the
//! connection open (HTTP/1.1 keep-alive, pipelining included).

use crate::PortConfig;
use core::net::SocketAddrV4;
use services::registry::{BuildContext, TcpServiceKind};
use services::tcp::{Stream, TcpApp};

/// The response to every request.
const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nhello\n";

/// The app: no state per connection.
#[derive(Debug)]
pub struct Hello;

impl TcpApp for Hello {
    type Session = ();

    fn accept(&mut self, _peer: SocketAddrV4, _io: &mut Stream<'_>) -> Option<()> {
        Some(())
    }

    /// Answers each whole request head (up to a blank line) in the bytes
    /// lent; a partial one stays with the stack until the rest arrives.
    fn data(&mut self, _: &mut (), data: &[u8], io: &mut Stream<'_>) -> usize {
        let mut consumed = 0;
        while let Some(end) = data[consumed..].windows(4).position(|w| w == b"\r\n\r\n") {
            if io.send_capacity() < RESPONSE.len() {
                io.want_writable();
                break;
            }
            io.write(RESPONSE);
            consumed += end + 4;
        }
        consumed
    }
}

/// `kind = "hello"`.
#[derive(Debug)]
pub struct HelloKind;

impl TcpServiceKind for HelloKind {
    const NAME: &'static str = "hello";
    type Config = PortConfig;
    type App = Hello;

    fn port(config: &PortConfig) -> u16 {
        config.port
    }

    fn build(_config: &PortConfig, _context: &BuildContext<'_>) -> Hello {
        Hello
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use services::tcp::StreamHarness;

    #[test]
    fn answers_whole_requests_and_keeps_a_partial_one() {
        let mut harness = StreamHarness::new(4096);
        let requests = b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\n\r\nGET /";
        let consumed = Hello.data(&mut (), requests, &mut harness.stream());
        assert_eq!(consumed, requests.len() - 5);
        assert_eq!(harness.take_sent(), [RESPONSE, RESPONSE].concat());
        assert!(!harness.close_requested());
    }
}
