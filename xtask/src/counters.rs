//! The counters dump the appliance prints on serial and warpcore-hosted
//! prints on exit, on SIGUSR1 and into its counters file: one
//! `counter core=C key=value... value=N` line per counter, ended by
//! `counters end`.

use anyhow::{Context, Result, bail};

/// One `counter core=N <kind>=<name> [stat|drop]=<what> value=V` line of the
/// kernel's counters dump.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CounterLine {
    /// Core index.
    pub core: u32,
    /// The key=value pairs between `core=` and `value=`, in order.
    pub labels: Vec<(String, String)>,
    /// The counter's value.
    pub value: u64,
}

/// A parsed counters dump.
#[derive(Clone, Debug, Default)]
pub struct Counters {
    /// Every line, in dump order.
    pub lines: Vec<CounterLine>,
}

impl Counters {
    /// Parses the last complete dump in `text` (a serial log, a hosted
    /// process's output or its counters file): the `counter` lines after the
    /// last `counters begin` (or the start) that precedes the last
    /// `counters end`. Fails when no dump reached `counters end`.
    pub fn parse_dump(text: &str) -> Result<Self> {
        let end = text
            .rfind("counters end")
            .context("counters dump incomplete: no `counters end` line")?;
        let begin = text[..end].rfind("counters begin").unwrap_or(0);
        Self::parse_lines(&text[begin..end])
    }

    /// Parses every `counter` line of `text` (other lines are ignored).
    fn parse_lines(text: &str) -> Result<Self> {
        let mut lines = Vec::new();
        for line in text.lines() {
            let Some(rest) = line.trim().strip_prefix("counter ") else {
                continue;
            };
            let mut core = None;
            let mut value = None;
            let mut labels = Vec::new();
            for word in rest.split_whitespace() {
                let (key, text) = word
                    .split_once('=')
                    .with_context(|| format!("counter line `{line}`: `{word}` is not key=value"))?;
                match key {
                    "core" => core = Some(text.parse()?),
                    "value" => value = Some(text.parse()?),
                    _ => labels.push((key.to_owned(), text.to_owned())),
                }
            }
            let (Some(core), Some(value)) = (core, value) else {
                bail!("counter line `{line}` lacks core= or value=");
            };
            lines.push(CounterLine {
                core,
                labels,
                value,
            });
        }
        Ok(Self { lines })
    }

    /// Sum over `cores` (all when `None`) of the lines whose labels include
    /// every `(key, value)` of `labels`.
    pub fn sum(&self, core: Option<u32>, labels: &[(&str, &str)]) -> u64 {
        self.lines
            .iter()
            .filter(|line| core.is_none_or(|core| line.core == core))
            .filter(|line| {
                labels.iter().all(|(key, value)| {
                    line.labels
                        .iter()
                        .any(|(have_key, have_value)| have_key == key && have_value == value)
                })
            })
            .map(|line| line.value)
            .sum()
    }

    /// The cores the dump has lines of, in order.
    pub fn cores(&self) -> Vec<u32> {
        let mut cores: Vec<u32> = self.lines.iter().map(|line| line.core).collect();
        cores.sort_unstable();
        cores.dedup();
        cores
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_dump_parses_and_sums() {
        let dump = "counters begin cores=2\n\
            counter core=0 executor=rx_packets value=5\n\
            counter core=1 executor=rx_packets value=7\n\
            counter core=0 node=ipv4 drop=bad-checksum value=3\n\
            counter core=1 node=ipv4 drop=bad-checksum value=1\n\
            counter core=1 node=ipv4 stat=received value=9\n\
            counters end\n";
        let counters = Counters::parse_dump(dump).unwrap();
        assert_eq!(counters.lines.len(), 5);
        assert_eq!(counters.sum(None, &[("executor", "rx_packets")]), 12);
        assert_eq!(counters.sum(Some(1), &[("executor", "rx_packets")]), 7);
        assert_eq!(
            counters.sum(None, &[("node", "ipv4"), ("drop", "bad-checksum")]),
            4
        );
        assert_eq!(counters.sum(None, &[("node", "udp")]), 0);
        assert_eq!(counters.cores(), vec![0, 1]);
        assert!(Counters::parse_dump("counter core=x value=1\ncounters end\n").is_err());
        assert!(Counters::parse_dump("counter node=ipv4 value=1\ncounters end\n").is_err());
        // Without its end line a dump is incomplete.
        assert!(Counters::parse_dump("counter core=0 executor=polls value=1\n").is_err());
        // A log with two dumps reads as the last; a hosted dump has no begin line.
        let two = format!("noise\n{dump}{}", dump.replace("value=7", "value=70"));
        let last = Counters::parse_dump(&two).unwrap();
        assert_eq!(last.lines.len(), 5);
        assert_eq!(last.sum(Some(1), &[("executor", "rx_packets")]), 70);
        let hosted = "counter core=0 executor=rx_packets value=4\ncounters end\n";
        assert_eq!(Counters::parse_dump(hosted).unwrap().lines.len(), 1);
    }
}
