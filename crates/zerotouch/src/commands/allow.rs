//! `zerotouch allow`: the allowlist.

use std::path::PathBuf;

use std::collections::HashMap;

use base64ct::{Base64, Encoding};
use clap::{Args, Subcommand};
use serde::{Deserialize, Serialize};
use zerotouch_proto::uri::BootstrapUri;
use zerotouch_proto::{KeyHash, PublicKey, SuiteId};
use zerotouch_store::{Device, DeviceFilter, DeviceState, NewDevice, Registry, StoreError};

use crate::cli::Context;
use crate::error::AppError;
use crate::output::{Direction, format_time, parse_when, print_json, print_table, write_stdout};

/// `zerotouch allow ...`
#[derive(Subcommand, Debug)]
pub enum AllowCommand {
    /// Allow one device, given as a DPP URI or a public key (base64/hex DER SPKI or raw key).
    /// A key hash alone is not enough: the configurator needs the key to authenticate it.
    Add(AddArgs),
    /// Allow many devices from a file: CSV with a header (`uri` or `key`, and optional
    /// `label`, `profile`, `expires`), a JSON array (of URI strings or objects with the same
    /// fields), or one DPP URI per line (`#` comments). All or nothing: one bad line and
    /// nothing is imported; every bad line is reported with its line number.
    Import(ImportArgs),
    /// List allowlist entries: key hash, label, profile, state, last event.
    List(ListArgs),
    /// Revoke a device: it will be refused from now on, and its PSK leaves the next export.
    /// `allow add` with its URI or key allows it again (same entry, history kept).
    Revoke(RevokeArgs),
}

/// Arguments of `zerotouch allow add`.
#[derive(Args, Debug)]
pub struct AddArgs {
    /// DPP URI (`DPP:...;;`), or public key: base64 or hex, DER SPKI or raw (prefix a raw
    /// key with `ed25519:` or `p256:` to be explicit).
    pub device: String,
    /// Human label (unique), e.g. a serial number.
    #[arg(long)]
    pub label: Option<String>,
    /// Profile to deliver (must exist).
    #[arg(long)]
    pub profile: Option<String>,
    /// Expiry: RFC 3339 time (`2027-01-31T00:00:00Z`), a date (`2027-01-31`) or a duration
    /// from now (`30d`, `12h`).
    #[arg(long, value_name = "WHEN")]
    pub expires: Option<String>,
}

/// Arguments of `zerotouch allow import`.
#[derive(Args, Debug)]
pub struct ImportArgs {
    /// The file (`-` for stdin).
    pub file: PathBuf,
    /// Profile for entries that do not name one.
    #[arg(long)]
    pub profile: Option<String>,
}

/// Arguments of `zerotouch allow list`.
#[derive(Args, Debug)]
pub struct ListArgs {
    /// Only entries in this state.
    #[arg(long, value_parser = ["allowed", "provisioning", "provisioned", "failed", "revoked"])]
    pub state: Option<String>,
}

/// Arguments of `zerotouch allow revoke`.
#[derive(Args, Debug)]
pub struct RevokeArgs {
    /// The device: a key-hash prefix (at least 4 hex digits) or its label.
    pub device: String,
    /// Why (recorded in the audit log).
    #[arg(long)]
    pub reason: Option<String>,
}

/// A device key parsed from the command line or an import file.
#[derive(Debug)]
pub struct ParsedDevice {
    /// The identity public key.
    pub key: PublicKey,
    /// The URI's `I:` field, used as the label when none is given.
    pub info: Option<String>,
}

