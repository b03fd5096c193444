//! Frames built by our codec, behind our radiotap header, as Wireshark's real dissector sees
//! them: an 802.11 Action frame, vendor specific (127), OUI 18:fe:34 (Espressif), the
//! addresses we wrote, and a good FCS (a corrupted one must be reported bad).
//!
//! Needs `tshark` (Debian package `tshark`). Under CI (`CI=true`) a missing tshark fails
//! the test; elsewhere the test prints why it skipped.

use std::process::Command;
use std::time::Duration;

use pcap_file::DataLink;
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use zerotouch_link::espnow::{self, EspNowRepr};
use zerotouch_link::radiotap::{self, Radiotap};
use zerotouch_link::udp::{self, DatagramHeader};
use zerotouch_proto::Addr;

const SENDER: Addr = Addr([0x02, 0x5a, 0x54, 0x00, 0x00, 0x01]);
const RECEIVER: Addr = Addr([0x02, 0x5a, 0x54, 0x00, 0x00, 0x02]);

fn tshark_available() -> bool {
    match Command::new("tshark").arg("--version").output() {
        Ok(output) if output.status.success() => true,
        _ => {
            let in_ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
            assert!(
                !in_ci,
                "tshark is not installed but CI=true: install it (apt-get install tshark)"
            );
            println!("SKIPPED: tshark not installed (set CI=true to make this a failure)");
            false
        }
    }
}

