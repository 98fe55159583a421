//! The management status page in headless Chromium, run inside the client
//! namespace against a running appliance under UDP echo traffic: the
//! dumped DOM must show udp-echo's packets/s moving, and a screenshot is
//! kept in `target/test-artifacts/`.

use crate::net::netns::Netns;
use crate::shell::host::{ensure_programs, target_dir};
use anyhow::{Context, Result, ensure};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The page's polling period for the test, in ms (`?refresh=`).
const REFRESH_MS: u32 = 250;
/// Chromium's virtual-time budget, in ms: the page's timers run this long
/// (virtual time stands still while a fetch is in flight, so every
/// refresh really reaches the appliance).
const VIRTUAL_TIME_MS: u32 = 3000;
/// A Chromium run is killed after this many seconds.
const CHROMIUM_SECONDS: u32 = 60;
/// The traffic stops after this long even if Chromium has not finished.
const TRAFFIC_CAP: Duration = Duration::from_secs(120);
/// UDP echo clients running at once.
const SENDERS: usize = 2;
/// Loads of the page before the check gives up.
const ATTEMPTS: u32 = 3;

/// Echoes UDP datagrams off `target:7` from `client` until `stop` is set
/// or [`TRAFFIC_CAP`] passes; each burst is bounded by `timeout`. Two of
/// these run at once, so that one's restart leaves no gap in the traffic:
/// under virtual time the page's last two scrapes can be only a fetch
/// apart in real time.
fn traffic(client: &Netns, target: &str, stop: &AtomicBool) -> Result<u64> {
    let me = std::env::current_exe().context("locating the xtask binary")?;
    let me = me.to_string_lossy();
    let target = format!("{target}:7");
    let started = Instant::now();
    let mut bursts = 0;
    while !stop.load(Ordering::Relaxed) && started.elapsed() < TRAFFIC_CAP {
        let output = client.output(&[
            "timeout",
            "-k",
            "2",
            "10",
            &me,
            "__udp-client",
            "echo",
            &target,
            "2",
            "2000",
        ])?;
        ensure!(
            output.status.success(),
            "the UDP echo client failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        bursts += 1;
    }
    Ok(bursts)
}

/// Runs headless Chromium in `client` on `url` with `extra` arguments;
/// returns its stdout.
fn chromium(client: &Netns, profile: &str, url: &str, extra: &[&str]) -> Result<String> {
    let seconds = CHROMIUM_SECONDS.to_string();
    let budget = format!("--virtual-time-budget={VIRTUAL_TIME_MS}");
    let profile = format!("--user-data-dir={profile}");
    let mut args = vec![
        "timeout",
        "-k",
        "5",
        seconds.as_str(),
        "chromium",
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--no-first-run",
        "--hide-scrollbars",
        &profile,
        &budget,
    ];
    args.extend_from_slice(extra);
    args.push(url);
    let output = client.output(&args)?;
    ensure!(
        output.status.success(),
        "chromium {} exited with {}: {}",
        extra.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stderr)
            .lines()
            .rev()
            .take(5)
            .collect::<Vec<_>>()
            .join("\n")
    );
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The text of the first `<td>` whose attributes include all of `attributes`.
fn cell<'a>(dom: &'a str, attributes: &[&str]) -> Option<&'a str> {
    dom.split("<td ").skip(1).find_map(|cell| {
        let (opening, rest) = cell.split_once('>')?;
        attributes
            .iter()
            .all(|attribute| opening.contains(attribute))
            .then(|| rest.split('<').next().unwrap_or(""))
    })
}

/// The number of refreshes the page completed (`#updated`'s `data-count`).
fn refreshes(dom: &str) -> Option<u32> {
    let (_, rest) = dom.split_once("id=\"updated\"")?;
    let (_, rest) = rest.split_once("data-count=\"")?;
    rest.split('"').next()?.parse().ok()
}

/// What one load of the page showed.
#[derive(Debug)]
struct Shown {
    refreshes: Option<u32>,
    received_rate: Option<f64>,
    received: Option<f64>,
}

fn shown(dom: &str) -> Shown {
    let udp_echo = |field: &str| {
        let field = format!("data-field=\"{field}\"");
        cell(dom, &["data-node=\"udp-echo\"", &field])
            .and_then(|text| text.trim().parse::<f64>().ok())
    };
    Shown {
        refreshes: refreshes(dom),
        received_rate: udp_echo("received-rate"),
        received: udp_echo("received"),
    }
}

/// Loads `base`'s status page in headless Chromium from `client` while UDP
/// echo traffic runs: the DOM must show at least two refreshes and a
/// non-zero udp-echo received rate; saves a screenshot.
pub fn status_page_checks(client: &Netns, base: &str) -> Result<()> {
    ensure_programs("the status page test", &[("chromium", "chromium")])?;
    let started = Instant::now();
    let target = base
        .trim_start_matches("http://")
        .split(':')
        .next()
        .context("no host in the base address")?
        .to_string();
    let profile = std::env::temp_dir().join(format!("warpcore-chromium-{}", std::process::id()));
    let profile = profile.to_string_lossy().into_owned();
    let artifacts = target_dir().join("test-artifacts");
    std::fs::create_dir_all(&artifacts).context("creating target/test-artifacts")?;
    let screenshot = artifacts.join("management-status.png");
    let _ = std::fs::remove_file(&screenshot);
    let url = format!("{base}/?refresh={REFRESH_MS}");

    let stop = AtomicBool::new(false);
    let result = std::thread::scope(|scope| -> Result<(Shown, u32)> {
        let senders = [(); SENDERS].map(|()| scope.spawn(|| traffic(client, &target, &stop)));
        // Let the traffic start before the first scrape.
        std::thread::sleep(Duration::from_millis(500));
        let outcome = (|| -> Result<(Shown, u32)> {
            let mut last = None;
            for attempt in 1..=ATTEMPTS {
                let dom = chromium(client, &profile, &url, &["--dump-dom"])?;
                let seen = shown(&dom);
                let moving = seen.refreshes.is_some_and(|count| count >= 2)
                    && seen.received_rate.is_some_and(|rate| rate > 0.0);
                if moving {
                    chromium(
                        client,
                        &profile,
                        &url,
                        &[
                            "--window-size=1200,900",
                            &format!("--screenshot={}", screenshot.display()),
                        ],
                    )?;
                    return Ok((seen, attempt));
                }
                eprintln!("    status page, load {attempt}: {seen:?}");
                last = Some(seen);
            }
            anyhow::bail!(
                "the status page did not show udp-echo's packets moving in {ATTEMPTS} loads: {last:?}"
            )
        })();
        stop.store(true, Ordering::Relaxed);
        for sender in senders {
            let bursts = sender
                .join()
                .map_err(|_| anyhow::anyhow!("a traffic thread panicked"))??;
            ensure!(bursts > 0, "no UDP echo traffic was sent");
        }
        outcome
    });
    let _ = std::fs::remove_dir_all(&profile);
    let (seen, attempt) = result?;
    ensure!(
        screenshot.is_file(),
        "chromium saved no screenshot at {}",
        screenshot.display()
    );
    eprintln!(
        "    status page (headless chromium, load {attempt}): {} refreshes, udp-echo {} packets/s, {} received; {:.1} s",
        seen.refreshes.unwrap_or(0),
        seen.received_rate.unwrap_or(0.0),
        seen.received.unwrap_or(0.0),
        started.elapsed().as_secs_f64()
    );
    eprintln!("    screenshot: {}", screenshot.display());
    Ok(())
}
