//! `PipelineError`: why a core's graph could not be built.

use dataplane::ExecutorError;
use services::HookPoint;

/// Why a core's graph could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PipelineError {
    /// A port names an interface index the spec does not have.
    UnknownInterface(usize),
    /// Two ports for the same interface on one core.
    DuplicateInterface(usize),
    /// More services at one kind of hook point than its stage has outputs,
    /// like a ninth UDP port on one core.
    TooManyHooks(HookPoint),
    /// A service has an output that no hook point binds.
    UnboundOutput {
        /// The node's name.
        service: &'static str,
        /// The output.
        output: &'static str,
    },
    /// A service passes nothing on, so the services after it (or the whole
    /// IP stack) would never see a packet.
    Unreachable {
        /// The node that passes nothing on.
        service: &'static str,
    },
    /// A TCP app attached where packets flow, or a packet service at a
    /// `tcp:<port>` hook point.
    WrongShape {
        /// The service's kind.
        service: &'static str,
        /// Where it was attached.
        hook: HookPoint,
    },
    /// Two TCP apps on one port.
    PortTaken {
        /// The second app's kind.
        service: &'static str,
        /// The port.
        port: u16,
    },
    /// The executor refused the graph (a bug here).
    Executor(ExecutorError),
}

impl core::fmt::Display for PipelineError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::UnknownInterface(index) => write!(f, "the spec has no interface {index}"),
            Self::WrongShape { service, hook } => match hook {
                HookPoint::Tcp(_) => write!(
                    f,
                    "service `{service}` handles packets and cannot attach at {hook} \
                     (tcp:<port> takes TCP apps: http, kv, tcp-echo)"
                ),
                _ => write!(
                    f,
                    "service `{service}` is a TCP app and attaches only at tcp:<port>, not {hook}"
                ),
            },
            Self::PortTaken { service, port } => {
                write!(
                    f,
                    "service `{service}`: TCP port {port} already has an app on this core"
                )
            }
            Self::DuplicateInterface(index) => {
                write!(f, "interface {index} has two ports on this core")
            }
            Self::TooManyHooks(hook) => {
                write!(f, "no room for another hook point like {hook} on one core")
            }
            Self::UnboundOutput { service, output } => write!(
                f,
                "service `{service}` has an output `{output}` that no hook point binds \
                 (use pass, out, errors or if<n>)"
            ),
            Self::Unreachable { service } => write!(
                f,
                "service `{service}` has no `pass` output, so what follows it would never see a packet"
            ),
            Self::Executor(error) => write!(f, "executor: {error}"),
        }
    }
}

impl From<ExecutorError> for PipelineError {
    fn from(error: ExecutorError) -> Self {
        Self::Executor(error)
    }
}
