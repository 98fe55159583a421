//! One packet of a batch: its descriptor (wasm/ABI.md, "Descriptor") and
//! the window of its first bytes.

/// The 16-byte descriptor the host writes before every batch.
#[derive(Clone, Copy, Debug, Default)]
#[repr(C)]
pub struct Descriptor {
    /// 0: address of this slot's window.
    pub window: u32,
    /// 4: bytes of the packet in the window.
    pub len: u16,
    /// 6: the packet's whole length.
    pub packet_len: u16,
    /// 8: index of the interface it arrived on.
    pub interface: u8,
    /// 9: the module's [`Verdict`].
    pub verdict: u8,
    /// 10: `1` when the module changed window bytes.
    pub dirty: u8,
    /// 11: with [`Verdict::Redirect`], index into the service's `outputs`.
    pub output: u8,
    /// 12: offset of the IPv4 header in the window, [`ABSENT`] if none.
    pub l3: u16,
    /// 14: offset of the TCP/UDP/ICMP header in the window, [`ABSENT`] if none.
    pub l4: u16,
}

const _: () = assert!(core::mem::size_of::<Descriptor>() == 16);

/// `l3` / `l4` when the header is not there.
pub const ABSENT: u16 = 0xffff;

/// What happens to a packet after the batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// On to what follows the service (the default).
    Pass,
    /// Dropped, counted by the host as `dropped-by-module`.
    Drop,
    /// Back out of the interface it came in on.
    Tx,
    /// To the service's `outputs[index]`.
    Redirect(u8),
}

/// IP protocol numbers the examples use.
pub mod protocol {
    /// ICMP.
    pub const ICMP: u8 = 1;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
}

/// A flow's 5-tuple, addresses and ports as numbers (`10.0.0.1` is
/// `0x0a000001`). Ports are 0 for protocols other than TCP and UDP, and
/// when the transport header is not in the window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FiveTuple {
    /// Source address.
    pub source: u32,
    /// Destination address.
    pub destination: u32,
    /// Source port.
    pub source_port: u16,
    /// Destination port.
    pub destination_port: u16,
    /// IP protocol.
    pub protocol: u8,
}

impl FiveTuple {
    /// The 13-byte map key: the fields in this order, big-endian (as on the wire).
    pub fn key(&self) -> [u8; 13] {
        let mut key = [0; 13];
        key[0..4].copy_from_slice(&self.source.to_be_bytes());
        key[4..8].copy_from_slice(&self.destination.to_be_bytes());
        key[8..10].copy_from_slice(&self.source_port.to_be_bytes());
        key[10..12].copy_from_slice(&self.destination_port.to_be_bytes());
        key[12] = self.protocol;
        key
    }
}

/// A packet of the batch, lent to [`crate::Service::process`].
pub struct Slot<'batch> {
    index: u32,
    descriptor: &'batch mut Descriptor,
    window: &'batch mut [u8],
}

impl<'batch> Slot<'batch> {
    /// A slot over its descriptor and the `descriptor.len` bytes of its window.
    pub fn new(index: u32, descriptor: &'batch mut Descriptor, window: &'batch mut [u8]) -> Self {
        Self {
            index,
            descriptor,
            window,
        }
    }

    /// The window: the packet's first bytes, from where the hook's packets start.
    pub fn bytes(&self) -> &[u8] {
        self.window
    }

    /// The window to change; marks the slot dirty, so the host copies it back.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        self.descriptor.dirty = 1;
        self.window
    }

    /// The packet's whole length.
    pub fn packet_len(&self) -> usize {
        usize::from(self.descriptor.packet_len)
    }

    /// Index of the interface the packet arrived on.
    pub fn interface(&self) -> u8 {
        self.descriptor.interface
    }

    /// Offset of the IPv4 header in the window, if the packet is IPv4 and
    /// its fixed header is in the window.
    pub fn l3(&self) -> Option<usize> {
        let l3 = usize::from(self.descriptor.l3);
        (self.descriptor.l3 != ABSENT && l3 + 20 <= self.window.len()).then_some(l3)
    }

    /// Offset of the transport header in the window, if the host found one.
    pub fn l4(&self) -> Option<usize> {
        let l4 = usize::from(self.descriptor.l4);
        (self.descriptor.l4 != ABSENT && l4 < self.window.len()).then_some(l4)
    }

    /// The packet's 5-tuple, if it is IPv4.
    pub fn five_tuple(&self) -> Option<FiveTuple> {
        let l3 = self.l3()?;
        let ip = &self.window[l3..];
        let protocol = ip[9];
        let mut tuple = FiveTuple {
            source: u32::from_be_bytes([ip[12], ip[13], ip[14], ip[15]]),
            destination: u32::from_be_bytes([ip[16], ip[17], ip[18], ip[19]]),
            protocol,
            ..FiveTuple::default()
        };
        if let Some(l4) = self.l4()
            && (protocol == protocol::TCP || protocol == protocol::UDP)
            && l4 + 4 <= self.window.len()
        {
            tuple.source_port = be16(self.window, l4);
            tuple.destination_port = be16(self.window, l4 + 2);
        }
        Some(tuple)
    }

    /// Sets what happens to the packet.
    pub fn set_verdict(&mut self, verdict: Verdict) {
        let (code, output) = match verdict {
            Verdict::Pass => (0, 0),
            Verdict::Drop => (1, 0),
            Verdict::Tx => (2, 0),
            Verdict::Redirect(output) => (3, output),
        };
        self.descriptor.verdict = code;
        self.descriptor.output = output;
    }

    /// Copies packet bytes from `offset` (beyond the window too) into
    /// `destination`; the bytes copied, `None` on the host's refusal.
    pub fn read(&self, offset: u32, destination: &mut [u8]) -> Option<usize> {
        usize::try_from(crate::imports::packet_read(self.index, offset, destination)).ok()
    }

    /// Writes `source` into the packet at `offset`; the bytes written.
    /// Inside the window, a dirty window wins after the batch.
    pub fn write(&mut self, offset: u32, source: &[u8]) -> Option<usize> {
        usize::try_from(crate::imports::packet_write(self.index, offset, source)).ok()
    }
}

/// The big-endian u16 at `offset` (callers check the bounds).
pub fn be16(bytes: &[u8], offset: usize) -> u16 {
    u16::from_be_bytes([bytes[offset], bytes[offset + 1]])
}

/// Writes `value` big-endian at `offset` (callers check the bounds).
pub fn set_be16(bytes: &mut [u8], offset: usize, value: u16) {
    bytes[offset..offset + 2].copy_from_slice(&value.to_be_bytes());
}
