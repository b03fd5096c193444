//! How many provisionings per second the configurator daemon sustains with the SQLite
//! registry (audit writes included), for BENCHMARKS.md:
//!
//! 1. the registry path alone: the registry calls the daemon's worker makes for one
//!    provisioning (announced, authenticated, configuration plan with the per-device PSK,
//!    delivered, joined), one transaction per record, and batched 32 devices per
//!    transaction as the worker batches what is queued under load;
//! 2. the whole daemon: the real binary and N real enrollees on the loopback UDP link (no
//!    airtime cost), from the first announcement until every device has committed.
//!
//! Run: `cargo bench -p zerotouch --bench daemon_throughput` (optionally `-- N`).

#[path = "../tests/e2e_support/mod.rs"]
mod e2e_support;

use std::time::{Duration, Instant};

use e2e_support::{Env, UdpFleet, dpp_uri, write_uri_file};
use zerotouch_proto::SuiteId;
use zerotouch_store::{
    CredentialSpec, NetworkSpec, NewDevice, Profile, Registry, SecretKeySource, SecurityKind,
    Transition,
};

fn registry_path_per_provisioning(devices: usize, batch: usize) -> Duration {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("registry.db");
        let key = Registry::default_key_file(&path);
        let registry = Registry::open(&path.to_string_lossy(), SecretKeySource::File(key))
            .await
            .expect("open");
        registry
            .set_profile(&Profile {
                name: zerotouch_store::DEFAULT_PROFILE.to_owned(),
                networks: vec![NetworkSpec {
                    ssid: "bench".to_owned(),
                    security: SecurityKind::Wpa2Psk,
                    credential: CredentialSpec::PerDevice,
                    bssid: None,
                    channel: Some(6),
                }],
                settings: Default::default(),
            })
            .await
            .expect("profile");
        let identities = UdpFleet::identities(devices, 9, SuiteId::Ed25519);
        let keys: Vec<_> = identities.iter().map(|id| id.public_key()).collect();
        registry
            .allow_many(keys.iter().map(NewDevice::from_public_key).collect())
            .await
            .expect("allow");
        let mac = zerotouch_proto::Addr([2, 0, 0, 0, 0, 1]);
        let start = Instant::now();
        if batch == 1 {
            // One transaction per record, as the single calls make them.
            for key in &keys {
                let hash = key.key_hash();
                registry
                    .record_announced(&hash, mac)
                    .await
                    .expect("announced");
                registry
                    .record_authenticated(&hash)
                    .await
                    .expect("authenticated");
                let plan = registry.device_config(&hash).await.expect("plan");
                assert_eq!(plan.networks.len(), 1);
                registry
                    .record_config_delivered(&hash)
                    .await
                    .expect("delivered");
                registry.record_joined(&hash).await.expect("joined");
            }
        } else {
            // As the daemon's worker does under load: the records of `batch` devices at the
            // same step share one transaction.
            for chunk in keys.chunks(batch) {
                let hashes: Vec<_> = chunk.iter().map(|k| k.key_hash()).collect();
                let first: Vec<Transition> = hashes
                    .iter()
                    .flat_map(|&h| {
                        [
                            Transition::Announced { key_hash: h, mac },
                            Transition::Authenticated {
                                key_hash: h,
                                mac: None,
                            },
                        ]
                    })
                    .collect();
                registry
                    .record_batch(&first)
                    .await
                    .expect("announced + authenticated");
                for hash in &hashes {
                    let plan = registry.device_config(hash).await.expect("plan");
                    assert_eq!(plan.networks.len(), 1);
                }
                let delivered: Vec<_> = hashes
                    .iter()
                    .map(|&h| Transition::ConfigDelivered {
                        key_hash: h,
                        profile: None,
                    })
                    .collect();
                registry.record_batch(&delivered).await.expect("delivered");
                let joined: Vec<_> = hashes
                    .iter()
                    .map(|&h| Transition::Joined { key_hash: h })
                    .collect();
                registry.record_batch(&joined).await.expect("joined");
            }
        }
        let elapsed = start.elapsed();
        registry.close().await;
        elapsed / u32::try_from(devices).expect("device count")
    })
}

fn daemon_end_to_end(devices: usize) -> (Duration, Option<f64>) {
    let env = Env::new();
    env.init_fleet();
    let identities = UdpFleet::identities(devices, 11, SuiteId::Ed25519);
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
    let mut daemon = env.start_daemon("daemon");
    std::thread::sleep(Duration::from_millis(500));
    let start = Instant::now();
    let fleet = UdpFleet::start(env.group, identities, 11);
    fleet.wait_for("the whole fleet", Duration::from_secs(600), |n| {
        n == devices
    });
    let elapsed = start.elapsed();
    let cpu = daemon.cpu_seconds();
    drop(fleet);
    assert_eq!(daemon.terminate(), Some(0));
    (elapsed, cpu)
}

fn main() {
    let devices: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(500);
    for batch in [1, 32] {
        let per = registry_path_per_provisioning(devices, batch);
        println!(
            "registry path (SQLite, audit included), {devices} devices, {batch} per transaction: \
             {:.3} ms per provisioning = {:.0} provisionings/s",
            per.as_secs_f64() * 1e3,
            1.0 / per.as_secs_f64()
        );
    }
    let (total, cpu) = daemon_end_to_end(devices);
    println!(
        "daemon end to end (UDP loopback, real enrollees), {devices} devices: {:.2} s = {:.0} provisionings/s",
        total.as_secs_f64(),
        devices as f64 / total.as_secs_f64()
    );
    if let Some(cpu) = cpu {
        println!(
            "daemon CPU: {cpu:.2} s for {devices} provisionings = {:.2} ms per provisioning (= {:.0} provisionings/s per core)",
            cpu * 1e3 / devices as f64,
            devices as f64 / cpu
        );
    }
}
