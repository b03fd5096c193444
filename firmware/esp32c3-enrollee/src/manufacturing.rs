//! Settings baked in at manufacturing: the owner keys to pin and the identity suite
//! (see `build.rs` for the environment variables that set them).

use base64ct::Encoding as _;
use heapless::Vec;
use zerotouch_proto::enrollee::MAX_PINNED_OWNERS;
use zerotouch_proto::{PublicKey, SuiteId};

mod generated {
    include!(concat!(env!("OUT_DIR"), "/manufacturing.rs"));
}

/// The market the image was built for (`ZEROTOUCH_MARKET`): country code and channels.
pub const MARKET: zerotouch_firmware_policy::Market = generated::MARKET;
/// Maximum TX power in quarter-dBm (`ZEROTOUCH_TX_POWER_QDBM`).
pub const TX_POWER_QDBM: i8 = generated::TX_POWER_QDBM;

/// Why the baked-in settings are unusable (the image was built with bad values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManufacturingError {
    /// An owner key (index from 0) is not valid base64 or not a valid Ed25519 / P-256 SPKI
    /// (or of a suite this image was built without).
    BadOwnerKey(usize),
    /// More owner keys than the enrollee can pin.
    TooManyOwners,
    /// The identity suite name is unknown.
    UnknownSuite,
}

impl core::fmt::Display for ManufacturingError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::BadOwnerKey(i) => write!(
                f,
                "owner key {} (counting from 1) of ZEROTOUCH_OWNER_KEYS is not a valid key: rebuild with the owner's base64 DER SPKI",
                i + 1
            ),
            Self::TooManyOwners => write!(
                f,
                "at most {MAX_PINNED_OWNERS} owner keys can be pinned: rebuild with fewer"
            ),
            Self::UnknownSuite => {
                f.write_str("ZEROTOUCH_SUITE must be `ed25519` or `p256`: rebuild")
            }
        }
    }
}

/// The owner keys pinned at manufacturing (empty = trust on first use).
pub fn pinned_owners() -> Result<Vec<PublicKey, MAX_PINNED_OWNERS>, ManufacturingError> {
    let mut owners = Vec::new();
    for (index, encoded) in generated::OWNER_KEYS_SPKI_BASE64.iter().enumerate() {
        let mut der = [0u8; 128];
        let der = base64ct::Base64::decode(encoded, &mut der)
            .map_err(|_| ManufacturingError::BadOwnerKey(index))?;
        let key =
            PublicKey::from_spki_der(der).map_err(|_| ManufacturingError::BadOwnerKey(index))?;
        owners
            .push(key)
            .map_err(|_| ManufacturingError::TooManyOwners)?;
    }
    Ok(owners)
}

/// The suite of the identity key generated on first boot.
pub fn identity_suite() -> Result<SuiteId, ManufacturingError> {
    SuiteId::from_name(generated::IDENTITY_SUITE_NAME).ok_or(ManufacturingError::UnknownSuite)
}
