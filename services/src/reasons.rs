//! `drop_reasons!`: declares a node's drop-reason enum, its names (what
//! `Nanoservice::drop_reasons` returns) and its `DropCode` conversion.

/// Declares `pub enum $name` with `NAMES` and `From<$name> for DropCode`.
macro_rules! drop_reasons {
    ($(#[$meta:meta])* $name:ident { $($(#[$variant_meta:meta])* $variant:ident = $text:literal,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[repr(u8)]
        pub enum $name {
            $($(#[$variant_meta])* $variant,)*
        }

        impl $name {
            /// Counter names, indexed by the reason's code.
            pub const NAMES: &'static [&'static str] = &[$($text,)*];
        }

        impl From<$name> for dataplane::DropCode {
            fn from(reason: $name) -> Self {
                dataplane::DropCode(reason as u8)
            }
        }
    };
}

pub(crate) use drop_reasons;
