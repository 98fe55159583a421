//! `Spec::parse`: TOML text (read by the `toml` crate, every key and value
//! with its byte span) to a validated [`Spec`], refusing anything unknown,
//! missing, malformed or contradictory with the line and the field.

use super::document::{Document, Entry, TableReader};
use super::error::{SpecError, SpecErrorKind};
use super::model::{
    DEFAULT_HALT_POLL_US, DEFAULT_IDLE_TIMEOUT_MS, Driver, IdleMode, Interface, Ipv4Settings,
    MAX_HALT_POLL_US, MAX_INTERFACES, Management, Route, Spec, TcpConfig,
};
use super::service_table::read_service;
use alloc::format;
use alloc::string::ToString;
use alloc::vec::Vec;
use core::net::SocketAddrV4;
use dataplane::{Ipv4Cidr, MacAddr};
use services::HookPoint;
use services::Registry;
use services::reassembly;
use toml::de::DeValue;

const EXPECT_MAC: &str = "a MAC address like 02:00:00:00:00:01";
const EXPECT_CIDR: &str = "an IPv4 address with prefix like 10.0.0.2/24";
const EXPECT_DRIVER: &str = "one of virtio, igb, tap, af-packet, af-xdp, loopback";

impl Spec {
    /// Parses and validates a spec whose services are kinds of `registry`.
    /// The error names the line and the field, like `line 7:
    /// interface[0].mac: expected a MAC address like 02:00:00:00:00:01,
    /// got "zz"`.
    pub fn parse(text: &str, registry: &Registry) -> Result<Spec, SpecError> {
        let document = Document::parse(text)?;
        let mut spec = Spec {
            idle: read_idle(&document)?,
            ..Spec::default()
        };
        for (index, table) in document.tables("interface")?.iter().enumerate() {
            let reader = TableReader::new(text, table, format!("interface[{index}]"));
            if index == MAX_INTERFACES {
                return Err(reader.error_here(SpecErrorKind::TooManyInterfaces {
                    limit: MAX_INTERFACES,
                }));
            }
            let interface = read_interface(&reader, &spec)?;
            spec.interfaces.push(interface);
        }
        let service_tables = document.tables("service")?;
        for (index, table) in service_tables.iter().enumerate() {
            let reader = TableReader::new(text, table, format!("service[{index}]"));
            spec.services.push(read_service(&reader, registry)?);
        }
        for (index, table) in document.tables("route")?.iter().enumerate() {
            let reader = TableReader::new(text, table, format!("route[{index}]"));
            let route = read_route(&reader, &spec)?;
            spec.routes.push(route);
        }
        if let Some(table) = document.table("ipv4")? {
            spec.ipv4 = read_ipv4(&TableReader::new(text, table, "ipv4".to_string()))?;
        }
        if let Some(table) = document.table("tcp")? {
            spec.tcp = read_tcp(&TableReader::new(text, table, "tcp".to_string()))?;
        }
        if let Some(table) = document.table("management")? {
            let reader = TableReader::new(text, table, "management".to_string());
            spec.management = Some(read_management(&reader, &spec)?);
        }
        if let Some(table) = document.table("supervision")? {
            let reader = TableReader::new(text, table, "supervision".to_string());
            spec.supervision = super::supervision::read_supervision(&reader)?;
        }
        super::service_table::check_services(&spec)?;
        Ok(spec)
    }
}

/// The top-level `idle` and `halt_poll_us` (only with `idle =
/// "haltpoll"`).
fn read_idle(document: &Document<'_>) -> Result<IdleMode, SpecError> {
    let halt_poll_us = document.integer(
        "halt_poll_us",
        0,
        i64::from(MAX_HALT_POLL_US),
        "a window in microseconds from 0 to 10000",
    )?;
    let idle = match document.string("idle")? {
        None => IdleMode::Halt,
        Some(("halt", _)) => IdleMode::Halt,
        Some(("poll", _)) => IdleMode::Poll,
        Some(("haltpoll", _)) => IdleMode::HaltPoll {
            // In range: checked against MAX_HALT_POLL_US, a u32, above.
            max_window_us: halt_poll_us.map_or(DEFAULT_HALT_POLL_US, |(us, _)| us as u32),
        },
        Some((other, line)) => {
            return Err(SpecError {
                line,
                field: "idle".to_string(),
                kind: SpecErrorKind::InvalidValue {
                    expected: "\"halt\" (sleep when idle), \"poll\" (never sleep) or \"haltpoll\" (poll a while, then sleep)",
                    got: other.to_string(),
                },
            });
        }
    };
    if let (Some((us, line)), false) = (halt_poll_us, matches!(idle, IdleMode::HaltPoll { .. })) {
        return Err(SpecError {
            line,
            field: "halt_poll_us".to_string(),
            kind: SpecErrorKind::InvalidValue {
                expected: "halt_poll_us only with idle = \"haltpoll\"",
                got: us.to_string(),
            },
        });
    }
    Ok(idle)
}

