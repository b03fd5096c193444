//! The crypto provider: the few operations the protocol needs, per suite, behind a small
//! trait (as rustls does), implemented with vetted RustCrypto / dalek crates.
//!
//! Per suite ([`SuiteProvider`]): ephemeral key generation, ECDH and the AEAD (seal/open in
//! place with associated data). Common to both suites: SHA-256 and HKDF-SHA-256
//! ([`sha256`], [`Prk`]). Every secret lives in a [`Zeroizing`] buffer; AEAD tag checks are
//! constant-time inside the AEAD crates. Signatures belong to [`crate::keys`].

#[cfg(feature = "suite-p256")]
use aes_gcm::Aes128Gcm;
use chacha20poly1305::ChaCha20Poly1305;
use chacha20poly1305::aead::{AeadInOut, KeyInit};
use hkdf::Hkdf;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::suite::SuiteId;

/// AEAD tag length of both suites.
pub const TAG_LEN: usize = 16;
/// AEAD nonce length of both suites.
pub const NONCE_LEN: usize = 12;
/// Longest public key on the wire (P-256 compressed).
pub const MAX_PUBLIC_LEN: usize = 33;
/// Longest AEAD key (ChaCha20-Poly1305).
pub const MAX_AEAD_KEY_LEN: usize = 32;

/// A crypto operation failed. Frame handlers turn these into silent, counted drops.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum CryptoError {
    /// The peer's ephemeral public key is not a valid point (or yields a zero secret).
    InvalidPublicKey,
    /// The AEAD tag did not verify: the frame was modified, or keys/transcripts differ.
    AuthenticationFailed,
    /// A buffer had the wrong length for the operation.
    BadLength,
}

impl core::fmt::Display for CryptoError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::InvalidPublicKey => "peer ephemeral key is invalid",
            Self::AuthenticationFailed => {
                "AEAD authentication failed (modified frame or wrong keys)"
            }
            Self::BadLength => "buffer length does not fit the crypto operation",
        })
    }
}

/// An ephemeral key-agreement key pair (one per handshake attempt). The secret is zeroized
/// on drop.
pub struct EphemeralSecret {
    suite: SuiteId,
    secret: Zeroizing<[u8; 32]>,
    public: [u8; MAX_PUBLIC_LEN],
}

impl EphemeralSecret {
    /// The suite of this key.
    pub fn suite(&self) -> SuiteId {
        self.suite
    }

    /// The public key in its wire encoding (32 or 33 bytes).
    pub fn public(&self) -> &[u8] {
        &self.public[..self.suite.public_key_len()]
    }

    /// Generates a key pair for `suite`.
    pub fn generate<R: rand_core::CryptoRng + ?Sized>(suite: SuiteId, rng: &mut R) -> Self {
        match suite {
            SuiteId::Ed25519 => Suite1::generate_ephemeral(rng),
            #[cfg(feature = "suite-p256")]
            SuiteId::P256 => Suite2::generate_ephemeral(rng),
        }
    }

    /// ECDH with the peer's wire-encoded ephemeral public key: the 32-byte shared secret.
    pub fn agree(&self, peer_public: &[u8]) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
        match self.suite {
            SuiteId::Ed25519 => Suite1::agree(self, peer_public),
            #[cfg(feature = "suite-p256")]
            SuiteId::P256 => Suite2::agree(self, peer_public),
        }
    }
}

/// The per-suite operations (rustls-style provider). Stateless: keys are passed in.
pub trait SuiteProvider {
    /// Which suite this provides.
    const SUITE: SuiteId;
    /// AEAD key length in bytes.
    const AEAD_KEY_LEN: usize;
    /// Generates an ephemeral key pair.
    fn generate_ephemeral<R: rand_core::CryptoRng + ?Sized>(rng: &mut R) -> EphemeralSecret;
    /// ECDH: our ephemeral secret with the peer's wire-encoded public key.
    fn agree(
        secret: &EphemeralSecret,
        peer_public: &[u8],
    ) -> Result<Zeroizing<[u8; 32]>, CryptoError>;
    /// Encrypts `buf` in place and returns the tag.
    fn seal_in_place(
        key: &[u8],
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut [u8],
    ) -> Result<[u8; TAG_LEN], CryptoError>;
    /// Checks `tag` and decrypts `buf` in place (left unspecified on failure).
    fn open_in_place(
        key: &[u8],
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), CryptoError>;
}

