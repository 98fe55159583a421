//! The vhost-user wire protocol, backend side: a 12-byte header (request,
//! flags, payload size), a little-endian payload, file descriptors as
//! SCM_RIGHTS; replies echo the request with the reply flag. Only the
//! requests a virtio-net device with the features loadgen offers receives
//! are understood; QEMU sends no other.
//!
//! Why not rust-vmm's `vhost` crate (0.18, with `vhost-user-backend`): QEMU's
//! vhost-user-net sends SET_VRING_ENABLE at device init, before
//! SET_FEATURES, and that crate refuses it ("inactive feature") until the
//! protocol-features bit is acked, then hangs up; without protocol features
//! (so without multi-queue) QEMU 10 does not start the device ("unable to
//! start vhost net: 22"). The rings themselves are rust-vmm's
//! (`virtio-queue`, `vm-memory`).

use super::handler::{DeviceError, MemoryRegion, SharedDevice, lock};
use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, recvmsg};
use std::fs::File;
use std::io::{self, IoSliceMut, Read, Write};
use std::os::unix::net::UnixStream;

/// Request codes (vhost-user spec, "Front-end message types").
mod request {
    pub const GET_FEATURES: u32 = 1;
    pub const SET_FEATURES: u32 = 2;
    pub const SET_OWNER: u32 = 3;
    pub const RESET_OWNER: u32 = 4;
    pub const SET_MEM_TABLE: u32 = 5;
    pub const SET_VRING_NUM: u32 = 8;
    pub const SET_VRING_ADDR: u32 = 9;
    pub const SET_VRING_BASE: u32 = 10;
    pub const GET_VRING_BASE: u32 = 11;
    pub const SET_VRING_KICK: u32 = 12;
    pub const SET_VRING_CALL: u32 = 13;
    pub const SET_VRING_ERR: u32 = 14;
    pub const GET_PROTOCOL_FEATURES: u32 = 15;
    pub const SET_PROTOCOL_FEATURES: u32 = 16;
    pub const GET_QUEUE_NUM: u32 = 17;
    pub const SET_VRING_ENABLE: u32 = 18;
}

/// Header flags: protocol version 1, and "this is a reply".
const FLAG_VERSION: u32 = 0x1;
const FLAG_REPLY: u32 = 0x4;
const HEADER_LEN: usize = 12;
/// Largest payload we accept (a full memory table is 8 + 8 × 32 bytes).
const MAX_PAYLOAD: usize = 4096;
/// Most regions in SET_MEM_TABLE.
const MAX_REGIONS: usize = 8;
/// SET_VRING_KICK/CALL/ERR: bit 8 says "no file descriptor".
const VRING_NOFD: u64 = 1 << 8;

/// Why the protocol thread stopped.
#[derive(Debug)]
pub enum ProtocolError {
    /// QEMU closed the connection (the normal end).
    Disconnected,
    /// The socket failed.
    Io(io::Error),
    /// A message we cannot serve.
    Malformed(String),
    /// The device refused a message.
    Device(u32, DeviceError),
}

impl std::fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Disconnected => f.write_str("QEMU disconnected"),
            Self::Io(error) => write!(f, "vhost-user socket: {error}"),
            Self::Malformed(what) => write!(f, "malformed vhost-user message: {what}"),
            Self::Device(request, error) => write!(f, "vhost-user request {request}: {error}"),
        }
    }
}

impl From<io::Error> for ProtocolError {
    fn from(error: io::Error) -> Self {
        if error.kind() == io::ErrorKind::UnexpectedEof {
            Self::Disconnected
        } else {
            Self::Io(error)
        }
    }
}

/// One request: its code, payload and file descriptors.
struct Message {
    request: u32,
    payload: Vec<u8>,
    files: Vec<File>,
}

impl Message {
    fn u32_at(&self, offset: usize) -> Result<u32, ProtocolError> {
        self.payload
            .get(offset..offset + 4)
            .map(|bytes| u32::from_le_bytes(bytes.try_into().expect("four bytes")))
            .ok_or_else(|| ProtocolError::Malformed(format!("request {} too short", self.request)))
    }

    fn u64_at(&self, offset: usize) -> Result<u64, ProtocolError> {
        self.payload
            .get(offset..offset + 8)
            .map(|bytes| u64::from_le_bytes(bytes.try_into().expect("eight bytes")))
            .ok_or_else(|| ProtocolError::Malformed(format!("request {} too short", self.request)))
    }
}

/// Reads one message (header with its descriptors, then the payload).
fn read_message(stream: &mut UnixStream) -> Result<Message, ProtocolError> {
    let mut header = [0u8; HEADER_LEN];
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_REGIONS))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let received = recvmsg(
        &*stream,
        &mut [IoSliceMut::new(&mut header)],
        &mut control,
        RecvFlags::CMSG_CLOEXEC,
    )
    .map_err(io::Error::from)?;
    if received.bytes == 0 {
        return Err(ProtocolError::Disconnected);
    }
    let mut files = Vec::new();
    for message in control.drain() {
        if let RecvAncillaryMessage::ScmRights(fds) = message {
            files.extend(fds.map(File::from));
        }
    }
    if received.bytes < HEADER_LEN {
        stream.read_exact(&mut header[received.bytes..])?;
    }
    let request = u32::from_le_bytes(header[0..4].try_into().expect("four bytes"));
    let size = u32::from_le_bytes(header[8..12].try_into().expect("four bytes")) as usize;
    if size > MAX_PAYLOAD {
        return Err(ProtocolError::Malformed(format!(
            "request {request} of {size} bytes"
        )));
    }
    let mut payload = vec![0u8; size];
    stream.read_exact(&mut payload)?;
    Ok(Message {
        request,
        payload,
        files,
    })
}

