//! warpcore nanoservices: protocol stages and applications, each one small
//! state machine that runs on one core.
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]

pub mod l2fwd;

pub use l2fwd::MacSwap;
