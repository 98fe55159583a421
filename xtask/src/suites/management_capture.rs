//! The packet capture's checks, part of the management checks on both
//! platforms: `GET /api/v1/capture` refuses bad parameters (400) and a
//! missing token (401); a capture by curl, bounded by count and seconds,
//! holds the ICMP echo requests and replies and the UDP echo datagrams sent
//! meanwhile, both ways, with the right addresses, as `tshark -r -` reads
//! them; a second capture meanwhile gets 409; the capture's own connection
//! is not in it; and `warpctl capture -w - | tshark -r -` shows pings live
//! and summarises on stderr. The pcap files stay in
//! `target/test-artifacts/`.

use crate::net::netns::Netns;
use crate::shell::host::{ensure_programs, target_dir};
use crate::shell::process::ChildGuard;
use crate::suites::management_traffic::{curl_in, sample};
use crate::suites::traffic::{ping_no_loss, udp_echo};
use anyhow::{Context, Result, bail, ensure};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The appliance's address, as the client namespace reaches it.
const APPLIANCE: &str = "10.0.0.2";
/// The client's address.
const CLIENT: &str = "10.0.0.1";
/// How often the checks look at a file or process they wait for.
const POLL: Duration = Duration::from_millis(100);
/// Looks (of [`POLL`]) before a wait gives up: 30 s.
const MAX_POLLS: u32 = 300;

/// The capture checks against the appliance at `base` (`http://…:8080`)
/// from `client`, with `token`; `warpctl` is the built CLI.
pub fn capture_checks(client: &Netns, base: &str, token: &str, warpctl: &Path) -> Result<()> {
    ensure_programs("the capture checks", &[("tshark", "tshark")])?;
    let artifacts = target_dir().join("test-artifacts");
    std::fs::create_dir_all(&artifacts).context("creating target/test-artifacts")?;
    let bearer = format!("Authorization: Bearer {token}");
    let curl = |args: &[&str]| curl_in(client, args);
    let code = |args: &[&str]| -> Result<String> {
        let mut full = vec!["-o", "/dev/null", "-w", "%{http_code}"];
        full.extend_from_slice(args);
        curl(&full)
    };
    let url = |query: &str| format!("{base}/api/v1/capture?{query}");

    for query in [
        "count=5",
        "interface=eth9",
        "interface=eth0&count=0",
        "interface=eth0&count=99999999999",
        "interface=eth0&seconds=-1",
        "interface=eth0&seconds=abc",
        "interface=eth0&snaplen=65536",
        "interface=eth0&cout=5",
    ] {
        let answered = code(&["-H", &bearer, &url(query)])?;
        ensure!(
            answered == "400",
            "GET /api/v1/capture?{query} answered {answered}"
        );
    }
    let said = curl(&["-H", &bearer, &url("interface=eth9")])?;
    ensure!(
        said.contains("no interface `eth9`: the spec has eth0"),
        "GET /api/v1/capture?interface=eth9 said `{said}`"
    );
    let answered = code(&[&url("interface=eth0&count=1&seconds=1")])?;
    ensure!(
        answered == "401",
        "a capture without a token answered {answered}"
    );
    eprintln!(
        "    /api/v1/capture: 400 for 8 bad queries (message names the interfaces), 401 without a token"
    );

    curl_capture(client, base, &bearer, &artifacts)?;
    warpctl_capture(client, base, token, warpctl, &artifacts)?;
    let scrape = curl(&[&format!("{base}/metrics")])?;
    let active = sample(&scrape, "warpcore_capture_active", &[("interface", "eth0")]);
    let frames = sample(
        &scrape,
        "warpcore_capture_frames_total",
        &[("interface", "eth0")],
    );
    let dropped = sample(
        &scrape,
        "warpcore_capture_dropped_frames_total",
        &[("interface", "eth0")],
    );
    ensure!(
        active == 0.0 && frames > 0.0,
        "after the captures /metrics says active {active}, frames {frames}"
    );
    eprintln!(
        "    /metrics: capture inactive after both, {frames} frames copied, {dropped} dropped"
    );
    Ok(())
}

