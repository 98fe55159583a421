//! The rewriter example in Rust, C and AssemblyScript: every rewritten
//! byte equals a frame built from scratch with the new DSCP and port, and
//! every checksum verifies over the whole packet.

mod common;

use common::{Numbers, counters, load, run};
use warpcore_wasm_examples_test::frames::{Ipv4Packet, ipv4_checksum_ok, transport_checksum_ok};
use warpcore_wasm_examples_test::host::{Hook, LoadError, Outcome, Settings};
use warpcore_wasm_examples_test::modules::{Example, Language};
use warpcore_wasm_examples_test::traffic::{REWRITER_CONFIG, mix, mix_frames, mix_ip, repeated};

/// What REWRITER_CONFIG makes of `packet`, built from its fields.
fn rewritten(packet: &Ipv4Packet) -> Ipv4Packet {
    let mut expected = packet.clone();
    expected.tos = 46 << 2 | (packet.tos & 0b11);
    if matches!(packet.protocol, 6 | 17) && packet.fragment_offset == 0 {
        expected.destination_port = match packet.destination_port {
            9 => 7,
            5000 => 6000,
            port => port,
        };
    }
    expected
}

/// The counters after `times` mixes: DSCP marked on every IPv4 packet not
/// already at 46; ports remapped on the TCP/UDP first fragments to 9 or 5000.
fn expected_counters(times: i64) -> Vec<(String, i64)> {
    let packets: Vec<Ipv4Packet> = mix().into_iter().flatten().collect();
    let marked = packets
        .iter()
        .filter(|packet| packet.tos >> 2 != 46)
        .count() as i64;
    let remapped = packets
        .iter()
        .filter(|packet| rewritten(packet).destination_port != packet.destination_port)
        .count() as i64;
    counters(&[
        ("dscp-marked", marked * times),
        ("port-remapped", remapped * times),
    ])
}

