//! `zerotouch device`: manufacturing (key generation) and per-device overrides.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use qrcode::QrCode;
use qrcode::render::svg;
use serde::Serialize;
use zerotouch_proto::uri::BootstrapUri;
use zerotouch_proto::{PublicKey, SuiteId};
use zerotouch_store::{AuditFilter, Device, NewDevice, Registry, StoreError};

use crate::cli::Context;
use crate::commands::allow::{EntryView, find_device};
use crate::error::AppError;
use crate::identity::{self, IdentityError};
use crate::output::{format_time, print_json, write_stdout};

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
    /// Output directory for this batch (created if missing; must not hold a manifest yet).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Device labels are `<PREFIX><number>` (e.g. `dev-0001`).
    #[arg(long, default_value = "dev-", value_name = "PREFIX")]
    pub label_prefix: String,
    /// First device number (to continue a series in a new batch directory).
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub start: u32,
    /// Also write the fleet owner key (`owner.pub`) into each device's state directory, so
    /// the device pins it (needs an initialised fleet in the registry).
    #[arg(long)]
    pub pin_owner: bool,
    /// Also allowlist the new devices in the registry (atomically, with their labels).
    #[arg(long)]
    pub allow: bool,
    /// Profile for the devices allowlisted with --allow.
    #[arg(long, requires = "allow")]
    pub profile: Option<String>,
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
    /// Print setting values (they may hold secrets).
    #[arg(long)]
    pub show_secrets: bool,
}

/// One manufactured device, as written to the manifests.
#[derive(Serialize, Debug)]
struct ManifestEntry {
    label: String,
    suite: &'static str,
    key_hash: String,
    dpp_uri: String,
    state_dir: String,
}

/// Runs a `device` command.
pub async fn run(cmd: DeviceCommand, ctx: &Context) -> Result<(), AppError> {
    match cmd {
        DeviceCommand::Keygen(args) => keygen(args, ctx).await,
        DeviceCommand::Set(args) => set(args, ctx).await,
        DeviceCommand::Show(args) => show(args, ctx).await,
    }
}

/// The DPP URI of a device key, carrying its label in `I:` when the label fits the syntax.
pub fn dpp_uri(key: PublicKey, label: &str) -> Result<String, AppError> {
    let mut uri = BootstrapUri::for_key(key);
    uri.info = Some(label);
    let mut text = String::new();
    if uri.write(&mut text).is_ok() {
        return Ok(text);
    }
    // The label has characters a URI cannot carry: leave it out.
    let mut text = String::new();
    BootstrapUri::for_key(key)
        .write(&mut text)
        .map_err(|_| AppError::Failed("cannot encode the DPP URI".into()))?;
    Ok(text)
}

/// An SVG QR code of `text`.
fn qr_svg(text: &str) -> Result<String, AppError> {
    let code = QrCode::new(text.as_bytes())
        .map_err(|e| AppError::Failed(format!("cannot encode {text:?} as a QR code: {e}")))?;
    Ok(code
        .render::<svg::Color<'_>>()
        .min_dimensions(240, 240)
        .quiet_zone(true)
        .build())
}

/// Writes `contents` to `path` atomically: temporary file, fsync, rename, fsync of the
/// directory. The file gets `mode`.
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<(), AppError> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| -> std::io::Result<()> {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        file.set_permissions(std::fs::Permissions::from_mode(mode))?;
        file.write_all(contents)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        identity::sync_dir(dir)
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        AppError::io(format_args!("cannot write {}", path.display()), e)
    })
}

