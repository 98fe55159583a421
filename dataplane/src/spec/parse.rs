//! `Spec::parse`: TOML text to a validated [`Spec`], refusing anything
//! unknown, missing, malformed or contradictory.

use super::error::{SpecError, SpecErrorKind};
use super::model::{
    Driver, Interface, Ipv4Cidr, MAX_INTERFACES, Route, Service, ServiceKind, Spec,
};
use super::toml::{self, Entry, SectionKind, Table, Value};
use crate::MacAddr;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::net::Ipv4Addr;

const EXPECT_MAC: &str = "a MAC address like 02:00:00:00:00:01";
const EXPECT_CIDR: &str = "an IPv4 address with prefix like 10.0.0.2/24";
const EXPECT_ADDRESS: &str = "an IPv4 address like 10.0.0.1";
const EXPECT_DRIVER: &str = "one of virtio, tap, af-packet, loopback";
const EXPECT_KIND: &str = "one of udp-echo, l2fwd, l3fwd, icmp-echo";

impl Spec {
    /// Parses and validates a spec. The error names the line and the field,
    /// like `line 7: interface[0].mac: expected a MAC address like
    /// 02:00:00:00:00:01, got "zz"`.
    pub fn parse(text: &str) -> Result<Spec, SpecError> {
        let document = toml::parse(text).map_err(|error| SpecError {
            line: error.line,
            field: error.key.unwrap_or_default(),
            kind: SpecErrorKind::Syntax(error.error),
        })?;
        if let Some(entry) = document.root.entries.first() {
            return Err(error_at(
                entry.line,
                entry.key.clone(),
                SpecErrorKind::UnknownKey,
            ));
        }
        let mut spec = Spec::default();
        // Routes refer to interfaces by name: read every interface first.
        let mut route_tables = Vec::new();
        for section in &document.sections {
            let counters = (
                spec.interfaces.len(),
                route_tables.len(),
                spec.services.len(),
            );
            let (field, index) = match section.name.as_str() {
                "interface" => ("interface", counters.0),
                "route" => ("route", counters.1),
                "service" => ("service", counters.2),
                _ => {
                    return Err(error_at(
                        section.table.line,
                        format!("[{}]", section.name),
                        SpecErrorKind::UnknownKey,
                    ));
                }
            };
            if section.kind != SectionKind::ArrayOfTables {
                return Err(error_at(
                    section.table.line,
                    field.to_string(),
                    SpecErrorKind::WrongType {
                        expected: "an array of tables ([[...]])",
                        found: "a table ([...])",
                    },
                ));
            }
            let reader = TableReader {
                table: &section.table,
                path: format!("{field}[{index}]"),
            };
            match field {
                "interface" => {
                    let interface = reader.interface(&spec)?;
                    if spec.interfaces.len() == MAX_INTERFACES {
                        return Err(error_at(
                            section.table.line,
                            reader.path,
                            SpecErrorKind::TooManyInterfaces {
                                limit: MAX_INTERFACES,
                            },
                        ));
                    }
                    spec.interfaces.push(interface);
                }
                "route" => route_tables.push(reader),
                _ => {
                    let service = reader.service(&spec)?;
                    spec.services.push(service);
                }
            }
        }
        for reader in &route_tables {
            let route = reader.route(&spec)?;
            spec.routes.push(route);
        }
        check_services(&spec, &document.sections)?;
        Ok(spec)
    }
}

fn error_at(line: usize, field: String, kind: SpecErrorKind) -> SpecError {
    SpecError { line, field, kind }
}

/// Reads the keys of one `[[x]]` table, remembering which were used.
struct TableReader<'a> {
    table: &'a Table,
    path: String,
}

