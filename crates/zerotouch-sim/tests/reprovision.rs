//! Re-provisioning (PROTOCOL.md §5 and §9.1; issue 2 item 5): a provisioned device that can
//! no longer join because the access point's PSK was rotated is restarted by its driver in
//! Reconfigure mode with the owner it pinned at the first provisioning. A rogue configurator
//! of another owner, alone on the device's channel with the device allowlisted and the new
//! PSK, is refused; the owner's configurator, once back on the air with the updated
//! profile, provisions it again with the new credentials.
//!
//! The device restarts at the same address in the same simulation (a reboot); the state
//! machine of its first boot stays in the simulator, provisioned and silent.

mod common;

use std::collections::BTreeSet;

use common::{DEADLINE_MS, foreign_configurator, wpa2_config};
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use zerotouch_proto::config::ConfigView;
use zerotouch_proto::configurator::{ConfiguratorIdentity, ConfiguratorSettings};
use zerotouch_proto::enrollee::RejectReason;
use zerotouch_proto::{
    Addr, AnnounceMode, ConfiguratorCert, FailureReason, PublicKey, SigningIdentity, SuiteId,
};
use zerotouch_sim::enrollee_node::simulate_join;
use zerotouch_sim::fleet::{CERT_VALIDITY_S, SIM_UNIX_TIME, default_limits, new_device_settings};
use zerotouch_sim::{
    ApModel, ConfiguratorNode, EnrolleeNode, LinkModel, NodeId, RadioConfig, Simulator,
};

const SSID: &str = "plant-floor";
const OLD_PASSPHRASE: &str = "passphrase-before-rotation";
const NEW_PASSPHRASE: &str = "passphrase-after-rotation";
/// The channel of the owner's configurator, the rogue and the access point.
const CHANNEL: u8 = 6;
const DEVICE: Addr = Addr([0x02, 0, 0, 0, 0, 0x01]);
const OPERATOR: Addr = Addr([0x02, 0xc0, 0, 0, 0, 0x01]);
const ROGUE: Addr = Addr([0x02, 0x66, 0x66, 0x66, 0x66, 0x66]);
/// Virtual time the rogue has the device to itself (ms): several announcement rounds.
const ROGUE_ALONE_MS: u64 = 90_000;

/// The owner's configurator (the fleet's), certified by `owner`, serving `device`.
fn operator_configurator(
    owner: &SigningIdentity,
    device: &PublicKey,
    config: Vec<u8>,
    seed: u64,
) -> (ConfiguratorNode, PublicKey) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let identity = SigningIdentity::generate(owner.suite(), &mut rng);
    let configurator_key = identity.public_key();
    let cert = ConfiguratorCert::issue(owner, &configurator_key, SIM_UNIX_TIME + CERT_VALIDITY_S)
        .expect("same-suite certificate");
    let mut identities = heapless::Vec::new();
    identities
        .push(ConfiguratorIdentity {
            identity,
            cert,
            owner: owner.public_key(),
        })
        .map_err(|_| "identity list full")
        .expect("room for one identity");
    let settings = ConfiguratorSettings {
        identities,
        channel: CHANNEL,
        unix_time: SIM_UNIX_TIME,
        limits: default_limits(),
    };
    let allowlist = BTreeSet::from([device.key_hash()]);
    let node = ConfiguratorNode::new(
        OPERATOR,
        settings,
        ChaCha8Rng::seed_from_u64(seed ^ 0xc0),
        allowlist,
        Some(config),
    );
    (node, configurator_key)
}

fn enrollee(sim: &Simulator, id: NodeId) -> &EnrolleeNode {
    sim.node_as::<EnrolleeNode>(id).expect("enrollee node")
}

fn configurator(sim: &Simulator, id: NodeId) -> &ConfiguratorNode {
    sim.node_as::<ConfiguratorNode>(id)
        .expect("configurator node")
}

fn committed(sim: &Simulator, id: NodeId) -> bool {
    enrollee(sim, id).record().commit.is_some()
}

