//! warpcore nanoservices: protocol stages and applications, each one small
//! state machine that runs on one core.
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]

extern crate alloc;

pub mod l2fwd;
pub mod wire;

pub use l2fwd::MacSwap;
