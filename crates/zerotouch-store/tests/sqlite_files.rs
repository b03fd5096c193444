//! SQLite-file behaviour: modes, corrupt and foreign files, wrong or missing keys, secrets
//! never in plaintext, the append-only audit table, locks, and racing writers.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use common::{device, fixed_key};
use sqlx::Connection;
use zerotouch_proto::{Addr, KeyHash};
use zerotouch_store::{
    AuditFilter, AuditKind, CredentialSpec, DeviceFilter, NetworkSpec, PlannedCredential, Profile,
    Registry, SecretKeySource, SecurityKind, StoreError,
};

fn per_device_profile() -> Profile {
    Profile {
        name: "default".into(),
        networks: vec![NetworkSpec {
            ssid: "plant".into(),
            security: SecurityKind::Wpa2Psk,
            credential: CredentialSpec::PerDevice,
            bssid: None,
            channel: None,
        }],
        settings: Default::default(),
    }
}

fn mode_of(path: &std::path::Path) -> u32 {
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777
}

async fn raw_connection(path: &std::path::Path) -> sqlx::SqliteConnection {
    sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("raw connection")
}

#[tokio::test]
async fn files_are_0600_and_the_default_key_file_is_created_beside_the_database() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("sub").join("registry.db");
    let registry = Registry::open(path.to_str().expect("utf-8"), SecretKeySource::Auto)
        .await
        .expect("open");
    registry
        .set_profile(&per_device_profile())
        .await
        .expect("write something");
    let key_file = Registry::default_key_file(&path);
    assert_eq!(mode_of(&path), 0o600);
    assert_eq!(mode_of(&key_file), 0o600);
    let wal = dir.path().join("sub").join("registry.db-wal");
    assert!(wal.exists(), "the registry runs in WAL mode");
    assert_eq!(mode_of(&wal), 0o600);
    assert_eq!(mode_of(&dir.path().join("sub")), 0o700);
    registry.close().await;

    // A missing key file of an existing registry is an error, never silently a new key.
    std::fs::rename(&key_file, dir.path().join("moved.key")).expect("move key");
    match Registry::open(path.to_str().expect("utf-8"), SecretKeySource::Auto).await {
        Err(StoreError::SecretKey(msg)) => assert!(msg.contains("missing"), "{msg}"),
        other => panic!("expected a missing-key error, got {other:?}"),
    }
    assert!(!key_file.exists());
    let moved = SecretKeySource::File(dir.path().join("moved.key"));
    Registry::open(path.to_str().expect("utf-8"), moved)
        .await
        .expect("open with the moved key file");

    // A file with loose permissions is tightened.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    Registry::open(
        path.to_str().expect("utf-8"),
        SecretKeySource::File(dir.path().join("moved.key")),
    )
    .await
    .expect("open");
    assert_eq!(mode_of(&path), 0o600);
}

#[tokio::test]
async fn a_file_of_random_bytes_is_reported_corrupt() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("registry.db");
    let mut noise = vec![0u8; 16384];
    getrandom::fill(&mut noise).expect("rng");
    std::fs::write(&path, &noise).expect("write noise");
    match Registry::open(path.to_str().expect("utf-8"), fixed_key(1)).await {
        Err(e @ StoreError::Corrupt { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("is not a zerotouch registry or is corrupt: restore from backup or move it aside"), "{msg}");
        }
        other => panic!("expected a corrupt-file error, got {other:?}"),
    }
    assert_eq!(
        std::fs::read(&path).expect("read"),
        noise,
        "the damaged file is left untouched"
    );
}

#[tokio::test]
async fn another_programs_sqlite_database_is_not_taken_over() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("other.db");
    let mut conn =
        sqlx::SqliteConnection::connect(&format!("sqlite://{}?mode=rwc", path.display()))
            .await
            .expect("create");
    sqlx::raw_sql("CREATE TABLE photos (id INTEGER)")
        .execute(&mut conn)
        .await
        .expect("create table");
    conn.close().await.expect("close");
    assert!(matches!(
        Registry::open(path.to_str().expect("utf-8"), fixed_key(1)).await,
        Err(StoreError::Corrupt { .. })
    ));
}