async fn keygen(args: KeygenArgs, ctx: &Context) -> Result<(), AppError> {
    let suite = SuiteId::from_name(&args.suite).ok_or_else(|| {
        AppError::Usage(format!(
            "unknown suite {:?}: use ed25519 or p256",
            args.suite
        ))
    })?;
    let last = args
        .start
        .checked_add(args.count - 1)
        .ok_or_else(|| AppError::Usage("--start + --count is too large".into()))?;
    let csv_path = args.out.join("manifest.csv");
    let json_path = args.out.join("manifest.json");
    if csv_path.exists() || json_path.exists() {
        return Err(AppError::Conflict(format!(
            "{} already holds a batch (manifest.csv); use a new --out directory per batch \
             (with --start to continue the numbering)",
            args.out.display()
        )));
    }
    let width = last.to_string().len().max(4);
    let labels: Vec<String> = (args.start..=last)
        .map(|n| format!("{}{n:0width$}", args.label_prefix))
        .collect();
    // Refuse before writing anything if a device directory already holds an identity.
    for label in &labels {
        let path = identity::identity_path(&args.out.join(label));
        if path.exists() {
            return Err(IdentityError::AlreadyExists(path).into());
        }
    }
    // Open the registry before generating keys, so a missing fleet fails early.
    let registry = if args.pin_owner || args.allow {
        Some(ctx.open_registry().await?)
    } else {
        None
    };
    if let (Some(registry), Some(profile)) = (&registry, &args.profile)
        && registry.get_profile(profile).await?.is_none()
    {
        return Err(StoreError::UnknownProfile(profile.clone()).into());
    }
    let owner = match (&registry, args.pin_owner) {
        (Some(registry), true) => {
            let fleet = registry.fleet().await?.ok_or(StoreError::NoFleet)?;
            let keys = fleet.keys_for(suite).ok_or_else(|| {
                AppError::NotFound(format!(
                    "the fleet has no {} owner key; run `zerotouch fleet init`",
                    suite.name()
                ))
            })?;
            Some(PublicKey::from_wire(suite, &keys.owner_public)?)
        }
        _ => None,
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&args.out)
        .map_err(|e| AppError::io(format_args!("cannot create {}", args.out.display()), e))?;

    let mut entries = Vec::with_capacity(labels.len());
    let mut new_devices = Vec::with_capacity(labels.len());
    for label in &labels {
        let state_dir = args.out.join(label);
        let id = identity::create(&state_dir, suite)?;
        let key = id.public_key();
        let uri = dpp_uri(key, label)?;
        write_atomic(
            &state_dir.join("dpp-uri.txt"),
            format!("{uri}\n").as_bytes(),
            0o644,
        )?;
        write_atomic(
            &state_dir.join("dpp-qr.svg"),
            qr_svg(&uri)?.as_bytes(),
            0o644,
        )?;
        if let Some(owner) = &owner {
            identity::save_owner_key(&state_dir, owner)?;
        }
        let mut new = NewDevice::from_public_key(&key);
        new.label = Some(label.clone());
        new.profile = args.profile.clone();
        new_devices.push(new);
        entries.push(ManifestEntry {
            label: label.clone(),
            suite: suite.name(),
            key_hash: key.key_hash().to_string(),
            dpp_uri: uri,
            state_dir: label.clone(),
        });
    }

    let mut csv_out = csv::Writer::from_writer(Vec::new());
    csv_out
        .write_record(["label", "suite", "key_hash", "uri", "state_dir"])
        .map_err(|e| AppError::Failed(format!("cannot encode manifest.csv: {e}")))?;
    for e in &entries {
        csv_out
            .write_record([&e.label, e.suite, &e.key_hash, &e.dpp_uri, &e.state_dir])
            .map_err(|e| AppError::Failed(format!("cannot encode manifest.csv: {e}")))?;
    }
    let csv_bytes = csv_out
        .into_inner()
        .map_err(|e| AppError::Failed(format!("cannot encode manifest.csv: {e}")))?;
    write_atomic(&csv_path, &csv_bytes, 0o644)?;
    let json_bytes = serde_json::to_vec_pretty(&entries)
        .map_err(|e| AppError::Failed(format!("cannot encode manifest.json: {e}")))?;
    write_atomic(&json_path, &json_bytes, 0o644)?;

    let allowed = match (&registry, args.allow) {
        (Some(registry), true) => registry.allow_many(new_devices).await?,
        _ => 0,
    };
    if ctx.json {
        return print_json(&serde_json::json!({
            "out": args.out.display().to_string(),
            "manifest_csv": csv_path.display().to_string(),
            "manifest_json": json_path.display().to_string(),
            "devices": entries,
            "allowed": allowed,
        }));
    }
    write_stdout(&format!(
        "generated {} {} identities in {} ({} .. {}); manifest: {}, {}",
        entries.len(),
        suite.name(),
        args.out.display(),
        labels.first().map_or("", String::as_str),
        labels.last().map_or("", String::as_str),
        csv_path.display(),
        json_path.display()
    ))?;
    if args.allow {
        write_stdout(&format!("allowlisted {allowed} device(s)"))?;
    } else {
        write_stdout(&format!(
            "allowlist them with: zerotouch allow import {}",
            csv_path.display()
        ))?;
    }
    Ok(())
}

