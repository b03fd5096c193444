//! The daemon's signals, on a real daemon process: SIGHUP re-reads the config file (its
//! `log_level` takes effect at once) and the allowlist, logs "reloaded" and keeps running;
//! an invalid config file on SIGHUP keeps the running settings; SIGUSR1 logs a status line;
//! SIGTERM then stops it with the documented exit code 130. Every step waits on a log line.

mod e2e_support;

use std::process::Stdio;
use std::time::Duration;

use e2e_support::{Daemon, Env};

const WAIT: Duration = Duration::from_secs(30);

/// A daemon on `env`'s link that reads `config.toml` and takes its level from it (no
/// `RUST_LOG`).
fn start_with_config(env: &Env) -> Daemon {
    let log_path = env.path("daemon.log");
    let log = std::fs::File::create(&log_path).expect("daemon log");
    let child = env
        .cmd()
        .env_remove("RUST_LOG")
        .args(["--config", path_str(&env.path("config.toml"))])
        .args(["configurator", "run", "--link", &env.link])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start the daemon");
    Daemon::from_child(child, log_path)
}

fn path_str(path: &std::path::Path) -> &str {
    path.to_str().expect("utf-8 path")
}

#[test]
fn sighup_reloads_sigusr1_reports_sigterm_stops_with_130() {
    let env = Env::new();
    env.init_fleet();
    std::fs::write(env.path("config.toml"), "log_level = \"info\"\n").expect("config");
    let mut daemon = start_with_config(&env);
    daemon.wait_for_log("configurator daemon running", WAIT);
    let before = daemon.log_text();
    assert!(!before.contains("DEBUG"), "info level at first:\n{before}");

    // SIGHUP: the new level applies, the allowlist is re-read, it keeps running.
    std::fs::write(env.path("config.toml"), "log_level = \"debug\"\n").expect("config");
    daemon.signal("HUP");
    let log = daemon.wait_for_log(" reloaded config=", WAIT);
    let line = log
        .lines()
        .find(|l| l.contains(" reloaded config="))
        .expect("line");
    assert!(
        line.contains("log_level=debug") && line.contains("config file"),
        "{line}"
    );
    assert!(daemon.is_running(), "SIGHUP must not stop the daemon");

    // A broken config file on SIGHUP: a warning, the running settings stay.
    std::fs::write(env.path("config.toml"), "log_level = \n").expect("config");
    daemon.signal("HUP");
    let log = daemon.wait_for_log("config file not reloaded", WAIT);
    assert!(log.contains("config.toml"), "names the file:\n{log}");
    assert!(daemon.is_running());

    // SIGUSR1: a status line, still running.
    daemon.signal("USR1");
    let log = daemon.wait_for_log(" status ", WAIT);
    let line = log.lines().find(|l| l.contains(" status ")).expect("line");
    assert!(
        line.contains("sessions=") && line.contains("joined="),
        "{line}"
    );
    assert!(daemon.is_running(), "SIGUSR1 must not stop the daemon");

    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(WAIT), Some(130), "{}", daemon.log_text());
    assert!(daemon.log_text().contains("configurator daemon stopped"));
}

#[test]
fn sighup_does_not_change_a_level_set_by_rust_log() {
    let env = Env::new();
    env.init_fleet();
    std::fs::write(env.path("config.toml"), "log_level = \"debug\"\n").expect("config");
    let log_path = env.path("daemon.log");
    let log = std::fs::File::create(&log_path).expect("daemon log");
    let child = env
        .cmd()
        .args(["--config", path_str(&env.path("config.toml"))])
        .args(["configurator", "run", "--link", &env.link])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start the daemon");
    let mut daemon = Daemon::from_child(child, log_path);
    daemon.wait_for_log("configurator daemon running", WAIT);
    daemon.signal("HUP");
    let log = daemon.wait_for_log(" reloaded config=", WAIT);
    let line = log
        .lines()
        .find(|l| l.contains(" reloaded config="))
        .expect("line");
    assert!(
        line.contains("log_level=info") && line.contains("RUST_LOG"),
        "RUST_LOG wins over the file: {line}"
    );
    assert_eq!(daemon.terminate(), Some(130));
}
