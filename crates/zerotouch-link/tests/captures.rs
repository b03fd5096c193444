//! The ESP-NOW codec and radiotap reader against real captures from Espressif chips
//! (`tests/data/espnow`, see its README for provenance): exact addresses, bodies, FCS verdicts.

use std::fs::File;

use pcap_file::DataLink;
use pcap_file::pcap::PcapReader;
use pcap_file::pcapng::{Block, PcapNgReader};
use zerotouch_link::espnow::{self, DedupKey, Deduplicator, EspNowFrame, EspNowRepr, Fcs};
use zerotouch_link::radiotap::Radiotap;
use zerotouch_proto::Addr;

const ENIGMA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/espnow/enigmaiot-unicast.pcapng"
);
const SCAPY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/espnow/scapy-esp-now-broadcast.pcap"
);

const ESP_A: Addr = Addr([0x5e, 0xcf, 0x7f, 0x2c, 0x18, 0x09]);
const ESP_B: Addr = Addr([0xbe, 0xdd, 0xc2, 0x24, 0x14, 0x97]);

/// Packets (radiotap + 802.11) of a pcapng capture, after checking its link type.
fn pcapng_packets(path: &str) -> Vec<Vec<u8>> {
    let file = File::open(path).unwrap_or_else(|e| panic!("open {path}: {e}"));
    let mut reader = PcapNgReader::new(file).expect("pcapng header");
    let mut packets = Vec::new();
    while let Some(block) = reader.next_block() {
        if let Block::EnhancedPacket(packet) = block.expect("pcapng block") {
            packets.push(packet.data.into_owned());
        }
    }
    assert_eq!(
        reader.interfaces()[0].linktype,
        DataLink::IEEE802_11_RADIOTAP
    );
    packets
}

#[test]
fn enigmaiot_unicast_capture_parses_exactly() {
    let packets = pcapng_packets(ENIGMA);
    assert_eq!(packets.len(), 11);

    // (frame number, src, dst, sequence number, retry, body length)
    let expected = [
        (1, ESP_A, ESP_B, 5, true, 53),
        (3, ESP_B, ESP_A, 1629, false, 27),
        (5, ESP_A, ESP_B, 7, false, 35),
        (7, ESP_A, ESP_B, 5, false, 35),
        (8, ESP_A, ESP_B, 5, false, 35),
        (10, ESP_A, ESP_B, 5, false, 35),
    ];
    let mut actions = Vec::new();
    for (index, packet) in packets.iter().enumerate() {
        let number = index + 1;
        let radiotap = Radiotap::parse(packet).expect("radiotap");
        assert_eq!(radiotap.header_len, 36, "frame {number}");
        assert!(
            radiotap.header.has_fcs(),
            "frame {number}: radiotap says FCS present"
        );
        assert_eq!(radiotap.header.rate, Some(12), "frame {number}: 6 Mbps");
        assert_eq!(
            radiotap.header.channel.map(|c| c.0),
            Some(2412),
            "frame {number}"
        );
        match EspNowFrame::new_checked(radiotap.frame) {
            Ok(frame) => actions.push((number, frame)),
            Err(error) => {
                // The others are 802.11 ACKs: control frames, refused precisely.
                assert_eq!(
                    error,
                    espnow::Error::NotAction {
                        frame_control: [0xd4, 0x00]
                    },
                    "frame {number}"
                );
            }
        }
    }
    assert_eq!(actions.len(), expected.len());
    for ((number, frame), (want_number, src, dst, sequence, retry, body_len)) in
        actions.iter().zip(expected)
    {
        assert_eq!(*number, want_number);
        assert_eq!(frame.src(), src, "frame {number}");
        assert_eq!(frame.dst(), dst, "frame {number}");
        // ESP8266-era firmware: addr3 carries the destination, not broadcast.
        assert_eq!(frame.addr3(), dst, "frame {number}");
        assert_eq!(frame.sequence_number(), sequence, "frame {number}");
        assert_eq!(frame.retry(), retry, "frame {number}");
        assert_eq!(frame.version(), 1, "frame {number}");
        assert!(!frame.more_data(), "frame {number}");
        assert_eq!(frame.body().len(), body_len, "frame {number}");
        assert!(
            matches!(frame.fcs(), Fcs::Valid(_)),
            "frame {number}: {:?}",
            frame.fcs()
        );
        let repr =
            EspNowRepr::parse_with_fcs(frame).expect("radiotap says FCS: required and valid");
        assert_eq!(repr.body, frame.body());
    }

    // Spot-check exact bytes of frame 1 (random bytes and body start) from tshark's view.
    let (_, first) = &actions[0];
    assert_eq!(first.random(), [0xec, 0xe5, 0xa7, 0x85]);
    assert_eq!(&first.body()[..4], &[0xff, 0x61, 0x95, 0xb2]);
    assert_eq!(first.fcs(), Fcs::Valid(0x1c28_eaf1));
}

