//! AF_PACKET tests over a real veth pair in a private network namespace
//! (root only; skipped, saying so, when unprivileged, except under `CI=true`,
//! where not running is a failure).

use super::*;
use std::process::Command;

/// Runs `f` on a thread with its own network namespace holding veth pair
/// `wcua`/`wcub`, both up, without IPv6; `None` when this process may not do
/// that.
fn with_veth_pair<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    std::thread::spawn(move || {
        // SAFETY: unshare has no memory preconditions; CLONE_NEWNET moves only
        // this thread (and children it spawns) into a new namespace, which
        // disappears with the thread.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            return None;
        }
        // No IPv6 on the new links: its bring-up chatter (DAD, router
        // solicitations) would arrive among the tests' frames. Sysctls under
        // /proc/sys/net resolve in the opening thread's namespace; a kernel
        // without IPv6 has no such file and no chatter.
        for scope in ["all", "default"] {
            let path = format!("/proc/sys/net/ipv6/conf/{scope}/disable_ipv6");
            match std::fs::write(&path, "1") {
                Ok(()) => {}
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(_) => return None,
            }
        }
        for args in [
            &[
                "link", "add", "wcua", "type", "veth", "peer", "name", "wcub",
            ][..],
            &["link", "set", "wcua", "up"],
            &["link", "set", "wcub", "up"],
        ] {
            let status = Command::new("ip").args(args).status().ok()?;
            if !status.success() {
                return None;
            }
        }
        Some(f())
    })
    .join()
    .expect("test thread panicked")
}

/// An Ethernet frame to `destination` with a UDP-over-IPv4 flow from source
/// port `port` (checksums zero: only the flow hash matters here).
fn flow_frame(destination: [u8; 6], port: u16, fill: u8) -> Vec<u8> {
    let mut frame = destination.to_vec();
    frame.extend_from_slice(&[0x02, 0, 0, 0, 0, 0xaa, 0x08, 0x00]);
    frame.extend_from_slice(&[
        0x45, 0, 0, 60, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 9, 0, 1, 10, 9, 0, 2,
    ]);
    frame.extend_from_slice(&port.to_be_bytes());
    frame.extend_from_slice(&[0x1f, 0x90, 0, 40, 0, 0]);
    frame.resize(74, fill);
    frame
}

/// Transmits `frames` in bursts without polling `nic` for receive: on the
/// ring path, frames may then still wait for their doorbell.
fn send_bursts(nic: &mut AfPacketNic, pool: &Mempool, frames: &[Vec<u8>]) {
    for chunk in frames.chunks(dataplane::BURST_SIZE) {
        let mut batch = Batch::new();
        for frame in chunk {
            let mut packet = pool.alloc().unwrap();
            packet.append(frame.len()).unwrap().copy_from_slice(frame);
            batch.push(packet).unwrap();
        }
        assert_eq!(nic.tx_burst(&mut batch), chunk.len());
    }
}

/// Transmits `frames`, then polls `nic` for receive once, as the executor's
/// next round does, which rings a coalesced doorbell if its RX ring is
/// empty.
fn send(nic: &mut AfPacketNic, pool: &Mempool, frames: &[Vec<u8>]) {
    send_bursts(nic, pool, frames);
    nic.rx_burst(&mut Batch::new());
}

/// Opens `ifname` transmitting through `tx_path`.
fn open_with(ifname: &str, tx_path: TxPath, buffers: usize) -> AfPacketNic {
    let config = AfPacketConfig {
        tx_path,
        ..AfPacketConfig::new(ifname)
    };
    AfPacketNic::open(&config, Mempool::with_heap(buffers, 128).unwrap()).unwrap()
}