/// Parses a device given as a DPP URI, a public key (hex or base64; DER SPKI, or a raw key
/// with an optional `ed25519:`/`p256:` prefix), or a key hash (rejected with an explanation).
pub fn parse_device(text: &str) -> Result<ParsedDevice, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty entry".into());
    }
    if text
        .get(..4)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("DPP:"))
    {
        let uri = BootstrapUri::parse(text).map_err(|e| format!("invalid DPP URI: {e}"))?;
        return Ok(ParsedDevice {
            key: uri.key,
            info: uri.info.map(str::to_string),
        });
    }
    let (suite_hint, body) = match text.split_once(':') {
        Some((name, rest)) => match SuiteId::from_name(&name.to_ascii_lowercase()) {
            Some(suite) => (Some(suite), rest.trim()),
            None => {
                return Err(format!(
                    "unknown key prefix {name:?}: use `ed25519:` or `p256:`, or a DPP URI"
                ));
            }
        },
        None => (None, text),
    };
    let is_hex = body.len() % 2 == 0 && body.bytes().all(|b| b.is_ascii_hexdigit());
    if suite_hint.is_none() && is_hex && body.len() == 64 {
        return Err(
            "a key hash alone cannot be allowlisted: the configurator needs the device's \
                    public key to authenticate it. Give the DPP URI (`zerotouch enrollee uri`, \
                    manifest.csv) or the public key; to pass a raw Ed25519 key in hex, write \
                    `ed25519:<hex>`"
                .into(),
        );
    }
    let bytes = if is_hex {
        hex::decode(body).map_err(|e| format!("bad hex: {e}"))?
    } else {
        Base64::decode_vec(body).map_err(|_| {
            "not a DPP URI, hex or base64 key (a DPP URI starts with `DPP:`)".to_string()
        })?
    };
    let key = match suite_hint {
        Some(suite) => PublicKey::from_wire(suite, &bytes)
            .map_err(|e| format!("invalid {} key: {e}", suite.name()))?,
        None => match bytes.len() {
            32 => PublicKey::from_wire(SuiteId::Ed25519, &bytes)
                .map_err(|e| format!("invalid Ed25519 key: {e}"))?,
            33 | 65 => PublicKey::from_wire(SuiteId::P256, &bytes)
                .map_err(|e| format!("invalid P-256 key: {e}"))?,
            _ => {
                PublicKey::from_spki_der(&bytes).map_err(|e| format!("invalid public key: {e}"))?
            }
        },
    };
    Ok(ParsedDevice { key, info: None })
}

/// One allowlist entry as printed by `allow list`.
#[derive(Serialize)]
pub struct EntryView {
    key_hash: String,
    suite: &'static str,
    label: Option<String>,
    profile: String,
    state: String,
    failure: Option<String>,
    expires_at: Option<String>,
    last_event: Option<String>,
    last_event_at: Option<String>,
    last_mac: Option<String>,
    provisioned_at: Option<String>,
}

impl EntryView {
    /// The printed form of a device.
    pub fn of(device: &Device) -> Self {
        Self {
            key_hash: device.key_hash.to_string(),
            suite: device.suite.name(),
            label: device.label.clone(),
            profile: device.profile_name().to_string(),
            state: device.state.name().to_string(),
            failure: match device.state {
                DeviceState::Failed(reason) => Some(reason.name().to_string()),
                _ => None,
            },
            expires_at: device.expires_at_ms.map(format_time),
            last_event: device.last_event.clone(),
            last_event_at: device.last_event_at_ms.map(format_time),
            last_mac: device.last_mac.map(|m| m.to_string()),
            provisioned_at: device.provisioned_at_ms.map(format_time),
        }
    }
}

/// Runs an `allow` command.
pub async fn run(cmd: AllowCommand, ctx: &Context) -> Result<(), AppError> {
    let registry = if matches!(cmd, AllowCommand::List(_)) {
        ctx.open_existing_registry().await?
    } else {
        ctx.open_registry().await?
    };
    match cmd {
        AllowCommand::Add(args) => add(args, ctx, &registry).await,
        AllowCommand::Import(args) => import(args, ctx, &registry).await,
        AllowCommand::List(args) => list(args, ctx, &registry).await,
        AllowCommand::Revoke(args) => revoke(args, ctx, &registry).await,
    }
}

async fn add(args: AddArgs, ctx: &Context, registry: &Registry) -> Result<(), AppError> {
    let parsed = parse_device(&args.device).map_err(AppError::Usage)?;
    let expires_at_ms = args
        .expires
        .as_deref()
        .map(|t| parse_when(t, Direction::Future, "--expires"))
        .transpose()?;
    let mut new = NewDevice::from_public_key(&parsed.key);
    new.label = args.label.or(parsed.info);
    new.profile = args.profile;
    new.expires_at_ms = expires_at_ms;
    let device = registry.allow(new).await?;
    if ctx.json {
        return print_json(&EntryView::of(&device));
    }
    write_stdout(&format!(
        "allowed {} ({}, label {}, profile {})",
        device.key_hash,
        device.suite.name(),
        device.label.as_deref().unwrap_or("-"),
        device.profile_name()
    ))
}

