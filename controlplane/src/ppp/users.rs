//! Subscriber credentials for PAP (RFC 1334 §2) and CHAP (RFC 1994): the [`Credentials`] lookup
//! the server side of a [`Link`](super::Link) verifies against, an in-memory implementation, and
//! a loader for a local users file.
//!
//! # Users file
//!
//! One subscriber per line, fields separated by spaces or tabs:
//!
//! ```text
//! # username   password   [ipv4-address]
//! alice        s3cret
//! bob          hunter2    192.0.2.10
//! ```
//!
//! - Lines whose first non-blank character is `#` are comments; blank lines are ignored.
//! - `username` and `password` are taken byte for byte (UTF-8, no whitespace inside). The
//!   password is the PAP password and the CHAP secret.
//! - The optional third field is the subscriber's fixed IPv4 address, offered by IPCP instead of
//!   one from the pool.
//! - A line with fewer than two or more than three fields, a bad address, or a username that
//!   already appeared is refused with its line number and the field named.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::Path;

/// What the server knows about one subscriber.
#[derive(Clone, PartialEq, Eq)]
pub struct UserEntry {
    /// The PAP password / CHAP secret.
    pub secret: Vec<u8>,
    /// A fixed IPv4 address for IPCP instead of one from the pool.
    pub ipv4: Option<Ipv4Addr>,
}

impl std::fmt::Debug for UserEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserEntry")
            .field("secret", &format_args!("<{} bytes>", self.secret.len()))
            .field("ipv4", &self.ipv4)
            .finish()
    }
}

/// The lookup an authenticator needs: a user's secret (and fixed address), by name.
pub trait Credentials: Send + Sync {
    /// The entry for `user` (the PAP Peer-ID or CHAP Name, as received), if known.
    fn lookup(&self, user: &[u8]) -> Option<UserEntry>;

    /// Whether the secrets are elsewhere (RADIUS): the link then asks for a verification
    /// ([`super::Event::AuthRequest`]) instead of calling [`lookup`](Self::lookup).
    fn external(&self) -> bool {
        false
    }
}

/// Credentials held by an external server (RADIUS, `crate::aaa`): nothing is looked up
/// locally, every authentication is verified by the server.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExternalCredentials;

impl Credentials for ExternalCredentials {
    fn lookup(&self, _user: &[u8]) -> Option<UserEntry> {
        None
    }

    fn external(&self) -> bool {
        true
    }
}

/// Credentials held in memory (built in code or loaded from a users file).
#[derive(Debug, Clone, Default)]
pub struct MemoryCredentials {
    users: HashMap<Vec<u8>, UserEntry>,
}

/// Why a users file was refused.
#[derive(Debug, thiserror::Error)]
pub enum UsersFileError {
    /// The file could not be read.
    #[error("cannot read users file {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A line is wrong.
    #[error("users file line {line}: {field}: {why}")]
    Line {
        /// 1-based line number.
        line: usize,
        /// The field at fault: `username`, `password`, `ipv4-address` or `line`.
        field: &'static str,
        why: String,
    },
}

impl MemoryCredentials {
    /// No users.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces a user.
    pub fn insert(
        &mut self,
        user: impl Into<Vec<u8>>,
        secret: impl Into<Vec<u8>>,
        ipv4: Option<Ipv4Addr>,
    ) {
        self.users.insert(
            user.into(),
            UserEntry {
                secret: secret.into(),
                ipv4,
            },
        );
    }

    /// The number of users.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether there are no users.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// Parses the text of a users file (format in the [module documentation](self)).
    pub fn parse(text: &str) -> Result<Self, UsersFileError> {
        Self::parse_for(text, None)
    }

