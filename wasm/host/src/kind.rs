//! `WasmKind`: `kind = "wasm"` in a spec.

use crate::config::WasmConfig;
use crate::fault::Quarantine;
use crate::instance::HookView;
use crate::node::{WasmNode, policy};
use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use dataplane::{Batch, Nanoservice, Outputs, Verdict};
use services::registry::{BuildContext, HookPoint, ServiceKind, SpecSummary};

/// The `wasm` service kind: a module of `wasm/ABI.md` at any packet hook
/// point (`ipv4:forward` unless the spec says `attach`).
#[derive(Debug)]
pub struct WasmKind;

impl ServiceKind for WasmKind {
    const NAME: &'static str = "wasm";
    type Config = WasmConfig;

    fn attach(_config: &WasmConfig) -> Vec<HookPoint> {
        alloc::vec![HookPoint::Ipv4Forward]
    }

    fn check(config: &WasmConfig, _spec: &SpecSummary<'_>) -> Result<(), String> {
        config.loaded().map(|_| ()).map_err(|why| {
            format!(
                "service `{}`: module `{}` refused: {why}",
                config.name, config.module
            )
        })
    }

    fn build(config: &WasmConfig, context: &BuildContext<'_>) -> Box<dyn Nanoservice> {
        let Ok(loaded) = config.loaded() else {
            // The spec's check refuses such a module; a node built without
            // it drops everything it gets, counted.
            return Box::new(Refused);
        };
        let view = HookView {
            ethernet: context.interface.is_some(),
            interface: context.interface.map(|index| index.min(254) as u8),
            subnets: context
                .interfaces
                .iter()
                .map(|interface| interface.address)
                .collect(),
        };
        let quarantine = Quarantine::new(
            config.quarantine_after,
            config.quarantine_window_ms,
            policy(),
        );
        Box::new(WasmNode::new(
            Arc::clone(loaded),
            context.core,
            view,
            config.on_fault,
            quarantine,
        ))
    }
}

/// A Wasm service whose module was refused: drops what it gets.
#[derive(Debug)]
struct Refused;

impl Nanoservice for Refused {
    fn name(&self) -> &'static str {
        "wasm-refused"
    }

    fn outputs(&self) -> &'static [&'static str] {
        &["pass"]
    }

    fn drop_reasons(&self) -> &'static [&'static str] {
        &["module-refused"]
    }

    fn process(&mut self, batch: &mut Batch, out: &mut Outputs<'_>) {
        out.dispatch(batch, |_, _| Verdict::Drop(dataplane::DropCode(0)));
    }
}
