//! A small TOML subset parser: comments, `key = value` with strings,
//! integers, booleans and arrays of scalars, `[table]` and
//! `[[array-of-tables]]`. No dotted keys, floats, dates or inline tables.
//!
//! Written for `no_std` + `alloc` (the `toml` crate needs `std`). Every value
//! remembers its line so that the typed layer can name it in errors.

use alloc::string::String;
use alloc::vec::Vec;

/// A parsed value and the line it started on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// `"text"` or `'text'`.
    String(String),
    /// `42`, `-7`, `0x2a`, `1_000`.
    Integer(i64),
    /// `true` or `false`.
    Boolean(bool),
    /// `[1, 2, 3]`: scalars only, possibly spanning lines.
    Array(Vec<Value>),
}

impl Value {
    /// A word for the value's type, used in "expected X, got Y" errors.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::String(_) => "a string",
            Self::Integer(_) => "an integer",
            Self::Boolean(_) => "a boolean",
            Self::Array(_) => "an array",
        }
    }
}

/// `key = value` and the line it is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The key.
    pub key: String,
    /// The value.
    pub value: Value,
    /// 1-based line of the key.
    pub line: usize,
}

/// The entries under one header (or before any header).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Table {
    /// Entries in file order.
    pub entries: Vec<Entry>,
    /// 1-based line of the header; 0 for the root table.
    pub line: usize,
}

impl Table {
    /// The entry called `key`.
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.iter().find(|entry| entry.key == key)
    }
}

/// How a section was introduced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SectionKind {
    /// `[name]`.
    Table,
    /// `[[name]]`.
    ArrayOfTables,
}

/// A `[name]` or `[[name]]` section with its entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// The name between the brackets.
    pub name: String,
    /// Single or double brackets.
    pub kind: SectionKind,
    /// The section's entries.
    pub table: Table,
}

/// A parsed document: the root table and the sections, in file order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Document {
    /// Entries before the first header.
    pub root: Table,
    /// Every section, in order (each `[[x]]` is its own section).
    pub sections: Vec<Section>,
}

/// What is wrong with the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyntaxError {
    /// A key was expected (line start or after `[`).
    ExpectedKey,
    /// `=` was expected after a key.
    ExpectedEquals,
    /// Nothing usable after `=`.
    ExpectedValue,
    /// A string ran to the end of the line.
    UnterminatedString,
    /// A `\x` escape TOML does not know, or a bad `\u`.
    BadEscape,
    /// An integer that does not fit 64 bits or has misplaced `_`.
    BadInteger,
    /// Floats, dates, inline tables and other TOML we do not accept.
    Unsupported,
    /// `a.b = 1` or `[a.b]`.
    DottedKey,
    /// An array that is not closed, or a missing `,`.
    BadArray,
    /// Arrays of arrays.
    NestedArray,
    /// `]` or `]]` missing after a header.
    BadHeader,
    /// Text after a value on the same line.
    TrailingCharacters,
    /// The same key twice in one table.
    DuplicateKey,
    /// `[name]` twice.
    DuplicateTable,
    /// A control character or other byte TOML forbids.
    InvalidCharacter,
}

impl core::fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::ExpectedKey => "expected a key",
            Self::ExpectedEquals => "expected `=` after the key",
            Self::ExpectedValue => "expected a value (string, integer, boolean or array)",
            Self::UnterminatedString => "unterminated string",
            Self::BadEscape => "unknown escape sequence in string",
            Self::BadInteger => "invalid integer",
            Self::Unsupported => {
                "unsupported TOML (floats, dates and inline tables are not accepted)"
            }
            Self::DottedKey => "dotted keys are not supported",
            Self::BadArray => "expected `,` or `]` in array",
            Self::NestedArray => "arrays of arrays are not supported",
            Self::BadHeader => "malformed table header",
            Self::TrailingCharacters => "unexpected characters after the value",
            Self::DuplicateKey => "key defined twice",
            Self::DuplicateTable => "table defined twice",
            Self::InvalidCharacter => "invalid character",
        })
    }
}

/// A syntax error and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line.
    pub line: usize,
    /// What is wrong.
    pub error: SyntaxError,
    /// The key being parsed, if any.
    pub key: Option<String>,
}

/// Parses `text` into a [`Document`].
pub fn parse(text: &str) -> Result<Document, ParseError> {
    Parser {
        bytes: text.as_bytes(),
        position: 0,
        line: 1,
        key: None,
    }
    .document()
}

