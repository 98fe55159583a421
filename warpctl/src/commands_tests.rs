use super::*;
use crate::fake_server::{FakeServer, response};
use clap::Parser;

/// Runs `args` against `server`; what it printed or its error.
fn run_against(server: &FakeServer, args: &str) -> (Result<(), String>, String, String) {
    let cli = Cli::try_parse_from(
        [
            "warpctl",
            "--server",
            &server.endpoint().to_string(),
            "--token",
            "secret",
        ]
        .into_iter()
        .chain(args.split_whitespace()),
    )
    .unwrap();
    let (mut out, mut notes) = (Vec::new(), Vec::new());
    let result = run_with(&cli, &mut out, &mut notes).map_err(|error| error.to_string());
    (
        result,
        String::from_utf8(out).unwrap(),
        String::from_utf8(notes).unwrap(),
    )
}

#[test]
fn status_json_is_the_servers_text() {
    let body = r#"{"generation":1,"cores":[]}"#;
    let server = FakeServer::start(vec![response("200 OK", &[], body)]);
    let (result, out, _) = run_against(&server, "status -o json");
    assert_eq!((result, out), (Ok(()), format!("{body}\n")));
}

#[test]
fn get_spec_prints_the_toml_and_notes_the_etag() {
    let server = FakeServer::start(vec![
        response(
            "200 OK",
            &[
                ("ETag", "\"0011223344556677\""),
                ("X-Warpcore-Generation", "5"),
            ],
            "[management]\n",
        ),
        response(
            "200 OK",
            &[("ETag", "\"0011223344556677\"")],
            "[management]\n",
        ),
    ]);
    let (result, out, notes) = run_against(&server, "get spec");
    assert_eq!((result, out.as_str()), (Ok(()), "[management]\n"));
    assert_eq!(notes, "# generation 5, ETag \"0011223344556677\"\n");
    let (_, out, _) = run_against(&server, "get spec -o json");
    let document: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(document["spec"], "[management]\n");
    assert_eq!(document["generation"], serde_json::Value::Null);
}

#[test]
fn apply_reads_the_file_and_reports_rejections_by_its_name() {
    let file = std::env::temp_dir().join(format!("warpctl-test-{}.toml", std::process::id()));
    std::fs::write(&file, "[management]\nlisten = \"10.0.0.2\"\n").unwrap();
    let body = r#"{"error":"spec","line":2,"field":"management.listen","message":"expected an address and port"}"#;
    let server = FakeServer::start(vec![response("422 Unprocessable Entity", &[], body)]);
    let (result, out, _) = run_against(&server, &format!("apply -f {} --dry-run", file.display()));
    assert_eq!(
        result,
        Err(format!(
            "{} line 2, field management.listen: expected an address and port",
            file.display()
        ))
    );
    assert!(out.is_empty());
    assert!(server.request().ends_with("listen = \"10.0.0.2\"\n"));
    std::fs::remove_file(&file).unwrap();
    let server = FakeServer::start(Vec::new());
    let (result, _, _) = run_against(&server, "apply -f /nonexistent/spec.toml");
    assert!(
        result
            .unwrap_err()
            .starts_with("cannot read /nonexistent/spec.toml")
    );
}

const FOUND: &str = r#"{"entries":[{"seq":12,"timeMs":4250,"level":"warn","target":"management::app","message":"wrong token from 10.0.0.1:4000 for /api/v1/status"},{"seq":3,"timeMs":17,"level":"info","target":"kernel","message":"core 0 appliance running"}],"next":14}"#;

#[test]
fn logs_prints_a_table_oldest_first_and_sends_the_filters() {
    let server = FakeServer::start(vec![response("200 OK", &[], FOUND)]);
    let (result, out, _) = run_against(&server, "logs -q link+up? --level warn --limit 5");
    assert_eq!(result, Ok(()));
    assert_eq!(
        out,
        "   SEQ    TIME (s)  LEVEL  TARGET                MESSAGE\n\
         \x20    3       0.017  info   kernel                core 0 appliance running\n\
         \x20   12       4.250  warn   management::app       wrong token from 10.0.0.1:4000 for /api/v1/status\n"
    );
    let request = server.request();
    assert!(
        request.starts_with("GET /api/v1/logs?q=link%2Bup%3F&level=warn&limit=5 HTTP/1.1\r\n"),
        "{request}"
    );
    let server = FakeServer::start(vec![response("200 OK", &[], FOUND)]);
    let (_, out, _) = run_against(&server, "logs -o json");
    assert_eq!(out, format!("{FOUND}\n"));
    let empty = r#"{"entries":[],"next":14}"#;
    let server = FakeServer::start(vec![response("200 OK", &[], empty)]);
    let (_, out, _) = run_against(&server, "logs");
    assert_eq!(out, "no log records match\n");
}

#[test]
fn logs_follow_prints_the_stream_from_where_the_search_ended() {
    let server = FakeServer::start(vec![
        response("200 OK", &[], FOUND),
        crate::fake_server::event_stream(&[
            ": warpcore log stream\nretry: 2000\n\n",
            "id: 15\nevent: log\ndata: {\"seq\":15,\"timeMs\":5000,\"level\":\"info\",\"target\":\"management::app\",\"message\":\"spec dry run from 10.0.0.1:4001: valid, 0 change(s)\"}\n\n",
            ": keep-alive\n\nid: 40\nevent: lost\ndata: {\"lost\":25,\"message\":\"25 log records were overwritten before the stream reached them\"}\n\n",
            "id: 41\nevent: log\ndata: {\"seq\":41,\"timeMs\":6000,\"level\":\"error\",\"target\":\"net\",\"message\":\"two\\nlines\"}\n\n",
        ]),
    ]);
    let (result, out, notes) = run_against(&server, "logs -q spec --level info -f");
    // The fake server ends the stream; the appliance never does.
    let error = result.unwrap_err();
    assert!(error.ends_with("ended the log stream"), "{error}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 5, "{out}");
    assert!(lines[3].ends_with("  spec dry run from 10.0.0.1:4001: valid, 0 change(s)"));
    assert!(
        lines[4].ends_with("  net                   two\\nlines"),
        "{}",
        lines[4]
    );
    assert_eq!(
        notes,
        "warpctl: 25 log records were overwritten before the stream reached them\n"
    );
    assert!(
        server
            .request()
            .starts_with("GET /api/v1/logs?q=spec&level=info HTTP/1.1\r\n")
    );
    let stream = server.request();
    assert!(
        stream.starts_with("GET /api/v1/logs/stream?q=spec&level=info&since=14 HTTP/1.1\r\n"),
        "{stream}"
    );
    assert!(stream.contains("Authorization: Bearer secret\r\n"));
}

#[test]
fn logs_follow_json_is_one_record_a_line() {
    let server = FakeServer::start(vec![
        response("200 OK", &[], FOUND),
        crate::fake_server::event_stream(&[
            "id: 15\nevent: log\ndata: {\"seq\":15,\"message\":\"m\"}\n\n",
        ]),
    ]);
    let (_, out, _) = run_against(&server, "logs -f -o json");
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let seqs: Vec<u64> = lines
        .iter()
        .map(|line| line["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [3, 12, 15]);
}

#[test]
fn logs_follow_names_a_refused_stream() {
    let server = FakeServer::start(vec![
        response("200 OK", &[], FOUND),
        response("429 Too Many Requests", &[("Retry-After", "10")], "429\n"),
    ]);
    let (result, _, _) = run_against(&server, "logs -f");
    assert_eq!(
        result,
        Err("too many failed requests: the appliance asks to retry after 10 s".to_string())
    );
}
