//! The daemon's log is read by people (issue 11, friction 2): a device the registry knows
//! by a label is named by it beside its key hash, and a log that is not a terminal carries
//! no ANSI colour. The audit log names the profile a device was actually sent (friction 3).

mod e2e_support;

use std::time::Duration;

use e2e_support::{Env, UdpFleet, dpp_uri};
use zerotouch_proto::SuiteId;

const WAIT: Duration = Duration::from_secs(30);

/// The lines of `log` containing `needle`.
fn lines<'a>(log: &'a str, needle: &str) -> Vec<&'a str> {
    log.lines().filter(|line| line.contains(needle)).collect()
}

#[test]
fn daemon_log_lines_name_devices_by_label_and_carry_no_colour_into_a_file() {
    let env = Env::new();
    env.init_fleet();
    let mut identities = UdpFleet::identities(2, 313, SuiteId::Ed25519);
    let unlabelled = identities.pop().expect("two");
    let labelled = identities.pop().expect("two");
    let label = "door-17";
    env.ok(&[
        "allow",
        "add",
        &dpp_uri(&labelled, UdpFleet::addr_of(&labelled)),
        "--label",
        label,
    ]);
    env.ok(&[
        "allow",
        "add",
        &dpp_uri(&unlabelled, UdpFleet::addr_of(&unlabelled)),
    ]);
    let labelled_key = labelled.public_key().key_hash().to_string();
    let unlabelled_key = unlabelled.public_key().key_hash().to_string();

    let mut daemon = env.start_daemon("daemon");
    let fleet = UdpFleet::start(env.group, vec![labelled, unlabelled], 314);
    fleet.wait_for("both devices", WAIT, |n| n == 2);
    let log = daemon.wait_for_lines("device joined its network", 2, WAIT);
    for needle in ["device authenticated", "device joined its network"] {
        let found = lines(&log, needle);
        let with_key: Vec<_> = found.iter().filter(|l| l.contains(&labelled_key)).collect();
        assert_eq!(with_key.len(), 1, "{needle}:\n{log}");
        assert!(
            with_key[0].contains(&format!("label=\"{label}\"")),
            "no label beside the key: {}",
            with_key[0]
        );
        let without: Vec<_> = found
            .iter()
            .filter(|l| l.contains(&unlabelled_key))
            .collect();
        assert_eq!(without.len(), 1, "{needle}:\n{log}");
        assert!(!without[0].contains("label="), "{}", without[0]);
    }
    drop(fleet);

    // A revocation names the device too (by the label it had).
    env.ok(&["allow", "revoke", label]);
    let log = daemon.wait_for_log("revoked: aborting its sessions", WAIT);
    let line = lines(&log, "revoked: aborting its sessions")[0];
    assert!(line.contains(&format!("label=\"{label}\"")), "{line}");
    assert_eq!(daemon.terminate(), Some(130));

    let raw = daemon.log_text();
    assert!(
        !raw.contains('\u{1b}'),
        "colour codes in a log file:\n{raw:?}"
    );

    // `zerotouch log` names the profile each device was actually sent, and its label then.
    let audit = env.ok(&["log"]);
    let delivered = lines(&audit, "config-delivered");
    assert_eq!(delivered.len(), 2, "{audit}");
    assert!(
        delivered.iter().all(|l| l.contains("profile=default")),
        "{audit}"
    );
    assert!(delivered.iter().any(|l| l.contains(label)), "{audit}");
    assert!(!audit.contains("null"), "{audit}");
}
