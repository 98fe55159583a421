//! The appliance: the spec, the NICs and one executor per core, and its counters.

pub mod counters_dump;
pub mod executor;
pub mod igb_setup;
pub mod modules;
pub mod setup;
