//! A tiny in-process HTTP server for the client's unit tests: it answers
//! each connection with the next canned response and records the
//! request it read.

use crate::http::{Client, Endpoint};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::mpsc::{self, Receiver};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// A listener on 127.0.0.1 answering one connection per canned response.
pub struct FakeServer {
    address: SocketAddr,
    requests: Receiver<String>,
    thread: Option<JoinHandle<()>>,
}

impl FakeServer {
    /// Serves `responses`, one connection each, in order, then stops.
    pub fn start(responses: Vec<Vec<u8>>) -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the fake server");
        let address = listener.local_addr().expect("the fake server's address");
        let (sender, requests) = mpsc::channel();
        let thread = thread::spawn(move || {
            for response in responses {
                let Ok((mut stream, _)) = listener.accept() else {
                    return;
                };
                stream
                    .set_read_timeout(Some(Duration::from_secs(5)))
                    .expect("a read timeout");
                let request = read_request(&mut BufReader::new(&stream));
                let _ = sender.send(request);
                let _ = stream.write_all(&response);
            }
        });
        FakeServer {
            address,
            requests,
            thread: Some(thread),
        }
    }

    /// The server as an endpoint.
    pub fn endpoint(&self) -> Endpoint {
        Endpoint::parse(&format!("http://{}", self.address)).expect("a valid endpoint")
    }

    /// A client for this server with a short timeout.
    pub fn client(&self) -> Client {
        Client::new(self.endpoint(), Duration::from_secs(5))
    }

    /// The next request the server read: head and body as text.
    pub fn request(&self) -> String {
        self.requests
            .recv_timeout(Duration::from_secs(5))
            .expect("the fake server read a request")
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        // Only join a server that has answered everything: one still
        // waiting for a connection would block the test.
        if let Some(thread) = self.thread.take()
            && thread.is_finished()
        {
            let _ = thread.join();
        }
    }
}

/// Reads a request's head and its Content-Length body.
fn read_request(reader: &mut impl BufRead) -> String {
    let mut head = String::new();
    let mut length = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return head;
        }
        if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = value.trim().parse().unwrap_or(0);
        }
        head.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    let mut body = vec![0; length];
    let _ = reader.read_exact(&mut body);
    head + &String::from_utf8_lossy(&body)
}

/// A response with these headers and a Content-Length body.
pub fn response(status_line: &str, headers: &[(&str, &str)], body: &str) -> Vec<u8> {
    let mut text = format!("HTTP/1.1 {status_line}\r\n");
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    ));
    text.into_bytes()
}

/// A `text/event-stream` response whose body is `parts`, one chunk each,
/// then the last chunk (the server ends the stream).
pub fn event_stream(parts: &[&str]) -> Vec<u8> {
    let mut text = String::from(
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n",
    );
    for part in parts {
        text.push_str(&format!("{:x}\r\n{part}\r\n", part.len()));
    }
    text.push_str("0\r\n\r\n");
    text.into_bytes()
}
