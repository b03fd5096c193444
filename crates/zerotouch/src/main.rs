//! The `zerotouch` command: operator CLI, configurator daemon, Linux enrollee agent and demo.
//!
//! `main` parses the command line, resolves settings ([`cli::Context`]), sets up logging,
//! runs the command on a small tokio runtime and turns an [`error::AppError`] into a message
//! on stderr (JSON with `--json`) and a meaningful exit code.

#[macro_use]
mod error;
mod agent;
mod cli;
mod commands;
mod daemon;
mod demo;
mod http;
mod identity;
mod logging;
mod output;
#[cfg(test)]
mod parser_props;
mod settings;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command, ConfiguratorCommand, Context, EnrolleeCommand};
use crate::error::AppError;

fn main() -> ExitCode {
    // clap prints help/version (exit 0) and usage errors (exit 2) itself.
    let cli = Cli::parse();
    let json_errors = cli.json;
    let result = Context::resolve(&cli).and_then(|ctx| {
        // The demo's output is its progress and summary: the daemon's per-session log lines
        // (normal retries under loss) would drown them, so it logs warnings unless -v.
        let quiet_by_default = matches!(cli.command, Command::Demo(_));
        logging::init(&ctx, quiet_by_default)?;
        tracing::debug!(registry = %ctx.registry, config = ?ctx.config_path, "settings resolved");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|err| AppError::io("cannot start the async runtime", err))?;
        runtime.block_on(dispatch(cli.command, &ctx))
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            report_error(&err, json_errors);
            ExitCode::from(err.exit_code())
        }
    }
}

/// Runs one command.
async fn dispatch(command: Command, ctx: &Context) -> Result<(), AppError> {
    match command {
        Command::Fleet(cmd) => commands::fleet::run(cmd, ctx).await,
        Command::Device(cmd) => commands::device::run(cmd, ctx).await,
        Command::Allow(cmd) => commands::allow::run(cmd, ctx).await,
        Command::Profile(cmd) => commands::profile::run(cmd, ctx).await,
        Command::Token(cmd) => commands::token::run(cmd, ctx).await,
        Command::Log(args) => commands::log::run(args, ctx).await,
        Command::Export(cmd) => commands::export::run(cmd, ctx).await,
        Command::Completions(args) => commands::completions::run(args),
        Command::Configurator(ConfiguratorCommand::Run(args)) => daemon::run(args, ctx).await,
        Command::Enrollee(EnrolleeCommand::Run(args)) => agent::run(args, ctx).await,
        Command::Enrollee(EnrolleeCommand::Uri(args)) => agent::uri(args, ctx).await,
        Command::Demo(args) => demo::run(args, ctx).await,
        Command::Radio(cmd) => commands::radio::run(cmd, ctx).await,
    }
}

/// Prints an error on stderr: `error: ...` or, with `--json`, one JSON object.
fn report_error(err: &AppError, json: bool) {
    if json {
        let value = serde_json::json!({
            "error": {
                "kind": err.kind(),
                "exit_code": err.exit_code(),
                "message": err.to_string(),
            }
        });
        eprintln!("{value}");
    } else {
        eprintln!("error: {err}");
    }
}
