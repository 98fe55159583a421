//! `attach`: how a platform serves the management plane its spec asks for,
//! in one call between `control::core_links` and the cores' builds.

use crate::{LogRing, ManagementApp, ManagementConfig};
use alloc::boxed::Box;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use control::Spec;
use dataplane::{CaptureBoard, CountersBoard};
use services::registry::{CoreLinks, PlatformListener};
use services::tcp::{Hosted, link_handoff};

/// Serves the spec's `[management]`, if any: one counters board shared by
/// every core (each puts its counters up when it builds), and the
/// management app on the core and port the spec names, in that core's
/// TCP stack beside the spec's services. `links` is every core's links
/// from `control::core_links`; `platform` is `appliance` or `hosted`;
/// `started_ns` the platform clock now (for the uptime); `unix_now_ns`
/// the Unix time now in nanoseconds, where the platform has a wall clock
/// (captured frames are stamped with it; without one they count from the
/// platform clock's start); `logs` the ring the platform's logger appends
/// to. Every core's ports also get a packet-capture tap from one shared
/// capture board (`GET /api/v1/capture`). With several cores, every other
/// core hands the segments for the listen address and port to the
/// management core over a ring (`services::tcp::handoff`): the NIC's
/// steering may send a management connection to any core. Every core
/// also gets its control rings (a `control::reconcile::CoreControl` among
/// its links' shared values, for the platform to take before it builds
/// the core) from the controller the app applies `PUT /api/v1/spec`
/// with; `clock` is the platform clock.
#[expect(clippy::too_many_arguments)]
pub fn attach(
    spec: &Spec,
    spec_text: &str,
    links: &mut [CoreLinks],
    platform: &'static str,
    clock: fn() -> u64,
    started_ns: u64,
    unix_now_ns: Option<u64>,
    logs: &'static LogRing,
) -> Result<(), String> {
    let Some(management) = spec.management else {
        return Ok(());
    };
    if management.core >= links.len() {
        return Err(format!(
            "[management] core {} does not run: the platform runs {} core(s)",
            management.core,
            links.len()
        ));
    }
    let board = Arc::new(CountersBoard::new(links.len()));
    let capture = Arc::new(CaptureBoard::new());
    for core_links in links.iter_mut() {
        core_links.insert_shared(Arc::clone(&board));
        core_links.insert_shared(Arc::clone(&capture));
    }
    let running = Arc::new(spec.clone());
    let (ends, controls) = control::reconcile::channels(&running, links.len());
    for (core_links, control) in links.iter_mut().zip(controls) {
        core_links.insert_shared(control);
    }
    let boards = control::reconcile::Boards {
        counters: Some(Arc::clone(&board)),
        capture: Some(Arc::clone(&capture)),
    };
    let controller =
        control::reconcile::Controller::new(running, spec_text.to_string(), ends, boards);
    let app = ManagementApp::new(ManagementConfig {
        spec_text: spec_text.to_string(),
        spec: spec.clone(),
        board,
        token_sha256: management.token_sha256,
        registry: control::registry(),
        build_info: (env!("CARGO_PKG_VERSION"), platform),
        started_ns: Some(started_ns),
        idle_timeout_ms: management.idle_timeout_ms,
        logs,
        capture,
        unix_offset_ns: unix_now_ns.map_or(0, |unix| unix.saturating_sub(started_ns)),
        controller: Some(controller),
        clock,
    });
    log::info!(
        "management listening on port {} (core {})",
        management.listen.port(),
        management.core
    );
    links[management.core].insert_shared(PlatformListener {
        port: management.listen.port(),
        listener: Box::new(Hosted::new("management", app)),
    });
    for (core, sender, receiver) in link_handoff(links.len(), management.core, management.listen) {
        links[core].insert_shared(sender);
        links[management.core].insert_shared(receiver);
    }
    Ok(())
}
