//! Network helpers for the tests and the benchmark harness: namespaces,
//! devices, raw frames, a SYN flood, a reordering relay, UDP and TCP
//! clients and keep-alive HTTP clients run inside a namespace.

pub mod bridged;
pub mod devices;
pub mod http_client;
pub mod keep_alive;
pub mod netns;
pub mod nft;
pub mod raw_frames;
pub mod reorder_relay;
pub mod syn_flood;
pub mod tcp_client;
pub mod udp_client;
