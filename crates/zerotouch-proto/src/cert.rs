//! Configurator certificates: a fleet owner's signature over a configurator identity key,
//! with an expiry. Fixed size, so it fits in the Challenge frame.

use crate::error::CertError;
use crate::keys::{PublicKey, SigningIdentity};
use crate::suite::SuiteId;

/// Largest encoded certificate (P-256): version 1 + owner id 4 + not_after 4 + key 33 + signature 64.
pub const MAX_CERT_LEN: usize = 106;

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
    /// Issues a certificate for `subject`, signed by `owner` (same suite).
    pub fn issue(owner: &SigningIdentity, subject: &PublicKey, not_after: u32) -> Result<Self, CertError> {
        todo!("{:?} {subject:?} {not_after}", owner.suite())
    }

    /// Checks the owner signature and that `now_unix <= not_after`.
    pub fn verify(&self, owner: &PublicKey, now_unix: u32) -> Result<(), CertError> {
        todo!("{owner:?} {now_unix}")
    }

    /// Canonical encoding.
    pub fn to_bytes(&self) -> heapless::Vec<u8, MAX_CERT_LEN> {
        todo!()
    }

    /// Parses the canonical encoding of a certificate of `suite`.
    pub fn from_bytes(suite: SuiteId, bytes: &[u8]) -> Result<Self, CertError> {
        todo!("{suite:?} {bytes:?}")
    }
}
