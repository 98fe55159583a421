//! The controller's checks, shared by the hosted and the appliance
//! suites, against `examples/management.toml` (its test copy): a UDP echo
//! load from loadgen runs with zero loss while a `PUT /api/v1/spec` adds
//! an unrelated service and another takes it away; an HTTP keep-alive
//! connection to the unchanged `http` service answers on the same
//! connection after both; a static route answers the next ping once its
//! generation is observed; a graph no core can build is rolled back and
//! the `Degraded` condition says why; `[tcp]` is refused with 409 naming
//! the field; generations and the reconcile counters move.

use crate::net::keep_alive;
use crate::net::netns::Netns;
use crate::suites::echo_load::{EchoLoad, Reaped};
use crate::suites::management_traffic::{build_warpctl, curl_in, sample, test_spec, warpctl_apply};
use crate::suites::traffic::{check_echo, udp_client};
use anyhow::{Context, Result, bail, ensure};
use std::io::{BufRead, BufReader};
use std::process::{ChildStdout, Stdio};
use std::time::{Duration, Instant};

/// The token whose SHA-256 the spec holds.
const TOKEN: &str = "warpcore-test-token";
/// The management API's base address.
const BASE: &str = "http://10.0.0.2:8080";
/// How long a generation may take to be observed: generous, for TCG.
const OBSERVE_WITHIN: Duration = Duration::from_secs(30);
/// loadgen's runs: 4 s each, at most 10 (`suites::echo_load`).
const LOAD_RUN_SECONDS: u64 = 4;
const LOAD_MAX_RUNS: u64 = 10;
/// The keep-alive client ([`keep_alive::client`]): two requests on one
/// connection, the second once `flag` exists (bounded waits everywhere);
/// prints its local port and each status line.
const KEEP_ALIVE_CLIENT: &str = r#"
flag = sys.argv[1]
s = socket.create_connection(("10.0.0.2", 80), timeout=10)
print("port", s.getsockname()[1], ask(s, "/", "a")[0], flush=True)
wait_flag(flag, 60)
print("port", s.getsockname()[1], ask(s, "/", "a")[0], flush=True)
"#;

