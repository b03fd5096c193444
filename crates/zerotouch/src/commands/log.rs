//! `zerotouch log`: the audit log.

use clap::Args;

use crate::cli::Context;
use crate::error::AppError;

/// Arguments of `zerotouch log`.
#[derive(Args, Debug)]
pub struct LogArgs {
    /// Keep printing new events as they are recorded (polls the registry).
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// Only events of this device (key-hash prefix or label).
    #[arg(long)]
    pub device: Option<String>,
    /// Only events at or after this time: RFC 3339, a date, or a duration ago (`1h`, `2d`).
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
    /// At most this many events (the most recent), before following.
    #[arg(long, short = 'n')]
    pub limit: Option<u32>,
}

/// Runs `zerotouch log`.
pub async fn run(args: LogArgs, ctx: &Context) -> Result<(), AppError> {
    let _ = (args, ctx);
    Err(AppError::not_built("log"))
}
