//! A worker's wake-up: an eventfd that the core's doorbell writes (another
//! worker handing it work over a ring, the main thread stopping it) and that
//! its sleep polls beside the NIC queues' descriptors.

use dataplane::Doorbell;
use rustix::event::{EventfdFlags, eventfd};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;

/// One worker's eventfd and the doorbell that writes it.
pub struct Wake {
    fd: Arc<OwnedFd>,
    doorbell: Arc<Doorbell>,
}

impl Wake {
    /// A fresh eventfd (non-blocking, counter at zero) and its doorbell.
    pub fn new() -> std::io::Result<Self> {
        let fd = Arc::new(eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?);
        let written = Arc::clone(&fd);
        let doorbell = Arc::new(Doorbell::new(move || {
            // Adds one to the counter; it fails only when the counter is
            // about to overflow, which leaves it readable anyway.
            let _ = rustix::io::write(&*written, &1u64.to_ne_bytes());
        }));
        Ok(Self { fd, doorbell })
    }

    /// The doorbell other threads ring.
    pub fn doorbell(&self) -> &Arc<Doorbell> {
        &self.doorbell
    }

    /// The descriptor to poll: readable once the doorbell rang.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// After a wake-up: the counter back to zero, so that the next sleep
    /// waits for the next ring.
    pub fn clear(&self) {
        let mut counter = [0u8; 8];
        // Nothing to read (WouldBlock) is fine: it was already zero.
        let _ = rustix::io::read(&*self.fd, &mut counter);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::event::{PollFd, PollFlags, Timespec, poll};

    fn readable(wake: &Wake) -> bool {
        let fd = wake.fd();
        let mut fds = [PollFd::new(&fd, PollFlags::IN)];
        let zero = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        poll(&mut fds, Some(&zero)).unwrap() == 1
    }

    #[test]
    fn the_doorbell_makes_the_descriptor_readable_until_cleared() {
        let wake = Wake::new().unwrap();
        assert!(!readable(&wake));
        wake.doorbell().announce_sleep();
        assert!(wake.doorbell().notify());
        assert!(readable(&wake));
        wake.clear();
        assert!(!readable(&wake));
        wake.doorbell().ring_now();
        wake.doorbell().ring_now();
        assert!(readable(&wake));
        wake.clear();
        assert!(!readable(&wake));
    }
}
