//! The spec's `[[service]]` tables: the common keys (`kind`, `cores`,
//! `attach`) read here, the rest handed to the kind's factory through
//! serde; then the checks that need every service at once.

use super::document::{Entry, TableReader};
use super::error::{SpecError, SpecErrorKind};
use super::model::{Service, Spec};
use super::parse::read_cores;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use services::registry::{HOOK_POINT_FORMS, InterfaceInfo, ServiceSummary, SpecSummary};
use services::{HookPoint, Registry};
use toml::de::{DeValue, ValueDeserializer};

/// Keys every service table may have; the rest belong to its kind.
const COMMON_KEYS: [&str; 3] = ["kind", "cores", "attach"];

/// Reads one `[[service]]` table.
pub(super) fn read_service(
    reader: &TableReader<'_, '_>,
    registry: &Registry,
) -> Result<Service, SpecError> {
    let kind_entry = reader.required("kind")?;
    let kind = reader.string(kind_entry)?;
    let rest = reader.rest(&COMMON_KEYS);
    let config = match registry.configure(kind, ValueDeserializer::from(rest)) {
        Some(Ok(config)) => config,
        Some(Err(error)) => return Err(config_error(reader, &error)),
        None => {
            return Err(reader.error_at(
                kind_entry,
                SpecErrorKind::UnknownKind {
                    kind: kind.to_string(),
                    known: registry.names_list(),
                },
            ));
        }
    };
    let cores = match reader.get("cores") {
        Some(entry) => Some(read_cores(reader, entry)?),
        None => None,
    };
    let attach = match reader.get("attach") {
        Some(entry) => read_attach(reader, entry, config.kind(), config.serves_tcp())?,
        None => config.attach(),
    };
    Ok(Service {
        kind: config.kind(),
        cores,
        attach,
        config,
        line: reader.line(kind_entry.key_start),
    })
}

/// Reads `attach = "udp:9"` or `attach = ["eth:0x88b5", "udp:9"]`.
fn read_attach(
    reader: &TableReader<'_, '_>,
    entry: Entry<'_, '_>,
    kind: &str,
    tcp_app: bool,
) -> Result<Vec<HookPoint>, SpecError> {
    let texts: Vec<&str> = match entry.value.get_ref() {
        DeValue::String(text) => alloc::vec![text.as_ref()],
        DeValue::Array(items) => {
            let mut texts = Vec::with_capacity(items.len());
            for item in items {
                match item.get_ref() {
                    DeValue::String(text) => texts.push(text.as_ref()),
                    _ => return Err(reader.wrong_type(entry, "a hook point or an array of them")),
                }
            }
            texts
        }
        _ => return Err(reader.wrong_type(entry, "a hook point or an array of them")),
    };
    if texts.is_empty() {
        return Err(reader.invalid(
            entry,
            "at least one hook point (omit `attach` for the kind's own)",
            "[]",
        ));
    }
    let mut hooks = Vec::with_capacity(texts.len());
    for text in texts {
        let hook: HookPoint = text
            .parse()
            .map_err(|_| reader.invalid(entry, HOOK_POINT_FORMS, text))?;
        if let HookPoint::Ethertype(ethertype @ (0x0800 | 0x0806)) = hook {
            return Err(reader.error_at(
                entry,
                SpecErrorKind::Conflict(format!(
                    "EtherType 0x{ethertype:04x} belongs to the stack: attach at port:rx or at an ipv4: hook point"
                )),
            ));
        }
        let at_tcp = matches!(hook, HookPoint::Tcp(_));
        if at_tcp != tcp_app {
            let why = if tcp_app {
                format!("{kind} is a TCP app and attaches only at tcp:<port>, not {text}")
            } else {
                format!("{kind} handles packets; {text} takes TCP apps (tcp-echo, http, kv)")
            };
            return Err(reader.error_at(entry, SpecErrorKind::Conflict(why)));
        }
        if hooks.contains(&hook) {
            return Err(reader.duplicate(entry, text, reader.field(entry.key)));
        }
        hooks.push(hook);
    }
    Ok(hooks)
}

/// A kind's configuration error, with the line and field of the key it
/// is about.
fn config_error(reader: &TableReader<'_, '_>, error: &toml::de::Error) -> SpecError {
    let message = error.message().trim_end();
    let named = |prefix: &str| {
        message
            .strip_prefix(prefix)
            .and_then(|rest| rest.split('`').next())
            .map(ToString::to_string)
    };
    if let Some(key) = named("missing field `") {
        return SpecError {
            line: reader.table_line(),
            field: reader.field(&key),
            kind: SpecErrorKind::MissingKey,
        };
    }
    let spanned = error.span().and_then(|span| {
        reader.entries().into_iter().find(|entry| {
            let value = entry.value.span();
            (entry.key_start..entry.key_end).contains(&span.start) || value.contains(&span.start)
        })
    });
    let unknown = named("unknown field `");
    let entry = match (&unknown, spanned) {
        (_, Some(entry)) => Some(entry),
        (Some(key), None) => reader.get(key),
        (None, None) => None,
    };
    let kind = match (&unknown, entry) {
        // A key of the service's own table; one nested deeper (in an
        // array of inline tables) is named by the kind's message.
        (Some(key), Some(entry)) if *key != entry.key => SpecErrorKind::Config(message.to_string()),
        (Some(_), _) => SpecErrorKind::UnknownKey,
        (None, _) => SpecErrorKind::Config(message.to_string()),
    };
    match entry {
        Some(entry) => {
            let mut refused = reader.error_at(entry, kind);
            // Inside a value that spans lines (an array of routes, say),
            // the line of the part refused.
            if let Some(span) = error.span()
                && entry.value.span().contains(&span.start)
            {
                refused.line = reader.line(span.start);
            }
            refused
        }
        None => reader.error_here(kind),
    }
}

/// Checks that the services fit together and with the interfaces: each
/// kind's own check, with every service in view.
pub(super) fn check_services(spec: &Spec) -> Result<(), SpecError> {
    let conflict = |index: usize, why: String| SpecError {
        line: spec.services[index].line,
        field: format!("service[{index}].kind"),
        kind: SpecErrorKind::Conflict(why),
    };
    if spec.interfaces.is_empty() && !spec.services.is_empty() {
        return Err(conflict(
            0,
            "a service needs at least one interface".to_string(),
        ));
    }
    let interfaces: Vec<InterfaceInfo> = spec.interface_infos();
    let summaries: Vec<ServiceSummary<'_>> = spec
        .services
        .iter()
        .map(|service| ServiceSummary {
            kind: service.kind,
            attach: &service.attach,
        })
        .collect();
    for (index, service) in spec.services.iter().enumerate() {
        let summary = SpecSummary {
            interfaces: &interfaces,
            services: &summaries,
            index,
        };
        service
            .config
            .check(&summary)
            .map_err(|why| conflict(index, why))?;
    }
    Ok(())
}
