//! The UDP link over real sockets on this host: two and three endpoints in one process,
//! separate processes, the receive filters (address, own frames, channel), malformed
//! datagrams, the 250-byte limit, and the broadcast fallback.
//!
//! Each test uses its own random multicast group (and a kernel-chosen port), so tests
//! running in parallel, or other programs on the default group, never see each other.
//! "Not delivered" is shown without timing: the filtered frames are sent first, then a
//! sentinel from the same socket; loopback keeps their order, so when the sentinel is the
//! next frame received, the earlier ones were dropped, and the counters say why.

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::process::{Command, Stdio};
use std::time::Duration;

use tokio::time::timeout;
use zerotouch_link::derive_mac;
use zerotouch_link::espnow::{self, EspNowRepr};
use zerotouch_link::udp::{self, LinkError, LinkStats, Received, UdpLink, UdpLinkConfig};
use zerotouch_proto::{Addr, MAX_FRAME, Transmit};

/// Generous bound for a frame that must arrive; only reached if the test is failing.
const ARRIVAL: Duration = Duration::from_secs(10);

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).expect("OS randomness");
    bytes
}

/// A config on a fresh random group in 239.255.0.0/16 with a kernel-chosen port.
fn fresh_config(seed: &str, channel: u8) -> UdpLinkConfig {
    let [a, b] = random_bytes::<2>();
    let mut config = UdpLinkConfig::new(derive_mac(seed.as_bytes()), channel);
    config.group = SocketAddrV4::new(Ipv4Addr::new(239, 255, a, b | 1), 0);
    config
}

/// Another endpoint on the same link as `first`.
fn join(first: &UdpLink, seed: &str, channel: u8) -> UdpLink {
    let mut config = UdpLinkConfig::new(derive_mac(seed.as_bytes()), channel);
    config.group = first.group_addr();
    UdpLink::bind(config).expect("bind second endpoint")
}

async fn recv(link: &UdpLink) -> Received {
    timeout(ARRIVAL, link.recv())
        .await
        .expect("frame did not arrive")
        .expect("recv")
}

fn frame(bytes: &[u8]) -> heapless::Vec<u8, MAX_FRAME> {
    heapless::Vec::from_slice(bytes).expect("frame fits")
}

#[tokio::test]
async fn two_endpoints_exchange_unicast_and_broadcast() {
    let a = UdpLink::bind(fresh_config("two-a", 1)).expect("bind");
    let b = join(&a, "two-b", 1);
    assert_ne!(a.group_addr().port(), 0);

    let transmit = Transmit {
        dst: b.local_addr(),
        channel: 1,
        frame: frame(b"hello b"),
    };
    a.send(&transmit).await.expect("send");
    let got = recv(&b).await;
    assert_eq!(
        got,
        Received {
            src: a.local_addr(),
            dst: b.local_addr(),
            channel: 1,
            frame: frame(b"hello b")
        }
    );

    b.send_to(Addr::BROADCAST, 1, b"to all")
        .await
        .expect("send");
    let got = recv(&a).await;
    assert_eq!(
        (got.src, got.dst, &got.frame[..]),
        (b.local_addr(), Addr::BROADCAST, &b"to all"[..])
    );
    // `a` saw its own unicast loop back first and dropped it.
    assert_eq!(
        a.stats(),
        LinkStats {
            sent: 1,
            delivered: 1,
            own: 1,
            ..LinkStats::default()
        }
    );
}

#[tokio::test]
async fn three_endpoints_filter_by_destination() {
    let a = UdpLink::bind(fresh_config("three-a", 6)).expect("bind");
    let b = join(&a, "three-b", 6);
    let c = join(&a, "three-c", 6);

    a.send_to(b.local_addr(), 6, b"only b").await.expect("send");
    a.send_to(Addr::BROADCAST, 6, b"everyone")
        .await
        .expect("send");

    assert_eq!(&recv(&b).await.frame[..], b"only b");
    assert_eq!(&recv(&b).await.frame[..], b"everyone");
    assert_eq!(&recv(&c).await.frame[..], b"everyone");
    assert_eq!(c.stats().not_for_us, 1);
    assert_eq!(c.stats().delivered, 1);
    assert_eq!(b.stats().not_for_us, 0);
}

