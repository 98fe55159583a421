//! Keep-alive HTTP clients in Python, for the checks that hold
//! connections open across a change (a spec applied, a backend drained)
//! and ask again on the same connection. One reader of responses and one
//! bounded wait for the test's go-ahead, shared by every such client.

/// Python defining `ask(s, path, host)`: one `GET path` on the connected
/// socket `s`, read to the end of its `Content-Length` body; returns the
/// status line and the body (both `str`), or raises `OSError` when the
/// peer closes first. And `wait_flag(path, seconds)`: returns once the
/// file `path` exists, or exits with "no flag" after `seconds`.
const HELPERS: &str = r#"
import os, socket, sys, time
def ask(s, path, host):
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            raise OSError("closed before a response")
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    length = [int(l.split(b":")[1]) for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0]
    while len(body) < length:
        chunk = s.recv(4096)
        if not chunk:
            raise OSError("closed in the body")
        body += chunk
    return head.split(b"\r\n")[0].decode(), body.decode()
def wait_flag(path, seconds):
    deadline = time.time() + seconds
    while not os.path.exists(path):
        if time.time() > deadline:
            raise SystemExit("no flag")
        time.sleep(0.05)
"#;

/// The Python program `client` with [`HELPERS`] defined before it, for
/// `python3 -c`.
pub fn client(client: &str) -> String {
    format!("{HELPERS}{client}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The helpers against a one-shot local server: status and body of
    /// two requests on one connection, and a peer that closes early.
    #[test]
    fn asks_twice_on_one_connection_and_notices_a_close() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            use std::io::{Read, Write};
            let (mut stream, _) = listener.accept().unwrap();
            let mut request = [0u8; 1024];
            for body in ["first", "second"] {
                let mut seen = Vec::new();
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = stream.read(&mut request).unwrap();
                    assert!(n > 0, "the client closed early");
                    seen.extend_from_slice(&request[..n]);
                }
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                // The header and the body in two writes: the reader
                // must wait for the whole body.
                let (head, tail) = response.split_at(response.len() - 3);
                stream.write_all(head.as_bytes()).unwrap();
                std::thread::sleep(std::time::Duration::from_millis(20));
                stream.write_all(tail.as_bytes()).unwrap();
            }
            let _ = stream.read(&mut request);
        });
        let program = client(&format!(
            "s = socket.create_connection((\"127.0.0.1\", {port}), timeout=10)\n\
             print(ask(s, \"/\", \"a\"))\n\
             print(ask(s, \"/who\", \"a\"))\n\
             try:\n    ask(s, \"/\", \"a\")\nexcept OSError as error:\n    print(error)\n"
        ));
        let output = std::process::Command::new("timeout")
            .args(["-k", "5", "30", "python3", "-c", &program])
            .output()
            .expect("python3 runs");
        server.join().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(
            stdout,
            "('HTTP/1.1 200 OK', 'first')\n('HTTP/1.1 200 OK', 'second')\nclosed before a response\n"
        );
    }
}
