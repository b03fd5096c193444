//! `zerotouch profile`: network profiles and application settings.
//!
//! `profile set` creates a profile or changes only what its flags name (the other networks'
//! fields and settings stay); `profile replace` writes the whole profile from its flags.
//! Both write conditionally on the version read, so a concurrent edit is refused (exit 4),
//! never silently lost.

use std::collections::BTreeMap;

use clap::{Args, Subcommand};
use serde::Deserialize;
use zerotouch_store::{
    CredentialSpec, NetworkSpec, Profile, ProfilePrecondition, Registry, SecurityKind, StoreError,
};

use crate::cli::Context;
use crate::commands::device::parse_setting;
use crate::error::AppError;
use crate::output::{print_json, print_table, write_stdout};

/// `zerotouch profile ...`
#[derive(Subcommand, Debug)]
pub enum ProfileCommand {
    /// Create a profile, or change only the flags given (other settings and networks stay).
    Set(SetArgs),
    /// Create or replace a whole profile: what the flags do not give is dropped.
    Replace(SetArgs),
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

/// Arguments of `zerotouch profile set` and `profile replace`.
#[derive(Args, Debug)]
pub struct SetArgs {
    /// Profile name.
    pub name: String,
    /// SSID of the (first) network. Needed to create a profile, unless every network is
    /// given with --network-json.
    #[arg(long)]
    pub ssid: Option<String>,
    /// Security of the (first) network [default for a new profile: wpa2-psk].
    #[arg(long, value_parser = ["wpa2-psk", "wpa3-sae", "open"])]
    pub security: Option<String>,
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
    /// Channel hint of the access point, 1..=13: the channels zerotouch radios use (as
    /// `configurator run --channel`; channel 14 is not supported).
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=13))]
    pub channel: Option<u8>,
    /// Application setting delivered to devices (repeatable); `profile set` adds or changes
    /// it and keeps the others.
    #[arg(long = "setting", value_name = "KEY=VALUE")]
    pub settings: Vec<String>,
    /// Remove an application setting (repeatable; `profile set` only).
    #[arg(long = "unset", value_name = "KEY")]
    pub unset: Vec<String>,
    /// An additional network as JSON (repeatable), e.g.
    /// `{"ssid":"backup","security":"wpa2-psk","passphrase":"..."}`. With `profile set` on an
    /// existing profile, these replace its additional networks (the first one stays).
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
        ProfileCommand::Replace(args) => replace(args, ctx, &registry).await,
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

fn security_name(kind: SecurityKind) -> &'static str {
    match kind {
        SecurityKind::Wpa2Psk => "wpa2-psk",
        SecurityKind::Wpa3Sae => "wpa3-sae",
        SecurityKind::Open => "open",
    }
}

/// The passphrase given by --passphrase or --passphrase-file.
fn passphrase_arg(args: &SetArgs) -> Result<Option<String>, AppError> {
    match (&args.passphrase, &args.passphrase_file) {
        (_, Some(path)) => Ok(Some(read_passphrase_file(path)?)),
        (passphrase, None) => Ok(passphrase.clone()),
    }
}

/// The networks given by --network-json.
fn json_networks(args: &SetArgs) -> Result<Vec<NetworkSpec>, AppError> {
    let mut networks = Vec::new();
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
    Ok(networks)
}

/// The whole profile the flags describe (`profile replace`, or `set` of a new profile).
fn profile_from_args(args: SetArgs) -> Result<Profile, AppError> {
    if args.ssid.is_none() && args.networks_json.is_empty() {
        return Err(AppError::Usage(format!(
            "profile {:?} needs a network: give --ssid (and a credential), or --network-json",
            args.name
        )));
    }
    let passphrase = passphrase_arg(&args)?;
    let mut networks = Vec::new();
    if let Some(ssid) = args.ssid.clone() {
        networks.push(network_spec(
            ssid,
            args.security.as_deref().unwrap_or("wpa2-psk"),
            passphrase,
            args.psk_hex.clone(),
            args.per_device,
            args.bssid.clone(),
            args.channel,
        )?);
    }
    networks.extend(json_networks(&args)?);
    let settings = args
        .settings
        .iter()
        .map(|s| parse_setting(s))
        .collect::<Result<BTreeMap<_, _>, _>>()?;
    Ok(Profile {
        name: args.name,
        networks,
        settings,
    })
}

