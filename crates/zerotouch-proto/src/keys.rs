//! Identity keys and key hashes.
//!
//! The allowlist key hash is SHA-256 of the DER SubjectPublicKeyInfo: for P-256 with the
//! compressed point, exactly as Wi-Fi Easy Connect defines it (equal to wpa_supplicant's
//! `pkhash`); for Ed25519 the RFC 8410 encoding.

use crate::error::KeyError;
use crate::suite::SuiteId;

/// SHA-256 of a public key's DER SubjectPublicKeyInfo: the allowlist identifier.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct KeyHash(pub [u8; 32]);

impl core::fmt::Display for KeyHash {
    /// Lower-case hex, 64 characters.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// Maximum DER SubjectPublicKeyInfo length of any supported suite (P-256 compressed: 59).
pub const MAX_SPKI_LEN: usize = 59;

/// A public identity key of some suite, in its wire encoding (32 bytes Ed25519,
/// 33 bytes compressed SEC1 P-256). Always a valid point: constructors check it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct PublicKey {
    suite: SuiteId,
    bytes: [u8; 33],
}

impl PublicKey {
    /// Parses a wire-encoded key of `suite`, rejecting invalid points.
    pub fn from_wire(suite: SuiteId, bytes: &[u8]) -> Result<Self, KeyError> {
        todo!("{suite:?} {bytes:?}")
    }

    /// The suite of this key.
    pub fn suite(&self) -> SuiteId {
        self.suite
    }

    /// The wire encoding ([`SuiteId::public_key_len`] bytes).
    pub fn as_wire(&self) -> &[u8] {
        &self.bytes[..self.suite.public_key_len()]
    }

    /// Parses a DER SubjectPublicKeyInfo (Ed25519 RFC 8410, or P-256 with a compressed or
    /// uncompressed point).
    pub fn from_spki_der(der: &[u8]) -> Result<Self, KeyError> {
        todo!("{der:?}")
    }

    /// The canonical DER SubjectPublicKeyInfo (compressed point for P-256).
    pub fn to_spki_der(&self) -> heapless::Vec<u8, MAX_SPKI_LEN> {
        todo!()
    }

    /// SHA-256 of [`PublicKey::to_spki_der`]: the allowlist identifier.
    pub fn key_hash(&self) -> KeyHash {
        todo!()
    }
}

/// A private signing identity (enrollee identity, configurator identity or fleet owner key).
/// Zeroized on drop.
pub struct SigningIdentity {
    suite: SuiteId,
    // Implementation detail; filled in by the crypto layer.
    _secret: [u8; 32],
}

impl SigningIdentity {
    /// Generates a fresh identity from a cryptographically secure RNG.
    pub fn generate<R: rand_core::CryptoRng + ?Sized>(suite: SuiteId, rng: &mut R) -> Self {
        todo!("{suite:?} {:p}", rng)
    }

    /// Restores an identity from its 32-byte secret ([`SigningIdentity::secret_bytes`]).
    pub fn from_secret_bytes(suite: SuiteId, secret: &[u8]) -> Result<Self, KeyError> {
        todo!("{suite:?} {secret:?}")
    }

    /// The 32-byte secret (Ed25519 seed, or P-256 scalar), for storage at rest.
    pub fn secret_bytes(&self) -> zeroize::Zeroizing<[u8; 32]> {
        todo!()
    }

    /// The suite of this identity.
    pub fn suite(&self) -> SuiteId {
        self.suite
    }

    /// The public half.
    pub fn public_key(&self) -> PublicKey {
        todo!()
    }

    /// Signs `msg` (Ed25519, or deterministic ECDSA P-256/SHA-256 as 64-byte r||s).
    pub fn sign(&self, msg: &[u8]) -> [u8; 64] {
        todo!("{msg:?}")
    }
}

impl PublicKey {
    /// Verifies a signature made by [`SigningIdentity::sign`].
    pub fn verify(&self, msg: &[u8], signature: &[u8; 64]) -> Result<(), KeyError> {
        todo!("{msg:?} {signature:?}")
    }
}