#[test]
fn a_reconfiguring_device_refuses_a_foreign_owner_and_is_reprovisioned_by_its_own() {
    let mut sim = Simulator::new(RadioConfig::default(), 500);
    let mut keys = ChaCha8Rng::seed_from_u64(501);
    let owner = SigningIdentity::generate(SuiteId::Ed25519, &mut keys);
    let device_identity = SigningIdentity::generate(SuiteId::Ed25519, &mut keys);
    let device_key = device_identity.public_key();
    let key_hash = device_key.key_hash();
    // What the driver persists: the identity secret, restored at the next boot.
    let persisted_secret = device_identity.secret_bytes();

    // 1. Factory-fresh device, no pinned owner: trust on first use.
    let old_config = wpa2_config(SSID, OLD_PASSPHRASE);
    let (operator, operator_key) =
        operator_configurator(&owner, &device_key, old_config.clone(), 502);
    let operator_id = sim.add_node(Box::new(operator));
    let first_boot = sim.add_node(Box::new(EnrolleeNode::new(
        DEVICE,
        new_device_settings(device_identity, None),
        ChaCha8Rng::seed_from_u64(503),
        0,
        vec![ApModel::wpa2(SSID, OLD_PASSPHRASE, CHANNEL)],
    )));
    assert!(
        sim.run_while(DEADLINE_MS, |sim| !committed(sim, first_boot)),
        "first provisioning did not finish"
    );
    let first = enrollee(&sim, first_boot)
        .record()
        .commit
        .clone()
        .expect("first commit");
    assert_eq!(
        first.provisioned.owner,
        owner.public_key(),
        "trust on first use pinned the owner's key"
    );
    assert_eq!(first.provisioned.configurator, operator_key);
    assert_eq!(first.provisioned.channel, CHANNEL);
    assert_eq!(first.config, old_config);

    // 2. The PSK is rotated: the stored credentials no longer work.
    let rotated_ap = vec![ApModel::wpa2(SSID, NEW_PASSPHRASE, CHANNEL)];
    let stored = ConfigView::parse(&first.config).expect("committed config parses");
    assert_eq!(
        simulate_join(&stored, &rotated_ap),
        Err(FailureReason::AuthFailed)
    );
    // The owner's configurator is out of range for now.
    sim.set_link(OPERATOR, DEVICE, LinkModel::cut());
    sim.set_link(DEVICE, OPERATOR, LinkModel::cut());
    // The driver restarts the device in Reconfigure mode from what it committed.
    let identity = SigningIdentity::from_secret_bytes(SuiteId::Ed25519, persisted_secret.as_ref())
        .expect("persisted identity");
    let mut settings = new_device_settings(identity, Some(first.provisioned.owner));
    settings.mode = AnnounceMode::Reconfigure;
    settings.last_failure = Some(FailureReason::AuthFailed);
    settings.last_channel = Some(first.provisioned.channel);
    settings.known_unix_time = first.provisioned.unix_time;
    let restarted_at = sim.now_ms();
    let second_boot = sim.add_node(Box::new(EnrolleeNode::new(
        DEVICE,
        settings,
        ChaCha8Rng::seed_from_u64(504),
        restarted_at,
        rotated_ap,
    )));

    // 3. A rogue of another owner, with the device allowlisted and the new PSK, alone on
    // the device's channel.
    let new_config = wpa2_config(SSID, NEW_PASSPHRASE);
    let rogue = foreign_configurator(
        505,
        ROGUE,
        CHANNEL,
        BTreeSet::from([key_hash]),
        new_config.clone(),
    );
    let rogue_id = sim.add_node(Box::new(rogue));
    sim.run_until(restarted_at + ROGUE_ALONE_MS);

    let rogue_log = configurator(&sim, rogue_id)
        .device(&key_hash)
        .expect("the rogue heard the device")
        .clone();
    assert!(
        rogue_log
            .announces
            .iter()
            .any(|(_, mode, reason)| *mode == AnnounceMode::Reconfigure
                && *reason == Some(FailureReason::AuthFailed)),
        "the device announced Reconfigure, flagging the failed join: {:?}",
        rogue_log.announces
    );
    assert!(
        rogue_log.authenticated.is_empty()
            && rogue_log.configs_provided.is_empty()
            && rogue_log.delivered.is_empty(),
        "the rogue never got a session: {rogue_log:?}"
    );
    let record = enrollee(&sim, second_boot).record();
    assert!(
        record
            .rejected
            .iter()
            .any(|(_, reason)| *reason == RejectReason::UnknownOwner),
        "the device refused the rogue as an unknown owner: {:?}",
        record.rejected
    );
    assert!(
        record.authenticated.is_empty(),
        "{:?}",
        record.authenticated
    );
    assert!(record.configs_received.is_empty());
    assert!(record.commit.is_none());
    assert!(
        configurator(&sim, operator_id)
            .device(&key_hash)
            .is_some_and(|log| log.announces.iter().all(|(at, _, _)| *at < restarted_at)),
        "the owner's configurator was out of range"
    );

    // 4. The owner's configurator comes back with the updated profile (the rogue stays).
    sim.with_node::<ConfiguratorNode, _>(operator_id, |c, _| {
        c.set_config(key_hash, new_config.clone())
    })
    .expect("operator node");
    sim.set_link(OPERATOR, DEVICE, LinkModel::perfect());
    sim.set_link(DEVICE, OPERATOR, LinkModel::perfect());
    let back_at = sim.now_ms();
    assert!(
        sim.run_while(back_at + DEADLINE_MS, |sim| !committed(sim, second_boot)),
        "re-provisioning did not finish"
    );
    let record = enrollee(&sim, second_boot).record();
    let second = record.commit.clone().expect("second commit");
    assert_eq!(second.config, new_config, "the new PSK was committed");
    assert_eq!(second.provisioned.owner, first.provisioned.owner);
    assert_eq!(second.provisioned.configurator, operator_key);
    assert_eq!(
        record.join_results.last().map(|(_, result)| *result),
        Some(Ok(())),
        "the device joined the rotated network"
    );
    assert!(
        record
            .authenticated
            .iter()
            .all(|(_, configurator)| *configurator == operator_key),
        "only the owner's configurator authenticated: {:?}",
        record.authenticated
    );
    let operator_log = configurator(&sim, operator_id)
        .device(&key_hash)
        .expect("operator log");
    assert!(
        operator_log
            .announces
            .iter()
            .any(|(at, mode, _)| *at >= back_at && *mode == AnnounceMode::Reconfigure)
    );
    assert_eq!(
        operator_log.join_reports.last().map(|(_, result)| *result),
        Some(Ok(()))
    );
    let rogue_log = configurator(&sim, rogue_id)
        .device(&key_hash)
        .expect("rogue log");
    assert!(rogue_log.authenticated.is_empty() && rogue_log.delivered.is_empty());
}

