//! `owner_trust`: the firmware's trust from its manufacturing owner keys and the owner its
//! commit record pinned. No keys is trust on first use; a key that cannot match the identity
//! is an error, never a silent fall back to trust on first use.

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use zerotouch_firmware_store::{TrustSetError, owner_trust};
use zerotouch_proto::enrollee::{MAX_PINNED_OWNERS, Trust};
use zerotouch_proto::{PublicKey, SigningIdentity, SuiteId};

fn key(suite: SuiteId, seed: u64) -> PublicKey {
    SigningIdentity::generate(suite, &mut ChaCha20Rng::seed_from_u64(seed)).public_key()
}

fn ed(seed: u64) -> PublicKey {
    key(SuiteId::Ed25519, seed)
}

#[test]
fn no_keys_at_all_is_trust_on_first_use() {
    let trust = owner_trust(SuiteId::Ed25519, &[], None).unwrap();
    assert_eq!(trust, Trust::FirstUse);
    assert_eq!(trust.describe().to_string(), "trust on first use");
}

#[test]
fn the_committed_owner_alone_is_pinned() {
    let trust = owner_trust(SuiteId::Ed25519, &[], Some(ed(1))).unwrap();
    assert_eq!(trust.owners(), &[ed(1)]);
    assert_eq!(trust.describe().to_string(), "pinned (1 owner key)");
}

#[test]
fn manufacturing_keys_and_the_committed_owner_are_pinned_once_each() {
    let factory = [ed(1), ed(2), ed(1)];
    let trust = owner_trust(SuiteId::Ed25519, &factory, None).unwrap();
    assert_eq!(trust.owners(), &[ed(1), ed(2)]);
    // The committed owner is one of them (the usual case with manufacturing pins).
    let trust = owner_trust(SuiteId::Ed25519, &factory, Some(ed(2))).unwrap();
    assert_eq!(trust.owners(), &[ed(1), ed(2)]);
    // Another one (the image was rebuilt with other keys): pinned beside them.
    let trust = owner_trust(SuiteId::Ed25519, &factory, Some(ed(3))).unwrap();
    assert_eq!(trust.owners(), &[ed(1), ed(2), ed(3)]);
    assert_eq!(trust.describe().to_string(), "pinned (3 owner keys)");
}

#[test]
fn a_full_manufacturing_list_keeps_its_keys_over_the_committed_owner() {
    let factory: Vec<PublicKey> = (1..=MAX_PINNED_OWNERS as u64).map(ed).collect();
    let trust = owner_trust(SuiteId::Ed25519, &factory, Some(ed(99))).unwrap();
    assert_eq!(trust.owners(), &factory[..]);
    // Duplicates do not take room.
    let mut doubled = factory[..MAX_PINNED_OWNERS - 1].to_vec();
    doubled.extend_from_within(..);
    let trust = owner_trust(SuiteId::Ed25519, &doubled, Some(ed(99))).unwrap();
    assert_eq!(trust.owners().len(), MAX_PINNED_OWNERS);
    assert_eq!(trust.owners()[MAX_PINNED_OWNERS - 1], ed(99));
}

#[test]
fn too_many_distinct_manufacturing_keys_are_refused() {
    let factory: Vec<PublicKey> = (1..=MAX_PINNED_OWNERS as u64 + 1).map(ed).collect();
    assert_eq!(
        owner_trust(SuiteId::Ed25519, &factory, None),
        Err(TrustSetError::TooMany)
    );
}

#[test]
fn a_manufacturing_key_of_another_suite_is_an_error_not_trust_on_first_use() {
    let p256 = key(SuiteId::P256, 5);
    // Alone: dropping it would leave no key, i.e. trust on first use.
    let err = owner_trust(SuiteId::Ed25519, &[p256], None).unwrap_err();
    assert_eq!(
        err,
        TrustSetError::FactoryKeySuite {
            index: 0,
            key: SuiteId::P256,
            identity: SuiteId::Ed25519,
        }
    );
    let text = err.to_string();
    assert!(text.contains("key 1 "), "{text}");
    assert!(text.contains("p256") && text.contains("ed25519"), "{text}");
    // Beside a good one, and with a committed owner: still refused, not dropped.
    assert_eq!(
        owner_trust(SuiteId::Ed25519, &[ed(1), p256], Some(ed(1))),
        Err(TrustSetError::FactoryKeySuite {
            index: 1,
            key: SuiteId::P256,
            identity: SuiteId::Ed25519,
        })
    );
    // A P-256 identity refuses an Ed25519 key the same way.
    assert_eq!(
        owner_trust(SuiteId::P256, &[key(SuiteId::P256, 6), ed(1)], None),
        Err(TrustSetError::FactoryKeySuite {
            index: 1,
            key: SuiteId::Ed25519,
            identity: SuiteId::P256,
        })
    );
}

#[test]
fn a_committed_owner_of_another_suite_is_an_error() {
    assert_eq!(
        owner_trust(SuiteId::P256, &[], Some(ed(1))),
        Err(TrustSetError::CommittedOwnerSuite {
            key: SuiteId::Ed25519,
            identity: SuiteId::P256,
        })
    );
}

#[test]
fn p256_identities_pin_p256_keys() {
    let factory = [key(SuiteId::P256, 7)];
    let trust = owner_trust(SuiteId::P256, &factory, Some(key(SuiteId::P256, 8))).unwrap();
    match &trust {
        Trust::Pinned(pinned) => assert_eq!(pinned.suite(), SuiteId::P256),
        other => panic!("expected pinned keys, got {other:?}"),
    }
    assert_eq!(trust.owners().len(), 2);
}
