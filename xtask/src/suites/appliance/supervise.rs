//! Supervision in the appliance under QEMU: the test-only `faulty-echo`
//! (the test image) panics on marked datagrams; the panic handler goes
//! back to the core's executor through its resume point (bare metal
//! cannot unwind), `udp-echo` keeps answering, and the restarts are
//! counted and spaced by the backoff, as the console's log lines show on
//! the kernel's clock.

use crate::net::devices::Lan;
use crate::qemu::session::QemuSession;
use crate::suites::supervision_checks::{check_counters, check_log, drive, write_spec};
use crate::suites::tcp_supervision_checks as tcp_checks;
use crate::suites::traffic::wait_reachable;
use anyhow::Result;

/// Boots the supervision spec on one core and runs the shared checks
/// (panics only: a slow datagram under TCG would spin for minutes).
pub fn faulty_service_is_contained() -> Result<()> {
    let lan = Lan::create(1, false, Some("10.0.0.1/24"))?;
    let spec = write_spec("virtio", false)?;
    let mut session = QemuSession::boot_appliance(&spec, 1, &lan.netns, &lan.tap_names(), 1)?;
    let result = (|| -> Result<()> {
        wait_reachable(&lan.netns, "10.0.0.2", 20)?;
        drive(&lan.netns, false)?;
        let lines: Vec<String> = session.log().lines().map(str::to_owned).collect();
        check_log(&lines, false)
    })();
    result.map_err(|error| error.context(format!("console:\n{}", session.log())))?;
    let counters = session.counters()?;
    check_counters(&counters, false)
}

/// Boots the TCP supervision spec on one core: `faulty-tcp` panics inside
/// the `tcp` node; the node's own resume point (nested in the executor's)
/// takes the panic back, the app's connection is reset, `http` and the
/// management plane keep answering, and the app is rebuilt with backoff
/// (panics only, as above).
pub fn faulty_tcp_app_is_contained() -> Result<()> {
    let lan = Lan::create(1, false, Some("10.0.0.1/24"))?;
    let spec = tcp_checks::write_spec("virtio", false)?;
    let mut session = QemuSession::boot_appliance(&spec, 1, &lan.netns, &lan.tap_names(), 1)?;
    let result = (|| -> Result<tcp_checks::Seen> {
        wait_reachable(&lan.netns, "10.0.0.2", 20)?;
        let seen = tcp_checks::drive(&lan.netns, false)?;
        tcp_checks::check_management(&lan.netns, false)?;
        let lines: Vec<String> = session.log().lines().map(str::to_owned).collect();
        tcp_checks::check_log(&lines, false)?;
        Ok(seen)
    })();
    let seen = result.map_err(|error| error.context(format!("console:\n{}", session.log())))?;
    let counters = session.counters()?;
    tcp_checks::check_counters(&counters, false, &seen)
}
