//! The enrollee's trust anchors from what the device holds: the owner keys baked in at
//! manufacturing and the owner pinned by the last commit. Pure (no flash), so the firmware's
//! choice between pinning and trust on first use is tested on the host.

use zerotouch_proto::enrollee::{MAX_PINNED_OWNERS, Trust, TrustError};
use zerotouch_proto::{PublicKey, SuiteId};

/// Why the device's owner keys cannot be pinned. Each means the device could never accept a
/// configurator, so the firmware stops instead of falling back to trust on first use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrustSetError {
    /// Manufacturing owner key `index` (from 0) is of suite `key`, the identity of `identity`.
    FactoryKeySuite {
        /// Position in the manufacturing list, from 0.
        index: usize,
        /// The key's suite.
        key: SuiteId,
        /// The identity's suite.
        identity: SuiteId,
    },
    /// The owner in the commit record is of suite `key`, the identity of `identity`: the
    /// store is inconsistent (no session of the identity's suite can pin such an owner).
    CommittedOwnerSuite {
        /// The committed owner's suite.
        key: SuiteId,
        /// The identity's suite.
        identity: SuiteId,
    },
    /// More distinct manufacturing owner keys than [`MAX_PINNED_OWNERS`].
    TooMany,
    /// The protocol core refused the keys for another reason.
    Rejected(TrustError),
}

impl core::fmt::Display for TrustSetError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::FactoryKeySuite {
                index,
                key,
                identity,
            } => write!(
                f,
                "manufacturing owner key {} (counting from 1) is of suite {} but the device identity is of suite {}: it could never certify a configurator",
                index + 1,
                key.name(),
                identity.name()
            ),
            Self::CommittedOwnerSuite { key, identity } => write!(
                f,
                "the owner pinned by the last provisioning is of suite {} but the device identity is of suite {}: the store is inconsistent",
                key.name(),
                identity.name()
            ),
            Self::TooMany => write!(f, "more than {MAX_PINNED_OWNERS} manufacturing owner keys"),
            Self::Rejected(e) => write!(f, "owner keys refused: {e}"),
        }
    }
}

/// The trust of an enrollee whose identity is of suite `identity`: the manufacturing owner
/// keys (`factory`) plus the owner pinned by the last commit (`committed_owner`), duplicates
/// removed; none at all is [`Trust::FirstUse`]. A key of another suite than the identity is
/// an error, never silently dropped (dropping every key would mean trust on first use).
///
/// The factory keys take precedence: with [`MAX_PINNED_OWNERS`] of them, a committed owner
/// that is not among them is left out (check [`Trust::owners`] to warn about it).
pub fn owner_trust(
    identity: SuiteId,
    factory: &[PublicKey],
    committed_owner: Option<PublicKey>,
) -> Result<Trust, TrustSetError> {
    if let Some((index, key)) = factory
        .iter()
        .enumerate()
        .find(|(_, k)| k.suite() != identity)
    {
        return Err(TrustSetError::FactoryKeySuite {
            index,
            key: key.suite(),
            identity,
        });
    }
    if let Some(owner) = committed_owner
        && owner.suite() != identity
    {
        return Err(TrustSetError::CommittedOwnerSuite {
            key: owner.suite(),
            identity,
        });
    }
    // Distinct manufacturing keys: the committed owner joins them only if there is room.
    let distinct = factory
        .iter()
        .enumerate()
        .filter(|(i, k)| !factory[..*i].contains(k))
        .count();
    let extra = committed_owner.filter(|o| !factory.contains(o) && distinct < MAX_PINNED_OWNERS);
    if distinct == 0 && committed_owner.is_none() {
        return Ok(Trust::FirstUse);
    }
    // `Trust::pinned` removes the duplicates; suites were checked above.
    Trust::pinned(identity, factory.iter().copied().chain(extra)).map_err(|e| match e {
        TrustError::TooMany => TrustSetError::TooMany,
        other => TrustSetError::Rejected(other),
    })
}
