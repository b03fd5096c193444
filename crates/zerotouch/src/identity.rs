//! The enrollee's on-disk state: its identity key, shared by `device keygen` (which writes it
//! at manufacturing) and the enrollee agent (which reads it, or creates it on first run).
//!
//! Layout of a state directory:
//! - `identity.key` (mode 0600): the device's private identity, three text lines:
//!   ```text
//!   zerotouch-identity v1
//!   suite ed25519
//!   secret <64 hex digits>
//!   ```
//! - `owner.pub` (optional): the fleet owner public key the device pins, one line
//!   `<suite> <hex wire key>`; written by `device keygen --pin-owner`.
//! - `dpp-uri.txt`, `dpp-qr.svg` (written by `device keygen`): the DPP URI, for labels.
//!
//! An identity is never silently regenerated: a file that exists but cannot be read or
//! parsed is an error that says what to do, because a new key would orphan the device from
//! its allowlist entry.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;
use zerotouch_proto::{PublicKey, SigningIdentity, SuiteId};

use crate::error::AppError;

/// File name of the identity key inside a state directory.
pub const IDENTITY_FILE: &str = "identity.key";
/// File name of the pinned owner public key inside a state directory.
pub const OWNER_KEY_FILE: &str = "owner.pub";
/// First line of an identity file.
const IDENTITY_HEADER: &str = "zerotouch-identity v1";

/// Why a state directory's identity could not be used.
#[derive(Debug)]
pub enum IdentityError {
    /// There is no identity file (only [`load`] reports this; [`load_or_create`] creates one).
    Missing(PathBuf),
    /// The identity file exists but cannot be read (permissions, I/O error).
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// The identity file exists but is not a valid identity.
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// [`create`] refuses to overwrite an existing identity.
    AlreadyExists(PathBuf),
    /// Writing a new identity failed.
    WriteFailed {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// The system random number generator failed.
    Rng(String),
}

impl fmt::Display for IdentityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdentityError::Missing(path) => write!(
                f,
                "no device identity at {}: run `zerotouch enrollee run` once to create it, \
                 or copy the state directory made by `zerotouch device keygen`",
                path.display()
            ),
            IdentityError::Unreadable { path, source } => write!(
                f,
                "cannot read the device identity {}: {source}; fix its owner and permissions \
                 (it must stay 0600). A new key is NOT generated, because it would orphan the \
                 device from its allowlist entry",
                path.display()
            ),
            IdentityError::Corrupt { path, reason } => write!(
                f,
                "the device identity {} is corrupt ({reason}); restore it from backup. If it is \
                 lost, move the state directory aside, let a new identity be created, and \
                 allowlist the new key (`zerotouch allow add`) after revoking the old one",
                path.display()
            ),
            IdentityError::AlreadyExists(path) => write!(
                f,
                "{} already holds a device identity; it is never overwritten (remove the \
                 directory yourself if you really mean to replace it)",
                path.display()
            ),
            IdentityError::WriteFailed { path, source } => {
                write!(
                    f,
                    "cannot write the device identity {}: {source}",
                    path.display()
                )
            }
            IdentityError::Rng(detail) => {
                write!(f, "the system random number generator failed: {detail}")
            }
        }
    }
}

impl std::error::Error for IdentityError {}

impl From<IdentityError> for AppError {
    fn from(err: IdentityError) -> Self {
        let message = err.to_string();
        match err {
            IdentityError::Missing(_) => AppError::NotFound(message),
            IdentityError::AlreadyExists(_) => AppError::Conflict(message),
            IdentityError::Corrupt { .. } => AppError::Corrupt(message),
            IdentityError::Unreadable { .. }
            | IdentityError::WriteFailed { .. }
            | IdentityError::Rng(_) => AppError::Failed(message),
        }
    }
}

/// The identity file path of a state directory.
pub fn identity_path(state_dir: &Path) -> PathBuf {
    state_dir.join(IDENTITY_FILE)
}

/// Generates a fresh identity from the operating system's CSPRNG.
pub fn generate(suite: SuiteId) -> Result<SigningIdentity, IdentityError> {
    // A uniformly random 32-byte secret is a valid Ed25519 seed; for P-256 it is a valid
    // scalar except with probability ~2^-32 (zero or >= the group order): draw again then.
    for _ in 0..16 {
        let mut secret = Zeroizing::new([0u8; 32]);
        getrandom::fill(secret.as_mut()).map_err(|e| IdentityError::Rng(e.to_string()))?;
        if let Ok(identity) = SigningIdentity::from_secret_bytes(suite, secret.as_ref()) {
            return Ok(identity);
        }
    }
    Err(IdentityError::Rng(
        "16 draws in a row were not valid keys".into(),
    ))
}

