//! The command line: global flags, the command tree, and the resolved [`Context`] every
//! command receives.

use std::path::PathBuf;

use clap::{ArgAction, Parser, Subcommand};
use zerotouch_store::{Registry, SecretKeySource};

use crate::commands;
use crate::error::AppError;
use crate::settings::{
    ConfigFile, DefaultDirs, ENV_CONFIG, ENV_LOG_FORMAT, ENV_REGISTRY, ENV_SECRET_KEY,
    ENV_SECRET_KEY_FILE, LogFormat, RegistryLocation,
};

/// Text appended to `zerotouch --help`: environment, files and exit codes.
const AFTER_LONG_HELP: &str = concat!(
    "Environment:\n",
    "  ZEROTOUCH_REGISTRY         registry location (same as --registry)\n",
    "  ZEROTOUCH_CONFIG           config file (same as --config)\n",
    "  ZEROTOUCH_SECRET_KEY       registry secret key, 64 hex characters (instead of a key file)\n",
    "  ZEROTOUCH_SECRET_KEY_FILE  registry secret key file (same as --secret-key-file)\n",
    "  ZEROTOUCH_LOG_FORMAT       human or json (same as --log-format)\n",
    "  RUST_LOG                   fine-grained log filter (overrides -v/-q)\n",
    "\n",
    "Files (defaults; flags > environment > config file > defaults):\n",
    "  config    <user config dir>/zerotouch/config.toml (e.g. ~/.config/zerotouch/config.toml)\n",
    "  registry  <user data dir>/zerotouch/registry.db (e.g. ~/.local/share/zerotouch/registry.db)\n",
    "  key file  <registry file>.key (e.g. registry.db.key), created 0600 with the registry\n",
    "\n",
    exit_code_help!()
);

/// zerotouch: zero-touch provisioning for IoT fleets.
///
/// Manage a fleet's registry (owner key, allowlist, network profiles, audit log), run the
/// configurator daemon that provisions devices over the radio, and run the enrollee agent on
/// Linux devices.
#[derive(Parser, Debug)]
#[command(
    name = "zerotouch",
    version,
    propagate_version = true,
    after_long_help = AFTER_LONG_HELP,
    after_help = "Run `zerotouch --help` for environment variables, files and exit codes."
)]
pub struct Cli {
    /// Registry: an SQLite file path, or a database URL.
    #[arg(long, global = true, help_heading = "Global options", env = ENV_REGISTRY, value_name = "PATH|URL")]
    pub registry: Option<String>,

    /// File holding the key that encrypts secrets in the registry (created 0600 on first use).
    #[arg(long, global = true, help_heading = "Global options", env = ENV_SECRET_KEY_FILE, value_name = "FILE")]
    pub secret_key_file: Option<PathBuf>,

    /// Print machine-readable JSON on stdout instead of text.
    #[arg(long, global = true, help_heading = "Global options")]
    pub json: bool,

    /// TOML config file [default: <user config dir>/zerotouch/config.toml].
    #[arg(long, global = true, help_heading = "Global options", env = ENV_CONFIG, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Log format on stderr.
    #[arg(long, global = true, help_heading = "Global options", env = ENV_LOG_FORMAT, value_enum, value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,

    /// More log output (-v debug, -vv trace).
    #[arg(short, long, global = true, help_heading = "Global options", action = ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,

    /// Less log output (-q errors only).
    #[arg(short, long, global = true, help_heading = "Global options", action = ArgAction::Count)]
    pub quiet: u8,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create or inspect the fleet: owner key and configurator identity.
    #[command(subcommand)]
    Fleet(commands::fleet::FleetCommand),
    /// Manufacture device identities; set per-device overrides.
    #[command(subcommand)]
    Device(commands::device::DeviceCommand),
    /// The allowlist: which devices may be provisioned.
    #[command(subcommand)]
    Allow(commands::allow::AllowCommand),
    /// Network profiles and application settings delivered to devices.
    #[command(subcommand)]
    Profile(commands::profile::ProfileCommand),
    /// Bearer tokens for the configurator daemon's HTTP API.
    #[command(subcommand)]
    Token(commands::token::TokenCommand),
    /// Show the audit log.
    Log(commands::log::LogArgs),
    /// Export registry data for other software.
    #[command(subcommand)]
    Export(commands::export::ExportCommand),
    /// Print a shell completion script.
    Completions(commands::completions::CompletionsArgs),
    /// The configurator daemon.
    #[command(subcommand)]
    Configurator(ConfiguratorCommand),
    /// The enrollee agent for Linux devices.
    #[command(subcommand)]
    Enrollee(EnrolleeCommand),
    /// Provision a simulated fleet end to end and print a summary.
    Demo(crate::demo::DemoArgs),
    /// Radio bridges: list serial ports, check a bridge, emulate one.
    #[command(subcommand)]
    Radio(commands::radio::RadioCommand),
}

