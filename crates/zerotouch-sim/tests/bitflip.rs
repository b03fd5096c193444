//! A flip of any single bit in any frame of a session never leads to wrong credentials
//! being accepted or to a stuck state: for every bit of every frame of one reference
//! session, a run in which exactly that bit arrives flipped must still end with the device
//! provisioned with the real configuration.
//!
//! Runs are deterministic, so the n-th frame on air in a flipped run is the n-th frame of
//! the reference run until the flip happens.

mod common;

use common::{ANNOUNCE, CHALLENGE, DEADLINE_MS};
use zerotouch_sim::{Adversary, AirFrame, Fleet, FleetRun, Verdict};

const SEED: u64 = 900;

fn fleet() -> FleetRun {
    Fleet::new(SEED).devices(1).build().expect("fleet")
}

/// Flips one bit of the frame with transmission id `target`.
struct BitFlipper {
    target: u64,
    bit: usize,
}

impl Adversary for BitFlipper {
    fn on_air(&mut self, _now_us: u64, frame: &AirFrame) -> Verdict {
        if frame.id != self.target {
            return Verdict::Deliver;
        }
        let mut bytes = frame.bytes.to_vec();
        bytes[self.bit / 8] ^= 0x80 >> (self.bit % 8);
        Verdict::Replace(bytes)
    }
}

/// (transmission id, length) of every frame of the reference session, from the
/// announcement that started it to the last frame.
fn reference_session() -> Vec<(u64, usize)> {
    let mut run = fleet();
    let report = run.run(DEADLINE_MS);
    assert_eq!(report.provisioned, 1, "{report}");
    let frames: Vec<&AirFrame> = run.sim.recorder().iter().map(|r| &r.frame).collect();
    let challenge = frames
        .iter()
        .position(|f| common::frame_type(&f.bytes) == Some(CHALLENGE))
        .expect("a challenge");
    let start = frames[..challenge]
        .iter()
        .rposition(|f| common::frame_type(&f.bytes) == Some(ANNOUNCE))
        .expect("an announcement before it");
    frames[start..]
        .iter()
        .map(|f| (f.id, f.bytes.len()))
        .collect()
}

/// Runs the flips of frames `chunk` and returns the failures.
fn flip_all(frames: &[(u64, usize)]) -> Vec<String> {
    let mut failures = Vec::new();
    for &(target, len) in frames {
        for bit in 0..len * 8 {
            let mut run = fleet();
            run.sim.set_adversary(Box::new(BitFlipper { target, bit }));
            let report = run.run(DEADLINE_MS);
            let record = run.enrollee(0).expect("enrollee").record();
            let wrong_config = record
                .configs_received
                .iter()
                .any(|(_, c)| c != &run.config);
            if report.provisioned != 1 || wrong_config {
                failures.push(format!(
                    "frame {target} bit {bit}: provisioned {}, wrong config accepted {wrong_config}",
                    report.provisioned
                ));
            }
            if let Some(commit) = &record.commit {
                assert_eq!(
                    commit.config, run.config,
                    "frame {target} bit {bit}: wrong config committed"
                );
            }
        }
    }
    failures
}

#[test]
fn every_single_bit_flip_of_a_session_is_survived() {
    let frames = reference_session();
    assert!(frames.len() >= 6, "a whole session: {frames:?}");
    // Two halves on the two cores; each thread builds its own simulations.
    let (left, right) = frames.split_at(frames.len() / 2);
    let failures: Vec<String> = std::thread::scope(|scope| {
        let a = scope.spawn(|| flip_all(left));
        let b = flip_all(right);
        let mut all = a.join().expect("flip thread");
        all.extend(b);
        all
    });
    assert!(
        failures.is_empty(),
        "{} flips broke the session:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
