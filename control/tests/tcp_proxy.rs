//! Connections the appliance opens, end to end through `build_core`: a
//! `tcp-proxy` on a loopback NIC dials its backend for every client, the
//! test plays both the client and the backend, and a SYN-ACK that lands
//! on the wrong core is passed to the core that sent the SYN.

mod support;

use services::tcp::ports::{FIRST, LAST};
use services::wire::tcp::{TcpFlags, TcpHeader, TcpOptions};
use support::segments::{Peer, Segment, frame};
use support::*;

/// A proxy on port 8080 to 10.0.0.1:8000 (the test's peer plays both).
const PROXY_SPEC: &str = "[[interface]]\nname = \"eth0\"\ndriver = \"loopback\"\nmac = \"02:00:00:00:00:01\"\naddress = \"10.0.0.2/24\"\n\
    [[service]]\nkind = \"tcp-proxy\"\nport = 8080\nbackend = \"10.0.0.1:8000\"\n";

const BACKEND_ISN: u32 = 0x7000_0000;

/// The backend's side: its numbers and our ephemeral port.
struct Backend {
    our_port: u16,
    sequence: u32,
    acknowledgment: u32,
    timestamp: u32,
}

impl Backend {
    /// The backend's view of our SYN.
    fn from_syn(syn: &Segment) -> Self {
        assert_eq!(syn.flags, TcpFlags::SYN);
        assert_eq!(syn.destination_port, 8000);
        assert_eq!(syn.options.mss, Some(1460));
        assert_eq!(syn.options.window_scale, Some(3));
        assert!(syn.options.sack_permitted);
        assert!(syn.options.timestamps.is_some());
        Self {
            our_port: syn.source_port,
            sequence: BACKEND_ISN,
            acknowledgment: syn.sequence.wrapping_add(1),
            timestamp: 5000,
        }
    }

    /// A frame from the backend with `flags` and `payload`, its numbers
    /// moved past it.
    fn frame(&mut self, flags: TcpFlags, options: TcpOptions, payload: &[u8]) -> Vec<u8> {
        let header = TcpHeader {
            source_port: 8000,
            destination_port: self.our_port,
            sequence: self.sequence,
            acknowledgment: self.acknowledgment,
            flags,
            window: 502,
            options,
        };
        self.sequence = self
            .sequence
            .wrapping_add(payload.len() as u32)
            .wrapping_add(u32::from(flags.intersects(TcpFlags::SYN | TcpFlags::FIN)));
        self.timestamp += 1;
        frame(&header, payload)
    }

    /// Our SYN-ACK-answering peer: SYN-ACK with Linux's options.
    fn syn_ack(&mut self, echo: u32) -> Vec<u8> {
        let options = TcpOptions {
            mss: Some(1460),
            window_scale: Some(7),
            sack_permitted: true,
            timestamps: Some((self.timestamp, echo)),
            sack_blocks: Default::default(),
        };
        self.frame(TcpFlags::SYN | TcpFlags::ACK, options, b"")
    }

    fn data(&mut self, flags: TcpFlags, payload: &[u8]) -> Vec<u8> {
        let options = TcpOptions {
            timestamps: Some((self.timestamp, 1)),
            ..TcpOptions::default()
        };
        self.frame(flags, options, payload)
    }
}

/// The client's handshake; returns the SYN the proxy sent its backend.
fn client_connects(client: &mut Peer) -> Segment {
    client.syn();
    let mut sent = client.send(TcpFlags::ACK, b"");
    assert_eq!(sent.len(), 1, "the backend's SYN: {sent:?}");
    sent.remove(0)
}

/// Segments sent towards `port` of the peer, of everything sent.
fn to_port(segments: &[Segment], port: u16) -> Vec<&Segment> {
    segments
        .iter()
        .filter(|segment| segment.destination_port == port)
        .collect()
}

#[test]
fn a_client_is_spliced_to_a_backend_connection_of_our_own() {
    let mut client = Peer::new(PROXY_SPEC, 40000, 8080);
    let syn = client_connects(&mut client);
    assert!((FIRST..=LAST).contains(&syn.source_port));
    let mut backend = Backend::from_syn(&syn);
    // The backend answers; we acknowledge its SYN.
    client.harness.inject(0, &backend.syn_ack(syn.timestamp()));
    client.harness.executor.poll_once();
    let sent = client.transmitted();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].flags, TcpFlags::ACK);
    assert_eq!(sent[0].acknowledgment, BACKEND_ISN + 1);
    assert_eq!(client.event("connections-opened"), 1);
    // The client's request reaches the backend.
    let sent = client.send(TcpFlags::ACK | TcpFlags::PSH, b"GET / HTTP/1.0\r\n\r\n");
    let upstream = to_port(&sent, 8000);
    assert_eq!(upstream.len(), 1, "{sent:?}");
    assert_eq!(upstream[0].payload, b"GET / HTTP/1.0\r\n\r\n");
    backend.acknowledgment = backend.acknowledgment.wrapping_add(18);
    // The answer and the backend's FIN reach the client, in that order.
    client.harness.inject(
        0,
        &backend.data(
            TcpFlags::ACK | TcpFlags::PSH | TcpFlags::FIN,
            b"HTTP/1.0 200 OK\r\n\r\nhi",
        ),
    );
    client.harness.executor.poll_once();
    let sent = client.transmitted();
    let downstream = to_port(&sent, 40000);
    let bytes: Vec<u8> = downstream.iter().flat_map(|s| s.payload.clone()).collect();
    assert_eq!(bytes, b"HTTP/1.0 200 OK\r\n\r\nhi", "{sent:?}");
    assert!(
        downstream.last().unwrap().flags.contains(TcpFlags::FIN),
        "the backend's FIN is passed on: {sent:?}"
    );
    assert_eq!(client.drops("bad-ack"), 0);
    assert_eq!(client.event("segments-handed-off"), 0);
}