#[tokio::test]
async fn channel_coupling_drops_other_channels_until_retuned() {
    let a = UdpLink::bind(fresh_config("chan-a", 1)).expect("bind");
    let b = join(&a, "chan-b", 6);

    a.send_to(b.local_addr(), 11, b"on 11").await.expect("send");
    a.send_to(b.local_addr(), 6, b"on 6").await.expect("send");
    let got = recv(&b).await;
    assert_eq!((got.channel, &got.frame[..]), (6, &b"on 6"[..]));
    assert_eq!(b.stats().other_channel, 1);

    b.set_channel(11).expect("retune");
    assert_eq!(b.channel(), 11);
    a.send_to(b.local_addr(), 11, b"on 11 again")
        .await
        .expect("send");
    let got = recv(&b).await;
    assert_eq!((got.channel, &got.frame[..]), (11, &b"on 11 again"[..]));

    let error = b.set_channel(0).expect_err("channel 0");
    assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
    assert_eq!(b.channel(), 11, "a refused retune keeps the old channel");
}

#[tokio::test]
async fn malformed_datagrams_are_counted_and_dropped() {
    let a = UdpLink::bind(fresh_config("bad-a", 3)).expect("bind");
    let b = join(&a, "bad-b", 3);

    // A genuine datagram to corrupt in different ways.
    let mut valid = vec![0u8; udp::MAX_DATAGRAM];
    valid[..4].copy_from_slice(&udp::MAGIC);
    valid[4] = 3;
    let repr = EspNowRepr {
        retry: false,
        duration: 0,
        dst: b.local_addr(),
        src: a.local_addr(),
        addr3: Addr::BROADCAST,
        sequence_number: 1,
        random: [1, 2, 3, 4],
        version: espnow::ESPNOW_VERSION_1,
        body: b"payload",
    };
    let frame_len = repr
        .emit(&mut valid[udp::DATAGRAM_HEADER_LEN..], true)
        .expect("emit");
    valid.truncate(udp::DATAGRAM_HEADER_LEN + frame_len);

    let mut bad: Vec<Vec<u8>> = Vec::new();
    for len in [0usize, 1, 4, 5, 40, 100, 300, 1500] {
        bad.push((0..len).map(|_| random_bytes::<1>()[0]).collect());
    }
    let mut wrong_magic = valid.clone();
    wrong_magic[3] = b'2';
    bad.push(wrong_magic);
    let mut bad_fcs = valid.clone();
    let last = bad_fcs.len() - 1;
    bad_fcs[last] ^= 1;
    bad.push(bad_fcs);
    let mut no_fcs = valid.clone();
    no_fcs.truncate(no_fcs.len() - espnow::FCS_LEN);
    bad.push(no_fcs);
    let mut bad_channel = valid.clone();
    bad_channel[4] = 0;
    bad.push(bad_channel);
    let mut cut = valid.clone();
    cut.truncate(cut.len() - 6);
    bad.push(cut);
    let mut padded = valid.clone();
    padded.extend_from_slice(&[0; 600]);
    bad.push(padded);

    for datagram in &bad {
        a.send_raw(datagram).await.expect("send raw");
    }
    a.send_raw(&valid).await.expect("send raw");
    let got = recv(&b).await;
    assert_eq!(&got.frame[..], b"payload");
    assert_eq!(b.stats().malformed, bad.len() as u64);
    assert_eq!(b.stats().delivered, 1);
}

