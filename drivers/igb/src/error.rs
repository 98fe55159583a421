//! Why an igb device could not be brought up.

/// Errors of device bring-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IgbError {
    /// `CTRL.RST` did not clear within the reset budget.
    ResetTimeout,
    /// The receive address register 0 holds no valid MAC (`RAH0.AV` clear
    /// or an all-zero / multicast address).
    NoMacAddress,
    /// A queue's `RXDCTL.ENABLE` / `TXDCTL.ENABLE` did not read back set.
    QueueEnableTimeout {
        /// The queue.
        queue: u16,
        /// True for the transmit queue, false for the receive queue.
        transmit: bool,
    },
    /// A ring length that the device cannot take: a multiple of 8
    /// descriptors (128 bytes) from 8 to 4096 is required.
    BadRingLength(u16),
    /// A ring base address that is not 128-byte aligned.
    BadRingAddress(u64),
    /// A queue index past the device's 16 queues.
    NoSuchQueue(u16),
    /// A PHY register access through `MDIC` failed or never completed.
    PhyAccess {
        /// The PHY register.
        register: u8,
    },
    /// Receive buffers with fewer bytes after their headroom than the
    /// queue is programmed for.
    BufferTooSmall(usize),
}

impl core::fmt::Display for IgbError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::ResetTimeout => f.write_str("device reset (CTRL.RST) did not complete"),
            Self::NoMacAddress => f.write_str("no valid MAC address in RAL0/RAH0"),
            Self::QueueEnableTimeout { queue, transmit } => write!(
                f,
                "{} queue {queue} did not report enabled",
                if *transmit { "transmit" } else { "receive" }
            ),
            Self::BadRingLength(length) => write!(
                f,
                "ring of {length} descriptors: need a multiple of 8 from 8 to 4096"
            ),
            Self::BadRingAddress(address) => {
                write!(f, "ring at {address:#x} is not 128-byte aligned")
            }
            Self::NoSuchQueue(queue) => write!(f, "queue {queue}: the 82576 has 16"),
            Self::PhyAccess { register } => {
                write!(f, "PHY register {register} access through MDIC failed")
            }
            Self::BufferTooSmall(bytes) => write!(
                f,
                "receive buffers hold {bytes} bytes after the headroom, the queue needs {}",
                crate::queue::RX_BUFFER_BYTES
            ),
        }
    }
}
