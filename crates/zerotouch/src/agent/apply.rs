//! Applying a received configuration on a Linux device: a wpa_supplicant.conf, NetworkManager
//! keyfiles, or a command that gets the credentials in its environment, plus the application
//! settings as JSON.
//!
//! Every file is written atomically (temporary file in the same directory, fsync, rename,
//! fsync of the directory) with mode 0600, because it holds Wi-Fi secrets and a half-written
//! file after a power cut would leave the device with no network at all.

use std::fmt::Write as _;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;

use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};
use zerotouch_proto::config::{ConfigView, Credential, Security};

/// Where and how the agent applies a received configuration (`--apply`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApplyTarget {
    /// `wpa-supplicant:PATH`: write a complete wpa_supplicant.conf to PATH.
    WpaSupplicant(PathBuf),
    /// `networkmanager:DIR`: write one NetworkManager keyfile per network into DIR.
    NetworkManager(PathBuf),
    /// `exec:CMD`: run CMD (through `sh -c`) with the credentials in environment variables.
    Exec(String),
    /// `none`: apply nothing (settings.json is still written).
    None,
}

impl FromStr for ApplyTarget {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "none" {
            return Ok(Self::None);
        }
        let (kind, rest) = s.split_once(':').ok_or_else(|| {
            format!("`{s}` is not an apply target: use wpa-supplicant:PATH, networkmanager:DIR, exec:CMD or none")
        })?;
        if rest.is_empty() {
            return Err(format!("`{kind}:` needs a value after the colon"));
        }
        match kind {
            "wpa-supplicant" => Ok(Self::WpaSupplicant(PathBuf::from(rest))),
            "networkmanager" => Ok(Self::NetworkManager(PathBuf::from(rest))),
            "exec" => Ok(Self::Exec(rest.to_owned())),
            other => Err(format!(
                "unknown apply target `{other}`: use wpa-supplicant:PATH, networkmanager:DIR, exec:CMD or none"
            )),
        }
    }
}

impl ApplyTarget {
    /// The start-up check: the file's directory (or the keyfile directory) exists and a file
    /// can be created in it; an `exec:` program exists and is executable. Not found: exit 3;
    /// not usable: exit 1 or 2, naming the path and what to do.
    pub fn check(&self) -> Result<(), crate::error::AppError> {
        use crate::error::AppError;
        let dir = match self {
            Self::None => return Ok(()),
            Self::Exec(command) => return super::join::check_command(command, "--apply"),
            Self::WpaSupplicant(path) => {
                if path.is_dir() {
                    return Err(AppError::Usage(format!(
                        "--apply wpa-supplicant:{}: that is a directory; give the file to write (e.g. {}/wpa_supplicant-wlan0.conf)",
                        path.display(),
                        path.display()
                    )));
                }
                match path.parent() {
                    Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
                    _ => PathBuf::from("."),
                }
            }
            Self::NetworkManager(dir) => dir.clone(),
        };
        match std::fs::metadata(&dir) {
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Err(AppError::NotFound(format!(
                    "--apply: the directory {} does not exist: create it, or correct the path",
                    dir.display()
                )));
            }
            Err(err) => {
                return Err(AppError::io(
                    format_args!("--apply: cannot use the directory {}", dir.display()),
                    err,
                ));
            }
            Ok(meta) if !meta.is_dir() => {
                return Err(AppError::Usage(format!(
                    "--apply: {} is not a directory",
                    dir.display()
                )));
            }
            Ok(_) => {}
        }
        // The only honest test of "writable" (root, read-only mounts, ACLs): create a file.
        tempfile::Builder::new()
            .prefix(".zerotouch-check-")
            .tempfile_in(&dir)
            .map(drop)
            .map_err(|err| {
                AppError::Failed(format!(
                    "--apply: cannot create files in {}: {err}; run the agent as a user that may write there, or choose another path",
                    dir.display()
                ))
            })
    }
}

/// One network of a received configuration, owned (the protocol's view borrows the enrollee).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkConfig {
    /// SSID bytes (not necessarily UTF-8).
    pub ssid: Vec<u8>,
    /// Security mode.
    pub security: Security,
    /// The secret.
    pub credential: NetworkCredential,
    /// Optional BSSID hint.
    pub bssid: Option<[u8; 6]>,
    /// Optional channel hint.
    pub channel: Option<u8>,
}

