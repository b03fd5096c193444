//! One seed, one run: identical seeds and configurations give identical reports and
//! identical frames on air.

use zerotouch_sim::{Fleet, SuiteChoice};

fn run(seed: u64) -> (zerotouch_sim::FleetReport, Vec<zerotouch_sim::Recorded>) {
    let mut run = Fleet::new(seed)
        .devices(12)
        .allowlisted(10)
        .suite(SuiteChoice::Mixed)
        .lossy(0.2)
        .build()
        .expect("fleet");
    let report = run.run(600_000);
    (report, run.sim.recorder().to_vec())
}

#[test]
fn identical_seeds_give_identical_reports_and_frames() {
    let (first, first_frames) = run(7);
    let (second, second_frames) = run(7);
    assert_eq!(first.provisioned, 10, "{first}");
    assert_eq!(first, second);
    assert_eq!(first_frames, second_frames);
    let (other, _) = run(8);
    assert_ne!(
        first.per_device, other.per_device,
        "another seed is another run"
    );
}

#[test]
fn enrollees_ignoring_broadcasts_changes_nothing_on_air() {
    // On a perfect link no random draw depends on the number of receivers, so the two runs
    // must put exactly the same frames on the air.
    let fleet = Fleet::new(9).devices(6).suite(SuiteChoice::Mixed);
    let mut deaf = fleet.clone().build().expect("fleet");
    let mut hearing = fleet
        .enrollees_hear_broadcasts(true)
        .build()
        .expect("fleet");
    let deaf_report = deaf.run(600_000);
    let hearing_report = hearing.run(600_000);
    assert_eq!(deaf_report.provisioned, 6, "{deaf_report}");
    assert_eq!(deaf.sim.recorder(), hearing.sim.recorder());
    assert_eq!(deaf_report.per_device, hearing_report.per_device);
    // The hearing enrollees did receive each other's announcements, and ignored them (they
    // are neither errors nor meant for them: not counted as dropped either).
    assert!(hearing_report.sim.deliveries > deaf_report.sim.deliveries);
    let dropped = |run: &zerotouch_sim::FleetRun| -> u32 {
        (0..6)
            .filter_map(|i| run.enrollee(i))
            .map(|e| e.stats().frames_dropped)
            .sum()
    };
    assert_eq!(dropped(&hearing), dropped(&deaf));
}
