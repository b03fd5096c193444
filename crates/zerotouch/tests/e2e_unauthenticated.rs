//! Nothing durable comes from what is not authenticated (issue 7, A5), on the real daemon and
//! registry: a captured genuine Announce replayed from another address, a revoked device's
//! Announce from a spoofed address, and a flood of unknown keys change no device row and
//! write no audit record per frame (the refusals end up in one summary record); the device's
//! real address is recorded once it authenticates.

mod e2e_support;

use std::time::Duration;

use e2e_support::{Env, Injector, UdpFleet, captured_announce, dpp_uri, write_uri_file};
use zerotouch_proto::{Addr, SigningIdentity, SuiteId};
use zerotouch_store::{AuditFilter, AuditKind, Device};

const WAIT: Duration = Duration::from_secs(30);
const UNKNOWN_KEYS: usize = 300;
const SPOOFED: Addr = Addr([0x02, 0xba, 0xd0, 0x00, 0x00, 0x01]);

fn copy(identity: &SigningIdentity) -> SigningIdentity {
    SigningIdentity::from_secret_bytes(identity.suite(), identity.secret_bytes().as_slice())
        .expect("copy identity")
}

/// The columns an announcement could have touched.
fn touched(device: &Device) -> impl PartialEq + std::fmt::Debug + use<> {
    (
        device.state,
        device.last_mac,
        device.last_event.clone(),
        device.last_event_at_ms,
        device.updated_at_ms,
    )
}

#[test]
fn spoofed_and_refused_announcements_change_no_registry_row() {
    let env = Env::new();
    env.init_fleet();
    let mut identities = UdpFleet::identities(2, 707, SuiteId::Ed25519);
    let revoked = identities.pop().expect("two");
    let device = identities.pop().expect("two");
    let uris = vec![
        dpp_uri(&device, UdpFleet::addr_of(&device)),
        dpp_uri(&revoked, UdpFleet::addr_of(&revoked)),
    ];
    write_uri_file(&env.path("devices.txt"), &uris);
    env.ok(&[
        "allow",
        "import",
        &env.path("devices.txt").to_string_lossy(),
    ]);
    let revoked_key = revoked.public_key().key_hash();
    env.ok(&["allow", "revoke", &revoked_key.to_string()]);
    let device_key = device.public_key().key_hash();

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let rows = || {
        runtime.block_on(async {
            let registry = env.open_registry().await;
            let mut rows = Vec::new();
            for key in [device_key, revoked_key] {
                let row = registry.get_device(&key).await.expect("get").expect("row");
                rows.push(touched(&row));
            }
            let audit = registry
                .audit_since(
                    0,
                    &AuditFilter {
                        key_hash: None,
                        limit: Some(100_000),
                    },
                )
                .await
                .expect("audit");
            registry.close().await;
            (rows, audit)
        })
    };
    let (before, audit_before) = rows();

    let mut daemon = env.start_daemon("daemon");
    daemon.wait_for_log("configurator daemon running", WAIT);
    let mut attacker = Injector::new(env.group);

    // A genuine Announce of an earlier boot, captured and replayed from another address: the
    // daemon verifies it (fresh counter) and answers the spoofed address.
    attacker.send(SPOOFED, &captured_announce(copy(&device), 0));
    attacker.wait_for_frame_to(SPOOFED, WAIT);
    // The revoked device's Announce from a spoofed address, then a flood of unknown keys.
    attacker.send(SPOOFED, &captured_announce(copy(&revoked), 5));
    for (i, stranger) in UdpFleet::identities(UNKNOWN_KEYS, 708, SuiteId::Ed25519)
        .into_iter()
        .enumerate()
    {
        let src = Addr([0x02, 0xee, 0, 0, (i >> 8) as u8, i as u8]);
        attacker.send(src, &captured_announce(stranger, 1));
    }
    let deadline = std::time::Instant::now() + WAIT;
    while daemon.status_field("refused") < (UNKNOWN_KEYS + 1) as u64 {
        assert!(
            std::time::Instant::now() < deadline,
            "the daemon did not refuse the flood:\n{}",
            daemon.log_text()
        );
    }

    let (after, audit_after) = rows();
    assert_eq!(
        before, after,
        "an unauthenticated announcement changed a device row"
    );
    assert_eq!(
        audit_before.len(),
        audit_after.len(),
        "audit records written for unauthenticated frames: {:?}",
        &audit_after[audit_before.len()..]
    );

    // The device itself authenticates: its real address is recorded.
    let fleet = UdpFleet::start(env.group, vec![copy(&device)], 709);
    fleet.wait_for("the device", Duration::from_secs(60), |n| n == 1);
    drop(fleet);
    assert_eq!(daemon.terminate(), Some(130));

    runtime.block_on(async {
        let registry = env.open_registry().await;
        let row = registry
            .get_device(&device_key)
            .await
            .expect("get")
            .expect("row");
        assert_eq!(row.last_mac, Some(UdpFleet::addr_of(&device)));
        let revoked_row = registry
            .get_device(&revoked_key)
            .await
            .expect("get")
            .expect("row");
        assert_eq!(revoked_row.last_mac, None, "a refused frame set last_mac");
        let audit = registry
            .audit_since(
                0,
                &AuditFilter {
                    key_hash: None,
                    limit: Some(100_000),
                },
            )
            .await
            .expect("audit");
        let spoofed = SPOOFED.to_string();
        assert!(
            audit
                .iter()
                .all(|e| !e.detail.to_string().contains(&spoofed)),
            "the spoofed address reached the audit log"
        );
        let authenticated: Vec<_> = audit
            .iter()
            .filter(|e| e.kind == AuditKind::Authenticated && e.key_hash == Some(device_key))
            .collect();
        assert_eq!(authenticated.len(), 1, "{audit:?}");
        assert_eq!(
            authenticated[0].detail["mac"],
            UdpFleet::addr_of(&device).to_string()
        );
        let refusals: Vec<_> = audit
            .iter()
            .filter(|e| e.kind == AuditKind::Refused)
            .collect();
        assert_eq!(
            refusals.len(),
            1,
            "one summary record, not one per frame: {refusals:?}"
        );
        let summary = &refusals[0];
        assert_eq!(summary.key_hash, None, "a refusal accuses no device row");
        assert_eq!(summary.detail["unauthenticated"], true);
        assert!(summary.detail["refused"].as_u64().expect("count") > UNKNOWN_KEYS as u64);
        assert!(summary.detail["keys"].as_array().expect("keys").len() <= 16);
        assert!(
            audit.iter().all(|e| e.kind != AuditKind::Announced),
            "announcements are not recorded"
        );
        registry.close().await;
    });
}
