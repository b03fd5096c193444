//! Helpers shared by the scenario tests: frame inspection, configuration objects and
//! configurators built outside a [`zerotouch_sim::Fleet`] (a rogue of another owner).
#![allow(dead_code)] // every test binary uses its own subset

use std::collections::BTreeSet;

use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use zerotouch_proto::config::{ConfigWriter, Credential, MAX_CONFIG_LEN, Network, Security};
use zerotouch_proto::configurator::{ConfiguratorIdentity, ConfiguratorSettings};
use zerotouch_proto::{Addr, ConfiguratorCert, KeyHash, SigningIdentity, SuiteId};
use zerotouch_sim::fleet::{CERT_VALIDITY_S, SIM_UNIX_TIME};
use zerotouch_sim::{ConfiguratorNode, FleetRun, Recorded};

/// Frame types (PROTOCOL.md §4).
pub const ANNOUNCE: u8 = 1;
pub const CHALLENGE: u8 = 2;
pub const RESPONSE: u8 = 3;
pub const DATA: u8 = 4;
pub const ACK: u8 = 5;

/// Virtual time within which a small fleet must be done (ms).
pub const DEADLINE_MS: u64 = 600_000;

/// The type byte of a zerotouch frame.
pub fn frame_type(bytes: &[u8]) -> Option<u8> {
    (bytes.len() >= 4 && bytes[0] == 0x5a).then(|| bytes[2])
}

/// The suite byte of a zerotouch frame.
pub fn frame_suite(bytes: &[u8]) -> Option<SuiteId> {
    (bytes.len() >= 4 && bytes[0] == 0x5a)
        .then(|| SuiteId::from_u8(bytes[3]))
        .flatten()
}

/// True if `needle` occurs anywhere in `haystack`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// A configuration object with one WPA2-PSK network.
pub fn wpa2_config(ssid: &str, passphrase: &str) -> Vec<u8> {
    let mut buf = vec![0u8; MAX_CONFIG_LEN];
    let mut writer = ConfigWriter::new(&mut buf);
    writer
        .network(&Network {
            ssid: ssid.as_bytes(),
            security: Security::Wpa2Psk,
            credential: Credential::Passphrase(passphrase),
            bssid: None,
            channel: Some(6),
        })
        .expect("valid network");
    let len = writer.finish().expect("one network written");
    buf.truncate(len);
    buf
}

/// A configurator with its own owner (not the fleet's), serving `allowlist` with `config`.
pub fn foreign_configurator(
    seed: u64,
    addr: Addr,
    channel: u8,
    allowlist: BTreeSet<KeyHash>,
    config: Vec<u8>,
) -> ConfiguratorNode {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut identities = heapless::Vec::new();
    for suite in SuiteId::ALL {
        let owner = SigningIdentity::generate(suite, &mut rng);
        let identity = SigningIdentity::generate(suite, &mut rng);
        let cert = ConfiguratorCert::issue(
            &owner,
            &identity.public_key(),
            SIM_UNIX_TIME + CERT_VALIDITY_S,
        )
        .expect("same-suite certificate");
        let _ = identities.push(ConfiguratorIdentity {
            identity,
            cert,
            owner: owner.public_key(),
        });
    }
    let settings = ConfiguratorSettings {
        identities,
        channel,
        unix_time: SIM_UNIX_TIME,
        limits: zerotouch_sim::fleet::default_limits(),
    };
    ConfiguratorNode::new(
        addr,
        settings,
        ChaCha8Rng::seed_from_u64(seed ^ 1),
        allowlist,
        Some(config),
    )
}

/// Frames on air that were sent to `addr` (unicast).
pub fn frames_to(recorded: &[Recorded], addr: Addr) -> Vec<&Recorded> {
    recorded.iter().filter(|r| r.frame.dst == addr).collect()
}

/// Asserts that no recorded frame carries the fleet's SSID or passphrase.
pub fn assert_no_secret_on_air(run: &FleetRun) {
    for recorded in run.sim.recorder() {
        assert!(
            !contains(&recorded.frame.bytes, &run.ssid),
            "SSID in frame {:?}",
            recorded.frame
        );
        assert!(
            !contains(&recorded.frame.bytes, &run.passphrase),
            "passphrase in frame {:?}",
            recorded.frame
        );
    }
}
