//! Traffic checks run from a client namespace against an appliance (QEMU or
//! hosted): reachability, ping without loss, UDP echo through the
//! `__udp-client` helper, and port unreachable for a closed port.

use crate::net::netns::Netns;
use crate::shell::process::checked_output;
use anyhow::{Context, Result, bail, ensure};

/// Pings until one reply comes back (the appliance may still be settling),
/// bounded to `attempts` one-second tries.
pub fn wait_reachable(netns: &Netns, address: &str, attempts: u32) -> Result<()> {
    for _ in 0..attempts {
        let output = netns.output(&["ping", "-c", "1", "-W", "1", address])?;
        if output.status.success() {
            return Ok(());
        }
    }
    bail!("{address} never answered a ping from {}", netns.name())
}

/// Three ARP requests for `target` out of `ifname` in `netns` get three
/// replies.
pub fn arping_answers(netns: &Netns, ifname: &str, target: &str) -> Result<()> {
    let arping = netns.output(&["arping", "-c", "3", "-w", "10", "-I", ifname, target])?;
    let text = String::from_utf8_lossy(&arping.stdout);
    ensure!(
        text.contains("Received 3 response"),
        "arping did not get 3 replies:\n{text}"
    );
    eprintln!(
        "xtask: [arping] {target}: {}",
        text.lines().last().unwrap_or("(no output)")
    );
    Ok(())
}

/// Runs `ping ARGS` in `netns` and requires a reply to every one of its `-c`
/// requests; returns ping's output.
///
/// Without a deadline ping stops waiting about 10 ms (or two round trips)
/// after its last request, so a guest that stalls briefly near the end
/// "loses" the tail although every reply arrives. With `-w` ping waits, and
/// may send extra probes meanwhile; so the check is that icmp_seq 1..=count
/// were all answered, not the loss percentage.
pub fn ping_no_loss(netns: &Netns, args: &[&str]) -> Result<String> {
    let count: u32 = args
        .windows(2)
        .find(|pair| pair[0] == "-c")
        .and_then(|pair| pair[1].parse().ok())
        .context("ping_no_loss needs -c COUNT")?;
    let mut full = vec!["ping", "-n", "-w", "30"];
    full.extend_from_slice(args);
    let output = netns.output(&full)?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let unanswered: Vec<u32> = (1..=count)
        .filter(|seq| !text.contains(&format!(" icmp_seq={seq} ")))
        .collect();
    ensure!(
        unanswered.is_empty(),
        "`{}` got no reply to icmp_seq {unanswered:?}:\n{text}",
        full.join(" ")
    );
    eprintln!(
        "xtask: [ping] {}: all {count} answered ({})",
        full.join(" "),
        text.lines()
            .find(|line| line.contains("packet loss"))
            .unwrap_or("")
    );
    Ok(text)
}

/// Runs the UDP client inside `netns` with `args`; returns its stdout.
pub fn udp_client(netns: &Netns, args: &[&str]) -> Result<String> {
    let me = std::env::current_exe().context("locating the xtask binary")?;
    let mut command = netns.command(&me.to_string_lossy());
    command.arg("__udp-client").args(args);
    let output = checked_output(&mut command)?;
    eprintln!(
        "xtask: [appliance] udp client {}: {}",
        args.join(" "),
        output.trim()
    );
    Ok(output)
}

/// Checks an `udp-echo sent=N received=N identical=N` line: everything back, identical.
pub fn check_echo(output: &str, expected: usize) -> Result<()> {
    let want = format!("udp-echo sent={expected} received={expected} identical={expected}");
    ensure!(
        output.contains(&want),
        "expected `{want}`, got `{}`",
        output.trim()
    );
    Ok(())
}

/// Echoes `count` datagrams from each of `flows` sockets off `target:7`;
/// fails unless every one came back byte-identical.
pub fn udp_echo(client: &Netns, target: &str, flows: u32, count: u32) -> Result<()> {
    let output = udp_client(
        client,
        &[
            "echo",
            &format!("{target}:7"),
            &flows.to_string(),
            &count.to_string(),
        ],
    )?;
    check_echo(&output, (flows * count) as usize)
}

