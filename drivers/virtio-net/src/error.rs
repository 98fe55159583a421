//! Why a virtio-net device could not be brought up.

/// Errors of device bring-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VirtioError {
    /// A required virtio PCI capability (`cfg_type`) is missing.
    MissingCapability(u8),
    /// A capability points outside its BAR, or the BAR is not a memory BAR.
    BadCapability(u8),
    /// The device did not acknowledge a reset.
    ResetTimeout,
    /// The device lacks a feature the driver requires.
    MissingFeature(u64),
    /// The device refused the negotiated features (`FEATURES_OK` cleared).
    FeaturesRejected,
    /// A queue the driver needs does not exist on the device.
    QueueUnavailable(u16),
    /// No DMA memory for the rings.
    OutOfDmaMemory,
    /// The control queue did not answer, or answered with an error.
    ControlCommandFailed {
        /// Command class.
        class: u8,
        /// Command.
        command: u8,
        /// Acknowledgement byte (0xff when the device never answered).
        ack: u8,
    },
    /// Asked for zero queue pairs, or more than the device has.
    BadQueuePairCount {
        /// Pairs asked for.
        requested: u16,
        /// Pairs the device offers.
        available: u16,
    },
}

impl core::fmt::Display for VirtioError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::MissingCapability(kind) => write!(f, "virtio PCI capability {kind} missing"),
            Self::BadCapability(kind) => {
                write!(f, "virtio PCI capability {kind} outside its memory BAR")
            }
            Self::ResetTimeout => write!(f, "device did not finish its reset"),
            Self::MissingFeature(bits) => write!(f, "device lacks required features {bits:#x}"),
            Self::FeaturesRejected => write!(f, "device rejected the negotiated features"),
            Self::QueueUnavailable(index) => write!(f, "virtqueue {index} unavailable"),
            Self::OutOfDmaMemory => write!(f, "out of DMA memory for virtqueues"),
            Self::ControlCommandFailed {
                class,
                command,
                ack,
            } => write!(
                f,
                "control command class {class} command {command} failed (ack {ack:#x})"
            ),
            Self::BadQueuePairCount {
                requested,
                available,
            } => write!(
                f,
                "{requested} queue pairs requested, device offers {available}"
            ),
        }
    }
}
