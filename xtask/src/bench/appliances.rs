//! The datacenter appliances of issue 20 measured against the Linux guest
//! doing the same job under the same QEMU: a stateful firewall
//! (warpcore's `firewall` against nftables with conntrack), a masquerading
//! NAT (`nat` against nftables conntrack + masquerade) and a Maglev load
//! balancer (`lb` against IPVS in NAT mode with the `mh` scheduler).
//!
//! The topology is l3fwd's: two taps in one namespace, loadgen sending
//! UDP from 10.0.1.100 (inside, first tap) through the router at 10.0.1.1
//! and counting what comes out of the second tap (outside, 10.0.2.0/24),
//! one way. Through the NAT the probes come out from 10.0.2.1 with a port
//! of its own, through the load balancer to one of the backends
//! 10.0.2.2-4 port 8000 (loadgen answers ARP for them on the second tap):
//! loadgen recognises them by the probe in their payload. Established
//! flows go round robin over the scenario's `flows`; the new-flow
//! workloads open a new 5-tuple with every probe.
//!
//! On the vhost-user backend the taps are two vhost-user devices that
//! loadgen serves (`--vhost-user`, `--receive-vhost-user`, as l3fwd's in
//! `bench::vhost`), with the same addresses, MACs, specs and guest
//! settings, so QEMU's tap I/O thread is out of the path.

use crate::bench::drive::{loadgen, loadgen_args};
use crate::bench::harness::{Tools, print_appliance_effort};
use crate::bench::systems::{linux_guest, multi_queue_tap, spec_on};
use crate::bench::vhost::{self, Forwarder};
use crate::net::devices::Lan;
use crate::qemu::session::QemuSession;
use crate::spec_file::{self, example};
use anyhow::{Context, Result, bail, ensure};
use loadgen::run::RunResult;
use perf::scenario::{Scenario, System, Workload};
use std::time::Duration;

/// The router's interfaces in `examples/router.toml`, which the
/// firewall, NAT and load balancer examples share.
const ROUTER_MACS: [&str; 2] = ["02:00:00:00:01:01", "02:00:00:00:02:01"];
/// The backends of `examples/lb.toml` (and of the Linux guest's IPVS).
const BACKENDS: [&str; 3] = ["10.0.2.2", "10.0.2.3", "10.0.2.4"];
/// New flows a run opens at most: under every flow table of both systems
/// (warpcore's 65 536 per core, Linux's conntrack at 262 144 and IPVS),
/// so the rate is of flows made, not of a full table's evictions.
const NEW_FLOW_PROBES: u64 = 50_000;
/// Destination ports the NAT's flows spread over: 1 250 new flows each at
/// most, 250 of the 10 000 established ones, well within the masquerade's
/// 10 000 ports per destination (10 000 flows to one destination would
/// take every port, and both systems drop flows when the last few ports
/// take more probing than they allow).
const NAT_DESTINATION_PORTS: u16 = 40;
/// A rule that lets the benchmark's datagrams through the firewall; the
/// Linux guest's ruleset (`perf/peers/nftables-firewall.conf`) has the
/// same rule-5.
const FIREWALL_BENCH_RULE: &str = "[[service.rules]]       # rule-5: the benchmark's datagrams
action = \"allow\"
protocol = \"udp\"
source = \"10.0.1.0/24\"

";

/// Which appliance a workload measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Job {
    Firewall,
    Nat,
    Lb,
}

impl Job {
    /// The job of `workload` and whether each probe opens a new flow.
    fn of(workload: Workload) -> Option<(Job, bool)> {
        Some(match workload {
            Workload::Firewall => (Job::Firewall, false),
            Workload::Nat => (Job::Nat, false),
            Workload::Lb => (Job::Lb, false),
            Workload::FirewallNewFlows => (Job::Firewall, true),
            Workload::NatNewFlows => (Job::Nat, true),
            Workload::LbNewFlows => (Job::Lb, true),
            _ => return None,
        })
    }

    /// The node's name in warpcore's counters, and the Linux guest's mode.
    fn name(self) -> &'static str {
        match self {
            Job::Firewall => "firewall",
            Job::Nat => "nat",
            Job::Lb => "lb",
        }
    }

    /// The Linux guest's `wc.*` settings for this job.
    fn linux_settings(self) -> String {
        format!(
            "wc.mode={} wc.eth0=10.0.1.1/24 wc.eth1=10.0.2.1/24",
            self.name()
        )
    }

    /// The appliance's spec text: the example, with the benchmark's rule
    /// in front of the firewall's default.
    fn spec_text(self) -> Result<String> {
        let file = match self {
            Job::Firewall => "firewall.toml",
            Job::Nat => "nat.toml",
            Job::Lb => "lb.toml",
        };
        let path = example(file);
        let text = std::fs::read_to_string(&path).with_context(|| path.display().to_string())?;
        if self != Job::Firewall {
            return Ok(text);
        }
        let router = "[[service]]\nkind = \"l3fwd\"";
        let at = text
            .rfind(router)
            .context("examples/firewall.toml no longer ends with its l3fwd service")?;
        Ok(format!(
            "{}{FIREWALL_BENCH_RULE}{}",
            &text[..at],
            &text[at..]
        ))
    }
}