/// Suite 1: X25519 and ChaCha20-Poly1305.
pub struct Suite1;
/// Suite 2: P-256 ECDH and AES-128-GCM.
#[cfg(feature = "suite-p256")]
pub struct Suite2;

fn seal_with<A: AeadInOut>(
    aead: &A,
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    buf: &mut [u8],
) -> Result<[u8; TAG_LEN], CryptoError> {
    let nonce = aead::Nonce::<A>::try_from(&nonce[..]).map_err(|_| CryptoError::BadLength)?;
    let tag = aead
        .encrypt_inout_detached(&nonce, aad, buf.into())
        .map_err(|_| CryptoError::BadLength)?;
    let mut out = [0u8; TAG_LEN];
    out.copy_from_slice(tag.as_slice());
    Ok(out)
}

fn open_with<A: AeadInOut>(
    aead: &A,
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    buf: &mut [u8],
    tag: &[u8; TAG_LEN],
) -> Result<(), CryptoError> {
    let nonce = aead::Nonce::<A>::try_from(&nonce[..]).map_err(|_| CryptoError::BadLength)?;
    let tag = aead::Tag::<A>::try_from(&tag[..]).map_err(|_| CryptoError::BadLength)?;
    aead.decrypt_inout_detached(&nonce, aad, buf.into(), &tag)
        .map_err(|_| CryptoError::AuthenticationFailed)
}

use chacha20poly1305::aead;

impl SuiteProvider for Suite1 {
    const SUITE: SuiteId = SuiteId::Ed25519;
    const AEAD_KEY_LEN: usize = 32;

    fn generate_ephemeral<R: rand_core::CryptoRng + ?Sized>(rng: &mut R) -> EphemeralSecret {
        let mut secret = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(&mut secret[..]);
        let static_secret = x25519_dalek::StaticSecret::from(*secret);
        let public = x25519_dalek::PublicKey::from(&static_secret);
        let mut out = [0u8; MAX_PUBLIC_LEN];
        out[..32].copy_from_slice(public.as_bytes());
        EphemeralSecret {
            suite: Self::SUITE,
            secret,
            public: out,
        }
    }

    fn agree(
        secret: &EphemeralSecret,
        peer_public: &[u8],
    ) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
        let peer: [u8; 32] = peer_public
            .try_into()
            .map_err(|_| CryptoError::InvalidPublicKey)?;
        let static_secret = x25519_dalek::StaticSecret::from(*secret.secret);
        let shared = static_secret.diffie_hellman(&x25519_dalek::PublicKey::from(peer));
        // A low-order peer point gives an all-zero secret: refuse it (RFC 7748 §6.1).
        if !shared.was_contributory() {
            return Err(CryptoError::InvalidPublicKey);
        }
        Ok(Zeroizing::new(*shared.as_bytes()))
    }

    fn seal_in_place(
        key: &[u8],
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut [u8],
    ) -> Result<[u8; TAG_LEN], CryptoError> {
        let aead = ChaCha20Poly1305::new_from_slice(key).map_err(|_| CryptoError::BadLength)?;
        seal_with(&aead, nonce, aad, buf)
    }

    fn open_in_place(
        key: &[u8],
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), CryptoError> {
        let aead = ChaCha20Poly1305::new_from_slice(key).map_err(|_| CryptoError::BadLength)?;
        open_with(&aead, nonce, aad, buf, tag)
    }
}

#[cfg(feature = "suite-p256")]
impl SuiteProvider for Suite2 {
    const SUITE: SuiteId = SuiteId::P256;
    const AEAD_KEY_LEN: usize = 16;

    fn generate_ephemeral<R: rand_core::CryptoRng + ?Sized>(rng: &mut R) -> EphemeralSecret {
        use p256::elliptic_curve::sec1::ToSec1Point;
        let mut secret = Zeroizing::new([0u8; 32]);
        // Rejection sampling: a uniformly random 256-bit string is a valid scalar with
        // probability 1 - 2^-32; loop until it is (deterministic for a seeded RNG).
        let key = loop {
            rng.fill_bytes(&mut secret[..]);
            if let Ok(key) = p256::SecretKey::from_slice(&secret[..]) {
                break key;
            }
        };
        let point = key.public_key().to_sec1_point(true);
        let mut out = [0u8; MAX_PUBLIC_LEN];
        out.copy_from_slice(point.as_bytes());
        EphemeralSecret {
            suite: Self::SUITE,
            secret,
            public: out,
        }
    }

