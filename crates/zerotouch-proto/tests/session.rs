//! End-to-end sessions between the real enrollee and configurator state machines, over the
//! in-memory harness of `common`: both suites, pinned owner and trust on first use, failure
//! reporting, large configurations under loss, revocation, rogue configurators.

mod common;

use common::*;
use zerotouch_proto::configurator::{ConfiguratorEvent, SessionFailure};
use zerotouch_proto::enrollee::{AttemptFailure, EnrolleeEvent, EnrolleeState, RejectReason};
use zerotouch_proto::{FailureReason, SuiteId};

#[test]
fn provisions_with_pinned_owner_and_tofu_for_both_suites() {
    for suite in SuiteId::ALL {
        for pinned in [true, false] {
            let keys = Keys::new(suite, 1);
            let owner_pub = keys.owner.public_key();
            let pins = if pinned { vec![owner_pub] } else { vec![] };
            let mut w = World::new(&keys, &pins, &keys.owner, perfect(), 7);
            assert!(
                w.run(60_000),
                "{suite:?} pinned={pinned}: not provisioned: {:?}",
                w.enrollee_events
            );
            let p = w.provisioned().unwrap();
            assert_eq!(p.owner, owner_pub);
            assert_eq!(p.configurator, keys.configurator.public_key());
            assert_eq!(p.channel, C_CHANNEL);
            assert_eq!(w.joined_configs, vec![w.config.clone()]);
            assert!(
                w.configurator_events
                    .iter()
                    .any(|e| matches!(e, ConfiguratorEvent::JoinReported { result: Ok(()), .. }))
            );
        }
    }
}

#[test]
fn rogue_configurator_is_rejected_by_pinned_enrollee() {
    for suite in SuiteId::ALL {
        let keys = Keys::new(suite, 2);
        let rogue_owner = Keys::new(suite, 3).owner;
        let mut w = World::new(
            &keys,
            &[keys.owner.public_key()],
            &rogue_owner,
            perfect(),
            8,
        );
        assert!(!w.run(20_000));
        assert!(w.joined_configs.is_empty());
        assert!(
            w.enrollee_events
                .contains(&EnrolleeEvent::ConfiguratorRejected(
                    RejectReason::UnknownOwner
                ))
        );
        assert_eq!(w.enrollee.state(), EnrolleeState::Announcing);
    }
}

#[test]
fn wrong_psk_is_reported_then_provisioned_after_the_profile_is_fixed() {
    let keys = Keys::new(SuiteId::Ed25519, 4);
    let mut w = World::new(&keys, &[], &keys.owner, perfect(), 9);
    w.config = config_object("wrong passphrase", 0);
    assert!(!w.run(3_000));
    assert!(
        w.enrollee_events
            .contains(&EnrolleeEvent::AttemptFailed(AttemptFailure::Join(
                FailureReason::AuthFailed
            )))
    );
    assert!(w.configurator_events.iter().any(|e| matches!(
        e,
        ConfiguratorEvent::JoinReported {
            result: Err(FailureReason::AuthFailed),
            ..
        }
    )));
    // The device announces again, flagging the reason.
    assert!(w.configurator_events.iter().any(|e| matches!(
        e,
        ConfiguratorEvent::Announced {
            last_failure: Some(FailureReason::AuthFailed),
            ..
        }
    )));
    w.config = config_object("correct horse", 0);
    assert!(w.run(120_000));
    assert_eq!(w.joined_configs.last(), Some(&w.config));
}

#[test]
fn large_config_is_delivered_under_loss_duplication_and_reordering() {
    for suite in SuiteId::ALL {
        let keys = Keys::new(suite, 5);
        let mut w = World::new(
            &keys,
            &[keys.owner.public_key()],
            &keys.owner,
            lossy(0.3, 0.2, 30),
            10,
        );
        w.config = config_object("correct horse", 6 * 1024);
        assert!(w.config.len() > 6 * 1024);
        assert!(w.run(600_000), "{suite:?}: {:?}", w.enrollee_events);
        assert_eq!(w.joined_configs.last(), Some(&w.config));
        assert!(
            w.air
                .iter()
                .filter(|(d, f)| *d == Dir::ToEnrollee && f[2] == 4)
                .count()
                >= 30
        );
    }
}

