//! Adversarial scenarios: an eavesdropper, replay, relay and key-swapping
//! men-in-the-middle, a rogue configurator of another owner, a flood of unknown
//! announcements and a revocation in the middle of a session.

mod common;

use std::cell::Cell;
use std::collections::BTreeSet;
use std::rc::Rc;

use common::{
    ANNOUNCE, CHALLENGE, DATA, DEADLINE_MS, assert_no_secret_on_air, contains,
    foreign_configurator, frame_suite, frame_type, wpa2_config,
};
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use zerotouch_proto::enrollee::RejectReason;
use zerotouch_proto::{Addr, FailureReason, SigningIdentity, SuiteId};
use zerotouch_sim::{
    Adversary, AirFrame, ApModel, ConfiguratorNode, EnrolleeNode, Fleet, FleetRun, Injection,
    LinkModel, SuiteChoice, Verdict,
};

/// The configurator of a one-configurator fleet.
fn configurator_addr() -> Addr {
    Fleet::configurator_addr(0)
}

#[test]
fn an_eavesdropper_never_sees_ssid_or_passphrase_in_1000_provisionings() {
    let mut provisioned = 0;
    for seed in 0..4u64 {
        let mut run = Fleet::new(100 + seed)
            .devices(250)
            .suite(SuiteChoice::Mixed)
            .lossy(0.1)
            .network("secret-ssid-of-the-plant", "secret passphrase 12345", 6)
            .build()
            .expect("fleet");
        let report = run.run(DEADLINE_MS);
        assert_eq!(report.provisioned, 250, "seed {seed}: {report}");
        provisioned += report.provisioned;
        assert!(
            run.sim.recorder().len() > 250 * 6,
            "the recorder saw the traffic"
        );
        assert_no_secret_on_air(&run);
    }
    assert!(provisioned >= 1000);
}

/// Provisions a one-device fleet and returns it.
fn provisioned_single(seed: u64) -> FleetRun {
    let mut run = Fleet::new(seed).devices(1).build().expect("fleet");
    let report = run.run(DEADLINE_MS);
    assert_eq!(report.provisioned, 1, "{report}");
    run
}

#[test]
fn frames_replayed_to_the_configurator_from_an_earlier_session_fail() {
    let mut run = provisioned_single(200);
    let device = Fleet::enrollee_addr(0);
    let old: Vec<AirFrame> = run
        .sim
        .recorder()
        .iter()
        .filter(|r| r.frame.src == device)
        .map(|r| r.frame.clone())
        .collect();
    assert!(old.iter().any(|f| frame_type(&f.bytes) == Some(DATA)));
    for (i, frame) in old.iter().enumerate() {
        run.sim.inject(Injection {
            channel: 6,
            src: device,
            dst: frame.dst,
            bytes: frame.bytes.to_vec(),
            delay_us: 20_000 * (i as u64 + 1),
        });
    }
    let later = run.sim.now_ms() + 120_000;
    run.sim.run_until(later);
    let log = run
        .configurator(0)
        .and_then(|c| c.device(&run.keys[0]))
        .expect("log");
    assert_eq!(
        log.authenticated.len(),
        1,
        "a replayed response authenticated nobody"
    );
    assert_eq!(log.configs_provided.len(), 1);
    assert_eq!(
        log.join_reports.len(),
        1,
        "a replayed join report was not accepted"
    );
}