/// An import entry before it is parsed: where it came from and its fields.
pub(crate) struct RawEntry {
    /// Human position: `line 7` or `entry 3`.
    position: String,
    device: String,
    label: Option<String>,
    profile: Option<String>,
    expires: Option<String>,
}

/// One bad entry of an import file: where it is and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ImportProblem {
    /// `line 7` (CSV, one-per-line) or `entry 3` (JSON).
    pub position: String,
    /// What is wrong with it.
    pub reason: String,
}

/// Why an import file imports nothing.
#[derive(Debug)]
pub enum ImportError {
    /// The file as a whole cannot be read (bad JSON, CSV header without a key column, ...).
    Format(String),
    /// The file has no entries.
    Empty,
    /// These entries are bad (every one is listed).
    Rejected(Vec<ImportProblem>),
    /// These entries conflict with the registry.
    Conflicts(Vec<ImportProblem>),
    /// The registry failed.
    Store(StoreError),
}

impl ImportError {
    /// The CLI's error for it; `source` names the file.
    pub fn into_app_error(self, source: &str) -> AppError {
        match self {
            Self::Format(message) => AppError::Usage(message),
            Self::Empty => {
                AppError::Usage(format!("{source} has no entries; nothing was imported"))
            }
            Self::Rejected(problems) => rejected(&problems),
            Self::Conflicts(problems) => AppError::Conflict(format!(
                "import rejected, nothing was imported (the import is all or nothing); {} conflict(s) with the registry:\n{}",
                problems.len(),
                list_problems(&problems)
            )),
            Self::Store(e) => e.into(),
        }
    }
}

/// An import file checked and ready for [`Registry::allow_many`].
pub struct ImportPlan {
    /// The detected format: `CSV`, `JSON` or `one-per-line`.
    pub format: &'static str,
    /// Position of each device in the file.
    pub positions: Vec<String>,
    /// The devices, in file order.
    pub devices: Vec<NewDevice>,
}

/// Splits an import file into entries, detecting its format.
pub(crate) fn read_entries(text: &str) -> Result<(&'static str, Vec<RawEntry>), ImportError> {
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    if trimmed.starts_with('[') {
        return read_json(trimmed).map(|e| ("JSON", e));
    }
    let first_line = trimmed
        .lines()
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let looks_like_header = first_line.contains(',')
        && first_line.split(',').any(|c| {
            matches!(
                c.trim().trim_matches('"'),
                "uri" | "dpp_uri" | "key" | "device"
            )
        });
    if looks_like_header {
        return read_csv(text).map(|e| ("CSV", e));
    }
    let entries = text
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty() && !line.trim_start().starts_with('#'))
        .map(|(i, line)| RawEntry {
            position: format!("line {}", i + 1),
            device: line.trim().trim_start_matches('\u{feff}').to_string(),
            label: None,
            profile: None,
            expires: None,
        })
        .collect();
    Ok(("one-per-line", entries))
}

fn read_csv(text: &str) -> Result<Vec<RawEntry>, ImportError> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(false)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| ImportError::Format(format!("import file: bad CSV header: {e}")))?
        .clone();
    let column = |names: &[&str]| {
        headers
            .iter()
            .position(|h| names.contains(&h.to_ascii_lowercase().as_str()))
    };
    let device_col = column(&["uri", "dpp_uri", "key", "device"]).ok_or_else(|| {
        ImportError::Format("import file: the CSV header needs a `uri` (or `key`) column".into())
    })?;
    let (label_col, profile_col, expires_col) = (
        column(&["label"]),
        column(&["profile"]),
        column(&["expires"]),
    );
    let mut entries = Vec::new();
    let mut errors = Vec::new();
    for record in reader.records() {
        match record {
            Ok(record) => {
                let line = record.position().map_or(0, |p| p.line());
                let field = |col: Option<usize>| {
                    col.and_then(|c| record.get(c))
                        .filter(|v| !v.is_empty())
                        .map(str::to_string)
                };
                entries.push(RawEntry {
                    position: format!("line {line}"),
                    device: field(Some(device_col)).unwrap_or_default(),
                    label: field(label_col),
                    profile: field(profile_col),
                    expires: field(expires_col),
                });
            }
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                errors.push(ImportProblem {
                    position: format!("line {line}"),
                    reason: format!("malformed CSV row: {}", csv_error_kind(&e)),
                });
            }
        }
    }
    if errors.is_empty() {
        Ok(entries)
    } else {
        Err(ImportError::Rejected(errors))
    }
}

