//! The allowlist commands: add, import (formats, atomicity, line numbers), list, revoke,
//! profiles and per-device overrides, concurrent use.

mod cli_support;

use cli_support::{Env, s};

fn uris(manifest: &[serde_json::Value]) -> Vec<String> {
    manifest
        .iter()
        .map(|e| e["dpp_uri"].as_str().expect("uri").to_string())
        .collect()
}

#[test]
fn add_list_revoke_round_trip() {
    let env = Env::new();
    let devices = env.keygen("keys", 3, "d-");
    let uris = uris(&devices);
    // URI (label from I:), explicit label, and a base64 SPKI taken from the URI.
    let added = env.json(&["allow", "add", &uris[0]]);
    assert_eq!(added["label"], "d-0001");
    assert_eq!(added["key_hash"], devices[0]["key_hash"]);
    env.ok(&[
        "allow",
        "add",
        &uris[1],
        "--label",
        "kitchen",
        "--expires",
        "30d",
    ]);
    let spki = uris[2]
        .rsplit("K:")
        .next()
        .expect("K")
        .trim_end_matches(";;");
    let added = env.json(&["allow", "add", spki]);
    assert_eq!(added["key_hash"], devices[2]["key_hash"]);

    let err = env.fails(&["allow", "add", &uris[0]], 4);
    assert!(err.contains("already in the registry"), "{err}");
    let err = env.fails(
        &[
            "allow",
            "add",
            devices[0]["key_hash"].as_str().expect("hash"),
        ],
        2,
    );
    assert!(err.contains("key hash alone"), "{err}");
    env.fails(&["allow", "add", "DPP:K:notbase64!;;"], 2);

    let list = env.json(&["allow", "list"]);
    let list = list.as_array().expect("array");
    assert_eq!(list.len(), 3);
    for entry in list {
        for field in ["key_hash", "label", "profile", "state", "last_event"] {
            assert!(entry.get(field).is_some(), "{field} missing in {entry}");
        }
    }
    assert!(list[1]["expires_at"].is_string());
    let text = env.ok(&["allow", "list"]);
    assert!(
        text.starts_with("KEY HASH") && text.contains("kitchen"),
        "{text}"
    );

    env.ok(&["allow", "revoke", "kitchen"]);
    let revoked = env.json(&["allow", "list", "--state", "revoked"]);
    assert_eq!(revoked.as_array().map(Vec::len), Some(1));
    assert_eq!(revoked[0]["label"], "kitchen");
    let again = env.json(&[
        "allow",
        "revoke",
        &devices[1]["key_hash"].as_str().expect("hash")[..12],
    ]);
    assert_eq!(again["revoked"], false);
    env.fails(&["allow", "revoke", "nobody"], 3);
    let log = env.ok(&["log", "--device", "kitchen"]);
    assert!(log.contains("allowed") && log.contains("revoked"), "{log}");
    assert!(env.ok(&["log", "--since", "1h"]).contains("revoked"));
    assert!(
        env.ok(&["log", "--since", "2099-01-01"])
            .contains("no audit events match")
    );
    let last = env.ok(&["--json", "log", "-n", "1"]);
    assert_eq!(last.lines().count(), 1, "{last}");
    env.fails(&["log", "--since", "sometime"], 2);
}

#[test]
fn ambiguous_prefix_lists_candidates() {
    use std::collections::HashMap;
    use zerotouch_proto::{SigningIdentity, SuiteId};
    // Deterministic keys until two key hashes share their first 4 hex digits (the shortest
    // prefix accepted); the birthday bound makes that a few hundred keys.
    let mut seen: HashMap<String, String> = HashMap::new();
    let (first, second) = (0u32..)
        .find_map(|i| {
            let mut secret = [7u8; 32];
            secret[..4].copy_from_slice(&i.to_le_bytes());
            let key = SigningIdentity::from_secret_bytes(SuiteId::Ed25519, &secret)
                .expect("key")
                .public_key();
            let raw = format!("ed25519:{}", hex_encode(key.as_wire()));
            let hash = key.key_hash().to_string();
            seen.insert(hash[..4].to_string(), raw.clone())
                .map(|other| (other, raw))
        })
        .expect("a collision");
    let env = Env::new();
    let a = env.json(&["allow", "add", &first, "--label", "first"]);
    let b = env.json(&["allow", "add", &second, "--label", "second"]);
    let (ha, hb) = (
        a["key_hash"].as_str().expect("a"),
        b["key_hash"].as_str().expect("b"),
    );
    let err = env.fails(&["allow", "revoke", &ha[..4]], 4);
    assert!(
        err.contains(ha) && err.contains(hb) && err.contains("first") && err.contains("second"),
        "{err}"
    );
    // A longer prefix resolves it.
    let common = ha
        .chars()
        .zip(hb.chars())
        .take_while(|(x, y)| x == y)
        .count();
    env.ok(&["allow", "revoke", &ha[..common + 1]]);
    let err = env.fails(&["allow", "revoke", "abc"], 3);
    assert!(err.contains("abc"), "{err}");
}

fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn import_detects_csv_json_and_lines() {
    let env = Env::new();
    let devices = env.keygen("keys", 6, "x-");
    let uris = uris(&devices);
    env.ok(&["profile", "set", "field", "--ssid", "Field", "--per-device"]);

    let csv = env.path("a.csv");
    std::fs::write(
        &csv,
        format!(
            "uri,label,profile\n{},one,field\n\"{}\",two,\n",
            uris[0], uris[1]
        ),
    )
    .expect("csv");
    assert_eq!(env.json(&["allow", "import", s(&csv)])["format"], "CSV");

    let json = env.path("b.json");
    let body = serde_json::json!([uris[2], {"uri": uris[3], "label": "four", "profile": "field", "expires": "2099-01-01"}]);
    std::fs::write(&json, body.to_string()).expect("json");
    assert_eq!(env.json(&["allow", "import", s(&json)])["format"], "JSON");

    let lines = env.path("c.txt");
    std::fs::write(&lines, format!("# batch c\n{}\n\n{}\n", uris[4], uris[5])).expect("txt");
    let report = env.json(&["allow", "import", s(&lines), "--profile", "field"]);
    assert_eq!(
        (report["format"].as_str(), report["imported"].as_u64()),
        (Some("one-per-line"), Some(2))
    );

    let list = env.json(&["allow", "list"]);
    let by_label = |label: &str| {
        list.as_array()
            .expect("list")
            .iter()
            .find(|e| e["label"] == label)
            .cloned()
    };
    assert_eq!(by_label("one").expect("one")["profile"], "field");
    assert_eq!(by_label("two").expect("two")["profile"], "default");
    assert!(
        by_label("four").expect("four")["expires_at"]
            .as_str()
            .expect("exp")
            .starts_with("2099-01-01")
    );
    assert_eq!(by_label("x-0006").expect("x-0006")["profile"], "field");
}

#[test]
fn bad_import_reports_every_line_and_imports_nothing() {
    let env = Env::new();
    let devices = env.keygen("keys", 3, "k-");
    let uris = uris(&devices);
    let file = env.path("bad.txt");
    let text = format!(
        "{}\n{}\nDPP:K:MCowBQYDK2VwAyEA;;\n\nnot a uri at all\n{}\n{}\n",
        uris[0],
        uris[1],
        uris[0],
        &uris[2][..uris[2].len() - 2],
    );
    std::fs::write(&file, text).expect("write");
    let err = env.fails(&["allow", "import", s(&file)], 2);
    assert!(err.contains("nothing was imported"), "{err}");
    for needle in [
        "line 3:",
        "line 5:",
        "line 6: duplicate: same device key as line 1",
        "line 7:",
    ] {
        assert!(err.contains(needle), "{needle} missing in:\n{err}");
    }
    assert!(
        !err.contains("line 1:") && !err.contains("line 2:"),
        "{err}"
    );
    assert_eq!(
        env.json(&["allow", "list"]).as_array().map(Vec::len),
        Some(0)
    );

    // Conflicts with the registry: also atomic, with line numbers.
    env.ok(&["allow", "add", &uris[1]]);
    let file = env.path("dup.csv");
    std::fs::write(&file, format!("uri,label\n{},a\n{},b\n", uris[0], uris[1])).expect("write");
    let err = env.fails(&["allow", "import", s(&file)], 4);
    assert!(
        err.contains("line 3:") && err.contains("nothing was imported"),
        "{err}"
    );
    assert_eq!(
        env.json(&["allow", "list"]).as_array().map(Vec::len),
        Some(1)
    );

    // A JSON array with a bad element names the entry; a CSV with a ragged row its line.
    let file = env.path("bad.json");
    std::fs::write(&file, format!("[\"{}\", 42]", uris[2])).expect("write");
    let err = env.fails(&["allow", "import", s(&file)], 2);
    assert!(err.contains("entry 2:"), "{err}");
    let file = env.path("ragged.csv");
    std::fs::write(&file, format!("uri,label\n{},a,extra\n", uris[2])).expect("write");
    let err = env.fails(&["allow", "import", s(&file)], 2);
    assert!(err.contains("line 2:"), "{err}");
    env.fails(&["allow", "import", s(&env.path("missing.csv"))], 3);
}