#[test]
fn rewrites_match_frames_built_from_scratch_in_every_language() {
    let expected_frames: Vec<Vec<u8>> = mix()
        .into_iter()
        .zip(mix_frames())
        .map(|(packet, frame)| packet.map_or(frame, |packet| rewritten(&packet).frame()))
        .collect();
    let expected_ip: Vec<Vec<u8>> = mix()
        .into_iter()
        .flatten()
        .map(|packet| rewritten(&packet).ip())
        .collect();
    for language in Language::ALL {
        for (settings, frames, expected, l3) in [
            (Settings::default(), mix_frames(), &expected_frames, 14),
            (
                Settings {
                    window: 64,
                    slots: 3,
                    ..Settings::default()
                },
                mix_frames(),
                &expected_frames,
                14,
            ),
            (
                Settings {
                    hook: Hook::Ipv4,
                    ..Settings::default()
                },
                mix_ip(),
                &expected_ip,
                0,
            ),
        ] {
            let result = run(
                language,
                Example::Rewriter,
                REWRITER_CONFIG,
                settings,
                &repeated(&frames, 2),
            );
            assert!(
                result
                    .outcomes
                    .iter()
                    .all(|outcome| *outcome == Outcome::Pass),
                "{language:?}"
            );
            assert_eq!(
                result.counters,
                expected_counters(2),
                "{language:?} {settings:?}"
            );
            for (index, (got, want)) in result
                .frames
                .iter()
                .zip(expected.iter().cycle())
                .enumerate()
            {
                assert_eq!(got, want, "{language:?} {settings:?}: frame {index}");
                let is_ipv4 = l3 == 0 || got[12..14] == [0x08, 0x00];
                if is_ipv4 {
                    let ip = &got[l3..];
                    assert!(
                        ipv4_checksum_ok(ip),
                        "{language:?}: IPv4 checksum of frame {index}"
                    );
                    if u16::from_be_bytes([ip[6], ip[7]]) & 0x1fff == 0 {
                        assert!(
                            transport_checksum_ok(ip),
                            "{language:?}: transport checksum of frame {index}"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn random_ports_and_payloads_keep_every_checksum_right() {
    let mut numbers = Numbers::new(1624);
    let mut frames = Vec::new();
    for _ in 0..500 {
        let destination_port = [9, 5000, 7, 6000, 0xffff][numbers.below(5) as usize];
        let mut packet = Ipv4Packet::udp(
            [10, 0, 1, numbers.below(255) as u8],
            [10, 0, 2, numbers.below(255) as u8],
            numbers.below(65536) as u16,
            destination_port,
        );
        packet.protocol = [6, 17][numbers.below(2) as usize];
        packet.tos = numbers.below(256) as u8;
        packet.payload = (0..numbers.below(300))
            .map(|_| numbers.below(256) as u8)
            .collect();
        frames.push(packet.frame());
    }
    let runs: Vec<_> = Language::ALL
        .iter()
        .map(|&language| {
            run(
                language,
                Example::Rewriter,
                REWRITER_CONFIG,
                Settings::default(),
                &frames,
            )
        })
        .collect();
    for (index, frame) in runs[0].frames.iter().enumerate() {
        assert!(ipv4_checksum_ok(&frame[14..]), "frame {index}");
        assert!(transport_checksum_ok(&frame[14..]), "frame {index}");
        assert_eq!(frame[15] >> 2, 46, "frame {index}");
        assert!(
            ![9, 5000].contains(&u16::from_be_bytes([frame[36], frame[37]])),
            "frame {index}"
        );
    }
    assert_eq!(runs[0], runs[1], "Rust and C");
    assert_eq!(runs[0], runs[2], "Rust and AssemblyScript");
}

#[test]
fn only_dscp_or_only_ports_and_bad_configs() {
    for language in Language::ALL {
        let frames = mix_frames();
        let ports = run(
            language,
            Example::Rewriter,
            "port 7 8",
            Settings::default(),
            &frames,
        );
        assert_eq!(
            ports.counters,
            counters(&[("dscp-marked", 0), ("port-remapped", 1)]),
            "{language:?}"
        );
        let changed: Vec<usize> = (0..frames.len())
            .filter(|&index| frames[index] != ports.frames[index])
            .collect();
        assert_eq!(
            changed,
            vec![1],
            "{language:?}: only the UDP datagram to port 7 changes"
        );
        for config in [
            "dscp 64",
            "dscp",
            "port 9",
            "port 9 70000",
            "mark 3",
            "dscp 1 2 3 4",
            &"port 1 2;".repeat(9),
        ] {
            match load(language, Example::Rewriter, config, Settings::default()) {
                Err(LoadError::Refused { code: 1, .. }) => {}
                other => panic!("{language:?} {config:?}: {:?}", other.err()),
            }
        }
    }
}

#[test]
fn a_udp_checksum_that_comes_out_zero_is_sent_as_ffff() {
    // A datagram to port 9 whose remapped form (port 7) sums to 0xffff,
    // so the incremental update yields 0x0000, which UDP cannot send (it
    // means "no checksum"): RFC 768 sends 0xffff. Found by trying the last
    // payload word.
    let with = |word: u16, port: u16| {
        let mut packet = Ipv4Packet::udp([10, 0, 1, 2], [10, 0, 2, 2], 1000, port);
        packet.payload = vec![0x11, 0x22, (word >> 8) as u8, word as u8];
        packet
    };
    let word = (0..=u16::MAX)
        .find(|&word| {
            let ip = with(word, 7).ip();
            ip[20 + 6..20 + 8] == [0xff, 0xff]
        })
        .expect("some payload word makes the checksum 0xffff");
    let frame = with(word, 9).frame();
    let expected = with(word, 7).frame();
    for language in Language::ALL {
        let result = run(
            language,
            Example::Rewriter,
            "port 9 7",
            Settings::default(),
            std::slice::from_ref(&frame),
        );
        assert_eq!(result.frames[0], expected, "{language:?}");
        assert!(
            transport_checksum_ok(&result.frames[0][14..]),
            "{language:?}"
        );
    }
}
