//! One test per defence of the handshake that an earlier test suite could not tell from a
//! missing one (issue 8): each attack here is stopped by exactly one check, so removing
//! that check makes the test fail.
//!
//! - a rogue configurator whose forged certificate carries the *real* owner's id (so it
//!   passes the owner-id lookup and reaches the signature check), pinned and TOFU, and one
//!   that replays the real configurator's genuine certificate (stopped by sig_C alone);
//! - expired certificates, by the configurator's time and by the device's own clock, and
//!   the boundary (`not_after` equal to the best known time is still valid);
//! - an eavesdropper that derives every key it can from public data and tries to open every
//!   recorded frame (and, as a control, opens them all once given the real ECDH secret);
//! - spoofed and replayed Announces of the device's key sent after the real one, while its
//!   handshake runs;
//! - an impersonator of an allowlisted key that completes the ECDH and seals a Response
//!   correctly but cannot make sig_E (stopped by the sig_E check alone).

mod common;

use common::*;
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use zerotouch_proto::configurator::{ConfiguratorEvent, ConfiguratorIdentity, SessionFailure};
use zerotouch_proto::crypto::{
    AeadKey, EphemeralSecret, NONCE_LEN, Prk, TAG_LEN, schedule, sha256,
};
use zerotouch_proto::enrollee::{AttemptFailure, Enrollee, EnrolleeEvent, RejectReason};
use zerotouch_proto::wire::{
    AnnounceRepr, Challenge, RESPONSE_LEN, challenge_len, emit_response_plain,
};
use zerotouch_proto::{AnnounceMode, ConfiguratorCert, FailureReason, SigningIdentity, SuiteId};

const ANNOUNCE: u8 = 1;
const CHALLENGE: u8 = 2;
const RESPONSE: u8 = 3;

/// The session seed of every world here; the enrollee's RNG is seeded `SEED ^ 0xe0`.
const SEED: u64 = 40;

/// A world whose enrollee announces first on the configurator's channel.
fn world(keys: &Keys, pinned: bool, identity: ConfiguratorIdentity) -> World {
    let pinned = if pinned {
        vec![keys.owner.public_key()]
    } else {
        vec![]
    };
    let mut w = World::with_identity(keys, &pinned, identity, perfect(), SEED);
    let mut settings = keys.enrollee_settings(&pinned);
    settings.last_channel = Some(C_CHANNEL);
    w.enrollee = Enrollee::new(settings, ChaCha20Rng::seed_from_u64(SEED ^ 0xe0), 0);
    w
}

fn copy(identity: &SigningIdentity) -> SigningIdentity {
    SigningIdentity::from_secret_bytes(identity.suite(), &identity.secret_bytes()[..])
        .expect("copy identity")
}

/// A configurator with its own identity key, a certificate signed by its own owner key but
/// carrying the real owner's id, and the real owner's public key to send in the Config.
fn rogue_with_forged_cert(keys: &Keys) -> ConfiguratorIdentity {
    let mut rng = ChaCha20Rng::seed_from_u64(0x6f6e);
    let rogue_owner = SigningIdentity::generate(keys.suite, &mut rng);
    let rogue = SigningIdentity::generate(keys.suite, &mut rng);
    let mut cert = ConfiguratorCert::issue(&rogue_owner, &rogue.public_key(), UNIX_TIME + 86_400)
        .expect("issue");
    cert.owner_id = ConfiguratorCert::owner_id_of(&keys.owner.public_key());
    ConfiguratorIdentity {
        identity: rogue,
        cert,
        owner: keys.owner.public_key(),
    }
}

fn frames_of_type(w: &World, kind: u8) -> usize {
    w.air.iter().filter(|(_, f)| f[2] == kind).count()
}

fn rejections(w: &World) -> Vec<RejectReason> {
    w.enrollee_events
        .iter()
        .filter_map(|e| match e {
            EnrolleeEvent::ConfiguratorRejected(r) => Some(*r),
            _ => None,
        })
        .collect()
}

