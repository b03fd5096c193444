//! The paper's evaluation: a permitted device is provisioned; an unauthorized device hears
//! nothing back, ever; provisioning completes under 0-50 % frame loss with duplication and
//! reordering on.

mod common;

use common::{DEADLINE_MS, assert_no_secret_on_air, frames_to};
use zerotouch_sim::{Fleet, LinkModel};

#[test]
fn a_permitted_device_is_provisioned() {
    let mut run = Fleet::new(1).devices(1).build().expect("fleet");
    let report = run.run(DEADLINE_MS);
    assert_eq!(report.provisioned, 1, "{report}");

    let device = run.enrollee(0).expect("enrollee");
    let commit = device.record().commit.as_ref().expect("committed");
    assert_eq!(
        commit.config, run.config,
        "it committed the configuration it was given"
    );
    // No owner was pinned: trust on first use pins the fleet owner that provisioned it.
    assert!(run.owners.contains(&commit.provisioned.owner));
    assert_eq!(commit.provisioned.channel, 6);
    let log = run
        .configurator(0)
        .and_then(|c| c.device(&run.keys[0]))
        .expect("device log");
    assert!(
        log.joined(),
        "the configurator recorded the successful join"
    );
    assert_no_secret_on_air(&run);
}

#[test]
fn an_unauthorized_device_hears_nothing_back_ever() {
    // Device 2 is not allowlisted; devices 0 and 1 are, so the configurator is busy.
    let mut run = Fleet::new(2)
        .devices(3)
        .allowlisted(2)
        .build()
        .expect("fleet");
    let report = run.run(DEADLINE_MS);
    assert_eq!(report.provisioned, 2, "{report}");
    // Keep it announcing for another ten minutes of virtual time.
    let later = run.sim.now_ms() + 600_000;
    run.sim.run_until(later);

    let stranger = Fleet::enrollee_addr(2);
    assert!(
        frames_to(run.sim.recorder(), stranger).is_empty(),
        "a frame was addressed to it"
    );
    let air = run.sim.air_stats(run.enrollees[2]).expect("stats");
    assert_eq!(air.frames_addressed, 0);
    assert!(
        air.frames_sent > 10,
        "it kept announcing ({} frames)",
        air.frames_sent
    );
    let device = run.enrollee(2).expect("enrollee");
    assert!(device.record().authenticated.is_empty());
    assert!(device.record().configs_received.is_empty());
    assert!(device.record().commit.is_none());
    let configurator = run.configurator(0).expect("configurator");
    assert!(
        configurator.not_allowed() > 0,
        "its announcements reached the configurator"
    );
    assert!(
        configurator.device(&run.keys[2]).is_none(),
        "no per-device state for a stranger"
    );
}

#[test]
fn provisioning_completes_under_loss_with_duplication_and_reordering() {
    for (i, loss) in [0.0, 0.1, 0.3, 0.5].into_iter().enumerate() {
        let link = LinkModel {
            loss,
            duplicate: 0.2,
            reorder: 0.2,
            reorder_max_us: 50_000,
            delay_us: 500,
        };
        let mut run = Fleet::new(10 + i as u64)
            .devices(5)
            .link(link)
            .build()
            .expect("fleet");
        let report = run.run(DEADLINE_MS);
        assert_eq!(report.provisioned, 5, "loss {loss}: {report}");
        assert!(report.sim.duplicated > 0, "loss {loss}: duplication was on");
        for index in 0..5 {
            let commit = run.enrollee(index).and_then(|d| d.record().commit.clone());
            assert_eq!(
                commit.map(|c| c.config),
                Some(run.config.clone()),
                "loss {loss}, device {index}"
            );
        }
        if loss > 0.0 {
            assert!(report.sim.lost > 0);
        }
    }
}

#[test]
fn a_configuration_larger_than_many_frames_arrives_under_loss() {
    // 4 KiB of application settings: about twenty 219-byte fragments per device.
    let mut run = Fleet::new(15)
        .devices(3)
        .settings_bytes(4096)
        .lossy(0.3)
        .build()
        .expect("fleet");
    let report = run.run(DEADLINE_MS);
    assert_eq!(report.provisioned, 3, "{report}");
    assert!(run.config.len() > 4096);
    for index in 0..3 {
        let commit = run.enrollee(index).and_then(|d| d.record().commit.clone());
        assert_eq!(
            commit.map(|c| c.config),
            Some(run.config.clone()),
            "device {index}"
        );
        let air = run.sim.air_stats(run.enrollees[index]).expect("stats");
        assert!(
            air.bytes_addressed > 4096,
            "the configuration crossed the air in fragments"
        );
    }
    assert_no_secret_on_air(&run);
}
