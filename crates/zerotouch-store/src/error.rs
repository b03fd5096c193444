//! [`StoreError`]: everything the registry can report, each message saying what to do.

use std::path::PathBuf;

use zerotouch_proto::KeyHash;

/// One entry of an import that could not be added (see [`StoreError::ImportRejected`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportConflict {
    /// Position of the entry in the list given to `allow_many` (0-based).
    pub index: usize,
    /// The key hash of the entry.
    pub key_hash: KeyHash,
    /// Why it was rejected.
    pub reason: String,
}

/// An error from the registry.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Another process held the database lock for longer than the busy timeout.
    #[error(
        "the registry is busy: another zerotouch process held its lock for more than 5 s ({detail}); retry, or stop the process that keeps it locked"
    )]
    Busy {
        /// What the database reported.
        detail: String,
    },
    /// The database server could not be reached (refused, no route, DNS, timeout): nothing
    /// holds a lock, the server is down or the address is wrong.
    #[error(
        "the registry at {location} is unreachable: {detail}; check that the database server runs and that the URL's host, port and database are right"
    )]
    Unreachable {
        /// The database URL (without password).
        location: String,
        /// What connecting reported.
        detail: String,
    },
    /// The file or database is not a zerotouch registry, or is damaged.
    #[error(
        "{location} is not a zerotouch registry or is corrupt: restore from backup or move it aside ({detail})"
    )]
    Corrupt {
        /// The file path or database URL (without password).
        location: String,
        /// What was found.
        detail: String,
    },
    /// The database was written by a newer zerotouch.
    #[error(
        "the registry at {location} has schema version {found}, newer than this zerotouch supports ({supported}): upgrade zerotouch, or restore a backup made by this version"
    )]
    SchemaTooNew {
        /// The file path or database URL.
        location: String,
        /// Newest schema version in the database.
        found: i64,
        /// Newest schema version this build knows.
        supported: i64,
    },
    /// Applying the embedded migrations failed.
    #[error(
        "could not migrate the registry at {location}: {detail}; restore from backup or report a bug"
    )]
    Migration {
        /// The file path or database URL.
        location: String,
        /// What failed.
        detail: String,
    },
    /// The secret key cannot decrypt this registry.
    #[error("the secret key does not match this registry: {detail}")]
    WrongSecretKey {
        /// Which key was used and what to do.
        detail: String,
    },
    /// The secret key could not be loaded or created (missing key file, malformed key).
    #[error("secret key problem: {0}")]
    SecretKey(String),
    /// The operating system's random generator failed (keys, PSKs, tokens, nonces).
    #[error("the system random generator failed: {0}")]
    Random(String),
    /// A sealed value does not decrypt: it was modified or moved to another row.
    #[error(
        "the encrypted {what} does not decrypt: the registry was modified outside zerotouch; restore from backup"
    )]
    Tampered {
        /// Which value (table, column, row).
        what: String,
    },
    /// A file could not be created, opened or read for lack of permission.
    #[error(
        "permission denied on {path}: {detail}; run as the user that owns the registry, or fix the file's owner and mode (0600)"
    )]
    Permission {
        /// The path.
        path: PathBuf,
        /// What was attempted.
        detail: String,
    },
    /// Any other I/O error on a registry file.
    #[error("cannot use {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The registry URL is neither a path, `sqlite:` nor `postgres://`.
    #[error(
        "unsupported registry location {0:?}: use a file path, sqlite:PATH or postgres://USER@HOST/DB"
    )]
    UnsupportedUrl(String),
    /// A profile name that does not exist.
    #[error(
        "unknown profile {0:?}: create it with `zerotouch profile set`, or list them with `zerotouch profile list`"
    )]
    UnknownProfile(String),
    /// A profile that devices still use cannot be deleted.
    #[error("profile {name:?} is used by {devices} device(s): move them to another profile first")]
    ProfileInUse {
        /// The profile.
        name: String,
        /// How many devices use it.
        devices: i64,
    },
    /// A profile or per-device setting is invalid.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// Some other input is invalid (label, MAC, key length, ...).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The key is already allowlisted.
    #[error("device {0} is already in the registry")]
    DuplicateKey(KeyHash),
    /// The label is already used by another device.
    #[error("label {0:?} is already used by another device: choose another label")]
    DuplicateLabel(String),
    /// An atomic import was rejected; nothing was added.
    #[error("{} of the entries conflict, nothing was imported: {}", .0.len(), summarize_conflicts(.0))]
    ImportRejected(Vec<ImportConflict>),
    /// A conditional profile write whose expected version is not the stored one.
    #[error(
        "profile {name:?} was changed by someone else (its version is now {current}): reload it and apply your change again"
    )]
    ProfileVersionMismatch {
        /// The profile.
        name: String,
        /// Its current version (`none` if it does not exist).
        current: String,
    },
    /// An API token name that is already taken.
    #[error("an API token named {0:?} already exists: choose another name, or revoke it first")]
    DuplicateToken(String),
    /// An API token name that does not exist.
    #[error("no API token named {0:?}: list them with `zerotouch token list`")]
    TokenNotFound(String),
    /// A key-hash prefix that matches several devices.
    #[error(
        "{prefix:?} matches {matches} devices: give more hex digits of the key hash, or the label"
    )]
    AmbiguousPrefix {
        /// What was given.
        prefix: String,
        /// How many devices match.
        matches: usize,
    },
    /// No such device.
    #[error("no device matches {0:?}: list them with `zerotouch allow list`")]
    DeviceNotFound(String),
    /// The device is revoked; it gets no configuration and no state change.
    #[error("device {0} is revoked")]
    DeviceRevoked(KeyHash),
    /// The fleet was already initialised.
    #[error(
        "the fleet already has keys for suite {0}: it is initialised once; use a new registry for a new fleet"
    )]
    FleetExists(String),
    /// The fleet was not initialised.
    #[error("the fleet is not initialised: run `zerotouch fleet init`")]
    NoFleet,
    /// Any other database error.
    #[error("registry database error: {0}")]
    Database(String),
}

