//! Global settings: flags over environment over the TOML config file over defaults.
//!
//! clap resolves "flag over environment" itself (`#[arg(env = ..)]`); this module adds the
//! config file and the defaults below them. The config file is optional: a missing default
//! file is fine, a missing file named explicitly (`--config`/`ZEROTOUCH_CONFIG`) is an error.
//!
//! ```toml
//! # ~/.config/zerotouch/config.toml
//! registry = "/var/lib/zerotouch/registry.db"
//! secret_key_file = "/var/lib/zerotouch/secret.key"
//! log_format = "json"
//! log_level = "info"   # or "debug", "info,zerotouch=debug"; the daemon re-reads it on SIGHUP
//!
//! [configurator]   # sections other than the keys above are kept for subcommands
//! channel = 6
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::AppError;

/// Environment variable naming the registry (SQLite path or database URL).
pub const ENV_REGISTRY: &str = "ZEROTOUCH_REGISTRY";
/// Environment variable naming the config file.
pub const ENV_CONFIG: &str = "ZEROTOUCH_CONFIG";
/// Environment variable holding the registry secret key itself (64 hex characters); when set,
/// no key file is read or created.
pub const ENV_SECRET_KEY: &str = "ZEROTOUCH_SECRET_KEY";
/// Environment variable naming the registry secret key file.
pub const ENV_SECRET_KEY_FILE: &str = "ZEROTOUCH_SECRET_KEY_FILE";
/// Environment variable selecting the log format (`human` or `json`).
pub const ENV_LOG_FORMAT: &str = "ZEROTOUCH_LOG_FORMAT";

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines on stderr.
    #[default]
    Human,
    /// One JSON object per line on stderr.
    Json,
}

/// The TOML config file. Unknown top-level keys are an error (a typo should not be silently
/// ignored); tables are kept in `sections` for the subcommands that own them.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Registry location (SQLite path or URL).
    pub registry: Option<String>,
    /// Path of the registry secret key file.
    pub secret_key_file: Option<PathBuf>,
    /// Log format.
    pub log_format: Option<LogFormat>,
    /// Log level filter (`RUST_LOG` syntax); below `RUST_LOG` and `-v`/`-q`.
    pub log_level: Option<String>,
    /// Print JSON instead of text by default.
    pub json: Option<bool>,
    /// Settings for the configurator daemon (`[configurator]`), read by `configurator run`.
    #[allow(dead_code)] // Read by the `configurator` command.
    pub configurator: Option<toml::Table>,
    /// Settings for the enrollee agent (`[enrollee]`), read by `enrollee run`.
    #[allow(dead_code)] // Read by the `enrollee` command.
    pub enrollee: Option<toml::Table>,
    /// Settings for `demo` (`[demo]`).
    #[allow(dead_code)] // Read by the `demo` command.
    pub demo: Option<toml::Table>,
}

impl ConfigFile {
    /// Reads the config file. `explicit` says whether the user named it: only then is a
    /// missing file an error.
    pub fn load(path: &Path, explicit: bool) -> Result<Self, AppError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound && !explicit => {
                return Ok(Self::default());
            }
            Err(err) => {
                return Err(AppError::io(
                    format_args!("cannot read config file {}", path.display()),
                    err,
                ));
            }
        };
        toml::from_str(&text).map_err(|err| {
            AppError::Usage(format!(
                "config file {} is not valid: {}; fix it or point --config elsewhere",
                path.display(),
                err.message()
            ))
        })
    }
}

/// The platform directories zerotouch uses by default.
pub struct DefaultDirs {
    /// Where the registry and the secret key file live (`<user data dir>/zerotouch`).
    pub data_dir: PathBuf,
    /// Where the config file lives (`<user config dir>/zerotouch`).
    pub config_dir: PathBuf,
}

impl DefaultDirs {
    /// Looks up the user's data and config directories (XDG on Linux).
    pub fn discover() -> Result<Self, AppError> {
        let base = directories::BaseDirs::new().ok_or_else(|| {
            AppError::Usage(
                "cannot determine the user's home directory; set --registry (or ZEROTOUCH_REGISTRY) \
                 and --config explicitly"
                    .into(),
            )
        })?;
        Ok(Self {
            data_dir: base.data_dir().join("zerotouch"),
            config_dir: base.config_dir().join("zerotouch"),
        })
    }

    /// Default config file path.
    pub fn config_file(&self) -> PathBuf {
        self.config_dir.join("config.toml")
    }

    /// Default registry path.
    pub fn registry(&self) -> PathBuf {
        self.data_dir.join("registry.db")
    }
}

/// Where the registry lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegistryLocation {
    /// An SQLite database file.
    Sqlite(PathBuf),
    /// A database URL (`sqlite:...`, `postgres://...`), passed to the store as is.
    Url(String),
}

impl RegistryLocation {
    /// Interprets `--registry`: a URL if it has a scheme, a file path otherwise.
    pub fn parse(value: &str) -> Self {
        let is_url = value.starts_with("sqlite:")
            || value.starts_with("postgres://")
            || value.starts_with("postgresql://");
        if is_url {
            RegistryLocation::Url(value.to_owned())
        } else {
            RegistryLocation::Sqlite(PathBuf::from(value))
        }
    }
}

impl std::fmt::Display for RegistryLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RegistryLocation::Sqlite(path) => write!(f, "{}", path.display()),
            // Never print a password embedded in a database URL.
            RegistryLocation::Url(url) => f.write_str(&redact_url(url)),
        }
    }
}

/// Replaces the password of `scheme://user:password@host` with `***`.
fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((userinfo, host)) = rest.split_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_location_distinguishes_paths_and_urls() {
        assert_eq!(
            RegistryLocation::parse("/tmp/r.db"),
            RegistryLocation::Sqlite("/tmp/r.db".into())
        );
        assert_eq!(
            RegistryLocation::parse("postgres://u:p@h/db"),
            RegistryLocation::Url("postgres://u:p@h/db".into())
        );
    }

    #[test]
    fn urls_are_printed_without_password() {
        let loc = RegistryLocation::parse("postgres://alice:hunter2@db.example/zt");
        assert_eq!(loc.to_string(), "postgres://alice:***@db.example/zt");
    }

    #[test]
    fn unknown_config_keys_are_rejected() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "registy = \"x\"\n").expect("write");
        assert!(matches!(
            ConfigFile::load(&path, true),
            Err(AppError::Usage(_))
        ));
        std::fs::write(&path, "registry = \"x\"\n[configurator]\nchannel = 6\n").expect("write");
        let cfg = ConfigFile::load(&path, true).expect("valid");
        assert_eq!(cfg.registry.as_deref(), Some("x"));
        assert!(cfg.configurator.is_some());
    }

    #[test]
    fn missing_default_config_is_fine_but_missing_explicit_one_is_not() {
        let path = Path::new("/nonexistent/zerotouch/config.toml");
        assert!(ConfigFile::load(path, false).is_ok());
        assert!(matches!(
            ConfigFile::load(path, true),
            Err(AppError::NotFound(_))
        ));
    }
}