/// Measures `scenario` (an appliance workload) on `system`: forwarded
/// probes per second, or new flows per second.
pub fn appliance_run(
    tools: &Tools,
    scenario: &Scenario,
    system: System,
    cores: u32,
) -> Result<(f64, Option<RunResult>)> {
    let Some((job, new_flows)) = Job::of(scenario.workload) else {
        bail!("{:?} is not an appliance workload", scenario.workload);
    };
    let net = Lan::create(2, multi_queue_tap(scenario.nic, cores), None)?;
    let taps = net.tap_names();
    let args = arguments(scenario, job, new_flows, Side::Taps([taps[0], taps[1]]))?;
    let (result, mut session) = match system {
        System::WarpcoreQemu => {
            let spec = spec_file::temporary(
                &format!("bench-{}-{cores}", job.name()),
                &spec_on(&job.spec_text()?, scenario.nic),
            )?;
            let appliance =
                QemuSession::boot_appliance(&spec, cores, &net.netns, &taps, cores as u16);
            let _ = std::fs::remove_file(&spec);
            let appliance = appliance?;
            (loadgen(tools, &net.netns, &args), appliance)
        }
        System::LinuxGuest => {
            let guest = linux_guest(
                tools,
                scenario,
                cores,
                &net.netns,
                &taps,
                &ROUTER_MACS,
                &job.linux_settings(),
            )?;
            (loadgen(tools, &net.netns, &args), guest)
        }
        _ => bail!(
            "{:?} is not measured on {}",
            scenario.workload,
            system.name()
        ),
    };
    // What the system says it did, printed beside the rate: the node's
    // counters, or the guest's nft/IPVS/conntrack counters.
    match system {
        System::WarpcoreQemu => {
            print_appliance_effort(&mut session);
            print_node_counters(&mut session, job);
        }
        _ => print_guest_stats(&mut session),
    }
    let run = result?;
    ensure!(
        run.summary.received > 0,
        "nothing came through the {} ({} sent)",
        job.name(),
        run.summary.sent
    );
    Ok((run.received_pps, Some(run)))
}

/// [`appliance_run`] on the vhost-user backend: loadgen is both of the
/// guest's NICs.
pub fn appliance_run_vhost_user(
    tools: &Tools,
    scenario: &Scenario,
    system: System,
    cores: u32,
) -> Result<(f64, Option<RunResult>)> {
    let Some((job, new_flows)) = Job::of(scenario.workload) else {
        bail!("{:?} is not an appliance workload", scenario.workload);
    };
    let args = arguments(scenario, job, new_flows, Side::VhostUser)?;
    let forwarder = Forwarder {
        // vhost-user devices are virtio-net, the examples' driver.
        spec_text: job.spec_text()?,
        linux_settings: job.linux_settings(),
        name: job.name(),
    };
    let run = vhost::forward(
        tools,
        scenario,
        system,
        cores,
        &forwarder,
        &args,
        |guest| match system {
            System::WarpcoreQemu => print_node_counters(guest, job),
            _ => print_guest_stats(guest),
        },
    )?;
    Ok((run.received_pps, Some(run)))
}

