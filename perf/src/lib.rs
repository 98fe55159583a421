//! warpcore's benchmark harness, the parts that are plain data: scenario
//! files, measurements and their medians, and the report (JSON, CSV, SVG
//! plots and a summary table with ratios to each peer). `cargo xtask bench`
//! drives the systems under test and feeds this crate.
//!
//! The crate also builds `tcp-load`, the HTTP and memcached client of the
//! TCP workloads (fixed-rate latency, memcached get/set). `udp-echo-server`,
//! the recvmmsg/sendmmsg echo that serves as the Linux host kernel's peer
//! and, statically linked, runs inside the Linux guest, is a crate of its
//! own (`perf/udp-echo-server`), so that its static build needs none of
//! this crate's dependencies.
#![deny(unsafe_code)]

pub mod plots;
pub mod report;
pub mod results;
pub mod scenario;
