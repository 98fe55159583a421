//! SIGINT/SIGTERM ask the runtime to stop; SIGUSR1 asks for a counters dump.
//! The handlers only set atomic flags that the main thread polls.
#![allow(unsafe_code)]

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set by SIGINT or SIGTERM.
static STOP: AtomicBool = AtomicBool::new(false);
/// Set by SIGUSR1, cleared when the dump is printed.
static DUMP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop(_signal: libc::c_int) {
    // Ordering: Relaxed; the flag carries no other data, and async-signal
    // context allows only lock-free atomics anyway.
    STOP.store(true, Ordering::Relaxed);
}

extern "C" fn on_dump(_signal: libc::c_int) {
    // Ordering: Relaxed, as in `on_stop`.
    DUMP.store(true, Ordering::Relaxed);
}

/// Installs the handlers.
pub fn install() -> io::Result<()> {
    let stop: extern "C" fn(libc::c_int) = on_stop;
    let dump: extern "C" fn(libc::c_int) = on_dump;
    for (signal, handler) in [
        (libc::SIGINT, stop as libc::sighandler_t),
        (libc::SIGTERM, stop as libc::sighandler_t),
        (libc::SIGUSR1, dump as libc::sighandler_t),
    ] {
        // SAFETY: `sigaction` is plain old data; all-zero is a valid value
        // (empty mask, no flags) that we then fill in.
        let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
        action.sa_sigaction = handler;
        action.sa_flags = libc::SA_RESTART;
        // SAFETY: `action` is a valid sigaction whose handler only stores to
        // an atomic (async-signal-safe); the old action is not asked for.
        if unsafe { libc::sigaction(signal, &action, std::ptr::null_mut()) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// True once SIGINT or SIGTERM arrived.
pub fn stop_requested() -> bool {
    // Ordering: Relaxed, see `on_stop`.
    STOP.load(Ordering::Relaxed)
}

/// True (once per SIGUSR1) when a dump was asked for.
pub fn take_dump_request() -> bool {
    // Ordering: Relaxed, see `on_stop`.
    DUMP.swap(false, Ordering::Relaxed)
}
