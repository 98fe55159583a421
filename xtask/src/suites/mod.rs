//! The home-made test suites `cargo xtask test` runs after the cargo steps,
//! their shared runner (names, `--only`, summary lines) and traffic checks (UDP
//! and ICMP in `traffic`, TCP in `tcp_traffic`, the TCP proxy in `proxy_traffic`,
//! idle cores in `idle_checks`).

pub mod appliance;
pub mod binaries;
pub mod echo_load;
pub mod hosted;
pub mod hot_load;
pub mod idle_checks;
pub mod image;
pub mod kernel;
pub mod management_capture;
pub mod management_cores;
pub mod management_logs;
pub mod management_robustness;
pub mod management_traffic;
pub mod proxy_traffic;
pub mod reconcile;
pub mod runner;
pub mod status_page;
pub mod supervision_checks;
pub mod tcp_supervision_checks;
pub mod tcp_traffic;
pub mod traffic;
pub mod vhost_user;
