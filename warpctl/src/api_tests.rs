use super::*;
use crate::fake_server::{FakeServer, response};
use std::time::Duration;

const STATUS: &str = r#"{"generation":2,"observedGeneration":2,"conditions":[{"type":"Ready","status":"True","reason":"Applied","message":"all cores run generation 2"}],"uptimeSeconds":3725,"cores":[{"core":0,"polls":1000,"idlePolls":880,"busyShare":0.12,"services":["ipv4","tcp"]}]}"#;

fn api(server: &FakeServer) -> Api {
    Api::new(server.client(), Some("secret".into()))
}

fn apply_error(answer: Vec<u8>, if_match: Option<&str>) -> String {
    let server = FakeServer::start(vec![answer]);
    api(&server)
        .apply(b"x = 1\n", "spec.toml", false, if_match)
        .unwrap_err()
        .to_string()
}

#[test]
fn status_parses_and_keeps_the_text_as_sent() {
    let server = FakeServer::start(vec![response(
        "200 OK",
        &[("Content-Type", "application/json")],
        STATUS,
    )]);
    let status = api(&server).status().unwrap();
    assert_eq!(status.text, STATUS);
    assert_eq!(status.value["cores"][0]["busyShare"], 0.12);
    let request = server.request();
    assert!(request.starts_with("GET /api/v1/status HTTP/1.1\r\n"));
    assert!(request.contains("Authorization: Bearer secret\r\n"));
}

#[test]
fn the_spec_comes_with_its_etag_and_generation() {
    let server = FakeServer::start(vec![response(
        "200 OK",
        &[
            ("ETag", "\"00112233aabbccdd\""),
            ("X-Warpcore-Generation", "4"),
        ],
        "[[interface]]\n",
    )]);
    let spec = api(&server).spec().unwrap();
    assert_eq!(spec.text, "[[interface]]\n");
    assert_eq!(spec.etag.as_deref(), Some("\"00112233aabbccdd\""));
    assert_eq!(spec.generation, Some(4));
}

#[test]
fn metrics_need_no_token() {
    let server = FakeServer::start(vec![response("200 OK", &[], "# HELP x\nx 1\n")]);
    let scrape = Api::new(server.client(), None).metrics().unwrap();
    assert_eq!(scrape, "# HELP x\nx 1\n");
    assert!(!server.request().contains("Authorization"));
}

#[test]
fn token_endpoints_without_a_token_fail_before_asking() {
    // No server: a request would fail to connect, not say NoToken.
    let endpoint = crate::http::Endpoint::parse("http://127.0.0.1:9").unwrap();
    let api = Api::new(
        Client::new(endpoint, std::time::Duration::from_secs(1)),
        None,
    );
    assert!(matches!(api.status(), Err(ApiError::NoToken)));
    assert!(matches!(api.spec(), Err(ApiError::NoToken)));
    let endpoint = crate::http::Endpoint::parse("http://127.0.0.1:9").unwrap();
    let empty = Api::new(
        Client::new(endpoint, std::time::Duration::from_secs(1)),
        Some(" ".into()),
    );
    assert!(matches!(empty.status(), Err(ApiError::NoToken)));
}

#[test]
fn a_dry_run_asks_for_one_and_sends_if_match() {
    let plan = r#"{"dryRun":true,"valid":true,"generation":3,"changes":["add service http:80"]}"#;
    let server = FakeServer::start(vec![response("200 OK", &[], plan)]);
    let answer = api(&server)
        .apply(b"x = 1\n", "spec.toml", true, Some("\"0011\""))
        .unwrap();
    assert_eq!(answer.value["generation"], 3);
    let request = server.request();
    assert!(request.starts_with("PUT /api/v1/spec?dryRun=true HTTP/1.1\r\n"));
    assert!(request.contains("If-Match: \"0011\"\r\n"));
    assert!(request.ends_with("\r\n\r\nx = 1\n"));
}

#[test]
fn a_refused_token_says_so() {
    let error = apply_error(
        response("401 Unauthorized", &[("WWW-Authenticate", "Bearer")], ""),
        None,
    );
    assert!(
        error.starts_with("the appliance refused the token"),
        "{error}"
    );
}

