//! Tap tests: a real tap device in a private network namespace (root only;
//! skipped, saying so, when unprivileged, except under `CI=true`, where
//! not running is a failure).

use super::*;
use std::process::Command;

/// Runs `f` on a thread with its own network namespace, or returns `None`
/// when this process may not create one.
fn in_private_netns<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    std::thread::spawn(move || {
        // SAFETY: unshare has no memory preconditions; CLONE_NEWNET moves only
        // this thread (and children it spawns) into a new namespace, which
        // disappears with the thread.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            return None;
        }
        Some(f())
    })
    .join()
    .expect("test thread panicked")
}

fn ip(args: &[&str]) {
    let status = Command::new("ip").args(args).status().expect("run ip");
    assert!(status.success(), "ip {args:?} failed");
}

/// An ARP request from `mac`/`sender_ip` for `target_ip`.
fn arp_request(mac: MacAddr, sender_ip: [u8; 4], target_ip: [u8; 4]) -> Vec<u8> {
    let mut frame = vec![0xff; 6];
    frame.extend_from_slice(&mac.0);
    frame.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
    frame.extend_from_slice(&mac.0);
    frame.extend_from_slice(&sender_ip);
    frame.extend_from_slice(&[0; 6]);
    frame.extend_from_slice(&target_ip);
    frame
}

#[test]
fn derived_macs_are_stable_local_unicast() {
    let mac = derived_mac("wctap0");
    assert_eq!(mac, derived_mac("wctap0"));
    assert_ne!(mac, derived_mac("wctap1"));
    assert_eq!(mac.0[0] & 0x03, 0x02, "locally administered unicast");
}

#[test]
fn bad_names_are_refused() {
    let pool = Mempool::with_heap(4, 64).unwrap();
    let error = TapNic::open(&TapConfig::new("a-name-that-is-too-long"), pool);
    assert!(matches!(error, Err(TapError::BadName)));
}

/// The kernel answers an ARP request written to the tap, and the answer
/// comes back through `rx_burst`, byte-exact where ARP fixes the bytes.
#[test]
fn kernel_answers_arp_through_the_tap() {
    let outcome = in_private_netns(|| {
        let pool = Mempool::with_heap(64, 128).unwrap();
        let mut config = TapConfig::new("wcunit0");
        config.multi_queue = true;
        let mut nic = match TapNic::open(&config, pool) {
            Ok(nic) => nic,
            Err(error) => return Err(error.to_string()),
        };
        ip(&["addr", "add", "198.18.77.1/30", "dev", "wcunit0"]);
        ip(&["link", "set", "wcunit0", "up"]);
        assert!(nic.link().up);
        assert_eq!(nic.name(), "tap:wcunit0.q0");

        let request_pool = Mempool::with_heap(4, 128).unwrap();
        let mut packet = request_pool.alloc().unwrap();
        let request = arp_request(nic.mac(), [198, 18, 77, 2], [198, 18, 77, 1]);
        packet
            .append(request.len())
            .unwrap()
            .copy_from_slice(&request);
        let mut batch = Batch::new();
        batch.push(packet).unwrap();
        assert_eq!(nic.tx_burst(&mut batch), 1);
        assert!(batch.is_empty());

        // Bounded wait: 200 polls of 10 ms.
        for _ in 0..200 {
            let mut batch = Batch::new();
            nic.rx_burst(&mut batch);
            for frame in batch.iter() {
                let bytes = frame.payload();
                if bytes.len() >= 42 && bytes[12..14] == [0x08, 0x06] && bytes[20..22] == [0, 2] {
                    assert_eq!(&bytes[0..6], &nic.mac().0);
                    assert_eq!(&bytes[28..32], &[198, 18, 77, 1]);
                    assert_eq!(&bytes[32..38], &nic.mac().0);
                    assert_eq!(&bytes[38..42], &[198, 18, 77, 2]);
                    assert_eq!(nic.stats().tx_packets.get(), 1);
                    assert!(nic.stats().rx_packets.get() >= 1);
                    return Ok(());
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("no ARP reply from the kernel within 200 polls");
    });
    match outcome {
        None => skip("cannot create a network namespace (needs root)"),
        Some(Err(error)) => skip(&format!("cannot open a tap: {error}")),
        Some(Ok(())) => {}
    }
}

/// Says why a test could not run; under `CI=true` that fails it.
fn skip(why: &str) {
    assert_ne!(std::env::var("CI").as_deref(), Ok("true"), "{why}");
    eprintln!("skipped: {why}");
}