fn read_interface(reader: &TableReader<'_, '_>, spec: &Spec) -> Result<Interface, SpecError> {
    reader.reject_unknown(&[
        "name",
        "driver",
        "mac",
        "address",
        "queues",
        "ifname",
        "first_queue",
    ])?;
    let entry = reader.required("name")?;
    let name = reader.string(entry)?;
    if name.is_empty() {
        return Err(reader.invalid(entry, "a non-empty name", name));
    }
    if let Some(first) = spec.interface_index(name) {
        return Err(reader.duplicate(entry, name, format!("interface[{first}]")));
    }
    let entry = reader.required("driver")?;
    let driver = match reader.string(entry)? {
        "virtio" => Driver::Virtio,
        "igb" => Driver::Igb,
        "tap" => Driver::Tap,
        "af-packet" => Driver::AfPacket,
        "af-xdp" => Driver::AfXdp,
        "loopback" => Driver::Loopback,
        other => return Err(reader.invalid(entry, EXPECT_DRIVER, other)),
    };
    let entry = reader.required("mac")?;
    let text = reader.string(entry)?;
    let mac: MacAddr = text
        .parse()
        .map_err(|_| reader.invalid(entry, EXPECT_MAC, text))?;
    if !mac.is_unicast() {
        return Err(reader.invalid(
            entry,
            "a unicast MAC address (first byte even, not all zero)",
            text,
        ));
    }
    if let Some(first) = spec.interfaces.iter().position(|other| other.mac == mac) {
        return Err(reader.duplicate(entry, text, format!("interface[{first}]")));
    }
    let entry = reader.required("address")?;
    let text = reader.string(entry)?;
    let address: Ipv4Cidr = text
        .parse()
        .map_err(|_| reader.invalid(entry, EXPECT_CIDR, text))?;
    let bits = address.address.to_bits();
    if address.prefix_len == 0
        || address.address.is_unspecified()
        || address.address.is_multicast()
        || address.address.is_broadcast()
        || (address.prefix_len < 31
            && (bits == address.network().to_bits() || bits == address.broadcast().to_bits()))
    {
        return Err(reader.invalid(
            entry,
            "a host address inside its subnet, like 10.0.0.2/24",
            text,
        ));
    }
    if let Some(first) = spec
        .interfaces
        .iter()
        .position(|other| other.address.address == address.address)
    {
        return Err(reader.duplicate(entry, text, format!("interface[{first}]")));
    }
    let queues = match reader.get("queues") {
        Some(entry) => reader.integer(entry, 1, 64, "a queue count from 1 to 64")? as u16,
        None => 1,
    };
    let ifname = match reader.get("ifname") {
        Some(entry) if driver.is_hosted() => {
            let text = reader.string(entry)?;
            if text.is_empty() || text.len() > 15 || text.contains(['/', ' ', '\0']) {
                return Err(reader.invalid(
                    entry,
                    "a Linux interface name of 1 to 15 bytes without / or spaces",
                    text,
                ));
            }
            Some(text.to_string())
        }
        Some(entry) => {
            return Err(reader.error_at(
                entry,
                SpecErrorKind::Conflict(format!(
                    "driver `{}` does not run on a Linux interface; ifname is for tap, \
                     af-packet and af-xdp",
                    driver.name()
                )),
            ));
        }
        None => None,
    };
    let first_queue = match reader.get("first_queue") {
        Some(entry) if driver == Driver::AfXdp => reader.integer(
            entry,
            0,
            i64::from(u32::MAX),
            "a NIC queue number from 0 to 4294967295",
        )? as u32,
        Some(entry) => {
            return Err(reader.error_at(
                entry,
                SpecErrorKind::Conflict(format!(
                    "driver `{}` does not bind NIC queues by number; first_queue is for af-xdp",
                    driver.name()
                )),
            ));
        }
        None => 0,
    };
    Ok(Interface {
        name: name.to_string(),
        driver,
        mac,
        address,
        queues,
        ifname,
        first_queue,
    })
}

