//! A plain packet socket bound to one interface, set up by the driver's own
//! steps, for programs that move frames with `sendmmsg`/`recvmmsg` instead
//! of rings (loadgen).

use crate::sys::{self, AfPacketError, InterfaceInfo};
use std::os::fd::{AsRawFd, OwnedFd};

/// Opens a packet socket on `ifname` that receives every protocol,
/// transmits past the qdisc layer and does not read back the frames this
/// host sends; returns it with what the kernel reports about the interface.
/// Frames go out only on that interface: the socket is bound to its index.
/// Needs `CAP_NET_RAW`.
pub fn open_bound(ifname: &str) -> Result<(OwnedFd, InterfaceInfo), AfPacketError> {
    let socket = sys::packet_socket()?;
    let info = sys::interface_info(socket.as_raw_fd(), ifname)?;
    sys::bind(&socket, info.index)?;
    sys::bypass_qdisc(&socket)?;
    sys::ignore_outgoing(&socket)?;
    Ok((socket, info))
}
