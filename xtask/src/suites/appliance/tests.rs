//! The appliance under QEMU answering real traffic: every test creates its own
//! network namespaces and tap devices (torn down by guards, also on failure),
//! boots the kernel with a spec, and drives it with `arping`, `ping` and the
//! `__udp-client` helper run inside the namespace. Every traffic loop is bounded
//! in count and time. Counters come from the kernel's serial dump
//! (`kernel/src/counters_dump.rs`).

use crate::counters::Counters;
use crate::net::devices::{Lan, Tap, Veth};
use crate::net::netns::{Netns, ensure_net_tools, unique_name};
use crate::qemu::command_line::QemuConfig;
use crate::qemu::image::ensure_qemu;
use crate::qemu::scenario::{exit_status, run_scenario};
use crate::qemu::session::QemuSession;
use crate::shell::host::{ensure_programs, is_root};
use crate::spec_file::{self, example};
use crate::suites::management_cores::{every_connection_answered, management_table};
use crate::suites::runner::{self, Case, Filter};
use crate::suites::tcp_traffic::{self, event, tcp_echo};
use crate::suites::traffic::{
    arping_answers, fragmented_traffic, ping_no_loss, udp_closed, udp_dropped, udp_echo,
    unfinished_datagrams_are_bounded, wait_reachable,
};
use anyhow::{Context, Result, bail, ensure};
use std::time::Duration;

/// The suite's name in `--only` and in its summary line.
const SUITE: &str = "appliance";

/// One appliance test.
type Test = fn() -> Result<()>;