    fn agree(
        secret: &EphemeralSecret,
        peer_public: &[u8],
    ) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
        if peer_public.len() != 33 {
            return Err(CryptoError::InvalidPublicKey);
        }
        let peer = p256::PublicKey::from_sec1_bytes(peer_public)
            .map_err(|_| CryptoError::InvalidPublicKey)?;
        let key = p256::SecretKey::from_slice(&secret.secret[..])
            .map_err(|_| CryptoError::InvalidPublicKey)?;
        let shared = p256::ecdh::diffie_hellman(key.to_nonzero_scalar(), peer.as_affine());
        let mut out = Zeroizing::new([0u8; 32]);
        out.copy_from_slice(shared.raw_secret_bytes().as_slice());
        Ok(out)
    }

    fn seal_in_place(
        key: &[u8],
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut [u8],
    ) -> Result<[u8; TAG_LEN], CryptoError> {
        let aead = Aes128Gcm::new_from_slice(key).map_err(|_| CryptoError::BadLength)?;
        seal_with(&aead, nonce, aad, buf)
    }

    fn open_in_place(
        key: &[u8],
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), CryptoError> {
        let aead = Aes128Gcm::new_from_slice(key).map_err(|_| CryptoError::BadLength)?;
        open_with(&aead, nonce, aad, buf, tag)
    }
}

/// AEAD key length of `suite`.
pub const fn aead_key_len(suite: SuiteId) -> usize {
    match suite {
        SuiteId::Ed25519 => Suite1::AEAD_KEY_LEN,
        #[cfg(feature = "suite-p256")]
        SuiteId::P256 => Suite2::AEAD_KEY_LEN,
    }
}

/// SHA-256 over the concatenation of `parts`.
pub fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(hasher.finalize().as_slice());
    out
}

/// An HKDF-SHA-256 pseudorandom key (the output of Extract). Zeroized on drop.
pub struct Prk(Zeroizing<[u8; 32]>);

impl Prk {
    /// HKDF-Extract(salt, ikm).
    pub fn extract(salt: &[u8], ikm: &[u8]) -> Self {
        let (prk, _) = Hkdf::<Sha256>::extract(Some(salt), ikm);
        let mut out = Zeroizing::new([0u8; 32]);
        out.copy_from_slice(prk.as_slice());
        Prk(out)
    }

    /// HKDF-Expand(prk, info = concatenation of `info`, out.len()). `out` is at most 255*32
    /// bytes (the protocol asks for at most 32).
    pub fn expand(&self, info: &[&[u8]], out: &mut [u8]) -> Result<(), CryptoError> {
        let hkdf = Hkdf::<Sha256>::from_prk(&self.0[..]).map_err(|_| CryptoError::BadLength)?;
        hkdf.expand_multi_info(info, out)
            .map_err(|_| CryptoError::BadLength)
    }
}

/// Nonce kind for Data frames (§6.1 `nonce(0, seq)`).
pub const NONCE_KIND_DATA: u8 = 0;
/// Nonce kind for Ack frames (§6.1 `nonce(1, counter)`).
pub const NONCE_KIND_ACK: u8 = 1;

/// One direction's AEAD key and IV. Zeroized on drop.
pub struct AeadKey {
    suite: SuiteId,
    key: Zeroizing<[u8; MAX_AEAD_KEY_LEN]>,
    iv: Zeroizing<[u8; NONCE_LEN]>,
}

impl AeadKey {
    /// An all-zero key that stands in for "no key" in an unused channel (the channel is
    /// wiped and accepts nothing until it gets real keys). Never protects a frame.
    pub(crate) fn placeholder(suite: SuiteId) -> AeadKey {
        AeadKey {
            suite,
            key: Zeroizing::new([0; MAX_AEAD_KEY_LEN]),
            iv: Zeroizing::new([0; NONCE_LEN]),
        }
    }

    /// Derives `key = Expand(prk, key_label ‖ th, Nk)` and `iv = Expand(prk, iv_label ‖ th, 12)`.
    pub fn derive(
        suite: SuiteId,
        prk: &Prk,
        key_label: &[u8],
        iv_label: &[u8],
        th: &[u8; 32],
    ) -> Self {
        let mut key = Zeroizing::new([0u8; MAX_AEAD_KEY_LEN]);
        let mut iv = Zeroizing::new([0u8; NONCE_LEN]);
        let nk = aead_key_len(suite);
        // Lengths 12..=32 are always valid HKDF-SHA-256 output lengths: cannot fail.
        let _ = prk.expand(&[key_label, th], &mut key[..nk]);
        let _ = prk.expand(&[iv_label, th], &mut iv[..]);
        AeadKey { suite, key, iv }
    }

