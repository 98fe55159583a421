//! Hosted management-plane tests: `examples/management.toml` (its test
//! copy) on a tap and the shared management checks against it; the same
//! spec on two cores and a multi-queue tap, every management connection
//! answered whichever core the tap steers it to.

use crate::suites::hosted::process::{EchoSetup, Link};
use crate::suites::management_cores::every_connection_answered;
use crate::suites::management_traffic::{management_checks, test_spec};
use crate::suites::reconcile::reconcile_checks;
use crate::suites::runner::Case;
use crate::suites::traffic::ping_no_loss;
use anyhow::Result;
use std::path::Path;

/// One scenario: given the appliance binary, passes or says why not.
type Scenario = fn(&Path) -> Result<()>;

/// The hosted management scenarios.
pub fn cases() -> Vec<Case<Scenario>> {
    vec![
        Case::new(
            "management-tap",
            "management API: promtool on /metrics, counters move by the traffic sent, auth, 412/422/202, dry run, status; pcap capture by curl and warpctl read by tshark, 400/401/409; 400/431/413/414, 1000 connections, slowloris, UDP echo meanwhile",
            management as Scenario,
        ),
        Case::new(
            "reconcile-tap",
            "reconcile without restart on two cores (the management connections steered to core 1 handed over to core 0, before and after each change): zero loss under loadgen while a service is added and removed, an HTTP keep-alive connection kept, a route for the next ping, a bad change rolled back with the reason, [tcp] refused 409, generations and counters",
            reconcile as Scenario,
        ),
        Case::new(
            "management-two-cores-tap",
            "two cores, multi-queue tap: 32 management connections from distinct source ports all answered (/metrics, /api/v1/status), those steered to core 1 handed over to core 0",
            two_cores,
        ),
    ]
}

fn reconcile(binary: &Path) -> Result<()> {
    let spec = test_spec()?;
    let setup = EchoSetup::with_spec(binary, Link::Tap, 2, &spec.to_string_lossy())?;
    ping_no_loss(&setup.attachment.client, &["-c", "1", "10.0.0.2"])?;
    reconcile_checks(&setup.attachment.client, &setup.attachment.client_ifname)?;
    setup.appliance.stop()?;
    Ok(())
}

fn management(binary: &Path) -> Result<()> {
    let spec = test_spec()?;
    let setup = EchoSetup::with_spec(binary, Link::Tap, 1, &spec.to_string_lossy())?;
    ping_no_loss(&setup.attachment.client, &["-c", "1", "10.0.0.2"])?;
    management_checks(&setup.attachment.client)?;
    setup.appliance.stop()?;
    Ok(())
}

/// The management spec on two cores over a multi-queue tap: the tap
/// steers about half the connections to core 1, which hands them over.
fn two_cores(binary: &Path) -> Result<()> {
    let spec = test_spec()?;
    let setup = EchoSetup::with_spec(binary, Link::Tap, 2, &spec.to_string_lossy())?;
    ping_no_loss(&setup.attachment.client, &["-c", "1", "10.0.0.2"])?;
    every_connection_answered(&setup.attachment.client, 2)?;
    setup.appliance.stop()?;
    Ok(())
}