#[test]
fn frames_replayed_to_the_enrollee_from_an_earlier_session_fail() {
    let mut run = Fleet::new(201).devices(1).build().expect("fleet");
    let enrollee = run.enrollees[0];
    let device = Fleet::enrollee_addr(0);
    let configurator = configurator_addr();
    let right_ap = ApModel::wpa2(
        std::str::from_utf8(&run.ssid).expect("ascii"),
        std::str::from_utf8(&run.passphrase).expect("ascii"),
        6,
    );
    // Session 1 fails (the AP's passphrase differs), so the device announces again.
    let mut wrong_ap = right_ap.clone();
    wrong_ap.secret = zerotouch_sim::ApSecret::Passphrase("the AP was re-keyed".to_owned());
    run.sim
        .with_node::<EnrolleeNode, _>(enrollee, |e, _| *e.aps_mut() = vec![wrong_ap]);
    let key = run.keys[0];
    let reported = |sim: &zerotouch_sim::Simulator| {
        sim.node_as::<EnrolleeNode>(enrollee)
            .is_some_and(|e| !e.record().attempt_failures.is_empty())
    };
    assert!(run.sim.run_while(DEADLINE_MS, |sim| !reported(sim)));
    let log = run
        .configurator(0)
        .and_then(|c| c.device(&key))
        .expect("log");
    assert_eq!(log.join_reports[0].1, Err(FailureReason::AuthFailed));

    // The real configurator goes out of range; the AP is fixed, so a device fooled into
    // accepting the old session would now join and commit.
    run.sim.set_link(configurator, device, LinkModel::cut());
    run.sim.set_link(device, configurator, LinkModel::cut());
    run.sim
        .with_node::<EnrolleeNode, _>(enrollee, |e, _| *e.aps_mut() = vec![right_ap]);
    let old: Vec<AirFrame> = run
        .sim
        .recorder()
        .iter()
        .filter(|r| r.frame.src == configurator && r.frame.dst == device)
        .map(|r| r.frame.clone())
        .collect();
    assert!(old.iter().any(|f| frame_type(&f.bytes) == Some(CHALLENGE)));
    // Replay the whole session on every channel, ten times over a minute.
    for round in 0..10u64 {
        for (i, frame) in old.iter().enumerate() {
            for channel in 1..=13 {
                run.sim.inject(Injection {
                    channel,
                    src: configurator,
                    dst: device,
                    bytes: frame.bytes.to_vec(),
                    delay_us: round * 6_000_000 + i as u64 * 30_000,
                });
            }
        }
    }
    let later = run.sim.now_ms() + 120_000;
    run.sim.run_until(later);
    let record = run.enrollee(0).expect("enrollee").record();
    assert_eq!(
        record.authenticated.len(),
        1,
        "only the real session authenticated"
    );
    assert_eq!(
        record.configs_received.len(),
        1,
        "no configuration from a replay"
    );
    assert!(record.commit.is_none(), "nothing committed from a replay");
}

/// Relays between a device and a configurator that cannot hear each other, under its
/// own two addresses (a range-extending man in the middle).
struct Relay {
    device: Addr,
    configurator: Addr,
    near: Addr,
    far: Addr,
    configurator_channel: u8,
    device_channel: u8,
    queue: Vec<Injection>,
    relayed: Rc<Cell<u32>>,
}

impl Adversary for Relay {
    fn on_air(&mut self, _now_us: u64, frame: &AirFrame) -> Verdict {
        if frame.src == self.device {
            self.device_channel = frame.channel;
            let dst = if frame.dst.is_broadcast() {
                Addr::BROADCAST
            } else {
                self.configurator
            };
            if frame.dst.is_broadcast() || frame.dst == self.far {
                self.queue.push(Injection {
                    channel: self.configurator_channel,
                    src: self.near,
                    dst,
                    bytes: frame.bytes.to_vec(),
                    delay_us: 0,
                });
            }
        } else if frame.src == self.configurator && frame.dst == self.near {
            self.queue.push(Injection {
                channel: self.device_channel,
                src: self.far,
                dst: self.device,
                bytes: frame.bytes.to_vec(),
                delay_us: 0,
            });
        }
        Verdict::Deliver
    }

    fn poll_inject(&mut self) -> Option<Injection> {
        let injection = self.queue.pop();
        if injection.is_some() {
            self.relayed.set(self.relayed.get() + 1);
        }
        injection
    }
}

#[test]
fn a_relaying_man_in_the_middle_gains_nothing() {
    let mut run = Fleet::new(300).devices(1).build().expect("fleet");
    let device = Fleet::enrollee_addr(0);
    run.sim
        .set_link(configurator_addr(), device, LinkModel::cut());
    run.sim
        .set_link(device, configurator_addr(), LinkModel::cut());
    let relayed = Rc::new(Cell::new(0));
    run.sim.set_adversary(Box::new(Relay {
        device,
        configurator: configurator_addr(),
        near: Addr([6, 0, 0, 0, 0, 1]),
        far: Addr([6, 0, 0, 0, 0, 2]),
        configurator_channel: 6,
        device_channel: 1,
        queue: Vec::new(),
        relayed: relayed.clone(),
    }));
    run.run(DEADLINE_MS);
    assert!(
        relayed.get() > 3,
        "the relay carried the exchange ({} frames)",
        relayed.get()
    );
    let record = run.enrollee(0).expect("enrollee").record();
    // Provisioned by the real configurator with the real configuration, or not at all.
    if let Some(commit) = &record.commit {
        assert_eq!(commit.config, run.config);
        assert!(run.owners.contains(&commit.provisioned.owner));
    }
    for (_, config) in &record.configs_received {
        assert_eq!(config, &run.config);
    }
    assert_no_secret_on_air(&run);
}

