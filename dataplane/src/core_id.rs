//! Which core (or pinned thread) the caller runs on: decides whether a freed
//! buffer may go straight back to its pool's local cache.

use spin::Once;

/// The identity of one core or pinned thread, unique among everything that
/// runs concurrently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CoreId(pub u32);

/// The platform's core-identity function, once installed.
static SOURCE: Once<fn() -> u32> = Once::new();

/// Installs the platform's core-identity function (the kernel reads it from
/// its per-core GS data).
///
/// # Safety
/// 1. `source` returns, on every core or thread that touches packets, an id
///    that no other concurrently running core or thread returns.
/// 2. It is installed before the first [`crate::Mempool`] is created.
///
/// Only the first call installs anything: later ones change nothing, so the
/// identity never changes under a running pool.
#[allow(unsafe_code)]
pub unsafe fn set_core_id_source(source: fn() -> u32) {
    // `Once` publishes the function with Release and `get` reads it with
    // Acquire, so a core that sees it sees it whole.
    SOURCE.call_once(|| source);
}

/// The caller's core, or `None` when the platform gave no way to know it (then
/// every buffer free takes the thread-safe return path).
#[inline]
pub fn current() -> Option<CoreId> {
    match SOURCE.get() {
        Some(source) => Some(CoreId(source())),
        None => hosted_thread_id(),
    }
}

#[cfg(any(test, feature = "std"))]
fn hosted_thread_id() -> Option<CoreId> {
    use core::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(1 << 16);
    std::thread_local! {
        // Ordering: Relaxed is enough, the counter only has to hand out
        // distinct numbers.
        static ID: u32 = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    Some(CoreId(ID.with(|id| *id)))
}

#[cfg(not(any(test, feature = "std")))]
fn hosted_thread_id() -> Option<CoreId> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_get_distinct_ids() {
        let here = current().unwrap();
        assert_eq!(here, current().unwrap());
        let there = std::thread::spawn(|| current().unwrap()).join().unwrap();
        assert_ne!(here, there);
    }
}
