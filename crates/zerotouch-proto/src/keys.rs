//! Identity keys and key hashes.
//!
//! [`PublicKey`] holds only valid keys (canonical Ed25519 points, compressed P-256 points);
//! [`SigningIdentity`] holds the matching secret (dalek / RustCrypto keys, zeroized on drop)
//! and signs with Ed25519 or deterministic ECDSA P-256/SHA-256 (64-byte r‖s).
//!
//! The allowlist key hash is SHA-256 of the DER SubjectPublicKeyInfo: for P-256 with the
//! compressed point, exactly as Wi-Fi Easy Connect defines it (equal to wpa_supplicant's
//! `pkhash`); for Ed25519 the RFC 8410 encoding. The few fixed SPKI layouts are parsed by
//! hand (a minimal DER reader) so that errors say precisely what is wrong.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

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

impl KeyHash {
    /// Number of bytes [`KeyHash::short`] shows (the same 4 bytes a certificate's owner_id
    /// holds, so an owner's short hash reads the same as its owner_id).
    pub const SHORT_LEN: usize = 4;

    /// Parses 64 hex digits (upper or lower case), as [`Display`](core::fmt::Display)
    /// writes and wpa_supplicant prints `pkhash`.
    pub fn from_hex(text: &str) -> Result<Self, KeyError> {
        let mut out = [0u8; 32];
        decode_hex(text.as_bytes(), &mut out).ok_or(KeyError::BadKeyHash)?;
        Ok(Self(out))
    }

    /// The first [`KeyHash::SHORT_LEN`] bytes: a certificate's owner_id when this is an
    /// owner key's hash.
    pub fn prefix(&self) -> [u8; 4] {
        [self.0[0], self.0[1], self.0[2], self.0[3]]
    }

    /// A short display form for logs and tables: the first 8 hex digits.
    pub fn short(&self) -> ShortKeyHash {
        ShortKeyHash(self.prefix())
    }
}

impl core::str::FromStr for KeyHash {
    type Err = KeyError;

    fn from_str(text: &str) -> Result<Self, KeyError> {
        Self::from_hex(text)
    }
}

/// The first 4 bytes of a [`KeyHash`], displayed as 8 lower-case hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct ShortKeyHash(pub [u8; 4]);

impl core::fmt::Display for ShortKeyHash {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// Decodes exactly `2 * out.len()` hex digits into `out`; `None` on any other input.
pub(crate) fn decode_hex(text: &[u8], out: &mut [u8]) -> Option<()> {
    if text.len() != out.len() * 2 {
        return None;
    }
    for (byte, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
        *byte = (hex_digit(pair[0])? << 4) | hex_digit(pair[1])?;
    }
    Some(())
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Maximum DER SubjectPublicKeyInfo length of any supported suite (P-256 compressed: 59).
pub const MAX_SPKI_LEN: usize = 59;

/// Largest SubjectPublicKeyInfo [`PublicKey::from_spki_der`] accepts: P-256 with an
/// uncompressed point (91 bytes, what OpenSSL and p256's `EncodePublicKey` emit).
pub const MAX_SPKI_INPUT_LEN: usize = 91;

/// DER AlgorithmIdentifier contents for Ed25519 (RFC 8410): OID 1.3.101.112, no parameters.
const ED25519_ALGORITHM: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];
/// DER AlgorithmIdentifier contents for P-256 (RFC 5480): id-ecPublicKey, prime256v1.
#[cfg(feature = "suite-p256")]
const P256_ALGORITHM: &[u8] = &[
    0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, // id-ecPublicKey
    0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, // prime256v1
];
/// The canonical SPKI bytes before the key: SEQUENCE, AlgorithmIdentifier, BIT STRING header.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];
#[cfg(feature = "suite-p256")]
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x39, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x22, 0x00,
];

const TAG_SEQUENCE: u8 = 0x30;
const TAG_BIT_STRING: u8 = 0x03;

/// Splits one DER TLV off `input`: `(tag, contents, rest)`. Accepts only definite, minimal
/// lengths up to two length bytes (plenty for any public key).
fn der_tlv(input: &[u8]) -> Result<(u8, &[u8], &[u8]), KeyError> {
    let (&tag, rest) = input.split_first().ok_or(KeyError::BadSpki)?;
    let (&first, rest) = rest.split_first().ok_or(KeyError::BadSpki)?;
    let (len, rest) = match first {
        0..=0x7f => (usize::from(first), rest),
        0x81 => match rest {
            [len @ 0x80..=0xff, rest @ ..] => (usize::from(*len), rest),
            _ => return Err(KeyError::BadSpki),
        },
        0x82 => match rest {
            [hi @ 0x01..=0xff, lo, rest @ ..] => (usize::from(*hi) << 8 | usize::from(*lo), rest),
            _ => return Err(KeyError::BadSpki),
        },
        _ => return Err(KeyError::BadSpki),
    };
    if rest.len() < len {
        return Err(KeyError::BadSpki);
    }
    let (contents, rest) = rest.split_at(len);
    Ok((tag, contents, rest))
}

