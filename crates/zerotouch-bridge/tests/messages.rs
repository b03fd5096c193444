//! Every message: golden bytes (the test vectors of BRIDGE.md, computed by an independent
//! Python implementation of CRC-32C and COBS), round trips, and clear errors on bad input.

use zerotouch_bridge::frame::{FrameDecoder, MAX_WIRE_LEN};
use zerotouch_bridge::message::{FirmwareVersion, Hello, HelloReason};
use zerotouch_bridge::{BridgeMsg, ErrorCode, HostMsg, MessageError, Stats, TxOutcome};

const PEER: [u8; 6] = [2, 0, 0, 0, 0, 1];

fn hello() -> Hello {
    Hello {
        protocol_version: 1,
        mac: [0x34, 0x85, 0x18, 1, 2, 3],
        firmware: FirmwareVersion {
            major: 0,
            minor: 1,
            patch: 0,
        },
        max_payload: 250,
        channel: 1,
        reason: HelloReason::Boot,
    }
}

fn counting_stats() -> Stats {
    Stats {
        rx_frames: 1,
        tx_frames: 2,
        tx_delivered: 3,
        tx_not_acked: 4,
        tx_failed: 5,
        drop_host_queue_full: 6,
        drop_radio_overflow: 7,
        drop_tx_queue_full: 8,
        host_bad_frames: 9,
        host_garbage_bytes: 10,
        peer_evictions: 11,
        rx_too_long: 12,
    }
}

fn host_vectors() -> Vec<(HostMsg<'static>, &'static str, &'static str)> {
    vec![
        (HostMsg::GetHello, "0101", "00070101a66ca81000"),
        (
            HostMsg::SetChannel { channel: 6 },
            "010206",
            "000801020602e6c1c400",
        ),
        (
            HostMsg::Send {
                seq: 0x0102,
                dest: PEER,
                channel: 6,
                payload: b"hi\0!",
            },
            "010302010200000000010668690021",
            "00060103020102010101050106686906218213242f00",
        ),
        (HostMsg::GetStats, "0104", "00070104ba78592500"),
    ]
}

fn bridge_vectors() -> Vec<(BridgeMsg<'static>, &'static str, &'static str)> {
    vec![
        (
            BridgeMsg::Hello(hello()),
            "0181348518010203000100fa000100",
            "00090181348518010203020102fa0201054ba74a7f00",
        ),
        (
            BridgeMsg::ChannelSet {
                channel: 6,
                error: None,
            },
            "01820600",
            "0004018206050395a53800",
        ),
        (
            BridgeMsg::TxStatus {
                seq: 0x0102,
                outcome: TxOutcome::NotAcked,
            },
            "018302010100",
            "0006018302010105b35b0f9700",
        ),
        (
            BridgeMsg::TxStatus {
                seq: 7,
                outcome: TxOutcome::Failed(ErrorCode::TxQueueFull),
            },
            "018307000206",
            "0004018307070206f71d6f8600",
        ),
        (
            BridgeMsg::Received {
                src: PEER,
                dst: [0xff; 6],
                channel: 6,
                rssi: -42,
                rx_time_us: 1_000_000,
                payload: &[0, 1, 2],
            },
            "0184020000000001ffffffffffff06d640420f0000000000000102",
            "00040184020101010d01ffffffffffff06d640420f0101010101070102ec3c226900",
        ),
        (
            BridgeMsg::Stats(counting_stats()),
            "01850100000002000000030000000400000005000000060000000700000008000000090000000a0000000b0000000c000000",
            "000401850101010202010102030101020401010205010102060101020701010208010102090101020a0101020b0101020c010105347923cb00",
        ),
        (
            BridgeMsg::Error {
                code: ErrorCode::UnknownType,
            },
            "018603",
            "00080186033b69794400",
        ),
    ]
}

/// Decodes one wire frame back to its message bytes.
fn unframe(wire: &[u8]) -> Vec<u8> {
    let mut decoder: FrameDecoder = FrameDecoder::new();
    let mut messages = Vec::new();
    for &byte in wire {
        if let Some(result) = decoder.push(byte) {
            messages.push(result.expect("a valid frame").to_vec());
        }
    }
    assert_eq!(messages.len(), 1, "one frame in {}", hex::encode(wire));
    messages.pop().unwrap()
}

#[test]
fn host_messages_match_their_test_vectors_and_round_trip() {
    for (msg, message_hex, frame_hex) in host_vectors() {
        let mut raw = [0u8; 300];
        let len = msg.encode(&mut raw).unwrap();
        assert_eq!(hex::encode(&raw[..len]), message_hex, "{msg:?}");
        let mut wire = [0u8; MAX_WIRE_LEN];
        let wire_len = msg.to_frame(&mut wire).unwrap();
        assert_eq!(hex::encode(&wire[..wire_len]), frame_hex, "{msg:?}");
        let message = unframe(&wire[..wire_len]);
        assert_eq!(HostMsg::parse(&message), Ok(msg));
    }
}

#[test]
fn bridge_messages_match_their_test_vectors_and_round_trip() {
    for (msg, message_hex, frame_hex) in bridge_vectors() {
        let mut raw = [0u8; 300];
        let len = msg.encode(&mut raw).unwrap();
        assert_eq!(hex::encode(&raw[..len]), message_hex, "{msg:?}");
        let mut wire = [0u8; MAX_WIRE_LEN];
        let wire_len = msg.to_frame(&mut wire).unwrap();
        assert_eq!(hex::encode(&wire[..wire_len]), frame_hex, "{msg:?}");
        let message = unframe(&wire[..wire_len]);
        assert_eq!(BridgeMsg::parse(&message), Ok(msg));
    }
}

