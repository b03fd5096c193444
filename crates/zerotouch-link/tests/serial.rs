//! The serial link against the bridge emulator on a real pseudo-terminal: the bridge core
//! the firmware runs, with the UDP link as its radio. Frames both ways, a reboot, an
//! unplug and reopen, byte faults on the line, and the clear errors of bad ports.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::timeout;
use zerotouch_link::bridge_emulator::{ByteFaults, Control, Emulator, EmulatorConfig};
use zerotouch_link::derive_mac;
use zerotouch_link::serial::{SerialConfig, SerialError, SerialLink};
use zerotouch_link::udp::{UdpLink, UdpLinkConfig};
use zerotouch_proto::{Addr, Transmit};

/// Generous bound for what must happen; only reached if the test is failing.
const BOUND: Duration = Duration::from_secs(10);

struct Rig {
    _dir: tempfile::TempDir,
    path: PathBuf,
    control: mpsc::Sender<Control>,
    peer: UdpLink,
    bridge_mac: Addr,
}

fn random_group() -> SocketAddrV4 {
    let mut bytes = [0u8; 2];
    getrandom::fill(&mut bytes).expect("OS randomness");
    SocketAddrV4::new(Ipv4Addr::new(239, 255, bytes[0], bytes[1] | 1), 0)
}

/// An emulated bridge on channel 1 and a radio peer (a "device") beside it.
fn rig(faults: ByteFaults, hello_version: u8) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ttyBRIDGE");
    let bridge_mac = derive_mac(b"bridge");
    let mut radio = UdpLinkConfig::new(bridge_mac, 1);
    radio.group = random_group();
    let (emulator, pty) = Emulator::new(EmulatorConfig {
        link_path: path.clone(),
        radio,
        faults,
        seed: 7,
        hello_version,
    })
    .unwrap();
    let mut peer = UdpLinkConfig::new(derive_mac(b"device"), 6);
    peer.group = emulator.radio_group();
    let peer = UdpLink::bind(peer).unwrap();
    let (control, control_rx) = mpsc::channel(4);
    tokio::spawn(emulator.run(pty, control_rx));
    Rig {
        _dir: dir,
        path,
        control,
        peer,
        bridge_mac,
    }
}

fn transmit(dst: Addr, channel: u8, bytes: &[u8]) -> Transmit {
    Transmit {
        dst,
        channel,
        frame: heapless::Vec::from_slice(bytes).unwrap(),
    }
}

/// Sends from the bridge until the peer hears `tag` (frames may be lost to faults).
async fn bridge_to_peer(link: &SerialLink, rig: &Rig, tag: &[u8]) {
    let heard = async {
        loop {
            link.send(&transmit(rig.peer.local_addr(), 6, tag)).unwrap();
            if let Ok(Ok(received)) = timeout(Duration::from_millis(200), rig.peer.recv()).await
                && received.frame == tag
            {
                assert_eq!(received.src, rig.bridge_mac);
                return;
            }
        }
    };
    timeout(BOUND, heard)
        .await
        .expect("the peer heard the bridge");
}

/// Sends from the peer until the bridge relays `tag`.
async fn peer_to_bridge(link: &SerialLink, rig: &Rig, tag: &[u8]) {
    let heard = async {
        loop {
            rig.peer.send_to(Addr::BROADCAST, 6, tag).await.unwrap();
            if let Ok(Ok(heard)) = timeout(Duration::from_millis(50), link.recv()).await
                && heard.frame == tag
            {
                assert_eq!(heard.src, rig.peer.local_addr());
                assert_eq!(heard.rssi, -40);
                return;
            }
        }
    };
    timeout(BOUND, heard)
        .await
        .expect("the bridge relayed the peer");
}

async fn open(path: &Path) -> Result<SerialLink, SerialError> {
    let mut config = SerialConfig::new(path, 6);
    config.hello_timeout = Duration::from_secs(2);
    SerialLink::open(config).await
}

