//! `zerotouch profile`: network profiles and application settings.

use clap::{Args, Subcommand};

use crate::cli::Context;
use crate::error::AppError;

/// `zerotouch profile ...`
#[derive(Subcommand, Debug)]
pub enum ProfileCommand {
    /// Create or replace a profile.
    Set(SetArgs),
    /// Show a profile (secrets hidden unless --show-secrets).
    Show(ShowArgs),
    /// List profiles.
    List,
}

/// Arguments of `zerotouch profile set`.
#[derive(Args, Debug)]
pub struct SetArgs {
    /// Profile name.
    pub name: String,
    /// SSID of the (first) network.
    #[arg(long)]
    pub ssid: Option<String>,
    /// Security of the (first) network.
    #[arg(long, value_parser = ["wpa2-psk", "wpa3-sae", "open"], default_value = "wpa2-psk")]
    pub security: String,
    /// Passphrase shared by every device (8..=63 printable ASCII).
    #[arg(long, group = "credential")]
    pub passphrase: Option<String>,
    /// Raw 256-bit PSK as 64 hex digits (WPA2 only).
    #[arg(long, group = "credential", value_name = "HEX")]
    pub psk_hex: Option<String>,
    /// Generate a unique passphrase for each device (export with `zerotouch export hostapd-psk`).
    #[arg(long, group = "credential")]
    pub per_device: bool,
    /// BSSID hint (`aa:bb:cc:dd:ee:ff`).
    #[arg(long)]
    pub bssid: Option<String>,
    /// Channel hint (1..=14).
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=14))]
    pub channel: Option<u8>,
    /// Application setting delivered to devices (repeatable).
    #[arg(long = "setting", value_name = "KEY=VALUE")]
    pub settings: Vec<String>,
    /// An additional network as JSON (repeatable), e.g.
    /// `{"ssid":"backup","security":"wpa2-psk","passphrase":"..."}`.
    #[arg(long = "network-json", value_name = "JSON")]
    pub networks_json: Vec<String>,
}

/// Arguments of `zerotouch profile show`.
#[derive(Args, Debug)]
pub struct ShowArgs {
    /// Profile name.
    pub name: String,
    /// Print passphrases and PSKs.
    #[arg(long)]
    pub show_secrets: bool,
}

/// Runs a `profile` command.
pub async fn run(cmd: ProfileCommand, ctx: &Context) -> Result<(), AppError> {
    let _ = (cmd, ctx);
    Err(AppError::not_built("profile"))
}
