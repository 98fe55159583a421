//! What the example tests share: loading a module of each language and
//! running frames through it.
#![allow(dead_code)]

use warpcore_wasm_examples_test::host::{Host, LoadError, Outcome, Settings};
use warpcore_wasm_examples_test::modules::{Example, Language, module_bytes};

/// Loads `example` written in `language` with `config`.
pub fn load(
    language: Language,
    example: Example,
    config: &str,
    settings: Settings,
) -> Result<Host, LoadError> {
    Host::load(
        &module_bytes(language, example),
        config.as_bytes(),
        settings,
    )
}

/// Loads it, failing the test with the reason if it does not load.
pub fn loaded(language: Language, example: Example, config: &str, settings: Settings) -> Host {
    load(language, example, config, settings)
        .unwrap_or_else(|error| panic!("{language:?} {example:?} with {config:?}: {error:?}"))
}

/// What one module did with a run of frames: each outcome, the frames as
/// they left, the counters and the map.
#[derive(Debug, PartialEq, Eq)]
pub struct Run {
    pub outcomes: Vec<Outcome>,
    pub frames: Vec<Vec<u8>>,
    pub counters: Vec<(String, i64)>,
    pub map: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Runs `frames` through `example` in `language`, in batches of `settings.slots`.
pub fn run(
    language: Language,
    example: Example,
    config: &str,
    settings: Settings,
    frames: &[Vec<u8>],
) -> Run {
    let mut host = loaded(language, example, config, settings);
    let mut frames = frames.to_vec();
    let outcomes = host
        .process_all(&mut frames)
        .unwrap_or_else(|fault| panic!("{language:?} {example:?}: {fault:?}"));
    Run {
        outcomes,
        frames,
        counters: host.counters().to_vec(),
        map: host
            .map()
            .iter()
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect(),
    }
}

/// Counters as `(name, value)` pairs, for comparisons.
pub fn counters(pairs: &[(&str, i64)]) -> Vec<(String, i64)> {
    pairs
        .iter()
        .map(|(name, value)| (name.to_string(), *value))
        .collect()
}

/// A deterministic stream of pseudo-random numbers (a 64-bit LCG), so a
/// failing case is the same on every run.
pub struct Numbers(u64);

impl Numbers {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn below(&mut self, bound: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % bound
    }
}
