//! Helpers shared by warpcore's criterion benchmarks and the callgrind
//! counters: thread pinning, test frames, the reflecting NICs, the HTTP
//! clients and the pipelines under test, with the smoltcp peer beside them,
//! the cross-thread ring workloads, and the ACL native and as Wasm.
#![forbid(unsafe_code)]

pub mod cpu;
pub mod driver_loop;
pub mod frames;
pub mod http_clients;
pub mod kv_shards;
pub mod pipelines;
pub mod reflector;
pub mod request_counter;
pub mod ring_workloads;
pub mod smoltcp_echo;
pub mod wasm_acl;

pub use cpu::pin_to_cpu;
pub use frames::ethernet_frame;
