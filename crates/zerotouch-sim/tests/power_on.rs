//! Devices switched on at different times: silent and deaf until power-on, then
//! provisioned, with times counted from their own power-on.

use zerotouch_sim::Fleet;

#[test]
fn devices_powered_on_over_a_window_stay_silent_until_then_and_are_provisioned() {
    let mut run = Fleet::new(40)
        .devices(8)
        .power_on_spread_ms(20_000)
        .build()
        .expect("fleet");
    let report = run.run(600_000);
    assert_eq!(report.provisioned, 8, "{report}");
    let mut distinct_starts = std::collections::BTreeSet::new();
    for index in 0..8 {
        let device = run.enrollee(index).expect("enrollee");
        let on_us = device.record().started_at * 1000;
        distinct_starts.insert(on_us);
        let addr = Fleet::enrollee_addr(index);
        let first = run
            .sim
            .recorder()
            .iter()
            .find(|r| r.frame.src == addr)
            .expect("it announced");
        assert!(
            first.frame.start_us >= on_us,
            "device {index} sent before power-on"
        );
        let commit = device.record().commit.as_ref().expect("commit");
        assert_eq!(
            device.record().time_to_provision(),
            Some(commit.at - device.record().started_at)
        );
    }
    assert!(
        distinct_starts.len() > 4,
        "power-on times are spread: {distinct_starts:?}"
    );
}
