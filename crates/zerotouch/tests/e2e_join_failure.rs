//! A wrong passphrase in the profile: the agent's join check fails with "authentication
//! failed", the registry records `join-failed` with that reason, the written configuration
//! is rolled back, and once the operator fixes the profile with the CLI the same running
//! agent (no restart, no reset) is provisioned.

mod e2e_support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use e2e_support::Env;

fn audit(env: &Env) -> Vec<serde_json::Value> {
    let text = env.ok(&["--json", "log"]);
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .flat_map(
            |line| match serde_json::from_str::<serde_json::Value>(line) {
                Ok(serde_json::Value::Array(items)) => items,
                Ok(other) => vec![other],
                Err(e) => panic!("log --json is not JSON ({e}): {line}"),
            },
        )
        .collect()
}

#[test]
fn wrong_psk_is_reported_and_fixing_the_profile_provisions_the_running_agent() {
    let env = Env::new();
    env.ok(&["fleet", "init"]);
    env.ok(&[
        "profile",
        "set",
        "default",
        "--ssid",
        "plant-floor",
        "--passphrase",
        "wrong-passphrase",
    ]);
    let devices = env.path("devices");
    env.ok(&[
        "device",
        "keygen",
        "--count",
        "1",
        "--out",
        &devices.to_string_lossy(),
    ]);
    env.ok(&[
        "allow",
        "import",
        &devices.join("manifest.csv").to_string_lossy(),
    ]);
    let mut daemon = env.start_daemon("daemon");

    let state = devices.join("dev-0001");
    let conf = state.join("wpa_supplicant.conf");
    // The "access point" accepts only the right passphrase: exit 2 = authentication failed.
    let check = format!(
        "exec:grep -q 'psk=\"right-passphrase\"' {} || exit 2",
        conf.display()
    );
    let log = std::fs::File::create(env.path("agent.log")).expect("agent log");
    let mut agent = env
        .cmd()
        .args([
            "enrollee",
            "run",
            "--state-dir",
            &state.to_string_lossy(),
            "--link",
            &env.link,
        ])
        .args([
            "--apply",
            &format!("wpa-supplicant:{}", conf.display()),
            "--join-check",
            &check,
            "--timeout",
            "120",
        ])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start the agent");

    let deadline = Instant::now() + Duration::from_secs(60);
    let failure = loop {
        let events = audit(&env);
        if let Some(event) = events.iter().find(|e| e["kind"] == "join-failed") {
            break event.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no join-failed record; daemon:\n{}",
            daemon.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        failure.to_string().contains("auth-failed"),
        "reason recorded: {failure}"
    );
    assert!(
        agent.try_wait().expect("agent").is_none(),
        "the agent keeps running after a failed join"
    );

    env.ok(&[
        "profile",
        "set",
        "default",
        "--ssid",
        "plant-floor",
        "--passphrase",
        "right-passphrase",
    ]);
    let deadline = Instant::now() + Duration::from_secs(90);
    let status = loop {
        if let Some(status) = agent.try_wait().expect("agent") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "not provisioned after the fix:\n{}",
            daemon.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let agent_log = std::fs::read_to_string(env.path("agent.log")).unwrap_or_default();
    assert!(status.success(), "agent: {status}\n{agent_log}");
    assert!(
        std::fs::read_to_string(&conf)
            .expect("conf")
            .contains("psk=\"right-passphrase\"")
    );

    let kinds: Vec<String> = audit(&env)
        .iter()
        .map(|e| e["kind"].as_str().unwrap_or_default().to_owned())
        .collect();
    let failed_at = kinds
        .iter()
        .position(|k| k == "join-failed")
        .expect("join-failed");
    let joined_at = kinds.iter().rposition(|k| k == "joined").expect("joined");
    assert!(failed_at < joined_at, "failure, then success: {kinds:?}");
    assert_eq!(kinds.iter().filter(|k| *k == "joined").count(), 1);
    assert_eq!(daemon.terminate(), Some(130));
}
