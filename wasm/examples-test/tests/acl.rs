//! The ACL example in Rust, C and AssemblyScript: the right packets
//! dropped, each rule's counter exact, bad configs refused alike.

mod common;

use common::{Numbers, counters, load, run};
use warpcore_wasm_examples_test::frames::Ipv4Packet;
use warpcore_wasm_examples_test::host::{Hook, LoadError, Outcome, Settings};
use warpcore_wasm_examples_test::modules::{Example, Language};
use warpcore_wasm_examples_test::traffic::{ACL_CONFIG, mix_frames, mix_ip, repeated};

use Outcome::{Drop, Pass};

/// What ACL_CONFIG does with each frame of the mix, worked out by hand:
/// (outcome, the rule that matched).
const MIX_VERDICTS: [(Outcome, Option<usize>); 13] = [
    (Drop, Some(0)), // UDP to 10.0.2.2:9
    (Pass, None),    // UDP to port 7
    (Pass, Some(1)), // TCP 22 from 10.0.1.5: the pass rule comes first
    (Drop, Some(2)), // TCP 22 from anyone else
    (Pass, None),    // ICMP from 10.0.1.2
    (Drop, Some(3)), // ICMP from 192.168.0.1
    (Pass, None),    // TCP to 5000
    (Drop, Some(0)), // UDP to 10.0.2.9:9, no checksum
    (Pass, None),    // a non-first fragment: no ports, so no port rule matches
    (Pass, None),    // ARP: not IPv4
    (Drop, Some(4)), // protocol 47
    (Drop, Some(0)), // a long UDP datagram to port 9 (ports inside the window)
    (Pass, None),    // UDP 3000 -> 3001
];

fn expected(times: usize, with_arp: bool) -> (Vec<Outcome>, Vec<(String, i64)>) {
    let verdicts: Vec<_> = MIX_VERDICTS
        .iter()
        .enumerate()
        .filter(|(index, _)| with_arp || *index != 9)
        .map(|(_, verdict)| *verdict)
        .collect();
    let outcomes: Vec<Outcome> = (0..times)
        .flat_map(|_| verdicts.iter().map(|(outcome, _)| *outcome))
        .collect();
    let mut per_rule = [0i64; 5];
    for rule in verdicts.iter().filter_map(|(_, rule)| *rule) {
        per_rule[rule] += times as i64;
    }
    let names = ["rule-0", "rule-1", "rule-2", "rule-3", "rule-4"];
    (
        outcomes,
        counters(&names.iter().copied().zip(per_rule).collect::<Vec<_>>()),
    )
}

#[test]
fn drops_the_right_packets_and_counts_per_rule_in_every_language() {
    for language in Language::ALL {
        for (settings, frames, with_arp) in [
            (Settings::default(), mix_frames(), true),
            (
                Settings {
                    slots: 7,
                    window: 64,
                    ..Settings::default()
                },
                mix_frames(),
                true,
            ),
            (
                Settings {
                    hook: Hook::Ipv4,
                    slots: 1,
                    ..Settings::default()
                },
                mix_ip(),
                false,
            ),
        ] {
            let frames = repeated(&frames, 5);
            let result = run(language, Example::Acl, ACL_CONFIG, settings, &frames);
            let (outcomes, rule_counters) = expected(5, with_arp);
            assert_eq!(result.outcomes, outcomes, "{language:?} {settings:?}");
            assert_eq!(result.counters, rule_counters, "{language:?} {settings:?}");
            assert_eq!(result.frames, frames, "{language:?}: the ACL changed bytes");
        }
    }
}

#[test]
fn no_rules_pass_everything_and_blank_rules_are_skipped() {
    for language in Language::ALL {
        let frames = mix_frames();
        let empty = run(language, Example::Acl, "", Settings::default(), &frames);
        assert!(
            empty.outcomes.iter().all(|outcome| *outcome == Pass),
            "{language:?}"
        );
        assert!(empty.counters.is_empty(), "{language:?}");
        let blanks = run(
            language,
            Example::Acl,
            " ;\n ;drop udp any any any 9 ; ",
            Settings::default(),
            &frames,
        );
        assert_eq!(blanks.counters, counters(&[("rule-0", 3)]), "{language:?}");
    }
}

