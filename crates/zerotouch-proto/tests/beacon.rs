//! Presence Beacons (PROTOCOL.md §4.8, §9.1): a device that hears a configurator's Beacon on
//! its channel stays there and announces at the Beacon's pace instead of hopping; a forged
//! Beacon can hold it at most `MAX_CAMP_MS` per round; the configurator beacons at its period
//! and asks for a slower pace while it turns fresh Announces away.

mod common;

use common::*;
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use zerotouch_proto::configurator::{
    BEACON_INTERVAL_MS, Configurator, ConfiguratorLimits, MIN_PACE_MS,
};
use zerotouch_proto::enrollee::{Enrollee, MAX_CAMP_MS};
use zerotouch_proto::wire::{Beacon, BeaconRepr, FrameType, suite_bit};
use zerotouch_proto::{Addr, SigningIdentity, SuiteId};

fn beacon(channel: u8, interval_ms: u16, suites: u8) -> Vec<u8> {
    let mut buf = [0u8; 16];
    let header_suite = if suites & suite_bit(SuiteId::Ed25519) != 0 {
        SuiteId::Ed25519
    } else {
        SuiteId::P256
    };
    let n = BeaconRepr {
        suite: header_suite,
        channel,
        announce_interval_ms: interval_ms,
        suites,
    }
    .emit(&mut buf)
    .expect("beacon");
    buf[..n].to_vec()
}

fn device(keys: &Keys) -> Enrollee<ChaCha20Rng> {
    // No last channel: the device starts on channel 1 and would hop to 6 after 150 ms.
    Enrollee::new(
        keys.enrollee_settings(&[]),
        ChaCha20Rng::seed_from_u64(7),
        0,
    )
}

/// Runs the enrollee's timers up to `until`; returns (time, channel) of every Announce sent.
fn announces_until(
    e: &mut Enrollee<ChaCha20Rng>,
    until: u64,
    mut on_timer: impl FnMut(&mut Enrollee<ChaCha20Rng>, u64),
) -> Vec<(u64, u8)> {
    let mut sent = Vec::new();
    let mut now = 0;
    loop {
        while let Some(t) = e.poll_transmit() {
            if t.frame[2] == FrameType::Announce as u8 {
                sent.push((now, t.channel));
            }
        }
        let Some(next) = e.poll_timeout() else { break };
        if next > until {
            break;
        }
        now = next;
        e.handle_timeout(now);
        on_timer(e, now);
    }
    sent
}

#[test]
fn a_device_that_hears_a_beacon_stays_and_announces_at_its_pace_then_moves_on() {
    let keys = Keys::new(SuiteId::Ed25519, 60);
    let mut e = device(&keys);
    assert_eq!(e.channel(), 1);
    e.handle_frame(10, C_ADDR, &beacon(1, 500, suite_bit(SuiteId::Ed25519)));
    let sent = announces_until(&mut e, 3_000, |_, _| {});
    // The first Announce (t = 0) on 1; then re-announces on 1 at the 500 ms pace (each
    // uniform in 0..=1000 ms, mean 500) for the camp of 2 x 500 ms; then hopping resumes on 6.
    let on_1: Vec<u64> = sent
        .iter()
        .filter(|(_, c)| *c == 1)
        .map(|(t, _)| *t)
        .collect();
    assert!(on_1.len() >= 2, "{sent:?}");
    assert!(
        (10..=1_010).contains(&on_1[1]),
        "paced re-announce at {}: {sent:?}",
        on_1[1]
    );
    let first_on_6 = sent.iter().find(|(_, c)| *c == 6).expect("hops on").0;
    assert!(
        (1_010..=1_010 + 150).contains(&first_on_6),
        "left after the camp: {first_on_6} ms, {sent:?}"
    );
}

#[test]
fn a_beacon_of_another_channel_or_suite_changes_nothing() {
    let keys = Keys::new(SuiteId::Ed25519, 61);
    for frame in [
        beacon(6, 500, suite_bit(SuiteId::Ed25519)), // it is on 1, not 6
        beacon(1, 500, suite_bit(SuiteId::P256)),    // a configurator of the other suite
    ] {
        let mut e = device(&keys);
        e.handle_frame(10, C_ADDR, &frame);
        assert_eq!(e.poll_timeout(), Some(150), "still hops after the dwell");
    }
}

