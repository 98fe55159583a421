//! `drop_reasons!`, `outputs!` and `events!`: declare a node's drop
//! reasons, outputs and events as enums with their counter names, so that a service says
//! `Verdict::drop(FilterDrop::Blocked)` and `Verdict::emit(FilterOutput::Pass)`
//! instead of bare numbers.

/// Declares `pub enum $name` of drop reasons with `NAMES` (what
/// `Nanoservice::drop_reasons` returns, indexed by the reason's code) and
/// `From<$name> for DropCode`.
///
/// ```
/// dataplane::drop_reasons! {
///     /// Why the filter drops a datagram.
///     FilterDrop {
///         /// Sent to a blocked port.
///         Blocked = "blocked",
///     }
/// }
/// assert_eq!(FilterDrop::NAMES, &["blocked"]);
/// assert_eq!(dataplane::DropCode::from(FilterDrop::Blocked).0, 0);
/// ```
#[macro_export]
macro_rules! drop_reasons {
    ($(#[$meta:meta])* $name:ident { $($(#[$variant_meta:meta])* $variant:ident = $text:literal,)* }) => {
        $crate::__named_enum! {
            $(#[$meta])* $name, "Counter names, indexed by the reason's code."
            { $($(#[$variant_meta])* $variant = $text,)* }
        }

        impl From<$name> for $crate::DropCode {
            fn from(reason: $name) -> Self {
                $crate::DropCode(reason as u8)
            }
        }
    };
}

/// Declares `pub enum $name` of a node's outputs with `NAMES` (what
/// `Nanoservice::outputs` returns, indexed by the output's number) and
/// `From<$name> for usize`, for `Outputs::emit` and `Verdict::emit`.
///
/// ```
/// dataplane::outputs! {
///     /// Where the filter sends a datagram.
///     FilterOutput {
///         /// On to the next service at the hook point.
///         Pass = "pass",
///     }
/// }
/// assert_eq!(FilterOutput::NAMES, &["pass"]);
/// assert_eq!(usize::from(FilterOutput::Pass), 0);
/// ```
#[macro_export]
macro_rules! outputs {
    ($(#[$meta:meta])* $name:ident { $($(#[$variant_meta:meta])* $variant:ident = $text:literal,)* }) => {
        $crate::__named_enum! {
            $(#[$meta])* $name, "Output names, indexed by the output's number."
            { $($(#[$variant_meta])* $variant = $text,)* }
        }

        impl From<$name> for usize {
            fn from(output: $name) -> Self {
                output as usize
            }
        }
    };
}

/// Declares `pub enum $name` of a node's events (counters that are not
/// drops) with `NAMES` (what `Nanoservice::events` returns) and
/// `From<$name> for usize`, for `Outputs::count`.
///
/// ```
/// dataplane::events! {
///     /// What the stack counts.
///     StackEvent {
///         /// A connection was accepted.
///         Accepted = "accepted",
///     }
/// }
/// assert_eq!(StackEvent::NAMES, &["accepted"]);
/// assert_eq!(usize::from(StackEvent::Accepted), 0);
/// ```
#[macro_export]
macro_rules! events {
    ($(#[$meta:meta])* $name:ident { $($(#[$variant_meta:meta])* $variant:ident = $text:literal,)* }) => {
        $crate::__named_enum! {
            $(#[$meta])* $name, "Event names, indexed by the event's number."
            { $($(#[$variant_meta])* $variant = $text,)* }
        }

        impl From<$name> for usize {
            fn from(event: $name) -> Self {
                event as usize
            }
        }
    };
}

/// The enum the macros above declare: variants numbered from 0 and their
/// names in `NAMES`.
#[doc(hidden)]
#[macro_export]
macro_rules! __named_enum {
    ($(#[$meta:meta])* $name:ident, $names_doc:literal { $($(#[$variant_meta:meta])* $variant:ident = $text:literal,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[repr(u8)]
        pub enum $name {
            $($(#[$variant_meta])* $variant,)*
        }

        impl $name {
            #[doc = $names_doc]
            pub const NAMES: &'static [&'static str] = &[$($text,)*];
        }
    };
}
