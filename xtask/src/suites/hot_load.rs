//! Hot loading of Wasm modules through the management API (issue 19),
//! with `warpctl module` as the operator runs it, in one boot, while
//! loadgen's UDP echo load on port 7 (an unrelated service) runs and must
//! lose nothing (`suites::echo_load`):
//!
//! - every example module given (ACL, flow counter, rewriter in Rust, C
//!   and AssemblyScript, built by `cargo xtask wasm-examples`) is pushed,
//!   checked on the wire and in its counters, and removed, after which the
//!   previous path is back: the ACL drops ports 9 and 19, each rule's
//!   counter exact; the flow counter at `ipv4:proto:1` with `limit 2`
//!   answers the first two pings of a flow and drops the rest (`flows` 1,
//!   `over-limit` 2); the rewriter sends datagrams for port 5000 on to
//!   `udp-echo` on 9 with DSCP 46, and the echo comes back from port 9
//!   with TOS 0xb8 and the client kernel's checksum check passed;
//! - with the first module running, a malformed one pushed under its name
//!   is refused with the engine's reason and the running one still works;
//! - a module that loops forever (wasm/host/tests/modules/verdicts.wat,
//!   port 15) is stopped by fuel while port 7 goes on being echoed; one
//!   that traps (port 14) is quarantined (the module list counts it, the
//!   log says so) and rebuilt after its backoff, after which it judges
//!   again.

use crate::net::netns::Netns;
use crate::suites::echo_load::EchoLoad;
use crate::suites::management_traffic::{build_warpctl, curl_in, sample};
use crate::suites::traffic::ping_no_loss;
use anyhow::{Context, Result, bail, ensure};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

/// The token whose SHA-256 examples/management.toml holds.
const TOKEN: &str = "warpcore-test-token";
/// The management API's base address.
const BASE: &str = "http://10.0.0.2:8080";
/// loadgen's runs: 4 s each, at most 60 (4 minutes: the bound when the
/// checks hang).
const LOAD_RUN_SECONDS: u64 = 4;
const LOAD_MAX_RUNS: u64 = 60;
/// How long a dropped datagram's echo is waited for.
const NO_REPLY_WAIT_SECONDS: f64 = 1.0;

/// The ACL's rules: ports 9 and 19 dropped, each counted by its rule.
const ACL_CONFIG: &str = "drop udp any any any 9; drop udp any any any 19";
/// The flow counter's config: a flow's third packet on is dropped.
const FLOW_COUNTER_CONFIG: &str = "limit 2";
/// The rewriter's config: DSCP 46, port 5000 sent on to 9.
const REWRITER_CONFIG: &str = "dscp 46; port 5000 9";

/// One example module: its language (folder under `examples/wasm/`) and
/// name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExampleModule {
    /// `rust`, `c` or `assemblyscript`.
    pub language: &'static str,
    /// `acl`, `flow-counter` or `rewriter`.
    pub example: &'static str,
}

impl ExampleModule {
    /// The nine, language by language.
    pub const ALL: [ExampleModule; 9] = [
        Self::new("rust", "acl"),
        Self::new("rust", "flow-counter"),
        Self::new("rust", "rewriter"),
        Self::new("c", "acl"),
        Self::new("c", "flow-counter"),
        Self::new("c", "rewriter"),
        Self::new("assemblyscript", "acl"),
        Self::new("assemblyscript", "flow-counter"),
        Self::new("assemblyscript", "rewriter"),
    ];

    const fn new(language: &'static str, example: &'static str) -> Self {
        Self { language, example }
    }

    /// The service it is pushed as: `acl-rust`, `rewriter-as` ...
    fn service(self) -> String {
        let language = match self.language {
            "assemblyscript" => "as",
            other => other,
        };
        format!("{}-{language}", self.example)
    }

    /// Its file under the folder `cargo xtask wasm-examples` builds into.
    fn path(self, folder: &Path) -> PathBuf {
        folder
            .join(self.language)
            .join(format!("{}.wasm", self.example))
    }
}

/// The spec under test: the management test spec (udp-echo on 7, http,
/// `[management]`) with a second `udp-echo` on port 9, for the ACL to
/// stop and the rewriter to reach.
pub fn hot_load_spec(management_spec: &str) -> String {
    let mut text = String::from(management_spec);
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str("\n[[service]]\nkind = \"udp-echo\"\nport = 9\n");
    text
}

