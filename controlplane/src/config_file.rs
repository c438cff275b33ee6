//! Reading TOML configuration with errors an operator can act on: the file, the line and
//! column, and the dotted path of the field (`tunnel.hello_interval: invalid type...`).
//! Unknown fields are refused by the configuration types themselves
//! (`#[serde(deny_unknown_fields)]`), so a misspelt key is an error, not a silent default.
//!
//! One way to a line number for every error, `path:line:column: field: message`
//! ([`ConfigError::Invalid`]):
//! - syntax and type errors: the span toml reports; a duplicate key (which toml reports as
//!   a bare "duplicate key") gets its dotted path and the line where it was first set;
//! - values that parse but cannot work (a port of 0, a third DNS server...): the checks return
//!   a [`Problem`] naming the field's dotted path, and [`Problem::at`] finds the field in the
//!   text ([`locate`], over toml's spanned document) — or the table it would be in, saying
//!   the value is the default, when the file does not set it.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

/// Why a configuration file was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML, or a field is missing, unknown or of the wrong type.
    #[error("{path}:{line}:{column}: {field}{message}")]
    Invalid {
        path: PathBuf,
        line: usize,
        column: usize,
        /// The dotted path of the offending field followed by ": ", or empty.
        field: String,
        message: String,
    },
    /// The file parses but a value is not acceptable (an empty pool, a port of 0...).
    #[error("{path}: {field}: {message}")]
    Value {
        path: PathBuf,
        field: String,
        message: String,
    },
}

impl ConfigError {
    /// A semantic error in a field of `path`.
    pub fn value(path: &Path, field: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError::Value {
            path: path.to_path_buf(),
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Reads and parses a TOML file.
pub fn load<T: DeserializeOwned>(path: &Path) -> Result<T, ConfigError> {
    let text = read(path)?;
    parse(path, &text)
}

/// Reads a configuration file as text.
pub fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Parses TOML text that came from `path` (used in messages only).
pub fn parse<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T, ConfigError> {
    let de = toml::Deserializer::parse(text).map_err(|e| syntax(path, text, &e))?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        let field = if field == "." || field.is_empty() {
            String::new()
        } else {
            format!("{field}: ")
        };
        invalid(path, text, e.inner(), field)
    })
}

/// A value that parsed but is not acceptable: the dotted path of the field (`ppp.ipcp.dns[2]`,
/// `pseudowire[1].interface`) and what is wrong with it and what is allowed. [`Problem::at`]
/// turns it into a [`ConfigError`] with the line and column of the field in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The dotted path of the field to blame.
    pub field: String,
    /// What is wrong and what is allowed.
    pub message: String,
}

impl Problem {
    /// A problem with `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The error for `path`, whose text is `text`: the line and column are those of the field
    /// where the file sets it; of the nearest enclosing table it sets otherwise (the message
    /// then says the value is the default), or 1:1 when the file sets none of it.
    pub fn at(self, path: &Path, text: &str) -> ConfigError {
        let (line, column, set) = locate(text, &self.field);
        let mut message = self.message;
        if !set {
            message.push_str(" (not set in the file: this is the default)");
        }
        ConfigError::Invalid {
            path: path.to_path_buf(),
            line,
            column,
            field: format!("{}: ", self.field),
            message,
        }
    }
}

/// Where `field` (a dotted path with `[n]` indices) is in `text`: 1-based line and column, and
/// whether the file sets the field itself (rather than only an enclosing table).
pub fn locate(text: &str, field: &str) -> (usize, usize, bool) {
    // Recoverable: a file with a duplicate key still locates the key's first occurrence.
    let (doc, _) = toml::de::DeTable::parse_recoverable(text);
    let mut found: Option<usize> = None;
    let mut table = Some(doc.get_ref());
    let mut array: Option<&toml::de::DeArray<'_>> = None;
    let mut complete = true;
    for segment in path_segments(field) {
        let next = match segment {
            Segment::Key(k) => table.and_then(|t| t.get_key_value(k)).map(|(key, value)| {
                // A key's own line: `field = value`, or its table header.
                (key.span().start, value)
            }),
            Segment::Index(i) => array
                .and_then(|a| {
                    let items: &[toml::Spanned<toml::de::DeValue<'_>>] =
                        std::borrow::Borrow::borrow(a);
                    items.get(i)
                })
                .map(|value| (value.span().start, value)),
        };
        let Some((at, value)) = next else {
            complete = false;
            break;
        };
        found = Some(at);
        table = value.get_ref().as_table();
        array = value.get_ref().as_array();
    }
    match found {
        Some(at) => {
            let (line, column) = line_col(text, at);
            (line, column, complete)
        }
        None => (1, 1, false),
    }
}

enum Segment<'a> {
    Key(&'a str),
    Index(usize),
}

/// `a.b[2].c` → `a`, `b`, 2, `c`.
fn path_segments(field: &str) -> Vec<Segment<'_>> {
    let mut out = Vec::new();
    for part in field.split('.') {
        let (key, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            out.push(Segment::Key(key));
        }
        while let Some(end) = rest.find(']') {
            if let Ok(i) = rest[1..end].parse() {
                out.push(Segment::Index(i));
            }
            rest = &rest[end + 1..];
        }
    }
    out
}