/// Parses `KEY=VALUE`.
pub fn parse_setting(text: &str) -> Result<(String, String), AppError> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_string(), value.to_string()))
        }
        _ => Err(AppError::Usage(format!(
            "--setting {text:?} is not KEY=VALUE"
        ))),
    }
}

async fn set(args: SetArgs, ctx: &Context) -> Result<(), AppError> {
    if args.profile.is_none() && args.settings.is_empty() && args.unset.is_empty() {
        return Err(AppError::Usage(
            "nothing to set: give --profile, --setting or --unset".into(),
        ));
    }
    let settings = args
        .settings
        .iter()
        .map(|s| parse_setting(s))
        .collect::<Result<Vec<_>, _>>()?;
    let registry = ctx.open_registry().await?;
    let device = find_device(&registry, &args.device).await?;
    // Checked before anything is written: a typo must not half-apply the command.
    if let Some(key) = args
        .unset
        .iter()
        .find(|key| !device.overrides.contains_key(key.as_str()))
    {
        let known: Vec<&str> = device.overrides.keys().map(String::as_str).collect();
        return Err(AppError::Usage(format!(
            "device {} has no per-device setting {key:?} to unset (its settings: {}); nothing was changed",
            args.device,
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        )));
    }
    if let Some(profile) = &args.profile {
        registry
            .set_device_profile(&device.key_hash, Some(profile))
            .await?;
    }
    if !settings.is_empty() || !args.unset.is_empty() {
        let mut overrides: BTreeMap<String, String> = device.overrides.clone();
        for key in &args.unset {
            overrides.remove(key);
        }
        overrides.extend(settings);
        registry
            .set_device_overrides(&device.key_hash, &overrides)
            .await?;
    }
    let device = find_device(&registry, &device.key_hash.to_string()).await?;
    print_device(&device, ctx, &registry, false).await
}

async fn show(args: ShowArgs, ctx: &Context) -> Result<(), AppError> {
    let registry = ctx.open_registry().await?;
    let device = find_device(&registry, &args.device).await?;
    print_device(&device, ctx, &registry, args.show_secrets).await
}

async fn print_device(
    device: &Device,
    ctx: &Context,
    registry: &Registry,
    show_secrets: bool,
) -> Result<(), AppError> {
    let overrides: BTreeMap<&str, &str> = device
        .overrides
        .iter()
        .map(|(k, v)| {
            (
                k.as_str(),
                if show_secrets { v.as_str() } else { "<hidden>" },
            )
        })
        .collect();
    let filter = AuditFilter {
        key_hash: Some(device.key_hash),
        limit: None,
    };
    let events = registry.audit_since(0, &filter).await?;
    let recent: Vec<_> = events
        .iter()
        .rev()
        .take(10)
        .rev()
        .map(|e| (format_time(e.at_ms), e.kind.name().to_string()))
        .collect();
    if ctx.json {
        return print_json(&serde_json::json!({
            "device": EntryView::of(device),
            "overrides": overrides,
            "recent_events": recent.iter().map(|(at, kind)| serde_json::json!({"at": at, "kind": kind})).collect::<Vec<_>>(),
        }));
    }
    let mut text = format!("device {}\n", device.key_hash);
    text.push_str(&format!(
        "  label:   {}\n",
        device.label.as_deref().unwrap_or("-")
    ));
    text.push_str(&format!("  suite:   {}\n", device.suite.name()));
    text.push_str(&format!("  profile: {}\n", device.profile_name()));
    text.push_str(&format!("  state:   {}\n", device.state));
    if let Some(mac) = device.last_mac {
        text.push_str(&format!("  mac:     {mac}\n"));
    }
    for (key, value) in &overrides {
        text.push_str(&format!("  setting: {key}={value}\n"));
    }
    for (at, kind) in &recent {
        text.push_str(&format!("  event:   {at} {kind}\n"));
    }
    write_stdout(text.trim_end())
}
