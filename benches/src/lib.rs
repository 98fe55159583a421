//! Helpers shared by warpcore's criterion benchmarks: thread pinning and
//! test frames.

/// Pins the calling thread to CPU `index` (modulo the CPUs there are); returns
/// false when the platform refused, in which case the run is unpinned.
pub fn pin_to_cpu(index: usize) -> bool {
    match core_affinity::get_core_ids() {
        Some(ids) if !ids.is_empty() => core_affinity::set_for_current(ids[index % ids.len()]),
        _ => false,
    }
}

/// A 64-byte Ethernet frame (IPv4/UDP-shaped) from `source` to `destination`.
pub fn ethernet_frame(destination: [u8; 6], source: [u8; 6]) -> [u8; 64] {
    let mut frame = [0u8; 64];
    frame[..6].copy_from_slice(&destination);
    frame[6..12].copy_from_slice(&source);
    frame[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    frame
}
