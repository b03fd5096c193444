//! Runs one simulated fleet and prints its report.
//!
//! ```text
//! cargo run --release -p zerotouch-sim --example fleet -- \
//!     --devices 1000 --loss 0.1 --seed 1 [--allowlisted N] [--suite ed25519|p256|mixed] \
//!     [--configurators 2] [--spread-s 0] [--pause-max-ms N] [--max-sessions N]
//!     [--deadline-s 3600] [--record]
//! ```
//! Configurators sit on channels 6, 1, 11, 3, 9, ... in that order; device i is allowlisted
//! at configurator i mod K. `--spread-s S` switches the devices on at random times within
//! the first S seconds (default: all at once); `--pause-max-ms` caps the enrollees' pause
//! between announcement rounds (default: the protocol's).

use std::process::ExitCode;
use std::time::Instant as WallClock;

use zerotouch_proto::SuiteId;
use zerotouch_sim::{Fleet, SuiteChoice};

const CHANNEL_ORDER: [u8; 13] = [6, 1, 11, 3, 9, 13, 2, 4, 5, 7, 8, 10, 12];

struct Args {
    devices: usize,
    allowlisted: Option<usize>,
    loss: f64,
    seed: u64,
    suite: SuiteChoice,
    configurators: usize,
    deadline_s: u64,
    spread_s: u64,
    pause_max_ms: Option<u64>,
    max_sessions: Option<usize>,
    record: bool,
}

fn parse() -> Result<Args, String> {
    let mut args = Args {
        devices: 1000,
        allowlisted: None,
        loss: 0.0,
        seed: 1,
        suite: SuiteChoice::Only(SuiteId::Ed25519),
        configurators: 1,
        deadline_s: 3600,
        spread_s: 0,
        pause_max_ms: None,
        max_sessions: None,
        record: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--record" {
            args.record = true;
            continue;
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = |what: &str| format!("{flag} {value}: expected {what}");
        match flag.as_str() {
            "--devices" => args.devices = value.parse().map_err(|_| bad("a count"))?,
            "--allowlisted" => args.allowlisted = Some(value.parse().map_err(|_| bad("a count"))?),
            "--loss" => args.loss = value.parse().map_err(|_| bad("a probability 0..1"))?,
            "--seed" => args.seed = value.parse().map_err(|_| bad("an integer"))?,
            "--configurators" => args.configurators = value.parse().map_err(|_| bad("1..=13"))?,
            "--pause-max-ms" => args.pause_max_ms = Some(value.parse().map_err(|_| bad("ms"))?),
            "--max-sessions" => {
                args.max_sessions = Some(value.parse().map_err(|_| bad("a count"))?)
            }
            "--spread-s" => args.spread_s = value.parse().map_err(|_| bad("seconds"))?,
            "--deadline-s" => args.deadline_s = value.parse().map_err(|_| bad("seconds"))?,
            "--suite" => {
                args.suite = match value.as_str() {
                    "mixed" => SuiteChoice::Mixed,
                    name => SuiteChoice::Only(
                        SuiteId::from_name(name).ok_or_else(|| bad("ed25519, p256 or mixed"))?,
                    ),
                }
            }
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    if !(0.0..=1.0).contains(&args.loss) {
        return Err("--loss must be within 0..1".into());
    }
    if !(1..=13).contains(&args.configurators) {
        return Err("--configurators must be 1..=13".into());
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("fleet: {message}");
            return ExitCode::from(2);
        }
    };
    let mut fleet = Fleet::new(args.seed)
        .devices(args.devices)
        .suite(args.suite)
        .lossy(args.loss)
        .record_frames(args.record)
        .power_on_spread_ms(args.spread_s * 1000)
        .configurators_on(&CHANNEL_ORDER[..args.configurators]);
    if let Some(pause_max) = args.pause_max_ms {
        let mut timing = zerotouch_sim::fleet::default_timing();
        timing.round_pause_max_ms = pause_max;
        timing.round_pause_initial_ms = timing.round_pause_initial_ms.min(pause_max);
        fleet = fleet.enrollee_timing(timing);
    }
    if let Some(max_sessions) = args.max_sessions {
        let mut limits = zerotouch_sim::fleet::default_limits();
        limits.max_sessions = max_sessions;
        fleet = fleet.limits(limits);
    }
    if let Some(m) = args.allowlisted {
        fleet = fleet.allowlisted(m);
    }
    let started = WallClock::now();
    let mut run = match fleet.build() {
        Ok(run) => run,
        Err(e) => {
            eprintln!("fleet: {e}");
            return ExitCode::FAILURE;
        }
    };
    let built = started.elapsed();
    run.sim.set_progress(
        10_000,
        Box::new(|p| {
            eprintln!(
                "  t={:>6.1} s  provisioned {:>6}  frames {:>9}",
                p.now_ms as f64 / 1000.0,
                p.finished,
                p.frames_on_air
            )
        }),
    );
    let report = run.run(args.deadline_s * 1000);
    let total = started.elapsed();
    print!("{report}");
    for index in 0..run.configurators.len() {
        if let Some(c) = run.configurator(index) {
            println!(
                "configurator {index}: peak sessions {}, {:?}",
                c.peak_sessions(),
                c.stats()
            );
        }
    }
    println!(
        "wall time: {:.2} s ({:.2} s building keys and nodes, {:.2} s simulating)",
        total.as_secs_f64(),
        built.as_secs_f64(),
        (total - built).as_secs_f64()
    );
    if report.provisioned == report.allowlisted && report.wrongly_provisioned == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