struct Parser<'a> {
    bytes: &'a [u8],
    position: usize,
    line: usize,
    key: Option<String>,
}

impl Parser<'_> {
    fn error(&self, error: SyntaxError) -> ParseError {
        ParseError {
            line: self.line,
            error,
            key: self.key.clone(),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.position).copied()
    }

    fn peek_at(&self, offset: usize) -> Option<u8> {
        self.bytes.get(self.position + offset).copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let byte = self.peek()?;
        self.position += 1;
        if byte == b'\n' {
            self.line += 1;
        }
        Some(byte)
    }

    /// Skips spaces and tabs.
    fn skip_blank(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.position += 1;
        }
    }

    /// Skips a `#` comment up to (not including) the newline.
    fn skip_comment(&mut self) -> Result<(), ParseError> {
        if self.peek() == Some(b'#') {
            while let Some(byte) = self.peek() {
                if byte == b'\n' {
                    break;
                }
                if byte < 0x20 && byte != b'\t' && byte != b'\r' {
                    return Err(self.error(SyntaxError::InvalidCharacter));
                }
                self.position += 1;
            }
        }
        Ok(())
    }

    /// Requires the rest of the line to be blank or a comment, and consumes
    /// the newline.
    fn end_of_line(&mut self) -> Result<(), ParseError> {
        self.skip_blank();
        self.skip_comment()?;
        match self.peek() {
            None => Ok(()),
            Some(b'\n') => {
                self.bump();
                Ok(())
            }
            Some(b'\r') if self.peek_at(1) == Some(b'\n') => {
                self.position += 1;
                self.bump();
                Ok(())
            }
            Some(_) => Err(self.error(SyntaxError::TrailingCharacters)),
        }
    }

    /// Skips blanks, comments and newlines (inside arrays).
    fn skip_whitespace_and_comments(&mut self) -> Result<(), ParseError> {
        loop {
            self.skip_blank();
            self.skip_comment()?;
            match self.peek() {
                Some(b'\n') => {
                    self.bump();
                }
                Some(b'\r') if self.peek_at(1) == Some(b'\n') => {
                    self.position += 1;
                }
                _ => return Ok(()),
            }
        }
    }

    fn document(mut self) -> Result<Document, ParseError> {
        let mut document = Document::default();
        loop {
            self.key = None;
            self.skip_blank();
            match self.peek() {
                None => return Ok(document),
                Some(b'#' | b'\n' | b'\r') => self.end_of_line()?,
                Some(b'[') => {
                    let section = self.header()?;
                    if section.kind == SectionKind::Table
                        && document
                            .sections
                            .iter()
                            .any(|other| other.name == section.name)
                    {
                        return Err(self.error(SyntaxError::DuplicateTable));
                    }
                    if section.kind == SectionKind::ArrayOfTables
                        && document.sections.iter().any(|other| {
                            other.name == section.name && other.kind == SectionKind::Table
                        })
                    {
                        return Err(self.error(SyntaxError::DuplicateTable));
                    }
                    document.sections.push(section);
                }
                Some(_) => {
                    let table = match document.sections.last_mut() {
                        Some(section) => &mut section.table,
                        None => &mut document.root,
                    };
                    let line = self.line;
                    let (key, value) = self.key_value()?;
                    if table.get(&key).is_some() {
                        return Err(ParseError {
                            line,
                            error: SyntaxError::DuplicateKey,
                            key: Some(key),
                        });
                    }
                    table.entries.push(Entry { key, value, line });
                    self.end_of_line()?;
                }
            }
        }
    }

    fn header(&mut self) -> Result<Section, ParseError> {
        let line = self.line;
        self.bump();
        let kind = if self.peek() == Some(b'[') {
            self.bump();
            SectionKind::ArrayOfTables
        } else {
            SectionKind::Table
        };
        self.skip_blank();
        let name = self.key()?;
        self.skip_blank();
        if self.peek() == Some(b'.') {
            return Err(self.error(SyntaxError::DottedKey));
        }
        let closing: &[u8] = match kind {
            SectionKind::Table => b"]",
            SectionKind::ArrayOfTables => b"]]",
        };
        if !self.bytes[self.position..].starts_with(closing) {
            return Err(self.error(SyntaxError::BadHeader));
        }
        self.position += closing.len();
        self.end_of_line()?;
        Ok(Section {
            name,
            kind,
            table: Table {
                entries: Vec::new(),
                line,
            },
        })
    }

    fn key(&mut self) -> Result<String, ParseError> {
        match self.peek() {
            Some(b'"') => self.basic_string(),
            Some(b'\'') => self.literal_string(),
            _ => {
                let start = self.position;
                while matches!(
                    self.peek(),
                    Some(b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-')
                ) {
                    self.position += 1;
                }
                if start == self.position {
                    return Err(self.error(SyntaxError::ExpectedKey));
                }
                Ok(String::from_utf8_lossy(&self.bytes[start..self.position]).into_owned())
            }
        }
    }

    fn key_value(&mut self) -> Result<(String, Value), ParseError> {
        let key = self.key()?;
        self.key = Some(key.clone());
        self.skip_blank();
        match self.peek() {
            Some(b'=') => {
                self.bump();
            }
            Some(b'.') => return Err(self.error(SyntaxError::DottedKey)),
            _ => return Err(self.error(SyntaxError::ExpectedEquals)),
        }
        self.skip_blank();
        let value = self.value(true)?;
        Ok((key, value))
    }

    fn value(&mut self, arrays_allowed: bool) -> Result<Value, ParseError> {
        match self.peek() {
            Some(b'"') => self.basic_string().map(Value::String),
            Some(b'\'') => self.literal_string().map(Value::String),
            Some(b'[') if arrays_allowed => self.array(),
            Some(b'[') => Err(self.error(SyntaxError::NestedArray)),
            Some(b'{') => Err(self.error(SyntaxError::Unsupported)),
            Some(b't') if self.bytes[self.position..].starts_with(b"true") => {
                self.position += 4;
                self.check_value_end()?;
                Ok(Value::Boolean(true))
            }
            Some(b'f') if self.bytes[self.position..].starts_with(b"false") => {
                self.position += 5;
                self.check_value_end()?;
                Ok(Value::Boolean(false))
            }
            Some(b'+' | b'-' | b'0'..=b'9') => self.integer(),
            Some(b'i' | b'n') => Err(self.error(SyntaxError::Unsupported)),
            _ => Err(self.error(SyntaxError::ExpectedValue)),
        }
    }

    /// A scalar must be followed by a delimiter, not more word characters.
    fn check_value_end(&self) -> Result<(), ParseError> {
        match self.peek() {
            None | Some(b' ' | b'\t' | b'\r' | b'\n' | b'#' | b',' | b']') => Ok(()),
            Some(_) => Err(self.error(SyntaxError::TrailingCharacters)),
        }
    }

    fn integer(&mut self) -> Result<Value, ParseError> {
        let start = self.position;
        while matches!(
            self.peek(),
            Some(b'+' | b'-' | b'_' | b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z' | b'.' | b':')
        ) {
            self.position += 1;
        }
        let text = &self.bytes[start..self.position];
        let is_hex = text.starts_with(b"0x");
        let float_or_date = text
            .iter()
            .any(|byte| matches!(byte, b'.' | b':' | b'e' | b'E'))
            || text[1..].iter().any(|byte| matches!(byte, b'-' | b'+'));
        if float_or_date && !is_hex {
            return Err(self.error(SyntaxError::Unsupported));
        }
        let (negative, unsigned) = match text.first() {
            Some(b'-') => (true, &text[1..]),
            Some(b'+') => (false, &text[1..]),
            _ => (false, text),
        };
        let (radix, digits) = if let Some(hex) = unsigned.strip_prefix(b"0x") {
            if negative || text.first() == Some(&b'+') {
                return Err(self.error(SyntaxError::BadInteger));
            }
            (16, hex)
        } else {
            if unsigned.len() > 1 && unsigned[0] == b'0' {
                return Err(self.error(SyntaxError::BadInteger));
            }
            (10, unsigned)
        };
        // Underscores only between digits.
        if digits.is_empty()
            || digits.first() == Some(&b'_')
            || digits.last() == Some(&b'_')
            || digits.windows(2).any(|pair| pair == b"__")
        {
            return Err(self.error(SyntaxError::BadInteger));
        }
        let mut magnitude: i64 = 0;
        for &byte in digits.iter().filter(|byte| **byte != b'_') {
            let digit = match (byte as char).to_digit(radix) {
                Some(digit) => i64::from(digit),
                None => return Err(self.error(SyntaxError::BadInteger)),
            };
            magnitude = magnitude
                .checked_mul(i64::from(radix))
                .and_then(|value| {
                    if negative {
                        value.checked_sub(digit)
                    } else {
                        value.checked_add(digit)
                    }
                })
                .ok_or_else(|| self.error(SyntaxError::BadInteger))?;
        }
        self.check_value_end()?;
        Ok(Value::Integer(magnitude))
    }

    fn array(&mut self) -> Result<Value, ParseError> {
        self.bump();
        let mut items = Vec::new();
        loop {
            self.skip_whitespace_and_comments()?;
            if self.peek() == Some(b']') {
                self.bump();
                return Ok(Value::Array(items));
            }
            if self.peek().is_none() {
                return Err(self.error(SyntaxError::BadArray));
            }
            items.push(self.value(false)?);
            self.skip_whitespace_and_comments()?;
            match self.peek() {
                Some(b',') => {
                    self.bump();
                }
                Some(b']') => {
                    self.bump();
                    return Ok(Value::Array(items));
                }
                _ => return Err(self.error(SyntaxError::BadArray)),
            }
        }
    }

    fn literal_string(&mut self) -> Result<String, ParseError> {
        self.bump();
        let start = self.position;
        loop {
            match self.peek() {
                None | Some(b'\n') => return Err(self.error(SyntaxError::UnterminatedString)),
                Some(b'\'') => break,
                Some(byte) if byte < 0x20 && byte != b'\t' => {
                    return Err(self.error(SyntaxError::InvalidCharacter));
                }
                Some(_) => self.position += 1,
            }
        }
        let text = String::from_utf8_lossy(&self.bytes[start..self.position]).into_owned();
        self.bump();
        Ok(text)
    }

    fn basic_string(&mut self) -> Result<String, ParseError> {
        self.bump();
        let mut text = Vec::new();
        loop {
            match self.peek() {
                None | Some(b'\n') => return Err(self.error(SyntaxError::UnterminatedString)),
                Some(b'"') => {
                    self.bump();
                    break;
                }
                Some(b'\\') => {
                    self.bump();
                    let escaped = match self.bump() {
                        Some(b'"') => '"',
                        Some(b'\\') => '\\',
                        Some(b'n') => '\n',
                        Some(b't') => '\t',
                        Some(b'r') => '\r',
                        Some(b'b') => '\u{8}',
                        Some(b'f') => '\u{c}',
                        Some(b'u') => self.unicode_escape(4)?,
                        Some(b'U') => self.unicode_escape(8)?,
                        _ => return Err(self.error(SyntaxError::BadEscape)),
                    };
                    let mut buffer = [0u8; 4];
                    text.extend_from_slice(escaped.encode_utf8(&mut buffer).as_bytes());
                }
                Some(byte) if byte < 0x20 && byte != b'\t' => {
                    return Err(self.error(SyntaxError::InvalidCharacter));
                }
                Some(byte) => {
                    text.push(byte);
                    self.position += 1;
                }
            }
        }
        Ok(String::from_utf8_lossy(&text).into_owned())
    }

    fn unicode_escape(&mut self, digits: usize) -> Result<char, ParseError> {
        let hex = self
            .bytes
            .get(self.position..self.position + digits)
            .ok_or_else(|| self.error(SyntaxError::BadEscape))?;
        let mut code = 0u32;
        for &byte in hex {
            let digit = (byte as char)
                .to_digit(16)
                .ok_or_else(|| self.error(SyntaxError::BadEscape))?;
            code = code * 16 + digit;
        }
        self.position += digits;
        char::from_u32(code).ok_or_else(|| self.error(SyntaxError::BadEscape))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec;

    fn error_of(text: &str) -> (usize, SyntaxError) {
        let error = parse(text).unwrap_err();
        (error.line, error.error)
    }

    #[test]
    fn parses_the_subset() {
        let text = "# top comment\n\
                    title = \"warp\\tcore\\u00e9\" # trailing\n\
                    literal = 'C:\\path'\n\
                    \n\
                    [settings]\n\
                    answer = 42\n\
                    negative = -1_000\n\
                    hex = 0xff\n\
                    on = true\n\
                    off = false\n\
                    [[item]]\n\
                    \"quoted key\" = [1,\n  2, # two\n  3,\n]\n\
                    [[item]]\n\
                    names = [\"a\", 'b']\n\
                    empty = []\r\n";
        let document = parse(text).unwrap();
        assert_eq!(
            document.root.get("title").unwrap().value,
            Value::String("warp\tcore\u{e9}".to_string())
        );
        assert_eq!(document.root.get("title").unwrap().line, 2);
        assert_eq!(
            document.root.get("literal").unwrap().value,
            Value::String("C:\\path".to_string())
        );
        assert_eq!(document.sections.len(), 3);
        let settings = &document.sections[0];
        assert_eq!(settings.name, "settings");
        assert_eq!(settings.kind, SectionKind::Table);
        assert_eq!(settings.table.line, 5);
        assert_eq!(
            settings.table.get("negative").unwrap().value,
            Value::Integer(-1000)
        );
        assert_eq!(
            settings.table.get("hex").unwrap().value,
            Value::Integer(255)
        );
        assert_eq!(
            settings.table.get("on").unwrap().value,
            Value::Boolean(true)
        );
        assert_eq!(
            settings.table.get("off").unwrap().value,
            Value::Boolean(false)
        );
        let first = &document.sections[1];
        assert_eq!(first.kind, SectionKind::ArrayOfTables);
        assert_eq!(
            first.table.get("quoted key").unwrap().value,
            Value::Array(vec![
                Value::Integer(1),
                Value::Integer(2),
                Value::Integer(3)
            ])
        );
        let second = &document.sections[2];
        assert_eq!(second.table.line, 16);
        assert_eq!(
            second.table.get("empty").unwrap().value,
            Value::Array(Vec::new())
        );
        assert_eq!(
            parse("x = -9223372036854775808").unwrap().root.entries[0].value,
            Value::Integer(i64::MIN)
        );
    }

    #[test]
    fn rejects_what_it_does_not_support_with_the_line() {
        assert_eq!(error_of("\n= 1"), (2, SyntaxError::ExpectedKey));
        assert_eq!(error_of("a 1"), (1, SyntaxError::ExpectedEquals));
        assert_eq!(error_of("a ="), (1, SyntaxError::ExpectedValue));
        assert_eq!(error_of("a = \"open"), (1, SyntaxError::UnterminatedString));
        assert_eq!(
            error_of("a = 'open\n'"),
            (1, SyntaxError::UnterminatedString)
        );
        assert_eq!(error_of("a = \"\\q\""), (1, SyntaxError::BadEscape));
        assert_eq!(error_of("a = \"\\uZZZZ\""), (1, SyntaxError::BadEscape));
        assert_eq!(
            error_of("a = 99999999999999999999"),
            (1, SyntaxError::BadInteger)
        );
        assert_eq!(error_of("a = 1__0"), (1, SyntaxError::BadInteger));
        assert_eq!(error_of("a = 012"), (1, SyntaxError::BadInteger));
        assert_eq!(error_of("a = 12ab"), (1, SyntaxError::BadInteger));
        assert_eq!(error_of("a = 1.5"), (1, SyntaxError::Unsupported));
        assert_eq!(error_of("a = 1979-05-27"), (1, SyntaxError::Unsupported));
        assert_eq!(error_of("a = inf"), (1, SyntaxError::Unsupported));
        assert_eq!(error_of("a = { b = 1 }"), (1, SyntaxError::Unsupported));
        assert_eq!(error_of("a.b = 1"), (1, SyntaxError::DottedKey));
        assert_eq!(error_of("[a.b]"), (1, SyntaxError::DottedKey));
        assert_eq!(error_of("a = [1, 2"), (1, SyntaxError::BadArray));
        assert_eq!(error_of("a = [1 2]"), (1, SyntaxError::BadArray));
        assert_eq!(error_of("a = [[1]]"), (1, SyntaxError::NestedArray));
        assert_eq!(error_of("[a"), (1, SyntaxError::BadHeader));
        assert_eq!(error_of("[[a]"), (1, SyntaxError::BadHeader));
        assert_eq!(error_of("a = 1 b"), (1, SyntaxError::TrailingCharacters));
        assert_eq!(error_of("a = truely"), (1, SyntaxError::TrailingCharacters));
        assert_eq!(error_of("a = 1\na = 2"), (2, SyntaxError::DuplicateKey));
        assert_eq!(error_of("[a]\n[a]"), (2, SyntaxError::DuplicateTable));
        assert_eq!(error_of("[a]\n[[a]]"), (2, SyntaxError::DuplicateTable));
        assert_eq!(
            error_of("a = \"\u{1}\""),
            (1, SyntaxError::InvalidCharacter)
        );
        let error = parse("\n\nport = [1,\n2,,]").unwrap_err();
        assert_eq!(error.line, 4);
        assert_eq!(error.key.as_deref(), Some("port"));
    }
}