fn summarize_conflicts(conflicts: &[ImportConflict]) -> String {
    const SHOWN: usize = 5;
    let mut parts: Vec<String> = conflicts
        .iter()
        .take(SHOWN)
        .map(|c| format!("entry {} ({}): {}", c.index + 1, c.key_hash, c.reason))
        .collect();
    if conflicts.len() > SHOWN {
        parts.push(format!("and {} more", conflicts.len() - SHOWN));
    }
    parts.join("; ")
}

/// SQLite primary result codes that mean "locked by someone else" (BUSY, LOCKED); the
/// extended codes (BUSY_SNAPSHOT, ...) share them in their low byte.
const SQLITE_BUSY_CODES: [&str; 2] = ["5", "6"];
/// SQLite primary result codes that mean the file is not a database or is damaged
/// (NOTADB, CORRUPT).
const SQLITE_CORRUPT_CODES: [&str; 2] = ["26", "11"];

impl StoreError {
    /// Maps a database error, naming `location` for corruption.
    pub(crate) fn from_sqlx(err: sqlx::Error, location: &str) -> Self {
        match &err {
            sqlx::Error::PoolTimedOut => StoreError::Busy {
                detail: "no database connection became free".into(),
            },
            sqlx::Error::Database(db) => {
                let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
                let is_sqlite = db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some();
                // SQLite extended codes keep the primary code in the low byte.
                let primary = code
                    .parse::<i64>()
                    .map(|c| (c & 0xff).to_string())
                    .unwrap_or_default();
                let busy = if is_sqlite {
                    SQLITE_BUSY_CODES.contains(&primary.as_str())
                } else {
                    // PostgreSQL lock_not_available, deadlock_detected.
                    code == "55P03" || code == "40P01"
                };
                if busy {
                    StoreError::Busy {
                        detail: db.message().to_string(),
                    }
                } else if is_sqlite && SQLITE_CORRUPT_CODES.contains(&primary.as_str()) {
                    StoreError::Corrupt {
                        location: location.to_string(),
                        detail: db.message().to_string(),
                    }
                } else {
                    StoreError::Database(err.to_string())
                }
            }
            _ => StoreError::Database(err.to_string()),
        }
    }

    /// True for [`StoreError::Busy`]: the operation can be retried unchanged.
    pub fn is_busy(&self) -> bool {
        matches!(self, StoreError::Busy { .. })
    }
}
