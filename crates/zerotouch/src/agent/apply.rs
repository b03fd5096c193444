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
    /// `wpa-supplicant:PATH[?reload=IFACE]`: replace the networks zerotouch manages in the
    /// wpa_supplicant.conf at PATH (marked `id_str="zerotouch"`), keeping its global settings
    /// and every other network, with the previous file in `PATH.zerotouch-bak`; with
    /// `reload`, then run `wpa_cli -i IFACE reconfigure`.
    WpaSupplicant {
        /// The configuration file.
        path: PathBuf,
        /// The interface whose wpa_supplicant re-reads the file after a change.
        reload: Option<String>,
    },
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
            "wpa-supplicant" => {
                let (path, reload) = match rest.rsplit_once("?reload=") {
                    Some((path, iface)) => {
                        if !valid_interface_name(iface) {
                            return Err(format!(
                                "`?reload={iface}` is not an interface name (1 to 15 letters, digits, `-`, `_`, `.`, `:` or `@`)"
                            ));
                        }
                        (path, Some(iface.to_owned()))
                    }
                    None => (rest, None),
                };
                if path.is_empty() {
                    return Err("`wpa-supplicant:` needs a file before `?reload=`".into());
                }
                Ok(Self::WpaSupplicant {
                    path: PathBuf::from(path),
                    reload,
                })
            }
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
            Self::WpaSupplicant { path, .. } => {
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
    /// A wpa_supplicant to tell to re-read its restored file: interface, control directory.
    reload: Option<(String, Option<PathBuf>)>,
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
        self.reload = None;
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
        if let Some((iface, ctrl)) = self.reload.take() {
            reload_wpa_supplicant(&iface, ctrl.as_deref());
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
        ApplyTarget::WpaSupplicant { path, reload } => {
            write_wpa_supplicant(applied, path, reload.as_deref(), config)
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

/// The line that marks a network block as zerotouch's: only such blocks are replaced.
/// wpa_supplicant hands `id_str` to action scripts as `WPA_ID_STR`.
pub const WPA_MARKER: &str = "id_str=\"zerotouch\"";

/// The comment zerotouch writes above each of its network blocks.
const WPA_BLOCK_COMMENT: &str = "# zerotouch: managed network";

/// The first line of a file an agent before the markers wrote: all its networks are ours.
const WPA_OLD_HEADER: &str =
    "# Written by zerotouch enrollee agent; rewritten on every provisioning.";

/// The first line of a file zerotouch creates.
const WPA_HEADER: &str = "# Written by zerotouch enrollee agent. Networks marked id_str=\"zerotouch\" are replaced on\n# every provisioning; global settings and other networks are kept.\n";

/// Suffix of the backup of the previous file.
pub const WPA_BACKUP_SUFFIX: &str = ".zerotouch-bak";

/// A Linux interface name: 1..=15 bytes, no `/`, no space.
fn valid_interface_name(name: &str) -> bool {
    (1..=15).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:@".contains(c))
}

/// Renders a complete wpa_supplicant.conf as zerotouch creates it when there is no file
/// yet: the header and the networks.
pub fn wpa_supplicant_conf(config: &DeliveredConfig) -> Result<Zeroizing<String>, ApplyError> {
    let blocks = wpa_network_blocks(config)?;
    let mut out = Zeroizing::new(String::with_capacity(WPA_HEADER.len() + blocks.len()));
    out.push_str(WPA_HEADER);
    out.push_str(&blocks);
    Ok(out)
}

/// The network blocks of `config`, each marked and preceded by its comment, the first with
/// the highest priority.
fn wpa_network_blocks(config: &DeliveredConfig) -> Result<Zeroizing<String>, ApplyError> {
    if config.networks.is_empty() {
        return Err(ApplyError::Unsupported(
            "no network in the configuration".into(),
        ));
    }
    let mut out = Zeroizing::new(String::new());
    let count = config.networks.len();
    for (index, net) in config.networks.iter().enumerate() {
        let out = &mut *out;
        let _ = writeln!(
            out,
            "{WPA_BLOCK_COMMENT} {} of {count} (replaced on every provisioning)",
            index + 1
        );
        out.push_str("network={\n");
        let _ = writeln!(out, "\t{WPA_MARKER}");
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

/// Where the network block starting at `lines[start]` ends (the index of its `}` line, or
/// the last line of an unterminated block), if a block starts there.
fn wpa_block_end(lines: &[&[u8]], start: usize) -> Option<usize> {
    // wpa_supplicant's own test: the line, without leading and trailing white space.
    if lines.get(start)?.trim_ascii() != b"network={" {
        return None;
    }
    Some(
        (start + 1..lines.len())
            .find(|&j| lines[j].trim_ascii() == b"}")
            .unwrap_or(lines.len() - 1),
    )
}

/// Merges `config` into an existing wpa_supplicant.conf: every line outside zerotouch's
/// network blocks (global settings, comments, other networks) is kept byte for byte;
/// zerotouch's blocks (marked [`WPA_MARKER`], with their comment line) are replaced by the new
/// ones, where the first of them was, or appended. Merging the same configuration again
/// gives the same bytes. Without an existing file, the result is [`wpa_supplicant_conf`].
pub fn merge_wpa_supplicant_conf(
    existing: Option<&[u8]>,
    config: &DeliveredConfig,
) -> Result<Zeroizing<Vec<u8>>, ApplyError> {
    let Some(existing) = existing else {
        return Ok(Zeroizing::new(
            wpa_supplicant_conf(config)?.as_bytes().to_vec(),
        ));
    };
    let blocks = wpa_network_blocks(config)?;
    // A file of an agent before the markers: everything in it was written by zerotouch.
    let all_ours = existing.starts_with(WPA_OLD_HEADER.as_bytes());
    let lines: Vec<&[u8]> = existing.split_inclusive(|&b| b == b'\n').collect();
    let ours = |start: usize| {
        wpa_block_end(&lines, start).and_then(|end| {
            (all_ours
                || lines[start..=end]
                    .iter()
                    .any(|l| l.trim_ascii() == WPA_MARKER.as_bytes()))
            .then_some(end)
        })
    };
    let mut kept = Zeroizing::new(Vec::with_capacity(existing.len()));
    if all_ours {
        kept.extend_from_slice(WPA_HEADER.as_bytes());
    }
    let mut insert_at = None;
    let mut i = usize::from(all_ours);
    while i < lines.len() {
        let line = lines[i];
        if line.trim_ascii().starts_with(WPA_BLOCK_COMMENT.as_bytes()) && ours(i + 1).is_some() {
            i += 1;
            continue;
        }
        if let Some(end) = ours(i) {
            insert_at.get_or_insert(kept.len());
            i = end + 1;
            continue;
        }
        let end = wpa_block_end(&lines, i).unwrap_or(i);
        for line in &lines[i..=end] {
            kept.extend_from_slice(line);
        }
        i = end + 1;
    }
    if !kept.is_empty() && !kept.ends_with(b"\n") {
        kept.push(b'\n');
    }
    let at = insert_at.unwrap_or_else(|| {
        // Appended: a blank line between the file and zerotouch's networks.
        if !kept.is_empty() && !kept.ends_with(b"\n\n") {
            kept.push(b'\n');
        }
        kept.len()
    });
    let mut out = Zeroizing::new(Vec::with_capacity(kept.len() + blocks.len()));
    out.extend_from_slice(&kept[..at]);
    out.extend_from_slice(blocks.as_bytes());
    out.extend_from_slice(&kept[at..]);
    Ok(out)
}

/// The control interface directory a wpa_supplicant.conf names (`ctrl_interface=DIR` or
/// `ctrl_interface=DIR=DIR GROUP=G`), for `wpa_cli -p`.
fn wpa_ctrl_dir(conf: &[u8]) -> Option<PathBuf> {
    let line = conf
        .split(|&b| b == b'\n')
        .map(<[u8]>::trim_ascii)
        .find(|l| l.starts_with(b"ctrl_interface="))?;
    let value = std::str::from_utf8(&line[b"ctrl_interface=".len()..]).ok()?;
    let dir = match value.strip_prefix("DIR=") {
        Some(rest) => rest.split_whitespace().next()?,
        None => value.trim(),
    };
    dir.starts_with('/').then(|| PathBuf::from(dir))
}

/// Tells the wpa_supplicant of `iface` to re-read its file (`wpa_cli -i IFACE reconfigure`).
/// A failure is logged, never fatal: the file is in place for its next start.
fn reload_wpa_supplicant(iface: &str, ctrl_dir: Option<&Path>) {
    let mut cmd = Command::new("wpa_cli");
    if let Some(dir) = ctrl_dir {
        cmd.arg("-p").arg(dir);
    }
    cmd.args(["-i", iface, "reconfigure"])
        .stdin(std::process::Stdio::null());
    match cmd.output() {
        Ok(out) if out.status.success() && out.stdout.trim_ascii() == b"OK" => {
            tracing::info!(
                iface,
                "wpa_supplicant re-read its configuration (wpa_cli reconfigure)"
            );
        }
        Ok(out) => tracing::warn!(
            iface,
            status = %out.status,
            output = %String::from_utf8_lossy(&out.stdout).trim(),
            error = %String::from_utf8_lossy(&out.stderr).trim(),
            "wpa_cli reconfigure failed; wpa_supplicant reads the file at its next start"
        ),
        Err(err) => tracing::warn!(
            iface,
            %err,
            "cannot run wpa_cli; wpa_supplicant reads the file at its next start"
        ),
    }
}

/// The path of the backup of `path`'s previous contents.
pub fn wpa_backup_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(WPA_BACKUP_SUFFIX);
    PathBuf::from(name)
}

fn write_wpa_supplicant(
    applied: &mut Applied,
    path: &Path,
    reload: Option<&str>,
    config: &DeliveredConfig,
) -> Result<(), ApplyError> {
    let existing = match std::fs::read(path) {
        Ok(bytes) => Some(Zeroizing::new(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(source) => {
            return Err(ApplyError::Write {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let text = merge_wpa_supplicant_conf(existing.as_ref().map(|b| b.as_slice()), config)?;
    if let Some(previous) = &existing {
        applied.write(&wpa_backup_path(path), previous)?;
    }
    applied.write(path, &text)?;
    if let Some(iface) = reload {
        let ctrl = wpa_ctrl_dir(&text);
        reload_wpa_supplicant(iface, ctrl.as_deref());
        // A restore must be re-read too (the control directory is a global: it stays).
        applied.reload = Some((iface.to_owned(), ctrl));
    }
    Ok(())
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
            Ok(ApplyTarget::WpaSupplicant {
                path: "/etc/w.conf".into(),
                reload: None
            })
        );
        assert_eq!(
            "wpa-supplicant:/etc/w?x.conf?reload=wlan0".parse::<ApplyTarget>(),
            Ok(ApplyTarget::WpaSupplicant {
                path: "/etc/w?x.conf".into(),
                reload: Some("wlan0".into())
            })
        );
        assert!(
            "wpa-supplicant:/etc/w.conf?reload="
                .parse::<ApplyTarget>()
                .is_err()
        );
        assert!(
            "wpa-supplicant:/etc/w.conf?reload=wl an0"
                .parse::<ApplyTarget>()
                .is_err()
        );
        assert!(
            "wpa-supplicant:?reload=wlan0"
                .parse::<ApplyTarget>()
                .is_err()
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
            &ApplyTarget::WpaSupplicant {
                path: conf.clone(),
                reload: None,
            },
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
        let target = ApplyTarget::WpaSupplicant {
            path: conf.clone(),
            reload: None,
        };
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

    /// A hand-written wpa_supplicant.conf: globals, a comment, the user's own network.
    fn user_conf(ctrl: &Path) -> String {
        format!(
            "ctrl_interface=DIR={} GROUP=root\nupdate_config=1\ncountry=DE\n\n# the office\nnetwork={{\n\tssid=\"home-net\"\n\tpsk=\"home-passphrase\"\n\tid_str=\"home\"\n}}\n",
            ctrl.display()
        )
    }

    fn other_config() -> DeliveredConfig {
        DeliveredConfig {
            networks: vec![NetworkConfig {
                ssid: b"rotated-net".to_vec(),
                security: Security::Wpa2Psk,
                credential: NetworkCredential::Passphrase(Zeroizing::new("new-passphrase".into())),
                bssid: None,
                channel: None,
            }],
            settings: Vec::new(),
        }
    }

    #[test]
    fn wpa_supplicant_keeps_globals_and_foreign_networks_replacing_only_its_own() {
        let dir = tempfile::tempdir().expect("tempdir");
        let conf = dir.path().join("wpa_supplicant.conf");
        let backup = wpa_backup_path(&conf);
        let settings = dir.path().join("settings.json");
        let original = user_conf(&dir.path().join("ctrl"));
        std::fs::write(&conf, &original).expect("user conf");
        let target = ApplyTarget::WpaSupplicant {
            path: conf.clone(),
            reload: None,
        };

        apply(&target, &sample(), &settings)
            .expect("applies")
            .commit();
        let first = std::fs::read_to_string(&conf).expect("read");
        assert!(
            first.starts_with(&original),
            "globals, comment and the user's network kept byte for byte:\n{first}"
        );
        assert_eq!(first.matches(WPA_MARKER).count(), 4, "{first}");
        assert_eq!(first.matches("network={").count(), 5, "{first}");
        assert!(first.contains("ssid=\"plant-floor\""));
        assert_eq!(std::fs::read_to_string(&backup).expect("backup"), original);
        assert_eq!(
            std::fs::metadata(&backup)
                .expect("stat")
                .permissions()
                .mode()
                & 0o777,
            0o600,
            "the backup holds the user's PSK"
        );

        // The same configuration again: the same bytes (idempotent).
        apply(&target, &sample(), &settings)
            .expect("applies")
            .commit();
        assert_eq!(std::fs::read_to_string(&conf).expect("read"), first);
        assert_eq!(std::fs::read_to_string(&backup).expect("backup"), first);

        // Another configuration replaces zerotouch's four networks only.
        apply(&target, &other_config(), &settings)
            .expect("applies")
            .commit();
        let third = std::fs::read_to_string(&conf).expect("read");
        assert!(third.starts_with(&original), "{third}");
        assert_eq!(third.matches(WPA_MARKER).count(), 1, "{third}");
        assert!(third.contains("ssid=\"rotated-net\"") && !third.contains("plant-floor"));

        // zerotouch's block between the user's: replaced in place, the rest untouched.
        let tail = "network={\n\tssid=\"later\"\n\tkey_mgmt=NONE\n}\n";
        std::fs::write(&conf, format!("{third}{tail}")).expect("user adds a network");
        apply(&target, &other_config(), &settings)
            .expect("applies")
            .commit();
        assert_eq!(
            std::fs::read_to_string(&conf).expect("read"),
            format!("{third}{tail}")
        );
    }

    #[test]
    fn wpa_supplicant_file_of_an_older_agent_is_replaced_whole() {
        let old = "# Written by zerotouch enrollee agent; rewritten on every provisioning.\nnetwork={\n\tssid=\"old\"\n\tkey_mgmt=NONE\n\tpriority=1\n}\n";
        let merged =
            merge_wpa_supplicant_conf(Some(old.as_bytes()), &other_config()).expect("merges");
        let text = std::str::from_utf8(&merged).expect("utf-8");
        assert!(!text.contains("\"old\""), "{text}");
        assert!(text.starts_with(WPA_HEADER), "{text}");
        let again = merge_wpa_supplicant_conf(Some(&merged), &other_config()).expect("merges");
        assert_eq!(again.as_slice(), merged.as_slice(), "idempotent");
        let fresh = merge_wpa_supplicant_conf(None, &other_config()).expect("renders");
        assert_eq!(fresh.as_slice(), merged.as_slice());
        assert_eq!(
            wpa_ctrl_dir(b"ctrl_interface=DIR=/run/w GROUP=netdev\n"),
            Some(PathBuf::from("/run/w"))
        );
        assert_eq!(
            wpa_ctrl_dir(b"country=DE\nctrl_interface=/var/run/x\n"),
            Some(PathBuf::from("/var/run/x"))
        );
    }

    /// A running wpa_supplicant on `lo` (wired driver) with its control socket in the file's
    /// `ctrl_interface` directory; killed on drop.
    struct Supplicant {
        child: std::process::Child,
        ctrl: PathBuf,
    }

    impl Supplicant {
        fn start(conf: &Path, ctrl: &Path) -> Self {
            let child = Command::new("wpa_supplicant")
                .args(["-i", "lo", "-D", "wired", "-c"])
                .arg(conf)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("wpa_supplicant must be installed (Debian package `wpasupplicant`)");
            let mut supplicant = Self {
                child,
                ctrl: ctrl.to_path_buf(),
            };
            // A start-up deadline for its control socket, not a timing assertion.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while !ctrl.join("lo").exists() {
                if let Ok(Some(status)) = supplicant.child.try_wait() {
                    panic!("wpa_supplicant rejected {} ({status})", conf.display());
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "wpa_supplicant did not open its control socket (it needs root)"
                );
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            supplicant
        }

        /// The SSIDs of `list_networks`.
        fn ssids(&self) -> Vec<String> {
            let out = Command::new("wpa_cli")
                .arg("-p")
                .arg(&self.ctrl)
                .args(["-i", "lo", "list_networks"])
                .output()
                .expect("wpa_cli");
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .skip(1)
                .filter_map(|l| l.split('\t').nth(1).map(str::to_owned))
                .collect()
        }
    }

    impl Drop for Supplicant {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    #[test]
    fn real_wpa_supplicant_reads_the_merged_file_and_reloads_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ctrl = dir.path().join("ctrl");
        let conf = dir.path().join("wpa_supplicant.conf");
        let settings = dir.path().join("settings.json");
        std::fs::write(&conf, user_conf(&ctrl)).expect("user conf");
        let plain = ApplyTarget::WpaSupplicant {
            path: conf.clone(),
            reload: None,
        };
        apply(&plain, &sample(), &settings)
            .expect("applies")
            .commit();
        apply(&plain, &sample(), &settings)
            .expect("applies")
            .commit();

        let supplicant = Supplicant::start(&conf, &ctrl);
        let ssids = supplicant.ssids();
        assert_eq!(ssids.len(), 5, "{ssids:?}");
        assert!(
            ssids.contains(&"home-net".to_owned()) && ssids.contains(&"plant-floor".to_owned())
        );

        // ?reload=lo: the running wpa_supplicant re-reads the file (wpa_cli reconfigure).
        let reloading = ApplyTarget::WpaSupplicant {
            path: conf.clone(),
            reload: Some("lo".into()),
        };
        let applied = apply(&reloading, &other_config(), &settings).expect("applies");
        assert_eq!(supplicant.ssids(), ["home-net", "rotated-net"]);
        // Rolled back, the restored file is re-read as well.
        applied.rollback();
        assert_eq!(supplicant.ssids().len(), 5);
        drop(supplicant);

        // A reload that cannot reach a wpa_supplicant is logged, not an error.
        let nobody = ApplyTarget::WpaSupplicant {
            path: conf.clone(),
            reload: Some("zt-none0".into()),
        };
        apply(&nobody, &other_config(), &settings)
            .expect("a failed reload is not fatal")
            .commit();
        assert!(
            std::fs::read_to_string(&conf)
                .expect("read")
                .contains("rotated-net")
        );
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
