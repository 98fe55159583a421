//! `faulty-echo`, a test-only service kind (cargo feature `test-services`,
//! never in a release image unless asked): a UDP echo that panics on a
//! datagram whose payload starts with its panic mark, and burns CPU on one
//! that starts with its slow mark, so that tests can prove supervision
//! contains a failing service and restarts it.

use crate::UdpEcho;
use crate::registry::{BuildContext, HookPoint, ServiceKind, UdpPort};
use crate::wire::{Ipv4Packet, UdpPacket};
use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use dataplane::{Batch, Nanoservice, Outputs, Packet};
use serde::Deserialize;

/// What a datagram asks of [`FaultyEcho`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mark {
    None,
    Panic,
    Slow,
}

/// A UDP echo with faults on demand.
#[derive(Debug)]
pub struct FaultyEcho {
    echo: UdpEcho,
    panic_mark: String,
    slow_mark: String,
    slow_spins: u64,
}

impl FaultyEcho {
    /// What `packet`'s UDP payload asks for.
    fn mark(&self, packet: &Packet) -> Mark {
        let Ok(ip) = Ipv4Packet::new_checked(packet.payload()) else {
            return Mark::None;
        };
        let Ok(udp) = UdpPacket::new_checked(ip.payload()) else {
            return Mark::None;
        };
        let payload = udp.payload();
        if !self.panic_mark.is_empty() && payload.starts_with(self.panic_mark.as_bytes()) {
            Mark::Panic
        } else if !self.slow_mark.is_empty() && payload.starts_with(self.slow_mark.as_bytes()) {
            Mark::Slow
        } else {
            Mark::None
        }
    }
}

impl Nanoservice for FaultyEcho {
    fn name(&self) -> &'static str {
        FaultyEchoKind::NAME
    }

    fn drop_reasons(&self) -> &'static [&'static str] {
        self.echo.drop_reasons()
    }

    fn process(&mut self, batch: &mut Batch, out: &mut Outputs<'_>) {
        for packet in batch.iter() {
            match self.mark(packet) {
                Mark::Panic => panic!("faulty-echo: a marked datagram"),
                Mark::Slow => {
                    for spin in 0..self.slow_spins {
                        core::hint::black_box(spin);
                    }
                }
                Mark::None => {}
            }
        }
        self.echo.process(batch, out);
    }
}

fn default_panic_mark() -> String {
    String::from("PANIC")
}

fn default_slow_mark() -> String {
    String::from("SLOW")
}

/// `faulty-echo`'s table: `port`, and optionally `panic_mark` (default
/// `"PANIC"`), `slow_mark` (default `"SLOW"`) and `slow_spins` (loop
/// iterations a slow datagram costs, default 0); an empty mark is never
/// matched.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultyEchoConfig {
    /// The UDP port to echo on.
    pub port: UdpPort,
    /// A datagram whose payload starts with this makes the service panic.
    #[serde(default = "default_panic_mark")]
    pub panic_mark: String,
    /// A datagram whose payload starts with this costs `slow_spins`.
    #[serde(default = "default_slow_mark")]
    pub slow_mark: String,
    /// Loop iterations a slow datagram costs.
    #[serde(default)]
    pub slow_spins: u64,
}

/// `faulty-echo`: a UDP echo at `udp:<port>` that fails on marked
/// datagrams (tests only).
#[derive(Debug)]
pub struct FaultyEchoKind;

impl ServiceKind for FaultyEchoKind {
    const NAME: &'static str = "faulty-echo";
    type Config = FaultyEchoConfig;

    fn attach(config: &FaultyEchoConfig) -> Vec<HookPoint> {
        vec![HookPoint::Udp(config.port.0)]
    }

    fn build(config: &FaultyEchoConfig, context: &BuildContext<'_>) -> Box<dyn Nanoservice> {
        Box::new(FaultyEcho {
            echo: UdpEcho::new(context.local.clone()),
            panic_mark: config.panic_mark.clone(),
            slow_mark: config.slow_mark.clone(),
            slow_spins: config.slow_spins,
        })
    }
}
