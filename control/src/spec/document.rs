//! The spec's TOML document as the `toml` crate reads it, every key and
//! value with its byte span, and `TableReader`, which reads one table's
//! keys and words errors with the line and the field.

use super::error::{SpecError, SpecErrorKind};
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::net::Ipv4Addr;
use toml::Spanned;
use toml::de::{DeString, DeTable, DeValue};

/// The 1-based line of byte `offset` of `text`.
pub(super) fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    1 + text.as_bytes()[..end]
        .iter()
        .filter(|byte| **byte == b'\n')
        .count()
}

/// How an error message names a value's type.
pub(super) fn type_name(value: &DeValue<'_>) -> &'static str {
    match value {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a datetime",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

/// A key of a table with its value.
#[derive(Clone, Copy)]
pub(super) struct Entry<'t, 'i> {
    /// The key as written.
    pub(super) key: &'t str,
    /// Where the key starts (a byte offset).
    pub(super) key_start: usize,
    /// Where the key ends.
    pub(super) key_end: usize,
    /// The value and where it is.
    pub(super) value: &'t Spanned<DeValue<'i>>,
}

/// A parsed spec document: the top-level tables.
pub(super) struct Document<'i> {
    text: &'i str,
    root: Spanned<DeTable<'i>>,
}

impl<'i> Document<'i> {
    /// Reads `text` as TOML and refuses top-level keys other than the
    /// spec's sections and settings.
    pub(super) fn parse(text: &'i str) -> Result<Self, SpecError> {
        let root = DeTable::parse(text).map_err(|error| {
            let line = error.span().map_or(0, |span| line_of(text, span.start));
            SpecError {
                line,
                field: String::new(),
                kind: SpecErrorKind::Syntax(error.message().trim_end().replace('\n', ", ")),
            }
        })?;
        let mut keys: Vec<(&Spanned<_>, &Spanned<DeValue<'_>>)> = root.get_ref().iter().collect();
        keys.sort_by_key(|(key, _)| key.span().start);
        for (key, value) in keys {
            let name: &str = key.get_ref();
            if !matches!(
                name,
                "interface"
                    | "route"
                    | "service"
                    | "ipv4"
                    | "tcp"
                    | "management"
                    | "supervision"
                    | "idle"
                    | "halt_poll_us"
            ) {
                let field = match value.get_ref() {
                    DeValue::Table(_) => format!("[{name}]"),
                    _ => name.to_string(),
                };
                return Err(SpecError {
                    line: line_of(text, key.span().start),
                    field,
                    kind: SpecErrorKind::UnknownKey,
                });
            }
        }
        Ok(Self { text, root })
    }

    /// The top-level key `name` and its value, if present.
    fn section(&self, name: &str) -> Option<(&Spanned<DeString<'i>>, &Spanned<DeValue<'i>>)> {
        self.root
            .get_ref()
            .iter()
            .find(|(key, _)| key.get_ref().as_ref() == name)
    }

    /// The top-level string `name = "..."`, if present, with the line of
    /// its value.
    pub(super) fn string(&self, name: &str) -> Result<Option<(&str, usize)>, SpecError> {
        let Some((key, value)) = self.section(name) else {
            return Ok(None);
        };
        let line = line_of(self.text, value.span().start);
        match value.get_ref() {
            DeValue::String(text) => Ok(Some((text.as_ref(), line))),
            other => Err(SpecError {
                line: line_of(self.text, key.span().start),
                field: name.to_string(),
                kind: SpecErrorKind::WrongType {
                    expected: "a string",
                    found: type_name(other),
                },
            }),
        }
    }

    /// The top-level integer `name = N`, if present, in `min..=max`, with
    /// the line of its value.
    pub(super) fn integer(
        &self,
        name: &str,
        min: i64,
        max: i64,
        expected: &'static str,
    ) -> Result<Option<(i64, usize)>, SpecError> {
        let Some((key, value)) = self.section(name) else {
            return Ok(None);
        };
        let line = line_of(self.text, value.span().start);
        let DeValue::Integer(integer) = value.get_ref() else {
            return Err(SpecError {
                line: line_of(self.text, key.span().start),
                field: name.to_string(),
                kind: SpecErrorKind::WrongType {
                    expected: "an integer",
                    found: type_name(value.get_ref()),
                },
            });
        };
        let invalid = || SpecError {
            line,
            field: name.to_string(),
            kind: SpecErrorKind::InvalidValue {
                expected,
                got: integer.as_str().to_string(),
            },
        };
        let digits: String = integer.as_str().chars().filter(|c| *c != '_').collect();
        let digits = match integer.radix() {
            10 => digits.as_str(),
            _ => digits.get(2..).unwrap_or_default(),
        };
        let number = i64::from_str_radix(digits, integer.radix()).map_err(|_| invalid())?;
        if !(min..=max).contains(&number) {
            return Err(invalid());
        }
        Ok(Some((number, line)))
    }

    /// The one table `[name]`, if present.
    pub(super) fn table(&self, name: &str) -> Result<Option<&Spanned<DeValue<'i>>>, SpecError> {
        let Some((key, value)) = self.section(name) else {
            return Ok(None);
        };
        match value.get_ref() {
            DeValue::Table(_) => Ok(Some(value)),
            other => Err(SpecError {
                line: line_of(self.text, key.span().start),
                field: name.to_string(),
                kind: SpecErrorKind::WrongType {
                    expected: "a table ([...])",
                    found: match other {
                        DeValue::Array(_) => "an array of tables ([[...]])",
                        other => type_name(other),
                    },
                },
            }),
        }
    }

    /// The tables of section `name` (`[[name]]`), in file order; none when
    /// the section is absent.
    pub(super) fn tables(&self, name: &str) -> Result<Vec<&Spanned<DeValue<'i>>>, SpecError> {
        let Some((key, value)) = self.section(name) else {
            return Ok(Vec::new());
        };
        let wrong = |found: &'static str| SpecError {
            line: line_of(self.text, key.span().start),
            field: name.to_string(),
            kind: SpecErrorKind::WrongType {
                expected: "an array of tables ([[...]])",
                found,
            },
        };
        let DeValue::Array(items) = value.get_ref() else {
            return Err(wrong(match value.get_ref() {
                DeValue::Table(_) => "a table ([...])",
                other => type_name(other),
            }));
        };
        let mut tables = Vec::with_capacity(items.len());
        for item in items {
            match item.get_ref() {
                DeValue::Table(_) => tables.push(item),
                other => return Err(wrong(type_name(other))),
            }
        }
        Ok(tables)
    }
}