/// What the hot-loading checks push.
pub struct HotLoadModules<'a> {
    /// The example modules' folder (`cargo xtask wasm-examples`).
    pub examples_folder: &'a Path,
    /// The examples to push, in order.
    pub examples: &'a [ExampleModule],
    /// The folder with `verdicts.wasm` and `garbage.wasm`
    /// (`suites::hosted::wasm::module_dir`).
    pub test_modules: &'a Path,
}

/// Sends datagrams from the client and reports the echoes: from which
/// port, with which TOS, and whether the payload came back as sent (the
/// kernel delivers only datagrams whose checksum verifies). argv: port,
/// count, seconds to wait for the last reply.
const PROBE: &str = r#"
import socket, sys, time
port, count, wait = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, socket.IP_RECVTOS, 1)
s.bind(("0.0.0.0", 0))
sent = [b"warpcore-probe-%d-" % i + bytes(range(48)) for i in range(count)]
for payload in sent:
    s.sendto(payload, ("10.0.0.2", port))
    time.sleep(0.01)
deadline = time.time() + wait
seen = []
while len(seen) < count:
    left = deadline - time.time()
    if left <= 0:
        break
    s.settimeout(left)
    try:
        data, ancillary, _, address = s.recvmsg(4096, socket.CMSG_SPACE(4))
    except socket.timeout:
        break
    tos = -1
    for level, kind, value in ancillary:
        if level == socket.IPPROTO_IP and kind == socket.IP_TOS:
            tos = value[0]
    seen.append("%d:%d:%d" % (address[1], tos, int(data in sent)))
print("replies=%d %s" % (len(seen), " ".join(seen)))
"#;

/// One echo the probe saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Reply {
    from_port: u16,
    tos: i32,
    identical: bool,
}

/// The appliance under test, reached from the client namespace.
struct Appliance<'a> {
    client: &'a Netns,
    warpctl: String,
}

