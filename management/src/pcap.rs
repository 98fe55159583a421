//! The classic libpcap file format, as `GET /api/v1/capture` streams it:
//! one global header (nanosecond magic `0xa1b23c4d`, version 2.4,
//! `LINKTYPE_ETHERNET`), then a 16-byte header before each frame. Written
//! little-endian; readers tell the byte order from the magic.

/// The magic of a file whose timestamps are in nanoseconds.
pub const MAGIC_NANOSECONDS: u32 = 0xa1b2_3c4d;
/// The format's version, 2.4.
pub const VERSION: (u16, u16) = (2, 4);
/// Ethernet frames (`LINKTYPE_ETHERNET`).
pub const LINKTYPE_ETHERNET: u32 = 1;
/// Bytes of the global header.
pub const GLOBAL_HEADER_LEN: usize = 24;
/// Bytes of a record header.
pub const RECORD_HEADER_LEN: usize = 16;

const NS_PER_SECOND: u64 = 1_000_000_000;

/// The file's global header for frames cut at `snaplen` bytes.
pub fn global_header(snaplen: u32) -> [u8; GLOBAL_HEADER_LEN] {
    let mut header = [0u8; GLOBAL_HEADER_LEN];
    header[0..4].copy_from_slice(&MAGIC_NANOSECONDS.to_le_bytes());
    header[4..6].copy_from_slice(&VERSION.0.to_le_bytes());
    header[6..8].copy_from_slice(&VERSION.1.to_le_bytes());
    // 8..12: the time zone offset, 12..16: the timestamps' accuracy; both
    // 0, as every writer sets them.
    header[16..20].copy_from_slice(&snaplen.to_le_bytes());
    header[20..24].copy_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
    header
}

/// The header of a frame seen at `timestamp_ns` (Unix time in
/// nanoseconds), of which `captured_len` of `original_len` bytes follow.
/// Seconds past the format's 32 bits (in 2106) stay at the last one.
pub fn record_header(
    timestamp_ns: u64,
    captured_len: u32,
    original_len: u32,
) -> [u8; RECORD_HEADER_LEN] {
    let seconds = u32::try_from(timestamp_ns / NS_PER_SECOND).unwrap_or(u32::MAX);
    let nanoseconds = (timestamp_ns % NS_PER_SECOND) as u32;
    let mut header = [0u8; RECORD_HEADER_LEN];
    header[0..4].copy_from_slice(&seconds.to_le_bytes());
    header[4..8].copy_from_slice(&nanoseconds.to_le_bytes());
    header[8..12].copy_from_slice(&captured_len.to_le_bytes());
    header[12..16].copy_from_slice(&original_len.to_le_bytes());
    header
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_global_header_is_byte_exact() {
        // As `tcpdump --time-stamp-precision=nano -w` writes it on x86
        // for an Ethernet capture with `-s 256`.
        assert_eq!(
            global_header(256),
            [
                0x4d, 0x3c, 0xb2, 0xa1, 0x02, 0x00, 0x04, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x01,
                0x00, 0x00, 0x01, 0x00, 0x00, 0x00
            ]
        );
    }

    #[test]
    fn record_headers_split_seconds_and_nanoseconds() {
        assert_eq!(
            record_header(1_700_000_000_123_456_789, 60, 98),
            [
                0x00, 0xf1, 0x53, 0x65, 0x15, 0xcd, 0x5b, 0x07, 60, 0, 0, 0, 98, 0, 0, 0
            ]
        );
        assert_eq!(record_header(0, 0, 0), [0; RECORD_HEADER_LEN]);
        let far = record_header(u64::MAX, 1, 1);
        assert_eq!(far[0..4], u32::MAX.to_le_bytes());
        assert_eq!(
            u32::from_le_bytes([far[4], far[5], far[6], far[7]]),
            (u64::MAX % NS_PER_SECOND) as u32
        );
    }
}