/// The reconcile checks from `client` (a namespace reaching 10.0.0.2 on
/// `client_ifname`).
pub fn reconcile_checks(client: &Netns, client_ifname: &str) -> Result<()> {
    let api = Api { client };
    let base_text = std::fs::read_to_string(test_spec()?).context("reading the spec")?;
    let generation = api.generations()?.0;

    // The route's check first needs the route absent.
    client.run(&["ip", "addr", "add", "192.0.2.1/32", "dev", client_ifname])?;
    let routed = || -> Result<bool> {
        let output = client.output(&[
            "timeout",
            "-k",
            "2",
            "5",
            "ping",
            "-n",
            "-c",
            "1",
            "-W",
            "2",
            "-I",
            "192.0.2.1",
            "10.0.0.2",
        ])?;
        Ok(output.status.success())
    };
    ensure!(!routed()?, "192.0.2.1 got a reply before any route to it");

    // The load, and a keep-alive connection to the unchanged http service.
    let load = EchoLoad::start(client, client_ifname, LOAD_RUN_SECONDS, LOAD_MAX_RUNS)?;
    let flag = std::env::temp_dir().join(format!("warpcore-keep-alive-{}", std::process::id()));
    let _ = std::fs::remove_file(&flag);
    let mut keep_alive = Reaped(
        client
            .command("timeout")
            .args(["-k", "5", "90", "python3", "-c"])
            .arg(keep_alive::client(KEEP_ALIVE_CLIENT))
            .arg(&flag)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .context("starting the keep-alive client")?,
    );
    let mut answers = BufReader::new(keep_alive.0.stdout.take().context("its stdout")?);
    let first = read_line(&mut answers)?;
    ensure!(first.contains("200"), "keep-alive client: `{first}`");

    // Add an unrelated service, then take it away, under the load.
    let added = format!("{base_text}\n[[service]]\nkind = \"udp-echo\"\nport = 5555\n");
    let applied = api.apply(&added, generation + 1)?;
    ensure!(
        applied.contains("\"action\":\"added\""),
        "PUT answered `{applied}`"
    );
    check_echo(
        &udp_client(client, &["echo", "10.0.0.2:5555", "1", "3"])?,
        3,
    )
    .context("the added service on port 5555")?;
    api.apply(&base_text, generation + 2)?;
    eprintln!(
        "    generations {} and {}: udp-echo on 5555 added (it echoes) and removed",
        generation + 1,
        generation + 2
    );

    std::fs::write(&flag, b"go").context("writing the flag")?;
    let second = read_line(&mut answers)?;
    let _ = std::fs::remove_file(&flag);
    let port = |line: &str| line.split_whitespace().nth(1).map(str::to_owned);
    ensure!(
        second.contains("200") && port(&first) == port(&second),
        "keep-alive: `{first}`, then `{second}`"
    );
    eprintln!(
        "    keep-alive: the same connection (local port {}) answered after both changes",
        port(&first).unwrap_or_default()
    );

    let totals = load.finish()?;
    eprintln!(
        "    loadgen: {} sent, {} echoed, 0 lost while the graph changed twice",
        totals.sent, totals.received
    );

    // A route: the next ping after the generation is observed is answered.
    let route =
        format!("{base_text}\n[[route]]\ndestination = \"192.0.2.0/24\"\nvia = \"10.0.0.1\"\n");
    let warpctl = build_warpctl()?;
    let applied = warpctl_apply(client, &warpctl, (BASE, TOKEN), &route)?;
    ensure!(
        applied.status.success()
            && String::from_utf8_lossy(&applied.stdout)
                .contains(&format!("observed: generation {}", generation + 3)),
        "warpctl apply --wait of the route: {}{}",
        String::from_utf8_lossy(&applied.stdout),
        String::from_utf8_lossy(&applied.stderr)
    );
    ensure!(
        routed()?,
        "the first ping after the route's generation got no reply"
    );
    api.apply(&base_text, generation + 4)?;
    eprintln!(
        "    route 192.0.2.0/24 via 10.0.0.1 by warpctl apply --wait: the next ping answered; and gone again"
    );

    // A graph no core can build: nine UDP ports on a core (eight hook slots).
    let mut crowded = base_text.clone();
    for port in 20..29 {
        crowded.push_str(&format!(
            "\n[[service]]\nkind = \"udp-echo\"\nport = {port}\n"
        ));
    }
    let refused = warpctl_apply(client, &warpctl, (BASE, TOKEN), &crowded)?;
    let said = String::from_utf8_lossy(&refused.stderr);
    ensure!(
        !refused.status.success() && said.contains("not applied") && said.contains("rolled back"),
        "warpctl apply --wait of the crowded spec: `{said}`"
    );
    let status = api.wait_observed(generation + 5)?;
    ensure!(
        status.contains("\"type\":\"Degraded\",\"status\":\"True\",\"reason\":\"RolledBack\"")
            && status.contains("rolled back")
            && status.contains("udp:"),
        "the status after a failed change: `{status}`"
    );
    ensure!(
        api.spec()? == base_text,
        "the spec served after the rollback is not the previous one"
    );
    check_echo(&udp_client(client, &["echo", "10.0.0.2:7", "1", "3"])?, 3)
        .context("udp-echo on port 7 after the rollback")?;
    eprintln!(
        "    nine UDP ports: warpctl apply --wait fails with the reason, rolled back, Degraded says why, port 7 still echoes"
    );

    // A change that needs a restart.
    let tcp = format!("{base_text}\n[tcp]\nmax_connections = 64\n");
    let refused = api.put(&tcp)?;
    ensure!(
        refused.ends_with(" 409") && refused.contains("\"field\":\"tcp\""),
        "PUT of a [tcp] change answered `{refused}`"
    );
    let (now, observed) = api.generations()?;
    ensure!(
        (now, observed) == (generation + 5, generation + 5),
        "generations after the checks: {now}, {observed}"
    );

    let scrape = api.curl(&[&format!("{BASE}/metrics")])?;
    let applied = sample(
        &scrape,
        "warpcore_reconciles_total",
        &[("result", "applied")],
    );
    let rolled_back = sample(
        &scrape,
        "warpcore_reconciles_total",
        &[("result", "rolled_back")],
    );
    let swaps = sample(&scrape, "warpcore_graph_swaps_total", &[]);
    ensure!(
        applied >= 4.0 && rolled_back >= 1.0 && swaps >= 4.0,
        "reconcile metrics: applied {applied}, rolled back {rolled_back}, graph swaps {swaps}"
    );
    eprintln!(
        "    /metrics: {applied} applied, {rolled_back} rolled back, {swaps} graph swaps; [tcp] refused 409"
    );
    client.run(&["ip", "addr", "del", "192.0.2.1/32", "dev", client_ifname])?;
    Ok(())
}