/// The secret of a network, zeroized on drop. `Debug` never prints it.
#[derive(Clone, PartialEq, Eq)]
pub enum NetworkCredential {
    /// Open network.
    None,
    /// WPA passphrase (8..=63 printable ASCII, checked by the protocol core).
    Passphrase(Zeroizing<String>),
    /// Raw 256-bit PSK.
    RawPsk(Zeroizing<[u8; 32]>),
}

impl std::fmt::Debug for NetworkCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::None => "None",
            Self::Passphrase(_) => "Passphrase(<redacted>)",
            Self::RawPsk(_) => "RawPsk(<redacted>)",
        })
    }
}

impl NetworkCredential {
    /// The secret as wpa_supplicant and NetworkManager spell it: the passphrase, or 64 hex digits.
    fn as_text(&self) -> Zeroizing<String> {
        match self {
            Self::None => Zeroizing::new(String::new()),
            Self::Passphrase(p) => p.clone(),
            Self::RawPsk(k) => Zeroizing::new(hex::encode(k.as_slice())),
        }
    }
}

/// A received configuration: networks in preference order and application settings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeliveredConfig {
    /// Networks, most preferred first.
    pub networks: Vec<NetworkConfig>,
    /// Application settings in order.
    pub settings: Vec<(String, Vec<u8>)>,
}

impl DeliveredConfig {
    /// Copies a validated configuration view out of the enrollee.
    pub fn from_view(view: &ConfigView<'_>) -> Self {
        let networks = view
            .networks()
            .map(|net| NetworkConfig {
                ssid: net.ssid.to_vec(),
                security: net.security,
                credential: match net.credential {
                    Credential::None => NetworkCredential::None,
                    Credential::Passphrase(p) => {
                        NetworkCredential::Passphrase(Zeroizing::new(p.to_owned()))
                    }
                    Credential::RawPsk(k) => NetworkCredential::RawPsk(Zeroizing::new(*k)),
                },
                bssid: net.bssid,
                channel: net.channel,
            })
            .collect();
        let settings = view
            .settings()
            .map(|(k, v)| (k.to_owned(), v.to_vec()))
            .collect();
        Self { networks, settings }
    }

    /// The settings as a JSON object: UTF-8 values as strings, others as `{"hex": ".."}`.
    pub fn settings_json(&self) -> serde_json::Value {
        let mut map = serde_json::Map::new();
        for (key, value) in &self.settings {
            let json = match std::str::from_utf8(value) {
                Ok(text) => serde_json::Value::String(text.to_owned()),
                Err(_) => serde_json::json!({ "hex": hex::encode(value) }),
            };
            map.insert(key.clone(), json);
        }
        serde_json::Value::Object(map)
    }
}

/// Why applying a configuration failed.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// A file could not be written.
    #[error("cannot write {path}: {source} (check that the directory exists and is writable)")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The apply command could not be started.
    #[error("cannot run apply command `{command}`: {source}")]
    Spawn {
        /// The command.
        command: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The apply command ran and failed.
    #[error("apply command `{command}` failed with {status}")]
    CommandFailed {
        /// The command.
        command: String,
        /// Its exit status.
        status: std::process::ExitStatus,
    },
    /// The configuration cannot be expressed in the chosen format.
    #[error("the configuration cannot be applied: {0}")]
    Unsupported(String),
}

/// Writes `contents` to `path` atomically with mode 0600: a temporary file in the same
/// directory, fsync, rename over the target, fsync of the directory.
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<(), std::io::Error> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = path.file_name().ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "path has no file name")
    })?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(file_name);
    tmp_name.push(format!(".tmp-{}", std::process::id()));
    let tmp_path = dir.join(tmp_name);
    let result = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp_path)?;
        // The mode given to open() is masked by the umask and ignored for an existing file.
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        file.write_all(contents)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp_path, path)?;
        std::fs::File::open(&dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp_path);
    }
    result
}

/// Files changed by [`apply`], with what they held before, so that a configuration that
/// did not join can be taken back (the device then keeps what it had, e.g. the old network
/// of a device being reconfigured).
///
/// Only [`Applied::commit`] keeps the changes: dropped any other way (an aborted task, an
/// early return, a panic) it restores the previous files, so no path leaves credentials of
/// an attempt that did not end in a commit on disk.
#[derive(Default)]
#[must_use = "dropping it restores the previous files; call commit() to keep the changes"]
pub struct Applied {
    previous: Vec<(PathBuf, Option<Zeroizing<Vec<u8>>>)>,
}

