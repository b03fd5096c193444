//! Tests that kill mutants the cargo-mutants run reported missed (TESTING.md §3): each
//! names the mutant it exists for.

use zerotouch_proto::SuiteId;
use zerotouch_proto::crypto::{AeadKey, CryptoError, Prk};

/// Kills `crypto.rs: replace <impl Display for CryptoError>::fmt with Ok(Default::default())`:
/// a crypto failure shown to an operator (logs, CLI errors) must say what failed.
#[test]
fn every_crypto_error_displays_what_failed() {
    let messages = [
        (CryptoError::InvalidPublicKey, "key"),
        (CryptoError::AuthenticationFailed, "authentication"),
        (CryptoError::BadLength, "length"),
    ];
    for (error, topic) in messages {
        let text = error.to_string();
        assert!(text.contains(topic), "{error:?} displays {text:?}");
    }
}

/// Kills `crypto.rs: replace ^= with |= in AeadKey::nonce` (the kind byte and the counter's
/// high byte): both sides would compute the same wrong nonce, and the §10 vectors happen to
/// use IVs and counters where OR equals XOR, so only the definition itself can tell:
/// nonce(kind, n) = iv XOR (kind ‖ 0^9 ‖ n), with iv = nonce(0, 0).
#[test]
fn nonces_are_the_iv_xor_kind_and_counter() {
    let prk = Prk::extract(b"salt", b"ikm");
    for th in 0..64u8 {
        for suite in SuiteId::ALL {
            let key = AeadKey::derive(suite, &prk, b"key", b"iv", &[th; 32]);
            let iv = key.nonce(0, 0);
            for (kind, n) in [
                (1u8, 0u16),
                (0, 0x0101),
                (1, 0xffff),
                (0, 0x8000),
                (1, 0x00ff),
            ] {
                let mut want = iv;
                want[0] ^= kind;
                want[10] ^= (n >> 8) as u8;
                want[11] ^= n as u8;
                assert_eq!(key.nonce(kind, n), want, "kind {kind} n {n:#06x}");
            }
        }
    }
}