/// Reads one line of a child's output.
fn read_line(reader: &mut BufReader<ChildStdout>) -> Result<String> {
    let mut line = String::new();
    let read = reader
        .read_line(&mut line)
        .context("reading the client's output")?;
    ensure!(read > 0, "the keep-alive client ended without a line");
    Ok(line.trim().to_owned())
}

/// The management API, by curl in the client namespace.
struct Api<'a> {
    client: &'a Netns,
}

impl Api<'_> {
    fn curl(&self, args: &[&str]) -> Result<String> {
        curl_in(self.client, args)
    }

    /// PUTs `text`; the body and the status code after a space.
    fn put(&self, text: &str) -> Result<String> {
        let file =
            std::env::temp_dir().join(format!("warpcore-reconcile-{}.toml", std::process::id()));
        std::fs::write(&file, text).context("writing the PUT body")?;
        let answer = self.curl(&[
            "-X",
            "PUT",
            "-H",
            &format!("Authorization: Bearer {TOKEN}"),
            "--data-binary",
            &format!("@{}", file.display()),
            "-w",
            " %{http_code}",
            &format!("{BASE}/api/v1/spec"),
        ]);
        let _ = std::fs::remove_file(&file);
        answer
    }

    /// PUTs `text`, expects 202 with `generation`, waits until it is
    /// observed and not degraded; the PUT's body.
    fn apply(&self, text: &str, generation: u64) -> Result<String> {
        let answer = self.put(text)?;
        ensure!(
            answer.ends_with(" 202") && answer.contains(&format!("\"generation\":{generation}")),
            "PUT answered `{answer}` (generation {generation} expected)"
        );
        let status = self.wait_observed(generation)?;
        ensure!(
            status.contains("\"type\":\"Degraded\",\"status\":\"False\""),
            "generation {generation} degraded: `{status}`"
        );
        Ok(answer)
    }

    fn status(&self) -> Result<String> {
        self.curl(&[
            "-H",
            &format!("Authorization: Bearer {TOKEN}"),
            &format!("{BASE}/api/v1/status"),
        ])
    }

    fn spec(&self) -> Result<String> {
        self.curl(&[
            "-H",
            &format!("Authorization: Bearer {TOKEN}"),
            &format!("{BASE}/api/v1/spec"),
        ])
    }

    /// `(generation, observedGeneration)`.
    fn generations(&self) -> Result<(u64, u64)> {
        let status: serde_json::Value =
            serde_json::from_str(&self.status()?).context("parsing the status")?;
        Ok((
            status["generation"].as_u64().context("no generation")?,
            status["observedGeneration"]
                .as_u64()
                .context("no observedGeneration")?,
        ))
    }

    /// Polls the status until `observedGeneration` reaches `generation`
    /// (bounded); the status then.
    fn wait_observed(&self, generation: u64) -> Result<String> {
        let deadline = Instant::now() + OBSERVE_WITHIN;
        loop {
            let status = self.status()?;
            let observed = serde_json::from_str::<serde_json::Value>(&status)
                .ok()
                .and_then(|value| value["observedGeneration"].as_u64())
                .unwrap_or(0);
            if observed >= generation {
                return Ok(status);
            }
            if Instant::now() > deadline {
                bail!("generation {generation} not observed within {OBSERVE_WITHIN:?}: `{status}`");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
