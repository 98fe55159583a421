use super::*;
use crate::fake_server::{FakeServer, response};
use std::net::TcpListener;

fn get(path: &str) -> Request<'_> {
    Request {
        method: Method::Get,
        path,
        headers: vec![("Authorization", "Bearer secret".into())],
        body: None,
    }
}

#[test]
fn a_request_names_host_and_closes_and_a_content_length_body_is_read() {
    let server = FakeServer::start(vec![response(
        "200 OK",
        &[("ETag", "\"0123456789abcdef\"")],
        "hello",
    )]);
    let answer = server.client().send(&get("/api/v1/spec")).unwrap();
    assert_eq!((answer.status, answer.text().as_str()), (200, "hello"));
    assert_eq!(answer.header("etag"), Some("\"0123456789abcdef\""));
    let request = server.request();
    assert!(
        request.starts_with("GET /api/v1/spec HTTP/1.1\r\n"),
        "{request}"
    );
    for line in [
        format!("Host: {}\r\n", server.endpoint().authority),
        "Connection: close\r\n".to_string(),
        "Authorization: Bearer secret\r\n".to_string(),
    ] {
        assert!(request.contains(&line), "no {line:?} in {request:?}");
    }
}

#[test]
fn a_put_sends_its_body_with_its_length() {
    let server = FakeServer::start(vec![response("200 OK", &[], "{}")]);
    let body = b"[[interface]]\nname = \"eth0\"\n";
    server
        .client()
        .send(&Request {
            method: Method::Put,
            path: "/api/v1/spec?dryRun=true",
            headers: Vec::new(),
            body: Some(body),
        })
        .unwrap();
    let request = server.request();
    assert!(request.starts_with("PUT /api/v1/spec?dryRun=true HTTP/1.1\r\n"));
    assert!(request.contains(&format!("Content-Length: {}\r\n", body.len())));
    assert!(request.ends_with("\r\n\r\n[[interface]]\nname = \"eth0\"\n"));
}

#[test]
fn chunked_bodies_are_joined_and_trailers_skipped() {
    let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
        5\r\nhello\r\n7;ext=1\r\n, world\r\nA\r\n, chunked!\r\n0\r\nX-Trailer: 1\r\n\r\n";
    let server = FakeServer::start(vec![chunked.to_vec()]);
    let answer = server.client().send(&get("/metrics")).unwrap();
    assert_eq!(answer.text(), "hello, world, chunked!");
}

#[test]
fn a_body_without_length_runs_to_the_close_and_1xx_is_skipped() {
    let raw = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nup to the end\n";
    let server = FakeServer::start(vec![raw.to_vec()]);
    let answer = server.client().send(&get("/metrics")).unwrap();
    assert_eq!(
        (answer.status, answer.text().as_str()),
        (200, "up to the end\n")
    );
}

#[test]
fn a_base_path_prefixes_every_request() {
    let server = FakeServer::start(vec![response("200 OK", &[], "")]);
    let endpoint =
        Endpoint::parse(&format!("http://{}/box/", server.endpoint().authority)).unwrap();
    Client::new(endpoint, Duration::from_secs(5))
        .send(&get("/metrics"))
        .unwrap();
    assert!(
        server
            .request()
            .starts_with("GET /box/metrics HTTP/1.1\r\n")
    );
}

#[test]
fn malformed_answers_are_named() {
    for (raw, expected) in [
        (
            &b"SSH-2.0-OpenSSH\r\n\r\n"[..],
            "status line `SSH-2.0-OpenSSH`",
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: many\r\n\r\n",
            "Content-Length `many`",
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            "chunk size `zz`",
        ),
        (
            b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
            "header line `no colon here`",
        ),
    ] {
        let server = FakeServer::start(vec![raw.to_vec()]);
        let error = server.client().send(&get("/")).unwrap_err().to_string();
        assert!(error.contains("malformed HTTP response"), "{error}");
        assert!(error.contains(expected), "{error} lacks {expected}");
    }
}

#[test]
fn a_body_cut_short_is_an_error() {
    let server = FakeServer::start(vec![
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort".to_vec(),
    ]);
    let error = server.client().send(&get("/")).unwrap_err();
    assert!(
        error
            .to_string()
            .ends_with("the server closed the connection early"),
        "{error}"
    );
}

#[test]
fn a_refused_connection_names_the_address() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let authority = listener.local_addr().unwrap().to_string();
    drop(listener);
    let endpoint = Endpoint::parse(&authority).unwrap();
    let error = Client::new(endpoint, Duration::from_secs(5))
        .send(&get("/"))
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("cannot reach {authority}: connection refused")
    );
}

#[test]
fn a_server_that_never_answers_times_out() {
    // Connections complete in the backlog, but nobody reads or answers.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let authority = listener.local_addr().unwrap().to_string();
    let endpoint = Endpoint::parse(&authority).unwrap();
    let started = Instant::now();
    let error = Client::new(endpoint, Duration::from_millis(300))
        .send(&get("/"))
        .unwrap_err();
    assert!(matches!(error, HttpError::Timeout { .. }), "{error}");
    assert_eq!(
        error.to_string(),
        format!("{authority} did not answer within 0.3 s (--timeout)")
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    drop(listener);
}
