//! A single-radio enrollee (the ESP32-C3) leaves the ESP-NOW channel for the whole of its
//! station join. The core acknowledges the Config before it lets the driver start the join
//! (`ConfigReceived` follows the Ack's transmit), so the configurator stops retransmitting
//! and waits for the join report: joins of 1 s and 10 s are reported as joined, and a 30 s
//! join, cut at the device's 15 s bound, is reported as `timeout`. None of them ends as a
//! configurator-side session timeout.

mod common;

use common::{ACK, DEADLINE_MS, frame_type};
use zerotouch_proto::FailureReason;
use zerotouch_sim::{ConfiguratorNode, Fleet, FleetRun, Simulator};

/// The firmware's `wifi::JOIN_TIMEOUT`.
const DEVICE_JOIN_TIMEOUT_MS: u64 = 15_000;

fn run_join(seed: u64, join_ms: u64) -> FleetRun {
    let mut run = Fleet::new(seed)
        .devices(1)
        .join_delay_ms(join_ms)
        .off_channel_join(DEVICE_JOIN_TIMEOUT_MS)
        .build()
        .expect("fleet");
    let key = run.keys[0];
    let configurator = run.configurators[0];
    let reported = |sim: &Simulator| {
        sim.node_as::<ConfiguratorNode>(configurator)
            .and_then(|c| c.device(&key))
            .is_some_and(|log| !log.join_reports.is_empty() || !log.session_failures.is_empty())
    };
    assert!(
        run.sim.run_while(DEADLINE_MS, |sim| !reported(sim)),
        "join of {join_ms} ms: neither a report nor a session failure"
    );
    run
}

/// Checks the configurator heard `expected` and the device's radio was away for the join.
fn assert_reported(run: &FleetRun, join_ms: u64, expected: Result<(), FailureReason>) {
    let key = run.keys[0];
    let log = run
        .configurator(0)
        .and_then(|c| c.device(&key))
        .expect("device log");
    assert_eq!(
        log.session_failures,
        vec![],
        "join of {join_ms} ms ended on the configurator's side"
    );
    assert_eq!(log.join_reports.len(), 1, "join of {join_ms} ms");
    assert_eq!(log.join_reports[0].1, expected, "join of {join_ms} ms");
    let delivered = log.delivered[0];
    let device = run.enrollee(0).expect("enrollee").record();
    let (received_at, _) = device.configs_received[0];
    let (joined_at, result) = device.join_results[0];
    assert_eq!(result, expected);
    // The configurator took the Config as delivered while the device was away, long
    // before its join report.
    assert!(
        delivered < joined_at,
        "delivered {delivered} ms, joined {joined_at} ms"
    );
    let away = join_ms.min(DEVICE_JOIN_TIMEOUT_MS);
    assert_eq!(
        joined_at - received_at,
        away,
        "the radio was away for the join"
    );
    // The device's Ack of the Config went on the air as it left the channel (within the
    // channel access time of a few ms), not after the join.
    let device_addr = Fleet::enrollee_addr(0);
    let acked_before_leaving = run.sim.recorder().iter().any(|r| {
        r.frame.src == device_addr
            && frame_type(&r.frame.bytes) == Some(ACK)
            && (received_at..received_at + 5).contains(&(r.frame.start_us / 1000))
    });
    assert!(
        acked_before_leaving,
        "no Ack before the join of {join_ms} ms"
    );
}

#[test]
fn a_one_second_join_off_the_channel_is_reported_and_committed() {
    let mut run = run_join(31, 1_000);
    assert_reported(&run, 1_000, Ok(()));
    let report = run.run(DEADLINE_MS);
    assert_eq!(report.provisioned, 1, "{report}");
}

#[test]
fn a_ten_second_join_off_the_channel_is_reported_and_committed() {
    // 10 s is close to the configurator's full retransmission budget (about 12.6 s): without
    // the Ack before the join, this ended as a configurator-side timeout.
    let mut run = run_join(32, 10_000);
    assert_reported(&run, 10_000, Ok(()));
    let report = run.run(DEADLINE_MS);
    assert_eq!(report.provisioned, 1, "{report}");
}

#[test]
fn a_thirty_second_join_is_cut_at_the_device_bound_and_reported_as_timeout() {
    let run = run_join(33, 30_000);
    assert_reported(&run, 30_000, Err(FailureReason::Timeout));
    let device = run.enrollee(0).expect("enrollee").record();
    assert!(
        device.commit.is_none(),
        "nothing committed after a failed join"
    );
}
