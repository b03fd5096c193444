//! The monitor link end to end: the real configurator daemon in one network namespace and
//! a real `zerotouch enrollee run` agent in another, both on `--link monitor:...` over a
//! veth pair the test creates (raw radiotap + 802.11 ESP-NOW frames on the wire, BPF
//! filters, no UDP anywhere). The device is provisioned; the daemon's `--pcap` holds the
//! exchange. A veth is no Wi-Fi card, so the links run in raw mode (`?no-nl80211`), and
//! without it the daemon refuses the interface with the fix in the message (exit 2).
//!
//! Needs root and iproute2. Under CI (`CI=true`) their absence fails the test.

mod e2e_support;

use std::process::{Child, Command, Stdio};

use e2e_support::Env;

fn privileged() -> bool {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    let ip = Command::new("ip")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if root && ip {
        return true;
    }
    let in_ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    assert!(
        !in_ci,
        "CI=true but root={root}, iproute2={ip}: this test needs both (apt-get install iproute2, run as root)"
    );
    println!("SKIPPED: needs root and iproute2 (set CI=true to make this a failure)");
    false
}

fn ip(args: &[&str]) {
    let output = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        output.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Two namespaces joined by a veth pair: `zt0` in `a`, `zt1` in `b`; deleted on drop.
struct Veth {
    a: String,
    b: String,
}

impl Veth {
    fn new() -> Self {
        let tag = std::process::id();
        let veth = Veth {
            a: format!("zte-a-{tag}"),
            b: format!("zte-b-{tag}"),
        };
        ip(&["netns", "add", &veth.a]);
        ip(&["netns", "add", &veth.b]);
        ip(&[
            "link", "add", "zt0", "netns", &veth.a, "type", "veth", "peer", "name", "zt1", "netns",
            &veth.b,
        ]);
        ip(&["-n", &veth.a, "link", "set", "zt0", "up"]);
        ip(&["-n", &veth.b, "link", "set", "zt1", "up"]);
        veth
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        for ns in [&self.a, &self.b] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// `zerotouch ARGS` inside network namespace `ns`, with the environment's registry.
fn in_netns(env: &Env, ns: &str, args: &[&str]) -> Command {
    let base = env.cmd();
    let mut cmd = Command::new("ip");
    cmd.env_clear();
    for (key, value) in base.get_envs() {
        if let Some(value) = value {
            cmd.env(key, value);
        }
    }
    cmd.args(["netns", "exec", ns])
        .arg(base.get_program())
        .args(args);
    cmd
}

/// Kills the process on drop (before the namespaces go).
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_daemon_provisions_an_agent_across_a_veth_on_the_monitor_link() {
    if !privileged() {
        return;
    }
    let veth = Veth::new();
    let env = Env::new();
    env.init_fleet();
    let devices = env.path("devices");
    let devices_arg = devices.to_string_lossy().into_owned();
    env.ok(&["device", "keygen", "--count", "1", "--out", &devices_arg]);
    env.ok(&[
        "allow",
        "import",
        &devices.join("manifest.csv").to_string_lossy(),
    ]);

    // Without raw mode a veth is refused: it is no Wi-Fi card.
    let refused = in_netns(
        &env,
        &veth.a,
        &["configurator", "run", "--link", "monitor:zt0"],
    )
    .output()
    .expect("run the daemon");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("not a Wi-Fi interface") && stderr.contains("monitor:zt0?no-nl80211"),
        "{stderr}"
    );

    let capture = env.path("daemon.pcapng");
    let daemon_log = std::fs::File::create(env.path("daemon.log")).expect("log");
    let capture_arg = capture.to_string_lossy().into_owned();
    let daemon = in_netns(
        &env,
        &veth.a,
        &[
            "configurator",
            "run",
            "--link",
            "monitor:zt0?no-nl80211",
            "--channel",
            "6",
            "--pcap",
            &capture_arg,
        ],
    )
    .stdout(Stdio::null())
    .stderr(daemon_log)
    .spawn()
    .expect("start the daemon");
    let _daemon = Killed(daemon);

    let state = devices.join("dev-0001");
    let conf = state.join("wpa_supplicant.conf");
    let apply = format!("wpa-supplicant:{}", conf.display());
    let agent = in_netns(
        &env,
        &veth.b,
        &[
            "enrollee",
            "run",
            "--state-dir",
            &state.to_string_lossy(),
            "--link",
            "monitor:zt1?no-nl80211",
            "--apply",
            &apply,
            "--timeout",
            "90",
        ],
    )
    .output()
    .expect("run the agent");
    let daemon_text = std::fs::read_to_string(env.path("daemon.log")).unwrap_or_default();
    assert!(
        agent.status.success(),
        "agent failed: {}\ndaemon:\n{daemon_text}",
        String::from_utf8_lossy(&agent.stderr)
    );
    let agent_state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(state.join("agent-state.json")).expect("state"))
            .expect("json");
    assert_eq!(agent_state["provisioned"], true);
    assert_eq!(agent_state["last_channel"], 6);
    let text = std::fs::read_to_string(&conf).expect("config written");
    assert!(text.contains("ssid=\"plant-floor\""), "{text}");
    let listed = env.ok(&["allow", "list"]);
    assert!(listed.contains("provisioned"), "{listed}");
    // Section, interface and at least the six frames of one provisioning.
    let captured = std::fs::metadata(&capture).expect("capture").len();
    assert!(captured > 6 * 100, "capture of {captured} bytes");
}
