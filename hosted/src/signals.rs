//! SIGINT/SIGTERM ask the runtime to stop; SIGUSR1 asks for a counters dump.
//! `signal-hook` installs handlers that only set atomic flags, which the main
//! thread polls.

use signal_hook::consts::{SIGINT, SIGTERM, SIGUSR1};
use signal_hook::flag;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};

/// Set by SIGINT or SIGTERM.
static STOP: LazyLock<Arc<AtomicBool>> = LazyLock::new(Arc::default);
/// Set by SIGUSR1, cleared when the dump is printed.
static DUMP: LazyLock<Arc<AtomicBool>> = LazyLock::new(Arc::default);

/// Installs the handlers.
pub fn install() -> io::Result<()> {
    for signal in [SIGINT, SIGTERM] {
        flag::register(signal, Arc::clone(&STOP))?;
    }
    flag::register(SIGUSR1, Arc::clone(&DUMP))?;
    Ok(())
}

/// True once SIGINT or SIGTERM arrived.
pub fn stop_requested() -> bool {
    // Ordering: Relaxed; the flag carries no other data (signal-hook sets
    // it with SeqCst, which a Relaxed load still sees).
    STOP.load(Ordering::Relaxed)
}

/// True (once per SIGUSR1) when a dump was asked for.
pub fn take_dump_request() -> bool {
    // Ordering: Relaxed, as in `stop_requested`.
    DUMP.swap(false, Ordering::Relaxed)
}