    /// As [`parse`](Self::parse), also refusing a fixed address that is `gateway` (the LNS's
    /// own IPCP address: RFC 1332 §3.3 gives each end its own address).
    pub fn parse_for(text: &str, gateway: Option<Ipv4Addr>) -> Result<Self, UsersFileError> {
        let mut out = Self::new();
        // Fixed addresses seen so far: the line that gave each (one subscriber an address).
        let mut fixed: HashMap<Ipv4Addr, (usize, String)> = HashMap::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let err = |field, why: &str| UsersFileError::Line {
                line,
                field,
                why: why.to_string(),
            };
            let fields: Vec<&str> = trimmed.split_whitespace().collect();
            let (user, password, addr) = match fields[..] {
                [u] => return Err(err("password", &format!("missing after username {u:?}"))),
                [u, p] => (u, p, None),
                [u, p, a] => (u, p, Some(a)),
                _ => {
                    return Err(err(
                        "line",
                        &format!("{} fields, expected 2 or 3", fields.len()),
                    ))
                }
            };
            let ipv4 =
                match addr {
                    None => None,
                    Some(a) => Some(a.parse::<Ipv4Addr>().map_err(|_| {
                        err("ipv4-address", &format!("{a:?} is not an IPv4 address"))
                    })?),
                };
            if out.users.contains_key(user.as_bytes()) {
                return Err(err("username", &format!("{user:?} appears twice")));
            }
            if let Some(a) = ipv4 {
                if Some(a) == gateway {
                    return Err(err(
                        "ipv4-address",
                        &format!("{a} is the LNS's own address ([ppp.ipcp] local_address)"),
                    ));
                }
                if let Some((l, u)) = fixed.get(&a) {
                    return Err(err(
                        "ipv4-address",
                        &format!("{a} is already {u:?}'s fixed address (line {l})"),
                    ));
                }
                fixed.insert(a, (line, user.to_string()));
            }
            out.insert(user, password, ipv4);
        }
        Ok(out)
    }

    /// Reads and parses a users file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, UsersFileError> {
        Self::load_for(path, None)
    }

    /// Reads and parses a users file, refusing `gateway` as a fixed address
    /// ([`parse_for`](Self::parse_for)).
    pub fn load_for(
        path: impl AsRef<Path>,
        gateway: Option<Ipv4Addr>,
    ) -> Result<Self, UsersFileError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| UsersFileError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse_for(&text, gateway)
    }
}

impl Credentials for MemoryCredentials {
    fn lookup(&self, user: &[u8]) -> Option<UserEntry> {
        self.users.get(user).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two subscribers with one fixed address, or one with the LNS's own: refused, the second
    /// line named with the first.
    #[test]
    fn fixed_addresses_are_one_subscriber_each_and_never_the_gateway() {
        let e = MemoryCredentials::parse("a x 192.0.2.10\n# c\nb y 192.0.2.10\n")
            .expect_err("a shared fixed address");
        assert_eq!(
            e.to_string(),
            "users file line 3: ipv4-address: 192.0.2.10 is already \"a\"'s fixed address (line 1)"
        );
        let gw = Some(Ipv4Addr::new(100, 64, 0, 1));
        let e = MemoryCredentials::parse_for("a x 100.64.0.1\n", gw).expect_err("the gateway");
        assert_eq!(
            e.to_string(),
            "users file line 1: ipv4-address: 100.64.0.1 is the LNS's own address ([ppp.ipcp] local_address)"
        );
        assert!(MemoryCredentials::parse_for("a x 100.64.0.2\nb y\n", gw).is_ok());
    }

    #[test]
    fn parses_users_file() {
        let c = MemoryCredentials::parse(
            "# users\n\n  alice s3cret\nbob\thunter2   192.0.2.10  \n   # indented comment\n",
        )
        .expect("valid file");
        assert_eq!(c.len(), 2);
        assert_eq!(
            c.lookup(b"alice"),
            Some(UserEntry {
                secret: b"s3cret".to_vec(),
                ipv4: None
            })
        );
        assert_eq!(
            c.lookup(b"bob").and_then(|e| e.ipv4),
            Some(Ipv4Addr::new(192, 0, 2, 10))
        );
        assert_eq!(c.lookup(b"carol"), None);
        assert!(!format!("{:?}", c.lookup(b"alice")).contains("s3cret"));
    }

    #[test]
    fn refuses_bad_lines_with_line_and_field() {
        for (text, line, field) in [
            ("alice\n", 1, "password"),
            ("# c\nalice pw 10.0.0.300\n", 2, "ipv4-address"),
            ("a b c d\n", 1, "line"),
            ("a b\n\na c\n", 3, "username"),
        ] {
            match MemoryCredentials::parse(text) {
                Err(UsersFileError::Line {
                    line: l,
                    field: f,
                    why,
                }) => {
                    assert_eq!((l, f), (line, field), "{text:?}: {why}");
                }
                other => panic!("{text:?}: {other:?}"),
            }
        }
        let e = MemoryCredentials::parse("x y z\n").expect_err("bad address");
        assert_eq!(
            e.to_string(),
            "users file line 1: ipv4-address: \"z\" is not an IPv4 address"
        );
    }

    #[test]
    fn load_missing_file() {
        assert!(matches!(
            MemoryCredentials::load("/nonexistent/l2xdp-users"),
            Err(UsersFileError::Io { .. })
        ));
    }
}
