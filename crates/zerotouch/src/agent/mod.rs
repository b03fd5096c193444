//! The Linux enrollee agent (`zerotouch enrollee run|uri`).
//!
//! Placeholder created with the CLI skeleton so the crate compiles; app-runtime owns it.

use crate::cli::Context;
use crate::error::AppError;

/// Arguments of `zerotouch enrollee run`.
#[derive(clap::Args, Debug)]
pub struct RunArgs {}

/// Arguments of `zerotouch enrollee uri`.
#[derive(clap::Args, Debug)]
pub struct UriArgs {}

/// Runs the enrollee agent until it is provisioned (or interrupted).
pub async fn run(args: RunArgs, ctx: &Context) -> Result<(), AppError> {
    let _ = (args, ctx);
    Err(AppError::not_built("enrollee run"))
}

/// Prints the device's DPP URI.
pub async fn uri(args: UriArgs, ctx: &Context) -> Result<(), AppError> {
    let _ = (args, ctx);
    Err(AppError::not_built("enrollee uri"))
}
