//! The service registry: service kinds bound to factories by name, the hook
//! points they attach to, and the kinds built in.

mod builtin;
mod hook;
mod kind;
mod links;
mod table;

pub use builtin::{
    L2fwdConfig, L2fwdKind, L3fwdConfig, L3fwdKind, UdpEchoConfig, UdpEchoKind, UdpPort,
};
pub use hook::{HOOK_POINT_FORMS, HookPoint, UnknownHookPoint};
pub use kind::{
    BuildContext, Built, InterfaceInfo, ServiceConfig, ServiceKind, ServiceSummary, SpecSummary,
    TcpServiceKind,
};
pub use links::{CoreLinks, PlatformListener};
pub use table::{Registry, RegistryError};
