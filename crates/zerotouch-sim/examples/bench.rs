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
//! (c) wall time to simulate 10,000 devices;
//! `storm`: the power-on storm goals of issue 7 (1,000 and 10,000 devices at once, 1,000 over
//!     60 s, three configurators on three channels), devices per second;
//! `discovery`: median time to first contact with the configurator on each channel in turn;
//! `attack`: a device targeted by a replaying and relaying attacker, and the configurator's
//!     airtime under a flood of forged Announces of allowlisted keys.
//! `ZT_BENCH_BEACONS=1` runs them with the configurators' presence Beacons on (off by
//! default), for comparison.

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

/// Configurator limits of the benchmarks: the defaults, with Beacons when
/// `ZT_BENCH_BEACONS` is set.
fn bench_limits() -> zerotouch_proto::configurator::ConfiguratorLimits {
    let mut limits = zerotouch_sim::fleet::default_limits();
    if std::env::var_os("ZT_BENCH_BEACONS").is_some() {
        limits.beacon_interval_ms = zerotouch_proto::configurator::BEACON_INTERVAL_MS;
    }
    limits
}

fn storm_line(label: &str, fleet: Fleet, devices: usize) {
    let started = WallClock::now();
    let Ok(mut run) = fleet.limits(bench_limits()).record_frames(false).build() else {
        println!("    {label}: fleet setup failed");
        return;
    };
    let report = run.run(24 * 3600 * 1000);
    let wall = started.elapsed();
    let makespan_ms = report.last_provisioned_ms.unwrap_or(0).max(1);
    println!(
        "    {label}: {}/{} provisioned, last at {:.1} s = {:.1} devices/s; median {:.2} s, p99 {:.2} s; wall {:.1} s",
        report.provisioned,
        devices,
        makespan_ms as f64 / 1000.0,
        devices as f64 * 1000.0 / makespan_ms as f64,
        report.median_ms.unwrap_or(0) as f64 / 1000.0,
        report.p99_ms.unwrap_or(0) as f64 / 1000.0,
        wall.as_secs_f64()
    );
    if std::env::var_os("ZT_BENCH_TIMELINE").is_some() {
        let mut line = String::from("      provisioned per 2 s:");
        for w in 0..(makespan_ms / 2000 + 1) {
            let n = report
                .per_device
                .iter()
                .filter(|d| d.provisioned_at.is_some_and(|t| t / 2000 == w))
                .count();
            line.push_str(&format!(" {n}"));
        }
        println!("{line}");
    }
    let ch6 = &report.sim.channels[6];
    println!(
        "      channel 6: {} frames, busy {:.1} s ({:.0} % of the makespan); {} frames given up on a busy channel (all channels)",
        ch6.frames,
        ch6.busy_us as f64 / 1e6,
        ch6.busy_us as f64 / 10.0 / makespan_ms as f64,
        report.sim.access_dropped
    );
    let stats = run.configurator(0).map(|c| c.stats()).unwrap_or_default();
    println!(
        "      configurator 0: busy {}, throttled {}, rate-limited {}, evicted {}, stale {}, other channel {}, frames sent {}",
        stats.busy,
        stats.throttled,
        stats.rate_limited,
        stats.evicted,
        stats.stale_announces,
        stats.other_channel,
        stats.frames_sent
    );
}

fn bench_storm() {
    println!("(storm) 10 % loss (+5 % duplication, 5 % reordering), Ed25519, seed 1");
    for devices in [1_000usize, 10_000] {
        storm_line(
            &format!("{devices} at once, 1 configurator (ch 6)"),
            Fleet::new(1).devices(devices).lossy(0.1),
            devices,
        );
    }
    storm_line(
        "1000 over 60 s, 1 configurator",
        Fleet::new(1)
            .devices(1_000)
            .lossy(0.1)
            .power_on_spread_ms(60_000),
        1_000,
    );
    storm_line(
        "1000 at once, 3 configurators (ch 1, 6, 11)",
        Fleet::new(1)
            .devices(1_000)
            .lossy(0.1)
            .configurators_on(&[1, 6, 11]),
        1_000,
    );
}

