//! `fleet init`, `device keygen`, settings precedence, completions and help.

mod cli_support;

use std::os::unix::fs::PermissionsExt;

use cli_support::{Env, s};

#[test]
fn fleet_init_creates_keys_for_both_suites_once() {
    let env = Env::new();
    let fleet = env.json(&["fleet", "init", "--cert-validity-days", "30"]);
    let suites = fleet["suites"].as_array().expect("suites");
    let names: Vec<&str> = suites.iter().filter_map(|s| s["suite"].as_str()).collect();
    assert_eq!(names, ["ed25519", "p256"]);
    assert_eq!(
        suites[0]["owner_public_hex"].as_str().map(str::len),
        Some(64)
    );
    assert_eq!(
        suites[1]["owner_public_hex"].as_str().map(str::len),
        Some(66)
    );
    assert_eq!(fleet["registry"].as_str(), Some(s(&env.registry())));
    let key_file = env.path("registry.db.key");
    assert_eq!(fleet["secret_key"].as_str(), Some(s(&key_file)));
    for file in [env.registry(), key_file] {
        let mode = std::fs::metadata(&file).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{}", file.display());
    }
    // Certificate validity follows the flag (30 days from now, within a day).
    let not_after = suites[0]["certificate_not_after"]
        .as_str()
        .expect("not_after");
    let expected = std::time::SystemTime::now() + std::time::Duration::from_secs(30 * 86_400);
    let got = humantime_parse(not_after);
    let diff = got
        .duration_since(expected)
        .unwrap_or_else(|e| e.duration());
    assert!(diff.as_secs() < 86_400, "not_after {not_after}");

    // A second init never replaces the pinned owner key.
    let err = env.fails(&["fleet", "init"], 4);
    assert!(err.contains("already holds fleet"), "{err}");
    let shown = env.json(&["fleet", "show"]);
    assert_eq!(shown["suites"], fleet["suites"]);
}

fn humantime_parse(text: &str) -> std::time::SystemTime {
    // `YYYY-MM-DDTHH:MM:SSZ` to seconds since the epoch, by days-from-civil.
    let num = |range: std::ops::Range<usize>| text[range].parse::<i64>().expect("digits");
    let (y, m, d) = (num(0..4), num(5..7), num(8..10));
    let (h, mi, sec) = (num(11..13), num(14..16), num(17..19));
    let y_adj = if m <= 2 { y - 1 } else { y };
    let era = y_adj.div_euclid(400);
    let yoe = y_adj - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec;
    std::time::UNIX_EPOCH + std::time::Duration::from_secs(u64::try_from(secs).expect("after 1970"))
}

#[test]
fn fleet_show_before_init_is_not_found() {
    let env = Env::new();
    let err = env.fails(&["fleet", "show"], 3);
    assert!(err.contains("zerotouch fleet init"), "{err}");
}

#[test]
fn keygen_writes_identities_manifests_and_qr_codes() {
    let env = Env::new();
    env.ok(&["fleet", "init"]);
    let out = env.path("batch");
    let report = env.json(&[
        "device",
        "keygen",
        "--count",
        "3",
        "--suite",
        "p256",
        "--out",
        s(&out),
        "--label-prefix",
        "lamp-",
        "--pin-owner",
    ]);
    assert_eq!(report["allowed"], 0);
    let manifest: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).expect("manifest.json"))
            .expect("json");
    assert_eq!(manifest.len(), 3);
    let csv = std::fs::read_to_string(out.join("manifest.csv")).expect("manifest.csv");
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("label,suite,key_hash,uri,state_dir"));
    for (entry, line) in manifest.iter().zip(lines) {
        let label = entry["label"].as_str().expect("label");
        assert!(label.starts_with("lamp-000"), "{label}");
        assert_eq!(entry["suite"], "p256");
        let uri = entry["dpp_uri"].as_str().expect("uri");
        assert!(
            uri.starts_with("DPP:") && uri.ends_with(";;") && uri.contains(&format!("I:{label};")),
            "{uri}"
        );
        assert!(line.contains(uri) && line.contains(entry["key_hash"].as_str().expect("hash")));
        let dir = out.join(label);
        let mode = std::fs::metadata(dir.join("identity.key"))
            .expect("identity")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let svg = std::fs::read_to_string(dir.join("dpp-qr.svg")).expect("svg");
        assert!(svg.contains("<svg") && svg.contains("</svg>"), "not an SVG");
        assert_eq!(
            std::fs::read_to_string(dir.join("dpp-uri.txt"))
                .expect("uri.txt")
                .trim(),
            uri
        );
        let owner = std::fs::read_to_string(dir.join("owner.pub")).expect("owner.pub");
        assert!(owner.starts_with("p256 "), "{owner}");
    }
    // The manifest imports as is, and the key hashes match what the registry computes.
    env.ok(&["allow", "import", s(&out.join("manifest.csv"))]);
    let list = env.json(&["allow", "list"]);
    let mut listed: Vec<&str> = list
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|e| e["key_hash"].as_str())
        .collect();
    let mut made: Vec<&str> = manifest
        .iter()
        .filter_map(|e| e["key_hash"].as_str())
        .collect();
    listed.sort_unstable();
    made.sort_unstable();
    assert_eq!(listed, made);

    // Keygen never overwrites a batch.
    let err = env.fails(&["device", "keygen", "--out", s(&out)], 4);
    assert!(err.contains("new --out directory"), "{err}");
}