/// Sends `count` datagrams to `target:port`, where a service drops them;
/// fails if any came back.
pub fn udp_dropped(client: &Netns, target: &str, port: u16, count: u32) -> Result<()> {
    let output = udp_client(
        client,
        &["echo", &format!("{target}:{port}"), "1", &count.to_string()],
    )?;
    ensure!(
        output.contains(&format!("udp-echo sent={count} received=0 ")),
        "datagrams to port {port} came back: {output}"
    );
    Ok(())
}

/// Sends to a closed port of `target`; fails unless ICMP port unreachable
/// came back.
pub fn udp_closed(client: &Netns, target: &str) -> Result<()> {
    let output = udp_client(client, &["closed", &format!("{target}:9")])?;
    ensure!(
        output.contains("udp-closed refused=true"),
        "closed UDP port gave no ICMP port unreachable: {output}"
    );
    Ok(())
}

/// Datagrams bigger than the MTU against the appliance at `target`
/// (reassembled on the way in, fragmented on the way out): `ping -s 4000`
/// and `ping -s 65507` all answered, and 4000- and 65507-byte UDP echoes
/// back byte-identical.
pub fn fragmented_traffic(client: &Netns, target: &str) -> Result<()> {
    ping_no_loss(client, &["-c", "3", "-i", "0.3", "-s", "4000", target])?;
    ping_no_loss(
        client,
        &["-c", "2", "-i", "0.5", "-W", "5", "-s", "65507", target],
    )?;
    for (size, count) in [("4000", 5), ("65507", 2)] {
        let output = udp_client(
            client,
            &[
                "echo",
                &format!("{target}:7"),
                "1",
                &count.to_string(),
                "--size",
                size,
            ],
        )?;
        check_echo(&output, count)?;
    }
    Ok(())
}

/// How many datagrams [`unfinished_datagrams_are_bounded`] leaves unfinished.
pub const UNFINISHED: u16 = 1000;

/// Sends [`UNFINISHED`] first fragments whose rest never comes from
/// `ifname` in `client` to the appliance (MAC `ours`, 10.0.0.2; the client
/// is 10.0.0.1); `evicted` reads the appliance's `ipv4/reassembly-evicted`
/// count. All but the configured number of slots must have been evicted
/// (memory stays within the bound), and the appliance must answer after.
pub fn unfinished_datagrams_are_bounded(
    client: &Netns,
    ifname: &str,
    evicted: impl Fn() -> Result<u64>,
) -> Result<()> {
    let before = evicted()?;
    let frames = services::unfinished_datagrams(
        dataplane::MacAddr([0x02, 0, 0, 0, 0, 0x01]),
        std::net::Ipv4Addr::new(10, 0, 0, 2),
        dataplane::MacAddr(client.mac_address(ifname)?),
        std::net::Ipv4Addr::new(10, 0, 0, 1),
        UNFINISHED,
    );
    let named: Vec<crate::net::raw_frames::NamedFrame> = frames
        .into_iter()
        .enumerate()
        .map(|(index, bytes)| crate::net::raw_frames::NamedFrame {
            name: format!("unfinished-{index}"),
            bytes,
        })
        .collect();
    crate::net::raw_frames::send_in_netns(client, ifname, &named)?;
    let slots = services::reassembly::ReassemblyLimits::default().datagrams;
    let expected = u64::from(UNFINISHED) - slots as u64;
    let moved = evicted()? - before;
    ensure!(
        moved == expected,
        "{UNFINISHED} unfinished datagrams evicted {moved}, expected {expected} ({slots} slots)"
    );
    eprintln!("    {UNFINISHED} unfinished datagrams: {moved} evicted, {slots} held");
    ping_no_loss(client, &["-c", "3", "-i", "0.2", "10.0.0.2"])?;
    udp_echo(client, "10.0.0.2", 1, 10)
}