impl TableReader<'_> {
    fn field(&self, key: &str) -> String {
        format!("{}.{key}", self.path)
    }

    fn reject_unknown(&self, known: &[&str]) -> Result<(), SpecError> {
        match self
            .table
            .entries
            .iter()
            .find(|entry| !known.contains(&entry.key.as_str()))
        {
            Some(entry) => Err(error_at(
                entry.line,
                self.field(&entry.key),
                SpecErrorKind::UnknownKey,
            )),
            None => Ok(()),
        }
    }

    fn required(&self, key: &str) -> Result<&Entry, SpecError> {
        self.table
            .get(key)
            .ok_or_else(|| error_at(self.table.line, self.field(key), SpecErrorKind::MissingKey))
    }

    fn wrong_type(&self, entry: &Entry, expected: &'static str) -> SpecError {
        error_at(
            entry.line,
            self.field(&entry.key),
            SpecErrorKind::WrongType {
                expected,
                found: entry.value.type_name(),
            },
        )
    }

    fn invalid(&self, entry: &Entry, expected: &'static str, got: &str) -> SpecError {
        error_at(
            entry.line,
            self.field(&entry.key),
            SpecErrorKind::InvalidValue {
                expected,
                got: got.to_string(),
            },
        )
    }

    fn string<'e>(&self, entry: &'e Entry) -> Result<&'e str, SpecError> {
        match &entry.value {
            Value::String(text) => Ok(text),
            _ => Err(self.wrong_type(entry, "a string")),
        }
    }

    fn integer(
        &self,
        entry: &Entry,
        min: i64,
        max: i64,
        expected: &'static str,
    ) -> Result<i64, SpecError> {
        match entry.value {
            Value::Integer(value) if (min..=max).contains(&value) => Ok(value),
            Value::Integer(value) => Err(self.invalid(entry, expected, &value.to_string())),
            _ => Err(self.wrong_type(entry, "an integer")),
        }
    }

    fn address(&self, entry: &Entry) -> Result<Ipv4Addr, SpecError> {
        let text = self.string(entry)?;
        text.parse()
            .map_err(|_| self.invalid(entry, EXPECT_ADDRESS, text))
    }

    fn interface(&self, spec: &Spec) -> Result<Interface, SpecError> {
        self.reject_unknown(&["name", "driver", "mac", "address", "queues"])?;
        let entry = self.required("name")?;
        let name = self.string(entry)?;
        if name.is_empty() {
            return Err(self.invalid(entry, "a non-empty name", name));
        }
        if let Some(first) = spec.interface_index(name) {
            return Err(self.duplicate(entry, name, first));
        }
        let entry = self.required("driver")?;
        let driver = match self.string(entry)? {
            "virtio" => Driver::Virtio,
            "tap" => Driver::Tap,
            "af-packet" => Driver::AfPacket,
            "loopback" => Driver::Loopback,
            other => return Err(self.invalid(entry, EXPECT_DRIVER, other)),
        };
        let entry = self.required("mac")?;
        let text = self.string(entry)?;
        let mac: MacAddr = text
            .parse()
            .map_err(|_| self.invalid(entry, EXPECT_MAC, text))?;
        if !mac.is_unicast() {
            return Err(self.invalid(
                entry,
                "a unicast MAC address (first byte even, not all zero)",
                text,
            ));
        }
        if let Some(first) = spec.interfaces.iter().position(|other| other.mac == mac) {
            return Err(self.duplicate(entry, text, first));
        }
        let entry = self.required("address")?;
        let text = self.string(entry)?;
        let address: Ipv4Cidr = text
            .parse()
            .map_err(|_| self.invalid(entry, EXPECT_CIDR, text))?;
        let bits = address.address.to_bits();
        if address.prefix_len == 0
            || address.address.is_unspecified()
            || address.address.is_multicast()
            || address.address.is_broadcast()
            || (address.prefix_len < 31
                && (bits == address.network().to_bits() || bits == address.broadcast().to_bits()))
        {
            return Err(self.invalid(
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
            return Err(self.duplicate(entry, text, first));
        }
        let queues = match self.table.get("queues") {
            Some(entry) => self.integer(entry, 1, 64, "a queue count from 1 to 64")? as u16,
            None => 1,
        };
        Ok(Interface {
            name: name.to_string(),
            driver,
            mac,
            address,
            queues,
        })
    }

    fn duplicate(&self, entry: &Entry, value: &str, first: usize) -> SpecError {
        error_at(
            entry.line,
            self.field(&entry.key),
            SpecErrorKind::Duplicate {
                value: value.to_string(),
                first: format!("interface[{first}]"),
            },
        )
    }

    fn route(&self, spec: &Spec) -> Result<Route, SpecError> {
        self.reject_unknown(&["destination", "via", "interface"])?;
        let entry = self.required("destination")?;
        let text = self.string(entry)?;
        let destination: Ipv4Cidr = text
            .parse()
            .map_err(|_| self.invalid(entry, "a subnet like 10.2.0.0/16 or 0.0.0.0/0", text))?;
        if destination.network() != destination.address {
            return Err(self.invalid(
                entry,
                "a subnet with its host bits clear, like 10.2.0.0/16",
                text,
            ));
        }
        let interface = match self.table.get("interface") {
            Some(entry) => {
                let name = self.string(entry)?;
                Some(spec.interface_index(name).ok_or_else(|| {
                    error_at(
                        entry.line,
                        self.field("interface"),
                        SpecErrorKind::UnknownInterface(name.to_string()),
                    )
                })?)
            }
            None => None,
        };
        let via = match self.table.get("via") {
            Some(entry) => Some((self.address(entry)?, entry.line)),
            None => None,
        };
        let interface = match (via, interface) {
            (None, None) => {
                return Err(error_at(
                    self.table.line,
                    self.path.clone(),
                    SpecErrorKind::RouteWithoutTarget,
                ));
            }
            (None, Some(interface)) => interface,
            (Some((via, line)), interface) => {
                let reachable = |index: usize| {
                    let connected = spec.interfaces[index].address;
                    connected.contains(via) && connected.address != via
                };
                let found = match interface {
                    Some(index) => reachable(index).then_some(index),
                    None => (0..spec.interfaces.len()).find(|index| reachable(*index)),
                };
                found.ok_or_else(|| {
                    error_at(
                        line,
                        self.field("via"),
                        SpecErrorKind::UnreachableNextHop(via.to_string()),
                    )
                })?
            }
        };
        if let Some(first) = spec
            .routes
            .iter()
            .position(|route| route.destination == destination)
        {
            return Err(error_at(
                entry.line,
                self.field("destination"),
                SpecErrorKind::Duplicate {
                    value: text.to_string(),
                    first: format!("route[{first}]"),
                },
            ));
        }
        Ok(Route {
            destination,
            via: via.map(|(via, _)| via),
            interface,
        })
    }

    fn service(&self, spec: &Spec) -> Result<Service, SpecError> {
        let entry = self.required("kind")?;
        let text = self.string(entry)?;
        let kind = match text {
            "udp-echo" => {
                self.reject_unknown(&["kind", "port", "cores"])?;
                let entry = self.required("port")?;
                let port = self.integer(entry, 1, 65535, "a UDP port from 1 to 65535")? as u16;
                let duplicate = spec
                    .services
                    .iter()
                    .position(|service| service.kind == ServiceKind::UdpEcho { port });
                if let Some(first) = duplicate {
                    return Err(error_at(
                        entry.line,
                        self.field("port"),
                        SpecErrorKind::Duplicate {
                            value: port.to_string(),
                            first: format!("service[{first}]"),
                        },
                    ));
                }
                ServiceKind::UdpEcho { port }
            }
            "l2fwd" | "l3fwd" | "icmp-echo" => {
                self.reject_unknown(&["kind", "cores"])?;
                match text {
                    "l2fwd" => ServiceKind::L2fwd,
                    "l3fwd" => ServiceKind::L3fwd,
                    _ => ServiceKind::IcmpEcho,
                }
            }
            other => return Err(self.invalid(entry, EXPECT_KIND, other)),
        };
        let cores = match self.table.get("cores") {
            None => None,
            Some(entry) => {
                let Value::Array(items) = &entry.value else {
                    return Err(self.wrong_type(entry, "an array of core numbers"));
                };
                let mut cores = Vec::with_capacity(items.len());
                for item in items {
                    let core = match item {
                        Value::Integer(core) if (0..=1023).contains(core) => *core as usize,
                        Value::Integer(core) => {
                            return Err(self.invalid(
                                entry,
                                "core numbers from 0 to 1023",
                                &core.to_string(),
                            ));
                        }
                        other => {
                            return Err(error_at(
                                entry.line,
                                self.field("cores"),
                                SpecErrorKind::WrongType {
                                    expected: "an array of core numbers",
                                    found: other.type_name(),
                                },
                            ));
                        }
                    };
                    if cores.contains(&core) {
                        return Err(error_at(
                            entry.line,
                            self.field("cores"),
                            SpecErrorKind::Duplicate {
                                value: core.to_string(),
                                first: self.field("cores"),
                            },
                        ));
                    }
                    cores.push(core);
                }
                if cores.is_empty() {
                    return Err(self.invalid(
                        entry,
                        "at least one core (omit `cores` for all)",
                        "[]",
                    ));
                }
                Some(cores)
            }
        };
        Ok(Service { kind, cores })
    }
}

/// Checks that services fit together and with the interfaces.
fn check_services(spec: &Spec, sections: &[toml::Section]) -> Result<(), SpecError> {
    let line_of = |index: usize| {
        sections
            .iter()
            .filter(|section| section.name == "service")
            .nth(index)
            .map_or(0, |section| section.table.line)
    };
    for (index, service) in spec.services.iter().enumerate() {
        let conflict = match service.kind {
            ServiceKind::L3fwd if spec.interfaces.len() < 2 => {
                Some("l3fwd needs at least two interfaces")
            }
            ServiceKind::L2fwd
                if spec.services.iter().any(|other| {
                    !matches!(other.kind, ServiceKind::L2fwd | ServiceKind::IcmpEcho)
                }) =>
            {
                Some("l2fwd reflects every frame and cannot share the spec with IP services")
            }
            ServiceKind::L2fwd
                if spec
                    .services
                    .iter()
                    .filter(|other| other.kind == ServiceKind::L2fwd)
                    .count()
                    > 1 =>
            {
                Some("l2fwd is listed twice")
            }
            _ if spec.interfaces.is_empty() => Some("a service needs at least one interface"),
            _ => None,
        };
        if let Some(why) = conflict {
            return Err(error_at(
                line_of(index),
                format!("service[{index}].kind"),
                SpecErrorKind::ServiceConflict(why),
            ));
        }
    }
    Ok(())
}