#[test]
fn profiles_and_device_overrides() {
    let env = Env::new();
    let err = env.fails(&["profile", "show", "nope"], 3);
    assert!(err.contains("unknown profile \"nope\""), "{err}");
    let devices = env.keygen("keys", 1, "o-");
    let uri = devices[0]["dpp_uri"].as_str().expect("uri");
    let err = env.fails(&["allow", "add", uri, "--profile", "nope"], 3);
    assert!(err.contains("zerotouch profile set"), "{err}");

    let out = env.ok(&[
        "profile",
        "set",
        "home",
        "--ssid",
        "Home",
        "--security",
        "wpa3-sae",
        "--passphrase",
        "hunter2hunter2",
        "--setting",
        "mqtt=broker",
        "--network-json",
        r#"{"ssid":"Guest","security":"open"}"#,
    ]);
    assert!(!out.contains("hunter2hunter2"), "passphrase echoed: {out}");
    let shown = env.json(&["profile", "show", "home"]);
    assert_eq!(shown["networks"][0]["secret"], "<hidden>");
    assert_eq!(shown["networks"][1]["credential"], "none");
    let shown = env.json(&["profile", "show", "home", "--show-secrets"]);
    assert_eq!(shown["networks"][0]["secret"], "hunter2hunter2");
    assert!(!env.ok(&["profile", "list"]).contains("hunter2"));
    env.fails(
        &[
            "profile",
            "set",
            "bad",
            "--ssid",
            "X",
            "--passphrase",
            "short",
        ],
        2,
    );
    env.fails(
        &[
            "profile",
            "set",
            "bad",
            "--ssid",
            "X",
            "--security",
            "open",
            "--passphrase",
            "longenough",
        ],
        2,
    );
    env.fails(&["profile", "set", "bad", "--ssid", "X"], 2);

    env.ok(&["allow", "add", uri]);
    env.fails(&["device", "set", "o-0001", "--profile", "nope"], 3);
    let v = env.json(&[
        "device",
        "set",
        "o-0001",
        "--profile",
        "home",
        "--setting",
        "room=attic",
    ]);
    assert_eq!(v["device"]["profile"], "home");
    let v = env.json(&["device", "show", "o-0001", "--show-secrets"]);
    assert_eq!(v["overrides"]["room"], "attic");
    env.ok(&["device", "set", "o-0001", "--unset", "room"]);
    let v = env.json(&["device", "show", "o-0001"]);
    assert_eq!(v["overrides"], serde_json::json!({}));
    env.fails(&["profile", "delete", "home"], 4);

    // A passphrase from a file never appears on the command line.
    let file = env.path("pass.txt");
    std::fs::write(&file, "from a file 123\n").expect("write");
    env.ok(&[
        "profile",
        "set",
        "filed",
        "--ssid",
        "F",
        "--passphrase-file",
        s(&file),
    ]);
    let shown = env.json(&["profile", "show", "filed", "--show-secrets"]);
    assert_eq!(shown["networks"][0]["secret"], "from a file 123");
    std::fs::write(&file, "").expect("write");
    env.fails(
        &[
            "profile",
            "set",
            "filed",
            "--ssid",
            "F",
            "--passphrase-file",
            s(&file),
        ],
        2,
    );
}