/// Pinned mode: the device must reject every Challenge for `reason` and never answer.
fn assert_rejected_before_answering(w: &mut World, reason: RejectReason) {
    assert!(
        !w.run(5_000),
        "provisioned by a configurator it must reject"
    );
    let rejected = rejections(w);
    assert!(!rejected.is_empty(), "no Challenge was rejected");
    assert!(
        rejected.iter().all(|r| *r == reason),
        "rejected for {rejected:?}, not {reason:?}"
    );
    assert_eq!(frames_of_type(w, RESPONSE), 0, "the device answered");
    assert!(
        !w.configurator_events
            .iter()
            .any(|e| matches!(e, ConfiguratorEvent::Authenticated { .. })),
        "the rogue authenticated the device"
    );
}

#[test]
fn pinned_device_rejects_a_forged_certificate_carrying_the_real_owner_id() {
    for suite in SuiteId::ALL {
        let keys = Keys::new(suite, 41);
        let mut w = world(&keys, true, rogue_with_forged_cert(&keys));
        assert_rejected_before_answering(&mut w, RejectReason::BadSignature);
    }
}

#[test]
fn pinned_device_rejects_a_rogue_replaying_the_genuine_certificate() {
    // The real owner's certificate of the real configurator, sent by a rogue that signs the
    // transcript with its own key: only the sig_C check (subject key) stops it.
    for suite in SuiteId::ALL {
        let keys = Keys::new(suite, 42);
        let genuine = keys.identity(&keys.owner);
        let rogue = SigningIdentity::generate(suite, &mut ChaCha20Rng::seed_from_u64(0x51));
        let identity = ConfiguratorIdentity {
            identity: rogue,
            cert: genuine.cert,
            owner: genuine.owner,
        };
        let mut w = world(&keys, true, identity);
        assert_rejected_before_answering(&mut w, RejectReason::BadSignature);
    }
}

#[test]
fn tofu_device_rejects_the_config_of_a_forged_certificate_and_pins_nothing() {
    // Trust on first use answers any certified-looking Challenge; the owner key in the
    // Config (the real owner's, so its id matches) must then verify the certificate.
    for suite in SuiteId::ALL {
        let keys = Keys::new(suite, 43);
        let mut w = world(&keys, false, rogue_with_forged_cert(&keys));
        assert!(
            !w.run(5_000),
            "{suite:?}: provisioned by a forged certificate"
        );
        assert!(
            w.joined_configs.is_empty(),
            "{suite:?}: joined a rogue network"
        );
        assert!(
            w.enrollee_events
                .contains(&EnrolleeEvent::AttemptFailed(AttemptFailure::Join(
                    FailureReason::ConfigRejected
                ))),
            "{suite:?}: {:?}",
            w.enrollee_events
        );
        assert!(
            !w.enrollee_events
                .iter()
                .any(|e| matches!(e, EnrolleeEvent::Provisioned(_))),
            "{suite:?}: pinned a rogue owner"
        );
        // What the rogue's own registry would record: the device refused its configuration.
        assert!(
            w.configurator_events.iter().any(|e| matches!(
                e,
                ConfiguratorEvent::JoinReported {
                    result: Err(FailureReason::ConfigRejected),
                    ..
                }
            )),
            "{suite:?}: {:?}",
            w.configurator_events
        );
    }
}

/// The real configurator with a certificate valid until `not_after`.
fn certified_until(keys: &Keys, not_after: u32) -> ConfiguratorIdentity {
    let identity = copy(&keys.configurator);
    let cert =
        ConfiguratorCert::issue(&keys.owner, &identity.public_key(), not_after).expect("issue");
    ConfiguratorIdentity {
        identity,
        cert,
        owner: keys.owner.public_key(),
    }
}

#[test]
fn pinned_device_rejects_a_certificate_expired_by_the_configurators_time() {
    for suite in SuiteId::ALL {
        let keys = Keys::new(suite, 44);
        let mut w = world(&keys, true, certified_until(&keys, UNIX_TIME - 1));
        assert_rejected_before_answering(&mut w, RejectReason::CertificateExpired);
    }
}

