//! `log` facade backend: serial console plus the in-memory ring of records the
//! management plane searches, with a per-core prefix.

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicU32, Ordering};

use crate::{arch::percpu, dev::serial};

/// Owner of the console: 0 when free, else core id + 1.
static CONSOLE_OWNER: AtomicU32 = AtomicU32::new(0);

/// Recent log records, searched by the management plane's
/// `GET /api/v1/logs` (the ring locks itself; see `management::log_ring`).
pub static LOG_RING: management::LogRing = management::LogRing::new();

/// The kernel logger installed into the `log` facade.
struct KernelLogger;

static LOGGER: KernelLogger = KernelLogger;

/// Installs the logger; call once on the boot core after `serial::init`.
pub fn init(level: log::LevelFilter) {
    // `set_logger` only fails if a logger is already installed, which is harmless here.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
}

/// Console access held by one core; re-entrant so that a fault handler that interrupts
/// a half-written line on the same core can still print.
struct ConsoleGuard {
    acquired: bool,
}

impl ConsoleGuard {
    fn lock() -> Self {
        let me = percpu::core_id() + 1;
        // Ordering: Relaxed: only our own earlier store can make it equal `me`,
        // and a core sees its own stores in program order.
        if CONSOLE_OWNER.load(Ordering::Relaxed) == me {
            return Self { acquired: false };
        }
        // Acquire pairs with the Release in `drop` so ring writes of the previous
        // owner are visible to us.
        while CONSOLE_OWNER
            .compare_exchange_weak(0, me, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            core::hint::spin_loop();
        }
        Self { acquired: true }
    }
}

impl Drop for ConsoleGuard {
    fn drop(&mut self) {
        if self.acquired {
            // Release orders our console writes before the next owner's.
            CONSOLE_OWNER.store(0, Ordering::Release);
        }
    }
}

/// Writer that sends text to the serial port.
struct ConsoleWriter<'a> {
    _guard: &'a ConsoleGuard,
}

impl Write for ConsoleWriter<'_> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        serial::write_bytes(text.as_bytes());
        Ok(())
    }
}

/// Prints formatted text to the console without a prefix (used by the `print!` macros).
pub fn print(args: fmt::Arguments<'_>) {
    let guard = ConsoleGuard::lock();
    let mut writer = ConsoleWriter { _guard: &guard };
    let _ = writer.write_fmt(args);
}

impl log::Log for KernelLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let guard = ConsoleGuard::lock();
        let mut writer = ConsoleWriter { _guard: &guard };
        let ns = crate::dev::time::now_ns();
        let _ = writeln!(
            writer,
            "[{:4}.{:03} c{} {:5}] {}",
            ns / 1_000_000,
            (ns / 1_000) % 1_000,
            percpu::core_id(),
            record.level(),
            record.args()
        );
        LOG_RING.push_record(ns / 1_000_000, record);
    }

    fn flush(&self) {}
}

/// Prints to the console (serial + log ring) without a prefix.
#[macro_export]
macro_rules! kprint {
    ($($arg:tt)*) => { $crate::dev::console::print(format_args!($($arg)*)) };
}

/// Prints a line to the console (serial + log ring) without a prefix.
#[macro_export]
macro_rules! kprintln {
    () => { $crate::kprint!("\n") };
    ($($arg:tt)*) => { $crate::dev::console::print(format_args!("{}\n", format_args!($($arg)*))) };
}