/// Loads the identity of `state_dir`.
pub fn load(state_dir: &Path) -> Result<SigningIdentity, IdentityError> {
    let path = identity_path(state_dir);
    let mut file = match fs::File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(IdentityError::Missing(path)),
        Err(source) => return Err(IdentityError::Unreadable { path, source }),
    };
    if let Ok(meta) = file.metadata() {
        warn_if_exposed(&path, &meta, "device identity key");
    }
    let mut text = Zeroizing::new(String::new());
    if let Err(source) = file.read_to_string(&mut text) {
        return Err(if source.kind() == io::ErrorKind::InvalidData {
            IdentityError::Corrupt {
                path,
                reason: "not UTF-8 text".into(),
            }
        } else {
            IdentityError::Unreadable { path, source }
        });
    }
    parse(&text).map_err(|reason| IdentityError::Corrupt { path, reason })
}

/// Warns (on stderr, through the log) when a secret key file can be read or written by its
/// group or others: it is used anyway (refusing would stop a fleet over a mode), but the
/// operator should know, as ssh does for its keys.
pub fn warn_if_exposed(path: &Path, meta: &fs::Metadata, what: &str) {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        tracing::warn!(
            "the {what} {} has mode {mode:04o}: other users may read it; run `chmod 600 {}`",
            path.display(),
            path.display()
        );
    }
}

/// Parses the identity file format (see the module documentation).
pub(crate) fn parse(text: &str) -> Result<SigningIdentity, String> {
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    if lines.next() != Some(IDENTITY_HEADER) {
        return Err(format!("first line is not `{IDENTITY_HEADER}`"));
    }
    let suite_name = lines
        .next()
        .and_then(|l| l.strip_prefix("suite "))
        .ok_or("second line is not `suite <name>`")?;
    let suite = SuiteId::from_name(suite_name.trim())
        .ok_or_else(|| format!("unknown suite {suite_name:?}"))?;
    let secret_hex = lines
        .next()
        .and_then(|l| l.strip_prefix("secret "))
        .ok_or("third line is not `secret <hex>`")?;
    if lines.next().is_some() {
        return Err("unexpected extra lines".into());
    }
    let mut secret = Zeroizing::new([0u8; 32]);
    hex::decode_to_slice(secret_hex.trim(), secret.as_mut())
        .map_err(|_| "the secret is not 64 hex digits".to_string())?;
    SigningIdentity::from_secret_bytes(suite, secret.as_ref())
        .map_err(|e| format!("invalid secret: {e}"))
}

/// Writes `identity` as the identity of `state_dir` (created 0700 if missing). Refuses to
/// overwrite an existing identity. The file is written to a temporary name, synced, then
/// linked into place, so a crash never leaves a half-written identity.
pub fn save_new(state_dir: &Path, identity: &SigningIdentity) -> Result<(), IdentityError> {
    let path = identity_path(state_dir);
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(state_dir)
        .map_err(|source| IdentityError::WriteFailed {
            path: state_dir.to_path_buf(),
            source,
        })?;
    let text = Zeroizing::new(format!(
        "{IDENTITY_HEADER}\nsuite {}\nsecret {}\n",
        identity.suite().name(),
        hex::encode(identity.secret_bytes().as_ref())
    ));
    let tmp = state_dir.join(format!(".{IDENTITY_FILE}.tmp-{}", std::process::id()));
    let write = || -> io::Result<()> {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()
    };
    if let Err(source) = write() {
        let _ = fs::remove_file(&tmp);
        return Err(IdentityError::WriteFailed { path: tmp, source });
    }
    // hard_link fails if the target exists: the check and the creation are one atomic step.
    let linked = fs::hard_link(&tmp, &path);
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            return Err(IdentityError::AlreadyExists(path));
        }
        Err(source) => return Err(IdentityError::WriteFailed { path, source }),
    }
    sync_dir(state_dir).map_err(|source| IdentityError::WriteFailed {
        path: state_dir.to_path_buf(),
        source,
    })
}

/// Generates and saves a new identity; refuses if one exists.
pub fn create(state_dir: &Path, suite: SuiteId) -> Result<SigningIdentity, IdentityError> {
    let identity = generate(suite)?;
    save_new(state_dir, &identity)?;
    Ok(identity)
}