/// Reads the keys of one `[[section]]` table.
pub(super) struct TableReader<'t, 'i> {
    text: &'t str,
    table: &'t Spanned<DeValue<'i>>,
    /// The table's path, like `interface[0]`.
    pub(super) path: String,
}

impl<'t, 'i> TableReader<'t, 'i> {
    /// A reader for `table` (a `DeValue::Table`) at `path`.
    pub(super) fn new(text: &'t str, table: &'t Spanned<DeValue<'i>>, path: String) -> Self {
        Self { text, table, path }
    }

    /// The table's entries in file order.
    pub(super) fn entries(&self) -> Vec<Entry<'t, 'i>> {
        let DeValue::Table(table) = self.table.get_ref() else {
            return Vec::new();
        };
        let mut entries: Vec<Entry<'t, 'i>> = table
            .iter()
            .map(|(key, value)| Entry {
                key: key.get_ref(),
                key_start: key.span().start,
                key_end: key.span().end,
                value,
            })
            .collect();
        entries.sort_by_key(|entry| entry.key_start);
        entries
    }

    /// The entry for `key`.
    pub(super) fn get(&self, key: &str) -> Option<Entry<'t, 'i>> {
        self.entries().into_iter().find(|entry| entry.key == key)
    }

    /// The 1-based line of byte `offset`.
    pub(super) fn line(&self, offset: usize) -> usize {
        line_of(self.text, offset)
    }

    /// The line of the table's header.
    pub(super) fn table_line(&self) -> usize {
        self.line(self.table.span().start)
    }

    /// The path of field `key`, like `interface[0].mac`.
    pub(super) fn field(&self, key: &str) -> String {
        format!("{}.{key}", self.path)
    }

    /// An error about the table as a whole, at its header.
    pub(super) fn error_here(&self, kind: SpecErrorKind) -> SpecError {
        SpecError {
            line: self.table_line(),
            field: self.path.clone(),
            kind,
        }
    }