#[test]
fn a_reconfiguring_device_with_no_pinned_owner_accepts_nobody() {
    let mut sim = Simulator::new(RadioConfig::default(), 510);
    let mut keys = ChaCha8Rng::seed_from_u64(511);
    let owner = SigningIdentity::generate(SuiteId::Ed25519, &mut keys);
    let device_identity = SigningIdentity::generate(SuiteId::Ed25519, &mut keys);
    let device_key = device_identity.public_key();
    let config = wpa2_config(SSID, NEW_PASSPHRASE);
    let (operator, _) = operator_configurator(&owner, &device_key, config, 512);
    let operator_id = sim.add_node(Box::new(operator));
    // A driver bug: Reconfigure mode, but the owner learned at provisioning was not pinned.
    let mut settings = new_device_settings(device_identity, None);
    settings.mode = AnnounceMode::Reconfigure;
    settings.last_failure = Some(FailureReason::AuthFailed);
    settings.last_channel = Some(CHANNEL);
    settings.known_unix_time = SIM_UNIX_TIME;
    let device = sim.add_node(Box::new(EnrolleeNode::new(
        DEVICE,
        settings,
        ChaCha8Rng::seed_from_u64(513),
        0,
        vec![ApModel::wpa2(SSID, NEW_PASSPHRASE, CHANNEL)],
    )));
    sim.run_until(ROGUE_ALONE_MS);

    let log = configurator(&sim, operator_id)
        .device(&device_key.key_hash())
        .expect("the configurator heard the device");
    assert!(
        log.announces
            .iter()
            .any(|(_, mode, _)| *mode == AnnounceMode::Reconfigure)
    );
    assert!(log.authenticated.is_empty() && log.delivered.is_empty());
    let record = enrollee(&sim, device).record();
    assert!(
        record
            .rejected
            .iter()
            .any(|(_, reason)| *reason == RejectReason::UnknownOwner),
        "{:?}",
        record.rejected
    );
    assert!(record.authenticated.is_empty());
    assert!(record.configs_received.is_empty());
    assert!(record.commit.is_none());
}