#[test]
fn keygen_with_allow_allowlists_into_a_profile_and_unknown_profile_fails() {
    let env = Env::new();
    let out = env.path("b");
    let err = env.fails(
        &[
            "device",
            "keygen",
            "--out",
            s(&out),
            "--allow",
            "--profile",
            "ghost",
        ],
        3,
    );
    assert!(err.contains("unknown profile \"ghost\""), "{err}");
    env.ok(&[
        "profile",
        "set",
        "lab",
        "--ssid",
        "Lab",
        "--passphrase",
        "labpassword",
    ]);
    let out = env.path("b2");
    let report = env.json(&[
        "device",
        "keygen",
        "-n",
        "2",
        "--out",
        s(&out),
        "--allow",
        "--profile",
        "lab",
    ]);
    assert_eq!(report["allowed"], 2);
    let list = env.json(&["allow", "list"]);
    assert!(
        list.as_array()
            .expect("list")
            .iter()
            .all(|e| e["profile"] == "lab" && e["state"] == "allowed")
    );
}

#[test]
fn settings_come_from_flags_then_environment_then_config_file() {
    let env = Env::new();
    let config_dir = env.path("config/zerotouch");
    std::fs::create_dir_all(&config_dir).expect("mkdir");
    let from_config = env.path("from-config.db");
    std::fs::write(
        config_dir.join("config.toml"),
        format!("registry = {:?}\n", s(&from_config)),
    )
    .expect("config");

    let mut cmd = env.cmd();
    cmd.env_remove("ZEROTOUCH_REGISTRY")
        .args(["--json", "fleet", "init"]);
    let out = cmd.output().expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["registry"].as_str(), Some(s(&from_config)));

    // Environment beats the config file.
    let v = env.json(&["fleet", "init"]);
    assert_eq!(v["registry"].as_str(), Some(s(&env.registry())));

    // The flag beats the environment.
    let from_flag = env.path("from-flag.db");
    let v = env.json(&["--registry", s(&from_flag), "fleet", "init"]);
    assert_eq!(v["registry"].as_str(), Some(s(&from_flag)));

    // A config file named explicitly must exist, and typos in it are errors.
    env.fails(
        &["--config", s(&env.path("missing.toml")), "allow", "list"],
        3,
    );
    let bad = env.path("bad.toml");
    std::fs::write(&bad, "registy = \"x\"\n").expect("write");
    let err = env.fails(&["--config", s(&bad), "allow", "list"], 2);
    assert!(err.contains("bad.toml"), "{err}");
}

#[test]
fn completions_and_help() {
    let env = Env::new();
    for shell in ["bash", "zsh", "fish"] {
        let script = env.ok(&["completions", shell]);
        assert!(
            script.contains("zerotouch") && script.contains("keygen"),
            "{shell}"
        );
    }
    env.fails(&["completions", "powershell"], 2);
    let help = env.ok(&["--help"]);
    for needle in ["Exit codes:", "ZEROTOUCH_REGISTRY", "130"] {
        assert!(help.contains(needle), "--help lacks {needle}");
    }
    for cmd in ["fleet", "device", "allow", "profile", "log", "export"] {
        assert!(env.ok(&[cmd, "--help"]).contains("Usage:"), "{cmd} --help");
    }
    env.fails(&["allow", "list", "--no-such-flag"], 2);
}

#[test]
fn errors_are_json_with_json_flag() {
    let env = Env::new();
    let out = env.run(&["--json", "fleet", "show"]);
    assert_eq!(out.status.code(), Some(3));
    let v: serde_json::Value = serde_json::from_slice(&out.stderr).expect("json error on stderr");
    assert_eq!(v["error"]["kind"], "not_found");
    assert_eq!(v["error"]["exit_code"], 3);
}