fn bench_discovery() {
    println!(
        "(discovery) 50 devices, no loss, configurator on each channel in turn: time from power-on to the first authenticated Challenge"
    );
    let mut medians = Vec::new();
    for channel in 1u8..=13 {
        let Ok(mut run) = Fleet::new(u64::from(channel))
            .devices(50)
            .configurators_on(&[channel])
            .limits(bench_limits())
            .record_frames(false)
            .build()
        else {
            continue;
        };
        run.run(600_000);
        let mut firsts: Vec<u64> = (0..50)
            .filter_map(|i| run.enrollee(i))
            .filter_map(|e| {
                let r = e.record();
                r.authenticated.first().map(|(t, _)| t - r.started_at)
            })
            .collect();
        firsts.sort_unstable();
        let median = firsts.get(firsts.len() / 2).copied().unwrap_or(0);
        medians.push(median);
        println!(
            "    channel {channel:2}: median {:.2} s, max {:.2} s",
            median as f64 / 1000.0,
            firsts.last().copied().unwrap_or(0) as f64 / 1000.0
        );
    }
    medians.sort_unstable();
    println!(
        "    median over the 13 channels: {:.2} s",
        medians[medians.len() / 2] as f64 / 1000.0
    );
}

fn bench_attack() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    println!("(attack) 20 devices, 10 % loss; a replaying and relaying attacker on device 0");
    for seed in 1..=5u64 {
        let mut times = [0u64; 2];
        let mut injected = 0;
        for (i, attacked) in [false, true].into_iter().enumerate() {
            let Ok(mut run) = Fleet::new(seed)
                .devices(20)
                .lossy(0.1)
                .limits(bench_limits())
                .build()
            else {
                return;
            };
            let count = Arc::new(AtomicU64::new(0));
            if attacked {
                run.sim
                    .set_adversary(Box::new(zerotouch_sim::AnnounceReplayer::new(
                        Fleet::enrollee_addr(0),
                        6,
                        3,
                        count.clone(),
                    )));
            }
            let report = run.run(3_600_000);
            times[i] = report.per_device[0]
                .time_to_provision_ms
                .unwrap_or(u64::MAX);
            injected = count.load(Ordering::Relaxed);
        }
        println!(
            "    seed {seed}: device 0 provisioned after {:.2} s without, {:.2} s with the attacker ({injected} frames injected): {:.2}x",
            times[0] as f64 / 1000.0,
            times[1] as f64 / 1000.0,
            times[1] as f64 / times[0].max(1) as f64
        );
    }
    // A flood of forged Announces of allowlisted keys: what the configurator sends.
    println!(
        "(attack) forged Announces of 20 heard keys, 2,000/s for 10 s, on the configurator's channel"
    );
    let Ok(mut run) = Fleet::new(9).devices(20).limits(bench_limits()).build() else {
        return;
    };
    let run_ms = 10_000u64;
    let mut templates = Vec::new();
    run.sim.run_until(300);
    for r in run.sim.recorder() {
        if frame_type(&r.frame.bytes) == Some(ANNOUNCE) && templates.len() < 20 {
            templates.push(r.frame.bytes.to_vec());
        }
    }
    let configurator_before = run.configurator(0).map(|c| c.configurator().stats());
    for i in 0..(2 * run_ms) {
        let mut bytes = templates[(i as usize) % templates.len().max(1)].clone();
        let p = 32;
        bytes[6 + p] ^= (i as u8) | 1; // another ephemeral key: the signature fails
        bytes[6 + 2 * p + 7] = bytes[6 + 2 * p + 7].wrapping_add(1 + (i % 200) as u8); // a higher counter
        bytes[6 + 2 * p + 8] = 6;
        run.sim.inject(zerotouch_sim::Injection {
            channel: 6,
            src: Addr([6, 6, 0, 0, (i >> 8) as u8, i as u8]),
            dst: Addr::BROADCAST,
            bytes,
            delay_us: i * 500,
        });
    }
    run.sim.run_until(run_ms + 300);
    let report = run.report();
    let after = run.configurator(0).map(|c| c.configurator().stats());
    if let (Some(b), Some(a)) = (configurator_before, after) {
        println!(
            "    configurator: {} forged Announces refused by signature, {} over the verification budget; sent {} bytes in {:.1} s ({:.0} B/s, budget for sends before authentication {} B/s); {} of 20 devices provisioned",
            a.bad_announce_signatures - b.bad_announce_signatures,
            a.verification_throttled - b.verification_throttled,
            a.bytes_sent - b.bytes_sent,
            run_ms as f64 / 1000.0,
            (a.bytes_sent - b.bytes_sent) as f64 * 1000.0 / run_ms as f64,
            zerotouch_proto::configurator::PREAUTH_BYTES_PER_SECOND,
            report.provisioned
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
    if wants("storm") {
        bench_storm();
    }
    if wants("discovery") {
        bench_discovery();
    }
    if wants("attack") {
        bench_attack();
    }
}