#[test]
fn every_outcome_error_code_and_payload_size_round_trips() {
    let codes = [
        ErrorCode::Malformed,
        ErrorCode::UnsupportedVersion,
        ErrorCode::UnknownType,
        ErrorCode::BadChannel,
        ErrorCode::PayloadTooLong,
        ErrorCode::TxQueueFull,
        ErrorCode::Radio,
        ErrorCode::Other(200),
    ];
    let mut msgs = vec![
        BridgeMsg::TxStatus {
            seq: u16::MAX,
            outcome: TxOutcome::Delivered,
        },
        BridgeMsg::Hello(Hello {
            reason: HelloReason::Requested,
            ..hello()
        }),
    ];
    for code in codes {
        msgs.push(BridgeMsg::Error { code });
        msgs.push(BridgeMsg::ChannelSet {
            channel: 11,
            error: Some(code),
        });
        msgs.push(BridgeMsg::TxStatus {
            seq: 1,
            outcome: TxOutcome::Failed(code),
        });
    }
    let payload = [0xa5u8; 250];
    for len in [0, 1, 249, 250] {
        msgs.push(BridgeMsg::Received {
            src: PEER,
            dst: PEER,
            channel: 14,
            rssi: i8::MIN,
            rx_time_us: u64::MAX,
            payload: &payload[..len],
        });
    }
    for msg in msgs {
        let mut wire = [0u8; MAX_WIRE_LEN];
        let len = msg.to_frame(&mut wire).unwrap();
        assert_eq!(BridgeMsg::parse(&unframe(&wire[..len])), Ok(msg));
    }
    for len in [1, 250] {
        let msg = HostMsg::Send {
            seq: 9,
            dest: [0xff; 6],
            channel: 1,
            payload: &payload[..len],
        };
        let mut wire = [0u8; MAX_WIRE_LEN];
        let len = msg.to_frame(&mut wire).unwrap();
        assert_eq!(HostMsg::parse(&unframe(&wire[..len])), Ok(msg));
    }
}

#[test]
fn bad_messages_are_named_errors() {
    let too_long = [0u8; 251];
    let send = |payload: &'static [u8], channel| HostMsg::Send {
        seq: 1,
        dest: PEER,
        channel,
        payload,
    };
    let mut out = [0u8; 300];
    assert_eq!(
        send(&[], 1).encode(&mut out),
        Err(MessageError::BadPayloadLength { len: 0 })
    );
    assert_eq!(
        HostMsg::Send {
            seq: 1,
            dest: PEER,
            channel: 1,
            payload: &too_long,
        }
        .encode(&mut out),
        Err(MessageError::BadPayloadLength { len: 251 })
    );
    assert_eq!(
        send(b"x", 15).encode(&mut out),
        Err(MessageError::BadField { field: "channel" })
    );
    assert_eq!(
        HostMsg::SetChannel { channel: 0 }.encode(&mut out),
        Err(MessageError::BadField { field: "channel" })
    );
    assert_eq!(
        HostMsg::GetHello.encode(&mut [0u8; 1]),
        Err(MessageError::BufferTooSmall)
    );

    assert_eq!(HostMsg::parse(&[1]), Err(MessageError::Truncated));
    assert_eq!(HostMsg::parse(&[1, 1, 0]), Err(MessageError::TooLong));
    assert_eq!(
        HostMsg::parse(&[1, 0x7f]),
        Err(MessageError::UnknownType { found: 0x7f })
    );
    assert_eq!(
        HostMsg::parse(&[2, 1]),
        Err(MessageError::UnsupportedVersion { found: 2 })
    );
    assert_eq!(
        HostMsg::parse(&[1, 0x81]),
        Err(MessageError::WrongDirection { found: 0x81 })
    );
    assert_eq!(
        BridgeMsg::parse(&[1, 0x01]),
        Err(MessageError::WrongDirection { found: 0x01 })
    );
    assert_eq!(
        BridgeMsg::parse(&[1, 0x83, 1, 0, 3, 0]),
        Err(MessageError::BadField { field: "outcome" })
    );
    assert_eq!(
        BridgeMsg::parse(&[1, 0x86, 0]),
        Err(MessageError::BadField { field: "code" })
    );
    assert!(
        MessageError::UnsupportedVersion { found: 2 }
            .to_string()
            .contains("version 2")
    );
}

#[test]
fn a_hello_of_another_version_is_still_read_so_the_host_can_name_it() {
    let mut raw = [0u8; 64];
    let len = BridgeMsg::Hello(hello()).encode(&mut raw).unwrap();
    raw[0] = 2;
    // A later version may append fields to its Hello.
    let parsed = BridgeMsg::parse(&raw[..len + 3]).unwrap();
    let BridgeMsg::Hello(found) = parsed else {
        panic!("not a Hello: {parsed:?}");
    };
    assert_eq!(found.protocol_version, 2);
    assert_eq!(found.mac, hello().mac);
    // Other messages of another version are refused.
    assert_eq!(
        BridgeMsg::parse(&[2, 0x86, 3]),
        Err(MessageError::UnsupportedVersion { found: 2 })
    );
    // Our own version's Hello has a fixed length.
    raw[0] = 1;
    assert_eq!(
        BridgeMsg::parse(&raw[..len + 1]),
        Err(MessageError::TooLong)
    );
}
