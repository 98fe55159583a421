//! The one runner behind the hosted, kernel and appliance suites: named
//! cases selected by `cargo xtask test --only`, run one after another, each
//! reported, and one `<suite>: N passed, M failed` line at the end.

use anyhow::{Result, bail};

/// Which steps and cases to run: every one, or those whose name
/// (`fmt`, `hosted/echo-tap`, `appliance/router`, ...) one of the
/// patterns selects.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    patterns: Vec<String>,
}

impl Filter {
    /// A filter over `patterns`; none selects everything. A pattern with
    /// `*` or `?` is a glob over the whole name, else a substring of it.
    pub fn new(patterns: Vec<String>) -> Self {
        Self { patterns }
    }

    /// Whether `name` is selected.
    pub fn selects(&self, name: &str) -> bool {
        self.patterns.is_empty()
            || self.patterns.iter().any(|pattern| {
                if pattern.contains(['*', '?']) {
                    glob_matches(pattern.as_bytes(), name.as_bytes())
                } else {
                    name.contains(pattern.as_str())
                }
            })
    }
}

/// Whether `text` matches `pattern` as a whole, where `*` is any run of
/// characters (`/` included) and `?` any one.
fn glob_matches(pattern: &[u8], text: &[u8]) -> bool {
    match (pattern.split_first(), text.split_first()) {
        (None, None) => true,
        (Some((b'*', rest)), _) => {
            glob_matches(rest, text) || (!text.is_empty() && glob_matches(pattern, &text[1..]))
        }
        (Some((b'?', rest)), Some((_, text_rest))) => glob_matches(rest, text_rest),
        (Some((expected, rest)), Some((got, text_rest))) => {
            expected == got && glob_matches(rest, text_rest)
        }
        _ => false,
    }
}

/// One case of a suite: a short name for `--only` and `--list`, what it
/// checks, and what runs it.
pub struct Case<T> {
    /// The name after `<suite>/`, lowercase words joined by `-`.
    pub name: String,
    /// What the case checks, printed when it runs.
    pub description: String,
    /// What the suite runs for this case.
    pub body: T,
}

impl<T> Case<T> {
    /// A case named `name` that checks `description`.
    pub fn new(name: impl Into<String>, description: impl Into<String>, body: T) -> Self {
        Self {
            name: name.into(),
            description: description.into(),
            body,
        }
    }
}

/// The full names (`<suite>/<name>`) of `cases`.
pub fn names<T>(suite: &str, cases: &[Case<T>]) -> Vec<String> {
    cases
        .iter()
        .map(|case| format!("{suite}/{}", case.name))
        .collect()
}

/// Runs the cases of `suite` that `filter` selects: nothing at all when it
/// selects none; else `prepare` once (root checks, builds), then every
/// selected case through `run_case`, then the summary line. Fails naming
/// the cases that failed.
pub fn run<T, Prepared>(
    suite: &str,
    cases: Vec<Case<T>>,
    filter: &Filter,
    prepare: impl FnOnce() -> Result<Prepared>,
    mut run_case: impl FnMut(&Prepared, &T) -> Result<()>,
) -> Result<()> {
    let selected: Vec<Case<T>> = cases
        .into_iter()
        .filter(|case| filter.selects(&format!("{suite}/{}", case.name)))
        .collect();
    if selected.is_empty() {
        return Ok(());
    }
    let prepared = prepare()?;
    let mut failed = Vec::new();
    for case in &selected {
        let name = format!("{suite}/{}", case.name);
        eprintln!("xtask: [{name}] {} ...", case.description);
        let started = std::time::Instant::now();
        match run_case(&prepared, &case.body) {
            Ok(()) => eprintln!(
                "xtask: [{name}] ok ({:.1} s)",
                started.elapsed().as_secs_f64()
            ),
            Err(error) => {
                eprintln!("xtask: [{name}] FAILED: {error:#}");
                failed.push(name);
            }
        }
    }
    println!(
        "{suite}: {} passed, {} failed",
        selected.len() - failed.len(),
        failed.len()
    );
    if !failed.is_empty() {
        bail!("{suite} failed: {}", failed.join(", "));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_take_substrings_and_globs() {
        let everything = Filter::default();
        assert!(everything.selects("fmt") && everything.selects("kernel/boot-pc-smp2"));
        let router = Filter::new(vec!["appliance/router".into()]);
        assert!(router.selects("appliance/router"));
        assert!(!router.selects("hosted/router-af-packet"));
        assert!(!router.selects("fmt"));
        let suite = Filter::new(vec!["appliance/".into()]);
        assert!(suite.selects("appliance/echo") && !suite.selects("hosted/echo-tap"));
        let glob = Filter::new(vec!["*/echo*".into(), "fmt".into()]);
        assert!(glob.selects("hosted/echo-tap") && glob.selects("appliance/echo"));
        assert!(glob.selects("fmt") && !glob.selects("clippy"));
        assert!(!glob.selects("appliance/router"));
        let anchored = Filter::new(vec!["kernel/boot-q35-smp?".into()]);
        assert!(anchored.selects("kernel/boot-q35-smp4"));
        assert!(!anchored.selects("kernel/boot-q35-smp4-extra"));
    }

    #[test]
    fn the_runner_counts_skips_unselected_and_fails_on_failure() {
        let cases = || {
            vec![
                Case::new("good", "passes", true),
                Case::new("bad", "fails", false),
            ]
        };
        let check = |_: &(), passes: &bool| {
            if *passes { Ok(()) } else { bail!("no") }
        };
        assert_eq!(names("demo", &cases()), ["demo/good", "demo/bad"]);
        assert!(run("demo", cases(), &Filter::default(), || Ok(()), check).is_err());
        let good = Filter::new(vec!["demo/good".into()]);
        assert!(run("demo", cases(), &good, || Ok(()), check).is_ok());
        let none = Filter::new(vec!["other".into()]);
        let mut prepared = false;
        run(
            "demo",
            cases(),
            &none,
            || {
                prepared = true;
                Ok(())
            },
            check,
        )
        .unwrap();
        assert!(!prepared, "nothing selected, nothing prepared");
    }
}