#[test]
fn pinned_device_rejects_a_certificate_expired_by_its_own_clock() {
    // The configurator's clock is behind (its timeC is within the validity); the device's
    // known time is past not_after: max(known_time, timeC) decides.
    for suite in SuiteId::ALL {
        let keys = Keys::new(suite, 45);
        let mut w = world(&keys, true, certified_until(&keys, UNIX_TIME + 100));
        let mut settings = keys.enrollee_settings(&[keys.owner.public_key()]);
        settings.last_channel = Some(C_CHANNEL);
        settings.known_unix_time = UNIX_TIME + 101;
        w.enrollee = Enrollee::new(settings, ChaCha20Rng::seed_from_u64(SEED ^ 0xe0), 0);
        assert_rejected_before_answering(&mut w, RejectReason::CertificateExpired);
    }
}

#[test]
fn a_certificate_is_valid_up_to_and_including_not_after() {
    for suite in SuiteId::ALL {
        let keys = Keys::new(suite, 46);
        let mut w = world(&keys, true, certified_until(&keys, UNIX_TIME));
        assert!(w.run(60_000), "{suite:?}: not_after == timeC rejected");
        assert_eq!(w.provisioned().expect("provisioned").unix_time, UNIX_TIME);
    }
}

/// The sealed parts of a recorded session: (aad, ciphertext, tag) of every frame but the
/// Announce.
fn sealed_parts(suite: SuiteId, air: &[(Dir, Vec<u8>)]) -> Vec<(Vec<u8>, Vec<u8>, [u8; TAG_LEN])> {
    let p = suite.public_key_len();
    air.iter()
        .filter(|(_, f)| f[2] != ANNOUNCE)
        .map(|(_, f)| {
            let clear = match f[2] {
                CHALLENGE => 28 + p,
                RESPONSE => 8,
                _ => 15,
            };
            let (body, tag) = f.split_at(f.len() - TAG_LEN);
            let tag: [u8; TAG_LEN] = tag.try_into().expect("tag");
            (f[..clear].to_vec(), body[clear..].to_vec(), tag)
        })
        .collect()
}

/// Every AEAD key the §6.1 schedule gives from `ikm` under either salt, for the three
/// transcript hashes and the four directions/stages.
fn schedule_keys(suite: SuiteId, ikm: &[u8], transcripts: &[[u8; 32]]) -> Vec<AeadKey> {
    let salt = [b"zerotouch-v1".as_slice(), &[suite as u8]].concat();
    let labels: [(&[u8], &[u8]); 4] = [
        (b"zt hs c key", b"zt hs c iv"),
        (b"zt hs e key", b"zt hs e iv"),
        (b"zt ap c key", b"zt ap c iv"),
        (b"zt ap e key", b"zt ap e iv"),
    ];
    let mut keys = Vec::new();
    for salt in [salt.as_slice(), b""] {
        let prk = Prk::extract(salt, ikm);
        for th in transcripts {
            for (key_label, iv_label) in labels {
                keys.push(AeadKey::derive(suite, &prk, key_label, iv_label, th));
            }
        }
    }
    keys
}

/// Which of `sealed` some key in `keys` opens, under any nonce the protocol uses.
fn opened(keys: &[AeadKey], sealed: &[(Vec<u8>, Vec<u8>, [u8; TAG_LEN])]) -> Vec<bool> {
    sealed
        .iter()
        .map(|(aad, body, tag)| {
            keys.iter().any(|key| {
                (0..2u8).any(|kind| {
                    (0..8u16).any(|n| {
                        let nonce: [u8; NONCE_LEN] = key.nonce(kind, n);
                        let mut buf = body.clone();
                        key.open(&nonce, aad, &mut buf, tag).is_ok()
                    })
                })
            })
        })
        .collect()
}