/// A public identity key of some suite, in its wire encoding (32 bytes Ed25519,
/// 33 bytes compressed SEC1 P-256). Always a valid point: constructors check it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct PublicKey {
    suite: SuiteId,
    /// The wire encoding, zero-padded after [`SuiteId::public_key_len`] bytes (so the derived
    /// equality and hash see only the key).
    bytes: [u8; 33],
}

impl PublicKey {
    /// Parses a wire-encoded key of `suite`, rejecting invalid points.
    ///
    /// Ed25519: 32 bytes, a canonically encoded point that is not of small order (such keys
    /// would accept forged signatures). P-256: 33 bytes, a compressed SEC1 point on the curve.
    pub fn from_wire(suite: SuiteId, bytes: &[u8]) -> Result<Self, KeyError> {
        if bytes.len() != suite.public_key_len() {
            return Err(KeyError::BadLength);
        }
        match suite {
            SuiteId::Ed25519 => {
                let raw: &[u8; 32] = bytes.try_into().map_err(|_| KeyError::BadLength)?;
                let key = ed25519_dalek::VerifyingKey::from_bytes(raw)
                    .map_err(|_| KeyError::InvalidKey)?;
                // Decompression accepts a few non-canonical y encodings; one key must have
                // one encoding, or the same device would have two key hashes.
                if key.is_weak() || key.to_edwards().compress().to_bytes() != *raw {
                    return Err(KeyError::InvalidKey);
                }
            }
            #[cfg(feature = "suite-p256")]
            SuiteId::P256 => {
                if !matches!(bytes[0], 0x02 | 0x03) {
                    return Err(KeyError::InvalidKey);
                }
                p256::ecdsa::VerifyingKey::from_sec1_bytes(bytes)
                    .map_err(|_| KeyError::InvalidKey)?;
            }
        }
        let mut padded = [0u8; 33];
        padded[..bytes.len()].copy_from_slice(bytes);
        Ok(Self {
            suite,
            bytes: padded,
        })
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
    /// uncompressed point; the uncompressed form is normalized to compressed).
    ///
    /// Errors: [`KeyError::BadSpki`] for malformed DER (or a point form the algorithm does
    /// not allow), [`KeyError::UnsupportedAlgorithm`] for other algorithms or curves,
    /// [`KeyError::InvalidKey`] for a point not on the curve.
    pub fn from_spki_der(der: &[u8]) -> Result<Self, KeyError> {
        let (tag, spki, trailing) = der_tlv(der)?;
        if tag != TAG_SEQUENCE || !trailing.is_empty() {
            return Err(KeyError::BadSpki);
        }
        let (tag, algorithm, rest) = der_tlv(spki)?;
        if tag != TAG_SEQUENCE {
            return Err(KeyError::BadSpki);
        }
        let (tag, bits, rest) = der_tlv(rest)?;
        if tag != TAG_BIT_STRING || !rest.is_empty() {
            return Err(KeyError::BadSpki);
        }
        // A key is a whole number of bytes: the "unused bits" count must be 0.
        let key = match bits {
            [0, key @ ..] => key,
            _ => return Err(KeyError::BadSpki),
        };
        if algorithm == ED25519_ALGORITHM {
            if key.len() != 32 {
                return Err(KeyError::BadSpki);
            }
            return Self::from_wire(SuiteId::Ed25519, key);
        }
        #[cfg(feature = "suite-p256")]
        if algorithm == P256_ALGORITHM {
            return Self::p256_from_spki_key(key);
        }
        Err(KeyError::UnsupportedAlgorithm)
    }

    /// A P-256 key from an SPKI BIT STRING: a compressed or uncompressed SEC1 point.
    #[cfg(feature = "suite-p256")]
    fn p256_from_spki_key(key: &[u8]) -> Result<Self, KeyError> {
        match key {
            [0x02 | 0x03, ..] if key.len() == 33 => Self::from_wire(SuiteId::P256, key),
            [0x04, ..] if key.len() == 65 => {
                let point = p256::ecdsa::VerifyingKey::from_sec1_bytes(key)
                    .map_err(|_| KeyError::InvalidKey)?;
                let compressed = point.to_sec1_point(true);
                Self::from_wire(SuiteId::P256, compressed.as_bytes())
            }
            _ => Err(KeyError::BadSpki),
        }
    }

    /// The canonical DER SubjectPublicKeyInfo (compressed point for P-256).
    pub fn to_spki_der(&self) -> heapless::Vec<u8, MAX_SPKI_LEN> {
        let prefix: &[u8] = match self.suite {
            SuiteId::Ed25519 => &ED25519_SPKI_PREFIX,
            #[cfg(feature = "suite-p256")]
            SuiteId::P256 => &P256_SPKI_PREFIX,
        };
        let mut out = heapless::Vec::new();
        // Both layouts fit MAX_SPKI_LEN (44 and 59 bytes), so neither push can fail.
        let _ = out.extend_from_slice(prefix);
        let _ = out.extend_from_slice(self.as_wire());
        out
    }

    /// SHA-256 of [`PublicKey::to_spki_der`]: the allowlist identifier.
    pub fn key_hash(&self) -> KeyHash {
        KeyHash(Sha256::digest(self.to_spki_der()).into())
    }

    /// Verifies a signature made by [`SigningIdentity::sign`] (Ed25519 with the strict
    /// checks of `verify_strict`; ECDSA P-256/SHA-256 over r‖s).
    pub fn verify(&self, msg: &[u8], signature: &[u8; 64]) -> Result<(), KeyError> {
        match self.suite {
            SuiteId::Ed25519 => {
                let raw: &[u8; 32] = self
                    .as_wire()
                    .try_into()
                    .map_err(|_| KeyError::InvalidKey)?;
                let key = ed25519_dalek::VerifyingKey::from_bytes(raw)
                    .map_err(|_| KeyError::InvalidKey)?;
                let sig = ed25519_dalek::Signature::from_bytes(signature);
                key.verify_strict(msg, &sig)
                    .map_err(|_| KeyError::BadSignature)
            }
            #[cfg(feature = "suite-p256")]
            SuiteId::P256 => {
                use p256::ecdsa::signature::Verifier;
                let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(self.as_wire())
                    .map_err(|_| KeyError::InvalidKey)?;
                let sig = p256::ecdsa::Signature::from_slice(signature)
                    .map_err(|_| KeyError::BadSignature)?;
                key.verify(msg, &sig).map_err(|_| KeyError::BadSignature)
            }
        }
    }
}

/// The secret key of one suite. Both library types zeroize themselves on drop.
enum SecretKey {
    Ed25519(ed25519_dalek::SigningKey),
    #[cfg(feature = "suite-p256")]
    P256(p256::ecdsa::SigningKey),
}

/// A private signing identity (enrollee identity, configurator identity or fleet owner key).
/// Zeroized on drop (the wrapped dalek / RustCrypto keys zeroize themselves).
pub struct SigningIdentity {
    secret: SecretKey,
}

impl SigningIdentity {
    /// Generates a fresh identity from a cryptographically secure RNG.
    pub fn generate<R: rand_core::CryptoRng + ?Sized>(suite: SuiteId, rng: &mut R) -> Self {
        let secret = match suite {
            SuiteId::Ed25519 => {
                let mut seed = Zeroizing::new([0u8; 32]);
                rng.fill_bytes(seed.as_mut());
                SecretKey::Ed25519(ed25519_dalek::SigningKey::from_bytes(&seed))
            }
            #[cfg(feature = "suite-p256")]
            SuiteId::P256 => {
                use p256::elliptic_curve::Generate;
                #[cfg(feature = "suite-p256")]
                SecretKey::P256(p256::ecdsa::SigningKey::generate_from_rng(rng))
            }
        };
        Self { secret }
    }

