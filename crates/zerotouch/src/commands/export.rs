//! `zerotouch export`: registry data for other software.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::cli::Context;
use crate::error::AppError;

/// `zerotouch export ...`
#[derive(Subcommand, Debug)]
pub enum ExportCommand {
    /// Write a hostapd `wpa_psk_file`: one line per provisioned device with a per-device PSK.
    HostapdPsk(HostapdPskArgs),
}

/// Arguments of `zerotouch export hostapd-psk`.
#[derive(Args, Debug)]
pub struct HostapdPskArgs {
    /// Output file (replaced atomically, mode 0600).
    pub file: PathBuf,
}

/// Runs an `export` command.
pub async fn run(cmd: ExportCommand, ctx: &Context) -> Result<(), AppError> {
    let _ = (cmd, ctx);
    Err(AppError::not_built("export"))
}