#[test]
fn revocation_mid_session_delivers_no_config() {
    let keys = Keys::new(SuiteId::P256, 6);
    let mut w = World::new(&keys, &[], &keys.owner, perfect(), 11);
    w.revoke_on_authenticated = true;
    assert!(!w.run(30_000));
    assert!(w.joined_configs.is_empty());
    assert!(w.configurator_events.iter().any(|e| matches!(
        e,
        ConfiguratorEvent::SessionFailed {
            reason: SessionFailure::Revoked,
            ..
        }
    )));
    // Revoked keys are never answered again.
    assert!(
        w.configurator_events
            .iter()
            .any(|e| matches!(e, ConfiguratorEvent::NotAllowed { .. }))
    );
}

#[test]
fn unknown_device_hears_nothing() {
    let keys = Keys::new(SuiteId::Ed25519, 7);
    let mut w = World::new(&keys, &[], &keys.owner, perfect(), 12);
    w.allowlist.clear();
    assert!(!w.run(60_000));
    assert!(w.air.iter().all(|(d, _)| *d == Dir::ToConfigurator));
    let n = w
        .configurator_events
        .iter()
        .filter(|e| matches!(e, ConfiguratorEvent::NotAllowed { .. }))
        .count();
    assert_eq!(n, 1, "NotAllowed is reported once per key per minute");
}

#[test]
fn happy_path_uses_six_frames() {
    for suite in SuiteId::ALL {
        let keys = Keys::new(suite, 13);
        let mut w = World::new(
            &keys,
            &[keys.owner.public_key()],
            &keys.owner,
            perfect(),
            14,
        );
        w.config = config_object("correct horse", 0);
        assert!(w.run(60_000));
        // The enrollee may have announced on channels 1 (unheard) before reaching 6.
        let start = w.air.iter().rposition(|(_, f)| f[2] == 1).unwrap();
        let session: Vec<_> = w.air[start..]
            .iter()
            .map(|(_, f)| (f[2], f.len()))
            .collect();
        let types: Vec<u8> = session.iter().map(|s| s.0).collect();
        // Announce, Challenge, Response, Config, its Ack (sent before the join may take the
        // radio away), Status: 6 frames to the join report; then the Ack COMPLETE.
        assert_eq!(types, vec![1, 2, 3, 4, 5, 4, 5], "{suite:?}: {session:?}");
        let bytes: usize = session.iter().map(|s| s.1).sum();
        assert!(bytes <= 800, "{suite:?}: {bytes} bytes");
    }
}

#[test]
fn tofu_enrollee_rejects_a_config_whose_owner_key_does_not_match_the_certificate() {
    let keys = Keys::new(SuiteId::Ed25519, 15);
    let mut identity = keys.identity(&keys.owner);
    identity.owner = Keys::new(SuiteId::Ed25519, 16).owner.public_key();
    let mut w = World::with_identity(&keys, &[], identity, perfect(), 17);
    assert!(!w.run(5_000));
    assert!(w.joined_configs.is_empty(), "no configuration may be used");
    assert!(
        w.enrollee_events
            .contains(&EnrolleeEvent::AttemptFailed(AttemptFailure::Join(
                FailureReason::ConfigRejected
            )))
    );
    assert!(w.configurator_events.iter().any(|e| matches!(
        e,
        ConfiguratorEvent::JoinReported {
            result: Err(FailureReason::ConfigRejected),
            ..
        }
    )));
}

#[test]
fn a_flood_of_unknown_keys_creates_no_state_and_delays_nobody() {
    use rand_chacha::ChaCha20Rng;
    use rand_chacha::rand_core::SeedableRng;
    use zerotouch_proto::wire::AnnounceRepr;
    use zerotouch_proto::{Addr, AnnounceMode};
    let keys = Keys::new(SuiteId::P256, 18);
    let mut w = World::new(&keys, &[], &keys.owner, perfect(), 19);
    let mut rng = ChaCha20Rng::seed_from_u64(20);
    let mut buf = [0u8; 250];
    for i in 0..5000u32 {
        // Random bytes: the configurator must reject them before any point decoding.
        let mut id = [2u8; 33];
        rand_chacha::rand_core::Rng::fill_bytes(&mut rng, &mut id[1..]);
        let n = AnnounceRepr {
            suite: SuiteId::P256,
            mode: AnnounceMode::New,
            last_failure: None,
            identity: &id,
            ephemeral: &id,
            counter: u64::from(i),
            channel: 6,
        }
        .emit(&mut buf, |_| [0; 64])
        .unwrap();
        let b = i.to_be_bytes();
        w.configurator.handle_frame(
            0,
            Addr([6, 0, b[0], b[1], b[2], b[3]]),
            &buf[..n],
            &w.allowlist,
        );
    }
    assert_eq!(w.configurator.session_count(), 0);
    assert_eq!(w.configurator.stats().not_allowed, 5000);
    assert!(w.configurator.poll_transmit().is_none());
    let mut queued = 0;
    while w.configurator.poll_event().is_some() {
        queued += 1;
    }
    assert_eq!(
        queued,
        zerotouch_proto::configurator::MAX_QUEUED_NOT_ALLOWED
    );
    // The permitted device is still provisioned.
    assert!(w.run(60_000));
}

