//! Raw Ethernet frames into an interface, for the malformed-traffic tests:
//! [`send_in_netns`] runs the hidden `cargo xtask __send-frames` helper inside
//! a network namespace (`ip netns exec NS xtask __send-frames IFNAME FILE`),
//! which writes every frame through an AF_PACKET socket bound to `IFNAME` and
//! reports, frame by frame, whether the kernel took it.
//!
//! The frames travel as a file of `NAME HEX` lines, so any test (hosted or
//! appliance) can hand over whatever bytes it built. Linux refuses some
//! frames before they reach the wire, and the report says so rather than
//! hiding it: AF_PACKET rejects frames shorter than the 14-byte Ethernet
//! header (`EINVAL`) and frames longer than the interface MTU plus that
//! header (`EMSGSIZE`).

use crate::net::netns::{Netns, unique_name};
use crate::shell::process::checked_output;
use anyhow::{Context, Result, bail, ensure};
use loadgen::socket::PacketSocket;
use std::path::Path;
use std::time::{Duration, Instant};

/// How long one frame may wait for room in the socket's queue.
const SEND_TIMEOUT: Duration = Duration::from_secs(2);
/// Pause between frames, so a receiver polling its ring never sees a burst.
const FRAME_GAP: Duration = Duration::from_millis(5);
/// Most frames one helper run sends.
const MAX_FRAMES: usize = 10_000;

/// A named frame to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedFrame {
    /// A name without whitespace, echoed in the report.
    pub name: String,
    /// The whole Ethernet frame, without FCS.
    pub bytes: Vec<u8>,
}

/// What the names of a catalogue case's preceding frames contain.
pub const PRECEDING: &str = ".before";

/// The frames one malformed-catalogue case sends, in order: its preceding
/// frames (fragments), named `<case>.before<n>`, then the case's own.
pub fn case_frames(frame: &services::MalformedFrame) -> Vec<NamedFrame> {
    let preceding = frame
        .preceded_by
        .iter()
        .enumerate()
        .map(|(index, bytes)| NamedFrame {
            name: format!("{}{PRECEDING}{index}", frame.name),
            bytes: bytes.clone(),
        });
    preceding
        .chain(std::iter::once(NamedFrame {
            name: frame.name.to_owned(),
            bytes: frame.bytes.clone(),
        }))
        .collect()
}

/// What happened to one frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The frame's name.
    pub name: String,
    /// Its length in bytes.
    pub len: usize,
    /// `None` when the kernel took it; else why it refused.
    pub refused: Option<String>,
}

/// Runs `cargo xtask SUBCOMMAND IFNAME FILE ARGS...` inside `netns` with
/// `frames` written to FILE (a temporary file, removed after), and returns
/// its output: how `__send-frames` and `__flood-frames` are started.
pub fn run_frames_helper(
    netns: &Netns,
    subcommand: &str,
    ifname: &str,
    frames: &[NamedFrame],
    args: &[&str],
) -> Result<String> {
    let path = std::env::temp_dir().join(format!("{}.frames", unique_name("wcf")));
    std::fs::write(&path, encode(frames)?)
        .with_context(|| format!("writing {}", path.display()))?;
    let me = std::env::current_exe().context("locating the xtask binary");
    let output = me.and_then(|me| {
        checked_output(
            netns
                .command(&me.to_string_lossy())
                .arg(subcommand)
                .arg(ifname)
                .arg(&path)
                .args(args),
        )
    });
    let _ = std::fs::remove_file(&path);
    output
}

/// Sends `frames` in order out of `ifname`, which lives in `netns`, and
/// returns one [`Delivery`] per frame. Fails only when the helper cannot run
/// or its report is incomplete; a frame Linux refuses is a `Delivery`.
pub fn send_in_netns(netns: &Netns, ifname: &str, frames: &[NamedFrame]) -> Result<Vec<Delivery>> {
    ensure!(
        frames.len() <= MAX_FRAMES,
        "at most {MAX_FRAMES} frames per run"
    );
    let output = run_frames_helper(netns, "__send-frames", ifname, frames, &[])?;
    let deliveries = parse_report(&output)?;
    let names: Vec<&str> = deliveries.iter().map(|d| d.name.as_str()).collect();
    let wanted: Vec<&str> = frames.iter().map(|f| f.name.as_str()).collect();
    ensure!(
        names == wanted,
        "the helper reported {names:?}, expected {wanted:?}"
    );
    Ok(deliveries)
}

