//! Identity keys, key hashes and configurator certificates: known answers from OpenSSL and
//! RFC 8410, rejection of every malformed input class, and property tests (round trips,
//! no panics on arbitrary bytes).

use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use zerotouch_proto::cert::{ConfiguratorCert, MAX_CERT_LEN};
use zerotouch_proto::error::{CertError, KeyError};
use zerotouch_proto::keys::{KeyHash, MAX_SPKI_LEN, PublicKey, SigningIdentity};
use zerotouch_proto::suite::SuiteId;

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).expect("test fixture is valid hex")
}

fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

// Fixtures produced with OpenSSL 3.0 on the development machine:
//   Ed25519: the RFC 8410 §10.3 private key
//     (MC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC);
//     `openssl pkey -pubout -outform DER`, `openssl pkeyutl -sign -rawin`, `sha256sum`.
//   P-256: `openssl ecparam -name prime256v1 -genkey`; `openssl ec -pubout -outform DER
//     [-conv_form compressed]`; `openssl dgst -sha256 -sign` (DER signature, r and s copied
//     from `openssl asn1parse`).
const ED_SEED: &str = "d4ee72dbf913584ad5b6d8f1f769f8ad3afe7c28cbf1d4fbe097a88f44755842";
const ED_SPKI: &str =
    "302a300506032b657003210019bf44096984cdfe8541bac167dc3b96c85086aa30b6b6cb0c5c38ad703166e1";
const ED_KEY_HASH: &str = "a1e9156054e04fac899ae9f275132cdc07a5dbc4ea2c2ad3a1ffc6e0d253681f";
const ED_SIG: &str = "1caf107fdbbd93c1d7e4e60eb10fee4830a0cd6ec7a360e674c3205bf04f2f93\
                      ab8ada34cf0e474c7e5dc33fb099a3e03c39a798d344a83fc2259766e154f204";
const MSG: &[u8] = b"zerotouch known-answer message";

const P256_SCALAR: &str = "80f2875500fba02bd1e2a0fd706b102007e2f8c2e04c20f084e16e8dbda09922";
const P256_SPKI_UNCOMPRESSED: &str = "3059301306072a8648ce3d020106082a8648ce3d03010703420004\
    cf4e9ba6cb1f4aff85c6965e8462478dbb0d9ee38a1214442a7e995c32fa0cf7\
    8bdf7febee83400ad86872950de8a956dcafd59d155e36918c06bf19c7341b6d";
const P256_SPKI_COMPRESSED: &str = "3039301306072a8648ce3d020106082a8648ce3d03010703220003\
    cf4e9ba6cb1f4aff85c6965e8462478dbb0d9ee38a1214442a7e995c32fa0cf7";
const P256_KEY_HASH: &str = "cd7fc58ecb1f09a65fa66a23239f6793a7278a267d8614407573d9cb415c9d82";
const P256_OPENSSL_SIG: &str = "52a604e6562513c460d7d2820da475a01f69ad2264fee423ffb259e5d6dc73b8\
                                bd72fecce112cd7e2e482837cbbf4d530a08f56ba3c05699bb7d6ebc986821e9";

// Other algorithms, from OpenSSL: an Ed448 key and a compressed P-384 key.
const ED448_SPKI: &str = "3043300506032b6571033a0037fe5114863e0252a96f8bf40becd786906dbd4c94b4d8b15f98a1fcd2954f7885d6d66f038f3916eebffe604ff66111573d2ee9734f7dd700";
const P384_SPKI: &str = "3046301006072a8648ce3d020106052b81040022033200036ffe568609f790361e7346a7beec26d1db8e1190a62cecdf71ae03f7bbcc2edd38f469a952213153fb742c3c7b0e6d34";