#[tokio::test]
async fn a_full_250_byte_frame_round_trips_and_251_is_refused() {
    let a = UdpLink::bind(fresh_config("max-a", 13)).expect("bind");
    let b = join(&a, "max-b", 13);
    let body: Vec<u8> = (0..MAX_FRAME).map(|i| (i * 7) as u8).collect();
    a.send_to(b.local_addr(), 13, &body)
        .await
        .expect("send 250");
    assert_eq!(&recv(&b).await.frame[..], &body[..]);

    let error = a
        .send_to(b.local_addr(), 13, &[0u8; MAX_FRAME + 1])
        .await
        .expect_err("251 bytes");
    assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
    let inner = error.get_ref().and_then(|e| e.downcast_ref::<LinkError>());
    assert_eq!(inner, Some(&LinkError::FrameTooLong { len: 251 }));
    assert!(
        error
            .to_string()
            .contains("exceeds the ESP-NOW limit of 250"),
        "{error}"
    );
    assert_eq!(a.stats().sent, 1);
}

#[tokio::test]
async fn bind_refuses_group_macs_and_bad_channels() {
    let mut config = fresh_config("refuse", 1);
    config.mac = Addr([0x01, 0, 0x5e, 0, 0, 1]);
    let error = UdpLink::bind(config).expect_err("multicast MAC");
    assert_eq!(error.kind(), io::ErrorKind::InvalidInput);

    let config = fresh_config("refuse", 15);
    let error = UdpLink::bind(config).expect_err("channel 15");
    assert!(error.to_string().contains("channel 15"), "{error}");
}

#[tokio::test]
async fn broadcast_fallback_on_loopback_works() {
    let mut config = fresh_config("bcast-a", 1);
    config.group = SocketAddrV4::new(Ipv4Addr::new(127, 255, 255, 255), 0);
    let a = UdpLink::bind(config).expect("bind broadcast");
    let b = join(&a, "bcast-b", 1);
    a.send_to(b.local_addr(), 1, b"via broadcast")
        .await
        .expect("send");
    assert_eq!(&recv(&b).await.frame[..], b"via broadcast");
}

const CHILD_GROUP: &str = "ZEROTOUCH_LINK_TEST_CHILD_GROUP";
const CHILD_SEED: &str = "ZEROTOUCH_LINK_TEST_CHILD_SEED";
const PROCESS_TEST: &str = "separate_processes_exchange_frames";

