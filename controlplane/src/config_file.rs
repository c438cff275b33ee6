//! Reading TOML configuration with errors an operator can act on: the file, the line and
//! column, and the dotted path of the field (`tunnel.hello_interval: invalid type...`).
//! Unknown fields are refused by the configuration types themselves
//! (`#[serde(deny_unknown_fields)]`), so a misspelt key is an error, not a silent default.

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
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(path, &text)
}

/// Parses TOML text that came from `path` (used in messages only).
pub fn parse<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T, ConfigError> {
    let de = toml::Deserializer::parse(text).map_err(|e| invalid(path, text, &e, String::new()))?;
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