fn read_ipv4(reader: &TableReader<'_, '_>) -> Result<Ipv4Settings, SpecError> {
    reader.reject_unknown(&["reassembly_datagrams", "reassembly_max_bytes"])?;
    let mut settings = Ipv4Settings::default();
    if let Some(entry) = reader.get("reassembly_datagrams") {
        settings.reassembly.datagrams = reader.integer(
            entry,
            0,
            reassembly::MAX_DATAGRAMS as i64,
            "datagrams in progress per core, from 0 (off) to 64",
        )? as usize;
    }
    if let Some(entry) = reader.get("reassembly_max_bytes") {
        settings.reassembly.max_bytes = reader.integer(
            entry,
            reassembly::MIN_MAX_BYTES as i64,
            reassembly::DEFAULT_MAX_BYTES as i64,
            "the largest datagram to reassemble, from 576 to 65535 bytes",
        )? as usize;
    }
    Ok(settings)
}

/// `[tcp]`'s keys: name, least and largest value, what is expected.
const TCP_KEYS: [(&str, i64, i64, &str); 9] = [
    (
        "max_connections",
        1,
        1 << 20,
        "connections per core, from 1 to 1048576",
    ),
    (
        "syn_backlog",
        0,
        1 << 16,
        "half-open connections per core before SYN cookies, from 0 to 65536",
    ),
    (
        "receive_buffer",
        4096,
        16 << 20,
        "bytes a connection buffers on receive, from 4096 to 16777216",
    ),
    (
        "send_buffer",
        4096,
        16 << 20,
        "bytes a connection buffers on send, from 4096 to 16777216",
    ),
    (
        "time_wait_ms",
        0,
        240_000,
        "milliseconds in TIME-WAIT, from 0 to 240000",
    ),
    (
        "max_time_wait",
        0,
        1 << 20,
        "TIME-WAIT entries per core, from 0 to 1048576",
    ),
    (
        "rto_min_ms",
        1,
        60_000,
        "the least retransmission timeout in milliseconds, from 1 to 60000",
    ),
    (
        "rto_max_ms",
        100,
        600_000,
        "the largest retransmission timeout in milliseconds, from 100 to 600000",
    ),
    (
        "fin_wait2_ms",
        1000,
        600_000,
        "milliseconds to wait for the peer's FIN after ours, from 1000 to 600000",
    ),
];

/// `[tcp]`: the TCP stack's limits and timers, each within a range a
/// datacenter stack can live with.
fn read_tcp(reader: &TableReader<'_, '_>) -> Result<TcpConfig, SpecError> {
    let names: Vec<&str> = TCP_KEYS.iter().map(|key| key.0).collect();
    reader.reject_unknown(&names)?;
    let mut config = TcpConfig::default();
    for (name, least, largest, expected) in TCP_KEYS {
        let Some(entry) = reader.get(name) else {
            continue;
        };
        let value = reader.integer(entry, least, largest, expected)? as u64;
        match name {
            "max_connections" => config.max_connections = value as usize,
            "syn_backlog" => config.syn_backlog = value as usize,
            "receive_buffer" => config.receive_buffer = value as usize,
            "send_buffer" => config.send_buffer = value as usize,
            "time_wait_ms" => config.time_wait_ms = value,
            "max_time_wait" => config.max_time_wait = value as usize,
            "rto_min_ms" => config.rto_min_ms = value,
            "rto_max_ms" => config.rto_max_ms = value,
            _ => config.fin_wait2_ms = value,
        }
    }
    if config.rto_min_ms > config.rto_max_ms
        && let Some(entry) = reader.get("rto_min_ms")
    {
        return Err(reader.error_at(
            entry,
            SpecErrorKind::Conflict("rto_min_ms is above rto_max_ms".to_string()),
        ));
    }
    Ok(config)
}

/// `[management]`: `listen` on one of our addresses, a port no TCP app
/// serves; `token_sha256` as 64 hexadecimal digits; `core`.
fn read_management(reader: &TableReader<'_, '_>, spec: &Spec) -> Result<Management, SpecError> {
    reader.reject_unknown(&["listen", "token_sha256", "core", "idle_timeout_ms"])?;
    let entry = reader.required("listen")?;
    let text = reader.string(entry)?;
    let listen: SocketAddrV4 = text
        .parse()
        .ok()
        .filter(|address: &SocketAddrV4| address.port() != 0)
        .ok_or_else(|| reader.invalid(entry, "an address and port like 10.0.0.2:8080", text))?;
    if !spec
        .interfaces
        .iter()
        .any(|interface| interface.address.address == *listen.ip())
    {
        return Err(reader.invalid(entry, "one of the interfaces' addresses and a port", text));
    }
    if let Some(service) = spec
        .services
        .iter()
        .find(|service| service.attach.contains(&HookPoint::Tcp(listen.port())))
    {
        return Err(reader.error_at(
            entry,
            SpecErrorKind::Conflict(format!(
                "TCP port {} is served by `{}` already",
                listen.port(),
                service.kind
            )),
        ));
    }
    let token_sha256 =
        match reader.get("token_sha256") {
            Some(entry) => {
                let text = reader.string(entry)?;
                Some(hex_digest(text).ok_or_else(|| {
                    reader.invalid(entry, "64 hexadecimal digits (a SHA-256)", text)
                })?)
            }
            None => None,
        };
    let core = match reader.get("core") {
        Some(entry) => reader.integer(entry, 0, 255, "a core from 0 to 255")? as usize,
        None => 0,
    };
    let idle_timeout_ms = match reader.get("idle_timeout_ms") {
        Some(entry) => {
            reader.integer(entry, 100, 3_600_000, "milliseconds from 100 to 3600000")? as u32
        }
        None => DEFAULT_IDLE_TIMEOUT_MS,
    };
    Ok(Management {
        listen,
        token_sha256,
        core,
        idle_timeout_ms,
    })
}