#[test]
fn an_eavesdropper_with_every_public_value_opens_no_frame() {
    for suite in SuiteId::ALL {
        let p = suite.public_key_len();
        let keys = Keys::new(suite, 47);
        let mut w = world(&keys, true, keys.identity(&keys.owner));
        assert!(w.run(60_000));
        let air = w.air.clone();
        let (announce, challenge, response) = (&air[0].1, &air[1].1, &air[2].1);
        let sealed = sealed_parts(suite, &air);
        assert_eq!(sealed.len(), 6, "Challenge, Response, 2 Data, 2 Acks");
        let ch_clear = &challenge[..28 + p];
        let transcripts = [
            sha256(&[announce, ch_clear]),
            sha256(&[announce, challenge]),
            sha256(&[announce, challenge, response]),
        ];

        // Everything on the air or published: identity keys (the configurator's too), both
        // ephemeral keys, the owner key, hashes and concatenations of them, all-zero.
        let eph_e = &announce[6 + p..6 + 2 * p];
        let eph_c = &challenge[24..24 + p];
        let public: Vec<Vec<u8>> = vec![
            keys.enrollee.public_key().as_wire().to_vec(),
            keys.configurator.public_key().as_wire().to_vec(),
            keys.owner.public_key().as_wire().to_vec(),
            eph_e.to_vec(),
            eph_c.to_vec(),
            [eph_e, eph_c].concat(),
            [eph_c, eph_e].concat(),
        ];
        let mut candidates: Vec<Vec<u8>> = vec![vec![0; 32], vec![]];
        for value in &public {
            candidates.push(value.clone());
            candidates.push(value[value.len() - 32..].to_vec()); // an x-coordinate
            candidates.push(sha256(&[value]).to_vec());
        }
        candidates.extend(transcripts.iter().map(|t| t.to_vec()));
        for ikm in &candidates {
            let derived = schedule_keys(suite, ikm, &transcripts);
            let opened = opened(&derived, &sealed);
            assert!(
                !opened.contains(&true),
                "{suite:?}: ikm {} opens frames {opened:?}",
                hex::encode(ikm)
            );
        }

        // Control: the same procedure with the real ECDH secret opens every frame, so the
        // attempts above were able to succeed had the keys depended on public data only.
        let enrollee_ephemeral =
            EphemeralSecret::generate(suite, &mut ChaCha20Rng::seed_from_u64(SEED ^ 0xe0));
        assert_eq!(
            enrollee_ephemeral.public(),
            eph_e,
            "the enrollee's ephemeral key"
        );
        let ss = enrollee_ephemeral.agree(eph_c).expect("ECDH");
        let real = schedule_keys(suite, &ss[..], &transcripts);
        assert_eq!(opened(&real, &sealed), vec![true; 6], "{suite:?}: control");
    }
}

/// Runs `w` until the configurator has sent its Challenge to the device's real Announce and
/// is waiting for the Response.
fn run_into_handshake(w: &mut World) {
    assert!(!w.run(1), "provisioned already");
    assert_eq!(frames_of_type(w, ANNOUNCE), 1);
    assert_eq!(
        frames_of_type(w, CHALLENGE),
        1,
        "the Challenge is on its way"
    );
}

/// `announce` with the ephemeral key replaced (an attacker's own, valid for the suite) and
/// the highest counter, so that only the signature check can refuse it.
fn spoofed(keys: &Keys, announce: &[u8]) -> Vec<u8> {
    let p = keys.suite.public_key_len();
    let mut spoof = announce.to_vec();
    spoof[6 + p..6 + 2 * p].copy_from_slice(keys.owner.public_key().as_wire());
    spoof[6 + 2 * p..6 + 2 * p + 8].copy_from_slice(&u64::MAX.to_be_bytes());
    spoof
}

/// A validly signed Announce of the device's key from an earlier boot (another ephemeral key,
/// a lower counter): only the counter check can refuse it.
fn old_announce(keys: &Keys) -> Vec<u8> {
    let mut earlier = world(keys, true, keys.identity(&keys.owner));
    let mut settings = keys.enrollee_settings(&[keys.owner.public_key()]);
    settings.last_channel = Some(C_CHANNEL);
    settings.boot_counter = 0;
    earlier.enrollee = Enrollee::new(settings, ChaCha20Rng::seed_from_u64(SEED ^ 0x01d), 0);
    assert!(earlier.run(60_000));
    earlier.air[0].1.clone()
}

fn joins(w: &World) -> Vec<Result<(), FailureReason>> {
    w.configurator_events
        .iter()
        .filter_map(|e| match e {
            ConfiguratorEvent::JoinReported { result, .. } => Some(*result),
            _ => None,
        })
        .collect()
}