#[test]
fn re_emitting_captured_frames_reproduces_the_bytes() {
    for packet in pcapng_packets(ENIGMA) {
        let radiotap = Radiotap::parse(&packet).expect("radiotap");
        let Ok(frame) = EspNowFrame::new_checked(radiotap.frame) else {
            continue;
        };
        let repr = EspNowRepr::parse(&frame).expect("parse");
        let mut out = [0u8; espnow::MAX_FRAME_LEN];
        let mut len = repr.emit(&mut out, true).expect("emit");
        // The captured frames carry a duration; the builder writes what the repr says.
        assert_eq!(&out[..len], radiotap.frame);
        len -= espnow::FCS_LEN;
        assert_eq!(repr.emit(&mut out, false), Ok(len));
    }
}

#[test]
fn retries_in_capture_deduplicate_by_source_sequence_and_random() {
    let mut dedup = Deduplicator::new(16);
    let mut fresh = 0;
    for packet in pcapng_packets(ENIGMA) {
        let radiotap = Radiotap::parse(&packet).expect("radiotap");
        if let Ok(frame) = EspNowFrame::new_checked(radiotap.frame) {
            if !dedup.is_duplicate(DedupKey::of(&frame)) {
                fresh += 1;
            }
            // A retransmission of the same frame (Retry bit set) is a duplicate.
            let mut copy = radiotap.frame.to_vec();
            let mut retry = EspNowFrame::new_unchecked(&mut copy[..]);
            retry.set_retry(true);
            assert!(retry.fill_fcs());
            assert!(dedup.is_duplicate(DedupKey::of(&retry)));
        }
    }
    // Frames 7, 8 and 10 reuse sequence number 5 but carry new random bytes: all distinct.
    assert_eq!(fresh, 6);
}

#[test]
fn scapy_broadcast_with_cut_fcs_is_reported_precisely() {
    let file = File::open(SCAPY).unwrap_or_else(|e| panic!("open {SCAPY}: {e}"));
    let mut reader = PcapReader::new(file).expect("pcap header");
    assert_eq!(reader.header().datalink, DataLink::IEEE802_11_RADIOTAP);
    let packet = reader
        .next_packet()
        .expect("one packet")
        .expect("readable packet")
        .into_owned();
    assert_eq!((packet.data.len(), packet.orig_len), (90, 91));
    assert!(reader.next_packet().is_none());

    let radiotap = Radiotap::parse(&packet.data).expect("radiotap");
    assert!(radiotap.header.has_fcs());
    assert_eq!(radiotap.header.rate, Some(2), "1 Mbps");
    assert_eq!(
        radiotap.header.channel.map(|c| c.0),
        Some(2472),
        "channel 13"
    );

    let frame = EspNowFrame::new_checked(radiotap.frame).expect("structure intact");
    assert_eq!(frame.dst(), Addr::BROADCAST);
    assert_eq!(frame.addr3(), Addr::BROADCAST);
    assert_eq!(frame.src(), Addr([0x84, 0x0d, 0x8e, 0x18, 0xe2, 0x05]));
    assert_eq!(frame.sequence_number(), 1148);
    assert_eq!(frame.body(), b"DRONE\0\0\0\0\0\x86\x4e");
    assert_eq!(frame.fcs(), Fcs::Truncated { present: 3 });
    assert_eq!(
        EspNowRepr::parse(&frame),
        Err(espnow::Error::FcsTruncated { present: 3 })
    );
    assert_eq!(
        EspNowRepr::parse_with_fcs(&frame),
        Err(espnow::Error::FcsTruncated { present: 3 })
    );
    // Cutting further into the body is a truncation error, never a panic.
    for cut in 0..radiotap.frame.len() {
        let _ = EspNowFrame::new_checked(&radiotap.frame[..cut]).map(|f| f.fcs());
    }
}
