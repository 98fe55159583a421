//! Hot loading of Wasm modules through the management API (issue 19),
//! with `warpctl module` as the operator runs it: while loadgen's UDP echo
//! load on port 7 runs, an ACL module (wasm/host/tests/modules/acl.wat)
//! is pushed in front of the UDP stage and drops port 9, which `udp-echo`
//! answered before (drops counted per rule), a malformed module pushed
//! under the same name is refused with the engine's reason and the ACL
//! keeps dropping, `module ls` shows it running on every core, `module
//! rm` takes it out and port 9 is echoed again; the load sees zero loss.

use crate::net::netns::Netns;
use crate::suites::management_traffic::{build_warpctl, curl_in, sample};
use crate::suites::reconcile::{Reaped, build_loadgen, wait_json};
use crate::suites::traffic::{check_echo, udp_client, udp_dropped};
use anyhow::{Context, Result, ensure};
use std::path::Path;
use std::process::{Output, Stdio};

/// The token whose SHA-256 examples/management.toml holds.
const TOKEN: &str = "warpcore-test-token";
/// The management API's base address.
const BASE: &str = "http://10.0.0.2:8080";
/// loadgen's rate and length.
const LOAD_PPS: u64 = 2000;
const LOAD_SECONDS: u64 = 12;

/// The spec under test: the management test spec (udp-echo on 7, http,
/// `[management]`) with a second `udp-echo` on port 9, for the ACL to
/// stop.
pub fn hot_load_spec(management_spec: &str) -> String {
    let mut text = String::from(management_spec);
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str("\n[[service]]\nkind = \"udp-echo\"\nport = 9\n");
    text
}

/// `warpctl` with the server and token, bounded.
fn warpctl(client: &Netns, warpctl: &str, args: &[&str]) -> Result<Output> {
    let mut full = vec![
        "timeout", "-k", "5", "60", warpctl, "--server", BASE, "--token", TOKEN,
    ];
    full.extend_from_slice(args);
    client.output(&full)
}

fn said(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Port 9 echoed `count` times, every datagram answered.
fn port_9_echoes(client: &Netns, count: u32) -> Result<()> {
    let count_text = count.to_string();
    check_echo(
        &udp_client(client, &["echo", "10.0.0.2:9", "1", &count_text])?,
        count as usize,
    )
}

/// The drops of node `acl` by reason, summed over the cores.
fn acl_drops(client: &Netns, reason: &str) -> Result<f64> {
    let scrape = curl_in(client, &[&format!("{BASE}/metrics")])?;
    Ok(sample(
        &scrape,
        "warpcore_drops_total",
        &[("node", "acl"), ("reason", reason)],
    ))
}

/// The checks, from `client` (reaching 10.0.0.2 on `client_ifname`),
/// with the modules in `dir` (`acl.wasm`, `garbage.wasm`), against an
/// instance of `cores` cores.
pub fn hot_load_checks(
    client: &Netns,
    client_ifname: &str,
    dir: &Path,
    cores: usize,
) -> Result<()> {
    let loadgen = build_loadgen()?;
    let warpctl_path = build_warpctl()?;
    let run = |args: &[&str]| warpctl(client, &warpctl_path, args);
    let acl = dir.join("acl.wasm").to_string_lossy().into_owned();
    let garbage = dir.join("garbage.wasm").to_string_lossy().into_owned();

    port_9_echoes(client, 3).context("port 9 before the push")?;
    let mut load = Reaped(
        client
            .command(&loadgen.to_string_lossy())
            .args([
                "--interface",
                client_ifname,
                "--source-mac",
                "02:00:00:00:00:64",
                "--source-ip",
                "10.0.0.100",
                "--destination-ip",
                "10.0.0.2",
                "--rate",
                &LOAD_PPS.to_string(),
                "--duration",
                &LOAD_SECONDS.to_string(),
                "--count",
                &(LOAD_PPS * LOAD_SECONDS).to_string(),
                "--timeout-ms",
                "1000",
                "--json",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting loadgen")?,
    );

    // Pushed: the ACL drops port 9, counted per rule.
    let pushed = run(&[
        "module",
        "push",
        &acl,
        "--name",
        "acl",
        "--attach",
        "ipv4:proto:17",
        "--config",
        "9",
        "--wait",
    ])?;
    ensure!(
        pushed.status.success() && said(&pushed).contains("observed: generation"),
        "warpctl module push: {}",
        said(&pushed)
    );
    udp_dropped(client, "10.0.0.2", 9, 3).context("port 9 with the ACL")?;
    let dropped = acl_drops(client, "dropped-by-module")?;
    ensure!(dropped == 3.0, "acl dropped {dropped}, expected 3");
    eprintln!("    pushed acl.wasm by warpctl module push --wait: port 9 dropped (3, counted)");

    // Malformed: refused with the reason; the ACL stays.
    let refused = run(&[
        "module",
        "push",
        &garbage,
        "--name",
        "acl",
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
    udp_dropped(client, "10.0.0.2", 9, 1).context("port 9 after the refusal")?;
    let dropped = acl_drops(client, "dropped-by-module")?;
    ensure!(
        dropped == 4.0,
        "acl dropped {dropped} after the refusal, expected 4"
    );
    eprintln!("    malformed module refused: {}", refusal.trim());

    let listed = run(&["module", "ls"])?;
    let listing = said(&listed);
    ensure!(
        listed.status.success()
            && listing.contains("acl")
            && listing.contains("ipv4:proto:17")
            && (0..cores).all(|core| listing.contains(&format!("{core}:running"))),
        "warpctl module ls: {listing}"
    );

    // Removed: port 9 is echoed again.
    let removed = run(&["module", "rm", "acl", "--wait"])?;
    ensure!(
        removed.status.success() && said(&removed).contains("observed: generation"),
        "warpctl module rm: {}",
        said(&removed)
    );
    port_9_echoes(client, 3).context("port 9 after the removal")?;
    let again = run(&["module", "rm", "acl"])?;
    ensure!(
        !again.status.success() && said(&again).contains("no module named acl"),
        "warpctl module rm of a removed module: {}",
        said(&again)
    );
    eprintln!("    module rm --wait: port 9 echoed again; a second rm says no module named acl");

    let report = wait_json(&mut load.0, LOAD_SECONDS + 20)?;
    let sent = report["summary"]["sent"].as_u64().unwrap_or(0);
    let received = report["summary"]["received"].as_u64().unwrap_or(0);
    let lost = report["summary"]["lost"].as_u64().unwrap_or(u64::MAX);
    ensure!(
        sent > 0 && lost == 0 && received == sent,
        "loadgen under the hot load: sent {sent}, received {received}, lost {lost}"
    );
    eprintln!(
        "    loadgen on port 7: {sent} sent, {received} echoed, 0 lost while a module was pushed, refused and removed"
    );
    Ok(())
}