/// The clean session's duration, for comparison.
fn clean_duration(keys: &Keys) -> u64 {
    let mut w = world(keys, true, keys.identity(&keys.owner));
    assert!(w.run(60_000));
    w.now
}

#[test]
fn one_spoofed_or_replayed_announce_after_the_real_one_does_not_delay_the_handshake() {
    for suite in SuiteId::ALL {
        let keys = Keys::new(suite, 48);
        let clean = clean_duration(&keys);
        let old = old_announce(&keys);
        for (what, inject) in [
            ("spoofed", None),
            ("replayed from an earlier attempt", Some(old.clone())),
            ("the real one again", Some(Vec::new())),
        ] {
            let mut w = world(&keys, true, keys.identity(&keys.owner));
            run_into_handshake(&mut w);
            let real = w.air[0].1.clone();
            let frame = match inject {
                None => spoofed(&keys, &real),
                Some(bytes) if bytes.is_empty() => real.clone(),
                Some(bytes) => bytes,
            };
            w.configurator
                .handle_frame(w.now, E_ADDR, &frame, &w.allowlist);
            assert!(w.run(60_000), "{suite:?} {what}: not provisioned");
            assert_eq!(
                w.now, clean,
                "{suite:?} {what}: the real handshake was delayed"
            );
            assert_eq!(frames_of_type(&w, ANNOUNCE), 1, "{suite:?} {what}");
            assert_eq!(joins(&w), vec![Ok(())], "{suite:?} {what}");
        }
    }
}

#[test]
fn a_flood_of_forged_replayed_and_copied_announces_never_displaces_the_live_handshake() {
    // PROTOCOL.md §9.2: forged Announces fail sig_A, replays fail the counter, copies of the
    // live one draw at most one identical Challenge per resend interval. None ends the
    // handshake, none is reported as an announcement, and the device is provisioned as fast
    // as without them, in one attempt.
    for suite in SuiteId::ALL {
        let keys = Keys::new(suite, 49);
        let clean = clean_duration(&keys);
        let old = old_announce(&keys);
        let mut w = world(&keys, true, keys.identity(&keys.owner));
        run_into_handshake(&mut w);
        let real = w.air[0].1.clone();
        let spoof = spoofed(&keys, &real);
        let announced_before = announced(&w);
        let sent_before = w.configurator.stats().bytes_sent;
        for _ in 0..20 {
            for frame in [&spoof, &old, &real] {
                w.configurator
                    .handle_frame(w.now, E_ADDR, frame, &w.allowlist);
            }
        }
        let stats = w.configurator.stats();
        assert_eq!(stats.bad_announce_signatures, 20, "{suite:?}");
        assert_eq!(stats.stale_announces, 40, "{suite:?}");
        // At most one resend per interval: one Challenge for 60 injected frames.
        let challenge = challenge_len(suite) as u64;
        assert!(
            stats.bytes_sent - sent_before <= challenge,
            "{suite:?}: {} bytes drawn by the flood",
            stats.bytes_sent - sent_before
        );
        assert!(w.run(60_000), "{suite:?}: never provisioned");
        assert_eq!(w.now, clean, "{suite:?}: the real handshake was delayed");
        assert_eq!(frames_of_type(&w, ANNOUNCE), 1, "{suite:?}");
        assert_eq!(joins(&w), vec![Ok(())], "{suite:?}");
        assert_eq!(
            announced(&w),
            announced_before,
            "{suite:?}: a spoof was reported"
        );
    }
}

fn announced(w: &World) -> usize {
    w.configurator_events
        .iter()
        .filter(|e| matches!(e, ConfiguratorEvent::Announced { .. }))
        .count()
}