#[test]
fn ed25519_matches_rfc8410_and_openssl() {
    let id = SigningIdentity::from_secret_bytes(SuiteId::Ed25519, &unhex(ED_SEED)).unwrap();
    let public = id.public_key();
    assert_eq!(public.to_spki_der().as_slice(), unhex(ED_SPKI).as_slice());
    assert_eq!(public.key_hash().to_string(), ED_KEY_HASH);
    // Ed25519 is deterministic: the signature equals OpenSSL's byte for byte.
    assert_eq!(id.sign(MSG).to_vec(), unhex(ED_SIG));
    let parsed = PublicKey::from_spki_der(&unhex(ED_SPKI)).unwrap();
    assert_eq!(parsed, public);
    let sig: [u8; 64] = unhex(ED_SIG).try_into().unwrap();
    assert_eq!(parsed.verify(MSG, &sig), Ok(()));
    assert_eq!(
        parsed.verify(b"another message", &sig),
        Err(KeyError::BadSignature)
    );
}

#[test]
fn p256_matches_openssl() {
    let id = SigningIdentity::from_secret_bytes(SuiteId::P256, &unhex(P256_SCALAR)).unwrap();
    let public = id.public_key();
    assert_eq!(
        public.to_spki_der().as_slice(),
        unhex(P256_SPKI_COMPRESSED).as_slice()
    );
    assert_eq!(public.to_spki_der().len(), MAX_SPKI_LEN);
    assert_eq!(public.key_hash().to_string(), P256_KEY_HASH);
    // Both SPKI forms OpenSSL emits parse to the same key; the canonical form is compressed.
    let from_uncompressed = PublicKey::from_spki_der(&unhex(P256_SPKI_UNCOMPRESSED)).unwrap();
    let from_compressed = PublicKey::from_spki_der(&unhex(P256_SPKI_COMPRESSED)).unwrap();
    assert_eq!(from_uncompressed, public);
    assert_eq!(from_compressed, public);
    // A (randomized) OpenSSL ECDSA signature verifies, and ours verify too.
    let openssl_sig: [u8; 64] = unhex(P256_OPENSSL_SIG).try_into().unwrap();
    assert_eq!(public.verify(MSG, &openssl_sig), Ok(()));
    assert_eq!(
        public.verify(b"x", &openssl_sig),
        Err(KeyError::BadSignature)
    );
    let ours = id.sign(MSG);
    assert_eq!(public.verify(MSG, &ours), Ok(()));
    // Deterministic (RFC 6979): signing twice gives the same bytes.
    assert_eq!(ours, id.sign(MSG));
}

#[test]
fn spki_errors_are_precise() {
    assert_eq!(
        PublicKey::from_spki_der(&unhex(ED448_SPKI)),
        Err(KeyError::UnsupportedAlgorithm)
    );
    assert_eq!(
        PublicKey::from_spki_der(&unhex(P384_SPKI)),
        Err(KeyError::UnsupportedAlgorithm)
    );
    assert_eq!(PublicKey::from_spki_der(&[]), Err(KeyError::BadSpki));
    let good = unhex(P256_SPKI_COMPRESSED);
    assert_eq!(
        PublicKey::from_spki_der(&good[..good.len() - 1]),
        Err(KeyError::BadSpki)
    );
    let mut trailing = good.clone();
    trailing.push(0);
    assert_eq!(PublicKey::from_spki_der(&trailing), Err(KeyError::BadSpki));
    // Nonzero "unused bits" in the BIT STRING.
    let mut unused_bits = good.clone();
    unused_bits[25] = 1;
    assert_eq!(
        PublicKey::from_spki_der(&unused_bits),
        Err(KeyError::BadSpki)
    );
    // Hybrid point form (0x06) is not allowed.
    let mut hybrid = unhex(P256_SPKI_UNCOMPRESSED);
    hybrid[26] = 0x06;
    assert_eq!(PublicKey::from_spki_der(&hybrid), Err(KeyError::BadSpki));
    // x = 1: 1 - 3 + b is not a square mod p, so no point has this x.
    let mut off_curve = good.clone();
    off_curve[27..].fill(0);
    off_curve[58] = 1;
    assert_eq!(
        PublicKey::from_spki_der(&off_curve),
        Err(KeyError::InvalidKey)
    );
    // Non-minimal (BER) length encoding of the outer SEQUENCE.
    let mut ber = vec![0x30, 0x81, 0x39];
    ber.extend_from_slice(&good[2..]);
    assert_eq!(PublicKey::from_spki_der(&ber), Err(KeyError::BadSpki));
    // An Ed25519 SPKI with a 31-byte key.
    let ed = unhex(ED_SPKI);
    let mut short = ed[..ed.len() - 1].to_vec();
    short[1] -= 1;
    short[10] -= 1;
    assert_eq!(PublicKey::from_spki_der(&short), Err(KeyError::BadSpki));
}

