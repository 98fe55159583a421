//! The one unsafe layer of the dataplane: packet memory and lock-free rings.
#![allow(unsafe_code)]

pub mod burst;
pub mod checked;
pub mod mempool;
pub mod packet;
pub mod region;
pub mod ring;
