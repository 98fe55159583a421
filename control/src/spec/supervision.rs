//! `[supervision]`: how failing services are restarted (backoff start,
//! cap and reset) and the per-batch time budget.

use super::document::TableReader;
use super::error::{SpecError, SpecErrorKind};
use alloc::string::ToString;
use dataplane::SupervisionPolicy;

/// The keys of `[supervision]`, with their ranges.
const KEYS: [(&str, i64, i64, &str); 4] = [
    (
        "initial_backoff_ms",
        1,
        3_600_000,
        "milliseconds before the first restart, from 1 to 3600000",
    ),
    (
        "max_backoff_ms",
        1,
        3_600_000,
        "the longest wait between restarts in milliseconds, from 1 to 3600000",
    ),
    (
        "reset_after_ms",
        1,
        86_400_000,
        "milliseconds of healthy running after which the backoff starts over, from 1 to 86400000",
    ),
    (
        "batch_budget_us",
        1,
        60_000_000,
        "the longest a service may take over one batch, in microseconds, from 1 to 60000000",
    ),
];

/// Reads `[supervision]`; keys it does not set keep their defaults
/// (100 ms doubling to 30 s, reset after 60 s, no budget).
pub(super) fn read_supervision(
    reader: &TableReader<'_, '_>,
) -> Result<SupervisionPolicy, SpecError> {
    let names = KEYS.map(|key| key.0);
    reader.reject_unknown(&names)?;
    let mut policy = SupervisionPolicy::default();
    for (name, least, largest, expected) in KEYS {
        let Some(entry) = reader.get(name) else {
            continue;
        };
        let value = reader.integer(entry, least, largest, expected)? as u32;
        match name {
            "initial_backoff_ms" => policy.initial_backoff_ms = value,
            "max_backoff_ms" => policy.max_backoff_ms = value,
            "reset_after_ms" => policy.reset_after_ms = value,
            _ => policy.batch_budget_us = Some(value),
        }
    }
    if policy.initial_backoff_ms > policy.max_backoff_ms {
        let entry = reader
            .get("initial_backoff_ms")
            .or_else(|| reader.get("max_backoff_ms"));
        if let Some(entry) = entry {
            return Err(reader.error_at(
                entry,
                SpecErrorKind::Conflict("initial_backoff_ms is above max_backoff_ms".to_string()),
            ));
        }
    }
    Ok(policy)
}

#[cfg(test)]
mod tests {
    use crate::Spec;
    use alloc::format;
    use alloc::string::{String, ToString};
    use dataplane::SupervisionPolicy;
    use services::Registry;

    const INTERFACE: &str = "[[interface]]\nname = \"eth0\"\ndriver = \"virtio\"\nmac = \"02:00:00:00:00:01\"\naddress = \"10.0.0.2/24\"\n";

    fn parse(section: &str) -> Result<SupervisionPolicy, String> {
        Spec::parse(&format!("{INTERFACE}{section}"), &Registry::with_builtin())
            .map(|spec| spec.supervision)
            .map_err(|error| error.to_string())
    }

    #[test]
    fn defaults_without_the_section() {
        assert_eq!(parse(""), Ok(SupervisionPolicy::default()));
        let policy = SupervisionPolicy::default();
        assert_eq!(
            (
                policy.initial_backoff_ms,
                policy.max_backoff_ms,
                policy.reset_after_ms,
                policy.batch_budget_us
            ),
            (100, 30_000, 60_000, None)
        );
    }

    #[test]
    fn every_key_read() {
        let policy = parse(
            "[supervision]\ninitial_backoff_ms = 50\nmax_backoff_ms = 800\nreset_after_ms = 5000\nbatch_budget_us = 20_000\n",
        );
        assert_eq!(
            policy,
            Ok(SupervisionPolicy {
                initial_backoff_ms: 50,
                max_backoff_ms: 800,
                reset_after_ms: 5_000,
                batch_budget_us: Some(20_000),
            })
        );
    }

    #[test]
    fn refusals_name_line_and_field() {
        for (section, expected) in [
            (
                "[supervision]\nbackoff = 3\n",
                "line 7: supervision.backoff: unknown key",
            ),
            (
                "[supervision]\ninitial_backoff_ms = 0\n",
                "line 7: supervision.initial_backoff_ms: expected milliseconds before the first restart, from 1 to 3600000, got \"0\"",
            ),
            (
                "[supervision]\nbatch_budget_us = \"1ms\"\n",
                "line 7: supervision.batch_budget_us: expected an integer, got a string",
            ),
            (
                "[supervision]\ninitial_backoff_ms = 500\nmax_backoff_ms = 400\n",
                "line 7: supervision.initial_backoff_ms: initial_backoff_ms is above max_backoff_ms",
            ),
        ] {
            assert_eq!(parse(section).unwrap_err(), expected, "{section}");
        }
    }
}
