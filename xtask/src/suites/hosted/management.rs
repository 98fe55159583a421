//! Hosted management-plane test: `examples/management.toml` (its test
//! copy) on a tap and the shared management checks against it.

use crate::suites::hosted::process::{EchoSetup, Link};
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
            "reconcile without restart: zero loss under loadgen while a service is added and removed, an HTTP keep-alive connection kept, a route for the next ping, a bad change rolled back with the reason, [tcp] refused 409, generations and counters",
            reconcile as Scenario,
        ),
    ]
}

fn reconcile(binary: &Path) -> Result<()> {
    let spec = test_spec()?;
    let setup = EchoSetup::with_spec(binary, Link::Tap, 1, &spec.to_string_lossy())?;
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
