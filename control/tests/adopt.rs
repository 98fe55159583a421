//! Spec changes that keep an appliance's state: a service whose settings
//! changed adopts the node its predecessor ran (`ServiceKind::adopt`).
//! Through the controller on one core: the firewall's tracked flows
//! survive a change of its rules (a reply with no request since is still
//! established), the NAT's bindings a change of its forwarded ports (a
//! reply to the masquerade identifier is translated back), and the load
//! balancer's flow pins a change of its backends (a flow to a surviving
//! backend stays there; one to a removed backend moves).

mod support;

use control::Spec;
use control::reconcile::{Boards, Controller, CoreControl, channels};
use core::net::Ipv4Addr;
use dataplane::{Executor, ExecutorBuilder, MacAddr};
use services::Registry;
use services::wire::Ipv4Packet;
use std::sync::Arc;
use support::routed::*;
use support::*;

fn parse(text: &str) -> Spec {
    Spec::parse(text, &Registry::with_builtin()).unwrap()
}

/// One core of `text` (an example on loopback ports), its controller and
/// its control end.
fn start(text: &str) -> (Harness, Controller, CoreControl) {
    let text = text.replace("virtio", "loopback");
    let core = routed_cores(&text, 1).pop().unwrap();
    let spec = Arc::new(parse(&text));
    let (ends, mut controls) = channels(&spec, 1);
    let controller = Controller::new(spec, text.clone(), ends, Boards::default());
    (core, controller, controls.remove(0))
}

/// Applies `text` (loopback ports) through the controller, to generation 2.
fn change(core: &mut Harness, controller: &mut Controller, control: &mut CoreControl, text: &str) {
    let text = text.replace("virtio", "loopback");
    assert_eq!(controller.start(parse(&text), text.clone(), 0), Ok(2));
    let placeholder = ExecutorBuilder::new().build().unwrap();
    let executor: Executor = std::mem::replace(&mut core.executor, placeholder);
    core.executor = control.apply(executor);
    assert!(controller.step(0));
    let [ready, _, degraded] = controller.conditions();
    assert!(ready.status && !degraded.status, "{}", degraded.message);
}

/// Injects `bytes` on `from`, polls, returns what left on `to`.
fn through(core: &mut Harness, from: usize, to: usize, bytes: &[u8]) -> Option<Vec<u8>> {
    core.inject(from, bytes);
    core.executor.poll_once();
    core.take(to)
}

#[test]
fn a_firewalls_flows_survive_a_change_of_its_rules() {
    let spec = include_str!("../../examples/firewall.toml");
    let (mut core, mut controller, mut control) = start(spec);
    assert!(through(&mut core, 0, 1, &echo(8, (LEFT, B.1), A, 1)).is_some());
    let changed = spec.replace("destination_port = \"9-9\"", "destination_port = \"10-10\"");
    assert_ne!(changed, spec);
    change(&mut core, &mut controller, &mut control, &changed);
    assert!(
        through(&mut core, 1, 0, &echo(0, (RIGHT, A.1), B, 1)).is_some(),
        "the reply of a flow tracked before the change is established"
    );
    assert!(
        through(&mut core, 1, 0, &echo(0, (RIGHT, A.1), B, 2)).is_none(),
        "a reply without a request is still dropped"
    );
    assert_eq!(core.counters().node_drops("firewall", "denied"), 1);
}

#[test]
fn a_nats_bindings_survive_a_change_of_its_forwarded_ports() {
    let spec = include_str!("../../examples/nat.toml");
    let (mut core, mut controller, mut control) = start(spec);
    let out = through(&mut core, 0, 1, &echo(8, (LEFT, B.1), A, 77)).expect("masqueraded");
    let ip = Ipv4Packet::new_checked(&out[14..]).unwrap();
    assert_eq!(ip.source(), OUTSIDE);
    let ident = u16::from_be_bytes([ip.payload()[4], ip.payload()[5]]);
    let changed = spec.replace("port = 5353", "port = 5354");
    assert_ne!(changed, spec);
    change(&mut core, &mut controller, &mut control, &changed);
    let back = through(&mut core, 1, 0, &echo(0, (RIGHT, OUTSIDE), B, ident))
        .expect("the reply to a binding made before the change is translated back");
    let ip = Ipv4Packet::new_checked(&back[14..]).unwrap();
    assert_eq!(ip.destination(), A.1);
    assert_eq!(u16::from_be_bytes([ip.payload()[4], ip.payload()[5]]), 77);
}

/// The backend (last octet) a UDP datagram from A's `port` to the VIP
/// went to, or `None` when nothing left on eth1.
fn backend_of(core: &mut Harness, port: u16) -> Option<u8> {
    let vip = Ipv4Addr::new(10, 0, 2, 100);
    let datagram = udp_frame((LEFT, A.0), (A.1, vip), (port, 80), 64, b"x");
    let out = through(core, 0, 1, &datagram)?;
    let ip = Ipv4Packet::new_checked(&out[14..]).unwrap();
    Some(ip.destination().octets()[3])
}

#[test]
fn a_load_balancers_flows_keep_surviving_backends_over_a_change_of_backends() {
    let spec = include_str!("../../examples/lb.toml");
    let (mut core, mut controller, mut control) = start(spec);
    // Every backend (and the one added later) known on eth1.
    for host in 2..=5 {
        let backend = (
            MacAddr([2, 0xbb, 0, 0, 0, host]),
            Ipv4Addr::new(10, 0, 2, host),
        );
        let ask = arp_frame(1, backend, (MacAddr([0; 6]), OUTSIDE), MacAddr::BROADCAST);
        core.exchange(1, &ask).expect("ARP reply on eth1");
    }
    let ports = 40_000..40_120;
    let before: Vec<u8> = ports
        .clone()
        .map(|port| backend_of(&mut core, port).expect("balanced"))
        .collect();
    assert!((2..=4).all(|host| before.contains(&host)), "{before:?}");
    // 10.0.2.4 leaves and 10.0.2.5 joins.
    let changed = spec.replace("\"10.0.2.4:8000\"]", "\"10.0.2.5:8000\"]");
    assert_ne!(changed, spec);
    change(&mut core, &mut controller, &mut control, &changed);
    let mut moved = 0;
    for (port, old) in ports.zip(&before) {
        let new = backend_of(&mut core, port).expect("balanced");
        if *old == 4 {
            assert_ne!(new, 4, "port {port} still went to the removed backend");
            moved += 1;
        } else {
            assert_eq!(new, *old, "port {port} left its surviving backend");
        }
    }
    assert!(moved > 0);
    // A new flow may go to the new backend.
    let fresh: Vec<u8> = (41_000..41_100)
        .map(|port| backend_of(&mut core, port).expect("balanced"))
        .collect();
    assert!(fresh.contains(&5) && !fresh.contains(&4), "{fresh:?}");
}