impl Appliance<'_> {
    /// `warpctl` with the server and token, bounded.
    fn warpctl(&self, args: &[&str]) -> Result<Output> {
        let mut full = vec![
            "timeout",
            "-k",
            "5",
            "90",
            &self.warpctl,
            "--server",
            BASE,
            "--token",
            TOKEN,
        ];
        full.extend_from_slice(args);
        self.client.output(&full)
    }

    /// `warpctl module push FILE --name NAME --attach ATTACH [--config
    /// CONFIG] [--set KEY=VALUE]... --wait`, which must succeed.
    fn push(
        &self,
        file: &Path,
        name: &str,
        attach: &str,
        config: Option<&str>,
        settings: &[&str],
    ) -> Result<()> {
        let file = file.to_string_lossy();
        let mut args = vec![
            "module", "push", &file, "--name", name, "--attach", attach, "--wait",
        ];
        if let Some(config) = config {
            args.extend(["--config", config]);
        }
        for setting in settings {
            args.extend(["--set", setting]);
        }
        let pushed = self.warpctl(&args)?;
        ensure!(
            pushed.status.success() && said(&pushed).contains("observed: generation"),
            "warpctl module push {name}: {}",
            said(&pushed)
        );
        Ok(())
    }

    /// `warpctl module rm NAME --wait`, which must succeed.
    fn remove(&self, name: &str) -> Result<()> {
        let removed = self.warpctl(&["module", "rm", name, "--wait"])?;
        ensure!(
            removed.status.success() && said(&removed).contains("observed: generation"),
            "warpctl module rm {name}: {}",
            said(&removed)
        );
        Ok(())
    }

    /// A sample of `/metrics`, summed over the cores.
    fn metric(&self, family: &str, labels: &[(&str, &str)]) -> Result<u64> {
        let scrape = curl_in(self.client, &[&format!("{BASE}/metrics")])?;
        Ok(sample(&scrape, family, labels) as u64)
    }

    /// Node `node`'s event (a module's counter, or the host's).
    fn event(&self, node: &str, event: &str) -> Result<u64> {
        self.metric(
            "warpcore_node_events_total",
            &[("node", node), ("event", event)],
        )
    }

    /// Node `node`'s drops for `reason`.
    fn drops(&self, node: &str, reason: &str) -> Result<u64> {
        self.metric(
            "warpcore_drops_total",
            &[("node", node), ("reason", reason)],
        )
    }

    /// Requires `node`'s counters to be exactly `expected`.
    fn expect_events(&self, node: &str, expected: &[(&str, u64)]) -> Result<()> {
        for (event, want) in expected {
            let got = self.event(node, event)?;
            ensure!(
                got == *want,
                "{node}/{event} counted {got}, expected {want}"
            );
        }
        Ok(())
    }

    /// `count` datagrams to `port`; the echoes that came back.
    fn probe(&self, port: u16, count: u32) -> Result<Vec<Reply>> {
        let output = self.client.run(&[
            "timeout",
            "-k",
            "2",
            "30",
            "python3",
            "-c",
            PROBE,
            &port.to_string(),
            &count.to_string(),
            &NO_REPLY_WAIT_SECONDS.to_string(),
        ])?;
        let mut words = output.split_whitespace();
        let header = words.next().unwrap_or_default();
        let replies: Vec<Reply> = words
            .map(|word| {
                let fields: Vec<&str> = word.split(':').collect();
                match fields[..] {
                    [port, tos, identical] => Ok(Reply {
                        from_port: port.parse()?,
                        tos: tos.parse()?,
                        identical: identical == "1",
                    }),
                    _ => bail!("the probe printed `{word}`"),
                }
            })
            .collect::<Result<_>>()
            .with_context(|| format!("the probe's output `{}`", output.trim()))?;
        ensure!(
            header == format!("replies={}", replies.len()),
            "the probe's output `{}`",
            output.trim()
        );
        Ok(replies)
    }

    /// `count` datagrams to `port`, every one echoed by `udp-echo` as sent.
    fn echoed(&self, port: u16, count: u32) -> Result<()> {
        let replies = self.probe(port, count)?;
        ensure!(
            replies.len() == count as usize
                && replies
                    .iter()
                    .all(|reply| reply.from_port == port && reply.identical),
            "{count} datagrams to port {port}: echoes {replies:?}"
        );
        Ok(())
    }

    /// `count` datagrams to `port`, none echoed.
    fn unanswered(&self, port: u16, count: u32) -> Result<()> {
        let replies = self.probe(port, count)?;
        ensure!(
            replies.is_empty(),
            "{count} datagrams to port {port} came back: {replies:?}"
        );
        Ok(())
    }

    /// The icmp_seq numbers that `ping -c count` got answers to.
    fn pings_answered(&self, count: u32) -> Result<Vec<u32>> {
        let count_text = count.to_string();
        let output = self.client.output(&[
            "timeout",
            "-k",
            "2",
            "30",
            "ping",
            "-n",
            "-c",
            &count_text,
            "-i",
            "0.3",
            "-W",
            "2",
            "10.0.0.2",
        ])?;
        let text = String::from_utf8_lossy(&output.stdout);
        Ok((1..=count)
            .filter(|seq| text.contains(&format!(" icmp_seq={seq} ")))
            .collect())
    }

    /// `GET /api/v1/modules`.
    fn modules(&self) -> Result<serde_json::Value> {
        let bearer = format!("Authorization: Bearer {TOKEN}");
        let text = curl_in(
            self.client,
            &["-H", &bearer, &format!("{BASE}/api/v1/modules")],
        )?;
        serde_json::from_str(&text).with_context(|| format!("GET /api/v1/modules: {text}"))
    }

    /// Module `name`'s per-core entries of `GET /api/v1/modules`.
    fn module_cores(&self, name: &str) -> Result<Vec<serde_json::Value>> {
        let listing = self.modules()?;
        let module = listing["modules"]
            .as_array()
            .and_then(|modules| modules.iter().find(|module| module["name"] == name))
            .with_context(|| format!("no module {name} in {listing}"))?;
        Ok(module["cores"].as_array().cloned().unwrap_or_default())
    }
}

