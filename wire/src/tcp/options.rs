//! TCP options (RFC 9293 3.2, RFC 7323, RFC 2018): the ones we use parsed
//! into `TcpOptions`, and written back in the layout Linux sends.

use crate::WireError;

/// Option kinds (RFC 9293 3.2 and the IANA registry).
mod kind {
    pub const END: u8 = 0;
    pub const NOP: u8 = 1;
    pub const MSS: u8 = 2;
    pub const WINDOW_SCALE: u8 = 3;
    pub const SACK_PERMITTED: u8 = 4;
    pub const SACK: u8 = 5;
    pub const TIMESTAMPS: u8 = 8;
}

/// Largest window scale shift (RFC 7323 2.3): larger ones count as this.
pub const MAX_WINDOW_SCALE: u8 = 14;

/// Most bytes [`write_options`] writes (MSS, SACK-permitted with
/// timestamps, window scale).
pub const MAX_WRITTEN_LEN: usize = 40;

/// Most SACK blocks we write or keep from a parse: three fit beside
/// timestamps in the 40 bytes of options.
pub const MAX_SACK_BLOCKS: usize = 3;

/// SACK blocks (RFC 2018): ranges of sequence numbers (left edge, right
/// edge) received beyond a gap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SackBlocks {
    /// The blocks; only the first `len` count.
    pub blocks: [(u32, u32); MAX_SACK_BLOCKS],
    /// How many blocks there are.
    pub len: u8,
}

impl SackBlocks {
    /// The blocks in use.
    pub fn as_slice(&self) -> &[(u32, u32)] {
        &self.blocks[..usize::from(self.len).min(MAX_SACK_BLOCKS)]
    }

    /// Adds a block; false when there is no room.
    pub fn push(&mut self, left: u32, right: u32) -> bool {
        let index = usize::from(self.len);
        if index >= MAX_SACK_BLOCKS {
            return false;
        }
        self.blocks[index] = (left, right);
        self.len += 1;
        true
    }
}

/// The options we act on. Every other option is skipped when parsed and
/// never written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpOptions {
    /// Maximum segment size (kind 2).
    pub mss: Option<u16>,
    /// Window scale shift (kind 3), at most [`MAX_WINDOW_SCALE`].
    pub window_scale: Option<u8>,
    /// SACK permitted (kind 4).
    pub sack_permitted: bool,
    /// Timestamps (kind 8): (TSval, TSecr).
    pub timestamps: Option<(u32, u32)>,
    /// SACK blocks (kind 5), the first three of the option.
    pub sack_blocks: SackBlocks,
}

impl TcpOptions {
    /// How many bytes [`write_options`] writes for these options: a
    /// multiple of 4, at most [`MAX_WRITTEN_LEN`].
    #[inline]
    pub const fn written_len(&self) -> usize {
        let mss = if self.mss.is_some() { 4 } else { 0 };
        let sack_and_timestamps = match (self.sack_permitted, self.timestamps.is_some()) {
            (_, true) => 12,
            (true, false) => 4,
            (false, false) => 0,
        };
        let window_scale = if self.window_scale.is_some() { 4 } else { 0 };
        let blocks = self.sack_blocks.len as usize;
        let sack = if blocks == 0 {
            0
        } else if blocks <= MAX_SACK_BLOCKS {
            4 + 8 * blocks
        } else {
            4 + 8 * MAX_SACK_BLOCKS
        };
        mss + sack_and_timestamps + window_scale + sack
    }
}

/// Parses the options area of a header (`TcpPacket::options`). NOPs are
/// skipped, END stops the parse, SACK blocks and unknown kinds are skipped
/// by their length; a repeated option keeps its last value. A window scale
/// above 14 reads as 14 (RFC 7323 2.3).
///
/// Errors with [`WireError::BadOption`] when an option's length is below
/// 2, missing or runs past `bytes`, or when MSS (4), window scale (3),
/// SACK-permitted (2) or timestamps (10) has another length.
pub fn parse_options(bytes: &[u8]) -> Result<TcpOptions, WireError> {
    let mut options = TcpOptions::default();
    let mut rest = bytes;
    while let Some((&option_kind, after_kind)) = rest.split_first() {
        match option_kind {
            kind::END => break,
            kind::NOP => {
                rest = after_kind;
                continue;
            }
            _ => {}
        }
        let Some(&length) = after_kind.first() else {
            return Err(WireError::BadOption);
        };
        let length = usize::from(length);
        if length < 2 || length > rest.len() {
            return Err(WireError::BadOption);
        }
        let (option, after) = rest.split_at(length);
        match (option_kind, &option[2..]) {
            (kind::MSS, &[high, low]) => options.mss = Some(u16::from_be_bytes([high, low])),
            (kind::WINDOW_SCALE, &[shift]) => {
                options.window_scale = Some(shift.min(MAX_WINDOW_SCALE));
            }
            (kind::SACK_PERMITTED, &[]) => options.sack_permitted = true,
            (kind::TIMESTAMPS, &[a, b, c, d, e, f, g, h]) => {
                options.timestamps = Some((
                    u32::from_be_bytes([a, b, c, d]),
                    u32::from_be_bytes([e, f, g, h]),
                ));
            }
            (kind::MSS | kind::WINDOW_SCALE | kind::SACK_PERMITTED | kind::TIMESTAMPS, _) => {
                return Err(WireError::BadOption);
            }
            (kind::SACK, blocks) if !blocks.is_empty() && blocks.len() % 8 == 0 => {
                options.sack_blocks = SackBlocks::default();
                for block in blocks.chunks_exact(8) {
                    let edge = |at: usize| {
                        u32::from_be_bytes([block[at], block[at + 1], block[at + 2], block[at + 3]])
                    };
                    if !options.sack_blocks.push(edge(0), edge(4)) {
                        break;
                    }
                }
            }
            // Malformed SACK blocks (advice only: ignored) and kinds we do
            // not know.
            _ => {}
        }
        rest = after;
    }
    Ok(options)
}

