//! Pinning benchmark threads to CPUs.

use std::sync::OnceLock;

/// The CPUs the process may run on, read once: a thread spawned by a pinned
/// thread inherits its one-CPU mask, so asking again from there would see
/// only that CPU.
fn process_cpus() -> &'static [core_affinity::CoreId] {
    static CPUS: OnceLock<Vec<core_affinity::CoreId>> = OnceLock::new();
    CPUS.get_or_init(|| core_affinity::get_core_ids().unwrap_or_default())
}

/// Pins the calling thread to CPU `index` (modulo the CPUs there are); returns
/// false when the platform refused, in which case the run is unpinned.
pub fn pin_to_cpu(index: usize) -> bool {
    let cpus = process_cpus();
    if cpus.is_empty() {
        return false;
    }
    core_affinity::set_for_current(cpus[index % cpus.len()])
}
