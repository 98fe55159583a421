//! QEMU's console read as it arrives: the guest's serial port on stdout and
//! QEMU's own messages on stderr, line by line with the time each arrived.

use crate::shell::process::describe;
use anyhow::{Context, Result};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

/// What QEMU's stderr lines start with in the log.
const STDERR_PREFIX: &str = "qemu stderr: ";

/// The console of a spawned QEMU.
pub struct Console {
    /// Every line with its arrival time; lines from stderr start with
    /// `qemu stderr: `. The channel closes once QEMU closed both streams.
    pub lines: Receiver<(String, Instant)>,
    readers: Vec<JoinHandle<()>>,
}

/// Spawns `command` (stdin as the caller set it) with stdout and stderr
/// read into a [`Console`].
pub fn spawn(command: &mut Command) -> Result<(Child, Console)> {
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .with_context(|| format!("could not start {}", describe(command)))?;
    let stdout = child
        .stdout
        .take()
        .context("QEMU stdout was not captured")?;
    let stderr = child
        .stderr
        .take()
        .context("QEMU stderr was not captured")?;
    let (sender, lines) = mpsc::channel();
    let stderr_sender = sender.clone();
    let readers = vec![
        std::thread::spawn(move || forward_lines(stdout, &sender, "")),
        std::thread::spawn(move || forward_lines(stderr, &stderr_sender, STDERR_PREFIX)),
    ];
    Ok((child, Console { lines, readers }))
}

impl Console {
    /// Waits until QEMU closed both streams and returns the lines not
    /// received yet, joined.
    pub fn finish(self) -> String {
        for reader in self.readers {
            let _ = reader.join();
        }
        self.lines.try_iter().map(|(line, _)| line).collect()
    }

    /// Appends every line to `log` from a thread of its own, until QEMU
    /// closed both streams; join the returned handle to wait for that.
    pub fn collect_into(self, log: Arc<Mutex<String>>) -> JoinHandle<()> {
        std::thread::spawn(move || {
            for (line, _) in self.lines.iter() {
                if let Ok(mut log) = log.lock() {
                    log.push_str(&line);
                }
            }
            for reader in self.readers {
                let _ = reader.join();
            }
        })
    }
}

/// Sends each line of `source` (with its arrival time) to `sink`.
fn forward_lines(source: impl std::io::Read, sink: &Sender<(String, Instant)>, prefix: &str) {
    let mut reader = BufReader::new(source);
    let mut buffer = Vec::new();
    loop {
        buffer.clear();
        match reader.read_until(b'\n', &mut buffer) {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let text = String::from_utf8_lossy(&buffer).replace('\r', "");
                if sink
                    .send((format!("{prefix}{text}"), Instant::now()))
                    .is_err()
                {
                    return;
                }
            }
        }
    }
}
