//! `zerotouch profile`: network profiles and application settings.

use std::collections::BTreeMap;

use clap::{Args, Subcommand};
use serde::Deserialize;
use zerotouch_store::{CredentialSpec, NetworkSpec, Profile, Registry, SecurityKind, StoreError};

use crate::cli::Context;
use crate::commands::device::parse_setting;
use crate::error::AppError;
use crate::output::{print_json, print_table, write_stdout};

/// `zerotouch profile ...`
#[derive(Subcommand, Debug)]
pub enum ProfileCommand {
    /// Create or replace a profile.
    Set(SetArgs),
    /// Show a profile (secrets hidden unless --show-secrets).
    Show(ShowArgs),
    /// List profiles.
    List,
    /// Delete a profile no device uses.
    Delete(DeleteArgs),
}

/// Arguments of `zerotouch profile delete`.
#[derive(Args, Debug)]
pub struct DeleteArgs {
    /// Profile name.
    pub name: String,
}

/// Arguments of `zerotouch profile set`.
#[derive(Args, Debug)]
pub struct SetArgs {
    /// Profile name.
    pub name: String,
    /// SSID of the (first) network. Optional if every network is given with --network-json.
    #[arg(long, required_unless_present = "networks_json")]
    pub ssid: Option<String>,
    /// Security of the (first) network.
    #[arg(long, value_parser = ["wpa2-psk", "wpa3-sae", "open"], default_value = "wpa2-psk")]
    pub security: String,
    /// Passphrase shared by every device (8..=63 printable ASCII). Visible to other users in
    /// the process list and in shell history: prefer --passphrase-file on shared machines.
    #[arg(long, group = "credential")]
    pub passphrase: Option<String>,
    /// Read the shared passphrase from the first line of FILE (`-` for stdin).
    #[arg(long, group = "credential", value_name = "FILE")]
    pub passphrase_file: Option<std::path::PathBuf>,
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

/// A network given with `--network-json` (flat, like the flags).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NetworkArg {
    ssid: String,
    #[serde(default = "default_security")]
    security: String,
    passphrase: Option<String>,
    psk_hex: Option<String>,
    #[serde(default)]
    per_device: bool,
    bssid: Option<String>,
    channel: Option<u8>,
}

fn default_security() -> String {
    "wpa2-psk".into()
}

/// Builds a network from the flag values, checking that security and credential agree.
fn network_spec(
    ssid: String,
    security: &str,
    passphrase: Option<String>,
    psk_hex: Option<String>,
    per_device: bool,
    bssid: Option<String>,
    channel: Option<u8>,
) -> Result<NetworkSpec, AppError> {
    let security_kind = match security {
        "wpa2-psk" => SecurityKind::Wpa2Psk,
        "wpa3-sae" => SecurityKind::Wpa3Sae,
        "open" => SecurityKind::Open,
        other => {
            return Err(AppError::Usage(format!(
                "security {other:?} of {ssid:?}: use wpa2-psk, wpa3-sae or open"
            )));
        }
    };
    let credential = match (security_kind, passphrase, psk_hex, per_device) {
        (SecurityKind::Open, None, None, false) => CredentialSpec::None,
        (SecurityKind::Open, ..) => {
            return Err(AppError::Usage(format!(
                "network {ssid:?} is open: it takes no passphrase or PSK"
            )));
        }
        (_, Some(p), None, false) => CredentialSpec::Passphrase(p),
        (SecurityKind::Wpa2Psk, None, Some(h), false) => {
            CredentialSpec::RawPsk(h.to_ascii_lowercase())
        }
        (SecurityKind::Wpa3Sae, None, Some(_), false) => {
            return Err(AppError::Usage(format!(
                "network {ssid:?}: WPA3-SAE needs a passphrase, not a raw PSK"
            )));
        }
        (_, None, None, true) => CredentialSpec::PerDevice,
        (_, None, None, false) => {
            return Err(AppError::Usage(format!(
                "network {ssid:?} needs a credential: --passphrase, --psk-hex or --per-device (or --security open)"
            )));
        }
        _ => {
            return Err(AppError::Usage(format!(
                "network {ssid:?}: give only one of passphrase, psk-hex and per-device"
            )));
        }
    };
    Ok(NetworkSpec {
        ssid,
        security: security_kind,
        credential,
        bssid,
        channel,
    })
}

/// Runs a `profile` command.
pub async fn run(cmd: ProfileCommand, ctx: &Context) -> Result<(), AppError> {
    let registry = ctx.open_registry().await?;
    match cmd {
        ProfileCommand::Set(args) => set(args, ctx, &registry).await,
        ProfileCommand::Show(args) => {
            let profile = registry
                .get_profile(&args.name)
                .await?
                .ok_or_else(|| StoreError::UnknownProfile(args.name.clone()))?;
            print_profile(&profile, ctx, args.show_secrets)
        }
        ProfileCommand::List => list(ctx, &registry).await,
        ProfileCommand::Delete(args) => {
            registry.delete_profile(&args.name).await?;
            if ctx.json {
                return print_json(&serde_json::json!({ "deleted": args.name }));
            }
            write_stdout(&format!("deleted profile {:?}", args.name))
        }
    }
}

