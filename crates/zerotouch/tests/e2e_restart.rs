//! The daemon is killed with SIGKILL while provisioning 500 devices and restarted: every
//! device ends provisioned exactly once (provision count 1, one `joined` audit record), the
//! audit log has no gap, and every device committed exactly once. A fifth of the devices is
//! switched on only after the kill, so the kill is mid-way by construction however fast the
//! machine is.
//!
//! The devices are real enrollee state machines in this process, on the real UDP link; the
//! daemon is the real binary on the real SQLite registry.

mod e2e_support;

use std::collections::HashMap;
use std::time::Duration;

use e2e_support::{Env, UdpFleet, dpp_uri, write_uri_file};
use zerotouch_proto::SuiteId;
use zerotouch_store::{AuditFilter, AuditKind, DeviceFilter, DeviceState};

const DEVICES: usize = 500;
/// Devices switched on only after the kill.
const LATE: usize = 100;

#[test]
fn sigkill_mid_provisioning_loses_nothing_and_provisions_each_device_once() {
    let env = Env::new();
    env.init_fleet();
    let identities = UdpFleet::identities(DEVICES, 500, SuiteId::Ed25519);
    let uris: Vec<String> = identities
        .iter()
        .map(|id| dpp_uri(id, UdpFleet::addr_of(id)))
        .collect();
    write_uri_file(&env.path("devices.txt"), &uris);
    env.ok(&[
        "allow",
        "import",
        &env.path("devices.txt").to_string_lossy(),
    ]);

    let mut daemon = env.start_daemon("daemon-1");
    let mut identities = identities;
    let late = identities.split_off(DEVICES - LATE);
    let fleet = UdpFleet::start(env.group, identities, 500);
    fleet.wait_for("a fifth of the fleet", Duration::from_secs(120), |n| {
        n >= DEVICES / 5
    });
    daemon.kill9();
    eprintln!("killed with {} devices committed", fleet.committed());

    let mut restarted = env.start_daemon("daemon-2");
    let late_fleet = UdpFleet::start(env.group, late, 501);
    fleet.wait_for(
        "the early devices after the restart",
        Duration::from_secs(150),
        |n| n == DEVICES - LATE,
    );
    late_fleet.wait_for(
        "the devices switched on after the kill",
        Duration::from_secs(60),
        |n| n == LATE,
    );
    assert_eq!(
        restarted.terminate(),
        Some(130),
        "graceful stop: {}",
        restarted.log_text()
    );
    let mut commits = fleet.commits();
    commits.extend(late_fleet.commits());
    drop(fleet);
    drop(late_fleet);
    assert!(
        commits.iter().all(|&c| c == 1),
        "every device commits exactly once: {commits:?}"
    );

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let registry = env.open_registry().await;
        let devices = registry
            .list_devices(&DeviceFilter::default())
            .await
            .expect("list devices");
        assert_eq!(devices.len(), DEVICES);
        for device in &devices {
            assert_eq!(
                device.state,
                DeviceState::Provisioned,
                "{}",
                device.key_hash
            );
            assert_eq!(
                device.provision_count, 1,
                "{} provisioned once",
                device.key_hash
            );
        }

        // The whole audit log, in pages: ids gap-free from 1, one `joined` per device, and
        // every device's authentication and delivery recorded.
        let mut events = Vec::new();
        loop {
            let after = events
                .last()
                .map_or(0, |e: &zerotouch_store::AuditEvent| e.id);
            let page = registry
                .audit_since(
                    after,
                    &AuditFilter {
                        key_hash: None,
                        limit: Some(1000),
                    },
                )
                .await
                .expect("read audit");
            if page.is_empty() {
                break;
            }
            events.extend(page);
        }
        for (position, event) in events.iter().enumerate() {
            assert_eq!(event.id, position as i64 + 1, "audit ids are gap-free");
        }
        let mut per_device: HashMap<_, HashMap<String, usize>> = HashMap::new();
        for event in &events {
            if let Some(key) = event.key_hash {
                *per_device
                    .entry(key)
                    .or_default()
                    .entry(event.kind.name().to_owned())
                    .or_default() += 1;
            }
        }
        for device in &devices {
            let kinds = per_device
                .get(&device.key_hash)
                .expect("audit records of every device");
            assert_eq!(
                kinds.get(AuditKind::Joined.name()),
                Some(&1),
                "{}: {kinds:?}",
                device.key_hash
            );
            assert!(
                kinds
                    .get(AuditKind::Authenticated.name())
                    .is_some_and(|&n| n >= 1)
            );
            assert!(
                kinds
                    .get(AuditKind::ConfigDelivered.name())
                    .is_some_and(|&n| n >= 1)
            );
            assert_eq!(kinds.get(AuditKind::JoinFailed.name()), None);
        }
        registry.close().await;
    });
}
