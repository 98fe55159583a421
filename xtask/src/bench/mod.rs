//! The benchmark room behind `cargo xtask bench`: criterion runs, callgrind
//! counts, the in-guest synthetic runs, the systems-under-test harness (the
//! data path under a management load among its workloads), the idle
//! systems' cost, the vhost-user backend and the report's place in `perf/RESULTS.md`.

pub mod appliances;
pub mod callgrind;
pub mod criterion;
pub mod drive;
pub mod harness;
pub mod idle;
pub mod management;
pub mod results;
pub mod schedstat;
pub mod synthetic;
pub mod systems;
pub mod tcp;
pub mod vcpu_time;
pub mod veth;
pub mod vhost;
