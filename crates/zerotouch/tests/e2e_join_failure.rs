//! A wrong passphrase in the profile: the agent's join check fails with "authentication
//! failed", the registry records `join-failed` with that reason, the written configuration
//! is rolled back, and once the operator fixes the profile with the CLI the same running
//! agent (no restart, no reset) is provisioned. The agent checks its apply target and join
//! check at start-up, and its error at --timeout names the last failure.

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

/// Runs `enrollee run` with `extra` flags on a state directory that does not exist yet;
/// asserts the exit code and that nothing was created; returns stderr.
fn agent_refuses(env: &Env, extra: &[&str], code: i32) -> String {
    let state = env.path("never-created");
    let mut args = vec![
        "enrollee",
        "run",
        "--state-dir",
        state.to_str().expect("utf-8"),
    ];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--link", &env.link, "--timeout", "30"]);
    let err = env.fails(&args, code);
    assert!(
        !state.exists(),
        "the start-up check runs before an identity is created: {extra:?}"
    );
    err
}

#[test]
fn agent_checks_its_apply_target_and_join_check_at_startup() {
    let env = Env::new();
    let missing_dir = env.path("no-such-dir");
    let conf = format!("wpa-supplicant:{}/wpa.conf", missing_dir.display());
    let err = agent_refuses(&env, &["--apply", &conf], 3);
    assert!(
        err.contains("no-such-dir") && err.contains("does not exist"),
        "{err}"
    );

    std::fs::write(env.path("plain"), "x").expect("write");
    let nm = format!("networkmanager:{}", env.path("plain").display());
    let err = agent_refuses(&env, &["--apply", &nm], 2);
    assert!(err.contains("not a directory"), "{err}");

    // A directory nobody can create files in, even root: the check really writes.
    let err = agent_refuses(&env, &["--apply", "networkmanager:/proc"], 1);
    assert!(err.contains("cannot create files in /proc"), "{err}");

    let err = agent_refuses(&env, &["--apply", "exec:/no/such/apply-hook"], 3);
    assert!(err.contains("/no/such/apply-hook"), "{err}");

    let check = format!("exec:{}/join-check --quiet", missing_dir.display());
    let err = agent_refuses(&env, &["--join-check", &check], 3);
    assert!(
        err.contains("--join-check") && err.contains("does not exist"),
        "{err}"
    );

    let script = env.path("join-check.sh");
    std::fs::write(&script, "#!/bin/sh\nexit 0\n").expect("write");
    let check = format!("exec:{}", script.display());
    let err = agent_refuses(&env, &["--join-check", &check], 1);
    assert!(err.contains("chmod +x"), "{err}");

    let err = agent_refuses(&env, &["--join-check", "exec:zt-no-such-program -x"], 3);
    assert!(
        err.contains("zt-no-such-program") && err.contains("PATH"),
        "{err}"
    );
}

#[test]
fn the_final_error_names_the_last_failure() {
    let env = Env::new();
    env.ok(&["fleet", "init"]);
    env.ok(&[
        "profile",
        "set",
        "default",
        "--ssid",
        "plant-floor",
        "--passphrase",
        "some-passphrase",
    ]);
    let devices = env.path("devices");
    env.ok(&[
        "device",
        "keygen",
        "--count",
        "2",
        "--out",
        &devices.to_string_lossy(),
    ]);
    env.ok(&[
        "allow",
        "import",
        &devices.join("manifest.csv").to_string_lossy(),
    ]);
    let mut daemon = env.start_daemon("daemon");
    daemon.wait_for_log("configurator daemon running", Duration::from_secs(30));

    // Shell builtins pass the start-up check and fail when they run.
    let start = |device: &str, flag: &str, value: &str| {
        let log = env.path(&format!("{device}.log"));
        let child = env
            .cmd()
            .args(["enrollee", "run", "--state-dir"])
            .arg(devices.join(device))
            .args(["--link", &env.link, flag, value, "--timeout", "25"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("agent log"))
            .spawn()
            .expect("start the agent");
        (child, log)
    };
    let finish = |(mut child, log): (std::process::Child, std::path::PathBuf)| {
        let status = child.wait().expect("agent");
        let err = std::fs::read_to_string(log).expect("agent log");
        assert_eq!(status.code(), Some(1), "{err}");
        err.lines().last().unwrap_or_default().to_string()
    };
    let apply_fails = start("dev-0001", "--apply", "exec:false");
    let check_fails = start("dev-0002", "--join-check", "exec:exit 2");

    let last = finish(apply_fails);
    assert!(
        last.contains("last failure: could not apply the configuration")
            && last.contains("`false` failed"),
        "{last}"
    );
    let last = finish(check_fails);
    assert!(
        last.contains("last failure: the join check `exit 2` exited with 2 (auth-failed)"),
        "{last}"
    );
    assert_eq!(daemon.terminate(), Some(130));
}

#[test]
fn an_unchanged_configuration_is_not_redelivered_after_a_failed_join() {
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
    let log_path = env.path("daemon.log");
    let child = env
        .cmd()
        .args(["configurator", "run", "--link", &env.link])
        .args(["--join-retry-backoff", "3"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).expect("daemon log"))
        .spawn()
        .expect("start the daemon");
    let mut daemon = e2e_support::Daemon::from_child(child, log_path);
    daemon.wait_for_log("configurator daemon running", Duration::from_secs(30));

    // The "access point" refuses every configuration: exit 2 = authentication failed.
    let mut agent = env
        .cmd()
        .args(["enrollee", "run", "--state-dir"])
        .arg(devices.join("dev-0001"))
        .args(["--link", &env.link, "--join-check", "exec:exit 2"])
        .args(["--timeout", "120"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(env.path("agent.log")).expect("agent log"))
        .spawn()
        .expect("start the agent");
    let delivered = |log: &str| log.matches("configuration delivered").count();
    let failures = |env: &Env| {
        audit(env)
            .iter()
            .filter(|e| e["kind"] == "join-failed")
            .count()
    };

    let wait = Duration::from_secs(60);
    daemon.wait_for_log("device could not join", wait);
    // The same configuration comes again only after the 3 s backoff; its identical failure
    // is counted, not written.
    let log = daemon.wait_for_log("failed again with the same configuration", wait);
    assert_eq!(delivered(&log), 2, "one delivery per backoff:\n{log}");
    assert_eq!(failures(&env), 1, "the repeat is not written again");
    assert!(log.contains("failures=2"), "{log}");

    daemon.signal("USR1");
    let log = daemon.wait_for_log(" status ", wait);
    let status = log
        .lines()
        .find(|l| l.contains(" status "))
        .expect("status");
    assert!(status.contains("repeated_failures=1"), "{status}");

    // A profile change that alters the configuration is delivered at once (the doubled
    // backoff of 6 s notwithstanding), and its failure is new, so it is written.
    env.ok(&[
        "profile",
        "set",
        "default",
        "--passphrase",
        "another-passphrase",
    ]);
    let log = daemon.wait_for_lines("device could not join", 2, wait);
    assert_eq!(delivered(&log), 3, "{log}");
    assert_eq!(failures(&env), 2);

    agent.kill().expect("stop the agent");
    let _ = agent.wait();
    assert_eq!(daemon.terminate(), Some(130));
}