/// A capture by curl (count 1000, 6 s, so it ends by time) while pings
/// and UDP echoes go: tshark finds them both ways; a second capture
/// meanwhile is refused 409 (and that refusal, on another connection, is
/// in the capture while the capture's own stream is not); the trailer's
/// frame count is tshark's.
fn curl_capture(client: &Netns, base: &str, bearer: &str, artifacts: &Path) -> Result<()> {
    let pcap = artifacts.join("capture-curl.pcap");
    let headers = artifacts.join("capture-curl.headers");
    for stale in [&pcap, &headers] {
        let _ = std::fs::remove_file(stale);
    }
    let url = format!("{base}/api/v1/capture?interface=eth0&count=1000&seconds=6");
    let (pcap_text, headers_text) = (path_text(&pcap), path_text(&headers));
    let mut capture = ChildGuard::spawn(
        client
            .command("timeout")
            .args([
                "-k",
                "5",
                "40",
                "curl",
                "-sS",
                "--max-time",
                "30",
                "-H",
                bearer,
            ])
            .args(["-D", &headers_text, "-o", &pcap_text, &url])
            .stdin(Stdio::null()),
    )?;
    wait_until("the capture to be armed", || {
        let scrape = client.run(&["curl", "-sS", "--max-time", "5", &format!("{base}/metrics")])?;
        Ok(sample(&scrape, "warpcore_capture_active", &[("interface", "eth0")]) == 1.0)
    })?;
    let second = client.run(&[
        "curl",
        "-sS",
        "--max-time",
        "10",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-H",
        bearer,
        &format!("{base}/api/v1/capture?interface=eth0&count=1"),
    ])?;
    ensure!(
        second == "409",
        "a second capture meanwhile answered {second}"
    );
    ping_no_loss(client, &["-c", "2", "-i", "0.2", APPLIANCE])?;
    udp_echo(client, APPLIANCE, 1, 3)?;
    let exit = wait_for_exit(&mut capture, "the curl capture")?;
    ensure!(exit.success(), "the curl capture exited {exit}");

    let head = std::fs::read_to_string(&headers).context("reading curl's -D file")?;
    ensure!(
        head.starts_with("HTTP/1.1 200 OK\r\n"),
        "the capture's head: {head}"
    );
    let field = |name: &str| {
        head.lines()
            .find_map(|line| line.strip_prefix(&format!("{name}: ")))
            .map(str::trim)
    };
    let icmp = tshark_fields(
        &pcap,
        &["-Y", "icmp"],
        &["ip.src", "ip.dst", "icmp.type", "icmp.seq"],
    )?;
    for seq in 1..=2 {
        for (from, to, kind) in [(CLIENT, APPLIANCE, 8), (APPLIANCE, CLIENT, 0)] {
            let line = format!("{from}\t{to}\t{kind}\t{seq}");
            ensure!(
                icmp.lines().any(|found| found == line),
                "the capture lacks ICMP `{line}`; tshark found:\n{icmp}\n{head}"
            );
        }
    }
    let udp = tshark_fields(
        &pcap,
        &["-Y", "udp.port == 7"],
        &["ip.src", "ip.dst", "udp.srcport", "udp.dstport"],
    )?;
    let toward = udp
        .lines()
        .filter(|line| {
            line.starts_with(&format!("{CLIENT}\t{APPLIANCE}\t")) && line.ends_with("\t7")
        })
        .count();
    let back = udp
        .lines()
        .filter(|line| line.starts_with(&format!("{APPLIANCE}\t{CLIENT}\t7\t")))
        .count();
    ensure!(
        toward == 3 && back == 3,
        "the capture holds {toward} datagrams to port 7 and {back} back, 3 each were sent:\n{udp}"
    );
    // Port 8080 dissected as HTTP: the 409 is there, the capture's own
    // 200 with its pcap is not.
    let http = tshark_fields(
        &pcap,
        &["-d", "tcp.port==8080,http", "-Y", "http.response"],
        &["http.response.code", "http.content_type"],
    )?;
    ensure!(
        http.lines().any(|line| line.starts_with("409\t")),
        "the second capture's 409 is not in the capture:\n{http}"
    );
    ensure!(
        !http.contains("pcap"),
        "the capture holds its own stream:\n{http}"
    );
    let frames = tshark(&pcap, &["-T", "fields", "-e", "frame.number"])?
        .lines()
        .count();
    ensure!(
        field("X-Warpcore-Capture-End") == Some("time")
            && field("X-Warpcore-Capture-Frames") == Some(frames.to_string().as_str()),
        "the trailer does not say `time` and {frames} frames:\n{head}"
    );
    eprintln!(
        "    curl capture | tshark -r -: 2 echo requests and replies, 3 UDP echoes both ways, the 409 and not itself; {frames} frames, {} dropped, ended by time",
        field("X-Warpcore-Capture-Dropped").unwrap_or("?")
    );
    Ok(())
}