#[test]
fn a_device_whose_handshake_the_configurator_lost_announces_again_within_two_rtos() {
    // The configurator restarts between its Challenge and the device's Response: the device
    // gives up after HANDSHAKE_RESPONSE_RETRIES retransmissions (250 + 500 + 1000 ms), not
    // after the 15.75 s idle limit, and its next, freshly counted Announce is answered.
    for suite in SuiteId::ALL {
        let keys = Keys::new(suite, 51);
        let mut w = world(&keys, true, keys.identity(&keys.owner));
        run_into_handshake(&mut w);
        let challenged_at = w.now;
        w.restart_configurator(keys.identity(&keys.owner));
        assert!(w.run(60_000), "{suite:?}: never provisioned");
        let gave_up = w
            .enrollee_events
            .iter()
            .position(|e| matches!(e, EnrolleeEvent::AttemptFailed(AttemptFailure::Timeout)));
        assert!(gave_up.is_some(), "{suite:?}: {:?}", w.enrollee_events);
        assert!(
            w.now - challenged_at < 1_750 + clean_duration(&keys) + 1_000,
            "{suite:?}: provisioned only at {} ms",
            w.now
        );
        assert_eq!(frames_of_type(&w, ANNOUNCE), 2, "{suite:?}");
    }
}

/// An attacker that announces the victim's identity key with an ephemeral key of its own,
/// so it completes the ECDH, and answers the Challenge with a correctly sealed Response whose
/// sig_E is made with `signer`. Returns what the configurator reported.
fn impersonate(keys: &Keys, signer: &SigningIdentity) -> Vec<ConfiguratorEvent> {
    let suite = keys.suite;
    let mut w = world(keys, true, keys.identity(&keys.owner));
    let mut rng = ChaCha20Rng::seed_from_u64(0xa77);
    let ephemeral = EphemeralSecret::generate(suite, &mut rng);
    let mut announce = [0u8; 250];
    // Signed with the real identity: the Announce is not what this test is about (see
    // `a_flood_of_forged...`); sig_E must stand alone.
    let n = AnnounceRepr {
        suite,
        mode: AnnounceMode::New,
        last_failure: None,
        identity: keys.enrollee.public_key().as_wire(),
        ephemeral: ephemeral.public(),
        counter: 1,
        channel: C_CHANNEL,
    }
    .emit(&mut announce, |part| {
        keys.enrollee.sign(&schedule::a_sig_message(part))
    })
    .expect("announce");
    let announce = &announce[..n];
    w.configurator
        .handle_frame(0, E_ADDR, announce, &w.allowlist);
    let challenge = w.configurator.poll_transmit().expect("a Challenge").frame;
    let view = Challenge::new_checked(&challenge[..]).expect("Challenge");
    let ss = ephemeral.agree(view.ephemeral()).expect("ECDH");
    let hs = schedule::handshake_keys(suite, &ss, announce, view.clear());
    let sig = signer.sign(&schedule::e_sig_message(announce, &challenge));
    let mut response = [0u8; RESPONSE_LEN];
    emit_response_plain(&mut response, suite, view.sid(), &sig).expect("response");
    let (aad, rest) = response.split_at_mut(8);
    let tag =
        hs.e.seal(&hs.e.nonce(0, 0), aad, &mut rest[..64])
            .expect("seal");
    rest[64..].copy_from_slice(&tag);
    w.configurator
        .handle_frame(1, E_ADDR, &response, &w.allowlist);
    std::iter::from_fn(|| w.configurator.poll_event()).collect()
}

#[test]
fn an_impersonator_without_the_identity_secret_fails_sig_e_and_learns_nothing() {
    for suite in SuiteId::ALL {
        let keys = Keys::new(suite, 50);
        // Control: with the real identity secret the same Response authenticates, so the
        // forged one below passes every check but sig_E.
        let genuine = impersonate(&keys, &keys.enrollee);
        assert!(
            genuine
                .iter()
                .any(|e| matches!(e, ConfiguratorEvent::Authenticated { .. })),
            "{suite:?}: control: {genuine:?}"
        );
        let attacker = SigningIdentity::generate(suite, &mut ChaCha20Rng::seed_from_u64(0xbad));
        let events = impersonate(&keys, &attacker);
        assert!(
            !events
                .iter()
                .any(|e| matches!(e, ConfiguratorEvent::Authenticated { .. })),
            "{suite:?}: the impersonator authenticated: {events:?}"
        );
        assert!(
            events.iter().any(|e| matches!(
                e,
                ConfiguratorEvent::SessionFailed {
                    reason: SessionFailure::BadProof,
                    ..
                }
            )),
            "{suite:?}: {events:?}"
        );
    }
}