/// Replaces the ephemeral key in every announcement and challenge with its own.
struct KeySwapper {
    ed25519: Vec<u8>,
    p256: Vec<u8>,
    swapped: Rc<Cell<u32>>,
}

impl Adversary for KeySwapper {
    fn on_air(&mut self, _now_us: u64, frame: &AirFrame) -> Verdict {
        let (Some(kind), Some(suite)) = (frame_type(&frame.bytes), frame_suite(&frame.bytes))
        else {
            return Verdict::Deliver;
        };
        let p = suite.public_key_len();
        let ours = if suite == SuiteId::Ed25519 {
            &self.ed25519
        } else {
            &self.p256
        };
        let at = match kind {
            ANNOUNCE => 6 + p,
            CHALLENGE => 24,
            _ => return Verdict::Deliver,
        };
        let mut bytes = frame.bytes.to_vec();
        if bytes.len() < at + p {
            return Verdict::Deliver;
        }
        bytes[at..at + p].copy_from_slice(ours);
        self.swapped.set(self.swapped.get() + 1);
        Verdict::Replace(bytes)
    }
}

#[test]
fn swapping_in_the_attackers_ephemeral_key_gains_nothing() {
    let mut run = Fleet::new(301)
        .devices(4)
        .suite(SuiteChoice::Mixed)
        .build()
        .expect("fleet");
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let swapped = Rc::new(Cell::new(0));
    run.sim.set_adversary(Box::new(KeySwapper {
        // Valid points of each suite (an identity key is as good a point as any).
        ed25519: SigningIdentity::generate(SuiteId::Ed25519, &mut rng)
            .public_key()
            .as_wire()
            .to_vec(),
        p256: SigningIdentity::generate(SuiteId::P256, &mut rng)
            .public_key()
            .as_wire()
            .to_vec(),
        swapped: swapped.clone(),
    }));
    let report = run.run(120_000);
    assert!(swapped.get() > 4, "the attacker was active");
    assert_eq!(report.provisioned, 0, "{report}");
    for index in 0..4 {
        let record = run.enrollee(index).expect("enrollee").record();
        assert!(
            record.authenticated.is_empty(),
            "device {index} accepted a swapped transcript"
        );
        assert!(record.configs_received.is_empty());
    }
    // Without the attacker the same devices are provisioned with the real configuration.
    run.sim.take_adversary();
    let report = run.run(run.sim.now_ms() + DEADLINE_MS);
    assert_eq!(report.provisioned, 4, "{report}");
    for index in 0..4 {
        let commit = run
            .enrollee(index)
            .and_then(|d| d.record().commit.clone())
            .expect("commit");
        assert_eq!(commit.config, run.config);
    }
}

#[test]
fn an_enrollee_with_a_pinned_owner_rejects_a_rogue_configurator() {
    let mut run = Fleet::new(400)
        .devices(2)
        .suite(SuiteChoice::Mixed)
        .pin_owner(true)
        .configurators_on(&[11])
        .shared_allowlist(true)
        .build()
        .expect("fleet");
    // The rogue sits on channel 1 (scanned first) and has both devices allowlisted.
    let evil = wpa2_config("evil-twin", "attacker passphrase");
    let allowlist: BTreeSet<_> = run.keys.iter().copied().collect();
    let rogue = foreign_configurator(401, Addr([6, 6, 6, 6, 6, 6]), 1, allowlist, evil.clone());
    let rogue_id = run.sim.add_node(Box::new(rogue));
    let report = run.run(DEADLINE_MS);
    assert_eq!(report.provisioned, 2, "{report}");
    let rogue = run
        .sim
        .node_as::<ConfiguratorNode>(rogue_id)
        .expect("rogue");
    assert!(
        rogue
            .devices()
            .values()
            .all(|log| log.join_reports.is_empty())
    );
    for index in 0..2 {
        let record = run.enrollee(index).expect("enrollee").record();
        assert!(
            record
                .rejected
                .iter()
                .any(|(_, r)| *r == RejectReason::UnknownOwner),
            "device {index} met and refused the rogue: {:?}",
            record.rejected
        );
        assert!(record.configs_received.iter().all(|(_, c)| c != &evil));
        let commit = record.commit.as_ref().expect("commit");
        assert_eq!(commit.config, run.config);
        assert!(run.owners.contains(&commit.provisioned.owner));
        assert_eq!(commit.provisioned.channel, 11);
    }
}