    /// Restores an identity from its 32-byte secret ([`SigningIdentity::secret_bytes`]).
    /// A P-256 secret must be a scalar in 1..n.
    pub fn from_secret_bytes(suite: SuiteId, secret: &[u8]) -> Result<Self, KeyError> {
        let seed: &[u8; 32] = secret.try_into().map_err(|_| KeyError::BadLength)?;
        let secret = match suite {
            SuiteId::Ed25519 => SecretKey::Ed25519(ed25519_dalek::SigningKey::from_bytes(seed)),
            #[cfg(feature = "suite-p256")]
            SuiteId::P256 => SecretKey::P256(
                p256::ecdsa::SigningKey::from_slice(seed).map_err(|_| KeyError::InvalidKey)?,
            ),
        };
        Ok(Self { secret })
    }

    /// The 32-byte secret (Ed25519 seed, or P-256 scalar), for storage at rest.
    pub fn secret_bytes(&self) -> Zeroizing<[u8; 32]> {
        let mut out = Zeroizing::new([0u8; 32]);
        match &self.secret {
            SecretKey::Ed25519(key) => out.copy_from_slice(key.as_bytes()),
            #[cfg(feature = "suite-p256")]
            SecretKey::P256(key) => {
                let scalar = Zeroizing::new(key.to_bytes());
                out.copy_from_slice(scalar.as_slice());
            }
        }
        out
    }

