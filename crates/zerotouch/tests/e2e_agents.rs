//! Real processes on the real UDP link: one configurator daemon and four enrollee agents on
//! one registry. All are provisioned; every wpa_supplicant.conf they wrote is accepted by
//! Debian's wpa_supplicant; the NetworkManager keyfile and settings.json are written 0600;
//! a SIGTERM stops the daemon gracefully with exit code 130 (the README's "interrupted").

mod e2e_support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use e2e_support::Env;

/// Starts wpa_supplicant on `conf` (wired driver on `lo`), lets it run briefly and returns
/// its output. A configuration it cannot parse makes it exit at once with a message.
fn run_wpa_supplicant(conf: &Path) -> (Option<i32>, String) {
    let mut child = Command::new("wpa_supplicant")
        .args(["-c", &conf.to_string_lossy(), "-i", "lo", "-D", "wired"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("wpa_supplicant must be installed (Debian package `wpasupplicant`; scripts/test.sh installs it)");
    let deadline = Instant::now() + Duration::from_millis(1500);
    let mut exited = None;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().expect("wait") {
            exited = status.code();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    if exited.is_none() {
        let _ = child.kill();
    }
    let output = child.wait_with_output().expect("wpa_supplicant output");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (exited, text)
}

#[test]
fn daemon_and_agents_provision_each_other_and_wpa_supplicant_accepts_the_configs() {
    let env = Env::new();
    env.init_fleet();
    let devices = env.path("devices");
    env.ok(&[
        "device",
        "keygen",
        "--count",
        "4",
        "--out",
        &devices.to_string_lossy(),
    ]);
    env.ok(&[
        "allow",
        "import",
        &devices.join("manifest.csv").to_string_lossy(),
    ]);
    let mut daemon = env.start_daemon("daemon");

    let nm_dir = env.path("nm");
    std::fs::create_dir(&nm_dir).expect("nm dir");
    // Device 3 already has a hand-written wpa_supplicant.conf: its globals and its own
    // network must survive the provisioning (issue 11 bug 6).
    let user_conf = format!(
        "ctrl_interface=DIR={} GROUP=root\ncountry=DE\n\nnetwork={{\n\tssid=\"home-net\"\n\tkey_mgmt=NONE\n}}\n",
        env.path("ctrl-3").display()
    );
    let user_conf_path = devices.join("dev-0003").join("wpa_supplicant.conf");
    std::fs::write(&user_conf_path, &user_conf).expect("user conf");
    let mut agents = Vec::new();
    for n in 1..=4 {
        let state = devices.join(format!("dev-000{n}"));
        let apply = if n == 4 {
            format!("networkmanager:{}", nm_dir.display())
        } else {
            format!(
                "wpa-supplicant:{}",
                state.join("wpa_supplicant.conf").display()
            )
        };
        let log = std::fs::File::create(env.path(&format!("agent-{n}.log"))).expect("agent log");
        let child = env
            .cmd()
            .args([
                "enrollee",
                "run",
                "--state-dir",
                &state.to_string_lossy(),
                "--link",
                &env.link,
            ])
            .args(["--apply", &apply, "--timeout", "90"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start an agent");
        agents.push((n, state, child));
    }
    for (n, _, child) in &mut agents {
        let status = child.wait().expect("agent exit");
        let log = std::fs::read_to_string(env.path(&format!("agent-{n}.log"))).unwrap_or_default();
        assert!(
            status.success(),
            "agent {n} failed ({status}):\n{log}\ndaemon:\n{}",
            daemon.log_text()
        );
    }

    for (n, state, _) in &agents {
        let settings: serde_json::Value = serde_json::from_slice(
            &std::fs::read(state.join("settings.json")).expect("settings.json"),
        )
        .expect("json");
        assert_eq!(
            settings["mqtt.url"], "mqtts://broker.example:8883",
            "agent {n}"
        );
        let agent_state: serde_json::Value =
            serde_json::from_slice(&std::fs::read(state.join("agent-state.json")).expect("state"))
                .expect("json");
        assert_eq!(agent_state["provisioned"], true);
        assert_eq!(agent_state["last_channel"], 6);
        if *n == 4 {
            continue;
        }
        let conf = state.join("wpa_supplicant.conf");
        let mode = std::fs::metadata(&conf)
            .expect("conf written")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "credentials file is 0600");
        let text = std::fs::read_to_string(&conf).expect("read conf");
        assert!(
            text.contains("ssid=\"plant-floor\"") && text.contains("key_mgmt=WPA-PSK"),
            "{text}"
        );
        assert!(text.contains("scan_freq=2437"), "channel 6 hint: {text}");
        assert!(text.contains("id_str=\"zerotouch\""), "marked: {text}");
        if *n == 3 {
            assert!(
                text.starts_with(&user_conf),
                "globals and the user's network kept:\n{text}"
            );
            assert_eq!(text.matches("network={").count(), 2, "{text}");
            assert_eq!(
                std::fs::read_to_string(state.join("wpa_supplicant.conf.zerotouch-bak"))
                    .expect("backup of the previous file"),
                user_conf
            );
        }
        let (exited, output) = run_wpa_supplicant(&conf);
        assert!(
            !output.contains("Failed to read or parse configuration")
                && !output.contains("failed to parse"),
            "wpa_supplicant rejected {}:\n{output}\n{text}",
            conf.display()
        );
        assert_eq!(
            exited,
            None,
            "wpa_supplicant exited at once on {}:\n{output}",
            conf.display()
        );
    }

    let keyfiles: Vec<_> = std::fs::read_dir(&nm_dir)
        .expect("nm dir")
        .flatten()
        .collect();
    assert_eq!(keyfiles.len(), 1, "one keyfile per network");
    let keyfile = keyfiles[0].path();
    assert!(keyfile.to_string_lossy().ends_with(".nmconnection"));
    assert_eq!(
        std::fs::metadata(&keyfile)
            .expect("stat")
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    let text = std::fs::read_to_string(&keyfile).expect("keyfile");
    assert!(
        text.contains("type=wifi")
            && text.contains("ssid=plant-floor")
            && text.contains("key-mgmt=wpa-psk")
    );

    // Each device has its own PSK.
    let psks: std::collections::BTreeSet<String> = agents[..3]
        .iter()
        .map(|(_, state, _)| {
            let text = std::fs::read_to_string(state.join("wpa_supplicant.conf")).expect("conf");
            text.lines()
                .find(|l| l.trim_start().starts_with("psk="))
                .expect("psk line")
                .to_owned()
        })
        .collect();
    assert_eq!(psks.len(), 3, "per-device PSKs differ");

    let listed: serde_json::Value =
        serde_json::from_str(&env.ok(&["--json", "allow", "list"])).expect("json");
    let text = listed.to_string();
    assert_eq!(
        text.matches("\"provisioned\"").count(),
        4,
        "all four provisioned: {listed}"
    );

    // Reconfigured with the same profile, device 3's file comes out byte for byte the same.
    let conf3 = agents[2].1.join("wpa_supplicant.conf");
    let before = std::fs::read_to_string(&conf3).expect("conf");
    let again = env.run(&[
        "enrollee",
        "run",
        "--state-dir",
        &agents[2].1.to_string_lossy(),
        "--link",
        &env.link,
        "--apply",
        &format!("wpa-supplicant:{}", conf3.display()),
        "--reconfigure",
        "--timeout",
        "60",
    ]);
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(std::fs::read_to_string(&conf3).expect("conf"), before);

    // A provisioned agent started again has nothing to do.
    let again = env.run(&[
        "enrollee",
        "run",
        "--state-dir",
        &agents[0].1.to_string_lossy(),
        "--link",
        &env.link,
        "--timeout",
        "5",
    ]);
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );

    assert_eq!(
        daemon.terminate(),
        Some(130),
        "SIGTERM is a clean stop:\n{}",
        daemon.log_text()
    );
    assert!(daemon.log_text().contains("configurator daemon stopped"));
}