impl Drop for Applied {
    fn drop(&mut self) {
        if !self.previous.is_empty() {
            tracing::warn!(
                "a configuration was dropped before its commit: restoring the previous files"
            );
            self.restore();
        }
    }
}

impl Applied {
    fn write(&mut self, path: &Path, contents: &[u8]) -> Result<(), ApplyError> {
        self.remember(path)?;
        write_atomic(path, contents).map_err(|source| ApplyError::Write {
            path: path.to_path_buf(),
            source,
        })
    }

    fn remove(&mut self, path: &Path) -> Result<(), ApplyError> {
        self.remember(path)?;
        std::fs::remove_file(path).map_err(|source| ApplyError::Write {
            path: path.to_path_buf(),
            source,
        })
    }

    fn remember(&mut self, path: &Path) -> Result<(), ApplyError> {
        if self.previous.iter().any(|(p, _)| p == path) {
            return Ok(());
        }
        let before = match std::fs::read(path) {
            Ok(bytes) => Some(Zeroizing::new(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(source) => {
                return Err(ApplyError::Write {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        self.previous.push((path.to_path_buf(), before));
        Ok(())
    }

    /// The files changed (and, where they existed, their previous contents).
    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        self.previous.iter().map(|(path, _)| path.as_path())
    }

    /// Keeps the changes: the provisioning is committed.
    pub fn commit(mut self) {
        self.previous.clear();
    }

    /// Puts every changed file back as it was (best effort; failures are logged).
    pub fn rollback(mut self) {
        self.restore();
    }

    fn restore(&mut self) {
        for (path, before) in std::mem::take(&mut self.previous).into_iter().rev() {
            let result = match before {
                Some(bytes) => write_atomic(&path, &bytes),
                None => std::fs::remove_file(&path).or_else(|e| {
                    if e.kind() == std::io::ErrorKind::NotFound {
                        Ok(())
                    } else {
                        Err(e)
                    }
                }),
            };
            if let Err(err) = result {
                tracing::error!(path = %path.display(), %err, "could not restore the file after a failed join");
            }
        }
    }
}

/// Applies `config` to `target`, and writes the application settings to `settings_path`.
/// On error, whatever was already written is rolled back.
pub fn apply(
    target: &ApplyTarget,
    config: &DeliveredConfig,
    settings_path: &Path,
) -> Result<Applied, ApplyError> {
    let mut applied = Applied::default();
    match apply_into(&mut applied, target, config, settings_path) {
        Ok(()) => Ok(applied),
        Err(err) => {
            applied.rollback();
            Err(err)
        }
    }
}

fn apply_into(
    applied: &mut Applied,
    target: &ApplyTarget,
    config: &DeliveredConfig,
    settings_path: &Path,
) -> Result<(), ApplyError> {
    let settings = serde_json::to_vec_pretty(&config.settings_json()).map_err(|e| {
        ApplyError::Unsupported(format!("settings are not representable as JSON: {e}"))
    })?;
    applied.write(settings_path, &settings)?;
    match target {
        ApplyTarget::WpaSupplicant(path) => {
            let text = wpa_supplicant_conf(config)?;
            applied.write(path, text.as_bytes())
        }
        ApplyTarget::NetworkManager(dir) => write_networkmanager(applied, dir, config),
        ApplyTarget::Exec(command) => run_apply_command(command, config),
        ApplyTarget::None => Ok(()),
    }
}

/// 2.4 GHz channel number to centre frequency in MHz.
fn channel_frequency(channel: u8) -> Option<u16> {
    match channel {
        1..=13 => Some(2407 + 5 * u16::from(channel)),
        14 => Some(2484),
        _ => None,
    }
}

fn format_bssid(bssid: &[u8; 6]) -> String {
    bssid
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// True if wpa_supplicant can read `bytes` as a quoted string: printable ASCII, no quote.
fn quotable(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .all(|&b| (0x20..0x7f).contains(&b) && b != b'"')
}

/// Renders a complete wpa_supplicant.conf: one network block per network, the first one with
/// the highest priority.
pub fn wpa_supplicant_conf(config: &DeliveredConfig) -> Result<Zeroizing<String>, ApplyError> {
    if config.networks.is_empty() {
        return Err(ApplyError::Unsupported(
            "no network in the configuration".into(),
        ));
    }
    let mut out = Zeroizing::new(String::from(
        "# Written by zerotouch enrollee agent; rewritten on every provisioning.\n",
    ));
    let count = config.networks.len();
    for (index, net) in config.networks.iter().enumerate() {
        let out = &mut *out;
        out.push_str("network={\n");
        if quotable(&net.ssid) {
            let _ = writeln!(out, "\tssid=\"{}\"", String::from_utf8_lossy(&net.ssid));
        } else {
            let _ = writeln!(out, "\tssid={}", hex::encode(&net.ssid));
        }
        let secret = net.credential.as_text();
        match (net.security, &net.credential) {
            (Security::Open, _) => out.push_str("\tkey_mgmt=NONE\n"),
            (Security::Wpa2Psk, NetworkCredential::Passphrase(_)) => {
                out.push_str("\tkey_mgmt=WPA-PSK\n");
                let _ = writeln!(out, "\tpsk=\"{}\"", secret.as_str());
            }
            (Security::Wpa2Psk, NetworkCredential::RawPsk(_)) => {
                out.push_str("\tkey_mgmt=WPA-PSK\n");
                let _ = writeln!(out, "\tpsk={}", secret.as_str());
            }
            (Security::Wpa3Sae, NetworkCredential::Passphrase(_)) => {
                out.push_str("\tkey_mgmt=SAE\n\tieee80211w=2\n");
                let _ = writeln!(out, "\tsae_password=\"{}\"", secret.as_str());
            }
            (security, _) => {
                return Err(ApplyError::Unsupported(format!(
                    "network {} has security {security:?} with a credential it cannot use",
                    index + 1
                )));
            }
        }
        if let NetworkCredential::Passphrase(p) = &net.credential
            && !quotable(p.as_bytes())
        {
            return Err(ApplyError::Unsupported(format!(
                "the passphrase of network {} contains a character wpa_supplicant cannot quote",
                index + 1
            )));
        }
        if let Some(bssid) = &net.bssid {
            let _ = writeln!(out, "\tbssid={}", format_bssid(bssid));
        }
        if let Some(freq) = net.channel.and_then(channel_frequency) {
            let _ = writeln!(out, "\tscan_freq={freq}");
        }
        let _ = writeln!(out, "\tpriority={}", count - index);
        out.push_str("}\n");
    }
    Ok(out)
}

/// Escapes a GKeyFile string value (NetworkManager keyfiles are GKeyFiles).
fn keyfile_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for (i, c) in value.chars().enumerate() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            ' ' if i == 0 => out.push_str("\\s"),
            c => out.push(c),
        }
    }
    out
}

/// Prefix of every keyfile the agent writes, so that stale ones can be removed.
const NM_FILE_PREFIX: &str = "zerotouch-";

/// The NetworkManager connection name of network `index`.
fn nm_connection_name(index: usize, ssid: &[u8]) -> String {
    let safe: String = String::from_utf8_lossy(ssid)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{NM_FILE_PREFIX}{}-{safe}", index + 1)
}

/// A stable UUID (v4 layout) derived from the connection name, so rewriting a keyfile for
/// the same network keeps NetworkManager's identity for it.
fn nm_uuid(name: &str) -> String {
    let digest = Sha256::digest(name.as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Renders one NetworkManager keyfile.
pub fn networkmanager_keyfile(
    index: usize,
    count: usize,
    net: &NetworkConfig,
) -> Result<(String, Zeroizing<String>), ApplyError> {
    let name = nm_connection_name(index, &net.ssid);
    let mut out = Zeroizing::new(String::new());
    let o = &mut *out;
    let _ = writeln!(o, "# Written by zerotouch enrollee agent.\n[connection]");
    let _ = writeln!(o, "id={}", keyfile_escape(&name));
    let _ = writeln!(o, "uuid={}", nm_uuid(&name));
    let _ = writeln!(o, "type=wifi\nautoconnect=true");
    let _ = writeln!(o, "autoconnect-priority={}", count - index);
    let _ = writeln!(o, "\n[wifi]\nmode=infrastructure");
    // Plain SSIDs as a string; anything else as NetworkManager's byte list (`1;2;3;`).
    if net
        .ssid
        .iter()
        .all(|&b| b.is_ascii_alphanumeric() || b"-_. ".contains(&b))
        && net.ssid.first() != Some(&b' ')
    {
        let _ = writeln!(o, "ssid={}", String::from_utf8_lossy(&net.ssid));
    } else {
        let list: String = net.ssid.iter().map(|b| format!("{b};")).collect();
        let _ = writeln!(o, "ssid={list}");
    }
    if let Some(bssid) = &net.bssid {
        let _ = writeln!(o, "bssid={}", format_bssid(bssid).to_uppercase());
    }
    if let Some(channel) = net.channel.filter(|c| channel_frequency(*c).is_some()) {
        let _ = writeln!(o, "band=bg\nchannel={channel}");
    }
    match (net.security, &net.credential) {
        (Security::Open, _) => {}
        (Security::Wpa2Psk, NetworkCredential::Passphrase(_) | NetworkCredential::RawPsk(_)) => {
            let _ = writeln!(o, "\n[wifi-security]\nkey-mgmt=wpa-psk");
            let _ = writeln!(o, "psk={}", keyfile_escape(&net.credential.as_text()));
        }
        (Security::Wpa3Sae, NetworkCredential::Passphrase(_)) => {
            let _ = writeln!(o, "\n[wifi-security]\nkey-mgmt=sae\npmf=3");
            let _ = writeln!(o, "psk={}", keyfile_escape(&net.credential.as_text()));
        }
        (security, _) => {
            return Err(ApplyError::Unsupported(format!(
                "network {} has security {security:?} with a credential it cannot use",
                index + 1
            )));
        }
    }
    let _ = writeln!(o, "\n[ipv4]\nmethod=auto\n\n[ipv6]\nmethod=auto");
    Ok((name, out))
}

fn write_networkmanager(
    applied: &mut Applied,
    dir: &Path,
    config: &DeliveredConfig,
) -> Result<(), ApplyError> {
    let count = config.networks.len();
    let mut written = Vec::with_capacity(count);
    for (index, net) in config.networks.iter().enumerate() {
        let (name, text) = networkmanager_keyfile(index, count, net)?;
        let file = format!("{name}.nmconnection");
        applied.write(&dir.join(&file), text.as_bytes())?;
        written.push(file);
    }
    // Remove keyfiles of an earlier provisioning that named other networks.
    let entries = std::fs::read_dir(dir).map_err(|source| ApplyError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(NM_FILE_PREFIX)
            && name.ends_with(".nmconnection")
            && !written.contains(&name)
        {
            applied.remove(&entry.path())?;
        }
    }
    Ok(())
}

/// Environment variables handed to an `exec:` apply command.
pub fn apply_environment(config: &DeliveredConfig) -> Vec<(String, Zeroizing<String>)> {
    let mut env = Vec::new();
    let security_name = |s: Security| match s {
        Security::Open => "open",
        Security::Wpa2Psk => "wpa2-psk",
        Security::Wpa3Sae => "wpa3-sae",
    };
    let mut networks = Vec::new();
    for net in &config.networks {
        networks.push(serde_json::json!({
            "ssid": String::from_utf8_lossy(&net.ssid),
            "ssid_hex": hex::encode(&net.ssid),
            "security": security_name(net.security),
            "psk": net.credential.as_text().as_str(),
            "bssid": net.bssid.as_ref().map(format_bssid),
            "channel": net.channel,
        }));
    }
    if let Some(first) = config.networks.first() {
        env.push((
            "ZEROTOUCH_SSID".into(),
            Zeroizing::new(String::from_utf8_lossy(&first.ssid).into_owned()),
        ));
        env.push((
            "ZEROTOUCH_SSID_HEX".into(),
            Zeroizing::new(hex::encode(&first.ssid)),
        ));
        env.push((
            "ZEROTOUCH_SECURITY".into(),
            Zeroizing::new(security_name(first.security).into()),
        ));
        env.push(("ZEROTOUCH_PSK".into(), first.credential.as_text()));
        if let Some(bssid) = &first.bssid {
            env.push((
                "ZEROTOUCH_BSSID".into(),
                Zeroizing::new(format_bssid(bssid)),
            ));
        }
        if let Some(channel) = first.channel {
            env.push((
                "ZEROTOUCH_CHANNEL".into(),
                Zeroizing::new(channel.to_string()),
            ));
        }
    }
    env.push((
        "ZEROTOUCH_NETWORK_COUNT".into(),
        Zeroizing::new(config.networks.len().to_string()),
    ));
    let mut networks_json = serde_json::Value::Array(networks).to_string();
    env.push((
        "ZEROTOUCH_NETWORKS_JSON".into(),
        Zeroizing::new(networks_json.clone()),
    ));
    networks_json.zeroize();
    env.push((
        "ZEROTOUCH_SETTINGS_JSON".into(),
        Zeroizing::new(config.settings_json().to_string()),
    ));
    env
}

fn run_apply_command(command: &str, config: &DeliveredConfig) -> Result<(), ApplyError> {
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(command);
    for (name, value) in apply_environment(config) {
        cmd.env(name, value.as_str());
    }
    let status = cmd.status().map_err(|source| ApplyError::Spawn {
        command: command.to_owned(),
        source,
    })?;
    if status.success() {
        Ok(())
    } else {
        Err(ApplyError::CommandFailed {
            command: command.to_owned(),
            status,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> DeliveredConfig {
        DeliveredConfig {
            networks: vec![
                NetworkConfig {
                    ssid: b"plant-floor".to_vec(),
                    security: Security::Wpa2Psk,
                    credential: NetworkCredential::Passphrase(Zeroizing::new(
                        "correct horse".into(),
                    )),
                    bssid: Some([0, 0x11, 0x22, 0x33, 0x44, 0x55]),
                    channel: Some(6),
                },
                NetworkConfig {
                    ssid: vec![0xff, b'x', b'"'],
                    security: Security::Wpa3Sae,
                    credential: NetworkCredential::Passphrase(Zeroizing::new(
                        "sae-secret-1".into(),
                    )),
                    bssid: None,
                    channel: None,
                },
                NetworkConfig {
                    ssid: b"raw".to_vec(),
                    security: Security::Wpa2Psk,
                    credential: NetworkCredential::RawPsk(Zeroizing::new([0xab; 32])),
                    bssid: None,
                    channel: Some(14),
                },
                NetworkConfig {
                    ssid: b"guest".to_vec(),
                    security: Security::Open,
                    credential: NetworkCredential::None,
                    bssid: None,
                    channel: None,
                },
            ],
            settings: vec![
                ("mqtt.host".into(), b"broker.local".to_vec()),
                ("blob".into(), vec![0xff, 0]),
            ],
        }
    }

    #[test]
    fn apply_target_parses_every_form_and_rejects_others() {
        assert_eq!("none".parse::<ApplyTarget>(), Ok(ApplyTarget::None));
        assert_eq!(
            "wpa-supplicant:/etc/w.conf".parse::<ApplyTarget>(),
            Ok(ApplyTarget::WpaSupplicant("/etc/w.conf".into()))
        );
        assert_eq!(
            "exec:nmcli x".parse::<ApplyTarget>(),
            Ok(ApplyTarget::Exec("nmcli x".into()))
        );
        assert!("exec:".parse::<ApplyTarget>().is_err());
        assert!("ifupdown:/x".parse::<ApplyTarget>().is_err());
        assert!("wpa".parse::<ApplyTarget>().is_err());
    }

    #[test]
    fn wpa_supplicant_conf_quotes_or_hexes_and_orders_priorities() {
        let text = wpa_supplicant_conf(&sample()).expect("renders");
        assert!(text.contains("ssid=\"plant-floor\"\n\tkey_mgmt=WPA-PSK\n\tpsk=\"correct horse\""));
        assert!(text.contains("bssid=00:11:22:33:44:55"));
        assert!(text.contains("scan_freq=2437"));
        assert!(text.contains("priority=4"));
        assert!(text.contains(
            "ssid=ff7822\n\tkey_mgmt=SAE\n\tieee80211w=2\n\tsae_password=\"sae-secret-1\""
        ));
        assert!(text.contains(&format!("psk={}", "ab".repeat(32))));
        assert!(text.contains("scan_freq=2484"));
        assert!(text.contains("ssid=\"guest\"\n\tkey_mgmt=NONE"));
        assert!(text.contains("priority=1"));
    }

    #[test]
    fn keyfiles_use_byte_lists_for_odd_ssids_and_are_stable() {
        let config = sample();
        let (name, text) = networkmanager_keyfile(1, 4, &config.networks[1]).expect("renders");
        assert!(text.contains("ssid=255;120;34;"));
        assert!(text.contains("key-mgmt=sae"));
        let (name2, text2) = networkmanager_keyfile(1, 4, &config.networks[1]).expect("renders");
        assert_eq!((name, text), (name2, text2));
        let (_, open) = networkmanager_keyfile(3, 4, &config.networks[3]).expect("renders");
        assert!(!open.contains("[wifi-security]"));
        assert_eq!(keyfile_escape(" a\\b"), "\\sa\\\\b");
    }

    #[test]
    fn atomic_write_replaces_content_with_mode_0600() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("w.conf");
        std::fs::write(&path, "old").expect("seed");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        write_atomic(&path, b"new").expect("write");
        assert_eq!(std::fs::read(&path).expect("read"), b"new");
        assert_eq!(
            std::fs::metadata(&path).expect("stat").permissions().mode() & 0o777,
            0o600
        );
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .expect("ls")
            .flatten()
            .collect();
        assert_eq!(leftovers.len(), 1, "no temporary file left behind");
    }

    #[test]
    fn rollback_restores_previous_files_and_removes_new_ones() {
        let dir = tempfile::tempdir().expect("tempdir");
        let conf = dir.path().join("wpa_supplicant.conf");
        let settings = dir.path().join("settings.json");
        std::fs::write(&conf, "network={\n\tssid=\"old\"\n\tkey_mgmt=NONE\n}\n")
            .expect("old config");
        let before = std::fs::read(&conf).expect("read");
        let applied = apply(
            &ApplyTarget::WpaSupplicant(conf.clone()),
            &sample(),
            &settings,
        )
        .expect("applies");
        assert!(
            std::fs::read_to_string(&conf)
                .expect("read")
                .contains("plant-floor")
        );
        assert!(settings.exists());
        applied.rollback();
        assert_eq!(
            std::fs::read(&conf).expect("read"),
            before,
            "the old network is back"
        );
        assert!(
            !settings.exists(),
            "a file that did not exist is removed again"
        );

        let nm = dir.path().join("nm");
        std::fs::create_dir(&nm).expect("nm dir");
        std::fs::write(nm.join("zerotouch-9-stale.nmconnection"), "stale").expect("stale keyfile");
        let applied = apply(
            &ApplyTarget::NetworkManager(nm.clone()),
            &sample(),
            &settings,
        )
        .expect("applies");
        assert_eq!(
            std::fs::read_dir(&nm).expect("ls").count(),
            4,
            "stale keyfile replaced by four"
        );
        applied.rollback();
        let names: Vec<_> = std::fs::read_dir(&nm)
            .expect("ls")
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(
            names,
            vec![std::ffi::OsString::from("zerotouch-9-stale.nmconnection")]
        );
    }

    #[test]
    fn dropping_without_commit_restores_and_commit_keeps() {
        let dir = tempfile::tempdir().expect("tempdir");
        let conf = dir.path().join("wpa_supplicant.conf");
        let settings = dir.path().join("settings.json");
        std::fs::write(&conf, "ctrl_interface=/run/wpa_supplicant\n").expect("old config");
        let before = std::fs::read(&conf).expect("read");
        let target = ApplyTarget::WpaSupplicant(conf.clone());
        drop(apply(&target, &sample(), &settings).expect("applies"));
        assert_eq!(
            std::fs::read(&conf).expect("read"),
            before,
            "restored on drop"
        );
        assert!(!settings.exists());

        apply(&target, &sample(), &settings)
            .expect("applies")
            .commit();
        assert!(
            std::fs::read_to_string(&conf)
                .expect("read")
                .contains("plant-floor"),
            "a commit keeps the new network"
        );
        assert!(settings.exists());
    }

    #[test]
    fn exec_gets_credentials_in_environment_not_arguments() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("env.txt");
        let command = format!(
            "printf '%s|%s|%s|%s' \"$ZEROTOUCH_SSID\" \"$ZEROTOUCH_PSK\" \"$ZEROTOUCH_SECURITY\" \"$#\" > {}",
            out.display()
        );
        apply(
            &ApplyTarget::Exec(command.clone()),
            &sample(),
            &dir.path().join("settings.json"),
        )
        .expect("applies")
        .commit();
        assert_eq!(
            std::fs::read_to_string(&out).expect("read"),
            "plant-floor|correct horse|wpa2-psk|0"
        );
        assert!(!command.contains("correct horse"));
        let settings: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("settings.json")).expect("read"))
                .expect("json");
        assert_eq!(settings["mqtt.host"], "broker.local");
        assert_eq!(settings["blob"]["hex"], "ff00");
        let failing = apply(
            &ApplyTarget::Exec("exit 3".into()),
            &sample(),
            &dir.path().join("s.json"),
        );
        assert!(matches!(failing, Err(ApplyError::CommandFailed { .. })));
    }
}
