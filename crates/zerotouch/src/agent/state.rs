//! The agent's durable state besides its identity: whether it is provisioned, the owner key it
//! pinned, the last channel that worked and the best known time. One JSON file in the state
//! directory, replaced atomically, so a power cut leaves either the old or the new state.
//!
//! A corrupt file is an error, never a silent reset: forgetting the pinned owner would let any
//! configurator take the device over.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use zerotouch_proto::{FailureReason, PublicKey, SuiteId};

use super::apply::write_atomic;

/// File name of the agent state inside the state directory.
pub const STATE_FILE: &str = "agent-state.json";

/// What went wrong with the agent's state.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The state file exists but cannot be read.
    #[error(
        "cannot read {path}: {source}; fix its permissions (the agent must be able to read its state directory)"
    )]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The state file is not valid.
    #[error(
        "{path} is corrupt ({detail}); restore it from a backup, or move it away to start again as an \
         unprovisioned device (the identity key is kept, so the allowlist entry stays valid)"
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// The state file cannot be written.
    #[error(
        "cannot write {path}: {source}; check free space and permissions of the state directory"
    )]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// An owner key given on the command line or in the owner-keys file is invalid.
    #[error(
        "invalid owner key `{input}`: {detail} (expected the owner public key as hex: 64 digits for ed25519, 66 for p256, optionally prefixed `ed25519:` or `p256:`)"
    )]
    BadOwnerKey {
        /// The text given.
        input: String,
        /// What is wrong.
        detail: String,
    },
}

/// A public key as stored: suite name and hex wire encoding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredKey {
    /// `ed25519` or `p256`.
    pub suite: String,
    /// Wire encoding, hex.
    pub key: String,
}

impl StoredKey {
    /// Stores `key`.
    pub fn from_key(key: &PublicKey) -> Self {
        Self {
            suite: key.suite().name().into(),
            key: hex::encode(key.as_wire()),
        }
    }

    /// Parses back into a validated key.
    pub fn to_key(&self) -> Result<PublicKey, String> {
        let suite = SuiteId::from_name(&self.suite)
            .ok_or_else(|| format!("unknown suite `{}`", self.suite))?;
        let bytes = hex::decode(&self.key).map_err(|e| format!("key is not hex: {e}"))?;
        PublicKey::from_wire(suite, &bytes)
            .map_err(|e| format!("not a valid {} key: {e}", suite.name()))
    }
}

/// The agent's durable state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentState {
    /// Format version (1).
    pub version: u32,
    /// True once a provisioning was confirmed by the configurator and committed.
    pub provisioned: bool,
    /// Unix time of the last committed provisioning.
    pub provisioned_at: Option<u64>,
    /// The owner key pinned at the last provisioning (trust on first use, or confirmed).
    pub owner: Option<StoredKey>,
    /// The configurator that provisioned the device last.
    pub configurator: Option<StoredKey>,
    /// The channel that worked last (tried first).
    pub last_channel: Option<u8>,
    /// Highest authenticated Unix time seen (certificates that expired before it are refused).
    pub known_unix_time: u32,
    /// The reason the last attempt failed (`auth-failed`, ...), flagged in announcements.
    pub last_failure: Option<String>,
    /// The number of the last start: the high half of the announcement counter, which
    /// configurators require to grow (PROTOCOL.md §4.1). Raised and saved at every start,
    /// before the first announcement. Absent in files of earlier versions (= 0).
    #[serde(default)]
    pub boot_counter: u32,
}

impl AgentState {
    /// Loads the state of `state_dir`; a missing file is a fresh device.
    pub fn load(state_dir: &Path) -> Result<Self, StateError> {
        let path = state_dir.join(STATE_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Self {
                    version: 1,
                    ..Self::default()
                });
            }
            Err(source) => return Err(StateError::Unreadable { path, source }),
        };
        let state: Self = serde_json::from_slice(&bytes).map_err(|e| StateError::Corrupt {
            path: path.clone(),
            detail: e.to_string(),
        })?;
        if state.version != 1 {
            return Err(StateError::Corrupt {
                path,
                detail: format!("unsupported version {}", state.version),
            });
        }
        for key in state.owner.iter().chain(state.configurator.iter()) {
            key.to_key().map_err(|detail| StateError::Corrupt {
                path: path.clone(),
                detail,
            })?;
        }
        if let Some(reason) = &state.last_failure
            && failure_from_name(reason).is_none()
        {
            return Err(StateError::Corrupt {
                path,
                detail: format!("unknown failure reason `{reason}`"),
            });
        }
        Ok(state)
    }

    /// Replaces the state file atomically.
    pub fn save(&self, state_dir: &Path) -> Result<(), StateError> {
        let path = state_dir.join(STATE_FILE);
        let json = serde_json::to_vec_pretty(self).map_err(|e| StateError::Corrupt {
            path: path.clone(),
            detail: e.to_string(),
        })?;
        write_atomic(&path, &json).map_err(|source| StateError::Write { path, source })
    }

    /// The pinned owner key, if any (validated by [`AgentState::load`]).
    pub fn owner_key(&self) -> Option<PublicKey> {
        self.owner.as_ref().and_then(|k| k.to_key().ok())
    }

    /// The last failure reason, if any.
    pub fn last_failure_reason(&self) -> Option<FailureReason> {
        self.last_failure.as_deref().and_then(failure_from_name)
    }
}

