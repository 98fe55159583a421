//! loadgen's TCP client against an in-process HTTP server on smoltcp,
//! over a wire of two frame queues: every request answered once, the
//! counts exact, also with more connections than one shard holds (so ARP
//! replies must reach every shard and segments the shard of their port).

use loadgen::port::FramePort;
use loadgen::socket::FRAME_BUFFER;
use loadgen::tcp::client::{CONNECTIONS_PER_SHARD, TcpConfig, run_tcp};
use loadgen::tcp::device::QueueDevice;
use loadgen::tcp::protocol::Protocol;
use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::socket::tcp;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpAddress, IpCidr};
use std::collections::VecDeque;
use std::io;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x64];
const SERVER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const SERVER_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const REPLY: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";

type Queue = Arc<Mutex<VecDeque<Vec<u8>>>>;

/// The client's end of the wire.
struct WirePort {
    to_server: Queue,
    to_client: Queue,
}

impl FramePort for WirePort {
    fn mac(&self) -> [u8; 6] {
        CLIENT_MAC
    }

    fn send_batch(&self, frames: &[Vec<u8>]) -> io::Result<usize> {
        self.to_server
            .lock()
            .unwrap()
            .extend(frames.iter().cloned());
        Ok(frames.len())
    }

    fn recv_batch(
        &self,
        buffers: &mut [[u8; FRAME_BUFFER]],
        lengths: &mut [usize],
    ) -> io::Result<usize> {
        let mut queue = self.to_client.lock().unwrap();
        let mut count = 0;
        while count < buffers.len() {
            let Some(frame) = queue.pop_front() else {
                break;
            };
            buffers[count][..frame.len()].copy_from_slice(&frame);
            lengths[count] = frame.len();
            count += 1;
        }
        Ok(count)
    }

    fn wait_readable(&self, timeout: Duration) -> io::Result<()> {
        std::thread::sleep(timeout.min(Duration::from_micros(50)));
        Ok(())
    }

    fn describe(&self) -> String {
        "in-process wire".into()
    }
}

/// An HTTP server on smoltcp answering every `GET` with [`REPLY`] until
/// `stop`; counts the requests it answered.
fn serve(to_server: Queue, to_client: Queue, stop: Arc<AtomicBool>, answered: Arc<AtomicU64>) {
    let origin = Instant::now();
    let now = || smoltcp::time::Instant::from_micros(origin.elapsed().as_micros() as i64);
    let mut device = QueueDevice::default();
    let mut interface = Interface::new(
        Config::new(HardwareAddress::Ethernet(EthernetAddress(SERVER_MAC))),
        &mut device,
        now(),
    );
    interface.update_ip_addrs(|addresses| {
        addresses
            .push(IpCidr::new(IpAddress::Ipv4(SERVER_IP), 24))
            .unwrap();
    });
    let mut sockets = SocketSet::new(Vec::new());
    let mut listeners: Vec<(SocketHandle, Vec<u8>)> = (0..64)
        .map(|_| {
            let socket = tcp::Socket::new(
                tcp::SocketBuffer::new(vec![0; 4096]),
                tcp::SocketBuffer::new(vec![0; 4096]),
            );
            (sockets.add(socket), Vec::new())
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        device.received.extend(to_server.lock().unwrap().drain(..));
        interface.poll(now(), &mut device, &mut sockets);
        for (handle, pending) in &mut listeners {
            let socket = sockets.get_mut::<tcp::Socket>(*handle);
            if !socket.is_open() {
                socket.listen(80).unwrap();
            }
            let mut chunk = [0u8; 1024];
            while let Ok(read) = socket.recv_slice(&mut chunk) {
                if read == 0 {
                    break;
                }
                pending.extend_from_slice(&chunk[..read]);
            }
            while let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                pending.drain(..end + 4);
                assert_eq!(socket.send_slice(REPLY).unwrap(), REPLY.len());
                answered.fetch_add(1, Ordering::Relaxed);
            }
        }
        interface.poll(now(), &mut device, &mut sockets);
        to_client.lock().unwrap().extend(device.to_send.drain(..));
        std::thread::sleep(Duration::from_micros(20));
    }
}

/// Runs the client against a fresh server; returns the client's result
/// and the requests the server answered.
fn against_server(
    connections: u32,
    count: Option<u64>,
    rate: Option<u64>,
) -> (loadgen::run::RunResult, u64) {
    let (to_server, to_client): (Queue, Queue) = Default::default();
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicU64::new(0));
    let server = {
        let (to_server, to_client) = (to_server.clone(), to_client.clone());
        let (stop, answered) = (stop.clone(), answered.clone());
        std::thread::spawn(move || serve(to_server, to_client, stop, answered))
    };
    let port = WirePort {
        to_server,
        to_client,
    };
    let config = TcpConfig {
        source_mac: CLIENT_MAC,
        source_ip: Ipv4Addr::new(10, 0, 0, 100),
        prefix_len: 24,
        destination_ip: SERVER_IP,
        port: 80,
        protocol: Protocol::Http,
        connections,
        duration: Duration::from_secs(if count.is_some() { 30 } else { 1 }),
        warmup: Duration::ZERO,
        rate,
        count,
        reply_timeout: Duration::from_secs(5),
        seed: 7,
        poll_before_sleep: None,
    };
    let outcome = run_tcp(&port, &config);
    stop.store(true, Ordering::Relaxed);
    server.join().unwrap();
    let (result, counters, failure) = outcome.unwrap();
    assert_eq!(counters.failures, 0, "{failure:?}");
    assert_eq!(u64::from(connections), counters.connects);
    (result, answered.load(Ordering::Relaxed))
}

#[test]
fn a_counted_closed_loop_gets_every_request_answered_once() {
    let connections = CONNECTIONS_PER_SHARD as u32 * 2 + 3;
    let (result, answered) = against_server(connections, Some(2000), None);
    let summary = &result.summary;
    assert_eq!(
        (summary.sent, summary.received, summary.lost),
        (2000, 2000, 0)
    );
    assert_eq!(answered, 2000);
    assert!(summary.latency_p99_ns.is_some());
    assert_eq!(result.latency_cdf.len(), 101);
}

#[test]
fn a_fixed_rate_sends_on_schedule() {
    // 4 connections at 2000 requests/s for 1 s: 500 slots each.
    let (result, answered) = against_server(4, None, Some(2000));
    let summary = &result.summary;
    assert!(
        (1900..=2000).contains(&summary.sent),
        "sent {} of the 2000 slots",
        summary.sent
    );
    assert_eq!(summary.received, summary.sent);
    assert_eq!(answered, summary.sent);
    assert_eq!(result.offered_pps, Some(2000));
}
