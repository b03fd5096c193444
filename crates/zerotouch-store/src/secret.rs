//! Secrets at rest: a 32-byte key kept outside the database seals every secret column with
//! XChaCha20-Poly1305 (the extended-nonce ChaCha20-Poly1305, so random nonces are safe for
//! any number of values). The associated data binds each ciphertext to its table, column and
//! row, so a sealed value copied to another row or column does not decrypt.
//!
//! Sealed text format: `v1:` + hex(nonce 24 bytes || ciphertext || tag 16 bytes).

use std::fs::OpenOptions;
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use zeroize::Zeroizing;

use crate::error::StoreError;

/// Environment variable holding the secret key as 64 hex characters.
pub const SECRET_KEY_ENV: &str = "ZEROTOUCH_SECRET_KEY";

const SEALED_PREFIX: &str = "v1:";
const NONCE_LEN: usize = 24;

/// Where the registry's secret key comes from.
#[derive(Clone)]
pub enum SecretKeySource {
    /// `ZEROTOUCH_SECRET_KEY` if it is set; otherwise the key file next to the SQLite database
    /// (`<database>.key`), created (mode 0600) together with a new registry.
    /// A PostgreSQL registry has no file next to it: it needs the variable or [`Self::File`].
    Auto,
    /// This key file (64 hex characters), created (mode 0600) with a new registry if missing.
    File(PathBuf),
    /// This key, e.g. from a secret manager.
    Key(Zeroizing<[u8; 32]>),
}

impl std::fmt::Debug for SecretKeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Auto => f.write_str("Auto"),
            Self::File(path) => f.debug_tuple("File").field(path).finish(),
            Self::Key(_) => f.write_str("Key(<redacted>)"),
        }
    }
}

/// The resolved key, with a description of where it came from for error messages.
pub(crate) struct SecretKey {
    key: Zeroizing<[u8; 32]>,
    pub(crate) origin: String,
}

impl SecretKey {
    /// Resolves `source`. `default_file` is the key file next to a SQLite database;
    /// `may_create` is true only for a new registry (a missing key for an existing one is an
    /// error, never silently replaced).
    pub(crate) fn resolve(
        source: &SecretKeySource,
        default_file: Option<&Path>,
        may_create: bool,
    ) -> Result<Self, StoreError> {
        match source {
            SecretKeySource::Key(key) => Ok(Self {
                key: key.clone(),
                origin: "the key given by the caller".into(),
            }),
            SecretKeySource::File(path) => Self::from_file(path, may_create),
            SecretKeySource::Auto => {
                if let Some(value) = std::env::var_os(SECRET_KEY_ENV) {
                    let value = Zeroizing::new(value.to_string_lossy().into_owned());
                    let key = parse_hex_key(&value).map_err(|why| {
                        StoreError::SecretKey(format!(
                            "{SECRET_KEY_ENV} {why}: it must be 64 hex characters (32 bytes)"
                        ))
                    })?;
                    return Ok(Self {
                        key,
                        origin: format!("the key in {SECRET_KEY_ENV}"),
                    });
                }
                match default_file {
                    Some(path) => Self::from_file(path, may_create),
                    None => Err(StoreError::SecretKey(format!(
                        "a PostgreSQL registry needs its secret key in {SECRET_KEY_ENV} (64 hex characters) or in a key file given explicitly"
                    ))),
                }
            }
        }
    }

    fn from_file(path: &Path, may_create: bool) -> Result<Self, StoreError> {
        let origin = format!("the key file {}", path.display());
        match OpenOptions::new().read(true).open(path) {
            Ok(mut file) => {
                let mut text = Zeroizing::new(String::new());
                file.read_to_string(&mut text)
                    .map_err(|e| io_error(path, e))?;
                let key = parse_hex_key(&text).map_err(|why| {
                    StoreError::SecretKey(format!(
                        "{} {why}: it must hold 64 hex characters; restore it from backup",
                        path.display()
                    ))
                })?;
                Ok(Self { key, origin })
            }
            Err(e) if e.kind() == ErrorKind::NotFound && may_create => {
                let mut key = Zeroizing::new([0u8; 32]);
                getrandom::fill(key.as_mut()).map_err(|e| StoreError::Random(e.to_string()))?;
                let mut file = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(path)
                    .map_err(|e| io_error(path, e))?;
                let text = Zeroizing::new(format!("{}\n", hex::encode(key.as_ref())));
                file.write_all(text.as_bytes())
                    .and_then(|()| file.sync_all())
                    .map_err(|e| io_error(path, e))?;
                Ok(Self { key, origin })
            }
            Err(e) if e.kind() == ErrorKind::NotFound => Err(StoreError::SecretKey(format!(
                "the key file {} of this existing registry is missing: restore it from backup, or set {SECRET_KEY_ENV}; without it the stored secrets cannot be read",
                path.display()
            ))),
            Err(e) => Err(io_error(path, e)),
        }
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(&Key::from(*self.key))
    }

