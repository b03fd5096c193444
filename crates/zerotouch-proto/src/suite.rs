//! Cipher suite identifiers. Every frame carries one (crypto agility).

/// A cipher suite: signature scheme, key agreement, KDF and AEAD, fixed together.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
#[repr(u8)]
pub enum SuiteId {
    /// Suite 1: Ed25519, X25519, HKDF-SHA-256, ChaCha20-Poly1305.
    Ed25519 = 1,
    /// Suite 2: P-256 ECDSA and ECDH, HKDF-SHA-256, AES-128-GCM (as DPP, TPMs, secure elements).
    /// Feature `suite-p256` (default); without it the wire id 2 is an unknown suite.
    #[cfg(feature = "suite-p256")]
    P256 = 2,
}

impl SuiteId {
    /// Every suite this build supports, in preference order.
    #[cfg(feature = "suite-p256")]
    pub const ALL: [SuiteId; 2] = [SuiteId::Ed25519, SuiteId::P256];
    /// Every suite this build supports (suite 1 only: built without `suite-p256`).
    #[cfg(not(feature = "suite-p256"))]
    pub const ALL: [SuiteId; 1] = [SuiteId::Ed25519];

    /// The suite with this wire id, if known.
    pub fn from_u8(id: u8) -> Option<Self> {
        match id {
            1 => Some(Self::Ed25519),
            #[cfg(feature = "suite-p256")]
            2 => Some(Self::P256),
            _ => None,
        }
    }

    /// Length in bytes of a public key (identity or ephemeral) on the wire:
    /// 32 for Ed25519/X25519, 33 (compressed SEC1 point) for P-256.
    pub const fn public_key_len(self) -> usize {
        match self {
            Self::Ed25519 => 32,
            #[cfg(feature = "suite-p256")]
            Self::P256 => 33,
        }
    }

    /// Lower-case name used by the CLI and in manifests: `ed25519` or `p256`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Ed25519 => "ed25519",
            #[cfg(feature = "suite-p256")]
            Self::P256 => "p256",
        }
    }

    /// Parses [`SuiteId::name`].
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "ed25519" => Some(Self::Ed25519),
            #[cfg(feature = "suite-p256")]
            "p256" => Some(Self::P256),
            _ => None,
        }
    }
}

impl core::fmt::Display for SuiteId {
    /// [`SuiteId::name`].
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_names_round_trip() {
        for suite in SuiteId::ALL {
            assert_eq!(SuiteId::from_u8(suite as u8), Some(suite));
            assert_eq!(SuiteId::from_name(suite.name()), Some(suite));
        }
        assert_eq!(SuiteId::from_u8(0), None);
        assert_eq!(SuiteId::from_name("P256"), None);
    }
}