    /// The per-frame nonce `iv XOR (kind ‖ 0^9 ‖ counter_be16)` (§6.1). The handshake
    /// frames use `nonce(0, 0)` = the IV itself.
    pub fn nonce(&self, kind: u8, counter: u16) -> [u8; NONCE_LEN] {
        let mut nonce = *self.iv;
        nonce[0] ^= kind;
        let c = counter.to_be_bytes();
        nonce[10] ^= c[0];
        nonce[11] ^= c[1];
        nonce
    }

    fn key(&self) -> &[u8] {
        &self.key[..aead_key_len(self.suite)]
    }

    /// Encrypts `buf` in place under `nonce`, authenticating `aad`; returns the tag.
    pub fn seal(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut [u8],
    ) -> Result<[u8; TAG_LEN], CryptoError> {
        match self.suite {
            SuiteId::Ed25519 => Suite1::seal_in_place(self.key(), nonce, aad, buf),
            #[cfg(feature = "suite-p256")]
            SuiteId::P256 => Suite2::seal_in_place(self.key(), nonce, aad, buf),
        }
    }

    /// Verifies `tag` and decrypts `buf` in place.
    pub fn open(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), CryptoError> {
        match self.suite {
            SuiteId::Ed25519 => Suite1::open_in_place(self.key(), nonce, aad, buf, tag),
            #[cfg(feature = "suite-p256")]
            SuiteId::P256 => Suite2::open_in_place(self.key(), nonce, aad, buf, tag),
        }
    }
}

/// The handshake key schedule of PROTOCOL.md §6.1, shared by both roles.
pub mod schedule {
    use super::{AeadKey, Prk, sha256};
    use crate::suite::SuiteId;

    /// Context string prefixed to the configurator's transcript signature.
    pub const C_SIG_CONTEXT: &[u8] = b"zerotouch-c-sig-v1";
    /// Context string prefixed to the enrollee's transcript signature.
    pub const E_SIG_CONTEXT: &[u8] = b"zerotouch-e-sig-v1";
    /// Length of a signed transcript message: context (18) ‖ SHA-256 (32).
    pub const SIG_MSG_LEN: usize = 50;
    /// Context string prefixed to the enrollee's Announce signature `sig_A` (§4.1).
    pub const A_SIG_CONTEXT: &[u8] = b"zerotouch-a-sig-v2";
    /// Longest Announce signature message: context (18) ‖ header to channel (6 + 2·33 + 9).
    pub const A_SIG_MSG_MAX: usize = 18 + 6 + 2 * super::MAX_PUBLIC_LEN + 9;

    /// What the enrollee signs in its Announce: `A_SIG_CONTEXT ‖ Announce[..channel end]`
    /// (the frame itself, not a hash: it is short).
    pub fn a_sig_message(signed_part: &[u8]) -> heapless::Vec<u8, A_SIG_MSG_MAX> {
        let mut m = heapless::Vec::new();
        let _ = m.extend_from_slice(A_SIG_CONTEXT);
        let _ = m.extend_from_slice(signed_part);
        m
    }

    /// Handshake secrets: the PRK and both directions' handshake keys.
    pub struct HandshakeKeys {
        /// HKDF PRK from the ECDH secret.
        pub prk: Prk,
        /// Configurator → enrollee handshake key (seals the Challenge).
        pub c: AeadKey,
        /// Enrollee → configurator handshake key (seals the Response).
        pub e: AeadKey,
    }

    /// `prk = Extract("zerotouch-v1" ‖ suite, ss)`, `TH1 = SHA-256(Announce ‖ CH_clear)`,
    /// handshake keys from TH1.
    pub fn handshake_keys(
        suite: SuiteId,
        ss: &[u8; 32],
        announce: &[u8],
        ch_clear: &[u8],
    ) -> HandshakeKeys {
        let mut salt = [0u8; 13];
        salt[..12].copy_from_slice(b"zerotouch-v1");
        salt[12] = suite as u8;
        let prk = Prk::extract(&salt, ss);
        let th1 = sha256(&[announce, ch_clear]);
        let c = AeadKey::derive(suite, &prk, b"zt hs c key", b"zt hs c iv", &th1);
        let e = AeadKey::derive(suite, &prk, b"zt hs e key", b"zt hs e iv", &th1);
        HandshakeKeys { prk, c, e }
    }

