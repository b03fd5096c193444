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
