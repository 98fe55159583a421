//! loadgen against a scripted reflector over a veth pair in a private network
//! namespace: the reflector drops, duplicates and reorders by a known script,
//! and loadgen's accounting must match it exactly.
#![deny(unsafe_code)]

use loadgen::frame::{Endpoints, Workload};
use loadgen::probe::Probe;
use loadgen::run::{RunConfig, run};
use loadgen::socket::{FRAME_BUFFER, PacketSocket};
use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const COUNT: u64 = 2000;
const PROBE_OFFSET: usize = 14 + 20 + 8;

fn dropped(sequence: u64) -> bool {
    sequence % 10 == 3
}
fn duplicated(sequence: u64) -> bool {
    sequence.is_multiple_of(7)
}
fn held_back(sequence: u64) -> bool {
    sequence % 50 == 10
}

/// Swaps addresses and ports: what an echo server sends back.
fn reflect(frame: &[u8]) -> Vec<u8> {
    let mut reply = frame.to_vec();
    reply[..6].copy_from_slice(&frame[6..12]);
    reply[6..12].copy_from_slice(&frame[..6]);
    reply[26..30].copy_from_slice(&frame[30..34]);
    reply[30..34].copy_from_slice(&frame[26..30]);
    reply[34..36].copy_from_slice(&frame[36..38]);
    reply[36..38].copy_from_slice(&frame[34..36]);
    reply
}

fn ip(args: &str) {
    let status = Command::new("ip")
        .args(args.split_whitespace())
        .status()
        .expect("running ip");
    assert!(status.success(), "ip {args} failed");
}

/// Moves this thread into a network namespace of its own.
#[allow(unsafe_code)]
fn enter_private_network_namespace() {
    // SAFETY: unshare(2) with CLONE_NEWNET only changes this thread's
    // network namespace.
    let unshared = unsafe { libc::unshare(libc::CLONE_NEWNET) };
    assert_eq!(
        unshared, 0,
        "unshare(CLONE_NEWNET) failed: run the tests as root"
    );
}

#[test]
fn accounting_matches_the_script() {
    scripted_run(false);
}

/// Whole bursts only: the window (16) opens in steps of a burst (8), and
/// a dropped probe's slot comes back after the timeout, so the run still
/// ends with every probe sent and the same accounting.
#[test]
fn accounting_matches_the_script_with_whole_bursts() {
    scripted_run(true);
}

fn scripted_run(whole_bursts: bool) {
    // A private network namespace for this thread (and the `ip` commands it
    // starts); it disappears with the thread and the sockets.
    enter_private_network_namespace();
    ip("link add lgen0 type veth peer name lgen1");
    ip("link set lgen0 up");
    ip("link set lgen1 up");
    let generator = PacketSocket::open("lgen0").unwrap();
    let reflector = PacketSocket::open("lgen1").unwrap();
    let reflector_mac = reflector.mac();

    let stop = Arc::new(AtomicBool::new(false));
    let reflector_stop = Arc::clone(&stop);
    let reflector_thread = std::thread::spawn(move || {
        let mut buffers = vec![[0u8; FRAME_BUFFER]; 32];
        let mut lengths = vec![0usize; 32];
        let mut held: Option<(u64, Vec<u8>)> = None;
        // Ordering: Relaxed: a stop flag that guards no data; the join publishes
        // everything else.
        while !reflector_stop.load(Ordering::Relaxed) {
            let count = reflector.recv_batch(&mut buffers, &mut lengths).unwrap();
            if count == 0 {
                std::thread::sleep(Duration::from_micros(100));
            }
            for (buffer, &length) in buffers.iter().zip(&lengths).take(count) {
                let frame = &buffer[..length];
                let Some(probe) = frame.get(PROBE_OFFSET..).and_then(Probe::read) else {
                    continue;
                };
                let sequence = probe.sequence;
                if dropped(sequence) {
                    continue;
                }
                let reply = reflect(frame);
                let copies = if duplicated(sequence) { 2 } else { 1 };
                let mut out = Vec::new();
                if held_back(sequence) {
                    held = Some((sequence, reply));
                    continue;
                }
                out.extend(std::iter::repeat_n(reply, copies));
                if let Some((held_sequence, held_reply)) = held.take_if(|(s, _)| *s < sequence) {
                    let held_copies = if duplicated(held_sequence) { 2 } else { 1 };
                    out.extend(std::iter::repeat_n(held_reply, held_copies));
                }
                while reflector.send_batch(&out).unwrap() == 0 {}
            }
        }
    });

    let config = RunConfig {
        endpoints: Endpoints {
            source_mac: generator.mac(),
            destination_mac: reflector_mac,
            source_ip: Ipv4Addr::new(10, 9, 0, 100),
            destination_ip: Ipv4Addr::new(10, 9, 0, 2),
        },
        workload: Workload::Udp {
            port: 7,
            source_port: 40_000,
        },
        flows: 4,
        payload_len: 64,
        count: COUNT,
        duration: Duration::from_secs(60),
        rate_pps: None,
        window: Some(16),
        timeout: Duration::from_millis(100),
        burst: 8,
        whole_bursts,
        run_id: 77,
        progress: false,
        spread: Default::default(),
        translated: None,
    };
    let result = run(&generator, &config).unwrap();
    // Ordering: Relaxed: see the reflector's loop.
    stop.store(true, Ordering::Relaxed);
    reflector_thread.join().unwrap();

    let answered = |s: &u64| !dropped(*s);
    let expected_lost = (0..COUNT).filter(|s| dropped(*s)).count() as u64;
    let expected_duplicates = (0..COUNT)
        .filter(answered)
        .filter(|s| duplicated(*s))
        .count() as u64;
    let expected_reordered = (0..COUNT)
        .filter(answered)
        .filter(|s| held_back(*s))
        .count() as u64;
    let summary = result.summary;
    assert_eq!(summary.sent, COUNT);
    assert_eq!(summary.lost, expected_lost, "{summary:?}");
    assert_eq!(summary.received, COUNT - expected_lost);
    assert_eq!(summary.duplicates, expected_duplicates, "{summary:?}");
    assert_eq!(summary.reordered, expected_reordered, "{summary:?}");
    assert_eq!(summary.foreign, 0);
    assert!(summary.latency_p50_ns.is_some());
}
