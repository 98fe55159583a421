//! `PUT /api/v1/spec` through the controller: 202 and a generation, the
//! status while the core switches and after, 409 for a change that needs
//! a restart or comes while another is on its way, the reconcile metrics.

use crate::ManagementApp;
use crate::tests::{Client, SPEC, TOKEN, config, get, put};
use alloc::boxed::Box;
use alloc::string::ToString;
use alloc::sync::Arc;
use alloc::vec::Vec;
use control::CoreLinks;
use control::reconcile::{Boards, Controller, channels};
use dataplane::{LoopbackNic, Mempool};
use services::tcp::TcpApp;

#[test]
fn put_applies_through_the_controller_and_the_status_follows() {
    let (mut config, _) = config(Some(TOKEN));
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
    let executor = control::build_core(
        &spec,
        0,
        alloc::vec![(0, nic)],
        pool,
        || 0,
        CoreLinks::new(),
    )
    .unwrap();
    let app = ManagementApp::new(config);
    let etag = app.etag().to_string();
    let mut client = Client::new(app, 1 << 16);

    let more = alloc::format!("{SPEC}\n[[service]]\nkind = \"udp-echo\"\nport = 9\n");
    let response = client.one(&put("/api/v1/spec", TOKEN, Some(&etag), &more));
    assert_eq!(response.status, 202, "{}", response.body);
    assert_eq!(
        response.body,
        "{\"generation\":2,\"changes\":[{\"action\":\"added\",\"object\":\"service\",\"kind\":\"udp-echo\",\"port\":9}]}"
    );
    let status = client.one(&get("/api/v1/status", Some(TOKEN))).body;
    assert!(
        status.starts_with("{\"generation\":2,\"observedGeneration\":1,"),
        "{status}"
    );
    assert!(
        status.contains("{\"type\":\"Reconciling\",\"status\":\"True\",\"reason\":\"Applying\""),
        "{status}"
    );
    assert_eq!(client.app.next_poll_ns(), Some(0), "the core stays up");
    let response = client.one(&put("/api/v1/spec", TOKEN, None, SPEC));
    assert_eq!(response.status, 409);
    assert!(
        response
            .body
            .contains("generation 2 is still being applied")
    );

    // The core takes the new graph at its next batch boundary.
    let executor = controls[0].apply(executor);
    assert_eq!(executor.counters().graph_swaps.get(), 1);
    client.app.poll(&mut Vec::new());
    assert_eq!(client.app.next_poll_ns(), None);
    let status = client.one(&get("/api/v1/status", Some(TOKEN))).body;
    assert!(
        status.starts_with("{\"generation\":2,\"observedGeneration\":2,\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\""),
        "{status}"
    );
    let response = client.one(&get("/api/v1/spec", Some(TOKEN)));
    assert_eq!(response.body, more);
    assert_eq!(response.field("X-Warpcore-Generation"), Some("2"));
    assert_ne!(response.field("ETag"), Some(etag.as_str()));

    // A change that needs a restart names its field.
    let tcp = alloc::format!("{more}[tcp]\nmax_connections = 64\n");
    let response = client.one(&put("/api/v1/spec", TOKEN, None, &tcp));
    assert_eq!(response.status, 409);
    assert!(
        response
            .body
            .starts_with("{\"error\":\"restart required\",\"field\":\"tcp\","),
        "{}",
        response.body
    );

    let metrics = client.one(&get("/metrics", None)).body;
    for line in [
        "warpcore_spec_generation 2",
        "warpcore_spec_observed_generation 2",
        "warpcore_reconciles_total{result=\"applied\"} 1",
        "warpcore_reconciles_total{result=\"refused\"} 2",
        "warpcore_reconcile_failures_total{reason=\"build\"} 0",
    ] {
        assert!(metrics.lines().any(|got| got == line), "{line}");
    }
}
