//! `PUT`/`DELETE /api/v1/modules/<name>` and `GET /api/v1/modules`
//! through the controller, with real modules (wasm/host's WAT test
//! modules): the module becomes a `wasm` service on the core at its next
//! batch boundary, a second upload replaces it, a malformed one is
//! refused with the engine's reason and changes nothing, a removal takes
//! the node off the core.

use crate::ManagementApp;
use crate::tests::{Client, TOKEN, config, get, parse_responses};
use alloc::boxed::Box;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use control::CoreLinks;
use control::reconcile::{Boards, Controller, channels};
use dataplane::{LoopbackNic, Mempool};
use services::tcp::TcpApp;

const ACL: &str = include_str!("../../wasm/host/tests/modules/acl.wat");
const PASS: &str = include_str!("../../wasm/host/tests/modules/pass.wat");

/// A `PUT` with a binary body.
fn put_bytes(path: &str, token: &str, body: &[u8]) -> Vec<u8> {
    let mut request = alloc::format!(
        "PUT {path} HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {token}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    request
}

fn delete(path: &str, token: &str) -> String {
    alloc::format!("DELETE {path} HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {token}\r\n\r\n")
}

fn one(client: &mut Client, request: &[u8]) -> crate::tests::Response {
    let mut responses = parse_responses(&client.send(request));
    assert_eq!(responses.len(), 1);
    responses.remove(0)
}

fn has_node(executor: &dataplane::Executor, name: &str) -> bool {
    executor
        .counters()
        .nodes
        .iter()
        .any(|node| node.name == name)
}

#[test]
fn modules_are_pushed_replaced_refused_and_removed() {
    let (mut config, _) = config(Some(TOKEN));
    config.registry = control::registry();
    let spec = Arc::new(config.spec.clone());
    let (ends, mut controls) = channels(&spec, 1);
    config.controller = Some(Controller::new(
        Arc::clone(&spec),
        config.spec_text.clone(),
        ends,
        Boards::default(),
    ));
    let nic = Box::new(LoopbackNic::new(spec.interfaces[0].mac, 8));
    let pool = Mempool::with_heap(64, 128).unwrap();
    let mut executor = control::build_core(
        &spec,
        0,
        alloc::vec![(0, nic)],
        pool,
        || 0,
        CoreLinks::new(),
    )
    .unwrap();
    let original = config.spec_text.clone();
    let mut client = Client::new(ManagementApp::new(config), 1 << 16);
    let acl = wat::parse_str(ACL).unwrap();

    // Pushed: a new generation, applied at the core's batch boundary.
    let path = "/api/v1/modules/acl?attach=ipv4:proto:17&config=9+19";
    let response = one(&mut client, &put_bytes(path, TOKEN, &acl));
    assert_eq!(response.status, 202, "{}", response.body);
    assert!(
        response.body.starts_with("{\"generation\":2,"),
        "{}",
        response.body
    );
    executor = controls[0].apply(executor);
    client.app.poll(&mut Vec::new());
    assert!(has_node(&executor, "acl"));
    let spec_text = client.one(&get("/api/v1/spec", Some(TOKEN))).body;
    assert!(spec_text.starts_with(&original), "{spec_text}");
    assert!(spec_text.contains("config = \"9 19\""), "{spec_text}");
    let listed = client.one(&get("/api/v1/modules", Some(TOKEN))).body;
    let size = acl.len();
    assert!(
        listed.starts_with(&alloc::format!(
            "{{\"generation\":2,\"observedGeneration\":2,\"modules\":[{{\"name\":\"acl\",\"size\":{size},\"sha256\":\""
        )),
        "{listed}"
    );
    assert!(listed.contains("\"attach\":\"ipv4:proto:17\""), "{listed}");

    // Malformed: refused with the engine's reason, nothing changes.
    let response = one(
        &mut client,
        &put_bytes("/api/v1/modules/acl", TOKEN, b"\0asm not really"),
    );
    assert_eq!(response.status, 422, "{}", response.body);
    assert!(
        response.body.contains("invalid module"),
        "{}",
        response.body
    );
    assert_eq!(
        client.one(&get("/api/v1/spec", Some(TOKEN))).body,
        spec_text
    );
    assert_eq!(client.app.next_poll_ns(), None, "no change started");

    // Replaced: one service of that name, the new module's.
    let pass = wat::parse_str(PASS).unwrap();
    let response = one(
        &mut client,
        &put_bytes("/api/v1/modules/acl?attach=ipv4:proto:17", TOKEN, &pass),
    );
    assert_eq!(response.status, 202, "{}", response.body);
    executor = controls[0].apply(executor);
    client.app.poll(&mut Vec::new());
    let replaced = client.one(&get("/api/v1/spec", Some(TOKEN))).body;
    assert_eq!(replaced.matches("kind = \"wasm\"").count(), 1, "{replaced}");
    assert!(!replaced.contains("9 19"), "{replaced}");
    assert!(has_node(&executor, "acl"));

    // A module past the 64 KiB of a spec (a 100 KiB custom section) is
    // read whole with the right token.
    let mut large = pass.clone();
    let payload = 100 * 1024;
    let size = payload + 2;
    large.extend_from_slice(&[
        0,
        0x80 | (size & 0x7f) as u8,
        0x80 | ((size >> 7) & 0x7f) as u8,
        (size >> 14) as u8,
        1,
        b'x',
    ]);
    large.resize(large.len() + payload, 0);
    let response = one(
        &mut client,
        &put_bytes(
            "/api/v1/modules/acl?attach=ipv4:proto:17&dryRun=true",
            TOKEN,
            &large,
        ),
    );
    assert_eq!(response.status, 200, "{}", response.body);

    // Bad requests.
    for (request, status) in [
        (put_bytes("/api/v1/modules/ACL", TOKEN, &pass), 400),
        (
            put_bytes("/api/v1/modules/acl?colour=red", TOKEN, &pass),
            400,
        ),
        (put_bytes("/api/v1/modules/acl", TOKEN, b""), 400),
        (put_bytes("/api/v1/modules/acl", "wrong", &pass), 401),
        (put_bytes("/api/v1/modules/acl", "wrong", &large), 401),
        (delete("/api/v1/modules/nope", TOKEN).into_bytes(), 404),
        (get("/api/v1/modules/acl", Some(TOKEN)).into_bytes(), 405),
        (
            put_bytes(
                "/api/v1/modules/big",
                TOKEN,
                &alloc::vec![0; crate::modules::MAX_MODULE_BYTES + 1],
            ),
            413,
        ),
    ] {
        let response = one(&mut client, &request);
        assert_eq!(response.status, status, "{}", response.body);
        client = Client::new(client.app, 1 << 16);
    }

    // Removed: the core lets go of the node, the spec is the original.
    let response = client.one(&delete("/api/v1/modules/acl", TOKEN));
    assert_eq!(response.status, 202, "{}", response.body);
    assert!(
        response.body.starts_with("{\"generation\":4,"),
        "{}",
        response.body
    );
    executor = controls[0].apply(executor);
    client.app.poll(&mut Vec::new());
    assert!(!has_node(&executor, "acl"));
    assert_eq!(client.one(&get("/api/v1/spec", Some(TOKEN))).body, original);
    let listed = client.one(&get("/api/v1/modules", Some(TOKEN))).body;
    assert_eq!(
        listed,
        "{\"generation\":4,\"observedGeneration\":4,\"modules\":[]}"
    );
    assert_eq!(
        client.one(&delete("/api/v1/modules/acl", TOKEN)).status,
        404
    );
}
