//! warpcore-hosted idle: two workers that sleep in `poll(2)` with no
//! timeout while nothing is due (few timer wake-ups in a quiet window), kv
//! requests handed across workers waking the sleeping one through its
//! eventfd, and `idle = "poll"` keeping a worker awake.

use crate::spec_file::{self, example};
use crate::suites::hosted::process::{EchoSetup, Link};
use crate::suites::idle_checks::{
    kv_wakes_the_other_core, polling_cores_never_sleep, quiet_window,
};
use crate::suites::runner::Case;
use crate::suites::traffic::{ping_no_loss, udp_echo};
use anyhow::Result;
use std::path::Path;

/// One idle scenario: given the appliance binary, passes or says why not.
type Scenario = fn(&Path) -> Result<()>;

/// The hosted idle scenarios.
pub fn cases() -> Vec<Case<Scenario>> {
    vec![
        Case::new(
            "idle-two-cores-tap",
            "two idle workers: few timer wake-ups in 3 s, kv requests wake the sleeping worker",
            two_idle_cores as Scenario,
        ),
        Case::new(
            "idle-poll-tap",
            "idle = \"poll\": the worker never sleeps",
            polling_core,
        ),
    ]
}

/// examples/tcp.toml on two workers: quiet, then kv across them.
fn two_idle_cores(binary: &Path) -> Result<()> {
    let setup = EchoSetup::with_spec(binary, Link::Tap, 2, "examples/tcp.toml")?;
    let client = &setup.attachment.client;
    ping_no_loss(client, &["-c", "1", "10.0.0.2"])?;
    udp_echo(client, "10.0.0.2", 16, 5)?;
    let appliance = &setup.appliance;
    let mut read = || appliance.counters();
    quiet_window(&mut read, 2, ("idle", "wakeups_by_timer"), "hosted")?;
    kv_wakes_the_other_core(client, &mut read, "hosted")?;
    setup.appliance.stop()?;
    Ok(())
}

/// examples/echo.toml with `idle = "poll"` on one worker.
fn polling_core(binary: &Path) -> Result<()> {
    let text = std::fs::read_to_string(example("echo.toml"))?;
    let spec = spec_file::temporary("hosted-idle-poll", &format!("idle = \"poll\"\n{text}"))?;
    let setup = EchoSetup::with_spec(binary, Link::Tap, 1, &spec.to_string_lossy());
    let _ = std::fs::remove_file(&spec);
    let setup = setup?;
    let client = &setup.attachment.client;
    udp_echo(client, "10.0.0.2", 1, 20)?;
    let appliance = &setup.appliance;
    polling_cores_never_sleep(&mut || appliance.counters(), 1, "hosted")?;
    setup.appliance.stop()?;
    Ok(())
}
