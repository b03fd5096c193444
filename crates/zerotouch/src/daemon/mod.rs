//! The configurator daemon (`zerotouch configurator run`).
//!
//! Placeholder created with the CLI skeleton so the crate compiles; app-runtime owns it.

use crate::cli::Context;
use crate::error::AppError;

/// Arguments of `zerotouch configurator run`.
#[derive(clap::Args, Debug)]
pub struct RunArgs {}

/// Runs the configurator daemon until SIGINT/SIGTERM.
pub async fn run(args: RunArgs, ctx: &Context) -> Result<(), AppError> {
    let _ = (args, ctx);
    Err(AppError::not_built("configurator run"))
}
