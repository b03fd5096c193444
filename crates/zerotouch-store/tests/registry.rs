//! Every registry operation, run by one shared body against SQLite (temp dir) and a real
//! PostgreSQL server the test starts itself (or `ZEROTOUCH_TEST_PG_URL`).

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{PgServer, device, device_with_hash, fixed_key, fleet_keys};
use zerotouch_proto::{Addr, FailureReason, SuiteId};
use zerotouch_store::{
    AuditFilter, AuditKind, CredentialSpec, DeviceFilter, DeviceState, NetworkSpec,
    PlannedCredential, Profile, Registry, SecurityKind, StoreError, Transition, TransitionOutcome,
};

fn default_profile() -> Profile {
    Profile {
        name: "default".into(),
        networks: vec![
            NetworkSpec {
                ssid: "plant-floor".into(),
                security: SecurityKind::Wpa2Psk,
                credential: CredentialSpec::PerDevice,
                bssid: Some("02:00:00:00:00:01".into()),
                channel: Some(6),
            },
            NetworkSpec {
                ssid: "plant-guest".into(),
                security: SecurityKind::Open,
                credential: CredentialSpec::None,
                bssid: None,
                channel: None,
            },
        ],
        settings: BTreeMap::from([
            ("mqtt.host".into(), "broker.local".into()),
            ("interval".into(), "60".into()),
        ]),
    }
}

fn lab_profile() -> Profile {
    Profile {
        name: "lab".into(),
        networks: vec![NetworkSpec {
            ssid: "lab".into(),
            security: SecurityKind::Wpa3Sae,
            credential: CredentialSpec::Passphrase("correct horse battery".into()),
            bssid: None,
            channel: None,
        }],
        settings: BTreeMap::new(),
    }
}

const MAC: Addr = Addr([0x02, 0x11, 0x22, 0x33, 0x44, 0x55]);