/// Loads the identity, or creates one of `suite` if (and only if) there is no identity file.
/// Returns the identity and whether it was just created.
pub fn load_or_create(
    state_dir: &Path,
    suite: SuiteId,
) -> Result<(SigningIdentity, bool), IdentityError> {
    match load(state_dir) {
        Ok(identity) => Ok((identity, false)),
        Err(IdentityError::Missing(_)) => match create(state_dir, suite) {
            Ok(identity) => Ok((identity, true)),
            // Another process created it between our two steps: use theirs.
            Err(IdentityError::AlreadyExists(_)) => load(state_dir).map(|id| (id, false)),
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    }
}

/// Writes the pinned owner key (`owner.pub`, mode 0644: it is public).
pub fn save_owner_key(state_dir: &Path, owner: &PublicKey) -> Result<(), IdentityError> {
    let path = state_dir.join(OWNER_KEY_FILE);
    let line = format!(
        "{} {}\n",
        owner.suite().name(),
        hex::encode(owner.as_wire())
    );
    fs::write(&path, line)
        .and_then(|()| fs::set_permissions(&path, fs::Permissions::from_mode(0o644)))
        .map_err(|source| IdentityError::WriteFailed { path, source })
}

/// Reads the pinned owner key, if the state directory has one.
pub fn load_owner_key(state_dir: &Path) -> Result<Option<PublicKey>, IdentityError> {
    let path = state_dir.join(OWNER_KEY_FILE);
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(IdentityError::Unreadable { path, source }),
    };
    let corrupt = |reason: &str| IdentityError::Corrupt {
        path: path.clone(),
        reason: reason.to_string(),
    };
    let (suite, key_hex) = text
        .trim()
        .split_once(' ')
        .ok_or_else(|| corrupt("expected `<suite> <hex key>`"))?;
    let suite = SuiteId::from_name(suite).ok_or_else(|| corrupt("unknown suite"))?;
    let bytes = hex::decode(key_hex.trim()).map_err(|_| corrupt("the key is not hex"))?;
    PublicKey::from_wire(suite, &bytes)
        .map(Some)
        .map_err(|e| corrupt(&e.to_string()))
}

/// fsyncs a directory so a rename or link inside it survives a crash.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_round_trips_with_mode_0600_for_both_suites() {
        for suite in SuiteId::ALL {
            let dir = tempfile::tempdir().expect("tempdir");
            let created = create(dir.path(), suite).expect("create");
            let mode = fs::metadata(identity_path(dir.path()))
                .expect("stat")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
            let loaded = load(dir.path()).expect("load");
            assert_eq!(loaded.public_key(), created.public_key());
            assert_eq!(loaded.suite(), suite);
        }
    }

    #[test]
    fn existing_identity_is_never_overwritten() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = create(dir.path(), SuiteId::Ed25519).expect("create");
        assert!(matches!(
            create(dir.path(), SuiteId::Ed25519),
            Err(IdentityError::AlreadyExists(_))
        ));
        let (again, created) = load_or_create(dir.path(), SuiteId::P256).expect("load");
        assert!(!created);
        assert_eq!(again.public_key(), first.public_key());
    }

    #[test]
    fn corrupt_identity_is_an_error_not_a_new_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(
            identity_path(dir.path()),
            "zerotouch-identity v1\nsuite ed25519\nsecret zz\n",
        )
        .expect("write");
        assert!(matches!(
            load_or_create(dir.path(), SuiteId::Ed25519),
            Err(IdentityError::Corrupt { .. })
        ));
        fs::write(identity_path(dir.path()), [0xff, 0xfe, 0x00]).expect("write");
        assert!(matches!(
            load(dir.path()),
            Err(IdentityError::Corrupt { .. })
        ));
        // The corrupt file is still there, untouched.
        assert_eq!(
            fs::read(identity_path(dir.path())).expect("read"),
            [0xff, 0xfe, 0x00]
        );
    }

    #[test]
    fn missing_identity_is_created_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = dir.path().join("nested/state");
        let (id, created) = load_or_create(&state, SuiteId::P256).expect("create");
        assert!(created);
        let (again, created) = load_or_create(&state, SuiteId::P256).expect("load");
        assert!(!created);
        assert_eq!(id.public_key(), again.public_key());
    }

    #[test]
    fn owner_key_round_trips() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(load_owner_key(dir.path()).expect("none").is_none());
        let owner = generate(SuiteId::P256).expect("gen").public_key();
        save_owner_key(dir.path(), &owner).expect("save");
        assert_eq!(load_owner_key(dir.path()).expect("load"), Some(owner));
    }
}