fn csv_error_kind(err: &csv::Error) -> String {
    match err.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => {
            format!("{len} fields, the header has {expected_len}")
        }
        _ => err.to_string(),
    }
}

fn read_json(text: &str) -> Result<Vec<RawEntry>, ImportError> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum JsonEntry {
        Uri(String),
        Object {
            #[serde(alias = "dpp_uri", alias = "key", alias = "device")]
            uri: String,
            label: Option<String>,
            profile: Option<String>,
            expires: Option<String>,
        },
    }
    let values: Vec<serde_json::Value> = serde_json::from_str(text).map_err(|e| {
        ImportError::Format(format!(
            "import file: not a valid JSON array (line {}, column {}): {e}; nothing was imported",
            e.line(),
            e.column()
        ))
    })?;
    let mut entries = Vec::new();
    let mut errors = Vec::new();
    for (i, value) in values.into_iter().enumerate() {
        let position = format!("entry {}", i + 1);
        match serde_json::from_value::<JsonEntry>(value) {
            Ok(JsonEntry::Uri(device)) => entries.push(RawEntry {
                position,
                device,
                label: None,
                profile: None,
                expires: None,
            }),
            Ok(JsonEntry::Object { uri, label, profile, expires }) => entries.push(RawEntry {
                position,
                device: uri,
                label,
                profile,
                expires,
            }),
            Err(_) => errors.push(ImportProblem {
                position,
                reason: "expected a URI string or an object with \"uri\" (and optional \"label\", \"profile\", \"expires\")".into(),
            }),
        }
    }
    if errors.is_empty() {
        Ok(entries)
    } else {
        Err(ImportError::Rejected(errors))
    }
}

/// The error for an import with bad entries.
fn rejected(problems: &[ImportProblem]) -> AppError {
    AppError::Usage(format!(
        "import rejected, nothing was imported (the import is all or nothing); {} problem(s):\n{}",
        problems.len(),
        list_problems(problems)
    ))
}

/// One indented `position: reason` line per problem.
fn list_problems(problems: &[ImportProblem]) -> String {
    problems
        .iter()
        .map(|p| format!("  {}: {}", p.position, p.reason))
        .collect::<Vec<_>>()
        .join("\n")
}

#[derive(Serialize)]
struct ImportReport {
    format: &'static str,
    imported: usize,
}

/// Checks an import file (format, every entry, duplicates within it) and parses it into
/// devices; `default_profile` is for entries that name none. Nothing is written.
pub fn plan_import(text: &str, default_profile: Option<&str>) -> Result<ImportPlan, ImportError> {
    let (format, raw) = read_entries(text)?;
    if raw.is_empty() {
        return Err(ImportError::Empty);
    }
    let mut problems = Vec::new();
    let mut devices = Vec::with_capacity(raw.len());
    let mut positions = Vec::with_capacity(raw.len());
    let mut first_seen: HashMap<KeyHash, &str> = HashMap::new();
    let mut labels_seen: HashMap<String, &str> = HashMap::new();
    for entry in &raw {
        let problem = |reason: String| ImportProblem {
            position: entry.position.clone(),
            reason,
        };
        let parsed = match parse_device(&entry.device) {
            Ok(parsed) => parsed,
            Err(reason) => {
                problems.push(problem(reason));
                continue;
            }
        };
        let expires_at_ms = match entry
            .expires
            .as_deref()
            .map(|t| parse_when(t, Direction::Future, "expires"))
        {
            Some(Err(e)) => {
                problems.push(problem(e.to_string()));
                continue;
            }
            Some(Ok(ms)) => Some(ms),
            None => None,
        };
        let key_hash = parsed.key.key_hash();
        if let Some(first) = first_seen.insert(key_hash, &entry.position) {
            problems.push(problem(format!("duplicate: same device key as {first}")));
            continue;
        }
        let mut new = NewDevice::from_public_key(&parsed.key);
        new.label = entry.label.clone().or(parsed.info);
        if let Some(label) = &new.label
            && let Some(first) = labels_seen.insert(label.clone(), &entry.position)
        {
            problems.push(problem(format!(
                "duplicate: label {label:?} already used by {first}"
            )));
            continue;
        }
        new.profile = entry
            .profile
            .clone()
            .or_else(|| default_profile.map(str::to_string));
        new.expires_at_ms = expires_at_ms;
        positions.push(entry.position.clone());
        devices.push(new);
    }
    if !problems.is_empty() {
        return Err(ImportError::Rejected(problems));
    }
    Ok(ImportPlan {
        format,
        positions,
        devices,
    })
}