#[test]
fn forged_beacons_on_every_channel_hold_a_device_at_most_max_camp_ms_per_round() {
    let keys = Keys::new(SuiteId::Ed25519, 62);
    let mut e = device(&keys);
    // The forger beacons on whatever channel the device is on, asking for the longest pace.
    let forge = |e: &mut Enrollee<ChaCha20Rng>, now: u64| {
        let ch = e.channel();
        e.handle_frame(now, Addr([6, 6, 6, 6, 6, 6]), &beacon(ch, u16::MAX, 0b11));
    };
    forge(&mut e, 0);
    let sent = announces_until(&mut e, 60_000, forge);
    // Round 1: 13 channels; at most one camp; so channel 13 (the last of the round) is
    // reached within 12 dwells + one camp (+ its last jittered announce).
    let last_of_round = sent.iter().find(|(_, c)| *c == 13).expect("reaches 13").0;
    assert!(
        last_of_round <= 12 * 150 + MAX_CAMP_MS + 1_000,
        "channel 13 only at {last_of_round} ms: {sent:?}"
    );
    let channels_visited: std::collections::BTreeSet<u8> = sent.iter().map(|(_, c)| *c).collect();
    assert_eq!(channels_visited.len(), 13);
}

fn configurator(keys: &Keys, limits: ConfiguratorLimits) -> Configurator<ChaCha20Rng> {
    configurator_on_c_channel(keys.identity(&keys.owner), limits, 8)
}

fn beacons_out(c: &mut Configurator<ChaCha20Rng>) -> Vec<Vec<u8>> {
    std::iter::from_fn(|| c.poll_transmit())
        .map(|t| t.frame.to_vec())
        .filter(|f| f[2] == FrameType::Beacon as u8)
        .collect()
}

#[test]
fn the_configurator_beacons_at_its_period_and_slows_the_pace_while_it_turns_devices_away() {
    let keys = Keys::new(SuiteId::Ed25519, 63);
    let mut c = configurator(
        &keys,
        ConfiguratorLimits {
            beacon_interval_ms: BEACON_INTERVAL_MS,
            ..ConfiguratorLimits::default()
        },
    );
    let mut beacons = Vec::new();
    while let Some(t) = c.poll_timeout() {
        if t > 1_000 {
            break;
        }
        c.handle_timeout(t);
        beacons.extend(beacons_out(&mut c));
    }
    assert_eq!(
        beacons.len() as u64,
        1_000 / BEACON_INTERVAL_MS + 1,
        "t = 0, 100, ..., 1000"
    );
    let b = Beacon::new_checked(&beacons[0][..]).expect("valid Beacon");
    assert_eq!(b.channel(), C_CHANNEL);
    assert!(b.answers(SuiteId::Ed25519));
    assert_eq!(
        u64::from(b.announce_interval_ms()),
        MIN_PACE_MS,
        "idle: the fastest pace"
    );

    // 200 devices at once: the airtime budget turns most away; the next Beacon asks for a
    // slower pace.
    let mut allowlist = std::collections::BTreeSet::new();
    let mut rng = ChaCha20Rng::seed_from_u64(9);
    for n in 0..200u16 {
        let id = SigningIdentity::generate(SuiteId::Ed25519, &mut rng);
        allowlist.insert(id.public_key().key_hash());
        let mut settings = keys.enrollee_settings(&[]);
        settings.identity = id;
        settings.last_channel = Some(C_CHANNEL);
        let mut e = Enrollee::new(settings, ChaCha20Rng::seed_from_u64(u64::from(n)), 1_000);
        let announce = e.poll_transmit().expect("announce").frame;
        c.handle_frame(
            1_000,
            Addr([2, 0, 0, 0, (n >> 8) as u8, n as u8]),
            &announce,
            &allowlist,
        );
    }
    assert!(c.stats().throttled > 0);
    c.handle_timeout(1_100);
    let slower = beacons_out(&mut c);
    let b = Beacon::new_checked(&slower[0][..]).expect("valid Beacon");
    assert!(
        u64::from(b.announce_interval_ms()) > MIN_PACE_MS,
        "pace {}",
        b.announce_interval_ms()
    );
}
