//! ns per packet of the 8-rule UDP port ACL in front of the echo core:
//! none, native (`port-filter`), and as a Wasm module on wasmi and (with
//! the `wasmtime` feature) wasmtime, in the same run
//! (`warpcore_benches::wasm_acl`; callgrind's instruction counts of the
//! same cores are `count-wasm`'s). `cargo bench -p warpcore-benches
//! --features wasmtime --bench wasm`.
#![forbid(unsafe_code)]
// `criterion_group!` generates public functions without docs.
#![allow(missing_docs)]

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use dataplane::BURST_SIZE;
use warpcore_benches::wasm_acl::{VARIANTS, acl_core, dropped, spec};

fn acl(c: &mut Criterion) {
    let mut group = c.benchmark_group("wasm_acl");
    group.throughput(Throughput::Elements(BURST_SIZE as u64));
    for variant in VARIANTS {
        let spec = match spec(variant, 128) {
            Ok(spec) => spec,
            Err(why) => {
                // wasmtime without the feature: said, not counted.
                eprintln!("wasm_acl/{variant}: skipped: {why}");
                continue;
            }
        };
        let mut executor = acl_core(&spec);
        group.bench_function(BenchmarkId::new(variant, BURST_SIZE), |b| {
            b.iter(|| assert_eq!(executor.poll_once(), BURST_SIZE))
        });
        assert_eq!(
            dropped(&executor),
            0,
            "{variant}: the ACL loop lost packets"
        );
    }
    group.finish();
}

criterion_group!(benches, acl);
criterion_main!(benches);