/// Sends the reply to `request` carrying `payload`.
fn reply(stream: &mut UnixStream, request: u32, payload: &[u8]) -> io::Result<()> {
    let mut bytes = Vec::with_capacity(HEADER_LEN + payload.len());
    bytes.extend_from_slice(&request.to_le_bytes());
    bytes.extend_from_slice(&(FLAG_VERSION | FLAG_REPLY).to_le_bytes());
    bytes.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    bytes.extend_from_slice(payload);
    stream.write_all(&bytes)
}

/// Serves QEMU on `stream` until it hangs up (`Disconnected`) or sends
/// something we cannot serve.
pub fn serve(mut stream: UnixStream, device: &SharedDevice) -> Result<(), ProtocolError> {
    loop {
        let mut message = read_message(&mut stream)?;
        let code = message.request;
        let refused = |error| ProtocolError::Device(code, error);
        let ring_fd = |message: &mut Message| -> Result<(u32, Option<File>), ProtocolError> {
            let value = message.u64_at(0)?;
            let file = if value & VRING_NOFD != 0 {
                None
            } else {
                Some(message.files.pop().ok_or_else(|| {
                    ProtocolError::Malformed(format!("request {code} without its descriptor"))
                })?)
            };
            Ok(((value & 0xff) as u32, file))
        };
        match code {
            request::GET_FEATURES => {
                let features = lock(device).get_features();
                reply(&mut stream, code, &features.to_le_bytes())?;
            }
            request::SET_FEATURES => {
                let features = message.u64_at(0)?;
                lock(device).set_features(features).map_err(refused)?;
            }
            request::SET_OWNER | request::SET_PROTOCOL_FEATURES => {}
            request::RESET_OWNER => lock(device).reset_owner(),
            request::SET_MEM_TABLE => {
                let count = message.u32_at(0)? as usize;
                if count > MAX_REGIONS {
                    return Err(ProtocolError::Malformed(format!("{count} memory regions")));
                }
                let regions = (0..count)
                    .map(|index| {
                        let at = 8 + 32 * index;
                        Ok(MemoryRegion {
                            guest_address: message.u64_at(at)?,
                            size: message.u64_at(at + 8)?,
                            qemu_address: message.u64_at(at + 16)?,
                            mmap_offset: message.u64_at(at + 24)?,
                        })
                    })
                    .collect::<Result<Vec<_>, ProtocolError>>()?;
                let files = std::mem::take(&mut message.files);
                lock(device)
                    .set_mem_table(&regions, files)
                    .map_err(refused)?;
            }
            request::SET_VRING_NUM => {
                let (index, num) = (message.u32_at(0)?, message.u32_at(4)?);
                lock(device).set_vring_num(index, num).map_err(refused)?;
            }
            request::SET_VRING_ADDR => {
                let index = message.u32_at(0)?;
                let (descriptor, used, available) =
                    (message.u64_at(8)?, message.u64_at(16)?, message.u64_at(24)?);
                lock(device)
                    .set_vring_addr(index, descriptor, used, available)
                    .map_err(refused)?;
            }
            request::SET_VRING_BASE => {
                let (index, base) = (message.u32_at(0)?, message.u32_at(4)?);
                lock(device).set_vring_base(index, base).map_err(refused)?;
            }
            request::GET_VRING_BASE => {
                let index = message.u32_at(0)?;
                let base = lock(device).get_vring_base(index).map_err(refused)?;
                let mut payload = index.to_le_bytes().to_vec();
                payload.extend_from_slice(&base.to_le_bytes());
                reply(&mut stream, code, &payload)?;
            }
            request::SET_VRING_KICK => {
                let (index, file) = ring_fd(&mut message)?;
                lock(device).set_vring_kick(index, file).map_err(refused)?;
            }
            request::SET_VRING_CALL => {
                let (index, file) = ring_fd(&mut message)?;
                lock(device).set_vring_call(index, file).map_err(refused)?;
            }
            // Errors on a ring are not reported to QEMU: the descriptor is
            // taken and closed.
            request::SET_VRING_ERR => {
                ring_fd(&mut message)?;
            }
            request::GET_PROTOCOL_FEATURES => {
                let features = lock(device).get_protocol_features();
                reply(&mut stream, code, &features.to_le_bytes())?;
            }
            request::GET_QUEUE_NUM => {
                let queues = lock(device).get_queue_num();
                reply(&mut stream, code, &queues.to_le_bytes())?;
            }
            request::SET_VRING_ENABLE => {
                let (index, enable) = (message.u32_at(0)?, message.u32_at(4)?);
                lock(device)
                    .set_vring_enable(index, enable != 0)
                    .map_err(refused)?;
            }
            other => {
                return Err(ProtocolError::Malformed(format!(
                    "request {other} (not negotiated)"
                )));
            }
        }
    }
}