#[test]
fn profile_set_changes_only_the_flags_given_and_replace_replaces() {
    let env = Env::new();
    env.ok(&[
        "profile",
        "set",
        "default",
        "--ssid",
        "plant-iot",
        "--passphrase",
        "wrong-passphrase",
        "--setting",
        "mqtt.host=broker.plant.example",
        "--setting",
        "site=hall-3",
        "--channel",
        "6",
    ]);
    // "Fix the profile": only the passphrase is given; the settings and channel survive.
    env.ok(&[
        "profile",
        "set",
        "default",
        "--passphrase",
        "right-passphrase",
    ]);
    let shown = env.json(&["profile", "show", "default", "--show-secrets"]);
    assert_eq!(shown["networks"][0]["secret"], "right-passphrase");
    assert_eq!(shown["networks"][0]["ssid"], "plant-iot");
    assert_eq!(shown["networks"][0]["channel"], 6);
    assert_eq!(shown["settings"]["mqtt.host"], "broker.plant.example");
    assert_eq!(shown["settings"]["site"], "hall-3");

    // One setting changed, one removed; an unknown key is refused and changes nothing.
    env.ok(&["profile", "set", "default", "--setting", "site=hall-4"]);
    let err = env.fails(&["profile", "set", "default", "--unset", "nope"], 2);
    assert!(err.contains("\"nope\"") && err.contains("site"), "{err}");
    env.ok(&["profile", "set", "default", "--unset", "mqtt.host"]);
    let shown = env.json(&["profile", "show", "default"]);
    assert_eq!(shown["settings"], serde_json::json!({ "site": "hall-4" }));
    let err = env.fails(&["profile", "set", "default"], 2);
    assert!(err.contains("nothing to change"), "{err}");

    // Open drops the credential; back to WPA2 needs one.
    env.ok(&["profile", "set", "default", "--security", "open"]);
    let shown = env.json(&["profile", "show", "default"]);
    assert_eq!(shown["networks"][0]["credential"], "none");
    env.fails(&["profile", "set", "default", "--security", "wpa2-psk"], 2);

    // replace: what is not given is gone.
    env.ok(&[
        "profile",
        "replace",
        "default",
        "--ssid",
        "plant-iot",
        "--per-device",
    ]);
    let shown = env.json(&["profile", "show", "default"]);
    assert_eq!(shown["settings"], serde_json::json!({}));
    assert_eq!(shown["networks"][0]["credential"], "per-device");
    assert_eq!(shown["networks"][0]["channel"], serde_json::Value::Null);
    // set of a new profile still needs a network.
    let err = env.fails(&["profile", "set", "fresh", "--setting", "a=b"], 2);
    assert!(err.contains("--ssid"), "{err}");
}

#[test]
fn concurrent_adds_all_land() {
    let env = Env::new();
    env.ok(&["fleet", "init"]);
    let devices = env.keygen("keys", 8, "c-");
    let spawned: Vec<_> = uris(&devices)
        .into_iter()
        .map(|uri| {
            env.cmd()
                .args(["allow", "add", &uri])
                .spawn()
                .expect("spawn")
        })
        .collect();
    let mut failures = 0;
    for mut child in spawned {
        let status = child.wait().expect("wait");
        // Success, or a clean "busy" (exit 5) that the caller may retry: never a crash.
        match status.code() {
            Some(0) => {}
            Some(5) => failures += 1,
            other => panic!("allow add exited with {other:?}"),
        }
    }
    let list = env.json(&["allow", "list"]);
    assert_eq!(
        list.as_array().map(Vec::len),
        Some(8 - failures),
        "rows lost"
    );
    assert_eq!(
        failures, 0,
        "8 concurrent adds should fit within the 5 s busy timeout"
    );
}