/// 64 hexadecimal digits as 32 bytes.
fn hex_digest(text: &str) -> Option<[u8; 32]> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut digest = [0u8; 32];
    for (index, pair) in bytes.chunks_exact(2).enumerate() {
        let text = core::str::from_utf8(pair).ok()?;
        digest[index] = u8::from_str_radix(text, 16).ok()?;
    }
    Some(digest)
}

fn read_route(reader: &TableReader<'_, '_>, spec: &Spec) -> Result<Route, SpecError> {
    reader.reject_unknown(&["destination", "via", "interface"])?;
    let destination_entry = reader.required("destination")?;
    let text = reader.string(destination_entry)?;
    let destination: Ipv4Cidr = text.parse().map_err(|_| {
        reader.invalid(
            destination_entry,
            "a subnet like 10.2.0.0/16 or 0.0.0.0/0",
            text,
        )
    })?;
    if destination.network() != destination.address {
        return Err(reader.invalid(
            destination_entry,
            "a subnet with its host bits clear, like 10.2.0.0/16",
            text,
        ));
    }
    let interface = match reader.get("interface") {
        Some(entry) => {
            let name = reader.string(entry)?;
            Some(spec.interface_index(name).ok_or_else(|| {
                reader.error_at(entry, SpecErrorKind::UnknownInterface(name.to_string()))
            })?)
        }
        None => None,
    };
    let via = match reader.get("via") {
        Some(entry) => Some((reader.address(entry)?, entry)),
        None => None,
    };
    let interface = match (via, interface) {
        (None, None) => return Err(reader.error_here(SpecErrorKind::RouteWithoutTarget)),
        (None, Some(interface)) => interface,
        (Some((via, entry)), interface) => {
            let reachable = |index: usize| {
                let connected = spec.interfaces[index].address;
                connected.contains(via) && connected.address != via
            };
            let found = match interface {
                Some(index) => reachable(index).then_some(index),
                None => (0..spec.interfaces.len()).find(|index| reachable(*index)),
            };
            found.ok_or_else(|| {
                reader.error_at(entry, SpecErrorKind::UnreachableNextHop(via.to_string()))
            })?
        }
    };
    if let Some(first) = spec
        .routes
        .iter()
        .position(|route| route.destination == destination)
    {
        return Err(reader.duplicate(destination_entry, text, format!("route[{first}]")));
    }
    Ok(Route {
        destination,
        via: via.map(|(via, _)| via),
        interface,
    })
}

/// Reads `cores = [0, 1]`: distinct core numbers, at least one.
pub(super) fn read_cores(
    reader: &TableReader<'_, '_>,
    entry: Entry<'_, '_>,
) -> Result<Vec<usize>, SpecError> {
    let DeValue::Array(items) = entry.value.get_ref() else {
        return Err(reader.wrong_type(entry, "an array of core numbers"));
    };
    let mut cores = Vec::with_capacity(items.len());
    for item in items {
        let core = match item.get_ref() {
            DeValue::Integer(_) => {
                let value = reader.integer_value(entry, item.get_ref())?;
                if !(0..=1023).contains(&value) {
                    return Err(reader.invalid(
                        entry,
                        "core numbers from 0 to 1023",
                        &value.to_string(),
                    ));
                }
                value as usize
            }
            other => {
                return Err(reader.error_at(
                    entry,
                    SpecErrorKind::WrongType {
                        expected: "an array of core numbers",
                        found: super::document::type_name(other),
                    },
                ));
            }
        };
        if cores.contains(&core) {
            let first = reader.field(entry.key);
            return Err(reader.duplicate(entry, &core.to_string(), first));
        }
        cores.push(core);
    }
    if cores.is_empty() {
        return Err(reader.invalid(entry, "at least one core (omit `cores` for all)", "[]"));
    }
    Ok(cores)
}
