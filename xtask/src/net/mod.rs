//! Network helpers for the tests and the benchmark harness: namespaces,
//! devices, raw frames and a UDP client run inside a namespace.

pub mod devices;
pub mod netns;
pub mod raw_frames;
pub mod udp_client;
