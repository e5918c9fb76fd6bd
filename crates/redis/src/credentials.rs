//! Which user and password each target gets.
//!
//! Sources, in the order [`CredentialResolver::resolve`] tries them:
//! 1. the user and password written in the target's URI
//!    (`redis://user:pass@host:6379`);
//! 2. the `--redis.password-file` entry for exactly that target (matched by
//!    its normalised key, so a password is only ever sent to its own
//!    target);
//! 3. for `--redis.addr` only: `--redis.user`/`REDIS_USER` and
//!    `--redis.password`/`REDIS_PASSWORD` (redis_exporter also sends them to
//!    `/scrape` targets; oxmon-redis does not);
//! 4. none.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::address::{Address, AddressError};

/// Credentials for one target.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    /// ACL user.
    pub user: Option<String>,
    /// Password.
    pub password: Option<String>,
}

impl Credentials {
    /// The credentials written in the address, if it has any.
    pub fn from_uri(addr: &Address) -> Option<Credentials> {
        (addr.user.is_some() || addr.password.is_some()).then(|| Credentials {
            user: addr.user.clone(),
            password: addr.password.clone(),
        })
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Credentials {{ user: {:?}, password: {} }}",
            self.user,
            if self.password.is_some() {
                "<redacted>"
            } else {
                "none"
            }
        )
    }
}

/// A password file that cannot be used. Messages name the file (and the
/// line of a JSON error) and never contain a password.
#[derive(Debug, thiserror::Error)]
pub enum PasswordFileError {
    /// The file cannot be read.
    #[error("reading password file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The text is not a JSON object of strings.
    #[error("password file {}: line {line} column {column}: expected a JSON object of \"uri\": \"password\" strings", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// Line of the error.
        line: usize,
        /// Column of the error.
        column: usize,
    },
    /// A key is not a target address.
    #[error("password file {}: {source}", path.display())]
    Address {
        /// The file.
        path: PathBuf,
        /// The bad key (credentials redacted).
        source: AddressError,
    },
}

/// The password file: a JSON object mapping target URIs to passwords, as
/// redis_exporter's `--redis.password-file`. A URI key may carry a user
/// (`redis://alice@host:6379`), which is used with the password.
#[derive(Default)]
pub struct PasswordMap {
    entries: HashMap<String, Credentials>,
}

impl PasswordMap {
    /// Loads and validates the file.
    pub fn load(path: &Path) -> Result<PasswordMap, PasswordFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| PasswordFileError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses the JSON text of the file at `path` (named in errors).
    pub fn parse(text: &str, path: &Path) -> Result<PasswordMap, PasswordFileError> {
        let raw: HashMap<String, String> =
            serde_json::from_str(text).map_err(|e| PasswordFileError::Json {
                path: path.to_path_buf(),
                line: e.line(),
                column: e.column(),
            })?;
        let mut entries = HashMap::with_capacity(raw.len());
        for (uri, password) in raw {
            let addr = Address::parse(&uri).map_err(|source| PasswordFileError::Address {
                path: path.to_path_buf(),
                source,
            })?;
            entries.insert(
                addr.key(),
                Credentials {
                    user: addr.user,
                    password: Some(password),
                },
            );
        }
        Ok(PasswordMap { entries })
    }