    /// An error about `entry`, at its key.
    pub(super) fn error_at(&self, entry: Entry<'_, '_>, kind: SpecErrorKind) -> SpecError {
        SpecError {
            line: self.line(entry.key_start),
            field: self.field(entry.key),
            kind,
        }
    }

    /// Refuses the first key (in file order) not in `known`.
    pub(super) fn reject_unknown(&self, known: &[&str]) -> Result<(), SpecError> {
        match self
            .entries()
            .into_iter()
            .find(|entry| !known.contains(&entry.key))
        {
            Some(entry) => Err(self.error_at(entry, SpecErrorKind::UnknownKey)),
            None => Ok(()),
        }
    }

    /// The entry for `key`, or a missing-key error at the table's header.
    pub(super) fn required(&self, key: &str) -> Result<Entry<'t, 'i>, SpecError> {
        self.get(key).ok_or_else(|| SpecError {
            line: self.table_line(),
            field: self.field(key),
            kind: SpecErrorKind::MissingKey,
        })
    }

    /// A wrong-type error for `entry`.
    pub(super) fn wrong_type(&self, entry: Entry<'_, '_>, expected: &'static str) -> SpecError {
        self.error_at(
            entry,
            SpecErrorKind::WrongType {
                expected,
                found: type_name(entry.value.get_ref()),
            },
        )
    }

    /// An invalid-value error for `entry`.
    pub(super) fn invalid(
        &self,
        entry: Entry<'_, '_>,
        expected: &'static str,
        got: &str,
    ) -> SpecError {
        self.error_at(
            entry,
            SpecErrorKind::InvalidValue {
                expected,
                got: got.to_string(),
            },
        )
    }

    /// A duplicate error: `entry`'s `value` is already used by `first`.
    pub(super) fn duplicate(&self, entry: Entry<'_, '_>, value: &str, first: String) -> SpecError {
        self.error_at(
            entry,
            SpecErrorKind::Duplicate {
                value: value.to_string(),
                first,
            },
        )
    }

    /// `entry`'s value as a string.
    pub(super) fn string(&self, entry: Entry<'t, 'i>) -> Result<&'t str, SpecError> {
        match entry.value.get_ref() {
            DeValue::String(text) => Ok(text),
            _ => Err(self.wrong_type(entry, "a string")),
        }
    }

    /// `value` (an item of `entry`, or its value) as an integer.
    pub(super) fn integer_value(
        &self,
        entry: Entry<'_, '_>,
        value: &DeValue<'_>,
    ) -> Result<i64, SpecError> {
        let DeValue::Integer(integer) = value else {
            return Err(self.wrong_type(entry, "an integer"));
        };
        let digits: String = integer.as_str().chars().filter(|c| *c != '_').collect();
        let digits = match integer.radix() {
            10 => digits.as_str(),
            _ => digits.get(2..).unwrap_or_default(),
        };
        i64::from_str_radix(digits, integer.radix())
            .map_err(|_| self.invalid(entry, "an integer that fits 64 bits", integer.as_str()))
    }

    /// `entry`'s value as an integer in `min..=max`.
    pub(super) fn integer(
        &self,
        entry: Entry<'_, '_>,
        min: i64,
        max: i64,
        expected: &'static str,
    ) -> Result<i64, SpecError> {
        let value = self.integer_value(entry, entry.value.get_ref())?;
        if !(min..=max).contains(&value) {
            return Err(self.invalid(entry, expected, &value.to_string()));
        }
        Ok(value)
    }

    /// `entry`'s value as an IPv4 address.
    pub(super) fn address(&self, entry: Entry<'t, 'i>) -> Result<Ipv4Addr, SpecError> {
        let text = self.string(entry)?;
        text.parse()
            .map_err(|_| self.invalid(entry, "an IPv4 address like 10.0.0.1", text))
    }

    /// The table's entries except `common`, as a table the service's kind
    /// deserializes its configuration from (spans kept, so that its errors
    /// have lines too).
    pub(super) fn rest(&self, common: &[&str]) -> Spanned<DeValue<'i>> {
        let mut rest = DeTable::new();
        if let DeValue::Table(table) = self.table.get_ref() {
            for (key, value) in table.iter() {
                if !common.contains(&key.get_ref().as_ref()) {
                    rest.insert(key.clone(), value.clone());
                }
            }
        }
        Spanned::new(self.table.span(), DeValue::Table(rest))
    }
}