#[test]
fn bad_configs_are_refused_with_the_same_code_in_every_language() {
    let too_many = vec!["drop udp any any any 9"; 17].join(";");
    let cases: [(&str, i32); 8] = [
        ("drop udp any any any", 1),
        ("drop udp any any any 9 extra", 1),
        ("block udp any any any 9", 1),
        ("drop udp 10.0.0.0/33 any any 9", 1),
        ("drop udp 10.0.0 any any 9", 1),
        ("drop udp any 70000 any 9", 1),
        ("drop sctp any any any 9", 1),
        (&too_many, 2),
    ];
    for language in Language::ALL {
        for (config, code) in cases {
            match load(language, Example::Acl, config, Settings::default()) {
                Err(LoadError::Refused { code: refused, log }) => {
                    assert_eq!(refused, code, "{language:?} {config:?}");
                    if code == 1 {
                        assert!(
                            log.is_some_and(|line| line.starts_with("acl: ")),
                            "{language:?} {config:?}"
                        );
                    }
                }
                other => panic!("{language:?} {config:?}: {:?}", other.err()),
            }
        }
    }
}

/// The rules of ACL_CONFIG as a plain Rust model, independent of the
/// modules: the rule index that matches, if any.
fn model(
    protocol: u8,
    source: [u8; 4],
    destination: [u8; 4],
    ports: Option<(u16, u16)>,
) -> Option<usize> {
    let (_, destination_port) = ports.unwrap_or((0, 0));
    let in_net = |address: [u8; 4], net: [u8; 3]| address[..3] == net;
    if protocol == 17 && in_net(destination, [10, 0, 2]) && destination_port == 9 {
        return Some(0);
    }
    if protocol == 6 && source == [10, 0, 1, 5] && destination_port == 22 {
        return Some(1);
    }
    if protocol == 6 && destination_port == 22 {
        return Some(2);
    }
    if protocol == 1 && source[..2] == [192, 168] {
        return Some(3);
    }
    (protocol == 47).then_some(4)
}

#[test]
fn many_random_flows_match_a_model_and_the_languages_agree() {
    let mut numbers = Numbers::new(19);
    let mut frames = Vec::new();
    let mut expected_outcomes = Vec::new();
    let mut expected_rules = [0i64; 5];
    for _ in 0..600 {
        let protocol = [1u8, 6, 17, 47][numbers.below(4) as usize];
        let source = [[10, 0, 1, 5], [10, 0, 1, 6], [192, 168, 3, 4]][numbers.below(3) as usize];
        let destination = [
            10,
            0,
            [2, 3][numbers.below(2) as usize],
            numbers.below(255) as u8,
        ];
        let ports = (
            numbers.below(3) as u16 + 1000,
            [9, 22, 7, 80][numbers.below(4) as usize],
        );
        let fragment = numbers.below(10) == 0;
        let mut packet = Ipv4Packet::udp(source, destination, ports.0, ports.1);
        packet.protocol = protocol;
        packet.fragment_offset = if fragment { 50 } else { 0 };
        frames.push(packet.frame());
        let ports = (matches!(protocol, 6 | 17) && !fragment).then_some(ports);
        let rule = model(protocol, source, destination, ports);
        if let Some(rule) = rule {
            expected_rules[rule] += 1;
        }
        expected_outcomes.push(match rule {
            Some(0 | 2 | 3 | 4) => Drop,
            _ => Pass,
        });
    }
    let names = ["rule-0", "rule-1", "rule-2", "rule-3", "rule-4"];
    let expected_counters = counters(
        &names
            .iter()
            .copied()
            .zip(expected_rules)
            .collect::<Vec<_>>(),
    );
    for language in Language::ALL {
        let result = run(
            language,
            Example::Acl,
            ACL_CONFIG,
            Settings::default(),
            &frames,
        );
        assert_eq!(result.outcomes, expected_outcomes, "{language:?}");
        assert_eq!(result.counters, expected_counters, "{language:?}");
    }
}