/// Polls `nics` until `expected` frames arrived in all (at most 300 polls,
/// 5 ms apart); returns each NIC's frames.
fn receive(nics: &mut [&mut AfPacketNic], expected: usize) -> Vec<Vec<Vec<u8>>> {
    let mut received = vec![Vec::new(); nics.len()];
    for _ in 0..300 {
        for (nic, frames) in nics.iter_mut().zip(&mut received) {
            let mut batch = Batch::new();
            nic.rx_burst(&mut batch);
            frames.extend(batch.iter().map(|packet| packet.payload().to_vec()));
        }
        if received.iter().map(Vec::len).sum::<usize>() >= expected {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    received
}

#[test]
fn bad_names_and_missing_interfaces_are_errors() {
    let pool = Mempool::with_heap(4, 64).unwrap();
    let result = AfPacketNic::open(&AfPacketConfig::new(""), pool);
    assert!(matches!(result, Err(AfPacketError::BadName)));
}

/// Frames sent on one end come out of the other byte-identical, in order,
/// and the MAC is the interface's: through the TX ring and through
/// `sendmmsg`.
#[test]
fn frames_cross_a_veth_pair_unchanged() {
    for tx_path in [TxPath::Ring, TxPath::Sendmmsg] {
        frames_cross_a_veth_pair_through(tx_path);
    }
}

fn frames_cross_a_veth_pair_through(tx_path: TxPath) {
    let outcome = with_veth_pair(move || {
        let mut a = open_with("wcua", tx_path, 64);
        assert_eq!(a.tx_path(), tx_path);
        let mut b = AfPacketNic::open(
            &AfPacketConfig::new("wcub"),
            Mempool::with_heap(600, 128).unwrap(),
        )
        .unwrap();
        assert_eq!(b.name(), "af-packet:wcub.q0");
        assert!(b.link().up);
        assert_ne!(a.mac(), b.mac());
        // More than one ring's worth in several bursts, so both rings wrap.
        let frames: Vec<Vec<u8>> = (0..520)
            .map(|n| flow_frame(b.mac().0, 1000, n as u8))
            .collect();
        let tx_pool = Mempool::with_heap(64, 128).unwrap();
        for chunk in frames.chunks(64) {
            send(&mut a, &tx_pool, chunk);
            let received = receive(&mut [&mut b], chunk.len());
            assert_eq!(&received[0], chunk);
        }
        assert_eq!(a.stats().tx_packets.get(), 520);
        assert_eq!(b.stats().rx_packets.get(), 520);
        assert_eq!(
            a.stats().tx_sendmmsg.get(),
            u64::from(tx_path == TxPath::Sendmmsg)
        );
    });
    if outcome.is_none() {
        skip();
    }
}

/// With two sockets in one hash fanout group, every flow lands wholly on one
/// socket, nothing is lost or duplicated, and both sockets get flows.
#[test]
fn fanout_splits_by_flow() {
    let outcome = with_veth_pair(|| {
        let mut a = AfPacketNic::open(
            &AfPacketConfig::new("wcua"),
            Mempool::with_heap(64, 128).unwrap(),
        )
        .unwrap();
        let mut config = AfPacketConfig::new("wcub");
        config.fanout_group = Some(0x5743);
        let mut first = AfPacketNic::open(&config, Mempool::with_heap(256, 128).unwrap()).unwrap();
        config.queue = 1;
        let mut second = AfPacketNic::open(&config, Mempool::with_heap(256, 128).unwrap()).unwrap();
        let flows: Vec<u16> = (2000..2032).collect();
        let frames: Vec<Vec<u8>> = flows
            .iter()
            .flat_map(|port| (0..4).map(move |n| flow_frame([0xff; 6], *port, n)))
            .collect();
        send(&mut a, &Mempool::with_heap(64, 128).unwrap(), &frames);
        let received = receive(&mut [&mut first, &mut second], frames.len());
        assert_eq!(received[0].len() + received[1].len(), frames.len());
        let port_of = |frame: &Vec<u8>| u16::from_be_bytes([frame[34], frame[35]]);
        for port in flows {
            let on_first = received[0].iter().filter(|f| port_of(f) == port).count();
            let on_second = received[1].iter().filter(|f| port_of(f) == port).count();
            assert!(
                (on_first, on_second) == (4, 0) || (on_first, on_second) == (0, 4),
                "flow {port} split {on_first}/{on_second}"
            );
        }
        assert!(!received[0].is_empty() && !received[1].is_empty());
    });
    if outcome.is_none() {
        skip();
    }
}

/// Runs `ip link set IFNAME STATE` in the calling thread's namespace.
fn set_link(ifname: &str, state: &str) {
    let status = Command::new("ip")
        .args(["link", "set", ifname, state])
        .status()
        .expect("run ip");
    assert!(status.success(), "ip link set {ifname} {state} failed");
}

/// Frames the kernel left in the TX ring when their burst was kicked (the
/// peer was down: the device dropped them and the kernel marked them
/// `SEND_REQUEST` again, answering `ENOBUFS`) still go out once the link is
/// back, although no transmit burst follows: receive polls, which an idle
/// executor keeps making, ring the doorbell again until the ring drains.
#[test]
fn frames_left_in_the_tx_ring_go_out_after_traffic_stops() {
    let outcome = with_veth_pair(|| {
        let mut a = open_with("wcua", TxPath::Ring, 64);
        let mut b = AfPacketNic::open(
            &AfPacketConfig::new("wcub"),
            Mempool::with_heap(256, 128).unwrap(),
        )
        .unwrap();
        set_link("wcub", "down");
        let frames: Vec<Vec<u8>> = (0..9)
            .map(|n| flow_frame(b.mac().0, 3000, n as u8))
            .collect();
        send(&mut a, &Mempool::with_heap(16, 128).unwrap(), &frames);
        assert_eq!(a.stats().tx_packets.get(), frames.len() as u64);
        assert!(a.stats().tx_doorbell_busy.get() >= 1);
        assert_eq!(a.unsent_frames(), frames.len());

        set_link("wcub", "up");
        // Traffic has stopped: from here on both ends are only polled for
        // receive. Bring-up chatter (IPv6) from `wcua` is not ours: keep
        // only frames from flow_frame's source MAC.
        let mut received = Vec::new();
        for _ in 0..300 {
            a.rx_burst(&mut Batch::new());
            let mut batch = Batch::new();
            b.rx_burst(&mut batch);
            received.extend(
                batch
                    .iter()
                    .map(|packet| packet.payload().to_vec())
                    .filter(|frame| frame[6..12] == [0x02, 0, 0, 0, 0, 0xaa]),
            );
            if received.len() >= frames.len() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(received.len(), frames.len(), "frames stayed in the TX ring");
        assert_eq!(received, frames);
        assert_eq!(a.unsent_frames(), 0);
        assert!(a.stats().tx_rekicks.get() >= 1);
        assert_eq!(a.stats().tx_doorbell_errors.get(), 0);
    });
    if outcome.is_none() {
        skip();
    }
}

/// On the ring path, transmit bursts leave their frames marked without a
/// doorbell until `tx_kick_frames` wait or a receive poll finds the RX ring
/// empty; then one `send` carries them all.
#[test]
fn ring_doorbells_are_coalesced_across_bursts() {
    let outcome = with_veth_pair(|| {
        let config = AfPacketConfig {
            tx_path: TxPath::Ring,
            tx_kick_frames: 64,
            ..AfPacketConfig::new("wcua")
        };
        let mut a = AfPacketNic::open(&config, Mempool::with_heap(64, 128).unwrap()).unwrap();
        let mut b = open_with("wcub", TxPath::Ring, 256);
        let frames: Vec<Vec<u8>> = (0..48)
            .map(|n| flow_frame(b.mac().0, 4000, n as u8))
            .collect();
        let pool = Mempool::with_heap(64, 128).unwrap();
        // Two bursts (32 + 16 frames), fewer than 64: no doorbell yet.
        send_bursts(&mut a, &pool, &frames);
        assert_eq!(a.stats().tx_doorbells.get(), 0);
        assert_eq!(a.unsent_frames(), 48);
        std::thread::sleep(std::time::Duration::from_millis(20));
        let mut early = Batch::new();
        assert_eq!(b.rx_burst(&mut early), 0, "frames left before a doorbell");
        // a's next receive poll finds its ring empty and rings once.
        assert_eq!(a.rx_burst(&mut Batch::new()), 0);
        assert_eq!(a.stats().tx_doorbells.get(), 1);
        assert_eq!(a.stats().tx_doorbells_rx_empty.get(), 1);
        assert_eq!(receive(&mut [&mut b], 48)[0], frames);
        assert_eq!(a.unsent_frames(), 0);
        // 64 frames in two bursts: the second burst rings it by itself.
        let frames: Vec<Vec<u8>> = (0..64)
            .map(|n| flow_frame(b.mac().0, 4001, n as u8))
            .collect();
        send_bursts(&mut a, &pool, &frames);
        assert_eq!(a.stats().tx_doorbells.get(), 2);
        assert_eq!(a.stats().tx_doorbells_pending.get(), 1);
        assert_eq!(receive(&mut [&mut b], 64)[0], frames);
    });
    if outcome.is_none() {
        skip();
    }
}

/// `TxPath::Auto` sends with `sendmmsg` on a veth, which copies every frame
/// out of the ring's pages anyway.
#[test]
fn auto_picks_sendmmsg_on_a_veth() {
    let outcome = with_veth_pair(|| {
        let a = AfPacketNic::open(
            &AfPacketConfig::new("wcua"),
            Mempool::with_heap(4, 128).unwrap(),
        )
        .unwrap();
        assert_eq!(a.tx_path(), TxPath::Sendmmsg);
        assert_eq!(a.stats().tx_sendmmsg.get(), 1);
    });
    if outcome.is_none() {
        skip();
    }
}

/// A frame the kernel refuses for itself (longer than the veth's MTU) is
/// counted and skipped on the `sendmmsg` path; the frames behind it in the
/// same burst still go out.
#[test]
fn a_refused_frame_does_not_end_its_sendmmsg_burst() {
    let outcome = with_veth_pair(|| {
        let mut a = open_with("wcua", TxPath::Sendmmsg, 16);
        let mut b = AfPacketNic::open(
            &AfPacketConfig::new("wcub"),
            Mempool::with_heap(64, 128).unwrap(),
        )
        .unwrap();
        let mut oversized = flow_frame(b.mac().0, 1000, 0xee);
        oversized.resize(1600, 0xee);
        let good: Vec<Vec<u8>> = (0..3).map(|n| flow_frame(b.mac().0, 1000, n)).collect();
        let burst = vec![good[0].clone(), oversized, good[1].clone(), good[2].clone()];
        let pool = Mempool::with_heap(16, 128).unwrap();
        send(&mut a, &pool, &burst);
        let received = receive(&mut [&mut b], 3);
        assert_eq!(received[0], good);
        assert_eq!(a.stats().tx_wrong_format.get(), 1);
        assert_eq!(a.stats().tx_packets.get(), 3);
        assert_eq!(a.stats().tx_doorbell_errors.get(), 0);
        assert_eq!(
            pool.available(),
            16,
            "every frame taken off the burst went back"
        );
    });
    if outcome.is_none() {
        skip();
    }
}

/// Says why a test could not run; under `CI=true` that fails it.
fn skip() {
    let why = "cannot create a network namespace with veth (needs root)";
    assert_ne!(std::env::var("CI").as_deref(), Ok("true"), "{why}");
    eprintln!("skipped: {why}");
}
