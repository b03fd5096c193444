//! `zerotouch fleet`: the fleet owner key and the configurator identity.

use clap::{Args, Subcommand};

use crate::cli::Context;
use crate::error::AppError;

/// `zerotouch fleet ...`
#[derive(Subcommand, Debug)]
pub enum FleetCommand {
    /// Create the owner keys and the configurator identities with owner-signed certificates
    /// (one of each per suite: ed25519 and p256), and print the owner public keys to pin
    /// into devices.
    Init(InitArgs),
    /// Print the owner public keys and the configurator certificates' validity.
    Show,
}

/// Arguments of `zerotouch fleet init`.
#[derive(Args, Debug)]
pub struct InitArgs {
    /// Replace an existing fleet's keys. Devices pinned to the old owner key will refuse the
    /// new configurator until they are re-flashed with the new key.
    #[arg(long)]
    pub force: bool,
    /// How long the configurator certificates are valid, in days.
    #[arg(long, default_value_t = 730, value_name = "DAYS", value_parser = clap::value_parser!(u32).range(1..=36500))]
    pub cert_validity_days: u32,
}

/// Runs a `fleet` command.
pub async fn run(cmd: FleetCommand, ctx: &Context) -> Result<(), AppError> {
    let _ = (cmd, ctx);
    Err(AppError::not_built("fleet"))
}
