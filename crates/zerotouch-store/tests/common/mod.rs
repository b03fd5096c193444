//! Shared test helpers: fake device keys, fleet keys, and a throw-away PostgreSQL server.

#![allow(dead_code)]

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;
use zerotouch_proto::{KeyHash, SuiteId};
use zerotouch_store::{FleetKeys, NewDevice, SecretKeySource};

/// A device with a deterministic (not necessarily on-curve: the store does not check points)
/// Ed25519-sized key; its key hash is SHA-256 of the key bytes.
pub fn device(seed: u32) -> NewDevice {
    let public_key = Sha256::digest(seed.to_be_bytes()).to_vec();
    let key_hash = KeyHash(Sha256::digest(&public_key).into());
    NewDevice {
        key_hash,
        suite: SuiteId::Ed25519,
        public_key,
        label: None,
        profile: None,
        expires_at_ms: None,
    }
}

/// Like [`device`], with a chosen key hash.
pub fn device_with_hash(seed: u32, key_hash: [u8; 32]) -> NewDevice {
    NewDevice {
        key_hash: KeyHash(key_hash),
        ..device(seed)
    }
}

pub fn fleet_keys(suite: SuiteId, seed: u8) -> FleetKeys {
    let len = suite.public_key_len();
    FleetKeys {
        suite,
        owner_public: vec![seed; len],
        owner_secret: Zeroizing::new([seed.wrapping_add(1); 32]),
        configurator_public: vec![seed.wrapping_add(2); len],
        configurator_secret: Zeroizing::new([seed.wrapping_add(3); 32]),
        certificate: vec![seed.wrapping_add(4); 90],
    }
}

pub fn fixed_key(byte: u8) -> SecretKeySource {
    SecretKeySource::Key(Zeroizing::new([byte; 32]))
}

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// A PostgreSQL server in a temporary directory, stopped on drop (even when a test fails).
pub struct PgServer {
    dir: PathBuf,
    _holder: tempfile::TempDir,
    pub port: u16,
    external: Option<String>,
    next_db: AtomicUsize,
}

/// Why PostgreSQL tests cannot run here, if they cannot.
fn pg_unavailable() -> Option<String> {
    if !Path::new(PG_BIN).join("initdb").exists() {
        return Some(format!(
            "PostgreSQL 15 binaries are not in {PG_BIN} (apt-get install postgresql-15)"
        ));
    }
    let uid = Command::new("id")
        .arg("-u")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    if uid.as_deref() != Some("0") {
        return Some("the test must run as root to start PostgreSQL as the postgres user".into());
    }
    if Command::new("id")
        .arg("postgres")
        .output()
        .map(|o| !o.status.success())
        .unwrap_or(true)
    {
        return Some("there is no postgres user".into());
    }
    None
}

impl PgServer {
    /// Starts a server, or uses `ZEROTOUCH_TEST_PG_URL`. `None` (after a notice) when
    /// PostgreSQL cannot run here and `CI` is not `true`; panics under CI.
    pub fn start() -> Option<PgServer> {
        let holder = tempfile::tempdir().expect("temp dir");
        if let Ok(url) = std::env::var("ZEROTOUCH_TEST_PG_URL") {
            return Some(PgServer {
                dir: holder.path().to_path_buf(),
                _holder: holder,
                port: 0,
                external: Some(url),
                next_db: AtomicUsize::new(0),
            });
        }
        if let Some(why) = pg_unavailable() {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("PostgreSQL tests cannot run under CI: {why}");
            }
            eprintln!("NOTICE: skipping the PostgreSQL half of this test: {why}");
            return None;
        }
        let dir = holder.path().join("pg");
        std::fs::create_dir(&dir).expect("pg dir");
        std::fs::set_permissions(holder.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        run(Command::new("chown").arg("postgres:postgres").arg(&dir));
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        run(Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(Path::new(PG_BIN).join("initdb"))
            .args([
                "-D",
                dir.to_str().expect("utf-8 dir"),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ]));
        let port = TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        let server = PgServer {
            dir: dir.clone(),
            _holder: holder,
            port,
            external: None,
            next_db: AtomicUsize::new(0),
        };
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {port} -k {} -c fsync=off -c synchronous_commit=off",
            dir.display()
        );
        run(Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(Path::new(PG_BIN).join("pg_ctl"))
            .args([
                "-D",
                dir.to_str().expect("utf-8 dir"),
                "-o",
                &options,
                "-l",
                dir.join("server.log").to_str().expect("utf-8 dir"),
                "-w",
                "start",
            ]));
        Some(server)
    }

    fn admin_url(&self) -> String {
        match &self.external {
            Some(url) => url.clone(),
            None => format!("postgres://postgres@127.0.0.1:{}/postgres", self.port),
        }
    }

    /// A URL of a new, empty database on this server.
    pub async fn fresh_database(&self) -> String {
        use sqlx::Connection;
        let n = self.next_db.fetch_add(1, Ordering::Relaxed);
        let name = format!("zt_test_{}_{n}", std::process::id());
        let mut conn = sqlx::PgConnection::connect(&self.admin_url())
            .await
            .expect("connect to PostgreSQL");
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("create database");
        conn.close().await.ok();
        let admin = self.admin_url();
        let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
        format!("{base}/{name}")
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        if self.external.is_some() {
            return;
        }
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(Path::new(PG_BIN).join("pg_ctl"))
            .args([
                "-D",
                &self.dir.to_string_lossy(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ])
            .output();
    }
}

fn run(cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
