//! Prints the wasmi fuel (about one unit per Wasm instruction) each of the
//! nine example modules spends per packet on the test mix, at a batch of 32
//! (`cargo xtask wasm-examples` runs it after building them).

use warpcore_wasm_examples_test::host::{Host, Settings};
use warpcore_wasm_examples_test::modules::{Example, Language, module_bytes};
use warpcore_wasm_examples_test::traffic::{ACL_CONFIG, REWRITER_CONFIG, mix_frames, repeated};

fn main() {
    let frames = repeated(&mix_frames(), 3);
    println!(
        "fuel per packet (batch of 32, {}-frame mix, steady state):",
        mix_frames().len()
    );
    println!(
        "{:<18} {:>8} {:>8} {:>16}",
        "module", "rust", "c", "assemblyscript"
    );
    for example in Example::ALL {
        let config = match example {
            Example::Acl => ACL_CONFIG,
            Example::FlowCounter => "",
            Example::Rewriter => REWRITER_CONFIG,
        };
        let mut row = Vec::new();
        for language in Language::ALL {
            let mut host = Host::load(
                &module_bytes(language, example),
                config.as_bytes(),
                Settings::default(),
            )
            .unwrap_or_else(|error| panic!("{language:?} {example:?}: {error:?}"));
            // The first batch warms the flow counter's map; measure the second.
            let mut warm = frames[..32].to_vec();
            host.process(&mut warm).expect("no fault");
            let mut batch = frames[..32].to_vec();
            host.process(&mut batch).expect("no fault");
            row.push(host.fuel_consumed() as f64 / 32.0);
        }
        println!(
            "{:<18} {:>8.1} {:>8.1} {:>16.1}",
            format!("{}.wasm", example.name()),
            row[0],
            row[1],
            row[2]
        );
    }
}
