//! Which spec changes a running instance makes live, and which need a
//! restart: `restart_needed` names the first field of the second kind.
//!
//! Live: services (added, removed, changed, moved between cores), static
//! routes, `[ipv4]`, and an interface's `address`. Restart: an
//! interface added, removed or renamed, its `driver`, `mac` or `queues`
//! (the NIC queues and their receive pools are opened at start), `[tcp]`
//! (it sizes the connection tables each core's stack allocates, and the
//! stack is what keeps connections across a change), `[management]` (the
//! plane serving the request is the one to change), and `idle` (each
//! core's poll loop is chosen at start).

use crate::spec::Spec;
use alloc::format;
use alloc::string::String;

/// A change that needs a restart: the field, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestartNeeded {
    /// The field, as spec errors name it (`interface[0].mac`, `tcp`).
    pub field: String,
    /// Why it cannot change live.
    pub message: String,
}

fn needs(field: String, why: &str) -> Option<RestartNeeded> {
    Some(RestartNeeded {
        message: format!(
            "`{field}` cannot change while the instance runs: {why}; restart it with the new spec"
        ),
        field,
    })
}

/// The first change from `running` to `proposed` that needs a restart.
pub fn restart_needed(running: &Spec, proposed: &Spec) -> Option<RestartNeeded> {
    const QUEUES: &str = "the NIC queues are opened when the instance starts";
    if running.interfaces.len() != proposed.interfaces.len() {
        return needs(
            String::from("interface"),
            "interfaces are added and removed at start only",
        );
    }
    for (index, (old, new)) in running
        .interfaces
        .iter()
        .zip(&proposed.interfaces)
        .enumerate()
    {
        if old.name != new.name {
            return needs(format!("interface[{index}].name"), QUEUES);
        }
        if old.driver != new.driver {
            return needs(format!("interface[{index}].driver"), QUEUES);
        }
        if old.mac != new.mac {
            return needs(
                format!("interface[{index}].mac"),
                "the NIC is given its MAC when it starts",
            );
        }
        if old.queues != new.queues {
            return needs(format!("interface[{index}].queues"), QUEUES);
        }
        if old.ifname != new.ifname {
            return needs(format!("interface[{index}].ifname"), QUEUES);
        }
        if old.first_queue != new.first_queue {
            return needs(format!("interface[{index}].first_queue"), QUEUES);
        }
    }
    if running.tcp != proposed.tcp {
        return needs(
            String::from("tcp"),
            "[tcp] sizes the connection tables every core allocates at start",
        );
    }
    if running.management != proposed.management {
        return needs(
            String::from("management"),
            "the management plane cannot move or change under the request that changes it",
        );
    }
    if running.idle != proposed.idle {
        return needs(
            String::from("idle"),
            "each core chooses its poll loop at start",
        );
    }
    None
}
