//! The `log` logger of `warpcore-hosted`: each record goes to the
//! terminal as the runtime always printed (`warpcore-hosted: ...`,
//! info and below to stdout, warnings and errors to stderr) and into the
//! log ring the management plane searches.

use management::LogRing;
use std::io::Write;

/// Recent log records, searched by `GET /api/v1/logs`.
pub static LOG_RING: LogRing = LogRing::new();

/// The logger installed into the `log` facade.
struct HostedLogger;

static LOGGER: HostedLogger = HostedLogger;

/// Installs the logger at `info`; call once, first thing.
pub fn init() {
    // `set_logger` only fails if a logger is already installed, which is harmless here.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(log::LevelFilter::Info);
}

impl log::Log for HostedLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let line = format!("warpcore-hosted: {}\n", record.args());
        // A closed terminal must not stop the runtime: write errors are ignored.
        let _ = if record.level() <= log::Level::Warn {
            std::io::stderr().lock().write_all(line.as_bytes())
        } else {
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(line.as_bytes())
                .and_then(|()| stdout.flush())
        };
        let now_ns = crate::worker::clock();
        LOG_RING.push_record(now_ns / 1_000_000, record);
    }

    fn flush(&self) {
        let _ = std::io::stdout().flush();
    }
}
