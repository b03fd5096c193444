//! Every single-bit flip of every frame of one session, checked on both sides: the enrollee
//! ends provisioned with the real configuration and the real owner, and the configurator
//! records exactly what the driver would persist for a clean session (one join report,
//! "joined", for the real key; no event naming any other key; no authenticated session that
//! fails; only unauthenticated handshakes may time out, as after a loss). Run in
//! pinned-owner mode (suite 2) and trust on first use (suite 1).
//!
//! This is the one bit-flip test of the project (the simulator does not repeat it).
//! Without the configurator-side checks a missing tag check on the Status fragment would
//! pass: the enrollee's view alone cannot see a join report that arrived altered.

mod common;

use std::cell::RefCell;
use std::rc::Rc;

use common::*;
use zerotouch_proto::SuiteId;
use zerotouch_proto::configurator::{ConfiguratorEvent, SessionFailure};
use zerotouch_proto::enrollee::{Enrollee, EnrolleeEvent};

/// Pinned owner or trust on first use.
#[derive(Clone, Copy, Debug)]
enum Mode {
    Pinned,
    Tofu,
}

/// A world on a perfect link that flips `bit` of the `index`-th frame put on the air.
fn world(keys: &Keys, mode: Mode, flip: Option<(usize, usize)>) -> World {
    let counter = Rc::new(RefCell::new(0usize));
    let link: Link = Box::new(move |_, _, bytes| {
        let mut n = counter.borrow_mut();
        if let Some((index, bit)) = flip
            && *n == index
        {
            bytes[bit / 8] ^= 1 << (bit % 8);
        }
        *n += 1;
        vec![1]
    });
    let pinned = match mode {
        Mode::Pinned => vec![keys.owner.public_key()],
        Mode::Tofu => vec![],
    };
    let mut w = World::new(keys, &pinned, &keys.owner, link, 22);
    let mut settings = keys.enrollee_settings(&pinned);
    settings.last_channel = Some(C_CHANNEL);
    w.enrollee = Enrollee::new(
        settings,
        rand_chacha::rand_core::SeedableRng::seed_from_u64(22 ^ 0xe0),
        0,
    );
    w
}

/// What went wrong in a run whose `bit` of frame `index` was flipped, if anything.
fn check_run(keys: &Keys, mode: Mode, index: usize, bit: usize) -> Result<(), String> {
    let mut w = world(keys, mode, Some((index, bit)));
    if !w.run(300_000) {
        return Err(format!("stuck in {:?}", w.enrollee.state()));
    }
    check_enrollee(keys, &w)?;
    check_configurator(keys, &w)
}

fn check_enrollee(keys: &Keys, w: &World) -> Result<(), String> {
    if w.joined_configs.iter().any(|c| c != &w.config) {
        return Err("the enrollee accepted a wrong configuration".into());
    }
    let provisioned: Vec<_> = w
        .enrollee_events
        .iter()
        .filter_map(|e| match e {
            EnrolleeEvent::Provisioned(p) => Some(p),
            _ => None,
        })
        .collect();
    let [p] = provisioned[..] else {
        return Err(format!("{} Provisioned events", provisioned.len()));
    };
    if p.configurator != keys.configurator.public_key() {
        return Err("provisioned by a wrong configurator".into());
    }
    if p.owner != keys.owner.public_key() {
        return Err("pinned a wrong owner".into());
    }
    Ok(())
}

/// The configurator's events are what its driver persists in the registry: they must be
/// those of a clean session, whatever arrived altered.
fn check_configurator(keys: &Keys, w: &World) -> Result<(), String> {
    let real = keys.enrollee.public_key().key_hash();
    let mut joins = Vec::new();
    let mut authenticated = Vec::new();
    for event in &w.configurator_events {
        let key = match event {
            ConfiguratorEvent::NotAllowed { .. } => continue, // a flipped identity key
            ConfiguratorEvent::Authenticated { key, session, .. } => {
                authenticated.push(*session);
                key
            }
            ConfiguratorEvent::Announced { key, .. }
            | ConfiguratorEvent::ConfigDelivered { key, .. } => key,
            ConfiguratorEvent::JoinReported { key, result, .. } => {
                joins.push(*result);
                key
            }
            // A handshake whose Challenge (or Announce) arrived altered is abandoned by the
            // enrollee and times out, as after a loss; nothing else may fail.
            ConfiguratorEvent::SessionFailed {
                key,
                session,
                reason: SessionFailure::Timeout,
            } if !authenticated.contains(session) => key,
            ConfiguratorEvent::SessionFailed { reason, .. } => {
                return Err(format!(
                    "the configurator recorded a failed session: {reason:?}"
                ));
            }
        };
        if *key != real {
            return Err(format!("the configurator recorded another key: {event:?}"));
        }
    }
    if joins != [Ok(())] {
        return Err(format!("the configurator recorded join reports {joins:?}"));
    }
    Ok(())
}

fn flip_every_bit(suite: SuiteId, mode: Mode) {
    let keys = Keys::new(suite, 21);
    let mut clean = world(&keys, mode, None);
    assert!(clean.run(60_000), "{mode:?}: the clean session fails");
    check_enrollee(&keys, &clean).expect("clean session, enrollee side");
    check_configurator(&keys, &clean).expect("clean session, configurator side");
    // Announce, Challenge, Response, Config, its Ack (sent at once, before the device may
    // leave the channel to join), Status, and the COMPLETE Ack.
    assert_eq!(clean.air.len(), 7, "{mode:?}: the 7-frame session");
    let mut failures = Vec::new();
    for (index, (_, frame)) in clean.air.iter().enumerate() {
        for bit in 0..frame.len() * 8 {
            if let Err(why) = check_run(&keys, mode, index, bit) {
                failures.push(format!("frame {index} bit {bit}: {why}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{suite:?} {mode:?}: {} of the flips broke the session:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_bit_flip_pinned_owner_suite_2_both_sides_record_a_clean_session() {
    flip_every_bit(SuiteId::P256, Mode::Pinned);
}

#[test]
fn every_bit_flip_trust_on_first_use_suite_1_both_sides_record_a_clean_session() {
    flip_every_bit(SuiteId::Ed25519, Mode::Tofu);
}
