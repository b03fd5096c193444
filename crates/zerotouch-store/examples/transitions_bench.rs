//! Measures registry throughput on SQLite: the daemon's full per-device sequence
//! (announced → authenticated → configuration plan with per-device PSK → delivered →
//! joined), each step one transaction with its audit record.
//!
//! `cargo run --release -p zerotouch-store --example transitions_bench -- [DEVICES] [TASKS] [BATCH]`
//! (defaults 1000 devices, 1 task, no batching; TASKS > 1 runs that many concurrent sequences
//! on one handle; BATCH > 1 provisions BATCH devices at a time with two
//! `Registry::record_batch` calls: announced + authenticated, then delivered + joined).

use std::sync::Arc;
use std::time::Instant;

use zeroize::Zeroizing;
use zerotouch_proto::{Addr, KeyHash, SuiteId};
use zerotouch_store::{
    CredentialSpec, NetworkSpec, NewDevice, Profile, Registry, SecretKeySource, SecurityKind,
    StoreError, Transition, TransitionOutcome,
};

fn fake_device(i: u32) -> NewDevice {
    let mut key_hash = [0u8; 32];
    key_hash[..4].copy_from_slice(&i.to_be_bytes());
    key_hash[4] = 0x5a;
    let mut public_key = vec![0u8; 32];
    public_key[..4].copy_from_slice(&i.to_be_bytes());
    NewDevice {
        key_hash: KeyHash(key_hash),
        suite: SuiteId::Ed25519,
        public_key,
        label: Some(format!("bench-{i}")),
        profile: None,
        expires_at_ms: None,
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let devices: u32 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(1000);
    let tasks: u32 = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(1)
        .max(1);
    let batch: usize = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(1)
        .max(1);
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("bench.db");
    let registry = Registry::open(
        path.to_str().ok_or("non-UTF-8 temp dir")?,
        SecretKeySource::Key(Zeroizing::new([7; 32])),
    )
    .await?;
    registry
        .set_profile(&Profile {
            name: "default".into(),
            networks: vec![NetworkSpec {
                ssid: "bench".into(),
                security: SecurityKind::Wpa2Psk,
                credential: CredentialSpec::PerDevice,
                bssid: None,
                channel: None,
            }],
            settings: Default::default(),
        })
        .await?;

    let import_start = Instant::now();
    registry
        .allow_many((0..devices).map(fake_device).collect())
        .await?;
    let import = import_start.elapsed();

    let keys: Arc<Vec<KeyHash>> = Arc::new((0..devices).map(|i| fake_device(i).key_hash).collect());
    let start = Instant::now();
    let mut handles = Vec::new();
    for t in 0..tasks {
        let registry = registry.clone();
        let keys = Arc::clone(&keys);
        handles.push(tokio::spawn(async move {
            let mine: Vec<KeyHash> = keys
                .iter()
                .skip(t as usize)
                .step_by(tasks as usize)
                .copied()
                .collect();
            if batch == 1 {
                for key in &mine {
                    provision_one(&registry, key).await?;
                }
            } else {
                for chunk in mine.chunks(batch) {
                    provision_batch(&registry, chunk).await?;
                }
            }
            Ok::<(), StoreError>(())
        }));
    }
    for handle in handles {
        handle.await??;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let audit = registry.latest_audit_id().await?;
    println!("devices: {devices}, concurrent sequences: {tasks}, provisionings per batch: {batch}");
    println!(
        "import (allow_many, one transaction): {:.1} ms",
        import.as_secs_f64() * 1e3
    );
    println!(
        "full sequences: {elapsed:.2} s => {:.0} provisionings/s, {:.0} transitions/s (4 per device, each with its audit record), {:.2} ms per provisioning",
        f64::from(devices) / elapsed,
        f64::from(devices) * 4.0 / elapsed,
        elapsed * 1e3 / f64::from(devices)
    );
    println!("audit records: {audit}");
    registry.close().await;
    Ok(())
}

/// One provisioning, one transaction per step.
async fn provision_one(registry: &Registry, key: &KeyHash) -> Result<(), StoreError> {
    registry
        .record_announced(key, Addr([2, 0, 0, 0, 0, 1]))
        .await?;
    registry.record_authenticated(key).await?;
    let plan = registry.device_config(key).await?;
    std::hint::black_box(&plan);
    registry.record_config_delivered(key).await?;
    registry.record_joined(key).await?;
    Ok(())
}

/// Provisions `keys` together, as a daemon collecting the transitions of its sessions would:
/// one relaxed batch before the configurations are planned, one durable batch after.
async fn provision_batch(registry: &Registry, keys: &[KeyHash]) -> Result<(), StoreError> {
    let before: Vec<Transition> = keys
        .iter()
        .flat_map(|&key_hash| {
            [
                Transition::Announced {
                    key_hash,
                    mac: Addr([2, 0, 0, 0, 0, 1]),
                },
                Transition::Authenticated {
                    key_hash,
                    mac: None,
                },
            ]
        })
        .collect();
    expect_all(
        registry.record_batch(&before).await?,
        TransitionOutcome::Recorded,
    )?;
    for key in keys {
        let plan = registry.device_config(key).await?;
        std::hint::black_box(&plan);
    }
    let after: Vec<Transition> = keys
        .iter()
        .flat_map(|&key_hash| {
            [
                Transition::ConfigDelivered {
                    key_hash,
                    profile: None,
                },
                Transition::Joined { key_hash },
            ]
        })
        .collect();
    let outcomes = registry.record_batch(&after).await?;
    for pair in outcomes.chunks(2) {
        let expected = [
            TransitionOutcome::Recorded,
            TransitionOutcome::Joined {
                newly_provisioned: true,
            },
        ];
        if pair != expected {
            return Err(StoreError::Database(format!(
                "unexpected outcomes {pair:?}"
            )));
        }
    }
    Ok(())
}

fn expect_all(
    outcomes: Vec<TransitionOutcome>,
    expected: TransitionOutcome,
) -> Result<(), StoreError> {
    match outcomes.iter().find(|o| **o != expected) {
        Some(other) => Err(StoreError::Database(format!(
            "unexpected outcome {other:?}"
        ))),
        None => Ok(()),
    }
}