    /// Seals `plaintext` for the cell (`table`, `column`, `row`).
    pub(crate) fn seal(
        &self,
        table: &str,
        column: &str,
        row: &str,
        plaintext: &[u8],
    ) -> Result<String, StoreError> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|e| StoreError::Random(e.to_string()))?;
        let aad = associated_data(table, column, row);
        let ciphertext = self
            .cipher()
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| StoreError::SecretKey("encryption failed".into()))?;
        let mut out =
            String::with_capacity(SEALED_PREFIX.len() + 2 * (NONCE_LEN + ciphertext.len()));
        out.push_str(SEALED_PREFIX);
        out.push_str(&hex::encode(nonce));
        out.push_str(&hex::encode(&ciphertext));
        Ok(out)
    }

    /// Opens a value sealed by [`SecretKey::seal`] for the same cell. `None` if it does not
    /// authenticate (wrong key, modified, or moved from another cell).
    pub(crate) fn open(
        &self,
        table: &str,
        column: &str,
        row: &str,
        sealed: &str,
    ) -> Option<Zeroizing<Vec<u8>>> {
        let body = sealed.strip_prefix(SEALED_PREFIX)?;
        let bytes = hex::decode(body).ok()?;
        if bytes.len() < NONCE_LEN {
            return None;
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().ok()?;
        let aad = associated_data(table, column, row);
        self.cipher()
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: aad.as_bytes(),
                },
            )
            .ok()
            .map(Zeroizing::new)
    }

    /// Like [`SecretKey::open`], but a failure is [`StoreError::Tampered`].
    pub(crate) fn open_or_tampered(
        &self,
        table: &str,
        column: &str,
        row: &str,
        sealed: &str,
    ) -> Result<Zeroizing<Vec<u8>>, StoreError> {
        self.open(table, column, row, sealed)
            .ok_or_else(|| StoreError::Tampered {
                what: format!("{table}.{column} of {row}"),
            })
    }
}

fn associated_data(table: &str, column: &str, row: &str) -> String {
    // Lengths first, so no two (table, column, row) triples give the same string.
    format!(
        "zerotouch-registry/v1|{}:{table}|{}:{column}|{}:{row}",
        table.len(),
        column.len(),
        row.len()
    )
}

fn parse_hex_key(text: &str) -> Result<Zeroizing<[u8; 32]>, &'static str> {
    let text = text.trim();
    if text.len() != 64 {
        return Err("has the wrong length");
    }
    let mut key = Zeroizing::new([0u8; 32]);
    hex::decode_to_slice(text, key.as_mut()).map_err(|_| "is not hexadecimal")?;
    Ok(key)
}

pub(crate) fn io_error(path: &Path, source: std::io::Error) -> StoreError {
    if source.kind() == ErrorKind::PermissionDenied {
        StoreError::Permission {
            path: path.to_path_buf(),
            detail: source.to_string(),
        }
    } else {
        StoreError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> SecretKey {
        SecretKey {
            key: Zeroizing::new([byte; 32]),
            origin: "test".into(),
        }
    }

    #[test]
    fn sealed_values_open_only_in_their_own_cell_with_their_own_key() {
        let k = key(1);
        let sealed = k
            .seal("device_psks", "psk", "abc", b"secret")
            .expect("seal");
        assert_eq!(
            k.open("device_psks", "psk", "abc", &sealed)
                .as_deref()
                .map(|v| v.as_slice()),
            Some(&b"secret"[..])
        );
        assert!(k.open("device_psks", "psk", "abd", &sealed).is_none());
        assert!(k.open("device_psks", "other", "abc", &sealed).is_none());
        assert!(key(2).open("device_psks", "psk", "abc", &sealed).is_none());
        assert!(k.open("device_psks", "psk", "abc", "v1:00").is_none());
        assert!(k.open("device_psks", "psk", "abc", "garbage").is_none());
    }

    #[test]
    fn hex_keys_are_checked() {
        assert!(parse_hex_key(&"ab".repeat(32)).is_ok());
        assert!(parse_hex_key(&format!("{}\n", "ab".repeat(32))).is_ok());
        assert!(parse_hex_key("abcd").is_err());
        assert!(parse_hex_key(&"zz".repeat(32)).is_err());
    }
}
