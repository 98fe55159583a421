//! The management plane on several cores, shared by the hosted and the
//! appliance suites: the NIC's steering (a multi-queue tap, virtio-net
//! with several queue pairs) sends each management connection to a core
//! by a hash of its addresses, and the cores other than the management
//! core hand its segments over (`services::tcp::handoff`). Every
//! connection is answered, whichever core it landed on, and the handoff
//! counter in `/metrics` shows that some landed elsewhere.

use crate::net::netns::Netns;
use crate::shell::host::workspace_root;
use crate::suites::management_traffic::{BASE, TOKEN, sample};
use anyhow::{Context, Result, ensure};

/// Management connections opened, each from its own source port: of 32,
/// all land on the management core with a chance of 2^-32 on two cores.
const CONNECTIONS: u16 = 32;
/// The first connection's source port.
const FIRST_PORT: u16 = 42000;
/// The family that counts handed-over segments per core.
const HANDOFF: &str = "warpcore_tcp_handoff_segments_total";

/// `examples/management.toml`'s `[management]` table (its last), to append
/// to another spec: the listen address 10.0.0.2:8080 and the test token's
/// hash.
pub fn management_table() -> Result<String> {
    let path = workspace_root().join("examples/management.toml");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let start = text
        .find("\n[management]")
        .context("examples/management.toml has no [management] table")?;
    Ok(text[start + 1..].to_owned())
}

/// One GET of `path` from source port `port` (with the token when
/// `token`), bounded in time; returns the HTTP status curl saw.
fn get_from_port(client: &Netns, port: u16, path: &str, token: bool) -> Result<String> {
    let port = port.to_string();
    let url = format!("{BASE}{path}");
    let authorization = format!("Authorization: Bearer {TOKEN}");
    let mut args = vec![
        "timeout",
        "-k",
        "5",
        "20",
        "curl",
        "-sS",
        "--max-time",
        "15",
        "--local-port",
        &port,
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
    ];
    if token {
        args.extend(["-H", authorization.as_str()]);
    }
    args.push(&url);
    client
        .run(&args)
        .with_context(|| format!("GET {path} from port {port}"))
}

/// `/metrics` now.
fn scrape(client: &Netns) -> Result<String> {
    let url = format!("{BASE}/metrics");
    client.run(&[
        "timeout",
        "-k",
        "5",
        "20",
        "curl",
        "-sS",
        "--max-time",
        "15",
        &url,
    ])
}

/// `CONNECTIONS` management connections from distinct source ports, each
/// one GET of `/metrics` or `/api/v1/status` (alternately): every one is
/// answered 200, and the cores other than core 0 (the management core)
/// handed segments over to it.
pub fn every_connection_answered(client: &Netns, cores: usize) -> Result<()> {
    for index in 0..CONNECTIONS {
        let (path, token) = if index % 2 == 0 {
            ("/metrics", false)
        } else {
            ("/api/v1/status", true)
        };
        let port = FIRST_PORT + index;
        let status = get_from_port(client, port, path, token)?;
        ensure!(
            status == "200",
            "GET {path} from port {port} answered {status}"
        );
    }
    let scrape = scrape(client)?;
    let handed: Vec<f64> = (0..cores)
        .map(|core| sample(&scrape, HANDOFF, &[("core", &core.to_string())]))
        .collect();
    eprintln!(
        "    {CONNECTIONS} management connections answered; segments handed over to core 0 by core: {handed:?}"
    );
    ensure!(
        scrape.lines().any(|line| line.starts_with(HANDOFF)),
        "/metrics has no {HANDOFF}"
    );
    ensure!(
        handed[1..].iter().any(|count| *count > 0.0),
        "no core handed a management segment over: the steering sent all {CONNECTIONS} \
         connections to core 0, or the other cores answered them"
    );
    Ok(())
}
