//! `SpecError`: why a spec was refused, naming the line and the field.

use alloc::string::String;

/// What is wrong with a spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpecErrorKind {
    /// The text is not TOML (the parser's message).
    Syntax(String),
    /// A key or table the schema does not have (we refuse to guess).
    UnknownKey,
    /// A required key is absent.
    MissingKey,
    /// A value of the wrong type.
    WrongType {
        /// What the field takes.
        expected: &'static str,
        /// What the file has.
        found: &'static str,
    },
    /// A value of the right type that is not acceptable.
    InvalidValue {
        /// What the field takes, like `a MAC address like 02:00:00:00:00:01`.
        expected: &'static str,
        /// The offending value as written.
        got: String,
    },
    /// A name, address, MAC or port that must be unique appears again.
    Duplicate {
        /// The repeated value.
        value: String,
        /// Where it first appeared, like `interface[0]`.
        first: String,
    },
    /// A route names an interface the spec does not define.
    UnknownInterface(String),
    /// A route's `via` is not on any connected subnet (of its interface).
    UnreachableNextHop(String),
    /// A route with neither `via` nor `interface`.
    RouteWithoutTarget,
    /// More interfaces than a core's pipeline supports.
    TooManyInterfaces {
        /// The limit.
        limit: usize,
    },
    /// A service's needs are not met, like `l3fwd` with one interface
    /// (a sentence saying why).
    Conflict(String),
    /// `kind` names no registered service kind.
    UnknownKind {
        /// The kind as written.
        kind: String,
        /// The registered kinds, comma-separated.
        known: String,
    },
    /// A service kind refused its settings (the kind's message).
    Config(String),
}

/// A refused spec: the line, the field path (`interface[0].mac`) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    /// 1-based line of the offending text (0 when the file as a whole).
    pub line: usize,
    /// Path of the field, like `route[1].via`; empty for syntax errors
    /// outside any key.
    pub field: String,
    /// What is wrong.
    pub kind: SpecErrorKind,
}

impl core::fmt::Display for SpecError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "line {}: ", self.line)?;
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        write!(f, "{}", self.kind)
    }
}

/// What is wrong, without the line and field (an API's `message`).
impl core::fmt::Display for SpecErrorKind {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SpecErrorKind::Syntax(error) => write!(f, "{error}"),
            SpecErrorKind::UnknownKey => f.write_str("unknown key"),
            SpecErrorKind::MissingKey => f.write_str("required key is missing"),
            SpecErrorKind::WrongType { expected, found } => {
                write!(f, "expected {expected}, got {found}")
            }
            SpecErrorKind::InvalidValue { expected, got } => {
                write!(f, "expected {expected}, got {got:?}")
            }
            SpecErrorKind::Duplicate { value, first } => {
                write!(f, "{value:?} is already used by {first}")
            }
            SpecErrorKind::UnknownInterface(name) => {
                write!(f, "no interface is named {name:?}")
            }
            SpecErrorKind::UnreachableNextHop(via) => {
                write!(f, "next hop {via} is not on a connected subnet")
            }
            SpecErrorKind::RouteWithoutTarget => {
                f.write_str("a route needs `via`, `interface` or both")
            }
            SpecErrorKind::TooManyInterfaces { limit } => {
                write!(f, "at most {limit} interfaces are supported")
            }
            SpecErrorKind::Conflict(why) | SpecErrorKind::Config(why) => f.write_str(why),
            SpecErrorKind::UnknownKind { kind, known } => {
                write!(
                    f,
                    "expected a registered service kind ({known}), got {kind:?}"
                )
            }
        }
    }
}
