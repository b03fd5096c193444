//! `zerotouch demo` runs to completion with a small fleet, and its `--json` summary and the
//! registry it leaves behind agree.

use std::process::Command;

#[test]
fn demo_provisions_a_small_fleet_and_reports_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let demo_dir = dir.path().join("demo");
    let out = Command::new(env!("CARGO_BIN_EXE_zerotouch"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir.path())
        .env("XDG_CONFIG_HOME", dir.path().join("config"))
        .env("XDG_DATA_HOME", dir.path().join("data"))
        .args([
            "--json",
            "demo",
            "--devices",
            "20",
            "--loss",
            "0.2",
            "--seed",
            "3",
        ])
        .args(["--dir", &demo_dir.to_string_lossy()])
        .output()
        .expect("run the demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_str(&stdout).expect("JSON summary");
    assert_eq!(summary["devices"], 20);
    assert_eq!(summary["allowlisted"], 18);
    assert_eq!(summary["provisioned"], 18);
    assert_eq!(summary["registry_provisioned"], 18);
    assert_eq!(summary["refused"], 2);
    assert_eq!(summary["wrongly_provisioned"], 0);
    assert!(
        summary["frames_on_air"]
            .as_u64()
            .is_some_and(|f| f >= 18 * 6),
        "{summary}"
    );
    assert!(
        summary["frames_lost"].as_u64().is_some_and(|f| f > 0),
        "20 % loss loses frames: {summary}"
    );
    let median = summary["median_ms"].as_u64().expect("median");
    let p99 = summary["p99_ms"].as_u64().expect("p99");
    assert!(median <= p99);
    assert!(
        summary["audit_records"]
            .as_i64()
            .is_some_and(|n| n >= 18 * 4)
    );
    let registry = summary["registry"].as_str().expect("registry path");
    assert!(std::path::Path::new(registry).starts_with(&demo_dir));

    // The registry is a real one: the CLI reads it.
    let log = Command::new(env!("CARGO_BIN_EXE_zerotouch"))
        .env_clear()
        .env("HOME", dir.path())
        .env("XDG_CONFIG_HOME", dir.path().join("config"))
        .args(["--registry", registry, "log"])
        .output()
        .expect("zerotouch log");
    assert!(
        log.status.success(),
        "{}",
        String::from_utf8_lossy(&log.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&log.stdout)
            .matches(" joined ")
            .count(),
        18
    );

    // A second run refuses to reuse the registry.
    let again = Command::new(env!("CARGO_BIN_EXE_zerotouch"))
        .env_clear()
        .env("HOME", dir.path())
        .args([
            "demo",
            "--devices",
            "2",
            "--dir",
            &demo_dir.to_string_lossy(),
        ])
        .output()
        .expect("run the demo again");
    assert_eq!(
        again.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
}