/// Imports a file all or nothing ([`plan_import`], then one registry transaction); returns
/// its format and how many devices were added.
pub async fn import_text(
    registry: &Registry,
    text: &str,
    default_profile: Option<&str>,
) -> Result<(&'static str, usize), ImportError> {
    let plan = plan_import(text, default_profile)?;
    match registry.allow_many(plan.devices).await {
        Ok(imported) => Ok((plan.format, imported)),
        Err(StoreError::ImportRejected(conflicts)) => Err(ImportError::Conflicts(
            conflicts
                .iter()
                .map(|c| ImportProblem {
                    position: plan
                        .positions
                        .get(c.index)
                        .cloned()
                        .unwrap_or_else(|| "?".into()),
                    reason: c.reason.clone(),
                })
                .collect(),
        )),
        Err(e) => Err(ImportError::Store(e)),
    }
}

async fn import(args: ImportArgs, ctx: &Context, registry: &Registry) -> Result<(), AppError> {
    let text = if args.file.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())
            .map_err(|e| AppError::io("cannot read stdin", e))?
    } else {
        std::fs::read_to_string(&args.file)
            .map_err(|e| AppError::io(format_args!("cannot read {}", args.file.display()), e))?
    };
    let source = args.file.display().to_string();
    let (format, imported) = import_text(registry, &text, args.profile.as_deref())
        .await
        .map_err(|e| e.into_app_error(&source))?;
    if ctx.json {
        return print_json(&ImportReport { format, imported });
    }
    write_stdout(&format!(
        "imported {imported} device(s) from {} ({format} format)",
        args.file.display()
    ))
}

async fn list(args: ListArgs, ctx: &Context, registry: &Registry) -> Result<(), AppError> {
    let filter = DeviceFilter {
        state: args.state,
        ..DeviceFilter::default()
    };
    let devices = registry.list_devices(&filter).await?;
    let views: Vec<EntryView> = devices.iter().map(EntryView::of).collect();
    if ctx.json {
        return print_json(&views);
    }
    let rows: Vec<Vec<String>> = views
        .iter()
        .map(|v| {
            vec![
                v.key_hash.chars().take(16).collect(),
                v.suite.to_string(),
                v.label.clone().unwrap_or_else(|| "-".into()),
                v.profile.clone(),
                match &v.failure {
                    Some(reason) => format!("{} ({reason})", v.state),
                    None => v.state.clone(),
                },
                match (&v.last_event, &v.last_event_at) {
                    (Some(event), Some(at)) => format!("{event} {at}"),
                    (Some(event), None) => event.clone(),
                    _ => "-".into(),
                },
            ]
        })
        .collect();
    print_table(
        &[
            "KEY HASH",
            "SUITE",
            "LABEL",
            "PROFILE",
            "STATE",
            "LAST EVENT",
        ],
        &rows,
    )?;
    if !ctx.json && views.is_empty() {
        write_stdout(
            "(no devices; add some with `zerotouch allow add` or `zerotouch allow import`)",
        )?;
    }
    Ok(())
}

