//! `zerotouch device`: manufacturing (key generation) and per-device overrides.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::cli::Context;
use crate::error::AppError;

/// `zerotouch device ...`
#[derive(Subcommand, Debug)]
pub enum DeviceCommand {
    /// Generate device identities for manufacturing: one state directory per device
    /// (`DIR/<label>/identity.key`, 0600), `manifest.csv`, `manifest.json`, and a QR code
    /// (`DIR/<label>/dpp-qr.svg`) with each device's DPP URI.
    Keygen(KeygenArgs),
    /// Set per-device overrides: the profile and application settings.
    Set(SetArgs),
    /// Show one device: state, profile, overrides, recent events.
    Show(ShowArgs),
}

/// Arguments of `zerotouch device keygen`.
#[derive(Args, Debug)]
pub struct KeygenArgs {
    /// Number of devices.
    #[arg(long, short = 'n', default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub count: u32,
    /// Cipher suite of the identities.
    #[arg(long, default_value = "ed25519", value_parser = ["ed25519", "p256"])]
    pub suite: String,
    /// Output directory (created if missing; existing identities are never overwritten).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Device labels are `<PREFIX><number>` (e.g. `dev-0001`).
    #[arg(long, default_value = "dev-", value_name = "PREFIX")]
    pub label_prefix: String,
}

/// Arguments of `zerotouch device set`.
#[derive(Args, Debug)]
pub struct SetArgs {
    /// The device: a key-hash prefix or its label.
    pub device: String,
    /// Profile for this device (must exist).
    #[arg(long)]
    pub profile: Option<String>,
    /// Application setting for this device, overriding the profile's (repeatable).
    #[arg(long = "setting", value_name = "KEY=VALUE")]
    pub settings: Vec<String>,
    /// Remove a per-device setting (repeatable).
    #[arg(long = "unset", value_name = "KEY")]
    pub unset: Vec<String>,
}

/// Arguments of `zerotouch device show`.
#[derive(Args, Debug)]
pub struct ShowArgs {
    /// The device: a key-hash prefix or its label.
    pub device: String,
}

/// Runs a `device` command.
pub async fn run(cmd: DeviceCommand, ctx: &Context) -> Result<(), AppError> {
    let _ = (cmd, ctx);
    Err(AppError::not_built("device"))
}
