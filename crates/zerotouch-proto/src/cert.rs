//! Configurator certificates: a fleet owner's signature over a configurator identity key,
//! with an expiry. Fixed size, so it fits in the Challenge frame (PROTOCOL.md §5):
//!
//! `version(1) = 1 ‖ owner_id(4) ‖ not_after(4, big-endian u32) ‖ subject(P) ‖ signature(64)`,
//! 105 bytes for Ed25519 and 106 for P-256. The signature covers
//! `"zerotouch-cert-v1" ‖ suite(1) ‖ owner_id ‖ not_after ‖ subject`.

use crate::error::CertError;
use crate::keys::{PublicKey, SigningIdentity};
use crate::suite::SuiteId;

/// Largest encoded certificate (P-256): version 1 + owner id 4 + not_after 4 + key 33 + signature 64.
pub const MAX_CERT_LEN: usize = 106;

/// The only certificate version this build issues and accepts.
pub const CERT_VERSION: u8 = 1;

/// Domain separation for the signed bytes, so a certificate signature can never be
/// mistaken for any other signature the owner key makes.
const SIGNING_CONTEXT: &[u8] = b"zerotouch-cert-v1";

/// Longest to-be-signed message: context + suite + owner_id + not_after + P-256 key.
const MAX_TBS_LEN: usize = SIGNING_CONTEXT.len() + 1 + 4 + 4 + 33;

/// An owner-signed statement "this configurator key belongs to my fleet until `not_after`".
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ConfiguratorCert {
    /// First 4 bytes of the owner key's key hash: which owner signed.
    pub owner_id: [u8; 4],
    /// Expiry, Unix seconds (u32: valid until 2106).
    pub not_after: u32,
    /// The configurator identity key being certified.
    pub subject: PublicKey,
    /// Owner signature over the canonical to-be-signed bytes (see PROTOCOL.md).
    pub signature: [u8; 64],
}

impl ConfiguratorCert {
    /// Encoded length of a certificate of `suite` (105 Ed25519, 106 P-256).
    pub const fn encoded_len(suite: SuiteId) -> usize {
        1 + 4 + 4 + suite.public_key_len() + 64
    }

    /// The owner_id of certificates `owner` issues: the first 4 bytes of its key hash.
    pub fn owner_id_of(owner: &PublicKey) -> [u8; 4] {
        owner.key_hash().prefix()
    }

    /// Issues a certificate for `subject`, signed by `owner` (same suite).
    pub fn issue(
        owner: &SigningIdentity,
        subject: &PublicKey,
        not_after: u32,
    ) -> Result<Self, CertError> {
        if owner.suite() != subject.suite() {
            return Err(CertError::SuiteMismatch);
        }
        let owner_id = Self::owner_id_of(&owner.public_key());
        let tbs = to_be_signed(subject.suite(), &owner_id, not_after, subject);
        Ok(Self {
            owner_id,
            not_after,
            subject: *subject,
            signature: owner.sign(&tbs),
        })
    }

    /// The suite of the certificate (its subject's).
    pub fn suite(&self) -> SuiteId {
        self.subject.suite()
    }

    /// Checks that `owner` issued this certificate (suite, owner_id and signature) and that
    /// it has not expired: `now_unix <= not_after`. The signature is checked before the
    /// expiry, so an `Expired` answer is only ever given for a genuine certificate.
    pub fn verify(&self, owner: &PublicKey, now_unix: u32) -> Result<(), CertError> {
        if owner.suite() != self.subject.suite() {
            return Err(CertError::SuiteMismatch);
        }
        if Self::owner_id_of(owner) != self.owner_id {
            return Err(CertError::OwnerMismatch);
        }
        let tbs = to_be_signed(self.suite(), &self.owner_id, self.not_after, &self.subject);
        owner
            .verify(&tbs, &self.signature)
            .map_err(|_| CertError::BadSignature)?;
        if now_unix > self.not_after {
            return Err(CertError::Expired);
        }
        Ok(())
    }

    /// Canonical encoding ([`ConfiguratorCert::encoded_len`] bytes).
    pub fn to_bytes(&self) -> heapless::Vec<u8, MAX_CERT_LEN> {
        let mut out = heapless::Vec::new();
        // At most MAX_CERT_LEN bytes in all, so no push can fail.
        let _ = out.push(CERT_VERSION);
        let _ = out.extend_from_slice(&self.owner_id);
        let _ = out.extend_from_slice(&self.not_after.to_be_bytes());
        let _ = out.extend_from_slice(self.subject.as_wire());
        let _ = out.extend_from_slice(&self.signature);
        out
    }

    /// Parses the canonical encoding of a certificate of `suite` (exact length, version 1,
    /// valid subject key). Does not check the signature: see [`ConfiguratorCert::verify`].
    pub fn from_bytes(suite: SuiteId, bytes: &[u8]) -> Result<Self, CertError> {
        if bytes.len() != Self::encoded_len(suite) {
            return Err(CertError::Malformed);
        }
        let (header, rest) = bytes.split_at(9);
        if header[0] != CERT_VERSION {
            return Err(CertError::UnsupportedVersion(header[0]));
        }
        let (key, signature) = rest.split_at(suite.public_key_len());
        let subject = PublicKey::from_wire(suite, key).map_err(CertError::BadSubject)?;
        let mut owner_id = [0u8; 4];
        owner_id.copy_from_slice(&header[1..5]);
        let mut not_after = [0u8; 4];
        not_after.copy_from_slice(&header[5..9]);
        let mut sig = [0u8; 64];
        sig.copy_from_slice(signature);
        Ok(Self {
            owner_id,
            not_after: u32::from_be_bytes(not_after),
            subject,
            signature: sig,
        })
    }
}

/// The bytes the owner signs (PROTOCOL.md §5).
fn to_be_signed(
    suite: SuiteId,
    owner_id: &[u8; 4],
    not_after: u32,
    subject: &PublicKey,
) -> heapless::Vec<u8, MAX_TBS_LEN> {
    let mut tbs = heapless::Vec::new();
    // Sized for the largest suite: no push can fail.
    let _ = tbs.extend_from_slice(SIGNING_CONTEXT);
    let _ = tbs.push(suite as u8);
    let _ = tbs.extend_from_slice(owner_id);
    let _ = tbs.extend_from_slice(&not_after.to_be_bytes());
    let _ = tbs.extend_from_slice(subject.as_wire());
    tbs
}