async fn set(args: SetArgs, ctx: &Context, registry: &Registry) -> Result<(), AppError> {
    let passphrase = match (&args.passphrase, &args.passphrase_file) {
        (_, Some(path)) => Some(read_passphrase_file(path)?),
        (passphrase, None) => passphrase.clone(),
    };
    let mut networks = Vec::new();
    if let Some(ssid) = args.ssid {
        networks.push(network_spec(
            ssid,
            &args.security,
            passphrase,
            args.psk_hex,
            args.per_device,
            args.bssid,
            args.channel,
        )?);
    }
    for (i, text) in args.networks_json.iter().enumerate() {
        let net: NetworkArg = serde_json::from_str(text)
            .map_err(|e| AppError::Usage(format!("--network-json number {}: {e}", i + 1)))?;
        networks.push(network_spec(
            net.ssid,
            &net.security,
            net.passphrase,
            net.psk_hex,
            net.per_device,
            net.bssid,
            net.channel,
        )?);
    }
    let settings = args
        .settings
        .iter()
        .map(|s| parse_setting(s))
        .collect::<Result<BTreeMap<_, _>, _>>()?;
    let profile = Profile {
        name: args.name,
        networks,
        settings,
    };
    registry.set_profile(&profile).await?;
    print_profile(&profile, ctx, false)
}

/// The first line of a passphrase file (or stdin for `-`), without its line ending.
fn read_passphrase_file(path: &std::path::Path) -> Result<String, AppError> {
    let text = if path.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())
            .map_err(|e| AppError::io("cannot read stdin", e))?
    } else {
        std::fs::read_to_string(path)
            .map_err(|e| AppError::io(format_args!("cannot read {}", path.display()), e))?
    };
    let line = text.lines().next().unwrap_or_default();
    if line.is_empty() {
        return Err(AppError::Usage(format!(
            "{} is empty: its first line must be the passphrase",
            path.display()
        )));
    }
    Ok(line.to_string())
}

/// A profile as printed, secrets masked unless asked for.
fn profile_view(profile: &Profile, show_secrets: bool) -> serde_json::Value {
    let networks: Vec<serde_json::Value> = profile
        .networks
        .iter()
        .map(|n| {
            let (kind, secret) = match &n.credential {
                CredentialSpec::None => ("none", None),
                CredentialSpec::Passphrase(p) => ("passphrase", Some(p.as_str())),
                CredentialSpec::RawPsk(h) => ("psk-hex", Some(h.as_str())),
                CredentialSpec::PerDevice => ("per-device", None),
            };
            let mut value = serde_json::json!({
                "ssid": n.ssid,
                "security": n.security,
                "credential": kind,
                "bssid": n.bssid,
                "channel": n.channel,
            });
            if let Some(secret) = secret {
                value["secret"] = serde_json::Value::String(if show_secrets {
                    secret.to_string()
                } else {
                    "<hidden>".into()
                });
            }
            value
        })
        .collect();
    serde_json::json!({ "name": profile.name, "networks": networks, "settings": profile.settings })
}

fn print_profile(profile: &Profile, ctx: &Context, show_secrets: bool) -> Result<(), AppError> {
    let view = profile_view(profile, show_secrets);
    if ctx.json {
        return print_json(&view);
    }
    let mut text = format!("profile {}\n", profile.name);
    for (i, net) in view["networks"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        text.push_str(&format!(
            "  network {}: ssid {} security {} credential {}",
            i + 1,
            net["ssid"],
            net["security"].as_str().unwrap_or("?"),
            net["credential"].as_str().unwrap_or("?")
        ));
        if let Some(secret) = net.get("secret").and_then(|s| s.as_str()) {
            text.push_str(&format!(" {secret}"));
        }
        if let Some(bssid) = net["bssid"].as_str() {
            text.push_str(&format!(" bssid {bssid}"));
        }
        if let Some(channel) = net["channel"].as_u64() {
            text.push_str(&format!(" channel {channel}"));
        }
        text.push('\n');
    }
    for (key, value) in &profile.settings {
        text.push_str(&format!("  setting {key}={value}\n"));
    }
    write_stdout(text.trim_end())
}

async fn list(ctx: &Context, registry: &Registry) -> Result<(), AppError> {
    let profiles = registry.list_profiles().await?;
    if ctx.json {
        let views: Vec<_> = profiles.iter().map(|p| profile_view(p, false)).collect();
        return print_json(&views);
    }
    let rows: Vec<Vec<String>> = profiles
        .iter()
        .map(|p| {
            vec![
                p.name.clone(),
                p.networks
                    .iter()
                    .map(|n| n.ssid.as_str())
                    .collect::<Vec<_>>()
                    .join(","),
                if p.networks
                    .iter()
                    .any(|n| n.credential == CredentialSpec::PerDevice)
                {
                    "per-device".to_string()
                } else {
                    "shared".to_string()
                },
                p.settings.len().to_string(),
            ]
        })
        .collect();
    print_table(&["NAME", "SSIDS", "PSK", "SETTINGS"], &rows)
}