/// Writes `options` at the start of `out` as Linux lays them out: MSS;
/// SACK-permitted and timestamps as `4 2 8 10 …` (either alone behind two
/// NOPs); NOP and window scale (above 14 written as 14); two NOPs and the
/// SACK blocks. Every piece is a multiple of 4 bytes, so the result needs
/// no padding. Returns the length
/// written, [`TcpOptions::written_len`].
///
/// # Panics
///
/// When `out` is shorter than `options.written_len()` (at most
/// [`MAX_WRITTEN_LEN`]).
pub fn write_options(out: &mut [u8], options: &TcpOptions) -> usize {
    let mut writer = Writer {
        bytes: [0; MAX_WRITTEN_LEN],
        len: 0,
    };
    if let Some(mss) = options.mss {
        let [high, low] = mss.to_be_bytes();
        writer.push(&[kind::MSS, 4, high, low]);
    }
    match (options.sack_permitted, options.timestamps) {
        (sack_permitted, Some((value, echo_reply))) => {
            if sack_permitted {
                writer.push(&[kind::SACK_PERMITTED, 2]);
            } else {
                writer.push(&[kind::NOP, kind::NOP]);
            }
            writer.push(&[kind::TIMESTAMPS, 10]);
            writer.push(&value.to_be_bytes());
            writer.push(&echo_reply.to_be_bytes());
        }
        (true, None) => writer.push(&[kind::NOP, kind::NOP, kind::SACK_PERMITTED, 2]),
        (false, None) => {}
    }
    if let Some(shift) = options.window_scale {
        writer.push(&[
            kind::NOP,
            kind::WINDOW_SCALE,
            3,
            shift.min(MAX_WINDOW_SCALE),
        ]);
    }
    let blocks = options.sack_blocks.as_slice();
    if !blocks.is_empty() {
        writer.push(&[kind::NOP, kind::NOP, kind::SACK, 2 + 8 * blocks.len() as u8]);
        for (left, right) in blocks {
            writer.push(&left.to_be_bytes());
            writer.push(&right.to_be_bytes());
        }
    }
    out[..writer.len].copy_from_slice(&writer.bytes[..writer.len]);
    writer.len
}

/// Options as they are written, before they go to the caller's buffer.
struct Writer {
    bytes: [u8; MAX_WRITTEN_LEN],
    len: usize,
}

