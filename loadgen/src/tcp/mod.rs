//! A TCP request/response client over a [`FramePort`](crate::port::FramePort):
//! smoltcp's TCP on loadgen's own frames, so that HTTP keep-alive and
//! memcached loads run through the vhost-user backend (no tap, no host
//! kernel TCP, no client threads) as the UDP probes do.

pub mod client;
pub mod device;
pub mod protocol;