/// Is `frame` the configurator's final acknowledgement (an Ack with the COMPLETE flag)?
fn is_complete_ack(frame: &[u8]) -> bool {
    frame.len() == zerotouch_proto::wire::ACK_LEN
        && frame[2] == 5
        && frame[14] & zerotouch_proto::wire::FLAG_COMPLETE != 0
}

#[test]
fn a_lost_final_ack_is_resent_from_the_finished_table_byte_for_byte() {
    for suite in SuiteId::ALL {
        let keys = Keys::new(suite, 30);
        // Drop the first two COMPLETE acknowledgements; the enrollee retransmits its join
        // report and must be answered although its session left the session table.
        let mut dropped = 0;
        let link: Link = Box::new(move |_, dir, bytes| {
            if dir == Dir::ToEnrollee && is_complete_ack(bytes) && dropped < 2 {
                dropped += 1;
                return vec![];
            }
            vec![1]
        });
        let mut w = World::new(&keys, &[], &keys.owner, link, 31);
        assert!(w.run(60_000), "{suite:?}: {:?}", w.enrollee_events);
        let completes: Vec<&Vec<u8>> = w
            .air
            .iter()
            .filter(|(d, f)| *d == Dir::ToEnrollee && is_complete_ack(f))
            .map(|(_, f)| f)
            .collect();
        assert_eq!(completes.len(), 3, "{suite:?}");
        assert!(completes.iter().all(|f| *f == completes[0]), "{suite:?}");
        // The finished session holds no slot of `max_sessions`.
        assert_eq!(w.configurator.session_count(), 0);
        assert_eq!(w.configurator.finished_count(), 1);
        let joins = w
            .configurator_events
            .iter()
            .filter(|e| matches!(e, ConfiguratorEvent::JoinReported { .. }))
            .count();
        assert_eq!(
            joins, 1,
            "{suite:?}: a retransmitted join report was reported twice"
        );
        // The finished entry expires with the linger time.
        let later = w.now + zerotouch_proto::configurator::LINGER_MS;
        w.configurator.handle_timeout(later);
        assert_eq!(w.configurator.finished_count(), 0);
        assert_eq!(w.configurator.poll_timeout(), None);
    }
}

#[test]
fn the_same_device_can_start_over_right_after_a_completed_session() {
    let keys = Keys::new(SuiteId::Ed25519, 32);
    let mut w = World::new(&keys, &[], &keys.owner, perfect(), 33);
    assert!(w.run(60_000));
    assert_eq!(w.configurator.finished_count(), 1);
    let first = w.provisioned().cloned().unwrap();
    // The device is reset at once (e.g. it cannot join any more) and announces anew while
    // its finished session is still remembered.
    let mut settings = keys.enrollee_settings(&[first.owner]);
    settings.mode = zerotouch_proto::AnnounceMode::Reconfigure;
    settings.last_channel = Some(first.channel);
    w.enrollee = zerotouch_proto::enrollee::Enrollee::new(
        settings,
        rand_chacha::rand_core::SeedableRng::seed_from_u64(34),
        w.now,
    );
    w.enrollee_events.clear();
    let deadline = w.now + 60_000;
    assert!(w.run(deadline));
    assert_eq!(w.joined_configs.len(), 2);
    let joins = w
        .configurator_events
        .iter()
        .filter(|e| matches!(e, ConfiguratorEvent::JoinReported { result: Ok(()), .. }))
        .count();
    assert_eq!(joins, 2);
}

#[test]
fn configurator_reports_its_channel() {
    let keys = Keys::new(SuiteId::P256, 35);
    let w = World::new(&keys, &[], &keys.owner, perfect(), 36);
    assert_eq!(w.configurator.channel(), C_CHANNEL);
}

#[test]
fn enrollee_fits_a_microcontroller() {
    let size =
        core::mem::size_of::<zerotouch_proto::enrollee::Enrollee<rand_chacha::ChaCha20Rng>>();
    assert!(size < 16 * 1024, "enrollee state is {size} bytes");
}