/// Finds one device by label or key-hash prefix; an ambiguous prefix lists the candidates.
pub async fn find_device(registry: &Registry, what: &str) -> Result<Device, AppError> {
    match registry.find_device(what).await {
        Ok(device) => Ok(device),
        Err(StoreError::AmbiguousPrefix { prefix, matches }) => {
            let prefix_lc = prefix.trim().to_ascii_lowercase();
            let candidates: Vec<String> = registry
                .list_devices(&DeviceFilter::default())
                .await?
                .iter()
                .filter(|d| d.key_hash.to_string().starts_with(&prefix_lc))
                .take(20)
                .map(|d| format!("  {}  {}", d.key_hash, d.label.as_deref().unwrap_or("-")))
                .collect();
            Err(AppError::Conflict(format!(
                "{prefix:?} matches {matches} devices; give more hex digits or the label. Candidates:\n{}",
                candidates.join("\n")
            )))
        }
        Err(StoreError::DeviceNotFound(_))
            if what.len() < 4
                && !what.is_empty()
                && what.bytes().all(|b| b.is_ascii_hexdigit()) =>
        {
            Err(AppError::NotFound(format!(
                "no device is labelled {what:?}, and a key-hash prefix needs at least 4 hex digits: give more digits (`zerotouch allow list` shows the key hashes) or the label"
            )))
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Serialize)]
struct RevokeReport {
    key_hash: String,
    label: Option<String>,
    revoked: bool,
}

async fn revoke(args: RevokeArgs, ctx: &Context, registry: &Registry) -> Result<(), AppError> {
    let device = find_device(registry, &args.device).await?;
    let changed = registry.revoke(&device.key_hash).await?;
    if ctx.json {
        return print_json(&RevokeReport {
            key_hash: device.key_hash.to_string(),
            label: device.label,
            revoked: changed,
        });
    }
    let name = device.label.as_deref().unwrap_or("-");
    if changed {
        write_stdout(&format!(
            "revoked {} ({name}); it is refused from now on, and leaves the next `export hostapd-psk`; `zerotouch allow add` with its URI or key allows it again",
            device.key_hash
        ))
    } else {
        write_stdout(&format!(
            "{} ({name}) was already revoked; nothing changed",
            device.key_hash
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_in_every_accepted_form() {
        let id = crate::identity::generate(SuiteId::Ed25519).expect("gen");
        let key = id.public_key();
        let mut uri = String::new();
        BootstrapUri::for_key(key).write(&mut uri).expect("uri");
        assert_eq!(parse_device(&uri).expect("uri").key, key);
        assert_eq!(
            parse_device(&Base64::encode_string(key.as_wire()))
                .expect("raw b64")
                .key,
            key
        );
        assert_eq!(
            parse_device(&Base64::encode_string(&key.to_spki_der()))
                .expect("spki b64")
                .key,
            key
        );
        assert_eq!(
            parse_device(&hex::encode(key.to_spki_der()))
                .expect("spki hex")
                .key,
            key
        );
        assert_eq!(
            parse_device(&format!("ed25519:{}", hex::encode(key.as_wire())))
                .expect("prefixed")
                .key,
            key
        );
        let p = crate::identity::generate(SuiteId::P256)
            .expect("gen")
            .public_key();
        assert_eq!(
            parse_device(&hex::encode(p.as_wire()))
                .expect("p256 raw hex")
                .key,
            p
        );
    }

    #[test]
    fn bad_devices_get_reasons() {
        assert!(
            parse_device(&"ab".repeat(32))
                .expect_err("hash")
                .contains("key hash alone")
        );
        assert!(
            parse_device("DPP:K:!!;;")
                .expect_err("uri")
                .starts_with("invalid DPP URI")
        );
        assert!(parse_device("hello world").is_err());
        assert!(
            parse_device("rsa:00")
                .expect_err("prefix")
                .contains("unknown key prefix")
        );
    }

    #[test]
    fn import_formats_are_detected() {
        let (f, e) = read_entries("uri,label\nDPP:K:x;;,a\n").expect("csv");
        assert_eq!((f, e.len(), e[0].position.as_str()), ("CSV", 1, "line 2"));
        let (f, e) = read_entries("[\"DPP:K:x;;\", {\"uri\": \"DPP:K:y;;\", \"label\": \"b\"}]")
            .expect("json");
        assert_eq!((f, e.len(), e[1].label.as_deref()), ("JSON", 2, Some("b")));
        let (f, e) = read_entries("# comment\n\nDPP:K:x;;\nDPP:K:y;;\n").expect("lines");
        assert_eq!(
            (f, e.len(), e[1].position.as_str()),
            ("one-per-line", 2, "line 4")
        );
    }
}