/// Every appliance test.
fn cases() -> Vec<Case<Test>> {
    vec![
        Case::new(
            "invalid-spec",
            "an invalid spec is refused naming the field",
            invalid_spec_is_refused as Test,
        ),
        Case::new(
            "echo",
            "arping, ping, ping -s 1472, udp echo, closed port",
            echo_answers,
        ),
        Case::new(
            "igb-echo",
            "echo-igb.toml on QEMU's 82576 (-device igb): arping, ping, ping -s 1472, udp echo, \
             closed port; the queue's and the device's counters agree with the traffic",
            igb_echo_answers,
        ),
        Case::new(
            "igb-rss",
            "two cores, echo-igb.toml with queues = 2: RSS with our Toeplitz key, 24 UDP \
             flows each echoed by exactly the core the hash predicts, both cores served; \
             idle cores take no tick and wake by packet (MSI-X per queue)",
            crate::suites::appliance::igb_rss::rss_lands_each_flow_on_its_predicted_core,
        ),
        Case::new(
            "fragments",
            "ping -s 65507, 4000-byte UDP echo, 1000 unfinished datagrams",
            fragments,
        ),
        Case::new(
            "example-service",
            "the example port-filter service: port 7 echoed, port 9 dropped and counted",
            example_service_filters,
        ),
        Case::new(
            "wasm-acl",
            "a Wasm ACL module (acl.wat, bundled after the spec in the boot module) in front of \
             the UDP stage: port 7 echoed, port 9 dropped and counted per rule",
            wasm_acl_filters,
        ),
        Case::new(
            "router",
            "two namespaces ping through, ttl decremented; an lb service in front of l3fwd \
             spreads curl to its VIP over two http.server backends (NAT mode, the backends \
             see the client); warpctl apply takes one out live: keep-alive connections to \
             the other answered again on the same connection, the removed one's moved",
            router_forwards,
        ),
        Case::new(
            "nat",
            "nat.toml between two namespaces: ping, curl and a closed UDP port through the \
             masquerade (the outside sees 10.0.2.1 and has no route inside), the forwarded \
             port to an inside server, an unmapped port dropped and counted",
            nat_translates,
        ),
        Case::new(
            "igb-router",
            "router.toml with both interfaces on igb: two namespaces ping through, ttl decremented",
            igb_router_forwards,
        ),
        Case::new(
            "multi-queue",
            "two cores, tcp.toml: UDP flows and 16 TCP connections on both cores, \
             none on the wrong core; 32 management connections all answered, those \
             steered to core 1 handed over to core 0",
            multi_queue_spreads_flows,
        ),
        Case::new(
            "malformed",
            "every bad frame bumps exactly its drop counter, then ping and udp echo",
            crate::suites::appliance::malformed::malformed_frames_are_counted,
        ),
        Case::new(
            "igb-malformed",
            "malformed over igb: every bad frame bumps exactly its drop counter, then ping and \
             udp echo",
            crate::suites::appliance::malformed::malformed_frames_are_counted_on_igb,
        ),
        Case::new(
            "management",
            "management API in QEMU: promtool on /metrics, counters move, auth, 412/422/202, \
             dry run, status; pcap capture by curl and warpctl read by tshark, 400/401/409; \
             400/431/413/414, 1000 connections, slowloris, UDP echo meanwhile",
            crate::suites::appliance::tcp::management_checks_in_qemu,
        ),
        Case::new(
            "reconcile",
            "specs applied without a reboot in QEMU: zero loss under loadgen while a service is \
             added and removed, a keep-alive connection kept, a route for the next ping, a bad \
             change rolled back with the reason (warpctl apply --wait), [tcp] refused 409",
            crate::suites::appliance::tcp::reconcile_checks_in_qemu,
        ),
        Case::new(
            "wasm-hot-load",
            "Wasm hot loading in QEMU, one boot (warpctl module push/rm/ls, the bytes in memory, \
             no boot bundle): the example modules built and pushed, checked on the wire and in \
             their counters, removed with the previous path back; a malformed push refused with \
             the reason; a loop stopped by fuel; a trap quarantined and rebuilt; loadgen on port \
             7 loses nothing",
            crate::suites::appliance::tcp::hot_load_checks_in_qemu,
        ),
        Case::new(
            "tcp",
            "tcp-echo: echo and 10 MB, 10 MB under 5 % loss, closed port, malformed segments, \
             20 000-SYN flood",
            crate::suites::appliance::tcp::tcp_checks,
        ),
        Case::new(
            "tcp-proxy",
            "two cores, tcp-proxy.toml: curl and wrk through the proxy to python http.server, \
             4 MiB by sha256, a refused backend, both cores dialling, strays passed",
            crate::suites::appliance::tcp::proxy_checks_in_qemu,
        ),
        Case::new(
            "igb-tcp-proxy",
            "tcp-proxy over igb on two cores: curl and wrk through the proxy, both cores \
             dialling from ports whose answers our RSS hashes back to them: no segment strays",
            crate::suites::appliance::tcp::proxy_checks_on_igb,
        ),
        Case::new(
            "idle",
            "two idle cores: few timer interrupts in 3 s, a TCP app timer fires on an idle core, \
             kv requests wake the sleeping shard, wake-ups in /metrics",
            crate::suites::appliance::idle::idle_cores_sleep,
        ),
        Case::new(
            "idle-poll",
            "idle = \"poll\": the core never sleeps",
            crate::suites::appliance::idle::polling_core_never_sleeps,
        ),
        Case::new(
            "idle-haltpoll",
            "idle = \"haltpoll\": back-to-back echoes are caught while the core polls, its \
             window stays within halt_poll_us, and without traffic it sleeps",
            crate::suites::appliance::idle::halt_polling_core_catches_work_and_sleeps_when_idle,
        ),
        Case::new(
            "supervise",
            "faulty-echo panics on marked datagrams: contained through the resume point, \
             restarted with backoff, udp-echo answering meanwhile",
            crate::suites::appliance::supervise::faulty_service_is_contained,
        ),
        Case::new(
            "supervise-tcp",
            "faulty-tcp panics inside the tcp node: contained through a nested resume point, its \
             connection reset, rebuilt with backoff, http and management answering meanwhile",
            crate::suites::appliance::supervise::faulty_tcp_app_is_contained,
        ),
    ]
}

/// The names of the appliance tests, for `--list`.
pub fn names() -> Vec<String> {
    runner::names(SUITE, &cases())
}

/// Runs the appliance tests `filter` selects; fails if any failed.
pub fn run(filter: &Filter) -> Result<()> {
    runner::run(
        SUITE,
        cases(),
        filter,
        || {
            if !is_root() {
                bail!("the appliance tests create network namespaces and taps: run as root");
            }
            ensure_net_tools()?;
            ensure_qemu()
        },
        |(), test| test(),
    )
}