/// `zerotouch configurator ...`
#[derive(Subcommand, Debug)]
pub enum ConfiguratorCommand {
    /// Run the configurator daemon until SIGINT/SIGTERM.
    Run(crate::daemon::RunArgs),
}

/// `zerotouch enrollee ...`
#[derive(Subcommand, Debug)]
pub enum EnrolleeCommand {
    /// Run the enrollee agent: get provisioned, apply the configuration, report the join.
    Run(crate::agent::RunArgs),
    /// Print this device's DPP URI (and a QR code on a terminal).
    Uri(crate::agent::UriArgs),
}

/// Resolved global settings, handed to every command.
#[derive(Debug)]
pub struct Context {
    /// Where the registry is.
    pub registry: RegistryLocation,
    /// The registry secret key file given explicitly; `None`: `ZEROTOUCH_SECRET_KEY` if set,
    /// else `<registry file>.key`.
    pub secret_key_file: Option<PathBuf>,
    /// Print JSON on stdout.
    pub json: bool,
    /// Log format on stderr.
    pub log_format: LogFormat,
    /// Net verbosity: `-v` count minus `-q` count.
    pub verbosity: i8,
    /// The config file that was read, if any.
    pub config_path: Option<PathBuf>,
    /// Whether the config file was named (`--config`/`ZEROTOUCH_CONFIG`): only then is a
    /// missing file an error (also when the daemon re-reads it on SIGHUP).
    pub config_explicit: bool,
    /// The config file contents (empty if there is none); subcommands read their sections.
    #[allow(dead_code)]
    // The `[configurator]`/`[enrollee]`/`[demo]` sections are read by those commands.
    pub config: ConfigFile,
}

impl Context {
    /// Resolves flags > environment > config file > defaults.
    pub fn resolve(cli: &Cli) -> Result<Self, AppError> {
        let dirs = DefaultDirs::discover();
        let (config_path, explicit) = match (&cli.config, &dirs) {
            (Some(path), _) => (Some(path.clone()), true),
            (None, Ok(dirs)) => (Some(dirs.config_file()), false),
            (None, Err(_)) => (None, false),
        };
        let config = match &config_path {
            Some(path) => ConfigFile::load(path, explicit)?,
            None => ConfigFile::default(),
        };
        let config_path = config_path.filter(|p| explicit || p.exists());

        let registry = match cli.registry.as_deref().or(config.registry.as_deref()) {
            Some("") => {
                return Err(AppError::Usage(
                    "--registry is empty; give a file path or URL".into(),
                ));
            }
            Some(value) => RegistryLocation::parse(value),
            None => RegistryLocation::Sqlite(dirs.as_ref().map_err(clone_err)?.registry()),
        };

        // Key precedence: key file flag/env > ZEROTOUCH_SECRET_KEY > key file in the config >
        // the store's default (`<registry>.key` next to an SQLite file).
        let secret_key_env_set = std::env::var_os(ENV_SECRET_KEY).is_some_and(|v| !v.is_empty());
        let secret_key_file = match (&cli.secret_key_file, secret_key_env_set) {
            (Some(path), _) => Some(path.clone()),
            (None, true) => None,
            (None, false) => config.secret_key_file.clone(),
        };

        Ok(Context {
            registry,
            secret_key_file,
            json: cli.json || config.json.unwrap_or(false),
            log_format: cli.log_format.or(config.log_format).unwrap_or_default(),
            verbosity: i8::try_from(cli.verbose).unwrap_or(i8::MAX)
                - i8::try_from(cli.quiet).unwrap_or(i8::MAX),
            config_path,
            config_explicit: explicit,
            config,
        })
    }
}