/// Where loadgen meets the appliance.
#[derive(Debug, Clone, Copy)]
enum Side<'a> {
    /// Two taps: loadgen sends on the first and receives on the second.
    Taps([&'a str; 2]),
    /// Two vhost-user devices: `bench::vhost` adds their sockets.
    VhostUser,
}

/// loadgen's arguments: l3fwd's, with the appliance's translation and the
/// flows the workload asks for.
fn arguments(scenario: &Scenario, job: Job, new_flows: bool, side: Side) -> Result<Vec<String>> {
    let mut args = match side {
        Side::Taps([send, _]) => loadgen_args(scenario, send, true),
        // No ARP for the router through the rings: its MAC is known.
        Side::VhostUser => vhost::arguments(scenario, true, ROUTER_MACS[0]),
    };
    let mut set = |flag: &str, value: &str| -> Result<()> {
        let at = args
            .iter()
            .position(|arg| arg == flag)
            .with_context(|| format!("loadgen args lack {flag}"))?;
        args[at + 1] = value.into();
        Ok(())
    };
    set("--source-ip", "10.0.1.100")?;
    set("--destination-ip", "10.0.2.100")?;
    if new_flows {
        set(
            "--count",
            &scenario.max_probes.min(NEW_FLOW_PROBES).to_string(),
        )?;
        let at = args
            .iter()
            .position(|arg| arg == "--flows")
            .context("loadgen args lack --flows")?;
        args.drain(at..at + 2);
        args.push("--new-flow-per-probe".into());
    }
    if let Side::Taps([_, receive]) = side {
        args.extend(["--gateway", "10.0.1.1", "--receive-interface", receive].map(String::from));
    }
    match job {
        Job::Firewall => {}
        Job::Nat => {
            args.extend(["--translated-source", "10.0.2.1"].map(String::from));
            args.extend([
                "--destination-ports".into(),
                NAT_DESTINATION_PORTS.to_string(),
            ]);
        }
        Job::Lb => {
            args.extend(["--port", "80"].map(String::from));
            for backend in BACKENDS {
                args.extend(["--backend", backend].map(String::from));
            }
        }
    }
    Ok(args)
}

/// Prints the appliance node's non-zero counters (one line).
fn print_node_counters(appliance: &mut QemuSession, job: Job) {
    let Ok(counters) = appliance.counters() else {
        eprintln!("xtask: [bench]   appliance: no counters dump");
        return;
    };
    let shown: Vec<String> = counters
        .lines
        .iter()
        .filter(|line| {
            line.value > 0
                && line
                    .labels
                    .iter()
                    .any(|(key, value)| key == "node" && value == job.name())
        })
        .map(|line| {
            let labels: Vec<String> = line
                .labels
                .iter()
                .filter(|(key, _)| key != "node")
                .map(|(key, value)| format!("{key}={value}"))
                .collect();
            format!("core{} {}={}", line.core, labels.join(","), line.value)
        })
        .collect();
    eprintln!(
        "xtask: [bench]   {} counters: {}",
        job.name(),
        shown.join(" ")
    );
}

/// Asks the Linux guest for its counters (a `stats` line on its serial
/// console) and prints them.
fn print_guest_stats(guest: &mut QemuSession) {
    let start = guest.log().len();
    let printed = guest
        .send(b"stats\n")
        .and_then(|()| guest.wait_for("linux-guest stats end", start, Duration::from_secs(30)));
    match printed {
        Ok(end) => {
            let log = guest.log();
            for line in log[start..end].lines() {
                eprintln!("xtask: [bench]   guest: {}", line.trim_end());
            }
        }
        Err(error) => eprintln!(
            "xtask: [bench]   guest: no stats: {}",
            format!("{error:#}").lines().next().unwrap_or("")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use perf::scenario::ScenarioFile;

    fn scenario(workload: &str) -> Scenario {
        ScenarioFile::parse(&format!(
            "[[scenario]]\nname = \"a\"\nworkload = \"{workload}\"\nsystems = [\"linux-guest\"]\nflows = 10000\n"
        ))
        .unwrap()
        .remove(0)
    }

    #[test]
    fn loadgen_is_told_how_each_appliance_translates() {
        let taps = Side::Taps(["t0", "t1"]);
        let nat = arguments(&scenario("nat-new-flows"), Job::Nat, true, taps).unwrap();
        let text = nat.join(" ");
        assert!(text.contains("--translated-source 10.0.2.1"), "{text}");
        assert!(text.contains("--new-flow-per-probe"), "{text}");
        assert!(text.contains("--count 50000"), "{text}");
        assert!(!text.contains("--flows"), "{text}");
        let nat = arguments(&scenario("nat"), Job::Nat, false, taps)
            .unwrap()
            .join(" ");
        assert!(nat.contains("--flows 10000 "), "{nat}");
        assert!(nat.contains("--destination-ports 40"), "{nat}");
        let lb = arguments(&scenario("lb"), Job::Lb, false, taps)
            .unwrap()
            .join(" ");
        assert!(lb.contains("--flows 10000"), "{lb}");
        assert!(lb.contains("--port 80"), "{lb}");
        assert_eq!(lb.matches("--backend").count(), 3, "{lb}");
        assert!(lb.contains("--receive-interface t1"), "{lb}");
        // Over vhost-user the same flags, the router's MAC instead of ARP,
        // and no interface (the rig names the two sockets).
        let lb = arguments(&scenario("lb-new-flows"), Job::Lb, true, Side::VhostUser)
            .unwrap()
            .join(" ");
        assert!(lb.contains("--new-flow-per-probe"), "{lb}");
        assert_eq!(lb.matches("--backend").count(), 3, "{lb}");
        assert!(
            lb.contains(&format!("--destination-mac {}", ROUTER_MACS[0])),
            "{lb}"
        );
        assert!(!lb.contains("--interface"), "{lb}");
        assert!(!lb.contains("--receive-interface"), "{lb}");
    }

    #[test]
    fn the_firewall_spec_lets_the_benchmark_through_before_its_router() {
        let text = Job::Firewall.spec_text().unwrap();
        let rule = text.find("rule-5").unwrap();
        let router = text.rfind("kind = \"l3fwd\"").unwrap();
        assert!(rule < router);
        assert_eq!(Job::of(Workload::LbNewFlows), Some((Job::Lb, true)));
        assert_eq!(Job::of(Workload::UdpEcho), None);
    }
}