/// An invalid spec is refused with an error naming the field, and a failure exit.
fn invalid_spec_is_refused() -> Result<()> {
    let text =
        std::fs::read_to_string(example("echo.toml"))?.replace("10.0.0.2/24", "10.0.0.300/24");
    let spec = spec_file::temporary("invalid", &text)?;
    let config = QemuConfig {
        spec: Some(spec.clone()),
        ..QemuConfig::default()
    };
    let outcome = run_scenario(&config, Duration::from_secs(60));
    let _ = std::fs::remove_file(&spec);
    let outcome = outcome?;
    ensure!(
        outcome.exit_code == Some(exit_status::FAILURE),
        "expected the failure exit, got {}:\n{}",
        outcome.describe_exit(),
        outcome.serial_log
    );
    let line = outcome
        .serial_log
        .lines()
        .find(|line| line.contains("refusing to start"))
        .context("no `refusing to start` line")?;
    ensure!(
        line.contains("spec error") && line.contains("address"),
        "the refusal does not name the field: {line}"
    );
    eprintln!("xtask: [appliance] {line}");
    Ok(())
}

/// examples/echo.toml: ARP, ping (small and 1472-byte), UDP echo, closed port.
fn echo_answers() -> Result<()> {
    boot_and_drive(&example("echo.toml"), echo_traffic).map(drop)
}

/// Boots `spec` on one core with one NIC on a fresh LAN (the host at
/// 10.0.0.1), waits until the appliance (10.0.0.2) answers, drives it
/// with `traffic` and returns its counters; an error carries the console.
fn boot_and_drive(spec: &std::path::Path, traffic: fn(&Lan) -> Result<()>) -> Result<Counters> {
    let lan = Lan::create(1, false, Some("10.0.0.1/24"))?;
    let mut session = QemuSession::boot_appliance(spec, 1, &lan.netns, &lan.tap_names(), 1)?;
    let result = wait_reachable(&lan.netns, "10.0.0.2", 20).and_then(|()| traffic(&lan));
    result.map_err(|error| error.context(format!("console:\n{}", session.log())))?;
    session.counters()
}

/// The echo tests' traffic: ARP, ping (small and 1472-byte), UDP echo,
/// a closed port.
fn echo_traffic(lan: &Lan) -> Result<()> {
    arping_answers(&lan.netns, lan.tap(), "10.0.0.2")?;
    ping_no_loss(&lan.netns, &["-c", "100", "-i", "0.01", "10.0.0.2"])?;
    ping_no_loss(&lan.netns, &["-c", "5", "-s", "1472", "10.0.0.2"])?;
    udp_echo(&lan.netns, "10.0.0.2", 1, 200)?;
    udp_closed(&lan.netns, "10.0.0.2")
}

/// The filter tests' traffic: port 7 echoed, three datagrams to port 9
/// dropped without an answer, port 7 echoed again.
fn filtered_traffic(lan: &Lan) -> Result<()> {
    udp_echo(&lan.netns, "10.0.0.2", 1, 20)?;
    udp_dropped(&lan.netns, "10.0.0.2", 9, 3)?;
    udp_echo(&lan.netns, "10.0.0.2", 1, 20)
}

/// Checks that the counters matching `labels` sum to `expected`; the
/// error names them by their values (`node/drop`).
fn ensure_counted(counters: &Counters, labels: &[(&str, &str)], expected: u64) -> Result<()> {
    let counted = counters.sum(None, labels);
    let name: Vec<&str> = labels.iter().map(|(_, value)| *value).collect();
    ensure!(
        counted == expected,
        "{} counted {counted}, expected {expected}",
        name.join("/")
    );
    Ok(())
}

/// Frames the igb test sends at least: 100 + 5 pings, 200 datagrams.
const IGB_FRAMES_AT_LEAST: u64 = 305;

/// examples/echo-igb.toml: the echo test's traffic through the igb driver,
/// then its counters: the queue received and sent every frame of it, and
/// the device's statistics registers (`GPRC`, `GPTC`) saw them too.
fn igb_echo_answers() -> Result<()> {
    let counters = boot_and_drive(&example("echo-igb.toml"), echo_traffic)?;
    let stat = |name: &str| counters.sum(None, &[("nic", "igb0.q0"), ("stat", name)]);
    eprintln!(
        "xtask: [appliance] igb0.q0: rx_packets={} tx_packets={} tx_reclaimed={} doorbells={} \
         rx_errors={} device_rx_good_packets={} device_tx_good_packets={} device_rx_missed={}",
        stat("rx_packets"),
        stat("tx_packets"),
        stat("tx_reclaimed"),
        stat("doorbells"),
        stat("rx_errors"),
        stat("device_rx_good_packets"),
        stat("device_tx_good_packets"),
        stat("device_rx_missed"),
    );
    for name in [
        "rx_packets",
        "tx_packets",
        "device_rx_good_packets",
        "device_tx_good_packets",
    ] {
        ensure!(
            stat(name) >= IGB_FRAMES_AT_LEAST,
            "igb0.q0 {name} = {}, expected at least {IGB_FRAMES_AT_LEAST}",
            stat(name)
        );
    }
    ensure!(
        stat("rx_errors") == 0,
        "igb0.q0 rx_errors = {}",
        stat("rx_errors")
    );
    Ok(())
}