#[test]
fn log_follow_streams_new_events_as_json_lines() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    use std::sync::mpsc;
    use std::time::Duration;

    let env = Env::new();
    let devices = env.keygen("keys", 2, "f-");
    let uris = uris(&devices);
    env.ok(&["allow", "add", &uris[0]]);
    let mut child = env
        .cmd()
        .args(["--json", "log", "--follow"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn log --follow");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // A generous guard against a hang, not a timing assertion.
    let next = || -> serde_json::Value {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("a log line");
        serde_json::from_str(&line).expect("JSON line")
    };
    let first = next();
    assert_eq!(
        (first["kind"].as_str(), first["label"].as_str()),
        (Some("allowed"), Some("f-0001"))
    );
    env.ok(&["allow", "add", &uris[1]]);
    let second = next();
    assert_eq!(
        (second["kind"].as_str(), second["label"].as_str()),
        (Some("allowed"), Some("f-0002"))
    );
    assert!(second["id"].as_i64() > first["id"].as_i64());
    env.ok(&["allow", "revoke", "f-0001"]);
    assert_eq!(next()["kind"], "revoked");
    child.kill().expect("kill");
    child.wait().expect("wait");
}

/// `zerotouch log` for people (issue 11, friction 3): aligned columns, suite names, the
/// default profile by name (not `null`), the label a device had when each event happened,
/// and `--device` with a label the device no longer has.
#[test]
fn log_is_aligned_and_shows_the_label_of_the_time() {
    let env = Env::new();
    env.ok(&["fleet", "init"]);
    let devices = env.keygen("keys", 2, "d-");
    let uris = uris(&devices);
    let long = "a-much-longer-label";
    env.ok(&["allow", "add", &uris[0], "--label", "door-17"]);
    env.ok(&["allow", "add", &uris[1], "--label", long]);
    env.ok(&["allow", "revoke", "door-17"]);
    env.ok(&["allow", "add", &uris[0], "--label", "door-18"]);

    let log = env.ok(&["log"]);
    let lines: Vec<&str> = log.lines().collect();
    assert!(lines.len() >= 5, "{log}");
    // time (20) | kind (17) | key hash (16) | label (longest) | detail, two spaces apart.
    let (kind_at, key_at, label_at) = (22, 22 + 17 + 2, 22 + 17 + 2 + 16 + 2);
    let detail_at = label_at + long.len() + 2;
    for line in &lines {
        assert_eq!(&line[20..22], "  ", "{line}");
        let kind = line[kind_at..kind_at + 17].trim_end();
        assert!(!kind.is_empty() && !kind.contains(' '), "{line}");
        assert_eq!(&line[key_at - 2..key_at], "  ", "{line}");
        let key = line[key_at..key_at + 16].trim_end();
        assert!(key == "-" || key.len() == 16, "{line}");
        if line.len() > detail_at {
            assert_eq!(&line[detail_at - 2..detail_at], "  ", "{line}");
            assert_ne!(&line[detail_at..detail_at + 1], " ", "{line}");
        }
        assert!(!line.contains("null"), "{line}");
    }
    let fleet = lines
        .iter()
        .find(|l| l.contains("fleet-initialized"))
        .expect("fleet");
    assert!(fleet.contains("suites=ed25519"), "{fleet}");
    let allowed: Vec<&&str> = lines.iter().filter(|l| l.contains(" allowed ")).collect();
    assert_eq!(allowed.len(), 3, "{log}");
    assert!(allowed[0].contains("door-17"), "{}", allowed[0]);
    assert!(allowed[0].contains("suite=ed25519"), "{}", allowed[0]);
    assert!(allowed[0].contains("profile=default"), "{}", allowed[0]);
    assert!(allowed[2].contains("door-18"), "{}", allowed[2]);
    let revoked = lines
        .iter()
        .find(|l| l.contains(" revoked "))
        .expect("revoked");
    assert!(
        revoked.contains("door-17"),
        "the label of the time: {revoked}"
    );

    // The device by the label it had: its whole history, each event with its label then.
    let by_old = env.ok(&["log", "--device", "door-17"]);
    let by_new = env.ok(&["log", "--device", "door-18"]);
    assert_eq!(by_old, by_new);
    assert_eq!(by_old.lines().count(), 3, "{by_old}");
    assert!(by_old.lines().next().expect("first").contains("door-17"));
    assert!(by_old.lines().last().expect("last").contains("door-18"));
    let json = env.ok(&["--json", "log", "--device", "door-17", "-n", "1"]);
    let last: serde_json::Value = serde_json::from_str(json.trim()).expect("json");
    assert_eq!(last["label"], "door-18");
    env.fails(&["log", "--device", "door-99"], 3);
}
