//! Failure reporting: a wrong PSK in the profile yields a "failed: authentication" report,
//! the device announces again with the reason flagged, and once the profile is fixed it is
//! provisioned, with no factory reset.

mod common;

use common::{DEADLINE_MS, wpa2_config};
use zerotouch_proto::enrollee::AttemptFailure;
use zerotouch_proto::{AnnounceMode, FailureReason};
use zerotouch_sim::{ConfiguratorNode, Fleet};

#[test]
fn a_wrong_psk_is_reported_and_fixing_the_profile_provisions_the_device() {
    let mut run = Fleet::new(20)
        .devices(1)
        .network("plant-floor", "the-right-passphrase", 6)
        .build()
        .expect("fleet");
    let key = run.keys[0];
    let configurator = run.configurators[0];
    let bad = wpa2_config("plant-floor", "a-wrong-passphrase");
    run.sim
        .with_node::<ConfiguratorNode, _>(configurator, |c, _| c.set_config(key, bad.clone()))
        .expect("configurator node");

    // 1. The join fails and the configurator hears "failed: authentication".
    let reported = |sim: &zerotouch_sim::Simulator| {
        sim.node_as::<ConfiguratorNode>(configurator)
            .and_then(|c| c.device(&key))
            .is_some_and(|log| !log.join_reports.is_empty())
    };
    assert!(
        run.sim.run_while(DEADLINE_MS, |sim| !reported(sim)),
        "no join report"
    );
    let log = run
        .configurator(0)
        .and_then(|c| c.device(&key))
        .expect("log")
        .clone();
    assert_eq!(log.join_reports[0].1, Err(FailureReason::AuthFailed));
    let device = run.enrollee(0).expect("enrollee");
    assert_eq!(
        device.record().join_results[0].1,
        Err(FailureReason::AuthFailed)
    );
    assert!(
        device.record().commit.is_none(),
        "nothing committed after a failed join"
    );

    // 2. The device announces again, flagging the reason.
    let retried = |sim: &zerotouch_sim::Simulator| {
        sim.node_as::<ConfiguratorNode>(configurator)
            .and_then(|c| c.device(&key))
            .is_some_and(|log| {
                log.announces.iter().any(|(_, mode, reason)| {
                    *mode == AnnounceMode::RetryAfterFailure
                        && *reason == Some(FailureReason::AuthFailed)
                })
            })
    };
    assert!(
        run.sim.run_while(DEADLINE_MS, |sim| !retried(sim)),
        "no retry announcement"
    );
    let device = run.enrollee(0).expect("enrollee");
    assert!(
        device
            .record()
            .attempt_failures
            .iter()
            .any(|(_, f)| *f == AttemptFailure::Join(FailureReason::AuthFailed))
    );

    // 3. The operator fixes the profile; the device is provisioned with the fixed one.
    let good = wpa2_config("plant-floor", "the-right-passphrase");
    run.sim
        .with_node::<ConfiguratorNode, _>(configurator, |c, _| c.set_config(key, good.clone()))
        .expect("configurator node");
    let report = run.run(DEADLINE_MS);
    assert_eq!(report.provisioned, 1, "{report}");
    let commit = run
        .enrollee(0)
        .and_then(|d| d.record().commit.clone())
        .expect("commit");
    assert_eq!(commit.config, good);
    let log = run
        .configurator(0)
        .and_then(|c| c.device(&key))
        .expect("log");
    assert_eq!(log.join_reports.last().map(|(_, r)| *r), Some(Ok(())));
}

#[test]
fn an_unknown_ssid_is_reported_as_ap_not_found() {
    let mut run = Fleet::new(21).devices(1).build().expect("fleet");
    let key = run.keys[0];
    let configurator = run.configurators[0];
    let elsewhere = wpa2_config("some-other-site", "whatever-passphrase");
    run.sim
        .with_node::<ConfiguratorNode, _>(configurator, |c, _| c.set_config(key, elsewhere.clone()))
        .expect("configurator node");
    let reported = |sim: &zerotouch_sim::Simulator| {
        sim.node_as::<ConfiguratorNode>(configurator)
            .and_then(|c| c.device(&key))
            .is_some_and(|log| !log.join_reports.is_empty())
    };
    assert!(run.sim.run_while(DEADLINE_MS, |sim| !reported(sim)));
    let log = run
        .configurator(0)
        .and_then(|c| c.device(&key))
        .expect("log");
    assert_eq!(log.join_reports[0].1, Err(FailureReason::ApNotFound));
}