#[test]
fn an_invalid_spec_names_file_line_and_field() {
    let body = r#"{"error":"spec","line":7,"field":"management.listen","message":"expected an address and port like 10.0.0.2:8080, got \"10.0.0.2\""}"#;
    let error = apply_error(response("422 Unprocessable Entity", &[], body), None);
    assert_eq!(
        error,
        "spec.toml line 7, field management.listen: expected an address and port like 10.0.0.2:8080, got \"10.0.0.2\""
    );
    let without_field = r#"{"error":"spec","line":2,"message":"expected `=`"}"#;
    let error = apply_error(
        response("422 Unprocessable Entity", &[], without_field),
        None,
    );
    assert_eq!(error, "spec.toml line 2: expected `=`");
}

#[test]
fn conflicts_preconditions_limits_and_surprises_are_named() {
    let conflict =
        r#"{"error":"reconcile not available","message":"this appliance cannot apply specs yet"}"#;
    assert_eq!(
        apply_error(response("409 Conflict", &[], conflict), None),
        "the appliance refused: this appliance cannot apply specs yet"
    );
    assert!(
        apply_error(
            response("412 Precondition Failed", &[], ""),
            Some("\"abcd\"")
        )
        .starts_with("the running spec changed since \"abcd\" was read")
    );
    assert_eq!(
        apply_error(
            response("429 Too Many Requests", &[("Retry-After", "30")], ""),
            None
        ),
        "too many failed requests: the appliance asks to retry after 30 s"
    );
    assert_eq!(
        apply_error(response("413 Payload Too Large", &[], ""), None),
        "the spec is larger than the appliance accepts (64 KiB)"
    );
    assert_eq!(
        apply_error(
            response("500 Internal Server Error", &[], "core 1 is gone\n"),
            None
        ),
        "the appliance answered 500: core 1 is gone"
    );
    assert!(
        apply_error(response("200 OK", &[], "<html>"), None)
            .starts_with("/api/v1/spec answered something that is not JSON")
    );
}

#[test]
fn a_spec_over_the_limit_is_refused_before_sending() {
    let endpoint = crate::http::Endpoint::parse("http://127.0.0.1:9").unwrap();
    let api = Api::new(
        Client::new(endpoint, std::time::Duration::from_secs(1)),
        Some("secret".into()),
    );
    let spec = vec![b'#'; MAX_SPEC_BYTES + 1];
    assert!(matches!(
        api.apply(&spec, "big.toml", true, None),
        Err(ApiError::TooLarge)
    ));
}

#[test]
fn a_stream_refused_or_silent_says_why() {
    let server = FakeServer::start(vec![response(
        "401 Unauthorized",
        &[("WWW-Authenticate", "Bearer")],
        "401 Unauthorized: a bearer token is needed\n",
    )]);
    let error = api(&server)
        .follow_logs(&LogQuery::default(), Duration::from_secs(5))
        .unwrap_err();
    assert!(matches!(error, ApiError::Unauthorized), "{error}");

    // A server that sends the head and then nothing, not even a
    // keep-alive, until the client gives up.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let authority = listener.local_addr().unwrap().to_string();
    let (done, wait) = std::sync::mpsc::channel::<()>();
    let silent = std::thread::spawn(move || {
        use std::io::Write;
        let (mut stream, _) = listener.accept().unwrap();
        stream
            .write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            .unwrap();
        let _ = wait.recv_timeout(Duration::from_secs(10));
    });
    let endpoint = crate::http::Endpoint::parse(&authority).unwrap();
    let api = Api::new(
        Client::new(endpoint, Duration::from_secs(5)),
        Some("t".into()),
    );
    let mut stream = api
        .follow_logs(&LogQuery::default(), Duration::from_millis(100))
        .unwrap();
    let error = stream.next_event().unwrap_err().to_string();
    assert_eq!(
        error,
        format!("{authority} sent nothing on the stream, not even a keep-alive, for 0.1 s")
    );
    done.send(()).unwrap();
    silent.join().unwrap();
}

#[test]
fn log_queries_are_percent_encoded() {
    let query = LogQuery {
        text: Some("a b&c=ü".into()),
        level: Some("warn".into()),
        limit: Some(3),
        since: Some(9),
    };
    assert_eq!(
        query.query_string(),
        "?q=a%20b%26c%3D%C3%BC&level=warn&limit=3&since=9"
    );
    assert_eq!(LogQuery::default().query_string(), "");
}
