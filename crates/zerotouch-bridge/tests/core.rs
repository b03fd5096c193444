//! `BridgeCore` driven as the firmware drives it: host frames in, radio commands out, radio
//! events in, host frames out; bounded queues with drops counted by cause; the peer table.

use zerotouch_bridge::frame::{FrameDecoder, MAX_WIRE_LEN};
use zerotouch_bridge::message::{FirmwareVersion, HelloReason};
use zerotouch_bridge::{
    BROADCAST, BridgeConfig, BridgeCore, BridgeMsg, ErrorCode, HostMsg, RadioCommand, RadioEvent,
    TxOutcome,
};

const BRIDGE_MAC: [u8; 6] = [0x34, 0x85, 0x18, 1, 2, 3];

fn config() -> BridgeConfig {
    BridgeConfig {
        mac: BRIDGE_MAC,
        firmware: FirmwareVersion {
            major: 0,
            minor: 1,
            patch: 0,
        },
        channel: 1,
    }
}

fn peer(n: u8) -> [u8; 6] {
    [2, 0, 0, 0, 0, n]
}

fn host_frame(msg: HostMsg<'_>) -> Vec<u8> {
    let mut wire = [0u8; MAX_WIRE_LEN];
    let len = msg.to_frame(&mut wire).unwrap();
    wire[..len].to_vec()
}

fn send(seq: u16, dest: [u8; 6], channel: u8) -> Vec<u8> {
    host_frame(HostMsg::Send {
        seq,
        dest,
        channel,
        payload: b"frame",
    })
}

/// What the bridge wrote to the host, as owned messages (via a real decoder).
#[derive(Debug, PartialEq)]
enum Out {
    Hello(HelloReason, u8),
    ChannelSet(u8, Option<ErrorCode>),
    TxStatus(u16, TxOutcome),
    Received(Vec<u8>),
    Stats(zerotouch_bridge::Stats),
    Error(ErrorCode),
}

fn drain_host<const T: usize, const H: usize, const P: usize>(
    core: &mut BridgeCore<T, H, P>,
) -> Vec<Out> {
    let mut decoder: FrameDecoder = FrameDecoder::new();
    let mut out = Vec::new();
    let mut wire = [0u8; MAX_WIRE_LEN];
    while let Some(len) = core.poll_host(&mut wire) {
        for &byte in &wire[..len] {
            if let Some(result) = decoder.push(byte) {
                let msg = BridgeMsg::parse(result.unwrap()).unwrap();
                out.push(match msg {
                    BridgeMsg::Hello(h) => Out::Hello(h.reason, h.channel),
                    BridgeMsg::ChannelSet { channel, error } => Out::ChannelSet(channel, error),
                    BridgeMsg::TxStatus { seq, outcome } => Out::TxStatus(seq, outcome),
                    BridgeMsg::Received { payload, .. } => Out::Received(payload.to_vec()),
                    BridgeMsg::Stats(stats) => Out::Stats(stats),
                    BridgeMsg::Error { code } => Out::Error(code),
                });
            }
        }
    }
    out
}

fn drain_radio<const T: usize, const H: usize, const P: usize>(
    core: &mut BridgeCore<T, H, P>,
) -> Vec<RadioCommand> {
    std::iter::from_fn(|| core.poll_radio()).collect()
}

fn rx(payload: &[u8]) -> RadioEvent<'_> {
    RadioEvent::Received {
        src: peer(9),
        dst: BRIDGE_MAC,
        channel: 1,
        rssi: -50,
        rx_time_us: 10,
        payload,
    }
}