#[tokio::test]
async fn a_newer_schema_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("registry.db");
    Registry::open(path.to_str().expect("utf-8"), fixed_key(1))
        .await
        .expect("create")
        .close()
        .await;
    let mut conn = raw_connection(&path).await;
    sqlx::raw_sql(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES (9999, 'from the future', TRUE, X'00', 0)",
    )
    .execute(&mut conn)
    .await
    .expect("fake a newer migration");
    conn.close().await.expect("close");
    match Registry::open(path.to_str().expect("utf-8"), fixed_key(1)).await {
        Err(e @ StoreError::SchemaTooNew { found: 9999, .. }) => {
            assert!(e.to_string().contains("upgrade zerotouch"), "{e}")
        }
        other => panic!("expected schema-too-new, got {other:?}"),
    }
}

#[tokio::test]
async fn wrong_and_malformed_secret_keys_are_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("registry.db");
    let key_file = dir.path().join("k");
    std::fs::write(&key_file, format!("{}\n", "11".repeat(32))).expect("write key");
    Registry::open(
        path.to_str().expect("utf-8"),
        SecretKeySource::File(key_file.clone()),
    )
    .await
    .expect("create");
    std::fs::write(&key_file, format!("{}\n", "22".repeat(32))).expect("replace key");
    match Registry::open(
        path.to_str().expect("utf-8"),
        SecretKeySource::File(key_file.clone()),
    )
    .await
    {
        Err(e @ StoreError::WrongSecretKey { .. }) => {
            let msg = e.to_string();
            assert!(
                msg.starts_with("the secret key does not match this registry: "),
                "{msg}"
            );
            assert!(msg.contains(&key_file.display().to_string()), "{msg}");
        }
        other => panic!("expected a wrong-key error, got {other:?}"),
    }
    std::fs::write(&key_file, "not a key").expect("garble key");
    assert!(matches!(
        Registry::open(
            path.to_str().expect("utf-8"),
            SecretKeySource::File(key_file)
        )
        .await,
        Err(StoreError::SecretKey(_))
    ));
}

#[tokio::test]
async fn secrets_never_reach_the_database_file_in_plaintext() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("registry.db");
    let registry = Registry::open(path.to_str().expect("utf-8"), fixed_key(3))
        .await
        .expect("open");
    let mut profile = per_device_profile();
    profile.networks.push(NetworkSpec {
        ssid: "office".into(),
        security: SecurityKind::Wpa3Sae,
        credential: CredentialSpec::Passphrase("shared-office-passphrase-7".into()),
        bssid: None,
        channel: None,
    });
    registry.set_profile(&profile).await.expect("profile");
    let d = device(1);
    registry.allow(d.clone()).await.expect("allow");
    let plan = registry.device_config(&d.key_hash).await.expect("config");
    let PlannedCredential::Passphrase(psk) = &plan.networks[0].credential else {
        panic!("no per-device passphrase");
    };
    let psk = psk.to_string();
    registry.close().await;
    let mut bytes = std::fs::read(&path).expect("read db");
    if let Ok(wal) = std::fs::read(dir.path().join("registry.db-wal")) {
        bytes.extend(wal);
    }
    let contains = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    assert!(
        contains(b"_sqlx_migrations"),
        "the scan reads the real database bytes"
    );
    assert!(
        !contains(psk.as_bytes()),
        "the per-device PSK is stored in plaintext"
    );
    assert!(
        !contains(b"shared-office-passphrase-7"),
        "the profile passphrase is stored in plaintext"
    );
}

#[tokio::test]
async fn the_audit_table_refuses_updates_and_deletes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("registry.db");
    let registry = Registry::open(path.to_str().expect("utf-8"), fixed_key(3))
        .await
        .expect("open");
    registry.allow(device(1)).await.expect("allow");
    let mut conn = raw_connection(&path).await;
    let update = sqlx::raw_sql("UPDATE audit SET kind = 'joined'")
        .execute(&mut conn)
        .await;
    assert!(update.is_err_and(|e| e.to_string().contains("append-only")));
    assert!(
        sqlx::raw_sql("DELETE FROM audit")
            .execute(&mut conn)
            .await
            .is_err()
    );
    assert_eq!(
        registry
            .audit_since(0, &AuditFilter::default())
            .await
            .expect("audit")
            .len(),
        1
    );
}

