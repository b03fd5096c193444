//! Helpers for the CLI tests: run the real `zerotouch` binary against a temporary registry.

#![allow(dead_code)] // Each test file uses a different subset.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A temporary registry and the environment to run `zerotouch` against it.
pub struct Env {
    /// Holds the temporary directory for the test's lifetime.
    pub dir: tempfile::TempDir,
    /// `RUST_LOG` for the commands run (the end-to-end tests want the daemon's info lines).
    pub log_level: &'static str,
}

impl Env {
    /// A fresh, empty directory; the registry is created on first use.
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("tempdir"),
            log_level: "warn",
        }
    }

    /// The registry file.
    pub fn registry(&self) -> PathBuf {
        self.dir.path().join("registry.db")
    }

    /// A path inside the temporary directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A `zerotouch` command with a clean environment pointing at this registry.
    pub fn cmd(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_zerotouch"));
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("XDG_CONFIG_HOME", self.dir.path().join("config"))
            .env("XDG_DATA_HOME", self.dir.path().join("data"))
            .env("ZEROTOUCH_REGISTRY", self.registry())
            .env("RUST_LOG", self.log_level);
        cmd
    }

    /// Runs `zerotouch ARGS`.
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().expect("run zerotouch")
    }

    /// Runs `zerotouch ARGS` and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "zerotouch {args:?} failed with {:?}\nstdout: {}\nstderr: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8 stdout")
    }

    /// Runs `zerotouch --json ARGS`, asserts success, parses stdout as one JSON value.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let text = self.ok(&all);
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("zerotouch {args:?}: stdout is not JSON ({e}): {text}"))
    }

    /// Runs `zerotouch ARGS`, asserts it fails with `code`; returns stderr.
    pub fn fails(&self, args: &[&str], code: i32) -> String {
        let out = self.run(args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(
            out.status.code(),
            Some(code),
            "zerotouch {args:?}: expected exit {code}\nstdout: {}\nstderr: {stderr}",
            String::from_utf8_lossy(&out.stdout)
        );
        stderr
    }

    /// Generates `n` device identities (suite ed25519) in `DIR/<name>`; returns the manifest.
    pub fn keygen(&self, name: &str, n: u32, prefix: &str) -> Vec<serde_json::Value> {
        let out = self.path(name);
        let count = n.to_string();
        let value = self.json(&[
            "device",
            "keygen",
            "--count",
            &count,
            "--out",
            out.to_str().expect("utf-8 path"),
            "--label-prefix",
            prefix,
        ]);
        value["devices"].as_array().expect("devices").clone()
    }

    /// Opens the registry with the store API (to play the daemon's part).
    pub async fn open(&self) -> zerotouch_store::Registry {
        zerotouch_store::Registry::open(
            self.registry().to_str().expect("utf-8 path"),
            zerotouch_store::SecretKeySource::Auto,
        )
        .await
        .expect("open registry")
    }
}

/// Path as `&str`.
pub fn s(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}