#[tokio::test]
async fn frames_cross_the_bridge_both_ways_and_are_acknowledged() {
    let rig = rig(ByteFaults::default(), 1);
    let link = open(&rig.path).await.unwrap();
    assert_eq!(link.local_addr(), rig.bridge_mac);
    assert_eq!(link.hello().max_payload, 250);
    bridge_to_peer(&link, &rig, b"to-device").await;
    peer_to_bridge(&link, &rig, b"to-host").await;
    let full = [0x5a; 250];
    bridge_to_peer(&link, &rig, &full).await;
    timeout(BOUND, async {
        while link.stats().delivered < 2 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("TxStatus Delivered arrived");
    let stats = link.stats();
    assert_eq!(
        (stats.reopens, stats.bridge_reboots, stats.bad_frames),
        (0, 0, 0)
    );
}

#[tokio::test]
async fn a_rebooted_bridge_is_retuned_and_keeps_relaying() {
    let rig = rig(ByteFaults::default(), 1);
    let link = open(&rig.path).await.unwrap();
    peer_to_bridge(&link, &rig, b"before").await;
    rig.control.send(Control::Reboot).await.unwrap();
    // The bridge boots on channel 1; the link must set channel 6 again to hear the peer.
    peer_to_bridge(&link, &rig, b"after").await;
    let stats = link.stats();
    assert_eq!(stats.bridge_reboots, 1);
    assert!(stats.garbage_bytes > 0, "boot ROM text counted: {stats:?}");
}

#[tokio::test]
async fn an_unplugged_bridge_is_reopened_and_the_link_lives_on() {
    let rig = rig(ByteFaults::default(), 1);
    let link = open(&rig.path).await.unwrap();
    bridge_to_peer(&link, &rig, b"before").await;
    rig.control
        .send(Control::Unplug(Duration::from_millis(300)))
        .await
        .unwrap();
    peer_to_bridge(&link, &rig, b"after").await;
    bridge_to_peer(&link, &rig, b"after-tx").await;
    assert_eq!(link.stats().reopens, 1);
}

#[tokio::test]
async fn byte_faults_on_the_line_lose_frames_not_the_link() {
    let faults = ByteFaults {
        drop: 0.002,
        duplicate: 0.002,
        corrupt: 0.002,
        garbage: 0.005,
    };
    let rig = rig(faults, 1);
    let link = timeout(BOUND, async {
        loop {
            // A fault may hit the Hello itself: opening again is what an operator does.
            if let Ok(link) = open(&rig.path).await {
                return link;
            }
        }
    })
    .await
    .expect("the bridge answered a Hello");
    for i in 0..30u8 {
        peer_to_bridge(&link, &rig, &[i; 40]).await;
    }
    let stats = link.stats();
    assert!(stats.bad_frames > 0 && stats.garbage_bytes > 0, "{stats:?}");
}

#[tokio::test]
async fn a_bridge_of_another_protocol_version_is_refused_by_name() {
    let rig = rig(ByteFaults::default(), 2);
    let err = open(&rig.path).await.unwrap_err();
    assert!(matches!(err, SerialError::WrongVersion(_, ref h) if h.protocol_version == 2));
    let text = err.to_string();
    assert!(
        text.contains("protocol v2") && text.contains("speaks v1"),
        "{text}"
    );
}

#[tokio::test]
async fn bad_ports_get_errors_that_name_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let missing = open(&dir.path().join("ttyACM9")).await.unwrap_err();
    assert!(matches!(missing, SerialError::NotFound(_)), "{missing}");
    assert!(missing.to_string().contains("radio list"));

    let file = dir.path().join("plain-file");
    std::fs::write(&file, b"").unwrap();
    let not_tty = open(&file).await.unwrap_err();
    assert!(matches!(not_tty, SerialError::NotATty(_)), "{not_tty}");

    // A tty where nothing answers: a PTY whose other end is silent.
    let master =
        rustix::pty::openpt(rustix::pty::OpenptFlags::RDWR | rustix::pty::OpenptFlags::NOCTTY)
            .unwrap();
    rustix::pty::grantpt(&master).unwrap();
    rustix::pty::unlockpt(&master).unwrap();
    let slave = rustix::pty::ptsname(&master, Vec::new()).unwrap();
    let silent = open(Path::new(slave.to_str().unwrap())).await.unwrap_err();
    assert!(matches!(silent, SerialError::NoHello(..)), "{silent}");
    assert!(silent.to_string().contains("not a zerotouch radio bridge"));

    // A second opener of a bridge in use is told so.
    let rig = rig(ByteFaults::default(), 1);
    let _first = open(&rig.path).await.unwrap();
    let busy = open(&rig.path).await.unwrap_err();
    assert!(matches!(busy, SerialError::Busy(_)), "{busy}");

    let denied = SerialError::PermissionDenied("/dev/ttyACM0".into()).to_string();
    assert!(denied.contains("dialout"), "{denied}");
}