/// Parent role (normal run): spawns two copies of this test binary as link peers.
/// Child role (the env vars are set): announces itself, answers one ping, exits.
#[tokio::test]
async fn separate_processes_exchange_frames() {
    if let (Ok(group), Ok(seed)) = (std::env::var(CHILD_GROUP), std::env::var(CHILD_SEED)) {
        return run_child(&group, &seed).await;
    }
    let parent = UdpLink::bind(fresh_config("process-parent", 1)).expect("bind");
    let seeds = ["process-child-1", "process-child-2"];
    let exe = std::env::current_exe().expect("test binary path");
    let mut children = Vec::new();
    for seed in seeds {
        let child = Command::new(&exe)
            .args([PROCESS_TEST, "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_GROUP, parent.group_addr().to_string())
            .env(CHILD_SEED, seed)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn child");
        children.push(child);
    }

    let child_macs: Vec<Addr> = seeds.iter().map(|s| derive_mac(s.as_bytes())).collect();
    let mut hellos = Vec::new();
    while hellos.len() < child_macs.len() {
        let got = recv(&parent).await;
        assert_eq!((got.dst, &got.frame[..]), (Addr::BROADCAST, &b"hello"[..]));
        assert!(child_macs.contains(&got.src), "unknown sender {}", got.src);
        if !hellos.contains(&got.src) {
            hellos.push(got.src);
        }
    }
    for mac in &child_macs {
        parent.send_to(*mac, 1, b"ping").await.expect("ping");
    }
    let mut pongs = Vec::new();
    while pongs.len() < seeds.len() {
        let got = recv(&parent).await;
        assert_eq!(got.dst, parent.local_addr());
        let text = String::from_utf8(got.frame.to_vec()).expect("utf-8 pong");
        let index = child_macs
            .iter()
            .position(|m| *m == got.src)
            .expect("known child");
        assert_eq!(text, format!("pong from {}", seeds[index]));
        pongs.push(got.src);
    }
    for mut child in children {
        let status = tokio::task::spawn_blocking(move || child.wait())
            .await
            .expect("join")
            .expect("wait for child");
        assert!(status.success(), "child failed: {status}");
    }
}

async fn run_child(group: &str, seed: &str) {
    let mut config = UdpLinkConfig::new(derive_mac(seed.as_bytes()), 1);
    config.group = group.parse().expect("group address from parent");
    let link = UdpLink::bind(config).expect("child bind");
    link.send_to(Addr::BROADCAST, 1, b"hello")
        .await
        .expect("hello");
    loop {
        let got = recv(&link).await;
        // The other child's hello is broadcast too; answer only the parent's ping.
        if got.dst == link.local_addr() && &got.frame[..] == b"ping" {
            let pong = format!("pong from {seed}");
            link.send_to(got.src, 1, pong.as_bytes())
                .await
                .expect("pong");
            return;
        }
    }
}

/// Packets (radiotap + 802.11) of a pcapng file, after checking its link type.
fn pcapng_packets(path: &std::path::Path) -> Vec<Vec<u8>> {
    use pcap_file::pcapng::{Block, PcapNgReader};
    let file = std::fs::File::open(path).expect("open capture");
    let mut reader = PcapNgReader::new(file).expect("pcapng header");
    let mut packets = Vec::new();
    while let Some(block) = reader.next_block() {
        if let Block::EnhancedPacket(packet) = block.expect("pcapng block") {
            packets.push(packet.data.into_owned());
        }
    }
    assert_eq!(
        reader.interfaces()[0].linktype,
        pcap_file::DataLink::IEEE802_11_RADIOTAP
    );
    packets
}

#[tokio::test]
async fn capture_records_sent_and_delivered_frames_as_radiotap_espnow() {
    use zerotouch_link::espnow::{EspNowFrame, Fcs};
    use zerotouch_link::pcap::Capture;
    use zerotouch_link::radiotap::Radiotap;

    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("link.pcapng");
    let capture = Capture::create(&path).expect("create capture");
    let a = UdpLink::bind(fresh_config("cap-a", 11))
        .expect("bind")
        .with_capture(capture.clone());
    let b = join(&a, "cap-b", 11);
    a.send_to(Addr::BROADCAST, 11, b"from a")
        .await
        .expect("send");
    assert_eq!(&recv(&b).await.frame[..], b"from a");
    b.send_to(a.local_addr(), 11, b"from b")
        .await
        .expect("send");
    assert_eq!(&recv(&a).await.frame[..], b"from b");
    assert!(capture.is_open());

    // Both writes are on disk now: each block goes out in one write, nothing is buffered.
    let packets = pcapng_packets(&path);
    assert_eq!(packets.len(), 2);
    let expected = [
        (a.local_addr(), Addr::BROADCAST, &b"from a"[..]),
        (b.local_addr(), a.local_addr(), &b"from b"[..]),
    ];
    for (packet, (src, dst, body)) in packets.iter().zip(expected) {
        let radiotap = Radiotap::parse(packet).expect("radiotap");
        assert_eq!(radiotap.header.channel.map(|c| c.0), Some(2462));
        assert!(radiotap.header.has_fcs());
        let frame = EspNowFrame::new_checked(radiotap.frame).expect("ESP-NOW frame");
        assert_eq!((frame.src(), frame.dst(), frame.body()), (src, dst, body));
        assert_eq!(frame.addr3(), Addr::BROADCAST, "as an ESP32 sends it");
        assert!(matches!(frame.fcs(), Fcs::Valid(_)));
    }
}

#[test]
fn capture_in_a_missing_directory_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let error = zerotouch_link::pcap::Capture::create(dir.path().join("no/such/dir.pcapng"))
        .expect_err("directory does not exist");
    assert_eq!(error.kind(), io::ErrorKind::NotFound);
}
