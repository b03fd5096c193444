//! `zerotouch demo`: a whole fleet provisioned over the simulated radio.
//!
//! Placeholder created with the CLI skeleton so the crate compiles; app-runtime owns it.

use crate::cli::Context;
use crate::error::AppError;

/// Arguments of `zerotouch demo`.
#[derive(clap::Args, Debug)]
pub struct DemoArgs {}

/// Runs the demo.
pub async fn run(args: DemoArgs, ctx: &Context) -> Result<(), AppError> {
    let _ = (args, ctx);
    Err(AppError::not_built("demo"))
}
