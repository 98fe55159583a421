//! QEMU's human monitor (HMP) on a Unix socket, for the few cases that
//! change the virtual machine from outside while it runs (`set_link`).

use anyhow::{Context, Result, bail};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long QEMU gets to answer one command (a bound, not a check).
const ANSWER_WAIT: Duration = Duration::from_secs(10);

/// A monitor socket path for one session, removed on drop.
pub struct MonitorSocket {
    path: PathBuf,
}

impl MonitorSocket {
    /// A fresh path under the temporary directory named after `tag`.
    pub fn new(tag: &str) -> Self {
        let path =
            std::env::temp_dir().join(format!("warpcore-{tag}-{}.monitor", std::process::id()));
        let _ = std::fs::remove_file(&path);
        Self { path }
    }

    /// The QEMU arguments that serve the monitor on the socket (QEMU
    /// listens; it does not wait for us to connect).
    pub fn qemu_args(&self) -> Vec<String> {
        vec![
            "-monitor".into(),
            format!("unix:{},server=on,wait=off", self.path.display()),
        ]
    }

    /// Connects and waits for the prompt.
    pub fn connect(&self) -> Result<Monitor> {
        Monitor::connect(&self.path)
    }
}

impl Drop for MonitorSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A connected monitor.
pub struct Monitor {
    stream: UnixStream,
}

impl Monitor {
    fn connect(path: &Path) -> Result<Self> {
        let stream = UnixStream::connect(path)
            .with_context(|| format!("connecting to the QEMU monitor at {}", path.display()))?;
        stream.set_read_timeout(Some(Duration::from_millis(200)))?;
        let mut monitor = Self { stream };
        monitor.read_to_prompt()?;
        Ok(monitor)
    }

    /// Runs one command and returns what QEMU printed before the next
    /// prompt (its echo of the command included).
    pub fn command(&mut self, line: &str) -> Result<String> {
        self.stream.write_all(format!("{line}\n").as_bytes())?;
        self.read_to_prompt()
    }

    fn read_to_prompt(&mut self) -> Result<String> {
        let deadline = Instant::now() + ANSWER_WAIT;
        let mut text = Vec::new();
        let mut chunk = [0u8; 4096];
        while Instant::now() < deadline {
            match self.stream.read(&mut chunk) {
                Ok(0) => bail!("the QEMU monitor closed the connection"),
                Ok(read) => {
                    text.extend_from_slice(&chunk[..read]);
                    if text.ends_with(b"(qemu) ") {
                        return Ok(String::from_utf8_lossy(&text).into_owned());
                    }
                }
                Err(error)
                    if matches!(
                        error.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(error) => return Err(error.into()),
            }
        }
        bail!(
            "no monitor prompt within {ANSWER_WAIT:?}; got {:?}",
            String::from_utf8_lossy(&text)
        )
    }
}
