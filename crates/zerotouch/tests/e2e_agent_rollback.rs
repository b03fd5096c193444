//! Issue 7 A6: the agent rolls back on every path. A configuration arrives and is written,
//! and while the join check runs the attempt ends without a commit: the configurator aborts
//! it (the device was revoked), the agent gets SIGTERM or SIGINT, or its --timeout expires.
//! Each time the apply target is byte-identical to what it held before, settings.json is gone
//! again, and agent-state.json says not provisioned.
//!
//! The join check signals that it runs (it creates `check-started`), then blocks reading a
//! FIFO nobody writes: the test synchronises on files and log lines, never on sleeps. Given as
//! a script file, the check runs in a child of the agent's `sh -c`: the agent kills the whole
//! process group, so the script is gone as well once the agent restored the files.

mod e2e_support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use e2e_support::{Daemon, Env};

/// What the device had before zerotouch came: a hand-written wpa_supplicant.conf.
const ORIGINAL: &str = "ctrl_interface=DIR=/run/wpa_supplicant GROUP=netdev\ncountry=DE\n\nnetwork={\n\tssid=\"old-network\"\n\tkey_mgmt=NONE\n}\n";

struct Setup {
    env: Env,
    daemon: Daemon,
    state: PathBuf,
    conf: PathBuf,
    started: PathBuf,
}

impl Setup {
    fn new() -> Self {
        let env = Env::new();
        env.init_fleet();
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
        daemon.wait_for_log("configurator daemon running", Duration::from_secs(30));
        let state = devices.join("dev-0001");
        let conf = env.path("wpa_supplicant.conf");
        std::fs::write(&conf, ORIGINAL).expect("original conf");
        let started = env.path("check-started");
        Self {
            env,
            daemon,
            state,
            conf,
            started,
        }
    }

    /// Starts the agent with the blocking join check and `extra` flags.
    fn start_agent(&self, extra: &[&str]) -> Child {
        let fifo = self.env.path("release.fifo");
        let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
        assert!(made.success(), "mkfifo");
        let check = format!(
            "exec:: > '{}'; read line < '{}'",
            self.started.display(),
            fifo.display()
        );
        self.spawn_agent(&check, extra)
    }