#[test]
fn boots_with_a_hello_and_the_broadcast_peer_then_relays_both_ways() {
    let mut core: BridgeCore = BridgeCore::new(config());
    assert_eq!(drain_host(&mut core), [Out::Hello(HelloReason::Boot, 1)]);
    assert_eq!(drain_radio(&mut core), [RadioCommand::AddPeer(BROADCAST)]);

    core.handle_host_bytes(&send(1, BROADCAST, 1));
    let commands = drain_radio(&mut core);
    assert!(
        matches!(&commands[..], [RadioCommand::Send { dest, payload }] if *dest == BROADCAST && payload == b"frame"),
        "{commands:?}"
    );
    core.handle_radio(RadioEvent::SendDone(TxOutcome::Delivered));
    core.handle_radio(rx(b"hello"));
    assert_eq!(
        drain_host(&mut core),
        [
            Out::TxStatus(1, TxOutcome::Delivered),
            Out::Received(b"hello".to_vec())
        ]
    );

    core.handle_host_bytes(&host_frame(HostMsg::GetHello));
    core.handle_host_bytes(&host_frame(HostMsg::GetStats));
    let out = drain_host(&mut core);
    assert_eq!(out[0], Out::Hello(HelloReason::Requested, 1));
    let Out::Stats(stats) = &out[1] else {
        panic!("{out:?}")
    };
    assert_eq!(
        (stats.tx_frames, stats.tx_delivered, stats.rx_frames),
        (1, 1, 1)
    );
}

#[test]
fn one_radio_operation_at_a_time_and_unacked_unicast_is_reported() {
    let mut core: BridgeCore = BridgeCore::new(config());
    drain_radio(&mut core);
    let mut bytes = send(1, peer(1), 1);
    bytes.extend(send(2, peer(1), 1));
    core.handle_host_bytes(&bytes);
    let first = drain_radio(&mut core);
    assert_eq!(first.len(), 2, "add the peer, then one send: {first:?}");
    assert_eq!(first[0], RadioCommand::AddPeer(peer(1)));
    assert!(drain_radio(&mut core).is_empty(), "waits for SendDone");
    core.handle_radio(RadioEvent::SendDone(TxOutcome::NotAcked));
    assert_eq!(drain_radio(&mut core).len(), 1, "peer known: just the send");
    core.handle_radio(RadioEvent::SendDone(TxOutcome::Delivered));
    assert_eq!(
        drain_host(&mut core)[1..],
        [
            Out::TxStatus(1, TxOutcome::NotAcked),
            Out::TxStatus(2, TxOutcome::Delivered)
        ]
    );
    assert_eq!(core.stats().tx_not_acked, 1);
}

#[test]
fn a_send_on_another_channel_retunes_first_and_a_refused_channel_fails_only_that_send() {
    let mut core: BridgeCore = BridgeCore::new(config());
    drain_radio(&mut core);
    drain_host(&mut core);
    let mut bytes = send(1, BROADCAST, 6);
    bytes.extend(send(2, BROADCAST, 6));
    core.handle_host_bytes(&bytes);
    assert_eq!(drain_radio(&mut core), [RadioCommand::SetChannel(6)]);
    core.handle_radio(RadioEvent::ChannelSet(Err(())));
    assert_eq!(
        drain_host(&mut core),
        [
            Out::TxStatus(1, TxOutcome::Failed(ErrorCode::Radio)),
            Out::ChannelSet(1, Some(ErrorCode::Radio))
        ]
    );
    assert_eq!(drain_radio(&mut core), [RadioCommand::SetChannel(6)]);
    core.handle_radio(RadioEvent::ChannelSet(Ok(6)));
    assert!(matches!(
        &drain_radio(&mut core)[..],
        [RadioCommand::Send { .. }]
    ));
    assert_eq!(core.channel(), 6);
    assert_eq!(drain_host(&mut core), [Out::ChannelSet(6, None)]);

    core.handle_host_bytes(&host_frame(HostMsg::SetChannel { channel: 11 }));
    assert!(
        drain_radio(&mut core).is_empty(),
        "a send is still in flight"
    );
    core.handle_radio(RadioEvent::SendDone(TxOutcome::Delivered));
    assert_eq!(drain_radio(&mut core), [RadioCommand::SetChannel(11)]);
}

