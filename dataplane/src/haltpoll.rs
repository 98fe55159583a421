//! Adaptive halt polling: how long a core that ran out of work keeps
//! polling before it sleeps, grown when wake-ups come soon after the
//! core halted and shrunk when they come late.
//!
//! Halting costs a wake-up on the next packet: an interrupt, and in a VM
//! the host's wake-up of the vCPU thread (under QEMU's TCG hundreds of
//! microseconds at the tail). Polling a little longer before halting
//! saves that wake-up when work comes back soon, and costs CPU when it
//! does not. [`HaltPoll`] keeps a per-core *window* between 0 and a
//! maximum and adjusts it after each sleep from how long the core was
//! idle in all (from its first empty poll to its wake-up), as Linux's
//! `haltpoll` cpuidle governor (`guest_halt_poll_ns`) does:
//!
//! - idle longer than the window but not longer than the maximum: a
//!   longer window would have caught the work, so the window doubles,
//!   starting from [`GROW_START_NS`] (capped at the maximum);
//! - idle longer than the maximum: no window we allow would have caught
//!   it, so the window halves (and reaches 0 on a core left idle: an idle
//!   appliance spends nothing on polling);
//! - idle within the window: the poll caught the work; nothing changes.
//!
//! Linux measures only the halt's own residency; this measures the whole
//! idle stretch, so that work arriving a little after the window ends
//! grows the window past it instead of leaving it where it is.

/// The default maximum window: Linux's `guest_halt_poll_ns` default.
pub const DEFAULT_MAX_WINDOW_NS: u64 = 200_000;
/// The first window a core at 0 grows to (Linux's
/// `guest_halt_poll_grow_start`), or the maximum when that is smaller.
pub const GROW_START_NS: u64 = 50_000;
/// The factor a window grows by (Linux's `guest_halt_poll_grow`).
const GROW_FACTOR: u64 = 2;
/// The divisor a window shrinks by (Linux's `guest_halt_poll_shrink`).
const SHRINK_DIVISOR: u64 = 2;

/// One core's halt-polling window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HaltPoll {
    /// The largest window (the spec's `halt_poll_us`).
    max_window_ns: u64,
    /// How long the core keeps polling before it halts, now.
    window_ns: u64,
}

/// How [`HaltPoll::after_sleep`] changed the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowChange {
    /// The wake-up came within the maximum but after the window: grown.
    Grown,
    /// The wake-up came after the maximum: shrunk.
    Shrunk,
    /// Neither (already at its bound, or the wake-up came within it).
    Kept,
}

impl HaltPoll {
    /// A window that starts at 0 (halt at once, like `idle = "halt"`) and
    /// grows up to `max_window_ns`.
    pub const fn new(max_window_ns: u64) -> Self {
        Self {
            max_window_ns,
            window_ns: 0,
        }
    }

    /// How long to keep polling after the first empty poll, now.
    pub const fn window_ns(&self) -> u64 {
        self.window_ns
    }

    /// The largest window.
    pub const fn max_window_ns(&self) -> u64 {
        self.max_window_ns
    }

    /// Whether a core idle for `idle_ns` since its first empty poll
    /// should keep polling rather than sleep.
    pub const fn keep_polling(&self, idle_ns: u64) -> bool {
        idle_ns < self.window_ns
    }

    /// After a sleep: the core was idle `idle_ns` from its first empty
    /// poll to its wake-up. Grows or shrinks the window (see the module).
    pub fn after_sleep(&mut self, idle_ns: u64) -> WindowChange {
        let before = self.window_ns;
        if idle_ns > self.window_ns && idle_ns <= self.max_window_ns {
            self.window_ns = self
                .window_ns
                .saturating_mul(GROW_FACTOR)
                .max(GROW_START_NS)
                .min(self.max_window_ns);
        } else if idle_ns > self.max_window_ns {
            self.window_ns /= SHRINK_DIVISOR;
        }
        match self.window_ns.cmp(&before) {
            core::cmp::Ordering::Greater => WindowChange::Grown,
            core::cmp::Ordering::Less => WindowChange::Shrunk,
            core::cmp::Ordering::Equal => WindowChange::Kept,
        }
    }
}

impl Default for HaltPoll {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_WINDOW_NS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_closed_and_grows_from_the_start_value_to_the_maximum() {
        let mut window = HaltPoll::default();
        assert_eq!(window.window_ns(), 0);
        assert!(!window.keep_polling(0), "a closed window halts at once");
        assert_eq!(window.after_sleep(80_000), WindowChange::Grown);
        assert_eq!(window.window_ns(), GROW_START_NS);
        assert_eq!(window.after_sleep(80_000), WindowChange::Grown);
        assert_eq!(window.window_ns(), 100_000);
        assert!(window.keep_polling(80_000), "now the poll catches it");
        assert_eq!(window.after_sleep(150_000), WindowChange::Grown);
        assert_eq!(window.window_ns(), DEFAULT_MAX_WINDOW_NS);
        assert_eq!(window.after_sleep(199_000), WindowChange::Kept);
        assert_eq!(window.window_ns(), DEFAULT_MAX_WINDOW_NS);
    }

    #[test]
    fn a_wake_up_within_the_window_changes_nothing() {
        let mut window = HaltPoll::default();
        window.after_sleep(1_000);
        assert_eq!(window.window_ns(), GROW_START_NS);
        assert_eq!(window.after_sleep(1_000), WindowChange::Kept);
        window.after_sleep(60_000);
        assert_eq!(window.window_ns(), 100_000);
        assert_eq!(window.after_sleep(60_000), WindowChange::Kept);
        assert_eq!(window.window_ns(), 100_000);
    }

    #[test]
    fn long_sleeps_shrink_it_to_zero() {
        let mut window = HaltPoll::default();
        for _ in 0..3 {
            window.after_sleep(150_000);
        }
        assert_eq!(window.window_ns(), DEFAULT_MAX_WINDOW_NS);
        assert_eq!(window.after_sleep(10_000_000_000), WindowChange::Shrunk);
        assert_eq!(window.window_ns(), 100_000);
        let mut sleeps = 1;
        while window.window_ns() > 0 {
            assert_eq!(window.after_sleep(u64::MAX), WindowChange::Shrunk);
            sleeps += 1;
            assert!(sleeps < 64, "the window never reached 0");
        }
        assert_eq!(window.after_sleep(u64::MAX), WindowChange::Kept);
        assert!(!window.keep_polling(0));
    }

    #[test]
    fn a_small_maximum_caps_the_start_value() {
        let mut window = HaltPoll::new(20_000);
        assert_eq!(window.after_sleep(10_000), WindowChange::Grown);
        assert_eq!(window.window_ns(), 20_000);
        assert_eq!(window.max_window_ns(), 20_000);
        assert_eq!(window.after_sleep(30_000), WindowChange::Shrunk);
        assert_eq!(window.window_ns(), 10_000);
    }

    #[test]
    fn a_zero_maximum_never_polls() {
        let mut window = HaltPoll::new(0);
        for idle_ns in [0, 1, 50_000, u64::MAX] {
            window.after_sleep(idle_ns);
            assert_eq!(window.window_ns(), 0);
        }
    }
}