/// A syntax error; a duplicate key (which toml reports without naming it) gets its dotted
/// path and the line where the key was first given.
fn syntax(path: &Path, text: &str, e: &toml::de::Error) -> ConfigError {
    let mut error = invalid(path, text, e, String::new());
    if e.message().trim().starts_with("duplicate key") {
        if let (Some(span), ConfigError::Invalid { field, message, .. }) = (e.span(), &mut error) {
            if let Some((dotted, header, key)) = duplicate_key(text, span.clone()) {
                let here = line_col(text, span.start).0;
                let first = if header {
                    first_definition(text, &dotted)
                } else {
                    first_in_table(text, here, &key)
                };
                *message = if header {
                    format!(
                        "table {dotted} is defined twice (first at line {first}); \
                         a table may be defined once: merge the two"
                    )
                } else {
                    format!(
                        "duplicate key (first set at line {first}); a key may be given once \
                         per table: remove one"
                    )
                };
                *field = format!("{dotted}: ");
            }
        }
    }
    error
}

/// The first line that defines table `dotted`: its `[dotted]` header, a `[dotted.sub]` header,
/// or a dotted key `dotted.key = ...` (quotes and spaces ignored).
fn first_definition(text: &str, dotted: &str) -> usize {
    text.lines()
        .map(|l| l.trim().replace([' ', '"', '\''], ""))
        .position(|l| {
            [
                format!("[{dotted}]"),
                format!("[{dotted}."),
                format!("{dotted}."),
                format!("{dotted}="),
            ]
            .iter()
            .any(|p| l.starts_with(p.as_str()))
        })
        .map_or(1, |i| i + 1)
}

/// The first line, in the table that line `here` (1-based) belongs to, that sets `key`.
fn first_in_table(text: &str, here: usize, key: &str) -> usize {
    let lines: Vec<&str> = text.lines().collect();
    let here = here.min(lines.len());
    let start = (0..here.saturating_sub(1))
        .rev()
        .find(|&i| lines[i].trim_start().starts_with('['))
        .map_or(0, |i| i + 1);
    (start..here)
        .find(|&i| {
            lines[i]
                .split('=')
                .next()
                .map(|k| k.trim().replace([' ', '"', '\''], ""))
                .as_deref()
                == Some(key)
                && lines[i].contains('=')
        })
        .map_or(here, |i| i + 1)
}

/// The dotted path of the key at `span`, whether it is in a table header, and the key as
/// written on its line, from the text: the key itself and the `[table]` header above it.
fn duplicate_key(text: &str, span: std::ops::Range<usize>) -> Option<(String, bool, String)> {
    let key = text.get(span.clone())?.trim().trim_matches('"').to_string();
    if key.is_empty() {
        return None;
    }
    let line_start = text[..span.start].rfind('\n').map_or(0, |i| i + 1);
    let line = text[line_start..].lines().next().unwrap_or("");
    if line.trim_start().starts_with('[') {
        let header = line.trim().trim_start_matches('[').split(']').next()?;
        let header = header.trim().replace([' ', '"', '\''], "");
        return Some((header.clone(), true, header));
    }
    let table = text[..line_start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .and_then(|l| l.trim_start_matches('[').split(']').next())
        .map(|h| h.trim().replace([' ', '"', '\''], ""));
    let prefix = line
        .split('=')
        .next()
        .unwrap_or("")
        .trim()
        .replace([' ', '"', '\''], "");
    let key = if prefix.is_empty() { key } else { prefix };
    Some(match table {
        Some(t) if !t.is_empty() => (format!("{t}.{key}"), false, key),
        _ => (key.clone(), false, key),
    })
}

fn invalid(path: &Path, text: &str, e: &toml::de::Error, field: String) -> ConfigError {
    let (line, column) = e.span().map(|s| line_col(text, s.start)).unwrap_or((1, 1));
    ConfigError::Invalid {
        path: path.to_path_buf(),
        line,
        column,
        field,
        message: e.message().trim().to_string(),
    }
}

/// 1-based line and column of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rfind('\n')
        .map_or(before.len(), |nl| before.len() - nl - 1)
        + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Tunnel {
        hello_interval: u32,
        #[serde(default)]
        secret: Option<String>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Config {
        name: String,
        tunnel: Tunnel,
    }

    fn p(text: &str) -> Result<Config, ConfigError> {
        parse(Path::new("l2xdp.toml"), text)
    }

    #[test]
    fn good_config_parses() {
        let c = p("name = \"lns1\"\n[tunnel]\nhello_interval = 60\n").expect("valid");
        assert_eq!(c.tunnel.hello_interval, 60);
    }

    #[test]
    fn wrong_type_names_the_line_and_field() {
        let e = p("name = \"lns1\"\n[tunnel]\nhello_interval = \"sixty\"\n")
            .expect_err("invalid")
            .to_string();
        assert!(e.starts_with("l2xdp.toml:3:"), "{e}");
        assert!(e.contains("tunnel.hello_interval: "), "{e}");
    }

    #[test]
    fn unknown_field_is_refused_with_its_line() {
        let e = p("name = \"lns1\"\n[tunnel]\nhello_interval = 60\nhelo = 1\n")
            .expect_err("invalid")
            .to_string();
        assert!(e.starts_with("l2xdp.toml:4:"), "{e}");
        assert!(e.contains("helo"), "{e}");
    }

    #[test]
    fn syntax_error_has_a_line() {
        let e = p("name = \"lns1\"\n[tunnel\n")
            .expect_err("invalid")
            .to_string();
        assert!(e.starts_with("l2xdp.toml:2:"), "{e}");
    }

    #[test]
    fn missing_field_is_named() {
        let e = p("name = \"lns1\"\n[tunnel]\n")
            .expect_err("invalid")
            .to_string();
        assert!(e.contains("hello_interval"), "{e}");
    }
}
