//! The simulator's benchmarks (figures for BENCHMARKS.md), in release mode:
//!
//! ```text
//! cargo run --release -p zerotouch-sim --example bench            # all three
//! cargo run --release -p zerotouch-sim --example bench -- session  # (a) only
//! cargo run --release -p zerotouch-sim --example bench -- makespan # (b) only
//! cargo run --release -p zerotouch-sim --example bench -- scale    # (c) only
//! ```
//! (a) frames and bytes on air for one provisioning with a single WPA2-PSK network and no
//!     loss, from the announcement that starts the session to the join report (and to the
//!     final acknowledgement), per suite;
//! (b) virtual time to provision 1,000 devices with one configurator at 10 % loss, against
//!     the airtime lower bound of the same frames;
//! (c) wall time to simulate 10,000 devices.

use std::time::Instant as WallClock;

use zerotouch_proto::{Addr, SuiteId};
use zerotouch_sim::{Fleet, FleetReport, RadioConfig, Recorded, SuiteChoice};

const ANNOUNCE: u8 = 1;
const CHALLENGE: u8 = 2;
const DATA: u8 = 4;

fn frame_type(bytes: &[u8]) -> Option<u8> {
    (bytes.len() >= 4 && bytes[0] == 0x5a).then(|| bytes[2])
}

/// The frames of the successful session of `device`: from its last announcement before
/// the first challenge addressed to it, to the end.
fn session_frames(recorded: &[Recorded], device: Addr) -> Vec<&Recorded> {
    let involved: Vec<&Recorded> = recorded
        .iter()
        .filter(|r| r.frame.src == device || r.frame.dst == device)
        .collect();
    let Some(challenge) = involved
        .iter()
        .position(|r| frame_type(&r.frame.bytes) == Some(CHALLENGE))
    else {
        return Vec::new();
    };
    let start = involved[..challenge]
        .iter()
        .rposition(|r| frame_type(&r.frame.bytes) == Some(ANNOUNCE))
        .unwrap_or(challenge);
    involved[start..].to_vec()
}

struct SessionCost {
    frames_to_report: usize,
    bytes_to_report: usize,
    frames_total: usize,
    bytes_total: usize,
    channel_time_us: u64,
    discovery_announcements: usize,
}

fn one_session(suite: SuiteId) -> Option<SessionCost> {
    let mut run = Fleet::new(1)
        .devices(1)
        .suite(SuiteChoice::Only(suite))
        .build()
        .ok()?;
    let report = run.run(600_000);
    if report.provisioned != 1 {
        return None;
    }
    let device = Fleet::enrollee_addr(0);
    let radio = RadioConfig::default();
    let frames = session_frames(run.sim.recorder(), device);
    // The join report is the last Data frame the device sends.
    let report_at = frames
        .iter()
        .rposition(|r| r.frame.src == device && frame_type(&r.frame.bytes) == Some(DATA))?;
    let to_report = &frames[..=report_at];
    let all_announcements = run
        .sim
        .recorder()
        .iter()
        .filter(|r| r.frame.src == device && frame_type(&r.frame.bytes) == Some(ANNOUNCE))
        .count();
    Some(SessionCost {
        frames_to_report: to_report.len(),
        bytes_to_report: to_report.iter().map(|r| r.frame.bytes.len()).sum(),
        frames_total: frames.len(),
        bytes_total: frames.iter().map(|r| r.frame.bytes.len()).sum(),
        channel_time_us: frames
            .iter()
            .map(|r| radio.channel_time_us(r.frame.bytes.len(), r.frame.dst))
            .sum(),
        discovery_announcements: all_announcements.saturating_sub(1),
    })
}

