//! warpcore's control plane, the same on bare metal and hosted: the spec
//! (what should run, read from TOML) and the graph of nanoservices each
//! core runs for it, assembled from the service registry's kinds at their
//! hook points.
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]

extern crate alloc;

pub mod pipeline;
pub mod spec;

pub use pipeline::{PipelineError, build_core};
pub use spec::{Spec, SpecError};