    /// Starts the agent with a join check script (a file, so `sh -c` forks for it) that
    /// writes its pid to `check-pid`, then blocks.
    fn start_agent_with_script(&self, extra: &[&str]) -> Child {
        let fifo = self.env.path("release.fifo");
        let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
        assert!(made.success(), "mkfifo");
        let script = self.env.path("join-check.sh");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\necho $$ > '{pid}.tmp' && mv '{pid}.tmp' '{pid}'\n: > '{started}'\nread line < '{fifo}'\n",
                pid = self.env.path("check-pid").display(),
                started = self.started.display(),
                fifo = fifo.display()
            ),
        )
        .expect("script");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        self.spawn_agent(&format!("exec:{}", script.display()), extra)
    }

    fn spawn_agent(&self, check: &str, extra: &[&str]) -> Child {
        self.env
            .cmd()
            .args(["enrollee", "run", "--state-dir"])
            .arg(&self.state)
            .args(["--link", &self.env.link])
            .args([
                "--apply",
                &format!("wpa-supplicant:{}", self.conf.display()),
            ])
            .args(["--join-check", check])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.agent_log()).expect("agent log"))
            .spawn()
            .expect("start the agent")
    }

    fn agent_log(&self) -> PathBuf {
        self.env.path("agent.log")
    }

    fn agent_text(&self) -> String {
        std::fs::read_to_string(self.agent_log()).unwrap_or_default()
    }

    /// Waits until the join check runs; by then the configuration is written.
    fn wait_for_join_check(&self, agent: &mut Child) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.started.exists() {
            assert!(
                agent.try_wait().expect("agent").is_none(),
                "the agent exited before its join check ran:\n{}",
                self.agent_text()
            );
            assert!(
                Instant::now() < deadline,
                "the join check did not start:\n{}\ndaemon:\n{}",
                self.agent_text(),
                self.daemon.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let written = std::fs::read_to_string(&self.conf).expect("conf");
        assert!(
            written.contains("plant-floor"),
            "the configuration is applied while the join check runs:\n{written}"
        );
        assert!(self.state.join("settings.json").exists());
    }

    /// Waits until the agent's log contains `needle`.
    fn wait_for_agent_log(&self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.agent_text().contains(needle) {
            assert!(
                Instant::now() < deadline,
                "the agent did not log {needle:?}:\n{}",
                self.agent_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The files are as before the configuration came, and nothing was committed.
    fn assert_rolled_back(&self) {
        assert_eq!(
            std::fs::read_to_string(&self.conf).expect("conf"),
            ORIGINAL,
            "the apply target is byte-identical to before:\n{}",
            self.agent_text()
        );
        assert!(
            !self.state.join("settings.json").exists(),
            "settings.json did not exist before"
        );
        assert_no_leftovers(self.conf.parent().expect("dir"));
        let agent_state: serde_json::Value = serde_json::from_slice(
            &std::fs::read(self.state.join("agent-state.json")).expect("agent-state.json"),
        )
        .expect("json");
        assert_eq!(agent_state["provisioned"], false, "{agent_state}");
    }
}

/// No backup or temporary file of the target is left beside it.
fn assert_no_leftovers(dir: &Path) {
    let names: Vec<String> = std::fs::read_dir(dir)
        .expect("ls")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("wpa_supplicant.conf") && n != "wpa_supplicant.conf")
        .collect();
    assert!(names.is_empty(), "left behind: {names:?}");
}

fn wait_exit(agent: &mut Child, log: &dyn Fn() -> String) -> Option<i32> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = agent.try_wait().expect("agent") {
            return status.code();
        }
        assert!(
            Instant::now() < deadline,
            "the agent did not exit:\n{}",
            log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_device_revoked_during_its_join_check_restores_its_files() {
    let mut setup = Setup::new();
    let mut agent = setup.start_agent(&["--timeout", "120"]);
    setup.wait_for_join_check(&mut agent);

    setup.env.ok(&["allow", "revoke", "dev-0001"]);
    setup.wait_for_agent_log("previous files restored");
    assert!(
        setup.agent_text().contains("Aborted"),
        "the configurator aborted the attempt:\n{}",
        setup.agent_text()
    );
    setup.assert_rolled_back();

    // Stopped now, it has nothing left to restore and still has not committed.
    let pid = agent.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill")
            .success()
    );
    assert_eq!(wait_exit(&mut agent, &|| setup.agent_text()), Some(130));
    setup.assert_rolled_back();
    assert_eq!(setup.daemon.terminate(), Some(130));
}

#[test]
fn sigterm_during_the_join_check_restores_the_files() {
    let mut setup = Setup::new();
    let mut agent = setup.start_agent(&["--timeout", "120"]);
    setup.wait_for_join_check(&mut agent);

    let pid = agent.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill")
            .success()
    );
    assert_eq!(
        wait_exit(&mut agent, &|| setup.agent_text()),
        Some(130),
        "interrupted:\n{}",
        setup.agent_text()
    );
    assert!(setup.agent_text().contains("previous files restored"));
    setup.assert_rolled_back();
    assert_eq!(setup.daemon.terminate(), Some(130));
}

/// True once process `pid` is gone (or a zombie: killed, not yet reaped by init).
fn process_gone(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

#[test]
fn sigint_during_a_join_check_script_stops_the_script_too() {
    let mut setup = Setup::new();
    let mut agent = setup.start_agent_with_script(&["--timeout", "120"]);
    setup.wait_for_join_check(&mut agent);
    let pid = std::fs::read_to_string(setup.env.path("check-pid")).expect("check pid");
    let pid = pid.trim().to_owned();
    assert!(!process_gone(&pid), "the script runs");

    let agent_pid = agent.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &agent_pid])
            .status()
            .expect("kill")
            .success()
    );
    assert_eq!(wait_exit(&mut agent, &|| setup.agent_text()), Some(130));
    setup.assert_rolled_back();
    // The agent awaited the kill before restoring; the kernel ends the process at once,
    // only its reaping by init may lag.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !process_gone(&pid) {
        assert!(
            Instant::now() < deadline,
            "the join check script {pid} outlived the agent"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(setup.daemon.terminate(), Some(130));
}

#[test]
fn the_timeout_during_the_join_check_restores_the_files() {
    let mut setup = Setup::new();
    // The join check itself may take a minute (--join-timeout 60): the agent's deadline
    // comes first.
    let mut agent = setup.start_agent(&["--timeout", "20"]);
    setup.wait_for_join_check(&mut agent);

    assert_eq!(wait_exit(&mut agent, &|| setup.agent_text()), Some(1));
    let text = setup.agent_text();
    assert!(text.contains("previous files restored"), "{text}");
    let last = text.lines().last().unwrap_or_default();
    assert!(
        last.contains("not provisioned within 20 s") && last.contains("join check"),
        "the error says the join check was still running: {last}"
    );
    setup.assert_rolled_back();
    assert_eq!(setup.daemon.terminate(), Some(130));
}