#[test]
fn a_refused_backend_resets_the_client() {
    let mut client = Peer::new(PROXY_SPEC, 40000, 8080);
    let syn = client_connects(&mut client);
    let mut backend = Backend::from_syn(&syn);
    let refusal = backend.frame(TcpFlags::RST | TcpFlags::ACK, TcpOptions::default(), b"");
    client.harness.inject(0, &refusal);
    client.harness.executor.poll_once();
    let sent = client.transmitted();
    let to_client = to_port(&sent, 40000);
    assert_eq!(to_client.len(), 1, "{sent:?}");
    assert!(to_client[0].flags.contains(TcpFlags::RST));
    assert_eq!(client.event("connections-refused"), 1);
}

#[test]
fn a_syn_ack_on_the_wrong_core_is_passed_to_the_core_that_sent_the_syn() {
    let spec = control::Spec::parse(PROXY_SPEC, &services::Registry::with_builtin()).unwrap();
    let mut links = control::core_links(&spec, 2);
    let second = Harness::on_core(&spec, 1, links.pop().unwrap());
    let first = Harness::on_core(&spec, 0, links.pop().unwrap());
    let mut client = Peer::with_harness(first, 40000, 8080);
    let syn = client_connects(&mut client);
    assert_eq!(
        (syn.source_port - FIRST) % 2,
        0,
        "core 0 dials from its share of the ports"
    );
    let mut backend = Backend::from_syn(&syn);
    // The host's steering sends the answer to core 1.
    let mut stray = Peer::with_harness(second, 8000, syn.source_port);
    stray.harness.inject(0, &backend.syn_ack(syn.timestamp()));
    stray.harness.executor.poll_once();
    assert!(
        stray.transmitted().is_empty(),
        "core 1 neither resets nor answers"
    );
    assert_eq!(stray.event("segments-handed-off"), 1);
    assert_eq!(stray.drops("port-closed"), 0);
    // Core 0 takes it in on its next run and completes the handshake.
    advance_clock(2_000_000);
    client.harness.executor.poll_once();
    let sent = client.transmitted();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].flags, TcpFlags::ACK);
    assert_eq!(sent[0].acknowledgment, BACKEND_ISN + 1);
    assert_eq!(client.event("segments-handed-in"), 1);
    assert_eq!(client.event("connections-opened"), 1);
}

#[test]
fn with_rss_the_backend_port_is_one_whose_answers_hash_to_the_dialling_core() {
    use dataplane::rss::{RETA_ENTRIES, RssSteering, WARPCORE_RSS_KEY};
    use std::net::{Ipv4Addr, SocketAddrV4};
    let spec = control::Spec::parse(PROXY_SPEC, &services::Registry::with_builtin()).unwrap();
    let mut links = control::core_links(&spec, 2);
    let mut table = [0; RETA_ENTRIES];
    for (index, entry) in table.iter_mut().enumerate() {
        *entry = (index % 2) as u8;
    }
    let steering = |queue: u8| RssSteering {
        interface: 0,
        key: WARPCORE_RSS_KEY,
        table,
        queue,
    };
    for (core, core_links) in links.iter_mut().enumerate() {
        core_links.insert_shared(steering(core as u8));
    }
    let backend = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 8000);
    let second = Harness::on_core(&spec, 1, links.pop().unwrap());
    let first = Harness::on_core(&spec, 0, links.pop().unwrap());
    for (core, harness) in [(0u16, first), (1, second)] {
        let mut client = Peer::with_harness(harness, 40000, 8080);
        for client_port in 40000..40004 {
            client.port = client_port;
            client.sequence = support::segments::PEER_ISN;
            client.acknowledgment = 0;
            let syn = client_connects(&mut client);
            assert!((FIRST..=LAST).contains(&syn.source_port));
            assert_eq!((syn.source_port - FIRST) % 2, core, "the core's share");
            let ours = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), syn.source_port);
            assert_eq!(
                steering(0).queue_of(backend, ours),
                core as u8,
                "port {}: the backend's answers hash to the other core",
                syn.source_port
            );
        }
    }
}