/// `profile replace`: the whole profile from the flags.
async fn replace(args: SetArgs, ctx: &Context, registry: &Registry) -> Result<(), AppError> {
    if !args.unset.is_empty() {
        return Err(AppError::Usage(
            "--unset is for `profile set`; `profile replace` drops every setting not given with --setting".into(),
        ));
    }
    let profile = profile_from_args(args)?;
    registry.set_profile(&profile).await?;
    print_profile(&profile, ctx, false)
}

/// `profile set`: creates the profile, or changes only the flags given.
async fn set(args: SetArgs, ctx: &Context, registry: &Registry) -> Result<(), AppError> {
    let Some((mut profile, version)) = registry.get_profile_versioned(&args.name).await? else {
        if !args.unset.is_empty() {
            return Err(StoreError::UnknownProfile(args.name.clone()).into());
        }
        let profile = profile_from_args(args)?;
        registry
            .set_profile_if(&profile, ProfilePrecondition::Absent)
            .await?;
        return print_profile(&profile, ctx, false);
    };
    let credential_given = args.passphrase.is_some()
        || args.passphrase_file.is_some()
        || args.psk_hex.is_some()
        || args.per_device;
    let nothing = args.ssid.is_none()
        && args.security.is_none()
        && !credential_given
        && args.bssid.is_none()
        && args.channel.is_none()
        && args.settings.is_empty()
        && args.unset.is_empty()
        && args.networks_json.is_empty();
    if nothing {
        return Err(AppError::Usage(format!(
            "nothing to change in profile {:?}: give the flags to change (--ssid, --passphrase, --setting KEY=VALUE, --unset KEY, ...); `profile replace` replaces the whole profile",
            args.name
        )));
    }
    let passphrase = passphrase_arg(&args)?;
    let first = &mut profile.networks[0];
    if let Some(ssid) = &args.ssid {
        first.ssid.clone_from(ssid);
    }
    let security = args
        .security
        .clone()
        .unwrap_or_else(|| security_name(first.security).to_string());
    if credential_given {
        let spec = network_spec(
            first.ssid.clone(),
            &security,
            passphrase,
            args.psk_hex.clone(),
            args.per_device,
            None,
            None,
        )?;
        first.security = spec.security;
        first.credential = spec.credential;
    } else if args.security.is_some() {
        // A new security with the old credential: open drops it; the others keep it (the
        // store refuses a combination that does not work, e.g. a raw PSK for WPA3).
        let spec = network_spec(first.ssid.clone(), &security, None, None, false, None, None);
        match spec {
            Ok(spec) => {
                first.security = spec.security;
                first.credential = spec.credential;
            }
            Err(_) if first.credential != CredentialSpec::None => {
                first.security = match security.as_str() {
                    "wpa3-sae" => SecurityKind::Wpa3Sae,
                    _ => SecurityKind::Wpa2Psk,
                };
            }
            Err(err) => return Err(err),
        }
    }
    if let Some(bssid) = &args.bssid {
        first.bssid = Some(bssid.clone());
    }
    if let Some(channel) = args.channel {
        first.channel = Some(channel);
    }
    if !args.networks_json.is_empty() {
        let extra = json_networks(&args)?;
        profile.networks.truncate(1);
        profile.networks.extend(extra);
    }
    for text in &args.settings {
        let (key, value) = parse_setting(text)?;
        profile.settings.insert(key, value);
    }
    for key in &args.unset {
        if profile.settings.remove(key).is_none() {
            let known: Vec<&str> = profile.settings.keys().map(String::as_str).collect();
            return Err(AppError::Usage(format!(
                "profile {:?} has no setting {key:?} to unset (its settings: {}); nothing was changed",
                args.name,
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            )));
        }
    }
    registry
        .set_profile_if(&profile, ProfilePrecondition::Version(version))
        .await?;
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

/// The PSK column of `profile list`: per-device if any network has per-device PSKs, open if
/// every network is open, shared otherwise.
fn psk_column(profile: &Profile) -> &'static str {
    let networks = &profile.networks;
    if networks
        .iter()
        .any(|n| n.credential == CredentialSpec::PerDevice)
    {
        "per-device"
    } else if networks
        .iter()
        .all(|n| n.credential == CredentialSpec::None)
    {
        "open"
    } else {
        "shared"
    }
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
                psk_column(p).to_string(),
                p.settings.len().to_string(),
            ]
        })
        .collect();
    print_table(&["NAME", "SSIDS", "PSK", "SETTINGS"], &rows)
}
