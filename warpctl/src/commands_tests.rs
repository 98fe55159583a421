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