/// Floods the configurator's channel with announcements of fresh unknown keys.
fn flood(run: &mut FleetRun, count: u64, interval_us: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(77);
    for i in 0..count {
        let identity = SigningIdentity::generate(SuiteId::Ed25519, &mut rng);
        let ephemeral = SigningIdentity::generate(SuiteId::Ed25519, &mut rng);
        let mut bytes = vec![
            0x5a,
            zerotouch_proto::wire::VERSION,
            ANNOUNCE,
            SuiteId::Ed25519 as u8,
            0,
            0,
        ];
        bytes.extend_from_slice(identity.public_key().as_wire());
        bytes.extend_from_slice(ephemeral.public_key().as_wire());
        // Counter, channel 6, and a signature never checked: the key is not allowlisted.
        bytes.extend_from_slice(&[0; 8]);
        bytes.push(6);
        bytes.extend_from_slice(&[0; 64]);
        let n = (i as u32).to_be_bytes();
        run.sim.inject(Injection {
            channel: 6,
            src: Addr([0x06, 0xf1, n[0], n[1], n[2], n[3]]),
            dst: Addr::BROADCAST,
            bytes,
            delay_us: i * interval_us,
        });
    }
}

/// Largest extra time-to-provision (ms) the flood below may cost the slowest permitted
/// device. The flood takes channel time only (an unknown key costs the configurator one
/// hash and one lookup, and no session), so the stated bound is one more announcement
/// round of a device that missed its answer: a dwell on each of 13 channels plus the
/// first round pause with jitter (13 x 150 ms + 1.25 s = 3.2 s), rounded up to 5 s.
const FLOOD_DELAY_BOUND_MS: u64 = 5_000;

#[test]
fn a_flood_of_unknown_announcements_keeps_the_configurator_bounded() {
    let devices = 20;
    let fleet = Fleet::new(500).devices(devices);
    let mut calm = fleet.clone().build().expect("fleet");
    let calm_report = calm.run(DEADLINE_MS);
    assert_eq!(calm_report.provisioned, devices, "{calm_report}");

    // 10,000 announcements of fresh keys from fresh addresses, one every 2 ms for 20 s:
    // about 57 % of the channel's time.
    let mut flooded = fleet.build().expect("fleet");
    flood(&mut flooded, 10_000, 2_000);
    let report = flooded.run(DEADLINE_MS);
    assert_eq!(report.provisioned, devices, "{report}");
    let configurator = flooded.configurator(0).expect("configurator");
    let stats = configurator.stats();
    let handled = stats.not_allowed + stats.rate_limited;
    assert!(
        handled > 1_000,
        "the flood reached the configurator ({stats:?})"
    );
    assert!(
        configurator.peak_sessions() <= devices,
        "unknown keys opened sessions: peak {}",
        configurator.peak_sessions()
    );
    assert!(
        configurator.devices().len() <= devices,
        "no per-key state for unknown keys"
    );
    let calm_max = calm_report.max_ms.expect("times");
    let flooded_max = report.max_ms.expect("times");
    eprintln!(
        "flood: slowest device {calm_max} ms calm, {flooded_max} ms flooded; peak sessions {}; \
         {handled} unknown announcements handled",
        configurator.peak_sessions()
    );
    assert!(
        flooded_max <= calm_max + FLOOD_DELAY_BOUND_MS,
        "flood delayed the slowest device from {calm_max} ms to {flooded_max} ms"
    );
    // After the flood the configurator holds no sessions at all.
    let later = flooded.sim.now_ms() + 120_000;
    flooded.sim.run_until(later);
    let configurator = flooded.configurator(0).expect("configurator");
    assert_eq!(configurator.configurator().session_count(), 0);
    assert!(configurator.stats().not_allowed + configurator.stats().rate_limited >= 9_000);
}