/// Parses [`FailureReason::name`].
pub fn failure_from_name(name: &str) -> Option<FailureReason> {
    [
        FailureReason::ApNotFound,
        FailureReason::AuthFailed,
        FailureReason::NoIpAddress,
        FailureReason::ConfigRejected,
        FailureReason::Timeout,
        FailureReason::Other,
    ]
    .into_iter()
    .find(|r| r.name() == name)
}

/// Parses one owner key: hex of the wire encoding (suite from its length), optionally
/// prefixed with the suite name.
pub fn parse_owner_key(input: &str) -> Result<PublicKey, StateError> {
    let bad = |detail: String| StateError::BadOwnerKey {
        input: input.to_owned(),
        detail,
    };
    let text = input.trim();
    let (suite, hex_text) = match text.split_once(':') {
        Some((name, rest)) => (
            Some(SuiteId::from_name(name).ok_or_else(|| bad(format!("unknown suite `{name}`")))?),
            rest,
        ),
        None => (None, text),
    };
    let bytes = hex::decode(hex_text).map_err(|e| bad(format!("not hex: {e}")))?;
    let suite = match (suite, bytes.len()) {
        (Some(s), _) => s,
        (None, 32) => SuiteId::Ed25519,
        (None, 33) => SuiteId::P256,
        (None, n) => {
            return Err(bad(format!(
                "{n} bytes is neither an ed25519 (32) nor a p256 (33) key"
            )));
        }
    };
    PublicKey::from_wire(suite, &bytes)
        .map_err(|e| bad(format!("not a valid {} key: {e}", suite.name())))
}

/// Checks `--owner-key` values (hex, or files of them) on their own, so that a bad value
/// fails before the agent creates an identity or touches its state directory.
pub fn check_owner_key_flags(flags: &[String]) -> Result<(), StateError> {
    for flag in flags {
        let path = Path::new(flag);
        if path.is_file() {
            read_owner_key_file(path)?;
        } else {
            parse_owner_key(flag)?;
        }
    }
    Ok(())
}

/// Reads owner keys from a file: one per line, `#` starts a comment.
pub fn read_owner_key_file(path: &Path) -> Result<Vec<PublicKey>, StateError> {
    let text = std::fs::read_to_string(path).map_err(|source| StateError::Unreadable {
        path: path.to_path_buf(),
        source,
    })?;
    text.lines()
        .map(|line| line.split('#').next().unwrap_or("").trim())
        .filter(|line| !line.is_empty())
        .map(parse_owner_key)
        .collect()
}

/// Resolves `--owner-key` values (hex or a file path), the owner key written into the state
/// directory at manufacturing (`owner.pub`) and the owner pinned at the last provisioning,
/// without duplicates.
pub fn pinned_owners(
    flags: &[String],
    state_dir: &Path,
    state: &AgentState,
) -> Result<Vec<PublicKey>, StateError> {
    let mut keys = Vec::new();
    for flag in flags {
        let path = Path::new(flag);
        if path.is_file() {
            keys.extend(read_owner_key_file(path)?);
        } else {
            keys.push(parse_owner_key(flag)?);
        }
    }
    let manufactured =
        crate::identity::load_owner_key(state_dir).map_err(|e| StateError::BadOwnerKey {
            input: state_dir
                .join(crate::identity::OWNER_KEY_FILE)
                .display()
                .to_string(),
            detail: e.to_string(),
        })?;
    keys.extend(manufactured);
    keys.extend(state.owner_key());
    let mut unique: Vec<PublicKey> = Vec::with_capacity(keys.len());
    for key in keys {
        if !unique.contains(&key) {
            unique.push(key);
        }
    }
    Ok(unique)
}