#[tokio::test]
async fn a_lock_held_past_the_busy_timeout_is_a_clear_busy_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("registry.db");
    let registry = Registry::open(path.to_str().expect("utf-8"), fixed_key(3))
        .await
        .expect("open");
    let mut locker = raw_connection(&path).await;
    sqlx::raw_sql("BEGIN IMMEDIATE")
        .execute(&mut locker)
        .await
        .expect("take the write lock");
    let err = registry
        .allow(device(1))
        .await
        .expect_err("the lock is held");
    assert!(err.is_busy(), "{err:?}");
    assert!(err.to_string().contains("busy"), "{err}");
    // Readers are not blocked by a writer in WAL mode.
    assert!(
        registry
            .list_devices(&DeviceFilter::default())
            .await
            .expect("read")
            .is_empty()
    );
    sqlx::raw_sql("ROLLBACK")
        .execute(&mut locker)
        .await
        .expect("release");
    registry
        .allow(device(1))
        .await
        .expect("allowed once the lock is free");
}

/// Two handles (as two processes would) race 200 transitions plus 100 joins on one file.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_writers_lose_no_audit_record_and_provision_exactly_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("registry.db");
    let url = path.to_str().expect("utf-8").to_string();
    let first = Registry::open(&url, fixed_key(3)).await.expect("open 1");
    let second = Registry::open(&url, fixed_key(3)).await.expect("open 2");
    const DEVICES: u32 = 50;
    // Each retry already waited the 5 s busy timeout: 6 in a row is half a minute stuck.
    const MAX_BUSY_RETRIES: u32 = 6;
    let keys: Vec<KeyHash> = (0..DEVICES).map(|i| device(i).key_hash).collect();
    first
        .allow_many((0..DEVICES).map(device).collect())
        .await
        .expect("import");
    let before = first.latest_audit_id().await.expect("latest");

    let keys = Arc::new(keys);
    let mut tasks = Vec::new();
    for (n, registry) in [first.clone(), second.clone()].into_iter().enumerate() {
        let keys = Arc::clone(&keys);
        tasks.push(tokio::spawn(async move {
            let mut written = 0u64;
            let mut busy = 0u64;
            let mut newly = 0u64;
            for key in keys.iter() {
                let mac = Addr([2, 0, 0, 0, u8::try_from(n).unwrap_or(0), 1]);
                // Busy is the one error allowed to escape; the caller retries, as the daemon
                // does, but a bounded number of times: a write that stays busy is a failure,
                // not a hang.
                for step in 0..3 {
                    for attempt in 0.. {
                        assert!(
                            attempt < MAX_BUSY_RETRIES,
                            "step {step} for {key} still busy after {MAX_BUSY_RETRIES} retries"
                        );
                        let result = match step {
                            0 => registry.record_announced(key, mac).await.map(|()| false),
                            1 => registry.record_authenticated(key).await.map(|()| false),
                            _ => registry.record_joined(key).await,
                        };
                        match result {
                            Ok(first_time) => {
                                written += 1;
                                newly += u64::from(first_time);
                                break;
                            }
                            Err(e) if e.is_busy() => busy += 1,
                            Err(e) => panic!("an error other than busy escaped: {e}"),
                        }
                    }
                }
            }
            (written, busy, newly)
        }));
    }
    let mut written = 0;
    let mut newly = 0;
    for task in tasks {
        let (w, b, n) = task.await.expect("task");
        written += w;
        newly += n;
        // Reported, not asserted: how often the 5 s busy timeout was not enough.
        eprintln!("busy retries: {b}");
    }
    let records = first
        .audit_since(
            before,
            &AuditFilter {
                key_hash: None,
                limit: Some(10_000),
            },
        )
        .await
        .expect("audit");
    assert_eq!(
        records.len() as u64,
        written,
        "every committed transition has exactly one audit record"
    );
    assert_eq!(
        newly,
        u64::from(DEVICES),
        "each device is newly provisioned exactly once"
    );
    let joined = records
        .iter()
        .filter(|r| r.kind == AuditKind::Joined)
        .count();
    assert_eq!(joined, DEVICES as usize);
    for device in first
        .list_devices(&DeviceFilter::default())
        .await
        .expect("list")
    {
        assert_eq!(device.provision_count, 1);
    }
}
