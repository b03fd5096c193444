//! The exit-code table of the README and of `zerotouch --help`, one test per row, each a real
//! `zerotouch` process and its real exit code. Rows 5 (locked registry) and 6 (corrupt
//! registry, wrong key) have their tests in `cli_registry.rs`; the missing-key case of row 6
//! is here. The daemon's 130 on SIGINT and SIGTERM is checked on a running daemon.

mod e2e_support;

use std::collections::BTreeSet;
use std::time::Duration;

use e2e_support::Env;

/// The codes of a table whose rows start with `| CODE |` (README) or `  CODE  ` (--help).
fn codes(lines: impl Iterator<Item = String>) -> BTreeSet<u8> {
    lines
        .filter_map(|line| line.split_whitespace().next()?.parse().ok())
        .collect()
}

#[test]
fn readme_table_and_help_list_the_same_codes() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
        .expect("README.md");
    let table = readme
        .split("| exit code | meaning |")
        .nth(1)
        .expect("the README's exit-code table");
    let readme_codes = codes(
        table
            .lines()
            .skip(2)
            .take_while(|line| line.starts_with('|'))
            .map(|line| line.trim_start_matches('|').to_string()),
    );
    let env = Env::new();
    let help = env.ok(&["--help"]);
    let section = help
        .split("Exit codes:")
        .nth(1)
        .expect("exit codes in --help");
    let help_codes = codes(section.lines().map(str::to_string));
    assert_eq!(readme_codes, help_codes, "README vs --help:\n{section}");
    assert_eq!(
        readme_codes,
        BTreeSet::from([0, 1, 2, 3, 4, 5, 6, 7, 130]),
        "every code has its test in this file or in cli_registry.rs"
    );
}

#[test]
fn exit_0_success() {
    let env = Env::new();
    env.ok(&["fleet", "init"]);
    let out = env.run(&["fleet", "show"]);
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn exit_1_failure_on_an_io_error() {
    let env = Env::new();
    std::fs::write(env.path("plain-file"), "not a directory\n").expect("write");
    let registry = env.path("plain-file").join("registry.db");
    let err = env.fails(
        &[
            "--registry",
            registry.to_str().expect("utf-8"),
            "fleet",
            "init",
        ],
        1,
    );
    assert!(err.contains("plain-file"), "names the path: {err}");
}

#[test]
fn exit_2_bad_input() {
    let env = Env::new();
    env.ok(&["fleet", "init"]);
    let err = env.fails(&["allow", "add", "DPP:K:notbase64;;"], 2);
    assert!(err.contains("URI"), "{err}");
}

#[test]
fn exit_3_not_found() {
    let env = Env::new();
    env.ok(&["fleet", "init"]);
    let err = env.fails(&["allow", "revoke", "no-such-label"], 3);
    assert!(err.contains("no-such-label"), "{err}");
}

#[test]
fn exit_4_conflict() {
    let env = Env::new();
    env.ok(&["fleet", "init"]);
    let err = env.fails(&["fleet", "init"], 4);
    assert!(err.contains("already holds fleet"), "{err}");
}

#[test]
fn exit_6_missing_secret_key() {
    let env = Env::new();
    env.ok(&["fleet", "init"]);
    std::fs::remove_file(env.path("registry.db.key")).expect("rm key");
    let err = env.fails(&["fleet", "show"], 6);
    assert!(err.contains("missing") && err.contains("backup"), "{err}");
    assert!(
        !env.path("registry.db.key").exists(),
        "a new key file was created"
    );
}

#[test]
fn exit_7_unreachable_postgres_is_not_busy() {
    let env = Env::new();
    let started = std::time::Instant::now();
    let err = env.fails(
        &["--registry", "postgres://zt@127.0.0.1:1/x", "allow", "list"],
        7,
    );
    assert!(err.contains("unreachable"), "{err}");
    assert!(!err.contains("busy") && !err.contains("lock"), "{err}");
    assert!(err.contains("127.0.0.1:1"), "names the server: {err}");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "a refused connection is reported at once, not after the pool's retries"
    );
}

/// A daemon on a private link, after its "running" line.
fn running_daemon(env: &Env) -> e2e_support::Daemon {
    env.init_fleet();
    let mut daemon = env.start_daemon("daemon");
    daemon.wait_for_log("configurator daemon running", Duration::from_secs(30));
    daemon
}

#[test]
fn exit_130_daemon_sigterm_after_graceful_stop() {
    let env = Env::new();
    let mut daemon = running_daemon(&env);
    daemon.signal("TERM");
    assert_eq!(
        daemon.wait_exit(Duration::from_secs(20)),
        Some(130),
        "{}",
        daemon.log_text()
    );
    assert!(daemon.log_text().contains("configurator daemon stopped"));
}

#[test]
fn exit_130_daemon_sigint_after_graceful_stop() {
    let env = Env::new();
    let mut daemon = running_daemon(&env);
    daemon.signal("INT");
    assert_eq!(
        daemon.wait_exit(Duration::from_secs(20)),
        Some(130),
        "{}",
        daemon.log_text()
    );
    assert!(daemon.log_text().contains("configurator daemon stopped"));
}