#[test]
fn a_device_revoked_before_its_response_gets_no_credentials() {
    let mut run = Fleet::new(600).devices(1).build().expect("fleet");
    let device = Fleet::enrollee_addr(0);
    let key = run.keys[0];
    let challenged = |sim: &zerotouch_sim::Simulator| {
        sim.recorder()
            .iter()
            .any(|r| r.frame.dst == device && frame_type(&r.frame.bytes) == Some(CHALLENGE))
    };
    assert!(run.sim.run_while(DEADLINE_MS, |sim| !challenged(sim)));
    let configurator = run.configurators[0];
    run.sim
        .with_node::<ConfiguratorNode, _>(configurator, |c, now| c.revoke(now, &key));
    let later = run.sim.now_ms() + 300_000;
    run.sim.run_until(later);
    let record = run.enrollee(0).expect("enrollee").record();
    assert!(
        record.configs_received.is_empty(),
        "a revoked device received a configuration"
    );
    assert!(record.commit.is_none());
    let log = run
        .configurator(0)
        .and_then(|c| c.device(&key))
        .expect("log");
    assert!(log.configs_provided.is_empty());
    assert_no_secret_on_air(&run);
}

#[test]
fn a_device_revoked_while_the_registry_looks_it_up_gets_no_credentials() {
    let mut run = Fleet::new(601).devices(1).build().expect("fleet");
    let key = run.keys[0];
    let configurator = run.configurators[0];
    run.sim
        .with_node::<ConfiguratorNode, _>(configurator, |c, _| c.set_registry_delay(300));
    let authenticated = |sim: &zerotouch_sim::Simulator| {
        sim.node_as::<ConfiguratorNode>(configurator)
            .and_then(|c| c.device(&key))
            .is_some_and(|log| !log.authenticated.is_empty())
    };
    assert!(run.sim.run_while(DEADLINE_MS, |sim| !authenticated(sim)));
    run.sim
        .with_node::<ConfiguratorNode, _>(configurator, |c, now| c.revoke(now, &key));
    let later = run.sim.now_ms() + 300_000;
    run.sim.run_until(later);
    let record = run.enrollee(0).expect("enrollee").record();
    assert!(
        record.configs_received.is_empty(),
        "a revoked device received a configuration"
    );
    assert!(record.commit.is_none());
    let log = run
        .configurator(0)
        .and_then(|c| c.device(&key))
        .expect("log");
    assert!(log.configs_provided.is_empty());
    let secret_sent = run
        .sim
        .recorder()
        .iter()
        .any(|r| contains(&r.frame.bytes, &run.passphrase));
    assert!(!secret_sent);
}

/// Time to provision device 0 of a 5-device fleet (10 % loss), with the replaying and
/// relaying attacker of PROTOCOL.md §9.5 on device 0 or without it.
fn time_to_provision_of_device_0(seed: u64, attacked: bool) -> (u64, u64) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    let mut run = Fleet::new(seed)
        .devices(5)
        .lossy(0.1)
        .build()
        .expect("fleet");
    let injected = Arc::new(AtomicU64::new(0));
    if attacked {
        run.sim
            .set_adversary(Box::new(zerotouch_sim::AnnounceReplayer::new(
                Fleet::enrollee_addr(0),
                6,
                3,
                injected.clone(),
            )));
    }
    let report = run.run(DEADLINE_MS);
    assert_eq!(report.provisioned, 5, "{report}");
    let ttp = report.per_device[0]
        .time_to_provision_ms
        .expect("device 0 provisioned");
    (ttp, injected.load(Ordering::Relaxed))
}

#[test]
fn a_replaying_and_relaying_attacker_at_most_doubles_a_targeted_device_s_provisioning() {
    // Issue 7 A2: against protocol version 1 this attacker kept the device out (every
    // attempt's handshake evicted, ~16 s stall each). With signed, counted, channel-bound
    // Announces its replays are stale and its relays name the wrong channel. Checked by
    // hand: without the channel check the device is never provisioned; without the counter
    // check it takes 373.7 s instead of 1.7 s (seed 600).
    for seed in [600, 601, 602] {
        let (clean, _) = time_to_provision_of_device_0(seed, false);
        let (attacked, injected) = time_to_provision_of_device_0(seed, true);
        assert!(
            injected >= 3,
            "seed {seed}: the attacker injected {injected} frames"
        );
        assert!(
            attacked <= 2 * clean,
            "seed {seed}: {attacked} ms under attack vs {clean} ms without"
        );
    }
}
