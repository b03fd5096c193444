//! Several configurators: two on different channels, each with half of the allowlist,
//! provision the whole fleet; every device finds the channel of the configurator that
//! knows it.

mod common;

use common::{DEADLINE_MS, assert_no_secret_on_air};
use zerotouch_sim::Fleet;

#[test]
fn two_configurators_with_halves_of_the_allowlist_provision_everyone() {
    let channels = [1u8, 11];
    let mut run = Fleet::new(30)
        .devices(20)
        .configurators_on(&channels)
        .build()
        .expect("fleet");
    let report = run.run(DEADLINE_MS);
    assert_eq!(report.provisioned, 20, "{report}");
    for index in 0..20 {
        // Device i is allowlisted at configurator i mod 2 only.
        let home = index % 2;
        let commit = run
            .enrollee(index)
            .and_then(|d| d.record().commit.clone())
            .expect("commit");
        assert_eq!(
            commit.provisioned.channel, channels[home],
            "device {index} found its channel"
        );
        let log = run
            .configurator(home)
            .and_then(|c| c.device(&run.keys[index]))
            .expect("log");
        assert!(log.joined());
        let other = run.configurator(1 - home).expect("configurator");
        assert!(
            other.device(&run.keys[index]).is_none(),
            "the other half ignored device {index}"
        );
    }
    assert_no_secret_on_air(&run);
}

#[test]
fn a_configurator_off_the_preferred_channels_is_found() {
    // Channel 9 is none of 1/6/11: the enrollees must hop to it.
    let mut run = Fleet::new(31)
        .devices(4)
        .configurators_on(&[9])
        .build()
        .expect("fleet");
    let report = run.run(DEADLINE_MS);
    assert_eq!(report.provisioned, 4, "{report}");
    for index in 0..4 {
        let commit = run
            .enrollee(index)
            .and_then(|d| d.record().commit.clone())
            .expect("commit");
        assert_eq!(commit.provisioned.channel, 9);
    }
}