/// Radiotap (FCS flag, 1 Mbps, channel 1) + ESP-NOW frame with FCS.
fn packet(repr: &EspNowRepr<'_>) -> Vec<u8> {
    let header = Radiotap {
        flags: Some(radiotap::FLAG_FCS),
        rate: Some(2),
        channel: Some((
            radiotap::channel_frequency(1).expect("channel 1"),
            radiotap::CHANNEL_FLAGS_2GHZ_CCK,
        )),
        ..Radiotap::default()
    };
    let mut out = vec![0u8; header.buffer_len() + repr.buffer_len(true)];
    let header_len = header.emit(&mut out).expect("radiotap emit");
    let frame_len = repr.emit(&mut out[header_len..], true).expect("frame emit");
    assert_eq!(header_len + frame_len, out.len());
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn tshark_dissects_our_frames_as_espressif_vendor_action_frames() {
    if !tshark_available() {
        return;
    }
    let broadcast_body: Vec<u8> = (0..250u16).map(|i| i as u8).collect();
    let broadcast = EspNowRepr {
        retry: false,
        duration: 0,
        dst: Addr::BROADCAST,
        src: SENDER,
        addr3: Addr::BROADCAST,
        sequence_number: 42,
        random: [1, 2, 3, 4],
        version: espnow::ESPNOW_VERSION_1,
        body: &broadcast_body,
    };
    let unicast = EspNowRepr {
        retry: true,
        duration: 314,
        dst: RECEIVER,
        src: SENDER,
        addr3: RECEIVER,
        sequence_number: 4095,
        random: [0xde, 0xad, 0xbe, 0xef],
        version: espnow::ESPNOW_VERSION_1,
        body: b"zerotouch",
    };
    // A datagram of the UDP link carries exactly such a frame after its 5-byte header.
    let mut datagram = [0u8; udp::MAX_DATAGRAM];
    let link_header = DatagramHeader {
        src: SENDER,
        dst: RECEIVER,
        channel: 6,
        sequence_number: 7,
        random: [5, 6, 7, 8],
    };
    let datagram_len =
        udp::encode_datagram(&link_header, b"via udp", &mut datagram).expect("encode");
    let link_frame = &datagram[udp::DATAGRAM_HEADER_LEN..datagram_len];
    let mut link_packet = vec![0u8; 9];
    let radiotap_len = Radiotap {
        flags: Some(radiotap::FLAG_FCS),
        ..Radiotap::default()
    }
    .emit(&mut link_packet)
    .expect("radiotap");
    assert_eq!(radiotap_len, 9);
    link_packet.extend_from_slice(link_frame);

    let mut corrupted = packet(&unicast);
    let last = corrupted.len() - 1;
    corrupted[last] ^= 0xff;

    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("espnow.pcap");
    let file = std::fs::File::create(&path).expect("create pcap");
    let header = PcapHeader {
        datalink: DataLink::IEEE802_11_RADIOTAP,
        ..PcapHeader::default()
    };
    let mut writer = PcapWriter::with_header(file, header).expect("pcap writer");
    for (i, data) in [packet(&broadcast), packet(&unicast), corrupted, link_packet]
        .iter()
        .enumerate()
    {
        let len = u32::try_from(data.len()).expect("small packet");
        let timestamp = Duration::from_millis(i as u64);
        writer
            .write_packet(&PcapPacket::new(timestamp, len, data))
            .expect("write packet");
    }
    drop(writer);

    let fields = [
        "wlan.fc.type_subtype",
        "wlan.fixed.category_code",
        "wlan.tag.oui",
        "wlan.ra",
        "wlan.ta",
        "wlan.bssid",
        "wlan.seq",
        "wlan.fc.retry",
        "wlan.duration",
        "wlan.fcs.status",
        "data.data",
    ];
    let mut command = Command::new("tshark");
    // tshark 4.0: check_fcs assumes an FCS, check_checksum actually verifies it.
    command.args([
        "-n",
        "-o",
        "wlan.check_fcs:TRUE",
        "-o",
        "wlan.check_checksum:TRUE",
        "-r",
    ]);
    command
        .arg(&path)
        .args(["-T", "fields", "-E", "separator=|"]);
    for field in fields {
        command.args(["-e", field]);
    }
    let output = command.output().expect("run tshark");
    assert!(
        output.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).expect("utf-8");
    let rows: Vec<Vec<&str>> = stdout
        .lines()
        .map(|line| line.split('|').collect())
        .collect();
    assert_eq!(rows.len(), 4, "tshark output:\n{stdout}");

    let espressif_oui = (0x18fe34u32).to_string();
    let broadcast_data = format!("01020304ddff18fe340401{}", hex(&broadcast_body));
    let unicast_data = format!("deadbeefdd0e18fe340401{}", hex(b"zerotouch"));
    let link_data = format!("05060708dd0c18fe340401{}", hex(b"via udp"));
    let expected: [[&str; 11]; 4] = [
        [
            "0x000d",
            "127",
            &espressif_oui,
            "ff:ff:ff:ff:ff:ff",
            "02:5a:54:00:00:01",
            "ff:ff:ff:ff:ff:ff",
            "42",
            "0",
            "0",
            "1",
            &broadcast_data,
        ],
        [
            "0x000d",
            "127",
            &espressif_oui,
            "02:5a:54:00:00:02",
            "02:5a:54:00:00:01",
            "02:5a:54:00:00:02",
            "4095",
            "1",
            "314",
            "1",
            &unicast_data,
        ],
        // Same frame with its FCS corrupted: status 0 = bad.
        [
            "0x000d",
            "127",
            &espressif_oui,
            "02:5a:54:00:00:02",
            "02:5a:54:00:00:01",
            "02:5a:54:00:00:02",
            "4095",
            "1",
            "314",
            "0",
            &unicast_data,
        ],
        [
            "0x000d",
            "127",
            &espressif_oui,
            "02:5a:54:00:00:02",
            "02:5a:54:00:00:01",
            "ff:ff:ff:ff:ff:ff",
            "7",
            "0",
            "0",
            "1",
            &link_data,
        ],
    ];
    for (row, want) in rows.iter().zip(expected) {
        for ((field, got), want) in fields.iter().zip(row).zip(want) {
            assert_eq!(*got, want, "field {field} in tshark output:\n{stdout}");
        }
    }

    // The human-readable dissection names the category and the vendor.
    let verbose = Command::new("tshark")
        .args([
            "-o",
            "wlan.check_fcs:TRUE",
            "-o",
            "wlan.check_checksum:TRUE",
            "-V",
            "-c",
            "1",
            "-r",
        ])
        .arg(&path)
        .output()
        .expect("run tshark -V");
    let text = String::from_utf8_lossy(&verbose.stdout);
    for needle in [
        "IEEE 802.11 Action",
        "Category code: Vendor Specific (127)",
        "OUI: 18:fe:34 (Espressif Inc.)",
        "[FCS Status: Good]",
    ] {
        assert!(text.contains(needle), "tshark -V lacks {needle:?}:\n{text}");
    }
}
