//! Logging on stderr (human lines, or JSON with `--log-format json`), with a level filter the
//! daemon can replace at run time: on SIGHUP it re-reads the config file's `log_level`.
//!
//! The level comes from, first match wins: `RUST_LOG`; `-v`/`-q`; the config file's
//! `log_level` (an `EnvFilter` directive such as `debug` or `info,zerotouch=debug`); the
//! default (`info`, or `warn` for commands whose output is the point).

use std::io::IsTerminal;
use std::sync::OnceLock;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Registry, reload};

use crate::cli::Context;
use crate::error::AppError;
use crate::settings::{ConfigFile, LogFormat};

/// The handle that swaps the level filter of the installed subscriber.
static FILTER: OnceLock<reload::Handle<EnvFilter, Registry>> = OnceLock::new();

/// The level directive in effect and where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Level {
    /// An `EnvFilter` directive.
    pub directive: String,
    /// `RUST_LOG`, `-v/-q`, `config file` or `default`.
    pub source: &'static str,
}

/// Picks the level: `RUST_LOG` > `-v`/`-q` > the config's `log_level` > the default.
pub fn choose(verbosity: i8, quiet_by_default: bool, config: &ConfigFile) -> Level {
    if let Some(env) = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty())
    {
        return Level {
            directive: env,
            source: "RUST_LOG",
        };
    }
    let by_flags = match verbosity {
        i8::MIN..=-1 => Some("error"),
        0 => None,
        1 => Some("debug"),
        _ => Some("trace"),
    };
    if let Some(level) = by_flags {
        return Level {
            directive: level.into(),
            source: "-v/-q",
        };
    }
    if let Some(level) = config.log_level.as_deref().filter(|v| !v.trim().is_empty()) {
        return Level {
            directive: level.into(),
            source: "config file",
        };
    }
    Level {
        directive: if quiet_by_default { "warn" } else { "info" }.into(),
        source: "default",
    }
}

/// Parses a level directive, naming where it came from when it is invalid.
fn parse(level: &Level) -> Result<EnvFilter, AppError> {
    EnvFilter::try_new(&level.directive).map_err(|err| {
        AppError::Usage(format!(
            "log level {:?} from {} is not valid ({err}): use error, warn, info, debug, trace or a directive such as info,zerotouch=debug",
            level.directive, level.source
        ))
    })
}

/// Installs the subscriber on stderr: colours only on a terminal.
pub fn init(ctx: &Context, quiet_by_default: bool) -> Result<(), AppError> {
    let level = choose(ctx.verbosity, quiet_by_default, &ctx.config);
    let (filter, handle) = reload::Layer::new(parse(&level)?);
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    // A second initialisation (never in this binary) would only fail; ignoring it is safe.
    let _ = match ctx.log_format {
        LogFormat::Human => tracing_subscriber::registry()
            .with(filter)
            .with(fmt)
            .try_init(),
        LogFormat::Json => tracing_subscriber::registry()
            .with(filter)
            .with(fmt.json())
            .try_init(),
    };
    let _ = FILTER.set(handle);
    Ok(())
}

/// What a reload changed, for the "reloaded" log line.
#[derive(Debug)]
pub struct Reloaded {
    /// The level now in effect.
    pub level: Level,
    /// The config file read (none if there is none).
    pub config: Option<std::path::PathBuf>,
    /// Settings that changed in the file but need a restart.
    pub needs_restart: Vec<&'static str>,
}

/// Re-reads the config file and applies what can change at run time (the log level). On
/// error nothing changes: the running settings stay as they were.
pub fn reload(ctx: &Context) -> Result<Reloaded, AppError> {
    let config = match &ctx.config_path {
        Some(path) => ConfigFile::load(path, ctx.config_explicit)?,
        None => ConfigFile::default(),
    };
    let level = choose(ctx.verbosity, false, &config);
    let filter = parse(&level)?;
    if let Some(handle) = FILTER.get() {
        handle
            .reload(filter)
            .map_err(|err| AppError::Failed(format!("cannot change the log level: {err}")))?;
    }
    let mut needs_restart = Vec::new();
    if config.registry != ctx.config.registry {
        needs_restart.push("registry");
    }
    if config.secret_key_file != ctx.config.secret_key_file {
        needs_restart.push("secret_key_file");
    }
    if config.log_format != ctx.config.log_format {
        needs_restart.push("log_format");
    }
    Ok(Reloaded {
        level,
        config: ctx.config_path.clone(),
        needs_restart,
    })
}
