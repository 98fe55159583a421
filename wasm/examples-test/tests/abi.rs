//! Each of the nine modules against the ABI itself: what it imports and
//! exports, its memory, and a buffer the memory cap cannot hold.

mod common;

use common::{load, loaded};
use warpcore_wasm_examples_test::host::Settings;
use warpcore_wasm_examples_test::modules::{Example, Language, module_bytes};
use warpcore_wasm_examples_test::traffic::mix_frames;

const IMPORTS: [&str; 9] = [
    "packet_read",
    "packet_write",
    "map_lookup",
    "map_update",
    "map_delete",
    "clock_ns",
    "log",
    "counter",
    "counter_add",
];

#[test]
fn modules_import_only_warpcore_functions_and_export_the_abi() {
    let engine = wasmi::Engine::default();
    for language in Language::ALL {
        for example in Example::ALL {
            let module = wasmi::Module::new(&engine, module_bytes(language, example))
                .unwrap_or_else(|error| panic!("{language:?} {example:?}: {error}"));
            for import in module.imports() {
                assert_eq!(
                    import.module(),
                    "warpcore",
                    "{language:?} {example:?}: no WASI, no env"
                );
                assert!(
                    IMPORTS.contains(&import.name()),
                    "{language:?} {example:?}: {}",
                    import.name()
                );
            }
            let exports: Vec<&str> = module.exports().map(|export| export.name()).collect();
            for name in [
                "memory",
                "warpcore_abi_version",
                "warpcore_buffer",
                "warpcore_init",
                "warpcore_process_batch",
            ] {
                assert!(
                    exports.contains(&name),
                    "{language:?} {example:?} exports {name}"
                );
            }
        }
    }
}

#[test]
fn modules_start_small_and_grow_only_for_the_buffer() {
    for language in Language::ALL {
        for example in Example::ALL {
            let config = if example == Example::Rewriter {
                "dscp 10"
            } else {
                ""
            };
            let mut host = loaded(language, example, config, Settings::default());
            let pages = host.memory_pages();
            assert!(
                pages <= 3,
                "{language:?} {example:?}: {pages} pages for a 4.5 KiB buffer"
            );
            let mut frames = mix_frames();
            host.process_all(&mut frames).expect("no fault");
            assert_eq!(
                host.memory_pages(),
                pages,
                "{language:?} {example:?}: no growth per batch"
            );
        }
    }
}

#[test]
fn a_buffer_over_the_memory_cap_refuses_the_module() {
    // 256 slots of 9216 bytes: about 37 pages, over a cap of 16.
    let settings = Settings {
        slots: 256,
        window: 9216,
        ..Settings::default()
    };
    let roomy = Settings {
        memory_pages: 64,
        ..settings
    };
    for language in Language::ALL {
        for example in Example::ALL {
            assert!(
                load(language, example, "", settings).is_err(),
                "{language:?} {example:?} under 16 pages"
            );
            let mut host = loaded(language, example, "", roomy);
            let mut frames = mix_frames();
            host.process(&mut frames).expect("a full-size window works");
        }
    }
}