fn bench_session() -> Option<u64> {
    println!("(a) one provisioning, one WPA2-PSK network, no loss");
    let mut lossless_channel_time = None;
    for suite in SuiteId::ALL {
        match one_session(suite) {
            Some(cost) => {
                println!(
                    "    {:<8} announcement..join report: {} frames, {} bytes; ..final ack: {} frames, {} bytes; \
                     {:.2} ms of channel time; {} earlier announcements while hopping",
                    suite.name(),
                    cost.frames_to_report,
                    cost.bytes_to_report,
                    cost.frames_total,
                    cost.bytes_total,
                    cost.channel_time_us as f64 / 1000.0,
                    cost.discovery_announcements
                );
                if suite == SuiteId::Ed25519 {
                    lossless_channel_time = Some(cost.channel_time_us);
                }
            }
            None => println!("    {:<8} did not complete", suite.name()),
        }
    }
    lossless_channel_time
}

fn bench_makespan(session_channel_time_us: Option<u64>) {
    let devices = 1000;
    for spread_s in [0u64, 60] {
        println!(
            "(b) {devices} devices, one configurator (channel 6), 10 % loss (+5 % duplication, \
             5 % reordering), switched on {}",
            if spread_s == 0 {
                "all at t=0".to_owned()
            } else {
                format!("over {spread_s} s")
            }
        );
        let started = WallClock::now();
        let Ok(mut run) = Fleet::new(1)
            .devices(devices)
            .lossy(0.1)
            .power_on_spread_ms(spread_s * 1000)
            .record_frames(false)
            .build()
        else {
            println!("    fleet setup failed");
            return;
        };
        let report = run.run(24 * 3600 * 1000);
        let wall = started.elapsed();
        print_summary(&report);
        let channel = &report.sim.channels[6];
        let makespan_ms = report.last_provisioned_ms.unwrap_or(0);
        println!(
            "    all provisioned {:.2} s after the first power-on; channel 6 busy {:.2} s in total \
             ({} frames incl. announcements and retransmissions)",
            makespan_ms as f64 / 1000.0,
            channel.busy_us as f64 / 1e6,
            channel.frames
        );
        if let Some(per_session) = session_channel_time_us {
            let bound_ms = per_session * devices as u64 / 1000;
            println!(
                "    airtime lower bound ({devices} lossless sessions back to back): {:.2} s -> \
                 makespan is {:.1}x it; {:.1} devices/s",
                bound_ms as f64 / 1000.0,
                makespan_ms as f64 / bound_ms.max(1) as f64,
                devices as f64 * 1000.0 / makespan_ms.max(1) as f64
            );
        }
        println!("    wall time {:.2} s", wall.as_secs_f64());
    }
}

fn print_summary(report: &FleetReport) {
    for line in report.to_string().lines() {
        println!("    {line}");
    }
}

fn bench_scale() {
    for (configurators, loss) in [
        (&[6u8][..], 0.0),
        (&[6u8][..], 0.1),
        (&[6u8, 1, 11][..], 0.1),
    ] {
        println!(
            "(c) 10000 devices, {} configurator(s) on {:?}, loss {:.0} %",
            configurators.len(),
            configurators,
            loss * 100.0
        );
        let started = WallClock::now();
        let Ok(mut run) = Fleet::new(3)
            .devices(10_000)
            .configurators_on(configurators)
            .lossy(loss)
            .record_frames(false)
            .build()
        else {
            println!("    fleet setup failed");
            continue;
        };
        let built = started.elapsed();
        let report = run.run(24 * 3600 * 1000);
        let total = started.elapsed();
        print_summary(&report);
        println!(
            "    wall time {:.2} s ({:.2} s keys and nodes, {:.2} s simulation)",
            total.as_secs_f64(),
            built.as_secs_f64(),
            (total - built).as_secs_f64()
        );
    }
}

fn main() {
    let which: Vec<String> = std::env::args().skip(1).collect();
    let wants = |name: &str| which.is_empty() || which.iter().any(|w| w == name);
    let mut per_session = None;
    if wants("session") || wants("makespan") {
        per_session = bench_session();
    }
    if wants("makespan") {
        bench_makespan(per_session);
    }
    if wants("scale") {
        bench_scale();
    }
}
