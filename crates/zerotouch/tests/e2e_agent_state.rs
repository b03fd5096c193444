//! The agent's state directory: a corrupt identity or state file is an error that says what
//! to do (exit code 6), and the identity key is never regenerated or touched.

mod e2e_support;

use e2e_support::Env;

fn keygen_one(env: &Env) -> std::path::PathBuf {
    let devices = env.path("devices");
    env.ok(&[
        "device",
        "keygen",
        "--count",
        "1",
        "--out",
        &devices.to_string_lossy(),
    ]);
    devices.join("dev-0001")
}

#[test]
fn corrupt_identity_is_a_clear_error_and_is_not_regenerated() {
    let env = Env::new();
    let state = keygen_one(&env);
    let identity = state.join("identity.key");
    std::fs::write(
        &identity,
        "zerotouch-identity v1\nsuite ed25519\nsecret not-hex\n",
    )
    .expect("corrupt it");
    let before = std::fs::read(&identity).expect("read");
    let out = env.run(&[
        "enrollee",
        "run",
        "--state-dir",
        &state.to_string_lossy(),
        "--link",
        &env.link,
        "--timeout",
        "5",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(6),
        "corrupt state exits 6: {stderr}"
    );
    assert!(
        stderr.contains("corrupt") && stderr.contains("restore"),
        "says what to do: {stderr}"
    );
    assert_eq!(
        std::fs::read(&identity).expect("read"),
        before,
        "the identity file is untouched"
    );
    let uri = env.run(&["enrollee", "uri", "--state-dir", &state.to_string_lossy()]);
    assert_eq!(uri.status.code(), Some(6));
}

#[test]
fn corrupt_agent_state_is_a_clear_error_and_keeps_the_identity() {
    let env = Env::new();
    let state = keygen_one(&env);
    let identity = std::fs::read(state.join("identity.key")).expect("identity");
    std::fs::write(
        state.join("agent-state.json"),
        "{\"version\": 1, \"provisioned\": tru",
    )
    .expect("corrupt state");
    let out = env.run(&[
        "enrollee",
        "run",
        "--state-dir",
        &state.to_string_lossy(),
        "--link",
        &env.link,
        "--timeout",
        "5",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(6), "{stderr}");
    assert!(
        stderr.contains("agent-state.json") && stderr.contains("identity key is kept"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read(state.join("identity.key")).expect("identity"),
        identity
    );
}

#[test]
fn uri_of_an_empty_state_dir_creates_nothing_and_first_run_creates_the_identity_once() {
    let env = Env::new();
    let state = env.path("fresh");
    let out = env.run(&["enrollee", "uri", "--state-dir", &state.to_string_lossy()]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "no identity yet: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!state.join("identity.key").exists());

    // First run creates the identity (0600); no configurator answers within the timeout.
    let first = env.run(&[
        "enrollee",
        "run",
        "--state-dir",
        &state.to_string_lossy(),
        "--link",
        &env.link,
        "--timeout",
        "1",
    ]);
    assert_eq!(
        first.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let identity = std::fs::read(state.join("identity.key")).expect("identity created");
    let second = env.run(&[
        "enrollee",
        "run",
        "--state-dir",
        &state.to_string_lossy(),
        "--link",
        &env.link,
        "--timeout",
        "1",
    ]);
    assert_eq!(second.status.code(), Some(1));
    assert_eq!(
        std::fs::read(state.join("identity.key")).expect("identity"),
        identity,
        "never regenerated"
    );

    let json: serde_json::Value = serde_json::from_str(&env.ok(&[
        "--json",
        "enrollee",
        "uri",
        "--state-dir",
        &state.to_string_lossy(),
    ]))
    .expect("json");
    assert!(
        json["uri"]
            .as_str()
            .is_some_and(|u| u.starts_with("DPP:") && u.ends_with(";;")),
        "{json}"
    );
    // Into a pipe: the URI line alone, so `enrollee uri | allow import -` works.
    let piped = env.ok(&["enrollee", "uri", "--state-dir", &state.to_string_lossy()]);
    assert_eq!(
        piped.lines().count(),
        1,
        "only the URI into a pipe:\n{piped}"
    );
    assert!(piped.starts_with("DPP:") && !piped.contains('█'), "{piped}");
    // On a terminal (a real pseudo-terminal, through util-linux `script`): the QR code too.
    let command = format!(
        "'{}' enrollee uri --state-dir '{}'",
        env!("CARGO_BIN_EXE_zerotouch"),
        state.display()
    );
    let out = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .output()
        .expect("run script(1) from util-linux");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.lines().count() > 10 && text.contains('█'),
        "QR code in the terminal:\n{text}"
    );
}

#[test]
fn an_owner_key_of_another_suite_is_a_start_up_error_not_trust_on_first_use() {
    // Issue 7 A1: the agent used to drop such a key and run in trust on first use while
    // its log still counted it as pinned; a rogue configurator answering first was pinned.
    let env = Env::new();
    let state = keygen_one(&env); // an Ed25519 identity
    // The P-256 generator point: a valid P-256 owner key that can never match.
    let p256_owner = "036b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296";
    let out = env.run(&[
        "enrollee",
        "run",
        "--state-dir",
        &state.to_string_lossy(),
        "--link",
        &env.link,
        "--owner-key",
        p256_owner,
        "--timeout",
        "5",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "a usage error: {stderr}");
    assert!(
        stderr.contains("p256") && stderr.contains("ed25519") && stderr.contains("never"),
        "names both suites and why: {stderr}"
    );
    assert!(
        !stderr.contains("announcing"),
        "it must not announce in any mode: {stderr}"
    );
}

#[test]
fn the_agent_states_its_trust_mode_and_raises_its_boot_counter_every_run() {
    let env = Env::new();
    let state = keygen_one(&env);
    let boot_counter = || -> u64 {
        let text = std::fs::read_to_string(state.join("agent-state.json")).expect("state");
        let json: serde_json::Value = serde_json::from_str(&text).expect("json");
        json["boot_counter"].as_u64().expect("boot_counter")
    };
    let mut seen = Vec::new();
    for _ in 0..2 {
        // Nobody answers: each run announces, then gives up at its timeout.
        let out = env.run(&[
            "enrollee",
            "run",
            "--state-dir",
            &state.to_string_lossy(),
            "--link",
            &env.link,
            "--timeout",
            "1",
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("trust on first use"), "{stderr}");
        seen.push(boot_counter());
    }
    assert!(seen[0] >= 1 && seen[1] > seen[0], "boot counters {seen:?}");
}