/// `warpctl capture -c 6 -w - | tshark -r -` while three pings go: the
/// echoes appear, and warpctl summarises on stderr.
fn warpctl_capture(
    client: &Netns,
    base: &str,
    token: &str,
    warpctl: &Path,
    artifacts: &Path,
) -> Result<()> {
    let decoded = artifacts.join("capture-warpctl.txt");
    let notes = artifacts.join("capture-warpctl.stderr");
    for stale in [&decoded, &notes] {
        let _ = std::fs::remove_file(stale);
    }
    let script = format!(
        "timeout -k 5 40 {} --server {base} --token {token} capture -i eth0 -c 6 --seconds 20 -w - 2>{} \
         | tshark -r - -Y icmp -T fields -e ip.src -e ip.dst -e icmp.type -e icmp.seq >{} 2>/dev/null",
        path_text(warpctl),
        path_text(&notes),
        path_text(&decoded)
    );
    let mut pipeline = ChildGuard::spawn(
        client
            .command("sh")
            .args(["-c", &script])
            .stdin(Stdio::null()),
    )?;
    wait_until("warpctl to say it is capturing", || {
        Ok(std::fs::read_to_string(&notes).is_ok_and(|text| text.contains("capturing on eth0")))
    })?;
    ping_no_loss(client, &["-c", "3", "-i", "0.2", APPLIANCE])?;
    wait_for_exit(&mut pipeline, "warpctl capture | tshark")?;
    let said = std::fs::read_to_string(&notes).context("reading warpctl's stderr")?;
    let summary = said
        .lines()
        .find(|line| line.contains(" frames, ") && line.ends_with(" on eth0"))
        .with_context(|| format!("warpctl printed no summary:\n{said}"))?;
    let icmp = std::fs::read_to_string(&decoded).context("reading tshark's output")?;
    // Six frames: the three pings' requests and replies, unless an ARP
    // probe took a place; the first two pings' are there either way.
    for seq in 1..=2 {
        for (from, to, kind) in [(CLIENT, APPLIANCE, 8), (APPLIANCE, CLIENT, 0)] {
            let line = format!("{from}\t{to}\t{kind}\t{seq}");
            ensure!(
                icmp.lines().any(|found| found == line),
                "warpctl capture | tshark lacks ICMP `{line}`:\n{icmp}\n{said}"
            );
        }
    }
    eprintln!("    warpctl capture -c 6 -w - | tshark -r -: the echoes; {summary}");
    Ok(())
}

/// `tshark` over `pcap` with `args` (a display filter...), printing
/// `fields` of each matching frame tab-separated, one frame a line.
fn tshark_fields(pcap: &Path, args: &[&str], fields: &[&str]) -> Result<String> {
    let mut all = args.to_vec();
    all.extend(["-T", "fields"]);
    for field in fields {
        all.extend(["-e", field]);
    }
    tshark(pcap, &all)
}

/// Runs `tshark -r - ARGS < pcap` and returns what it printed.
fn tshark(pcap: &Path, args: &[&str]) -> Result<String> {
    let input = std::fs::File::open(pcap).with_context(|| format!("opening {}", pcap.display()))?;
    let output = Command::new("tshark")
        .args(["-r", "-"])
        .args(args)
        .stdin(input)
        .output()
        .context("running tshark")?;
    ensure!(
        output.status.success(),
        "tshark -r - {} < {} failed: {}",
        args.join(" "),
        pcap.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Looks at `done` every [`POLL`] until it holds, at most [`MAX_POLLS`]
/// times.
fn wait_until(what: &str, mut done: impl FnMut() -> Result<bool>) -> Result<()> {
    for _ in 0..MAX_POLLS {
        if done()? {
            return Ok(());
        }
        std::thread::sleep(POLL);
    }
    bail!("waited {} s for {what}", (POLL * MAX_POLLS).as_secs())
}

/// Waits (at most [`MAX_POLLS`] looks, then a little more, as the child
/// runs under `timeout`) for `child` to exit.
fn wait_for_exit(child: &mut ChildGuard, what: &str) -> Result<std::process::ExitStatus> {
    for _ in 0..MAX_POLLS + 150 {
        if let Some(status) = child.child_mut().try_wait()? {
            return Ok(status);
        }
        std::thread::sleep(POLL);
    }
    bail!("{what} did not end")
}

fn path_text(path: &Path) -> String {
    PathBuf::from(path).to_string_lossy().into_owned()
}
