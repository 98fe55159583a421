//! The flow counter example in Rust, C and AssemblyScript: the map holds
//! each flow's exact count under its 5-tuple key, `limit N` drops what is
//! over it, a full map is counted and the packets still pass.

mod common;

use common::{Numbers, counters, load, run};
use std::collections::BTreeMap;
use warpcore_wasm_examples_test::frames::Ipv4Packet;
use warpcore_wasm_examples_test::host::{Hook, LoadError, Outcome, Settings};
use warpcore_wasm_examples_test::modules::{Example, Language};
use warpcore_wasm_examples_test::traffic::{mix, mix_frames, mix_ip, repeated};

/// The 13-byte key the README defines, from the packet's fields (not from its bytes).
fn key(packet: &Ipv4Packet) -> Vec<u8> {
    let ports = matches!(packet.protocol, 6 | 17) && packet.fragment_offset == 0;
    let (source_port, destination_port) = if ports {
        (packet.source_port, packet.destination_port)
    } else {
        (0, 0)
    };
    let mut key = Vec::new();
    key.extend_from_slice(&packet.source);
    key.extend_from_slice(&packet.destination);
    key.extend_from_slice(&source_port.to_be_bytes());
    key.extend_from_slice(&destination_port.to_be_bytes());
    key.push(packet.protocol);
    key
}

/// The map the mix repeated `times` times should leave.
fn expected_map(times: u64) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut map = BTreeMap::new();
    for packet in mix().into_iter().flatten() {
        *map.entry(key(&packet)).or_insert(0u64) += times;
    }
    map.into_iter()
        .map(|(key, count)| (key, count.to_le_bytes().to_vec()))
        .collect()
}

#[test]
fn counts_every_flow_in_the_map_in_every_language() {
    let flows = mix().into_iter().flatten().count() as i64;
    assert_eq!(
        expected_map(1).len() as i64,
        flows,
        "the mix's flows are distinct"
    );
    for language in Language::ALL {
        for (settings, frames) in [
            (Settings::default(), mix_frames()),
            (
                Settings {
                    slots: 5,
                    ..Settings::default()
                },
                mix_frames(),
            ),
            (
                Settings {
                    hook: Hook::Ipv4,
                    ..Settings::default()
                },
                mix_ip(),
            ),
        ] {
            let frames = repeated(&frames, 4);
            let result = run(language, Example::FlowCounter, "", settings, &frames);
            assert!(
                result
                    .outcomes
                    .iter()
                    .all(|outcome| *outcome == Outcome::Pass),
                "{language:?}"
            );
            assert_eq!(result.map, expected_map(4), "{language:?} {settings:?}");
            assert_eq!(
                result.counters,
                counters(&[("flows", flows), ("over-limit", 0), ("map-full", 0)]),
                "{language:?} {settings:?}"
            );
            assert_eq!(
                result.frames, frames,
                "{language:?}: the counter changed bytes"
            );
        }
    }
}

#[test]
fn a_limit_drops_each_flows_packets_after_the_nth() {
    let per_mix: Vec<bool> = mix().iter().map(Option::is_some).collect();
    let flows = per_mix.iter().filter(|ipv4| **ipv4).count() as i64;
    for language in Language::ALL {
        let result = run(
            language,
            Example::FlowCounter,
            "limit 2",
            Settings::default(),
            &repeated(&mix_frames(), 4),
        );
        let expected: Vec<Outcome> = (0..4)
            .flat_map(|round| {
                per_mix.iter().map(move |&ipv4| match ipv4 && round >= 2 {
                    true => Outcome::Drop,
                    false => Outcome::Pass,
                })
            })
            .collect();
        assert_eq!(result.outcomes, expected, "{language:?}");
        assert_eq!(
            result.map,
            expected_map(4),
            "{language:?}: dropped packets are counted too"
        );
        assert_eq!(
            result.counters,
            counters(&[("flows", flows), ("over-limit", 2 * flows), ("map-full", 0)]),
            "{language:?}"
        );
    }
}

#[test]
fn a_full_map_is_counted_and_its_packets_pass() {
    let flows = mix().into_iter().flatten().count() as i64;
    for language in Language::ALL {
        let settings = Settings {
            map_entries: 5,
            ..Settings::default()
        };
        let mut host = common::loaded(language, Example::FlowCounter, "", settings);
        let mut frames = repeated(&mix_frames(), 3);
        let outcomes = host.process_all(&mut frames).expect("no fault");
        assert!(
            outcomes.iter().all(|outcome| *outcome == Outcome::Pass),
            "{language:?}"
        );
        assert_eq!(host.map().len(), 5, "{language:?}");
        let first_five: Vec<_> = expected_map(3)
            .into_iter()
            .filter(|(key, _)| host.map().contains_key(key))
            .collect();
        assert_eq!(
            first_five.len(),
            5,
            "{language:?}: the stored keys are real flows with their counts"
        );
        for (key, count) in first_five {
            assert_eq!(host.map()[&key], count, "{language:?}");
        }
        assert_eq!(host.counter("flows"), Some(5), "{language:?}");
        assert_eq!(
            host.counter("map-full"),
            Some((flows - 5) * 3),
            "{language:?}"
        );
        assert_eq!(
            host.event("map-full") as i64,
            (flows - 5) * 3,
            "{language:?}"
        );
    }
}

#[test]
fn bad_configs_are_refused_alike() {
    for language in Language::ALL {
        for config in [
            "limit",
            "limit x",
            "limit 3 4",
            "limit -1",
            "count 3",
            "limit 99999999999",
        ] {
            match load(language, Example::FlowCounter, config, Settings::default()) {
                Err(LoadError::Refused {
                    code: 1,
                    log: Some(line),
                }) => {
                    assert!(
                        line.starts_with("flow-counter: "),
                        "{language:?} {config:?}: {line}"
                    );
                }
                other => panic!("{language:?} {config:?}: {:?}", other.err()),
            }
        }
    }
}

#[test]
fn many_random_flows_agree_across_languages() {
    let mut numbers = Numbers::new(7);
    let frames: Vec<Vec<u8>> = (0..2000)
        .map(|_| {
            let mut packet = Ipv4Packet::udp(
                [10, 0, 1, numbers.below(8) as u8],
                [10, 0, 2, numbers.below(4) as u8],
                1000 + numbers.below(4) as u16,
                [9, 53, 80][numbers.below(3) as usize],
            );
            packet.protocol = [6, 17, 1][numbers.below(3) as usize];
            packet.frame()
        })
        .collect();
    let settings = Settings {
        map_entries: 300,
        ..Settings::default()
    };
    let runs: Vec<_> = Language::ALL
        .iter()
        .map(|&language| run(language, Example::FlowCounter, "limit 5", settings, &frames))
        .collect();
    let total: u64 = runs[0]
        .map
        .iter()
        .map(|(_, value)| u64::from_le_bytes(value[..8].try_into().expect("8 bytes")))
        .sum();
    let full = runs[0]
        .counters
        .iter()
        .find(|(name, _)| name == "map-full")
        .map_or(0, |(_, value)| *value);
    assert_eq!(
        total + full as u64,
        frames.len() as u64,
        "every packet counted once, in the map or as map-full"
    );
    assert_eq!(runs[0], runs[1], "Rust and C");
    assert_eq!(runs[0], runs[2], "Rust and AssemblyScript");
}