impl Context {
    /// Where the registry's secret key comes from.
    pub fn secret_key_source(&self) -> SecretKeySource {
        match &self.secret_key_file {
            Some(path) => SecretKeySource::File(path.clone()),
            None => SecretKeySource::Auto,
        }
    }

    /// A description of where the secret key is, for messages (`fleet init` prints it).
    pub fn secret_key_location(&self) -> String {
        match (&self.secret_key_file, &self.registry) {
            (Some(path), _) => path.display().to_string(),
            (None, _) if std::env::var_os(ENV_SECRET_KEY).is_some_and(|v| !v.is_empty()) => {
                format!("${ENV_SECRET_KEY} (environment)")
            }
            (None, RegistryLocation::Sqlite(path)) => {
                Registry::default_key_file(path).display().to_string()
            }
            (None, RegistryLocation::Url(_)) => {
                format!("${ENV_SECRET_KEY} (required for a database URL)")
            }
        }
    }

    /// The registry location as the store takes it.
    pub fn registry_url(&self) -> String {
        match &self.registry {
            RegistryLocation::Sqlite(path) => path.display().to_string(),
            RegistryLocation::Url(url) => url.clone(),
        }
    }

    /// Opens the registry (creating an SQLite one, its directory and key file if needed).
    pub async fn open_registry(&self) -> Result<Registry, AppError> {
        tracing::debug!(registry = %self.registry, "opening registry");
        if let RegistryLocation::Sqlite(path) = &self.registry {
            check_sqlite_header(path)?;
        }
        let key_file = match (&self.secret_key_file, &self.registry) {
            (Some(path), _) => Some(path.clone()),
            (None, _) if std::env::var_os(ENV_SECRET_KEY).is_some_and(|v| !v.is_empty()) => None,
            (None, RegistryLocation::Sqlite(path)) => Some(Registry::default_key_file(path)),
            (None, RegistryLocation::Url(_)) => None,
        };
        if let Some(path) = key_file
            && let Ok(meta) = std::fs::metadata(&path)
        {
            crate::identity::warn_if_exposed(&path, &meta, "registry secret key file");
        }
        Ok(Registry::open(&self.registry_url(), self.secret_key_source()).await?)
    }

    /// Opens the registry for a command that only reads: a missing SQLite file is an error
    /// (a mistyped `--registry` must not create an empty registry and report "no devices").
    pub async fn open_existing_registry(&self) -> Result<Registry, AppError> {
        if let RegistryLocation::Sqlite(path) = &self.registry
            && !path.exists()
        {
            return Err(AppError::NotFound(format!(
                "no registry at {}: check --registry (or ZEROTOUCH_REGISTRY); a command that \
                 writes, such as `zerotouch fleet init`, creates one",
                path.display()
            )));
        }
        self.open_registry().await
    }
}

/// Refuses an existing, non-empty file that is not an SQLite database before the store
/// tries to open it: a damaged file must be reported as corrupt at once, not surface as a
/// connection pool timeout ("busy") after the pool has retried for seconds.
fn check_sqlite_header(path: &std::path::Path) -> Result<(), AppError> {
    use std::io::Read;
    const MAGIC: &[u8; 16] = b"SQLite format 3\0";
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        // Missing: the store creates it. Unreadable: the store reports it with its path.
        Err(_) => return Ok(()),
    };
    let mut header = Vec::with_capacity(MAGIC.len());
    (&mut file)
        .take(MAGIC.len() as u64)
        .read_to_end(&mut header)
        .map_err(|e| AppError::io(format_args!("cannot read {}", path.display()), e))?;
    if header.is_empty() || header == MAGIC {
        return Ok(());
    }
    Err(AppError::Corrupt(format!(
        "{} is not a zerotouch registry or is corrupt (it is not an SQLite database): restore \
         it from backup or move it aside; it was left untouched",
        path.display()
    )))
}

/// `DefaultDirs::discover` errors are only ever Usage; rebuild one for a second use.
fn clone_err(err: &AppError) -> AppError {
    AppError::Usage(err.to_string())
}