#[test]
fn wire_keys_are_checked() {
    assert_eq!(
        PublicKey::from_wire(SuiteId::Ed25519, &[0; 31]),
        Err(KeyError::BadLength)
    );
    assert_eq!(
        PublicKey::from_wire(SuiteId::P256, &[2; 65]),
        Err(KeyError::BadLength)
    );
    // The Ed25519 identity point (small order) would accept forged signatures.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    assert_eq!(
        PublicKey::from_wire(SuiteId::Ed25519, &identity),
        Err(KeyError::InvalidKey)
    );
    // P-256: only compressed points.
    let mut bad_tag = [0u8; 33];
    bad_tag[0] = 4;
    assert_eq!(
        PublicKey::from_wire(SuiteId::P256, &bad_tag),
        Err(KeyError::InvalidKey)
    );
    let public = PublicKey::from_spki_der(&unhex(P256_SPKI_COMPRESSED)).unwrap();
    assert_eq!(
        PublicKey::from_wire(SuiteId::P256, public.as_wire()),
        Ok(public)
    );
    assert_eq!(public.suite(), SuiteId::P256);
}

#[test]
fn non_canonical_ed25519_encodings_are_rejected() {
    // y + p for y in 0..19 encodes the same y non-canonically (y + p < 2^255).
    let p_minus_19_plus = |y: u8| {
        let mut enc = [0xffu8; 32];
        enc[31] = 0x7f;
        enc[0] = 0xed + y; // p = 2^255 - 19 = ...ffed, so p + y = ...(ed + y)
        enc
    };
    let mut accepted_by_decompression = 0;
    for y in 0..19u8 {
        let enc = p_minus_19_plus(y);
        if ed25519_dalek::VerifyingKey::from_bytes(&enc).is_ok_and(|k| !k.is_weak()) {
            accepted_by_decompression += 1;
        }
        assert_eq!(
            PublicKey::from_wire(SuiteId::Ed25519, &enc),
            Err(KeyError::InvalidKey),
            "y={y}"
        );
    }
    // The canonical-encoding check is what rejects some of them, not decompression alone.
    assert!(accepted_by_decompression > 0);
}

#[test]
fn secrets_round_trip_and_are_validated() {
    for suite in SuiteId::ALL {
        let id = SigningIdentity::generate(suite, &mut rng(7));
        let restored =
            SigningIdentity::from_secret_bytes(suite, id.secret_bytes().as_slice()).unwrap();
        assert_eq!(restored, id);
        assert_eq!(restored.public_key(), id.public_key());
        assert_eq!(id.suite(), suite);
        assert_eq!(id.public_key().as_wire().len(), suite.public_key_len());
        assert_eq!(
            SigningIdentity::from_secret_bytes(suite, &[1; 31]).unwrap_err(),
            KeyError::BadLength
        );
        let other = SigningIdentity::generate(suite, &mut rng(8));
        assert_ne!(other, id);
    }
    // P-256 scalars must be in 1..n.
    assert_eq!(
        SigningIdentity::from_secret_bytes(SuiteId::P256, &[0; 32]).unwrap_err(),
        KeyError::InvalidKey
    );
    assert_eq!(
        SigningIdentity::from_secret_bytes(SuiteId::P256, &[0xff; 32]).unwrap_err(),
        KeyError::InvalidKey
    );
}

#[test]
fn debug_never_shows_the_secret() {
    let id = SigningIdentity::from_secret_bytes(SuiteId::Ed25519, &unhex(ED_SEED)).unwrap();
    let shown = format!("{id:?} {id:#?}");
    assert!(!shown.contains(ED_SEED), "{shown}");
    assert!(!shown.contains("212, 238"), "{shown}"); // the seed as a decimal byte list
    assert!(shown.contains(ED_KEY_HASH), "{shown}");
}