    /// The suite of this identity.
    pub fn suite(&self) -> SuiteId {
        match self.secret {
            SecretKey::Ed25519(_) => SuiteId::Ed25519,
            #[cfg(feature = "suite-p256")]
            SecretKey::P256(_) => SuiteId::P256,
        }
    }

    /// The public half.
    pub fn public_key(&self) -> PublicKey {
        let mut bytes = [0u8; 33];
        match &self.secret {
            SecretKey::Ed25519(key) => bytes[..32].copy_from_slice(key.verifying_key().as_bytes()),
            #[cfg(feature = "suite-p256")]
            SecretKey::P256(key) => {
                bytes.copy_from_slice(key.verifying_key().to_sec1_point(true).as_bytes())
            }
        }
        // Derived from a valid secret, so a valid point: no need to re-check.
        PublicKey {
            suite: self.suite(),
            bytes,
        }
    }

    /// Signs `msg` (Ed25519, or deterministic ECDSA P-256/SHA-256 as 64-byte r||s).
    pub fn sign(&self, msg: &[u8]) -> [u8; 64] {
        match &self.secret {
            SecretKey::Ed25519(key) => {
                use ed25519_dalek::Signer;
                key.sign(msg).to_bytes()
            }
            #[cfg(feature = "suite-p256")]
            SecretKey::P256(key) => {
                use p256::ecdsa::signature::Signer;
                let sig: p256::ecdsa::Signature = key.sign(msg);
                let mut out = [0u8; 64];
                out.copy_from_slice(&sig.to_bytes());
                out
            }
        }
    }
}

impl PartialEq for SigningIdentity {
    /// Same suite and same secret, compared in constant time.
    fn eq(&self, other: &Self) -> bool {
        self.suite() == other.suite()
            && bool::from(
                self.secret_bytes()
                    .as_slice()
                    .ct_eq(other.secret_bytes().as_slice()),
            )
    }
}

impl Eq for SigningIdentity {}

impl core::fmt::Debug for SigningIdentity {
    /// Shows the suite and the public key hash, never the secret.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SigningIdentity")
            .field("suite", &self.suite())
            .field(
                "key_hash",
                &format_args!("{}", self.public_key().key_hash()),
            )
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_lengths_must_be_minimal_and_present() {
        assert_eq!(
            der_tlv(&[0x30, 0x01, 0xaa]),
            Ok((0x30, &[0xaa][..], &[][..]))
        );
        assert_eq!(der_tlv(&[0x30, 0x02, 0xaa]), Err(KeyError::BadSpki));
        assert_eq!(der_tlv(&[0x30]), Err(KeyError::BadSpki));
        // 0x81 with a length below 0x80 is BER, not DER.
        assert_eq!(der_tlv(&[0x30, 0x81, 0x01, 0xaa]), Err(KeyError::BadSpki));
        let long = [&[0x04, 0x81, 0x80][..], &[0u8; 0x80]].concat();
        assert!(matches!(der_tlv(&long), Ok((0x04, body, [])) if body.len() == 0x80));
        assert_eq!(der_tlv(&[0x30, 0x82, 0x00, 0x80]), Err(KeyError::BadSpki));
        assert_eq!(der_tlv(&[0x30, 0x80]), Err(KeyError::BadSpki)); // indefinite length
    }

    #[test]
    fn hex_decoding() {
        let mut out = [0u8; 2];
        assert_eq!(decode_hex(b"0aFf", &mut out), Some(()));
        assert_eq!(out, [0x0a, 0xff]);
        assert_eq!(decode_hex(b"0aF", &mut out), None);
        assert_eq!(decode_hex(b"0aFg", &mut out), None);
        assert_eq!(decode_hex(b"0aFf00", &mut out), None);
    }
}
