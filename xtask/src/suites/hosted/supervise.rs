//! Hosted supervision test: `faulty-echo` panics on marked datagrams and
//! overruns its budget on a slow one; the shared checks of
//! `supervision_checks` hold (other services answer, restarts counted and
//! spaced by the backoff, answers again afterwards); and `faulty-tcp`, a
//! TCP app beside `http` and the management plane in the same `tcp` node,
//! the same way (`tcp_supervision_checks`).

use crate::suites::hosted::process::{EchoSetup, Link};
use crate::suites::runner::Case;
use crate::suites::supervision_checks::{check_counters, check_log, drive, write_spec};
use crate::suites::tcp_supervision_checks as tcp_checks;
use anyhow::Result;
use std::path::Path;

/// One scenario: given the appliance binary, passes or says why not.
type Scenario = fn(&Path) -> Result<()>;

/// The hosted supervision scenarios.
pub fn cases() -> Vec<Case<Scenario>> {
    vec![
        Case::new(
            "supervise-tap",
            "a panicking and an overrunning service contained and restarted with backoff, udp-echo answering meanwhile",
            supervise as Scenario,
        ),
        Case::new(
            "supervise-tcp-tap",
            "a panicking and an overrunning TCP app contained inside the tcp node (connection reset, port refused \
             while down) and rebuilt with backoff, http and management on the same core answering meanwhile",
            supervise_tcp as Scenario,
        ),
    ]
}

fn supervise_tcp(binary: &Path) -> Result<()> {
    let spec = tcp_checks::write_spec("tap", true)?;
    let setup = EchoSetup::with_spec(binary, Link::Tap, 1, &spec.to_string_lossy())?;
    let client = &setup.attachment.client;
    let seen = tcp_checks::drive(client, true)?;
    tcp_checks::check_management(client, true)?;
    let lines = setup.appliance.lines_so_far();
    tcp_checks::check_log(&lines, true)?;
    let counters = setup.appliance.stop()?;
    tcp_checks::check_counters(&counters, true, &seen)
}

fn supervise(binary: &Path) -> Result<()> {
    let spec = write_spec("tap", true)?;
    let setup = EchoSetup::with_spec(binary, Link::Tap, 1, &spec.to_string_lossy())?;
    drive(&setup.attachment.client, true)?;
    let lines = setup.appliance.lines_so_far();
    check_log(&lines, true)?;
    let counters = setup.appliance.stop()?;
    check_counters(&counters, true)
}