#[test]
fn key_hash_text_forms() {
    let hash = KeyHash::from_hex(P256_KEY_HASH).unwrap();
    assert_eq!(hash.to_string(), P256_KEY_HASH);
    assert_eq!(KeyHash::from_hex(&P256_KEY_HASH.to_uppercase()), Ok(hash));
    assert_eq!(P256_KEY_HASH.parse::<KeyHash>(), Ok(hash));
    assert_eq!(hash.short().to_string(), "cd7fc58e");
    assert_eq!(hash.prefix(), [0xcd, 0x7f, 0xc5, 0x8e]);
    assert_eq!(
        KeyHash::from_hex(&P256_KEY_HASH[1..]),
        Err(KeyError::BadKeyHash)
    );
    assert_eq!(
        KeyHash::from_hex(&format!("{}g", &P256_KEY_HASH[1..])),
        Err(KeyError::BadKeyHash)
    );
    assert_eq!(KeyHash::from_hex(""), Err(KeyError::BadKeyHash));
    // Multi-byte UTF-8 must not be split mid-character.
    assert_eq!(
        KeyHash::from_hex(&"é".repeat(32)),
        Err(KeyError::BadKeyHash)
    );
}

#[test]
fn certificate_issue_verify_and_encoding() {
    for suite in SuiteId::ALL {
        let owner = SigningIdentity::generate(suite, &mut rng(1));
        let configurator = SigningIdentity::generate(suite, &mut rng(2));
        let cert = ConfiguratorCert::issue(&owner, &configurator.public_key(), 1_000).unwrap();
        let owner_pub = owner.public_key();
        assert_eq!(cert.owner_id, owner_pub.key_hash().prefix());
        assert_eq!(cert.verify(&owner_pub, 999), Ok(()));
        assert_eq!(cert.verify(&owner_pub, 1_000), Ok(()));
        assert_eq!(cert.verify(&owner_pub, 1_001), Err(CertError::Expired));

        let bytes = cert.to_bytes();
        assert_eq!(bytes.len(), ConfiguratorCert::encoded_len(suite));
        assert_eq!(bytes[0], 1);
        assert_eq!(&bytes[5..9], &1_000u32.to_be_bytes());
        assert_eq!(
            ConfiguratorCert::from_bytes(suite, &bytes),
            Ok(cert.clone())
        );

        // Another owner: its owner_id differs, so the cert is not "its" cert.
        let stranger = SigningIdentity::generate(suite, &mut rng(3)).public_key();
        assert_eq!(cert.verify(&stranger, 0), Err(CertError::OwnerMismatch));
        // Tampered expiry: the signature no longer matches.
        let mut extended = cert.clone();
        extended.not_after = u32::MAX;
        assert_eq!(extended.verify(&owner_pub, 0), Err(CertError::BadSignature));
        // A forged cert with the right owner_id but another signer.
        let mut forged =
            ConfiguratorCert::issue(&configurator, &configurator.public_key(), 1_000).unwrap();
        forged.owner_id = cert.owner_id;
        assert_eq!(forged.verify(&owner_pub, 0), Err(CertError::BadSignature));

        // Wrong length, version and subject.
        assert_eq!(
            ConfiguratorCert::from_bytes(suite, &bytes[1..]),
            Err(CertError::Malformed)
        );
        let mut v2 = bytes.clone();
        v2[0] = 2;
        assert_eq!(
            ConfiguratorCert::from_bytes(suite, &v2),
            Err(CertError::UnsupportedVersion(2))
        );
    }
    assert_eq!(ConfiguratorCert::encoded_len(SuiteId::Ed25519), 105);
    assert_eq!(ConfiguratorCert::encoded_len(SuiteId::P256), MAX_CERT_LEN);

    // Suites must match.
    let ed_owner = SigningIdentity::generate(SuiteId::Ed25519, &mut rng(4));
    let p_subject = SigningIdentity::generate(SuiteId::P256, &mut rng(5)).public_key();
    assert_eq!(
        ConfiguratorCert::issue(&ed_owner, &p_subject, 1),
        Err(CertError::SuiteMismatch)
    );
    let p_owner = SigningIdentity::generate(SuiteId::P256, &mut rng(6));
    let cert = ConfiguratorCert::issue(&p_owner, &p_subject, 1).unwrap();
    assert_eq!(
        cert.verify(&ed_owner.public_key(), 0),
        Err(CertError::SuiteMismatch)
    );

    // An invalid subject point.
    let mut bad_subject = cert.to_bytes();
    bad_subject[9] = 0x05;
    assert!(matches!(
        ConfiguratorCert::from_bytes(SuiteId::P256, &bad_subject),
        Err(CertError::BadSubject(KeyError::InvalidKey))
    ));
}