    fn signed(context: &[u8], hash: [u8; 32]) -> [u8; SIG_MSG_LEN] {
        let mut m = [0u8; SIG_MSG_LEN];
        m[..18].copy_from_slice(context);
        m[18..].copy_from_slice(&hash);
        m
    }

    /// What the configurator signs: `C_SIG_CONTEXT ‖ SHA-256(Announce ‖ CH_clear ‖ cert)`.
    pub fn c_sig_message(announce: &[u8], ch_clear: &[u8], cert: &[u8]) -> [u8; SIG_MSG_LEN] {
        signed(C_SIG_CONTEXT, sha256(&[announce, ch_clear, cert]))
    }

    /// What the enrollee signs: `E_SIG_CONTEXT ‖ TH2`, `TH2 = SHA-256(Announce ‖ Challenge)`.
    pub fn e_sig_message(announce: &[u8], challenge: &[u8]) -> [u8; SIG_MSG_LEN] {
        signed(E_SIG_CONTEXT, sha256(&[announce, challenge]))
    }

    /// Application keys `(c, e)` from `TH3 = SHA-256(Announce ‖ Challenge ‖ Response)`.
    pub fn app_keys(
        suite: SuiteId,
        prk: &Prk,
        announce: &[u8],
        challenge: &[u8],
        response: &[u8],
    ) -> (AeadKey, AeadKey) {
        let th3 = sha256(&[announce, challenge, response]);
        (
            AeadKey::derive(suite, prk, b"zt ap c key", b"zt ap c iv", &th3),
            AeadKey::derive(suite, prk, b"zt ap e key", b"zt ap e iv", &th3),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Counter(u8);
    impl rand_core::TryRng for Counter {
        type Error = core::convert::Infallible;
        fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
            let mut b = [0u8; 4];
            self.try_fill_bytes(&mut b)?;
            Ok(u32::from_le_bytes(b))
        }
        fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
            let mut b = [0u8; 8];
            self.try_fill_bytes(&mut b)?;
            Ok(u64::from_le_bytes(b))
        }
        fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
            for b in dst {
                self.0 = self.0.wrapping_mul(13).wrapping_add(7);
                *b = self.0;
            }
            Ok(())
        }
    }
    impl rand_core::TryCryptoRng for Counter {}

    #[test]
    fn ecdh_agrees_and_aead_round_trips_for_both_suites() {
        let mut rng = Counter(1);
        for suite in SuiteId::ALL {
            let a = EphemeralSecret::generate(suite, &mut rng);
            let b = EphemeralSecret::generate(suite, &mut rng);
            let sa = a.agree(b.public()).unwrap();
            let sb = b.agree(a.public()).unwrap();
            assert_eq!(*sa, *sb);
            let prk = Prk::extract(b"salt", &sa[..]);
            let key = AeadKey::derive(suite, &prk, b"k", b"iv", &[0; 32]);
            let mut buf = *b"hello world";
            let nonce = key.nonce(NONCE_KIND_DATA, 3);
            let tag = key.seal(&nonce, b"aad", &mut buf).unwrap();
            assert_ne!(&buf, b"hello world");
            let mut bad = buf;
            assert_eq!(
                key.open(&nonce, b"aaD", &mut bad, &tag),
                Err(CryptoError::AuthenticationFailed)
            );
            key.open(&nonce, b"aad", &mut buf, &tag).unwrap();
            assert_eq!(&buf, b"hello world");
        }
    }

    #[test]
    fn low_order_x25519_point_is_refused() {
        let mut rng = Counter(9);
        let a = EphemeralSecret::generate(SuiteId::Ed25519, &mut rng);
        assert_eq!(
            a.agree(&[0u8; 32]).err(),
            Some(CryptoError::InvalidPublicKey)
        );
        let p = EphemeralSecret::generate(SuiteId::P256, &mut rng);
        assert_eq!(
            p.agree(&[0u8; 33]).err(),
            Some(CryptoError::InvalidPublicKey)
        );
        assert_eq!(
            p.agree(&[2u8; 32]).err(),
            Some(CryptoError::InvalidPublicKey)
        );
    }
}
