//! The one error type of the `zerotouch` binary, and its exit codes.
//!
//! Every failure a command can meet ends up as an [`AppError`]. Its variant decides the
//! process exit code (so scripts can branch on it) and its message says what went wrong
//! and what to do about it.

use std::fmt;
use std::io;

use zerotouch_proto::config::ConfigError;
use zerotouch_proto::error::{CertError, Error as ProtoError, KeyError, UriError};
use zerotouch_store::StoreError;

/// Exit codes, documented in `zerotouch --help` and the README.
pub mod exit {
    /// A failure that fits no other class (I/O error, crypto failure, ...).
    pub const FAILURE: u8 = 1;
    /// Bad command line or bad input data (malformed URI, bad import file, bad value).
    pub const USAGE: u8 = 2;
    /// The named device, profile, key or file does not exist.
    pub const NOT_FOUND: u8 = 3;
    /// The operation conflicts with existing state (already exists, ambiguous prefix).
    pub const CONFLICT: u8 = 4;
    /// The registry is locked or busy (another process holds a write lock).
    pub const BUSY: u8 = 5;
    /// The registry is corrupt, has an unknown schema, or its secret key is wrong or missing.
    pub const CORRUPT: u8 = 6;
    /// The registry's database server cannot be reached (down, wrong host or port).
    pub const UNREACHABLE: u8 = 7;
    /// Stopped by SIGINT/SIGTERM (128 + 2, as shells report an interrupt); the daemon exits
    /// with it after its graceful shutdown.
    pub const INTERRUPTED: u8 = 130;
}

/// The exit-code table shown at the end of `zerotouch --help` (a macro so `concat!` can use it).
macro_rules! exit_code_help {
    () => {
        "\
Exit codes:
  0    success
  1    failure (I/O, crypto, anything not listed below)
  2    usage error or bad input (malformed URI, bad import file, invalid value)
  3    not found (device, profile, key, file)
  4    conflict (already exists, ambiguous prefix, fleet already initialised)
  5    registry locked or busy (another process is writing; retry)
  6    registry corrupt, unknown schema, or secret key wrong or missing
  7    registry unreachable (database server down, wrong host or port; retry later)
  130  interrupted (SIGINT/SIGTERM; the daemon after its graceful shutdown)"
    };
}

/// A failure of a `zerotouch` command. Each message says what happened and what to do.
#[derive(Debug)]
pub enum AppError {
    /// The command line or an input file is wrong (exit 2).
    Usage(String),
    /// Something named does not exist (exit 3).
    NotFound(String),
    /// The request conflicts with what exists (exit 4).
    Conflict(String),
    /// The registry is locked by another writer (exit 5).
    Busy(String),
    /// The registry is corrupt or its secret key is wrong or missing (exit 6).
    Corrupt(String),
    /// The registry's database server cannot be reached (exit 7).
    Unreachable(String),
    /// Stopped by a signal (exit 130).
    Interrupted,
    /// Any other failure (exit 1).
    Failed(String),
}

impl AppError {
    /// The process exit code for this error (see [`exit`]).
    pub fn exit_code(&self) -> u8 {
        match self {
            AppError::Usage(_) => exit::USAGE,
            AppError::NotFound(_) => exit::NOT_FOUND,
            AppError::Conflict(_) => exit::CONFLICT,
            AppError::Busy(_) => exit::BUSY,
            AppError::Corrupt(_) => exit::CORRUPT,
            AppError::Unreachable(_) => exit::UNREACHABLE,
            AppError::Interrupted => exit::INTERRUPTED,
            AppError::Failed(_) => exit::FAILURE,
        }
    }

    /// A short machine-readable name of the error class, used in `--json` error output.
    pub fn kind(&self) -> &'static str {
        match self {
            AppError::Usage(_) => "usage",
            AppError::NotFound(_) => "not_found",
            AppError::Conflict(_) => "conflict",
            AppError::Busy(_) => "busy",
            AppError::Corrupt(_) => "corrupt",
            AppError::Unreachable(_) => "unreachable",
            AppError::Interrupted => "interrupted",
            AppError::Failed(_) => "failure",
        }
    }

    /// An I/O error with the path or action it concerns, classified by its kind.
    pub fn io(context: impl fmt::Display, err: io::Error) -> Self {
        let message = format!("{context}: {err}");
        match err.kind() {
            io::ErrorKind::NotFound => AppError::NotFound(message),
            io::ErrorKind::AlreadyExists => AppError::Conflict(message),
            io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData => AppError::Usage(message),
            io::ErrorKind::Interrupted => AppError::Interrupted,
            _ => AppError::Failed(message),
        }
    }
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AppError::Usage(m)
            | AppError::NotFound(m)
            | AppError::Conflict(m)
            | AppError::Busy(m)
            | AppError::Corrupt(m)
            | AppError::Unreachable(m)
            | AppError::Failed(m) => f.write_str(m),
            AppError::Interrupted => {
                f.write_str("interrupted by a signal; nothing half-written was committed")
            }
        }
    }
}

impl std::error::Error for AppError {}

impl From<io::Error> for AppError {
    fn from(err: io::Error) -> Self {
        AppError::io("I/O error", err)
    }
}

impl From<StoreError> for AppError {
    fn from(err: StoreError) -> Self {
        let message = err.to_string();
        match err {
            StoreError::Busy { .. } => AppError::Busy(message),
            StoreError::Unreachable { .. } => AppError::Unreachable(message),
            StoreError::Corrupt { .. }
            | StoreError::SecretKey(_)
            | StoreError::SchemaTooNew { .. }
            | StoreError::Migration { .. }
            | StoreError::WrongSecretKey { .. }
            | StoreError::Tampered { .. } => AppError::Corrupt(message),
            StoreError::UnknownProfile(_)
            | StoreError::DeviceNotFound(_)
            | StoreError::TokenNotFound(_)
            | StoreError::NoFleet => AppError::NotFound(message),
            StoreError::DuplicateKey(_)
            | StoreError::DuplicateLabel(_)
            | StoreError::AmbiguousPrefix { .. }
            | StoreError::FleetExists(_)
            | StoreError::ProfileInUse { .. }
            | StoreError::DeviceRevoked(_)
            | StoreError::DuplicateToken(_)
            | StoreError::ProfileVersionMismatch { .. }
            | StoreError::ImportRejected(_) => AppError::Conflict(message),
            StoreError::InvalidConfig(_)
            | StoreError::InvalidInput(_)
            | StoreError::UnsupportedUrl(_) => AppError::Usage(message),
            _ => AppError::Failed(message),
        }
    }
}

impl From<KeyError> for AppError {
    fn from(err: KeyError) -> Self {
        AppError::Usage(format!("invalid key: {err}"))
    }
}

impl From<UriError> for AppError {
    fn from(err: UriError) -> Self {
        AppError::Usage(format!("invalid DPP URI: {err}"))
    }
}

impl From<CertError> for AppError {
    fn from(err: CertError) -> Self {
        AppError::Corrupt(format!(
            "configurator certificate rejected: {err} (`zerotouch fleet init --force` issues new keys)"
        ))
    }
}

impl From<ConfigError> for AppError {
    fn from(err: ConfigError) -> Self {
        AppError::Usage(format!("invalid configuration: {err}"))
    }
}

impl From<ProtoError> for AppError {
    fn from(err: ProtoError) -> Self {
        match err {
            ProtoError::Key(e) => e.into(),
            ProtoError::Cert(e) => e.into(),
            ProtoError::Config(e) => e.into(),
            other => AppError::Failed(format!("protocol error: {other}")),
        }
    }
}