#[test]
fn error_messages_are_sentences() {
    let messages = [
        KeyError::BadSpki.to_string(),
        KeyError::UnsupportedAlgorithm.to_string(),
        CertError::Expired.to_string(),
        CertError::BadSubject(KeyError::InvalidKey).to_string(),
        zerotouch_proto::Error::Key(KeyError::BadSignature).to_string(),
    ];
    for m in messages {
        assert!(
            !m.contains("Bad") && !m.contains("Invalid") && m.len() > 30,
            "{m}"
        );
    }
}

fn suite_strategy() -> impl Strategy<Value = SuiteId> {
    prop_oneof![Just(SuiteId::Ed25519), Just(SuiteId::P256)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn spki_round_trips(suite in suite_strategy(), seed in any::<u64>()) {
        let public = SigningIdentity::generate(suite, &mut rng(seed)).public_key();
        let spki = public.to_spki_der();
        prop_assert_eq!(PublicKey::from_spki_der(&spki), Ok(public));
        prop_assert_eq!(PublicKey::from_wire(suite, public.as_wire()), Ok(public));
    }

    #[test]
    fn signatures_round_trip(suite in suite_strategy(), seed in any::<u64>(), msg in proptest::collection::vec(any::<u8>(), 0..200), flip in any::<prop::sample::Index>()) {
        let id = SigningIdentity::generate(suite, &mut rng(seed));
        let mut sig = id.sign(&msg);
        prop_assert_eq!(id.public_key().verify(&msg, &sig), Ok(()));
        sig[flip.index(64)] ^= 1;
        prop_assert!(id.public_key().verify(&msg, &sig).is_err());
    }

    #[test]
    fn certificates_round_trip(suite in suite_strategy(), seed in any::<u64>(), not_after in any::<u32>()) {
        let owner = SigningIdentity::generate(suite, &mut rng(seed));
        let subject = SigningIdentity::generate(suite, &mut rng(seed ^ 1)).public_key();
        let cert = ConfiguratorCert::issue(&owner, &subject, not_after).unwrap();
        let parsed = ConfiguratorCert::from_bytes(suite, &cert.to_bytes()).unwrap();
        prop_assert_eq!(parsed.verify(&owner.public_key(), not_after), Ok(()));
        prop_assert_eq!(parsed, cert);
    }

    #[test]
    fn spki_parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..120)) {
        let _ = PublicKey::from_spki_der(&bytes);
    }

    #[test]
    fn mutated_spki_never_panics_and_stays_canonical(index in 0usize..91, value in any::<u8>(), compressed in any::<bool>()) {
        let mut der = unhex(if compressed { P256_SPKI_COMPRESSED } else { P256_SPKI_UNCOMPRESSED });
        let index = index % der.len();
        der[index] = value;
        if let Ok(key) = PublicKey::from_spki_der(&der) {
            // Whatever was accepted re-encodes to the canonical compressed form.
            prop_assert_eq!(PublicKey::from_spki_der(&key.to_spki_der()), Ok(key));
        }
    }

    #[test]
    fn wire_and_cert_parse_never_panic(suite in suite_strategy(), bytes in proptest::collection::vec(any::<u8>(), 0..120)) {
        let _ = PublicKey::from_wire(suite, &bytes);
        let _ = ConfiguratorCert::from_bytes(suite, &bytes);
        let _ = SigningIdentity::from_secret_bytes(suite, &bytes);
    }
}