#[test]
fn a_full_transmit_queue_answers_each_dropped_send_and_counts_it() {
    let mut core: BridgeCore<2, 16, 4> = BridgeCore::new(config());
    drain_radio(&mut core);
    drain_host(&mut core);
    let bytes: Vec<u8> = (0..5).flat_map(|seq| send(seq, BROADCAST, 1)).collect();
    core.handle_host_bytes(&bytes);
    assert_eq!(
        drain_host(&mut core),
        [2, 3, 4].map(|seq| Out::TxStatus(seq, TxOutcome::Failed(ErrorCode::TxQueueFull)))
    );
    assert_eq!(core.stats().drop_tx_queue_full, 3);
}

#[test]
fn a_host_that_does_not_read_loses_received_frames_not_answers() {
    let mut core: BridgeCore<8, 8, 4> = BridgeCore::new(config());
    drain_radio(&mut core);
    for _ in 0..20 {
        core.handle_radio(rx(b"x"));
    }
    core.handle_radio(RadioEvent::Overflow { dropped: 5 });
    core.handle_host_bytes(&host_frame(HostMsg::GetStats));
    let out = drain_host(&mut core);
    // Hello + 3 frames fill the 8 slots to the reserve of 4; the answer still fits.
    let received = out.iter().filter(|o| matches!(o, Out::Received(_))).count();
    assert_eq!(received, 3);
    let Some(Out::Stats(stats)) = out.last() else {
        panic!("{out:?}")
    };
    assert_eq!(stats.rx_frames, 20);
    assert_eq!(stats.drop_host_queue_full, 17);
    assert_eq!(stats.drop_radio_overflow, 5);
}

#[test]
fn oversized_radio_frames_are_counted_and_dropped() {
    let mut core: BridgeCore = BridgeCore::new(config());
    drain_host(&mut core);
    core.handle_radio(rx(&[0u8; 251]));
    assert!(drain_host(&mut core).is_empty());
    assert_eq!(core.stats().rx_too_long, 1);
}

#[test]
fn the_least_recently_used_unicast_peer_is_evicted_and_broadcast_kept() {
    let mut core: BridgeCore<8, 16, 2> = BridgeCore::new(config());
    drain_radio(&mut core);
    let sent = |core: &mut BridgeCore<8, 16, 2>, seq, dest| {
        core.handle_host_bytes(&send(seq, dest, 1));
        let commands = drain_radio(core);
        core.handle_radio(RadioEvent::SendDone(TxOutcome::Delivered));
        commands
    };
    sent(&mut core, 1, peer(1));
    sent(&mut core, 2, peer(2));
    sent(&mut core, 3, peer(1));
    let commands = sent(&mut core, 4, peer(3));
    assert_eq!(commands[0], RadioCommand::RemovePeer(peer(2)));
    assert_eq!(commands[1], RadioCommand::AddPeer(peer(3)));
    assert_eq!(
        sent(&mut core, 5, BROADCAST).len(),
        1,
        "broadcast needs no peer change"
    );
    assert_eq!(core.stats().peer_evictions, 1);
}

#[test]
fn bad_host_input_is_answered_or_counted_and_never_stops_the_core() {
    let mut core: BridgeCore = BridgeCore::new(config());
    drain_radio(&mut core);
    drain_host(&mut core);
    let mut bytes = b"garbage\x00".to_vec();
    // A valid frame of an unknown type and one of another version: answered with Error.
    for message in [[1u8, 0x7f], [2, 0x01]] {
        let mut wire = [0u8; MAX_WIRE_LEN];
        let len = zerotouch_bridge::encode_frame(&message, &mut wire).unwrap();
        bytes.extend(&wire[..len]);
    }
    bytes.extend(send(1, BROADCAST, 1));
    core.handle_host_bytes(&bytes);
    assert_eq!(
        drain_host(&mut core),
        [
            Out::Error(ErrorCode::UnknownType),
            Out::Error(ErrorCode::UnsupportedVersion)
        ]
    );
    assert!(matches!(
        &drain_radio(&mut core)[..],
        [RadioCommand::Send { .. }]
    ));
    let stats = core.stats();
    assert_eq!((stats.host_bad_frames, stats.host_garbage_bytes), (1, 7));
}