fn said(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The checks, from `client` (reaching 10.0.0.2 on `client_ifname`),
/// against an instance of `cores` cores running [`hot_load_spec`].
pub fn hot_load_checks(
    client: &Netns,
    client_ifname: &str,
    modules: &HotLoadModules<'_>,
    cores: usize,
) -> Result<()> {
    let appliance = Appliance {
        client,
        warpctl: build_warpctl()?,
    };
    // The paths before any module: what each unload must restore.
    appliance.echoed(9, 3).context("port 9 before any module")?;
    appliance
        .unanswered(5000, 1)
        .context("port 5000 before any module")?;
    ping_no_loss(client, &["-c", "2", "-i", "0.3", "10.0.0.2"])?;

    let load = EchoLoad::start(client, client_ifname, LOAD_RUN_SECONDS, LOAD_MAX_RUNS)?;
    for (index, example) in modules.examples.iter().enumerate() {
        let started = Instant::now();
        let path = example.path(modules.examples_folder);
        ensure!(
            path.exists(),
            "{}: not built (cargo xtask wasm-examples)",
            path.display()
        );
        let name = example.service();
        match example.example {
            "acl" => acl(&appliance, &path, &name, index == 0, modules, cores)?,
            "flow-counter" => flow_counter(&appliance, &path, &name)?,
            "rewriter" => rewriter(&appliance, &path, &name)?,
            other => bail!("no checks for example {other}"),
        }
        eprintln!(
            "    {}/{}.wasm as {name}: pushed, checked, removed, previous path back ({:.1} s)",
            example.language,
            example.example,
            started.elapsed().as_secs_f64()
        );
    }
    hostile(&appliance, modules.test_modules)?;
    let totals = load.finish()?;
    eprintln!(
        "    loadgen on port 7: {} sent, {} echoed, 0 lost over {} runs while {} modules were pushed and removed",
        totals.sent,
        totals.received,
        totals.runs,
        modules.examples.len() + 1
    );
    Ok(())
}

/// The ACL drops ports 9 and 19, each rule counting its own; for the
/// first, a malformed push under its name is refused and changes nothing,
/// and `module ls` shows it on every core.
fn acl(
    appliance: &Appliance<'_>,
    path: &Path,
    name: &str,
    first: bool,
    modules: &HotLoadModules<'_>,
    cores: usize,
) -> Result<()> {
    appliance.push(path, name, "ipv4:proto:17", Some(ACL_CONFIG), &[])?;
    appliance.unanswered(9, 3).context("port 9 with the ACL")?;
    appliance
        .unanswered(19, 2)
        .context("port 19 with the ACL")?;
    appliance.expect_events(name, &[("rule-0", 3), ("rule-1", 2)])?;
    let dropped = appliance.drops(name, "dropped-by-module")?;
    ensure!(dropped == 5, "{name} dropped {dropped}, expected 5");
    if first {
        let garbage = modules.test_modules.join("garbage.wasm");
        let garbage = garbage.to_string_lossy();
        let refused = appliance.warpctl(&[
            "module",
            "push",
            &garbage,
            "--name",
            name,
            "--attach",
            "ipv4:proto:17",
        ])?;
        let refusal = said(&refused);
        ensure!(
            !refused.status.success()
                && refusal.contains("invalid module")
                && refusal.contains("nothing running changed"),
            "warpctl module push of a malformed module: {refusal}"
        );
        appliance
            .unanswered(9, 1)
            .context("port 9 after the refusal")?;
        appliance.expect_events(name, &[("rule-0", 4)])?;
        eprintln!("    malformed module refused: {}", refusal.trim());
        let listed = appliance.warpctl(&["module", "ls"])?;
        let listing = said(&listed);
        ensure!(
            listed.status.success()
                && listing.contains(name)
                && listing.contains("ipv4:proto:17")
                && (0..cores).all(|core| listing.contains(&format!("{core}:running"))),
            "warpctl module ls: {listing}"
        );
    }
    appliance.remove(name)?;
    appliance
        .echoed(9, 3)
        .with_context(|| format!("port 9 after {name} was removed"))?;
    if first {
        let again = appliance.warpctl(&["module", "rm", name])?;
        ensure!(
            !again.status.success() && said(&again).contains(&format!("no module named {name}")),
            "warpctl module rm of a removed module: {}",
            said(&again)
        );
    }
    Ok(())
}

/// The flow counter with `limit 2` on ICMP: the first two pings of the
/// flow answered, the other two dropped; its counters say one flow, two
/// over the limit.
fn flow_counter(appliance: &Appliance<'_>, path: &Path, name: &str) -> Result<()> {
    appliance.push(path, name, "ipv4:proto:1", Some(FLOW_COUNTER_CONFIG), &[])?;
    let answered = appliance.pings_answered(4)?;
    ensure!(
        answered == [1, 2],
        "{name} with limit 2: pings answered {answered:?}, expected [1, 2]"
    );
    appliance.expect_events(name, &[("flows", 1), ("over-limit", 2), ("map-full", 0)])?;
    let dropped = appliance.drops(name, "dropped-by-module")?;
    ensure!(dropped == 2, "{name} dropped {dropped}, expected 2");
    appliance.remove(name)?;
    ping_no_loss(appliance.client, &["-c", "3", "-i", "0.3", "10.0.0.2"])
        .with_context(|| format!("pings after {name} was removed"))?;
    Ok(())
}

/// The rewriter sends port 5000 on to udp-echo on 9 with DSCP 46: the
/// echo comes from port 9 with TOS 0xb8 (46 << 2), the payload as sent,
/// and a UDP checksum the client's kernel accepted.
fn rewriter(appliance: &Appliance<'_>, path: &Path, name: &str) -> Result<()> {
    appliance.push(path, name, "ipv4:proto:17", Some(REWRITER_CONFIG), &[])?;
    let replies = appliance.probe(5000, 3)?;
    ensure!(
        replies.len() == 3
            && replies
                .iter()
                .all(|reply| reply.from_port == 9 && reply.tos == 0xb8 && reply.identical),
        "{name}: datagrams to port 5000 echoed as {replies:?}, expected 3 from port 9 with TOS 184"
    );
    appliance.expect_events(name, &[("port-remapped", 3)])?;
    // loadgen's probes on port 7 are marked too.
    let marked = appliance.event(name, "dscp-marked")?;
    ensure!(
        marked >= 3,
        "{name}/dscp-marked counted {marked}, expected 3 or more"
    );
    appliance.remove(name)?;
    appliance
        .unanswered(5000, 1)
        .with_context(|| format!("port 5000 after {name} was removed"))?;
    let replies = appliance.probe(9, 1)?;
    ensure!(
        replies.len() == 1 && replies[0].tos == 0,
        "port 9 after {name} was removed: {replies:?}"
    );
    Ok(())
}

/// verdicts.wat as `judge`: a loop stopped by fuel while port 7 echoes, two
/// traps quarantine it (on_fault = pass keeps loadgen's probes going), it
/// is rebuilt after the backoff and judges again (drops port 9).
fn hostile(appliance: &Appliance<'_>, test_modules: &Path) -> Result<()> {
    let name = "judge";
    appliance.push(
        &test_modules.join("verdicts.wasm"),
        name,
        "ipv4:proto:17",
        None,
        &[
            "fuel=100000",
            "on_fault=pass",
            "quarantine_after=2",
            "quarantine_window_ms=60000",
        ],
    )?;
    appliance.unanswered(15, 1).context("the looping module")?;
    appliance.expect_events(name, &[("fuel-exhausted", 1)])?;
    appliance
        .echoed(7, 20)
        .context("port 7 after the loop was stopped")?;
    eprintln!("    judge: a loop stopped by fuel (fuel-exhausted 1), port 7 echoed 20 of 20 after");

    // Two traps from one socket (one flow, one core): that core's second
    // fault in the window quarantines it (its first may be the loop's).
    appliance.unanswered(14, 2).context("the trapping module")?;
    appliance.expect_events(name, &[("quarantined", 1)])?;
    let traps = appliance.event(name, "trap")?;
    ensure!(
        (1..=2).contains(&traps),
        "judge/trap counted {traps}, expected 1 or 2"
    );
    // The module list counts the quarantine on the core; the backoff
    // (100 ms) ends in a rebuild, counted too.
    let deadline = Instant::now() + Duration::from_secs(20);
    let cores = loop {
        let cores = appliance.module_cores(name)?;
        let rebuilt = cores.iter().any(|core| {
            core["quarantined"] == 1 && core["restarts"] == 1 && core["state"] == "running"
        });
        if rebuilt {
            break cores;
        }
        ensure!(
            Instant::now() < deadline,
            "judge not rebuilt after its quarantine: {cores:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let logged = appliance.warpctl(&["logs", "-q", "wasm judge", "--limit", "50"])?;
    let log = said(&logged);
    ensure!(
        log.contains("quarantined after a trap") && log.contains("rebuilt after quarantine"),
        "the log does not tell the quarantine and the rebuild: {log}"
    );
    appliance.expect_events(name, &[("restarts", 1)])?;
    // Rebuilt, it judges again: port 9 is dropped by the module.
    let before = appliance.drops(name, "dropped-by-module")?;
    appliance.unanswered(9, 1).context("the rebuilt module")?;
    let after = appliance.drops(name, "dropped-by-module")?;
    ensure!(
        after == before + 1,
        "the rebuilt judge dropped {} of 1 datagrams to port 9",
        after - before
    );
    eprintln!(
        "    judge: {traps} trap(s) quarantined it, rebuilt after the backoff ({}), judging again",
        cores
            .iter()
            .map(|core| format!(
                "core {}: quarantined {} restarts {}",
                core["core"], core["quarantined"], core["restarts"]
            ))
            .collect::<Vec<_>>()
            .join(", ")
    );
    appliance.remove(name)?;
    appliance
        .echoed(9, 1)
        .context("port 9 after judge was removed")?;
    Ok(())
}