/// examples/echo.toml: datagrams bigger than the MTU both ways, then 1000
/// datagrams whose first fragment alone arrives: reassembly memory stays
/// within its slots (all but those are evicted, counted) and the appliance
/// answers after.
fn fragments() -> Result<()> {
    let lan = Lan::create(1, false, Some("10.0.0.1/24"))?;
    let mut session =
        QemuSession::boot_appliance(&example("echo.toml"), 1, &lan.netns, &lan.tap_names(), 1)?;
    let result = (|| -> Result<()> {
        wait_reachable(&lan.netns, "10.0.0.2", 20)?;
        fragmented_traffic(&lan.netns, "10.0.0.2")?;
        let session = std::cell::RefCell::new(&mut session);
        unfinished_datagrams_are_bounded(&lan.netns, lan.tap(), || {
            let counters = session.borrow_mut().counters()?;
            Ok(counters.sum(None, &[("node", "ipv4"), ("drop", "reassembly-evicted")]))
        })
    })();
    result.map_err(|error| error.context(format!("console:\n{}", session.log())))
}

/// The Wasm ACL of wasm/host/tests/modules/acl.wat, compiled to a file
/// beside a spec that names it; xtask bundles it after the spec in the
/// boot module (`spec_file::boot_module`), the kernel finds it there:
/// port 7 is echoed, datagrams to port 9 dropped by the module, counted.
fn wasm_acl_filters() -> Result<()> {
    let dir = std::env::temp_dir().join(format!("warpcore-wasm-appliance-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let acl = wat::parse_str(include_str!("../../../../wasm/host/tests/modules/acl.wat"))?;
    std::fs::write(dir.join("acl.wasm"), acl)?;
    let echo = std::fs::read_to_string(example("port-filter.toml"))?;
    let echo = &echo[..echo
        .find("[[service]]\nkind = \"port-filter\"")
        .context("port-filter.toml's filter")?];
    let spec = dir.join("wasm-acl.toml");
    std::fs::write(
        &spec,
        format!(
            "{echo}[[service]]\nkind = \"wasm\"\nname = \"acl\"\nmodule = \"acl.wasm\"\n\
             attach = \"ipv4:proto:17\"\nconfig = \"9\"\n"
        ),
    )?;
    let outcome = boot_and_drive(&spec, filtered_traffic).and_then(|counters| {
        ensure_counted(
            &counters,
            &[("node", "acl"), ("drop", "dropped-by-module")],
            3,
        )?;
        ensure_counted(&counters, &[("node", "acl"), ("event", "rule-0")], 3)
    });
    let _ = std::fs::remove_dir_all(&dir);
    outcome
}

/// examples/port-filter.toml on the image built with the example services
/// (the service of examples/port-filter, registered from outside the
/// core): port 7 is echoed, datagrams to port 9 are dropped by
/// `port-filter` before the UDP stage (so no ICMP error) and counted.
fn example_service_filters() -> Result<()> {
    let counters = boot_and_drive(&example("port-filter.toml"), filtered_traffic)?;
    ensure_counted(
        &counters,
        &[("node", "port-filter"), ("drop", "blocked")],
        3,
    )?;
    let closed = counters.sum(None, &[("node", "udp"), ("drop", "port-closed")]);
    ensure!(
        closed == 0,
        "udp/port-closed counted {closed}: the filter let a datagram through"
    );
    Ok(())
}

/// examples/router.toml: two namespaces ping each other through the appliance,
/// with the TTL decremented once.
fn router_forwards() -> Result<()> {
    let text = std::fs::read_to_string(example("router.toml"))?;
    let l3fwd = "[[service]]\nkind = \"l3fwd\"";
    ensure!(
        text.contains(l3fwd),
        "router.toml no longer ends with its l3fwd service"
    );
    // The same boot also balances: an lb in front of l3fwd (spec order at
    // ipv4:forward), its VIP on the right subnet, two backends there; the
    // management API on the left changes its backends live.
    let spec = spec_file::temporary("router-lb", &router_lb_spec(&text, ROUTER_BACKENDS))?;
    let result = router_forwards_with(&spec, true);
    let _ = std::fs::remove_file(&spec);
    result
}

/// The backends of the router case's lb, as `spec` names them (same
/// address, two ports).
const ROUTER_BACKENDS: &[&str] = &["10.0.2.2:8001", "10.0.2.2:8002"];

/// examples/router.toml (`text`) with an lb service over `backends` in
/// front of its l3fwd and the management API on 10.0.1.1:8080.
fn router_lb_spec(text: &str, backends: &[&str]) -> String {
    let listed: Vec<String> = backends
        .iter()
        .map(|backend| format!("\"{backend}\""))
        .collect();
    let lb = format!(
        "[[service]]\nkind = \"lb\"\nvip = \"10.0.2.100:80\"\nbackends = [{}]\n\
         table_size = 251\nflows = 1024\n\n",
        listed.join(", ")
    );
    let l3fwd = "[[service]]\nkind = \"l3fwd\"";
    let with_lb = text.replace(l3fwd, &format!("{lb}{l3fwd}"));
    format!("{with_lb}{}", crate::suites::hosted::lb::MANAGEMENT)
}

/// Requests to the router case's VIP, each from its own source port.
const ROUTER_LB_FLOWS: u16 = 8;

/// curl from `left` to the VIP `ROUTER_LB_FLOWS` times, each from its own
/// source port, with two `http.server` backends on the right: both get
/// some, every request reaches one, with the client's own address (NAT
/// mode), and the lb counts them per backend. Then live, through the
/// controller: with `HELD` keep-alive connections open, `warpctl apply
/// --wait` takes 10.0.2.2:8002 out; every connection to 8001 is answered
/// again on the same connection by 8001 (its pin adopted by the new
/// node), those to 8002 move (reset by 8001, which never saw them).
fn lb_spreads(left: &Netns, right: &Netns, session: &mut QemuSession) -> Result<()> {
    use crate::suites::hosted::lb::{HELD, Held, apply, who_server};
    use crate::suites::hosted::nat::peers;
    ensure_programs("the lb check", &[("curl", "curl"), ("python3", "python3")])?;
    let warpctl = crate::suites::management_traffic::build_warpctl()?;
    let logs = std::env::temp_dir().join(unique_name("wclq"));
    std::fs::create_dir_all(&logs)?;
    let result = (|| -> Result<()> {
        let mut servers = Vec::new();
        for port in ["8001", "8002"] {
            let log = std::fs::File::create(logs.join(format!("{port}.log")))?;
            let directory = logs.join(format!("www-{port}"));
            servers.push(who_server(
                right,
                ("10.0.2.2", port),
                &directory,
                port,
                log,
            )?);
        }
        for port in ["8001", "8002"] {
            let url = format!("http://10.0.2.2:{port}/who");
            let mut answered = false;
            for _ in 0..40 {
                let output = right.output(&["curl", "-sS", "--max-time", "2", &url])?;
                if output.status.success() && String::from_utf8_lossy(&output.stdout) == port {
                    answered = true;
                    break;
                }
                std::thread::sleep(Duration::from_millis(250));
            }
            ensure!(answered, "http.server on 10.0.2.2:{port} did not answer");
        }
        for port in 0..ROUTER_LB_FLOWS {
            let local = (43_000 + port).to_string();
            let output = left.output(&[
                "timeout",
                "-k",
                "5",
                "30",
                "curl",
                "-sS",
                "-o",
                "/dev/null",
                "--max-time",
                "20",
                "--local-port",
                &local,
                "http://10.0.2.100/",
            ])?;
            ensure!(
                output.status.success(),
                "curl to the VIP from port {local}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let mut seen = Vec::new();
        for backend in ["8001", "8002"] {
            let from_left = peers(&logs.join(format!("{backend}.log")))?
                .iter()
                .filter(|peer| *peer == "10.0.1.2")
                .count();
            seen.push(from_left);
        }
        ensure!(
            seen.iter().all(|count| *count > 0)
                && seen.iter().sum::<usize>() == usize::from(ROUTER_LB_FLOWS),
            "requests from 10.0.1.2 per backend: {seen:?}"
        );
        let counters = session.counters()?;
        let lb = |name: &str| counters.sum(None, &[("node", "lb"), ("event", name)]);
        let flows = [lb("backend-0-flows"), lb("backend-1-flows")];
        ensure!(
            flows.iter().sum::<u64>() == u64::from(ROUTER_LB_FLOWS) && lb("replies") > 0,
            "lb counted flows {flows:?}, replies {}",
            lb("replies")
        );
        eprintln!(
            "xtask: [appliance] router: lb spread {ROUTER_LB_FLOWS} curl flows over two backends {seen:?}, backend flows {flows:?}, replies {}",
            lb("replies")
        );

        // Live: 8002 leaves while the connections are open.
        let mut held = Held::start(left, 2)?;
        let before = held.round(0)?;
        ensure!(
            before.values().all(|who| who == "8001" || who == "8002"),
            "a keep-alive connection was answered by {before:?}"
        );
        let text = std::fs::read_to_string(example("router.toml"))?;
        apply(
            left,
            &warpctl,
            &router_lb_spec(&text, &ROUTER_BACKENDS[..1]),
        )?;
        let after = held.round(1)?;
        let (mut kept, mut moved) = (0, 0);
        for (port, old) in &before {
            let new = &after[port];
            if old == "8001" {
                ensure!(
                    new == "8001",
                    "the connection from port {port} to 8001 got {new} after 8002 left"
                );
                kept += 1;
            } else {
                ensure!(
                    new != "8002",
                    "the connection from port {port} still reached the removed 8002"
                );
                moved += 1;
            }
        }
        ensure!(
            kept > 0 && moved > 0,
            "{HELD} connections: {kept} to 8001, {moved} to 8002"
        );
        drop(held);
        drop(servers);
        eprintln!(
            "xtask: [appliance] router: 8002 removed by warpctl apply --wait: the {kept} connections to 8001 answered again on the same connection, the {moved} to 8002 moved"
        );
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&logs);
    result
}

/// examples/router.toml with `driver = "igb"` on both interfaces: two igb
/// functions, each polled by core 0.
fn igb_router_forwards() -> Result<()> {
    let text = std::fs::read_to_string(example("router.toml"))?;
    ensure!(
        text.matches("driver = \"virtio\"").count() == 2,
        "router.toml no longer has two virtio interfaces"
    );
    let spec = spec_file::temporary(
        "router-igb",
        &text.replace("driver = \"virtio\"", "driver = \"igb\""),
    )?;
    let result = router_forwards_with(&spec, false);
    let _ = std::fs::remove_file(&spec);
    result
}

/// The two sides of a router-like appliance: for each (namespace,
/// address), a tap in `host` (the appliance's NIC, in order) bridged to
/// a veth whose other end, in the namespace, holds the address (CIDR).
/// The veths must live as long as the test.
fn two_sides(host: &Netns, sides: [(&Netns, &str); 2]) -> Result<(Vec<Tap>, Vec<Veth>)> {
    let mut taps = Vec::new();
    let mut links = Vec::new();
    for (side, address) in sides {
        let tap = Tap::create("wct", Some(host), false)?;
        let bridge = unique_name("wcb");
        host.ip(&["link", "add", &bridge, "type", "bridge"])?;
        host.ip(&["link", "set", &bridge, "up"])?;
        let veth = Veth::create("wcv", Some(host), Some(side))?;
        host.ip(&["link", "set", tap.name(), "master", &bridge])?;
        host.ip(&["link", "set", veth.first(), "master", &bridge])?;
        host.configure(tap.name(), None)?;
        side.configure(veth.second(), Some(address))?;
        taps.push(tap);
        links.push(veth);
    }
    Ok((taps, links))
}

/// Two namespaces ping each other through the appliance running `spec` (a
/// router with the addresses of examples/router.toml); with `lb`, the
/// spec's lb service spreads curl over two backends ([`lb_spreads`]).
fn router_forwards_with(spec: &std::path::Path, lb: bool) -> Result<()> {
    let host = Netns::create("wcq")?;
    let left = Netns::create("wcl")?;
    let right = Netns::create("wcr")?;
    let (taps, _links) = two_sides(&host, [(&left, "10.0.1.2/24"), (&right, "10.0.2.2/24")])?;
    left.ip(&["route", "add", "default", "via", "10.0.1.1"])?;
    right.ip(&["route", "add", "default", "via", "10.0.2.1"])?;
    let tap_names: Vec<&str> = taps.iter().map(Tap::name).collect();
    let mut session = QemuSession::boot_appliance(spec, 1, &host, &tap_names, 1)?;
    let result = (|| -> Result<()> {
        wait_reachable(&left, "10.0.1.1", 20)?;
        wait_reachable(&left, "10.0.2.2", 20)?;
        for (from, to) in [(&left, "10.0.2.2"), (&right, "10.0.1.2")] {
            let text = ping_no_loss(from, &["-c", "5", to])?;
            ensure!(
                text.contains("ttl=63"),
                "replies from {to} should carry TTL 63 (64, forwarded once):\n{text}"
            );
        }
        if lb {
            lb_spreads(&left, &right, &mut session)?;
        }
        Ok(())
    })();
    result.map_err(|error| error.context(format!("console:\n{}", session.log())))?;
    drop(session.counters()?);
    Ok(())
}

/// examples/nat.toml in QEMU between an inside and an outside namespace
/// (as `router`, but the outside has no route to the inside): the same
/// checks as the hosted `nat-af-packet` case, fewer of them.
fn nat_translates() -> Result<()> {
    use crate::suites::hosted::nat::{curl, http_server, peers};
    ensure_programs("the nat test", &[("curl", "curl"), ("python3", "python3")])?;
    let host = Netns::create("wcq")?;
    let inside = Netns::create("wcl")?;
    let outside = Netns::create("wcr")?;
    let (taps, _links) = two_sides(&host, [(&inside, "10.0.1.2/24"), (&outside, "10.0.2.2/24")])?;
    inside.ip(&["route", "add", "default", "via", "10.0.1.1"])?;
    let logs = std::env::temp_dir().join(unique_name("wcnq"));
    std::fs::create_dir_all(&logs)?;
    let (outside_log, inside_log) = (logs.join("outside.log"), logs.join("inside.log"));
    let servers = [
        http_server(&outside, "10.0.2.2", "8081", &outside_log)?,
        http_server(&inside, "10.0.1.2", "8000", &inside_log)?,
    ];
    let tap_names: Vec<&str> = taps.iter().map(Tap::name).collect();
    let mut session = QemuSession::boot_appliance(&example("nat.toml"), 1, &host, &tap_names, 1)?;
    let result = (|| -> Result<()> {
        wait_reachable(&inside, "10.0.1.1", 20)?;
        wait_reachable(&inside, "10.0.2.2", 20)?;
        ping_no_loss(&inside, &["-c", "3", "10.0.2.2"])?;
        let answer = curl(&inside, "http://10.0.2.2:8081/", "20")?;
        ensure!(
            answer.0 == Some(0) && answer.1.starts_with("200"),
            "curl through the NAT failed: {answer:?}"
        );
        let seen = peers(&outside_log)?;
        ensure!(
            seen.last().map(String::as_str) == Some("10.0.2.1"),
            "the outside server saw {seen:?}, not the NAT address last"
        );
        udp_closed(&inside, "10.0.2.2")?;
        let forwarded = curl(&outside, "http://10.0.2.1:8080/", "20")?;
        ensure!(
            forwarded.0 == Some(0) && forwarded.1.starts_with("200"),
            "curl to the forwarded port failed: {forwarded:?}"
        );
        let inside_peers = peers(&inside_log)?;
        ensure!(
            inside_peers.last().map(String::as_str) == Some("10.0.2.2"),
            "the inside server saw {inside_peers:?}, not the outside client last"
        );
        let unmapped = curl(&outside, "http://10.0.2.1:25000/", "2")?;
        ensure!(
            unmapped.0 == Some(28),
            "an unmapped port answered: {unmapped:?}"
        );
        Ok(())
    })();
    drop(servers);
    let _ = std::fs::remove_dir_all(&logs);
    result.map_err(|error| error.context(format!("console:\n{}", session.log())))?;
    let counters = session.counters()?;
    let nat = |key: &str, name: &str| counters.sum(None, &[("node", "nat"), (key, name)]);
    eprintln!(
        "xtask: [appliance] nat: masqueraded-flows={} forwarded-flows={} errors-translated={} translated={} no-mapping={}",
        nat("event", "masqueraded-flows"),
        nat("event", "forwarded-flows"),
        nat("event", "errors-translated"),
        nat("event", "translated"),
        nat("drop", "no-mapping"),
    );
    for (name, value) in [
        ("masqueraded-flows", nat("event", "masqueraded-flows")),
        ("forwarded-flows", nat("event", "forwarded-flows")),
        ("errors-translated", nat("event", "errors-translated")),
        ("no-mapping drops", nat("drop", "no-mapping")),
    ] {
        ensure!(value > 0, "nat {name} counted nothing in QEMU");
    }
    Ok(())
}

/// Two cores, two queue pairs, examples/tcp.toml: several UDP flows land
/// on both cores, then 16 TCP connections (distinct source ports) each
/// echo a few lines, both cores accept some, and no segment reaches a core
/// that does not own its connection (`drop=wrong-core` stays 0 on both),
/// as the hosted `tcp-two-cores-tap` case checks; then four HTTP GETs,
/// each its own connection; then 32 management connections (served by
/// core 0 alone) from distinct source ports, every one answered, those
/// the device steered to core 1 handed over to core 0, as the hosted
/// `management-two-cores-tap` case checks. One boot for UDP, TCP, HTTP
/// and the management plane.
fn multi_queue_spreads_flows() -> Result<()> {
    ensure_programs("the multi-queue test", &[("curl", "curl")])?;
    let text = spec_file::with_queues(&std::fs::read_to_string(example("tcp.toml"))?, 2)?;
    let text = format!("{text}\n{}", management_table()?);
    let spec = spec_file::temporary("mq", &text)?;
    let lan = Lan::create(1, true, Some("10.0.0.1/24"))?;
    let booted = QemuSession::boot_appliance(&spec, 2, &lan.netns, &lan.tap_names(), 2);
    let _ = std::fs::remove_file(&spec);
    let mut session = booted?;
    let result = (|| -> Result<()> {
        wait_reachable(&lan.netns, "10.0.0.2", 20)?;
        ensure!(
            session.log().contains("2 of 2 queue pairs"),
            "the device did not get 2 queue pairs"
        );
        udp_echo(&lan.netns, "10.0.0.2", 16, 10)?;
        let counters = session.counters()?;
        for core in 0..2 {
            let received = counters.sum(Some(core), &[("executor", "rx_packets")]);
            eprintln!("xtask: [appliance] core {core} rx_packets={received}");
            ensure!(received > 0, "core {core} processed no packets");
        }
        let before = counters;
        let echo = tcp_echo(&lan.netns, 16, 4, 60);
        let after = session.counters()?;
        eprintln!(
            "xtask: [appliance] tcp counters: {}",
            tcp_traffic::moved(&before, &after)
        );
        let mut accepted = [0; 2];
        let mut wrong_core = [0; 2];
        for core in 0..2u32 {
            let index = core as usize;
            accepted[index] = event(&after, Some(core), "connections-accepted")
                - event(&before, Some(core), "connections-accepted");
            // A stray segment is passed to its core rather than dropped
            // now: both counters say it strayed.
            wrong_core[index] = after.sum(Some(core), &[("node", "tcp"), ("drop", "wrong-core")])
                + event(&after, Some(core), "segments-handed-off")
                - event(&before, Some(core), "segments-handed-off");
            let received = after.sum(Some(core), &[("executor", "rx_packets")])
                - before.sum(Some(core), &[("executor", "rx_packets")]);
            eprintln!(
                "xtask: [appliance] core {core} connections-accepted +{} wrong-core={} \
                 rx_packets +{received}",
                accepted[index], wrong_core[index]
            );
        }
        echo?;
        for core in 0..2u32 {
            // A zero must come from a printed counter, not a missing one.
            ensure!(
                after.lines.iter().any(|line| line.core == core
                    && line.labels
                        == [
                            ("node".into(), "tcp".into()),
                            ("drop".into(), "wrong-core".into())
                        ]),
                "core {core} printed no `node=tcp drop=wrong-core` counter"
            );
        }
        ensure!(
            accepted.iter().all(|count| *count > 0),
            "16 connections did not reach both cores: accepted {accepted:?}"
        );
        ensure!(
            accepted.iter().sum::<u64>() == 16,
            "connections-accepted moved by {accepted:?}, expected 16 in all"
        );
        ensure!(
            wrong_core == [0, 0],
            "segments reached a core that does not own their connection: wrong-core {wrong_core:?}"
        );
        for _ in 0..4 {
            let root = lan.netns.run(&[
                "timeout",
                "-k",
                "5",
                "30",
                "curl",
                "-sS",
                "--max-time",
                "20",
                "http://10.0.0.2/",
            ])?;
            ensure!(root == "hello from warpcore\n", "GET / answered `{root}`");
        }
        eprintln!("xtask: [appliance] http: 4 GETs answered on two cores");
        every_connection_answered(&lan.netns, 2)
    })();
    result.map_err(|error| error.context(format!("console:\n{}", session.log())))
}