/// `cargo xtask __send-frames IFNAME FILE`: sends every `NAME HEX` line of
/// FILE out of IFNAME, one frame at a time, and prints one report line each:
/// `frame NAME len=N sent` or `frame NAME len=N refused ERROR`.
pub fn run(ifname: &str, file: &Path) -> Result<()> {
    let frames = decode(&std::fs::read_to_string(file).context("reading frames")?)?;
    ensure!(frames.len() <= MAX_FRAMES, "at most {MAX_FRAMES} frames");
    let socket = PacketSocket::open(ifname)?;
    for frame in &frames {
        let verdict = match send_one(&socket, &frame.bytes) {
            Ok(()) => "sent".to_owned(),
            Err(error) => format!("refused {}", error.to_string().replace('\n', " ")),
        };
        println!("frame {} len={} {verdict}", frame.name, frame.bytes.len());
        std::thread::sleep(FRAME_GAP);
    }
    Ok(())
}

/// Sends one frame, waiting (bounded) while the socket's queue is full.
fn send_one(socket: &PacketSocket, frame: &[u8]) -> std::io::Result<()> {
    let deadline = Instant::now() + SEND_TIMEOUT;
    let batch = [frame.to_vec()];
    loop {
        if socket.send_batch(&batch)? == 1 {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the socket queue stayed full",
            ));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// One `NAME HEX` line per frame.
pub(crate) fn encode(frames: &[NamedFrame]) -> Result<String> {
    let mut text = String::new();
    for frame in frames {
        ensure!(
            !frame.name.is_empty() && !frame.name.contains(char::is_whitespace),
            "frame name `{}` must be one word",
            frame.name
        );
        text.push_str(&frame.name);
        text.push(' ');
        for byte in &frame.bytes {
            text.push_str(&format!("{byte:02x}"));
        }
        text.push('\n');
    }
    Ok(text)
}

/// Parses what [`encode`] wrote; an empty HEX is an empty frame.
pub(crate) fn decode(text: &str) -> Result<Vec<NamedFrame>> {
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let mut words = line.split_whitespace();
            let name = words.next().context("empty line")?;
            let hex = words.next().unwrap_or("");
            ensure!(words.next().is_none(), "`{line}`: expected `NAME HEX`");
            ensure!(
                hex.len() % 2 == 0,
                "frame `{name}`: odd number of hex digits"
            );
            let bytes = (0..hex.len())
                .step_by(2)
                .map(|at| u8::from_str_radix(&hex[at..at + 2], 16))
                .collect::<Result<Vec<u8>, _>>()
                .with_context(|| format!("frame `{name}`: not hex"))?;
            Ok(NamedFrame {
                name: name.to_owned(),
                bytes,
            })
        })
        .collect()
}

/// Parses the helper's `frame NAME len=N sent|refused ERROR` lines.
fn parse_report(text: &str) -> Result<Vec<Delivery>> {
    text.lines()
        .filter_map(|line| line.strip_prefix("frame "))
        .map(|line| {
            let mut words = line.splitn(4, ' ');
            let name = words.next().context("no frame name")?;
            let len = words
                .next()
                .and_then(|word| word.strip_prefix("len="))
                .and_then(|len| len.parse().ok())
                .with_context(|| format!("`{line}`: no len="))?;
            let refused = match (words.next(), words.next()) {
                (Some("sent"), None) => None,
                (Some("refused"), error) => Some(error.unwrap_or("").to_owned()),
                _ => bail!("`{line}`: neither sent nor refused"),
            };
            Ok(Delivery {
                name: name.to_owned(),
                len,
                refused,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_through_the_file_format() {
        let frames = vec![
            NamedFrame {
                name: "runt".into(),
                bytes: vec![0xff, 0x00, 0x5a],
            },
            NamedFrame {
                name: "empty".into(),
                bytes: Vec::new(),
            },
        ];
        let text = encode(&frames).unwrap();
        assert_eq!(text, "runt ff005a\nempty \n");
        assert_eq!(decode(&text).unwrap(), frames);
        assert!(
            encode(&[NamedFrame {
                name: "two words".into(),
                bytes: vec![]
            }])
            .is_err()
        );
        assert!(decode("odd abc\n").is_err());
        assert!(decode("nothex zz\n").is_err());
    }

    #[test]
    fn report_lines_parse() {
        let report =
            "frame a len=60 sent\nnoise\nframe b len=10 refused Invalid argument (os error 22)\n";
        let deliveries = parse_report(report).unwrap();
        assert_eq!(deliveries.len(), 2);
        assert_eq!(deliveries[0].refused, None);
        assert_eq!(deliveries[0].len, 60);
        assert_eq!(
            deliveries[1].refused.as_deref(),
            Some("Invalid argument (os error 22)")
        );
        assert!(parse_report("frame c len=1 lost\n").is_err());
    }
}