/// The shared body: every operation, with the errors it must give.
async fn exercise_registry(url: &str) {
    let registry = Registry::open(url, fixed_key(7))
        .await
        .expect("open a new registry");

    // Fleet keys: stored once, read back exactly, secrets sealed.
    assert!(registry.fleet().await.expect("fleet").is_none());
    let keys = vec![
        fleet_keys(SuiteId::Ed25519, 10),
        fleet_keys(SuiteId::P256, 20),
    ];
    registry
        .init_fleet("test fleet", &keys)
        .await
        .expect("init fleet");
    let fleet = registry.fleet().await.expect("fleet").expect("initialised");
    assert_eq!(fleet.name, "test fleet");
    assert_eq!(fleet.keys, keys);
    assert_eq!(fleet.keys_for(SuiteId::P256), Some(&keys[1]));
    assert!(matches!(
        registry.init_fleet("again", &keys[..1]).await,
        Err(StoreError::FleetExists(_))
    ));

    // Profiles.
    registry
        .set_profile(&default_profile())
        .await
        .expect("set default profile");
    registry
        .set_profile(&lab_profile())
        .await
        .expect("set lab profile");
    let mut invalid = lab_profile();
    invalid.networks[0].credential = CredentialSpec::Passphrase("short".into());
    assert!(matches!(
        registry.set_profile(&invalid).await,
        Err(StoreError::InvalidConfig(_))
    ));
    assert_eq!(
        registry.get_profile("lab").await.expect("get"),
        Some(lab_profile())
    );
    assert_eq!(registry.get_profile("nope").await.expect("get"), None);
    let names: Vec<String> = registry
        .list_profiles()
        .await
        .expect("list")
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(names, ["default", "lab"]);

    // Allowlisting one device at a time.
    let counter_before = registry.change_counter().await.expect("counter");
    let mut unknown_profile = device(1);
    unknown_profile.profile = Some("missing".into());
    assert!(
        matches!(registry.allow(unknown_profile).await, Err(StoreError::UnknownProfile(p)) if p == "missing")
    );
    let mut first = device(1);
    first.label = Some("pump-1".into());
    let stored = registry.allow(first.clone()).await.expect("allow");
    assert_eq!(stored.state, DeviceState::Allowed);
    assert_eq!(stored.label.as_deref(), Some("pump-1"));
    assert_eq!(stored.public_key, first.public_key);
    assert!(registry.change_counter().await.expect("counter") > counter_before);
    assert!(
        matches!(registry.allow(first.clone()).await, Err(StoreError::DuplicateKey(k)) if k == first.key_hash)
    );
    let mut same_label = device(2);
    same_label.label = Some("pump-1".into());
    assert!(
        matches!(registry.allow(same_label).await, Err(StoreError::DuplicateLabel(l)) if l == "pump-1")
    );
    let mut wrong_length = device(3);
    wrong_length.public_key.pop();
    assert!(matches!(
        registry.allow(wrong_length).await,
        Err(StoreError::InvalidInput(_))
    ));

    // Atomic import: one conflict rejects the whole batch.
    let mut batch: Vec<_> = (100..110).map(device).collect();
    batch.push(first.clone()); // already in the registry
    batch.push(device(100)); // duplicate within the batch
    match registry.allow_many(batch).await {
        Err(StoreError::ImportRejected(conflicts)) => {
            let indexes: Vec<usize> = conflicts.iter().map(|c| c.index).collect();
            assert_eq!(indexes, [10, 11]);
        }
        other => panic!("expected an import rejection, got {other:?}"),
    }
    assert_eq!(
        registry
            .list_devices(&DeviceFilter::default())
            .await
            .expect("list")
            .len(),
        1
    );
    let batch: Vec<_> = (100..150)
        .map(|i| {
            let mut d = device(i);
            d.label = Some(format!("sensor-{i}"));
            d
        })
        .collect();
    assert_eq!(registry.allow_many(batch).await.expect("import"), 50);
    assert_eq!(
        registry
            .list_devices(&DeviceFilter::default())
            .await
            .expect("list")
            .len(),
        51
    );

    // Look-ups by label, prefix, ambiguous prefix.
    let mut a = [0u8; 32];
    a[..3].copy_from_slice(&[0xab, 0xcd, 0xef]);
    let mut b = a;
    b[31] = 1;
    registry
        .allow(device_with_hash(500, a))
        .await
        .expect("allow a");
    registry
        .allow(device_with_hash(501, b))
        .await
        .expect("allow b");
    assert_eq!(
        registry
            .find_device("pump-1")
            .await
            .expect("by label")
            .key_hash,
        first.key_hash
    );
    let prefix = &first.key_hash.to_string()[..12];
    assert_eq!(
        registry
            .find_device(prefix)
            .await
            .expect("by prefix")
            .key_hash,
        first.key_hash
    );
    assert!(matches!(
        registry.find_device("abcdef").await,
        Err(StoreError::AmbiguousPrefix { matches: 2, .. })
    ));
    assert_eq!(
        registry
            .find_device(&format!("{}", zerotouch_proto::KeyHash(b)))
            .await
            .expect("full hash")
            .key_hash
            .0,
        b
    );
    assert!(matches!(
        registry.find_device("no-such-label").await,
        Err(StoreError::DeviceNotFound(_))
    ));
    assert!(
        registry
            .get_device(&device(9999).key_hash)
            .await
            .expect("get")
            .is_none()
    );

    // The daemon's path for one device.
    let key = first.key_hash;
    registry
        .record_announced(&key, MAC)
        .await
        .expect("announced");
    registry
        .record_authenticated(&key)
        .await
        .expect("authenticated");
    assert_eq!(
        registry
            .get_device(&key)
            .await
            .expect("get")
            .expect("device")
            .state,
        DeviceState::Provisioning
    );
    let plan = registry.device_config(&key).await.expect("config");
    assert_eq!(plan.profile, "default");
    assert_eq!(plan.networks.len(), 2);
    assert_eq!(plan.networks[0].ssid, b"plant-floor");
    assert_eq!(plan.networks[0].bssid, Some([2, 0, 0, 0, 0, 1]));
    assert_eq!(plan.networks[0].channel, Some(6));
    let PlannedCredential::Passphrase(psk) = &plan.networks[0].credential else {
        panic!("per-device network without a passphrase");
    };
    assert!(psk.len() >= 24);
    assert_eq!(plan.networks[1].credential, PlannedCredential::None);
    assert_eq!(
        plan.settings.get("mqtt.host").map(String::as_str),
        Some("broker.local")
    );
    let again = registry.device_config(&key).await.expect("config again");
    assert_eq!(
        again.networks[0].credential, plan.networks[0].credential,
        "the per-device PSK is stable"
    );
    let other_plan = registry
        .device_config(&device(100).key_hash)
        .await
        .expect("config of another");
    assert_ne!(
        other_plan.networks[0].credential, plan.networks[0].credential,
        "PSKs are per device"
    );
    registry
        .record_config_delivered(&key)
        .await
        .expect("delivered");
    assert!(
        registry.record_joined(&key).await.expect("joined"),
        "first join provisions"
    );
    assert!(
        !registry.record_joined(&key).await.expect("joined again"),
        "a repeated join is not a new provisioning"
    );
    let provisioned = registry
        .get_device(&key)
        .await
        .expect("get")
        .expect("device");
    assert_eq!(provisioned.state, DeviceState::Provisioned);
    assert_eq!(provisioned.provision_count, 1);
    assert_eq!(provisioned.last_mac, Some(MAC));
    assert_eq!(provisioned.last_event.as_deref(), Some("rejoined"));
    assert!(provisioned.provisioned_at_ms.is_some());
    let kinds: Vec<AuditKind> = registry
        .audit_since(
            0,
            &AuditFilter {
                key_hash: Some(key),
                limit: None,
            },
        )
        .await
        .expect("audit")
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds,
        [
            AuditKind::Allowed,
            AuditKind::Announced,
            AuditKind::Authenticated,
            AuditKind::ConfigDelivered,
            AuditKind::Joined,
            AuditKind::Rejoined
        ]
    );

    // A failed join.
    let second = device(101).key_hash;
    registry
        .record_authenticated(&second)
        .await
        .expect("authenticated");
    registry
        .record_join_failed(&second, FailureReason::AuthFailed)
        .await
        .expect("failed");
    let failed = registry
        .get_device(&second)
        .await
        .expect("get")
        .expect("device");
    assert_eq!(failed.state, DeviceState::Failed(FailureReason::AuthFailed));
    assert_eq!(failed.last_failure, Some(FailureReason::AuthFailed));
    let filter = DeviceFilter {
        state: Some("failed".into()),
        profile: None,
    };
    assert_eq!(registry.list_devices(&filter).await.expect("list").len(), 1);
    assert!(matches!(
        registry.record_announced(&device(9999).key_hash, MAC).await,
        Err(StoreError::DeviceNotFound(_))
    ));

    // Refusals are audited at most once per window per key.
    let stranger = device(7777).key_hash;
    assert!(
        registry
            .record_refused(&stranger, MAC)
            .await
            .expect("refused")
    );
    assert!(
        !registry
            .record_refused(&stranger, MAC)
            .await
            .expect("refused again")
    );
    let mut no_window = registry.clone();
    no_window.set_refusal_audit_window(Duration::ZERO);
    assert!(
        no_window
            .record_refused(&stranger, MAC)
            .await
            .expect("refused after the window")
    );
    let refusals = registry
        .audit_since(
            0,
            &AuditFilter {
                key_hash: Some(stranger),
                limit: None,
            },
        )
        .await
        .expect("audit");
    assert_eq!(refusals.len(), 2);
    assert_eq!(refusals[1].detail["suppressed_since_last"], 1);

    // Export, revocation.
    let psks = registry.provisioned_psks().await.expect("psks");
    assert_eq!(psks.len(), 1, "only provisioned devices are exported");
    assert_eq!(psks[0].key_hash, key);
    assert_eq!(psks[0].label.as_deref(), Some("pump-1"));
    assert_eq!(psks[0].mac, Some(MAC));
    assert_eq!(
        PlannedCredential::Passphrase(psks[0].psk.clone()),
        plan.networks[0].credential
    );
    assert!(
        registry
            .allowlist()
            .await
            .expect("allowlist")
            .contains(&key)
    );
    let counter = registry.change_counter().await.expect("counter");
    assert!(registry.revoke(&key).await.expect("revoke"));
    assert!(!registry.revoke(&key).await.expect("revoke again"));
    assert!(registry.change_counter().await.expect("counter") > counter);
    assert!(
        !registry
            .allowlist()
            .await
            .expect("allowlist")
            .contains(&key)
    );
    assert!(registry.provisioned_psks().await.expect("psks").is_empty());
    assert!(matches!(
        registry.record_authenticated(&key).await,
        Err(StoreError::DeviceRevoked(_))
    ));
    assert!(matches!(
        registry.record_joined(&key).await,
        Err(StoreError::DeviceRevoked(_))
    ));
    assert!(matches!(
        registry.device_config(&key).await,
        Err(StoreError::DeviceRevoked(_))
    ));
    assert!(matches!(
        registry.revoke(&device(9999).key_hash).await,
        Err(StoreError::DeviceNotFound(_))
    ));

    // A revoked device can be allowed again; a live one cannot be allowed twice.
    let mut valve = device(200);
    valve.label = Some("valve-9".into());
    let valve_key = valve.key_hash;
    registry.allow(valve.clone()).await.expect("allow valve");
    assert!(registry.revoke(&valve_key).await.expect("revoke valve"));
    let mut stolen_label = valve.clone();
    stolen_label.label = Some("pump-1".into());
    assert!(
        matches!(registry.allow(stolen_label).await, Err(StoreError::DuplicateLabel(l)) if l == "pump-1")
    );
    assert_eq!(
        registry
            .get_device(&valve_key)
            .await
            .expect("get")
            .expect("valve")
            .state,
        DeviceState::Revoked,
        "a refused re-allow changes nothing"
    );
    let counter = registry.change_counter().await.expect("counter");
    let mut again = valve.clone();
    again.label = None;
    let reallowed = registry.allow(again.clone()).await.expect("re-allow");
    assert_eq!(reallowed.state, DeviceState::Allowed);
    assert_eq!(
        reallowed.label.as_deref(),
        Some("valve-9"),
        "keeps its label"
    );
    assert!(registry.change_counter().await.expect("counter") > counter);
    assert!(
        registry
            .allowlist()
            .await
            .expect("allowlist")
            .contains(&valve_key)
    );
    assert!(
        matches!(registry.allow(again).await, Err(StoreError::DuplicateKey(k)) if k == valve_key)
    );
    let valve_log = registry
        .audit_since(
            0,
            &AuditFilter {
                key_hash: Some(valve_key),
                limit: None,
            },
        )
        .await
        .expect("audit");
    let valve_kinds: Vec<&AuditKind> = valve_log.iter().map(|e| &e.kind).collect();
    assert_eq!(
        valve_kinds,
        [
            &AuditKind::Allowed,
            &AuditKind::Revoked,
            &AuditKind::Allowed
        ]
    );
    assert_eq!(valve_log[2].detail["reallowed"], true);

    // Many transitions in one transaction, each with its own outcome and audit record.
    assert!(
        registry
            .record_batch(&[])
            .await
            .expect("empty batch")
            .is_empty()
    );
    let (batch_a, batch_b) = (device(300).key_hash, device(301).key_hash);
    registry
        .allow_many(vec![device(300), device(301)])
        .await
        .expect("allow batch devices");
    let batch_stranger = device(7778).key_hash;
    let batch = [
        Transition::Announced {
            key_hash: batch_a,
            mac: MAC,
        },
        Transition::Authenticated {
            key_hash: batch_a,
            mac: None,
        },
        Transition::ConfigDelivered {
            key_hash: batch_a,
            profile: None,
        },
        Transition::Joined { key_hash: batch_a },
        Transition::Joined { key_hash: batch_a },
        Transition::Authenticated {
            key_hash: batch_b,
            mac: None,
        },
        Transition::JoinFailed {
            key_hash: batch_b,
            reason: FailureReason::AuthFailed,
        },
        Transition::Authenticated {
            key_hash: device(9999).key_hash,
            mac: None,
        },
        Transition::Joined { key_hash: key },
        Transition::Refused {
            key_hash: batch_stranger,
            mac: MAC,
        },
        Transition::Refused {
            key_hash: batch_stranger,
            mac: MAC,
        },
    ];
    assert!(batch[3].needs_durability() && !batch[0].needs_durability());
    let audit_before = registry.latest_audit_id().await.expect("latest");
    let outcomes = registry.record_batch(&batch).await.expect("batch");
    assert_eq!(
        outcomes,
        [
            TransitionOutcome::Recorded,
            TransitionOutcome::Recorded,
            TransitionOutcome::Recorded,
            TransitionOutcome::Joined {
                newly_provisioned: true
            },
            TransitionOutcome::Joined {
                newly_provisioned: false
            },
            TransitionOutcome::Recorded,
            TransitionOutcome::Recorded,
            TransitionOutcome::DeviceNotFound,
            TransitionOutcome::DeviceRevoked,
            TransitionOutcome::Refused { audited: true },
            TransitionOutcome::Refused { audited: false },
        ]
    );
    assert_eq!(
        registry.latest_audit_id().await.expect("latest") - audit_before,
        8,
        "one audit record per recorded transition, none for the rest"
    );
    let provisioned_in_batch = registry
        .get_device(&batch_a)
        .await
        .expect("get")
        .expect("device");
    assert_eq!(provisioned_in_batch.state, DeviceState::Provisioned);
    assert_eq!(provisioned_in_batch.provision_count, 1);
    assert_eq!(provisioned_in_batch.last_mac, Some(MAC));
    let batch_kinds: Vec<AuditKind> = registry
        .audit_since(
            audit_before,
            &AuditFilter {
                key_hash: Some(batch_a),
                limit: None,
            },
        )
        .await
        .expect("audit")
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        batch_kinds,
        [
            AuditKind::Announced,
            AuditKind::Authenticated,
            AuditKind::ConfigDelivered,
            AuditKind::Joined,
            AuditKind::Rejoined
        ]
    );
    assert_eq!(
        registry
            .get_device(&batch_b)
            .await
            .expect("get")
            .expect("device")
            .state,
        DeviceState::Failed(FailureReason::AuthFailed)
    );
    assert_eq!(
        registry
            .get_device(&key)
            .await
            .expect("get")
            .expect("device")
            .state,
        DeviceState::Revoked,
        "a batch never touches a revoked device"
    );
    // A batch of relaxed transitions only.
    assert_eq!(
        registry
            .record_batch(&[Transition::Announced {
                key_hash: batch_b,
                mac: MAC
            }])
            .await
            .expect("relaxed batch"),
        [TransitionOutcome::Recorded]
    );

    // Profiles and overrides per device.
    let third = device(102).key_hash;
    assert!(matches!(
        registry.set_device_profile(&third, Some("missing")).await,
        Err(StoreError::UnknownProfile(_))
    ));
    registry
        .set_device_profile(&third, Some("lab"))
        .await
        .expect("move to lab");
    registry
        .set_device_overrides(
            &third,
            &BTreeMap::from([("interval".to_string(), "5".to_string())]),
        )
        .await
        .expect("overrides");
    let lab_plan = registry.device_config(&third).await.expect("lab config");
    assert_eq!(lab_plan.profile, "lab");
    assert_eq!(
        lab_plan.networks[0].credential,
        PlannedCredential::Passphrase(zeroize::Zeroizing::new("correct horse battery".into()))
    );
    assert_eq!(
        lab_plan.settings.get("interval").map(String::as_str),
        Some("5")
    );
    let in_lab = DeviceFilter {
        state: None,
        profile: Some("lab".into()),
    };
    assert_eq!(registry.list_devices(&in_lab).await.expect("list").len(), 1);
    assert!(matches!(
        registry.delete_profile("lab").await,
        Err(StoreError::ProfileInUse { devices: 1, .. })
    ));
    assert!(matches!(
        registry.delete_profile("default").await,
        Err(StoreError::ProfileInUse { .. })
    ));
    assert!(matches!(
        registry.delete_profile("nope").await,
        Err(StoreError::UnknownProfile(_))
    ));
    registry
        .set_device_profile(&third, None)
        .await
        .expect("back to default");
    registry
        .delete_profile("lab")
        .await
        .expect("delete unused profile");
    assert_eq!(registry.get_profile("lab").await.expect("get"), None);

    // Expiry removes a device from the allowlist.
    let fourth = device(103).key_hash;
    let future = i64::MAX / 2;
    registry
        .set_device_expiry(&fourth, Some(future))
        .await
        .expect("expiry in the future");
    let snapshot = registry.allowlist_snapshot().await.expect("snapshot");
    assert!(snapshot.keys.contains(&fourth));
    assert_eq!(snapshot.next_expiry_ms, Some(future));
    assert_eq!(
        snapshot.change_counter,
        registry.change_counter().await.expect("counter")
    );
    registry
        .set_device_expiry(&fourth, Some(1))
        .await
        .expect("expired");
    assert!(
        !registry
            .allowlist()
            .await
            .expect("allowlist")
            .contains(&fourth)
    );
    assert!(matches!(
        registry.device_config(&fourth).await,
        Err(StoreError::DeviceRevoked(_))
    ));

    // The audit log: gap-free increasing ids, paging, following.
    let all = registry
        .audit_since(0, &AuditFilter::default())
        .await
        .expect("audit");
    let ids: Vec<i64> = all.iter().map(|e| e.id).collect();
    let expected: Vec<i64> = (1..=i64::try_from(ids.len()).expect("count")).collect();
    assert_eq!(ids, expected);
    assert_eq!(
        registry.latest_audit_id().await.expect("latest"),
        *ids.last().expect("records")
    );
    let page = registry
        .audit_since(
            3,
            &AuditFilter {
                key_hash: None,
                limit: Some(2),
            },
        )
        .await
        .expect("page");
    assert_eq!(page.iter().map(|e| e.id).collect::<Vec<_>>(), [4, 5]);
    assert!(all.iter().all(|e| e.configurator.is_none()));
    let mut daemon = registry.clone();
    daemon.set_configurator_id(Some("cfg-1".into()));
    daemon
        .record_announced(&third, MAC)
        .await
        .expect("announced");
    let newest = registry
        .audit_since(*ids.last().expect("records"), &AuditFilter::default())
        .await
        .expect("follow");
    assert_eq!(newest.len(), 1);
    assert_eq!(newest[0].configurator.as_deref(), Some("cfg-1"));
    assert_eq!(newest[0].detail["mac"], "02:11:22:33:44:55");

    // Reopening finds everything, with the same key; another key is refused.
    registry.close().await;
    let reopened = Registry::open(url, fixed_key(7)).await.expect("reopen");
    assert_eq!(
        reopened.fleet().await.expect("fleet").expect("fleet").keys,
        keys
    );
    reopened.close().await;
    match Registry::open(url, fixed_key(8)).await {
        Err(e @ StoreError::WrongSecretKey { .. }) => {
            assert!(
                e.to_string()
                    .starts_with("the secret key does not match this registry: "),
                "{e}"
            );
        }
        other => panic!("expected a wrong-key error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_on_sqlite() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("registry.db");
    exercise_registry(path.to_str().expect("utf-8 path")).await;
    // The `sqlite:` form opens the same file.
    let again = Registry::open(&format!("sqlite:{}", path.display()), fixed_key(7))
        .await
        .expect("sqlite: URL");
    assert!(again.fleet().await.expect("fleet").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_on_postgres() {
    let Some(server) = PgServer::start() else {
        return;
    };
    let url = server.fresh_database().await;
    exercise_registry(&url).await;
}
