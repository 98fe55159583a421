//! The network stack per packet: eth → ipv4 → udp → echo answering 64-byte
//! UDP datagrams, warpcore's pipeline (`services::build_core` on the echo
//! spec) against smoltcp's `Interface` with a UDP socket on port 7. Both run
//! over a NIC that turns every reply into the next request, 32 requests per
//! round; see `warpcore_benches::smoltcp_echo` for what differs by design.
#![forbid(unsafe_code)]
// `criterion_group!` generates public functions without docs.
#![allow(missing_docs)]

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use warpcore_benches::pipelines::{ECHO_IN_FLIGHT, udp_echo_executor};
use warpcore_benches::smoltcp_echo::SmoltcpEcho;

fn udp_echo(c: &mut Criterion) {
    let mut group = c.benchmark_group("stack_udp_echo");
    group.throughput(Throughput::Elements(ECHO_IN_FLIGHT as u64));

    let mut executor = udp_echo_executor();
    group.bench_function(BenchmarkId::new("warpcore", ECHO_IN_FLIGHT), |b| {
        b.iter(|| assert_eq!(executor.poll_once(), ECHO_IN_FLIGHT))
    });
    assert_eq!(
        executor.counters().executor_drops(),
        0,
        "the echo loop lost packets"
    );

    let mut smoltcp = SmoltcpEcho::new();
    group.bench_function(BenchmarkId::new("smoltcp", ECHO_IN_FLIGHT), |b| {
        b.iter(|| assert_eq!(smoltcp.round(), ECHO_IN_FLIGHT))
    });
    group.finish();
}

criterion_group!(benches, udp_echo);
criterion_main!(benches);