    /// The credentials stored for this exact target (by its key).
    fn get(&self, addr: &Address) -> Option<&Credentials> {
        self.entries.get(&addr.key())
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

/// The one place that decides the credentials of a target, for
/// `/metrics` and `/scrape` alike (see the module doc for the order).
#[derive(Default)]
pub struct CredentialResolver {
    passwords: PasswordMap,
    /// Key of `--redis.addr` (none when it is empty).
    main_key: Option<String>,
    /// `--redis.user` and `--redis.password`, for `--redis.addr` only.
    main: Credentials,
}

impl CredentialResolver {
    /// A resolver for the password file and `--redis.addr`'s own user and
    /// password; empty strings count as unset.
    pub fn new(
        passwords: PasswordMap,
        main: Option<&Address>,
        user: Option<String>,
        password: Option<String>,
    ) -> Self {
        CredentialResolver {
            passwords,
            main_key: main.map(Address::key),
            main: Credentials {
                user: user.filter(|u| !u.is_empty()),
                password: password.filter(|p| !p.is_empty()),
            },
        }
    }

    /// The credentials to send to `addr`.
    pub fn resolve(&self, addr: &Address) -> Credentials {
        if let Some(c) = Credentials::from_uri(addr) {
            return c;
        }
        if let Some(c) = self.passwords.get(addr) {
            return c.clone();
        }
        if self.main_key.as_deref() == Some(addr.key().as_str()) {
            return self.main.clone();
        }
        Credentials::default()
    }

    /// Number of password-file entries (for the start-up log).
    pub fn password_file_entries(&self) -> usize {
        self.passwords.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> Address {
        Address::parse(s).unwrap()
    }

    #[test]
    fn password_map() {
        let path = Path::new("pw.json");
        let m = PasswordMap::parse(
            r#"{"redis://h1:6379": "one", "redis://bob@H2:7000": "two"}"#,
            path,
        )
        .unwrap();
        assert_eq!(m.get(&addr("h1")).unwrap().password.as_deref(), Some("one"));
        assert_eq!(
            m.get(&addr("redis://h2:7000")).unwrap().user.as_deref(),
            Some("bob")
        );
        assert!(m.get(&addr("h3")).is_none());
        let err = PasswordMap::parse("{\n\"redis://h\": 1}", path)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("pw.json") && err.contains("line 2"), "{err}");
        let err = PasswordMap::parse(r#"{"redis://u:hidden@h:x": "pw"}"#, path)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("pw.json") && !err.contains("hidden"), "{err}");
    }

    /// Each source reaches only the targets it is meant for.
    #[test]
    fn resolution_order_and_scope() {
        let passwords = PasswordMap::parse(
            r#"{"redis://filed:6379": "from-file", "redis://main:6379": "main-from-file"}"#,
            Path::new("pw.json"),
        )
        .unwrap();
        let main = addr("redis://main:6379");
        let r = CredentialResolver::new(
            passwords,
            Some(&main),
            Some("monitor".into()),
            Some("from-env".into()),
        );
        let pw = |s: &str| r.resolve(&addr(s)).password;
        // The URI wins over every other source.
        assert_eq!(
            r.resolve(&addr("redis://alice:in-uri@main:6379")),
            Credentials {
                user: Some("alice".into()),
                password: Some("in-uri".into())
            }
        );
        // The password file wins over the flags for its own target only.
        assert_eq!(pw("main").as_deref(), Some("main-from-file"));
        assert_eq!(pw("filed").as_deref(), Some("from-file"));
        assert_eq!(pw("filed:6380"), None);
        // REDIS_USER/REDIS_PASSWORD go to --redis.addr only.
        let no_file = CredentialResolver::new(
            PasswordMap::default(),
            Some(&main),
            Some("monitor".into()),
            Some("from-env".into()),
        );
        assert_eq!(
            no_file.resolve(&addr("main")),
            Credentials {
                user: Some("monitor".into()),
                password: Some("from-env".into())
            }
        );
        assert_eq!(no_file.resolve(&addr("other")), Credentials::default());
        // Without --redis.addr nothing gets the flag credentials; empty
        // strings count as unset.
        let none = CredentialResolver::new(PasswordMap::default(), None, None, Some("x".into()));
        assert_eq!(none.resolve(&addr("main")), Credentials::default());
        let empty = CredentialResolver::new(
            PasswordMap::default(),
            Some(&main),
            Some(String::new()),
            Some(String::new()),
        );
        assert_eq!(empty.resolve(&addr("main")), Credentials::default());
    }
}
