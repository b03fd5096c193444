//! Registry failure modes seen from the CLI: locked, corrupt, wrong secret key.

mod cli_support;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use cli_support::{Env, s};

#[test]
fn locked_registry_is_exit_5_and_then_works() {
    let env = Env::new();
    env.ok(&["fleet", "init"]);
    let devices = env.keygen("keys", 1, "l-");
    let uri = devices[0]["dpp_uri"].as_str().expect("uri");

    // Another process holds the write lock (the sqlite3 shell inside BEGIN EXCLUSIVE).
    let mut holder = Command::new("sqlite3")
        .arg(env.registry())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("sqlite3 (apt-get install sqlite3)");
    let mut stdin = holder.stdin.take().expect("stdin");
    writeln!(stdin, "BEGIN EXCLUSIVE; SELECT 'locked';").expect("write");
    stdin.flush().expect("flush");
    let mut line = String::new();
    BufReader::new(holder.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read");
    assert_eq!(line.trim(), "locked");

    let err = env.fails(&["allow", "add", uri], 5);
    assert!(err.contains("busy"), "{err}");

    writeln!(stdin, "COMMIT;").expect("write");
    drop(stdin);
    holder.wait().expect("sqlite3 exit");
    env.ok(&["allow", "add", uri]);
    assert_eq!(
        env.json(&["allow", "list"]).as_array().map(Vec::len),
        Some(1)
    );
}

#[test]
fn corrupt_registry_is_exit_6_and_left_untouched() {
    let env = Env::new();
    let garbage: Vec<u8> = (0..8192u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(env.registry(), &garbage).expect("write");
    let err = env.fails(&["allow", "list"], 6);
    assert!(
        err.contains(s(&env.registry())) && err.contains("backup"),
        "{err}"
    );
    assert_eq!(std::fs::read(env.registry()).expect("read"), garbage);

    // A registry whose key file went missing is also refused, never silently re-keyed.
    let env = Env::new();
    env.ok(&["fleet", "init"]);
    std::fs::remove_file(env.path("registry.db.key")).expect("rm key");
    let out = env.run(&["fleet", "show"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        !env.path("registry.db.key").exists(),
        "a new key file was created"
    );
}

#[test]
fn wrong_secret_key_is_exit_6() {
    let env = Env::new();
    env.ok(&["fleet", "init"]);
    let out = env
        .cmd()
        .env("ZEROTOUCH_SECRET_KEY", "11".repeat(32))
        .args(["fleet", "show"])
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(6),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The explicit key file flag works as well as the default one.
    let v = env.json(&[
        "--secret-key-file",
        s(&env.path("registry.db.key")),
        "fleet",
        "show",
    ]);
    assert_eq!(
        v["secret_key"].as_str(),
        Some(s(&env.path("registry.db.key")))
    );
}

/// A read-only command with a mistyped `--registry` says there is no registry (exit 3) and
/// creates nothing: no directories, no database, no key file.
#[test]
fn read_only_commands_do_not_create_a_registry() {
    let env = Env::new();
    let missing = env.path("nonexist/sub/reg.db");
    for args in [
        &["allow", "list"][..],
        &["log"][..],
        &["export", "hostapd-psk", "-"][..],
    ] {
        let mut all = vec!["--registry", s(&missing)];
        all.extend_from_slice(args);
        let err = env.fails(&all, 3);
        assert!(err.contains("no registry at"), "{args:?}: {err}");
    }
    assert!(!env.path("nonexist").exists(), "a directory was created");
}
