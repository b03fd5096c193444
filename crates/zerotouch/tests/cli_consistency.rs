//! The small inconsistencies of the operator's first hour (issue 11, friction 4), one test
//! per item, each on the real `zerotouch` binary: short key-hash prefixes, one channel range,
//! `--max-sessions 0`, unicast UDP links, bad `--owner-key` values, the PSK column of an open
//! profile, `device set --unset` of an unknown key, key files readable by others, and
//! re-allowing a revoked device.

mod cli_support;

use std::os::unix::fs::PermissionsExt;

use cli_support::{Env, s};

/// A fleet with one allowlisted device labelled `d-0001`; returns its manifest entry.
fn one_device(env: &Env) -> serde_json::Value {
    env.ok(&["fleet", "init"]);
    let devices = env.keygen("keys", 1, "d-");
    let uri = devices[0]["dpp_uri"].as_str().expect("uri");
    env.ok(&["allow", "add", uri]);
    devices[0].clone()
}

#[test]
fn a_short_prefix_says_it_needs_4_hex_digits() {
    let env = Env::new();
    let device = one_device(&env);
    let hash = device["key_hash"].as_str().expect("hash");
    let err = env.fails(&["allow", "revoke", &hash[..3]], 3);
    assert!(err.contains("at least 4 hex digits"), "{err}");
    // Four digits are enough.
    env.ok(&["allow", "revoke", &hash[..4]]);
    // A label that is not hex gets the plain "no device" message.
    let err = env.fails(&["allow", "revoke", "nope"], 3);
    assert!(!err.contains("4 hex digits"), "{err}");
}

#[test]
fn channels_are_1_to_13_everywhere() {
    let env = Env::new();
    env.ok(&["fleet", "init"]);
    for channel in ["1", "13"] {
        env.ok(&[
            "profile",
            "set",
            "p",
            "--ssid",
            "S",
            "--per-device",
            "--channel",
            channel,
        ]);
    }
    let err = env.fails(
        &[
            "profile",
            "set",
            "p",
            "--ssid",
            "S",
            "--per-device",
            "--channel",
            "14",
        ],
        2,
    );
    assert!(err.contains("1..=13"), "{err}");
    let err = env.fails(
        &[
            "profile",
            "set",
            "q",
            "--network-json",
            r#"{"ssid":"J","security":"open","channel":14}"#,
        ],
        2,
    );
    assert!(err.contains("1 to 13"), "{err}");
    let err = env.fails(&["configurator", "run", "--channel", "14"], 2);
    assert!(err.contains("1..=13"), "{err}");
}

#[test]
fn max_sessions_0_is_rejected() {
    let env = Env::new();
    env.ok(&["fleet", "init"]);
    let err = env.fails(&["configurator", "run", "--max-sessions", "0"], 2);
    assert!(err.contains("--max-sessions"), "{err}");
}

#[test]
fn a_unicast_udp_link_is_rejected_with_the_reason() {
    let env = Env::new();
    env.ok(&["fleet", "init"]);
    let err = env.fails(&["configurator", "run", "--link", "udp:127.0.0.1:47470"], 2);
    assert!(
        err.contains("unicast") && err.contains("239.255.90.1:47470"),
        "{err}"
    );
    let state = env.path("dev");
    let err = env.fails(
        &[
            "enrollee",
            "run",
            "--state-dir",
            s(&state),
            "--link",
            "udp:10.0.0.7:5000",
        ],
        2,
    );
    assert!(err.contains("unicast"), "{err}");
    // Multicast and broadcast are fine as far as parsing goes (help exits 0 after parsing).
    env.ok(&[
        "configurator",
        "run",
        "--link",
        "udp:255.255.255.255:47470",
        "--help",
    ]);
}

#[test]
fn a_bad_owner_key_fails_before_an_identity_is_created() {
    let env = Env::new();
    let state = env.path("dev");
    let err = env.fails(
        &[
            "enrollee",
            "run",
            "--state-dir",
            s(&state),
            "--owner-key",
            "nothex",
            "--timeout",
            "5",
        ],
        2,
    );
    assert!(err.contains("nothex"), "{err}");
    assert!(!state.exists(), "the state directory was created");
}

#[test]
fn profile_list_says_open_for_an_open_network() {
    let env = Env::new();
    env.ok(&[
        "profile",
        "set",
        "guest",
        "--ssid",
        "Guest",
        "--security",
        "open",
    ]);
    env.ok(&["profile", "set", "per", "--ssid", "Fleet", "--per-device"]);
    env.ok(&[
        "profile",
        "set",
        "shared",
        "--ssid",
        "Office",
        "--passphrase",
        "office-passphrase",
    ]);
    let list = env.ok(&["profile", "list"]);
    let psk = |name: &str| {
        list.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(2))
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(psk("guest"), "open", "{list}");
    assert_eq!(psk("per"), "per-device", "{list}");
    assert_eq!(psk("shared"), "shared", "{list}");
}

#[test]
fn device_set_unset_of_an_unknown_key_fails_and_changes_nothing() {
    let env = Env::new();
    one_device(&env);
    env.ok(&["profile", "set", "other", "--ssid", "O", "--per-device"]);
    env.ok(&["device", "set", "d-0001", "--setting", "room=attic"]);
    let before = env.ok(&["--json", "log"]);
    let err = env.fails(
        &[
            "device",
            "set",
            "d-0001",
            "--profile",
            "other",
            "--unset",
            "nope",
        ],
        2,
    );
    assert!(err.contains("\"nope\"") && err.contains("room"), "{err}");
    assert_eq!(env.ok(&["--json", "log"]), before, "nothing was logged");
    let shown = env.json(&["device", "show", "d-0001"]);
    assert_eq!(shown["device"]["profile"], "default", "{shown}");
}

#[test]
fn a_key_file_readable_by_others_gets_a_warning() {
    let env = Env::new();
    env.ok(&["fleet", "init"]);
    let key = env.path("registry.db.key");
    let out = env.run(&["allow", "list"]);
    assert!(String::from_utf8_lossy(&out.stderr).is_empty());
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let out = env.run(&["allow", "list"]);
    assert!(out.status.success(), "still works");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("0644") && err.contains(&format!("chmod 600 {}", key.display())),
        "{err}"
    );

    // The device identity key too.
    let devices = env.keygen("keys", 1, "k-");
    let state = env
        .path("keys")
        .join(devices[0]["state_dir"].as_str().expect("state dir"));
    let identity = state.join("identity.key");
    std::fs::set_permissions(&identity, std::fs::Permissions::from_mode(0o640)).expect("chmod");
    let out = env.run(&["enrollee", "uri", "--state-dir", s(&state), "--no-qr"]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("0640") && err.contains("chmod 600"), "{err}");
}

#[test]
fn a_revoked_device_is_allowed_again_by_allow_add() {
    let env = Env::new();
    let device = one_device(&env);
    let uri = device["dpp_uri"].as_str().expect("uri");
    let out = env.ok(&["allow", "revoke", "d-0001"]);
    assert!(
        out.contains("allow add"),
        "the message says how to undo: {out}"
    );
    env.ok(&["allow", "add", uri]);
    let list = env.json(&["allow", "list"]);
    assert_eq!(list[0]["state"], "allowed", "{list}");
    assert_eq!(list[0]["label"], "d-0001", "{list}");
}
