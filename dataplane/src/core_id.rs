//! Which core (or pinned thread) the caller runs on: decides whether a freed
//! buffer may go straight back to its pool's local cache.

use core::sync::atomic::{AtomicUsize, Ordering};

/// The identity of one core or pinned thread, unique among everything that
/// runs concurrently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CoreId(pub u32);

/// The platform's `fn() -> u32`, stored as an address; 0 means none.
static SOURCE: AtomicUsize = AtomicUsize::new(0);

/// Installs the platform's core-identity function (the kernel reads it from
/// its per-core GS data).
///
/// # Safety
/// 1. `source` returns, on every core or thread that touches packets, an id
///    that no other concurrently running core or thread returns.
/// 2. It is installed before the first [`crate::Mempool`] is created and never
///    replaced afterwards.
#[allow(unsafe_code)]
pub unsafe fn set_core_id_source(source: fn() -> u32) {
    // Ordering: Release pairs with the Acquire in `current`, so a core that
    // sees the pointer sees a fully initialised function.
    SOURCE.store(source as usize, Ordering::Release);
}

/// The caller's core, or `None` when the platform gave no way to know it (then
/// every buffer free takes the thread-safe return path).
#[inline]
#[allow(unsafe_code)]
pub fn current() -> Option<CoreId> {
    // Ordering: Acquire pairs with the Release in `set_core_id_source`.
    let raw = SOURCE.load(Ordering::Acquire);
    if raw != 0 {
        // SAFETY: the only non-zero value ever stored is a `fn() -> u32`
        // converted to usize by `set_core_id_source`.
        let source: fn() -> u32 = unsafe { core::mem::transmute::<usize, fn() -> u32>(raw) };
        return Some(CoreId(source()));
    }
    hosted_thread_id()
}

#[cfg(any(test, feature = "std"))]
fn hosted_thread_id() -> Option<CoreId> {
    use core::sync::atomic::AtomicU32;
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
