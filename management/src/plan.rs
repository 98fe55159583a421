//! The plan of a spec change: services added or removed (by kind and
//! port) and interfaces, routes and settings changed, found by comparing
//! the running spec with a proposed one.

use crate::json::push_string;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use control::Spec;
use control::spec::Service;
use core::fmt::Write;
use services::HookPoint;

/// What happens to one thing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// It is new.
    Added,
    /// It goes away.
    Removed,
    /// It stays, with other settings.
    Changed,
}

impl Action {
    /// The action as the plan writes it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Added => "added",
            Self::Removed => "removed",
            Self::Changed => "changed",
        }
    }
}

/// One change of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A service, by kind and port (its first UDP or TCP hook point).
    Service {
        /// Added, removed or changed (same kind and hook points, other
        /// settings or cores).
        action: Action,
        /// The kind.
        kind: &'static str,
        /// The port, for services at `udp:<port>` or `tcp:<port>`.
        port: Option<u16>,
    },
    /// An interface, by name.
    Interface {
        /// Added, removed or changed (driver, MAC, address or queues).
        action: Action,
        /// Its name.
        name: String,
    },
    /// The static routes differ.
    Routes,
    /// The `[ipv4]` settings differ.
    Ipv4,
    /// The `[tcp]` settings differ.
    Tcp,
}

/// The port a service serves, if it attaches to UDP or TCP.
fn port(service: &Service) -> Option<u16> {
    service.attach.iter().find_map(|hook| match hook {
        HookPoint::Udp(port) | HookPoint::Tcp(port) => Some(*port),
        _ => None,
    })
}

/// What tells two services apart besides kind and hook points.
fn settings(service: &Service) -> String {
    format!("{:?} {:?}", service.config, service.cores)
}

/// The changes that turn `running` into `proposed`.
pub fn changes(running: &Spec, proposed: &Spec) -> Vec<Change> {
    let mut changes = Vec::new();
    for interface in &running.interfaces {
        match proposed
            .interfaces
            .iter()
            .find(|other| other.name == interface.name)
        {
            None => changes.push(Change::Interface {
                action: Action::Removed,
                name: interface.name.clone(),
            }),
            Some(other) if other != interface => changes.push(Change::Interface {
                action: Action::Changed,
                name: interface.name.clone(),
            }),
            Some(_) => {}
        }
    }
    for interface in &proposed.interfaces {
        if running.interface_index(&interface.name).is_none() {
            changes.push(Change::Interface {
                action: Action::Added,
                name: interface.name.clone(),
            });
        }
    }
    if running.routes != proposed.routes {
        changes.push(Change::Routes);
    }
    if running.ipv4 != proposed.ipv4 {
        changes.push(Change::Ipv4);
    }
    if running.tcp != proposed.tcp {
        changes.push(Change::Tcp);
    }
    let mut matched = alloc::vec![false; proposed.services.len()];
    for service in &running.services {
        let twin = proposed
            .services
            .iter()
            .enumerate()
            .position(|(index, other)| {
                !matched[index] && other.kind == service.kind && other.attach == service.attach
            });
        let change = |action| Change::Service {
            action,
            kind: service.kind,
            port: port(service),
        };
        match twin {
            None => changes.push(change(Action::Removed)),
            Some(index) => {
                matched[index] = true;
                if settings(&proposed.services[index]) != settings(service) {
                    changes.push(change(Action::Changed));
                }
            }
        }
    }
    for (service, _) in proposed.services.iter().zip(&matched).filter(|(_, m)| !**m) {
        changes.push(Change::Service {
            action: Action::Added,
            kind: service.kind,
            port: port(service),
        });
    }
    changes
}

/// Appends the changes as a JSON array.
pub fn push_json(out: &mut String, changes: &[Change]) {
    out.push('[');
    for (index, change) in changes.iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        match change {
            Change::Service { action, kind, port } => {
                let _ = write!(
                    out,
                    "{{\"action\":\"{}\",\"object\":\"service\",\"kind\":",
                    action.as_str()
                );
                push_string(out, kind);
                match port {
                    Some(port) => {
                        let _ = write!(out, ",\"port\":{port}}}");
                    }
                    None => out.push_str(",\"port\":null}"),
                }
            }
            Change::Interface { action, name } => {
                let _ = write!(
                    out,
                    "{{\"action\":\"{}\",\"object\":\"interface\",\"name\":",
                    action.as_str()
                );
                push_string(out, name);
                out.push('}');
            }
            Change::Routes => out.push_str("{\"action\":\"changed\",\"object\":\"routes\"}"),
            Change::Ipv4 => out.push_str("{\"action\":\"changed\",\"object\":\"ipv4\"}"),
            Change::Tcp => out.push_str("{\"action\":\"changed\",\"object\":\"tcp\"}"),
        }
    }
    out.push(']');
}
