//! The host programs the suites run: `warpcore-hosted` with the example
//! services and the test-only kinds, warpctl and loadgen, built by one
//! cargo invocation in the host tests' profile.
//!
//! One invocation, so that the three links run side by side on a 2-core
//! machine instead of one after another, and so that every caller asks
//! cargo for the same feature set (the same artifacts: a second call only
//! checks they are fresh). The host tests' profile (`test-release`:
//! release's optimisation and unwinding, without fat LTO over one codegen
//! unit) because its dependencies are already built by the `host` step;
//! the benchmarks keep building these programs with `release`.

use crate::shell::host::target_dir;
use crate::shell::process::{cargo, run as run_step};
use anyhow::Result;
use std::path::PathBuf;

/// The cargo profile the suites' host programs are built with.
pub const PROFILE: &str = "test-release";

/// The features `warpcore-hosted` is built with for the suites (not
/// `wasmtime`: `hosted/wasm-wasmtime-tap` builds that binary itself).
pub const HOSTED_FEATURES: &str = "example-port-filter,example-tcp-apps,test-services";

/// Where the profile's programs land.
pub fn folder() -> PathBuf {
    target_dir().join(PROFILE)
}

/// Builds the three programs (quick when they are fresh).
pub fn build() -> Result<()> {
    let features: Vec<String> = HOSTED_FEATURES
        .split(',')
        .map(|feature| format!("warpcore-hosted/{feature}"))
        .collect();
    run_step(
        "build warpcore-hosted, warpctl, loadgen",
        cargo()
            .args(["build", "--profile", PROFILE])
            .args(["-p", "warpcore-hosted", "-p", "warpctl", "-p", "loadgen"])
            .args(["--features", &features.join(",")]),
    )
}

/// `warpcore-hosted` with [`HOSTED_FEATURES`], built; its path.
pub fn hosted() -> Result<PathBuf> {
    build()?;
    Ok(folder().join("warpcore-hosted"))
}

/// warpctl, built; its path.
pub fn warpctl() -> Result<PathBuf> {
    build()?;
    Ok(folder().join("warpctl"))
}

/// loadgen, built; its path.
pub fn loadgen() -> Result<PathBuf> {
    build()?;
    Ok(folder().join("loadgen"))
}