impl Writer {
    fn push(&mut self, chunk: &[u8]) {
        self.bytes[self.len..self.len + chunk.len()].copy_from_slice(chunk);
        self.len += chunk.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The options of a SYN from Linux 6.x (captured on a loopback in a
    /// network namespace with MTU 1500): MSS 1460, SACK-permitted,
    /// timestamps, NOP, window scale 10.
    const LINUX_SYN: [u8; 20] = [
        0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a, 0xa2, 0x74, 0x7e, 0x54, 0x00, 0x00, 0x00,
        0x00, 0x01, 0x03, 0x03, 0x0a,
    ];
    /// The options of a data segment from the same connection.
    const LINUX_DATA: [u8; 12] = [
        0x01, 0x01, 0x08, 0x0a, 0xa2, 0x74, 0x7e, 0x54, 0x28, 0x3e, 0x7c, 0x1d,
    ];

    fn syn_options() -> TcpOptions {
        TcpOptions {
            mss: Some(1460),
            window_scale: Some(10),
            sack_permitted: true,
            timestamps: Some((0xa274_7e54, 0)),
            sack_blocks: Default::default(),
        }
    }

    #[test]
    fn parses_what_linux_sends() {
        assert_eq!(parse_options(&LINUX_SYN), Ok(syn_options()));
        assert_eq!(
            parse_options(&LINUX_DATA),
            Ok(TcpOptions {
                timestamps: Some((0xa274_7e54, 0x283e_7c1d)),
                ..TcpOptions::default()
            })
        );
        assert_eq!(parse_options(&[]), Ok(TcpOptions::default()));
    }

    #[test]
    fn writes_what_linux_sends() {
        let mut out = [0xee; 40];
        assert_eq!(write_options(&mut out, &syn_options()), 20);
        assert_eq!(out[..20], LINUX_SYN);
        assert_eq!(out[20], 0xee);
        let data = parse_options(&LINUX_DATA).unwrap();
        assert_eq!(write_options(&mut out, &data), 12);
        assert_eq!(out[..12], LINUX_DATA);
    }

    #[test]
    fn every_combination_round_trips() {
        for bits in 0..16u8 {
            let options = TcpOptions {
                mss: (bits & 1 != 0).then_some(0x1234),
                window_scale: (bits & 2 != 0).then_some(7),
                sack_permitted: bits & 4 != 0,
                timestamps: (bits & 8 != 0).then_some((0x0102_0304, 0xa0b0_c0d0)),
                sack_blocks: Default::default(),
            };
            let mut out = [0u8; MAX_WRITTEN_LEN];
            let len = write_options(&mut out, &options);
            assert_eq!(len, options.written_len(), "{options:?}");
            assert_eq!(len % 4, 0, "{options:?}");
            assert_eq!(parse_options(&out[..len]), Ok(options));
        }
    }

    #[test]
    fn window_scale_above_14_counts_as_14() {
        let parsed = parse_options(&[1, 3, 3, 15]).unwrap();
        assert_eq!(parsed.window_scale, Some(14));
        let mut out = [0u8; 4];
        let options = TcpOptions {
            window_scale: Some(200),
            ..TcpOptions::default()
        };
        write_options(&mut out, &options);
        assert_eq!(out, [1, 3, 3, 14]);
    }

    #[test]
    fn skips_what_it_does_not_use() {
        // An unknown kind, a SACK block, NOPs, then END and garbage.
        let bytes = [
            253, 4, 0xab, 0xcd, 5, 10, 0, 0, 0, 1, 0, 0, 0, 2, 1, 1, 2, 4, 0x05, 0xdc, 0, 0xff,
            0xff,
        ];
        let mut sack_blocks = SackBlocks::default();
        sack_blocks.push(1, 2);
        assert_eq!(
            parse_options(&bytes),
            Ok(TcpOptions {
                mss: Some(1500),
                sack_blocks,
                ..TcpOptions::default()
            })
        );
        // A SACK option of the wrong length is advice to ignore.
        assert_eq!(
            parse_options(&[5, 7, 0, 0, 0, 1, 0]),
            Ok(TcpOptions::default())
        );
    }

    #[test]
    fn sack_blocks_follow_the_timestamps_and_parse_back() {
        let mut sack_blocks = SackBlocks::default();
        for (left, right) in [(1000, 2000), (3000, 4000), (5000, 6000)] {
            assert!(sack_blocks.push(left, right));
        }
        assert!(!sack_blocks.push(7000, 8000), "three fit beside timestamps");
        let options = TcpOptions {
            timestamps: Some((7, 9)),
            sack_blocks,
            ..TcpOptions::default()
        };
        assert_eq!(options.written_len(), MAX_WRITTEN_LEN);
        let mut out = [0u8; MAX_WRITTEN_LEN];
        assert_eq!(write_options(&mut out, &options), 40);
        assert_eq!(&out[12..16], &[1, 1, 5, 26]);
        assert_eq!(parse_options(&out), Ok(options));
        // The last of a repeated option wins.
        assert_eq!(
            parse_options(&[2, 4, 0, 1, 2, 4, 0, 2]).unwrap().mss,
            Some(2)
        );
    }

    #[test]
    fn refuses_malformed_options() {
        for bytes in [
            &[253, 0, 1, 1][..],           // length 0
            &[253, 1, 1, 1],               // length 1
            &[1, 1, 1, 253],               // no length byte
            &[1, 1, 253, 8],               // runs past the end
            &[8, 10, 0, 0, 0, 0, 0, 0, 0], // timestamps cut short
            &[2, 3, 5, 1],                 // MSS of length 3
            &[2, 5, 5, 180, 0],            // MSS of length 5
            &[3, 4, 7, 0],                 // window scale of length 4
            &[3, 2, 1, 1],                 // window scale of length 2
            &[4, 3, 0, 1],                 // SACK-permitted of length 3
            &[8, 8, 0, 0, 0, 0, 0, 0],     // timestamps of length 8
        ] {
            assert_eq!(parse_options(bytes), Err(WireError::BadOption), "{bytes:?}");
        }
    }
}
