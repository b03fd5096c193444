//! Operators change the allowlist while the daemon provisions: two CLI processes race the
//! daemon (one imports new devices, one revokes others). The daemon picks both changes up
//! without a restart: the added devices are provisioned, the revoked ones get nothing.

mod e2e_support;

use std::time::{Duration, Instant};

use e2e_support::{Env, UdpFleet, dpp_uri, write_uri_file};
use zerotouch_proto::SuiteId;
use zerotouch_store::{AuditFilter, AuditKind, DeviceState};

const FIRST: usize = 40;
const ADDED: usize = 20;
const REVOKED: usize = 10;

#[test]
fn allow_import_and_revoke_race_the_daemon_and_take_effect_without_restart() {
    let env = Env::new();
    env.init_fleet();
    let identities = UdpFleet::identities(FIRST + ADDED + REVOKED, 77, SuiteId::P256);
    let uris: Vec<String> = identities
        .iter()
        .map(|id| dpp_uri(id, UdpFleet::addr_of(id)))
        .collect();
    // Allowlisted at the start: the first batch and the devices to revoke.
    let mut initial: Vec<String> = uris[..FIRST].to_vec();
    initial.extend_from_slice(&uris[FIRST + ADDED..]);
    write_uri_file(&env.path("initial.txt"), &initial);
    write_uri_file(&env.path("added.txt"), &uris[FIRST..FIRST + ADDED]);
    env.ok(&[
        "allow",
        "import",
        &env.path("initial.txt").to_string_lossy(),
    ]);
    let revoked_keys: Vec<_> = identities[FIRST + ADDED..]
        .iter()
        .map(|id| id.public_key().key_hash())
        .collect();

    let mut daemon = env.start_daemon("daemon");
    let mut identities = identities;
    let held_back = identities.split_off(FIRST + ADDED);
    let fleet = UdpFleet::start(env.group, identities, 77);

    // Two operators at once, while the first batch is being provisioned.
    std::thread::scope(|scope| {
        let importer =
            scope.spawn(|| env.ok(&["allow", "import", &env.path("added.txt").to_string_lossy()]));
        let revoker = scope.spawn(|| {
            for key in &revoked_keys {
                env.ok(&["allow", "revoke", &key.to_string()]);
            }
        });
        importer.join().expect("import thread");
        revoker.join().expect("revoke thread");
    });

    fleet.wait_for(
        "the first batch and the added devices",
        Duration::from_secs(90),
        |n| n == FIRST + ADDED,
    );
    // The revoked devices switch on once the daemon has loaded the allowlist with every
    // revocation in it; the daemon must refuse them.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let counter = runtime.block_on(async {
        let registry = env.open_registry().await;
        let counter = registry.change_counter().await.expect("change counter");
        registry.close().await;
        counter
    });
    daemon.wait_for_allowlist(counter, Duration::from_secs(10));
    // Devices of the added batch may have been refused before their import landed.
    let refused_before = daemon.status_field("refused");
    let revoked_fleet = UdpFleet::start(env.group, held_back, 78);
    // Until the daemon has refused every revoked device's announcement (the core reports a
    // key once a minute, so that many refusals are that many keys), none of them may have
    // received a configuration.
    let deadline = Instant::now() + Duration::from_secs(30);
    while daemon.status_field("refused") < refused_before + revoked_keys.len() as u64 {
        assert!(
            Instant::now() < deadline,
            "the daemon did not refuse every revoked device within 30 s"
        );
    }
    assert!(
        revoked_fleet.configs().iter().all(|&c| c == 0),
        "a revoked device received a configuration"
    );
    drop(revoked_fleet);
    assert!(fleet.commits().iter().all(|&c| c == 1));
    drop(fleet);
    assert_eq!(daemon.terminate(), Some(130));

    runtime.block_on(async {
        let registry = env.open_registry().await;
        for key in &revoked_keys {
            let device = registry
                .get_device(key)
                .await
                .expect("get")
                .expect("device");
            assert_eq!(device.state, DeviceState::Revoked);
            let events = registry
                .audit_since(
                    0,
                    &AuditFilter {
                        key_hash: Some(*key),
                        limit: None,
                    },
                )
                .await
                .expect("audit");
            let kinds: Vec<_> = events.iter().map(|e| e.kind.clone()).collect();
            assert!(!kinds.contains(&AuditKind::ConfigDelivered), "{kinds:?}");
            assert!(!kinds.contains(&AuditKind::Joined), "{kinds:?}");
            assert!(!kinds.contains(&AuditKind::Refused), "{kinds:?}");
        }
        // Refusals are unauthenticated: summed up (at shutdown here) in one record that
        // names the keys, attached to no device.
        let all = registry
            .audit_since(
                0,
                &AuditFilter {
                    key_hash: None,
                    limit: Some(100_000),
                },
            )
            .await
            .expect("audit");
        let summaries: Vec<_> = all
            .iter()
            .filter(|e| e.kind == AuditKind::Refused)
            .collect();
        assert_eq!(summaries.len(), 1, "{summaries:?}");
        let detail = &summaries[0].detail;
        assert!(detail["refused"].as_u64().expect("refused") >= refused_before + REVOKED as u64);
        assert!(detail["distinct_keys"].as_u64().expect("distinct") >= REVOKED as u64);
        registry.close().await;
    });
}
