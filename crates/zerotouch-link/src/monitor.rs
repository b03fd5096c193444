//! `--link monitor:IFACE`: ESP-NOW over a Linux Wi-Fi interface in monitor mode (Linux only).
//!
//! An `AF_PACKET` raw socket bound to the interface sends radiotap + the 802.11 vendor
//! action frame exactly as an ESP32 sends it ([`crate::espnow`], addr3 broadcast, no FCS:
//! the card appends it) and receives radiotap + 802.11 frames. A classic BPF program
//! attached with `SO_ATTACH_FILTER` lets only ESP-NOW frames (Action, category 127,
//! Espressif OUI, vendor element 221 of type 4) reach user space, so a busy channel costs
//! no wake-ups. Received frames go through the same checks as the UDP link (FCS, our
//! address or broadcast, channel), our own transmissions are dropped (echo suppression),
//! and retransmissions are dropped by source, 802.11 sequence number and ESP-NOW random
//! bytes ([`Deduplicator`]).
//!
//! [`check_interface`] refuses, with the fix in the message, an interface that is not
//! wireless or not in monitor mode. Setting the channel and active monitor mode through
//! nl80211 is not done here yet: see docs/monitor-mode.md for the `iw` commands.
//! [`MonitorConfig::raw`] skips the interface check so the raw-socket path runs on any
//! interface (a veth pair in tests).

use std::ffi::CString;
use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, AtomicU16, AtomicU64, Ordering};

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use zerotouch_proto::{Addr, MAX_FRAME, Transmit};

use crate::espnow::{self, DedupKey, Deduplicator, EspNowFrame, EspNowRepr};
use crate::pcap::Capture;
use crate::radiotap::{self, Radiotap};
use crate::udp::{LinkError, LinkStats, Received};

/// `ETH_P_ALL`: every protocol, as the radiotap frames carry no Ethernet type.
const ETH_P_ALL: u16 = 0x0003;
/// `ARPHRD_IEEE80211_RADIOTAP`: `/sys/class/net/IFACE/type` of a monitor interface.
const ARPHRD_IEEE80211_RADIOTAP: u32 = 803;
/// Retransmissions remembered for duplicate suppression (per link, all senders).
const DEDUP_WINDOW: usize = 256;
/// Largest packet we read: radiotap headers of real drivers are far below 200 bytes.
const RECV_BUFFER: usize = 2048;
/// Radiotap TX flags on injected broadcasts: do not wait for an ACK nobody sends.
const TX_BROADCAST: u16 = radiotap::TX_FLAG_NO_ACK;

/// Why an interface cannot carry the monitor link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MonitorError {
    /// No such network interface.
    NoInterface(String),
    /// The interface has no 802.11 PHY (a wired or virtual interface).
    NotWireless(String),
    /// A Wi-Fi interface, but not in monitor mode.
    NotMonitorMode(String),
    /// Raw sockets need CAP_NET_RAW.
    NoCapNetRaw,
}

impl fmt::Display for MonitorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MonitorError::NoInterface(iface) => write!(
                f,
                "no network interface `{iface}`: list them with `ip link` (Wi-Fi ones with `iw dev`)"
            ),
            MonitorError::NotWireless(iface) => write!(
                f,
                "`{iface}` is not a Wi-Fi interface (no nl80211 PHY): give a Wi-Fi card in monitor mode, or `monitor:{iface}?no-nl80211` to use the raw socket on it anyway (tests, veth)"
            ),
            MonitorError::NotMonitorMode(iface) => write!(
                f,
                "`{iface}` is not in monitor mode: `ip link set {iface} down && iw dev {iface} set type monitor && iw dev {iface} set monitor active && ip link set {iface} up && iw dev {iface} set channel N` (see docs/monitor-mode.md)"
            ),
            MonitorError::NoCapNetRaw => write!(
                f,
                "raw sockets need CAP_NET_RAW: run as root, or `setcap cap_net_raw,cap_net_admin+ep $(command -v zerotouch)`"
            ),
        }
    }
}

impl std::error::Error for MonitorError {}

impl From<MonitorError> for io::Error {
    fn from(error: MonitorError) -> Self {
        let kind = match error {
            MonitorError::NoInterface(_) => io::ErrorKind::NotFound,
            MonitorError::NoCapNetRaw => io::ErrorKind::PermissionDenied,
            _ => io::ErrorKind::InvalidInput,
        };
        io::Error::new(kind, error)
    }
}

/// How to open the monitor link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitorConfig {
    /// Network interface name.
    pub iface: String,
    /// Our MAC address: the source of what we send, the unicast destination we accept.
    pub mac: Addr,
    /// Channel we listen on (1..=14).
    pub channel: u8,
    /// Skip the Wi-Fi checks (`?no-nl80211`): any interface, frames as they come.
    pub raw: bool,
}

/// Checks that `iface` is a Wi-Fi interface in monitor mode (through sysfs).
pub fn check_interface(iface: &str) -> Result<(), MonitorError> {
    let dir = Path::new("/sys/class/net").join(iface);
    if iface.is_empty() || iface.contains('/') || !dir.exists() {
        return Err(MonitorError::NoInterface(iface.to_owned()));
    }
    if !dir.join("phy80211").exists() {
        return Err(MonitorError::NotWireless(iface.to_owned()));
    }
    let kind = std::fs::read_to_string(dir.join("type")).unwrap_or_default();
    if kind.trim().parse::<u32>().ok() != Some(ARPHRD_IEEE80211_RADIOTAP) {
        return Err(MonitorError::NotMonitorMode(iface.to_owned()));
    }
    Ok(())
}

/// The classic BPF program: accept radiotap + 802.11 ESP-NOW action frames, drop the rest.
/// Loads past the end of a packet make the kernel drop it, so short packets are dropped.
pub fn espnow_filter() -> [libc::sock_filter; 16] {
    const LDB_ABS: u16 = 0x30;
    const LDB_IND: u16 = 0x50;
    const LDW_IND: u16 = 0x40;
    const LSH_K: u16 = 0x64;
    const OR_X: u16 = 0x4c;
    const TAX: u16 = 0x07;
    const JEQ_K: u16 = 0x15;
    const RET_K: u16 = 0x06;
    let op = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
    [
        // X = radiotap it_len (little-endian u16 at offset 2): where 802.11 starts.
        op(LDB_ABS, 0, 0, 3),
        op(LSH_K, 0, 0, 8),
        op(TAX, 0, 0, 0),
        op(LDB_ABS, 0, 0, 2),
        op(OR_X, 0, 0, 0),
        op(TAX, 0, 0, 0),
        // Frame control: management, Action.
        op(LDB_IND, 0, 0, 0),
        op(JEQ_K, 0, 7, 0xd0),
        // Category 127 (vendor specific) and Espressif's OUI.
        op(LDW_IND, 0, 0, 24),
        op(JEQ_K, 0, 5, 0x7f18_fe34),
        // Vendor element 221 with Espressif's OUI and type 4 (ESP-NOW).
        op(LDB_IND, 0, 0, 32),
        op(JEQ_K, 0, 3, 221),
        op(LDW_IND, 0, 0, 34),
        op(JEQ_K, 0, 1, 0x18fe_3404),
        op(RET_K, 0, 0, 0xffff),
        op(RET_K, 0, 0, 0),
    ]
}

fn check_channel(channel: u8) -> Result<u8, LinkError> {
    if (1..=14).contains(&channel) {
        Ok(channel)
    } else {
        Err(LinkError::InvalidChannel { channel })
    }
}

fn last_os_error() -> io::Error {
    let error = io::Error::last_os_error();
    match error.raw_os_error() {
        Some(libc::EPERM | libc::EACCES) => MonitorError::NoCapNetRaw.into(),
        _ => error,
    }
}

/// Opens an `AF_PACKET` raw socket bound to `iface` with the ESP-NOW filter attached.
fn packet_socket(iface: &str) -> io::Result<OwnedFd> {
    let name = CString::new(iface).map_err(|_| MonitorError::NoInterface(iface.to_owned()))?;
    // SAFETY: a plain C call on a NUL-terminated string.
    let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if index == 0 {
        return Err(MonitorError::NoInterface(iface.to_owned()).into());
    }
    let protocol = ETH_P_ALL.to_be();
    // SAFETY: socket(2) with constant arguments; the result is checked.
    let fd = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            i32::from(protocol),
        )
    };
    if fd < 0 {
        return Err(last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor we own.
    let socket = unsafe { OwnedFd::from_raw_fd(fd) };
    let filter = espnow_filter();
    let program = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_ptr().cast_mut(),
    };
    // SAFETY: `program` points at `filter`, alive for the call; the kernel copies it.
    let attached = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ATTACH_FILTER,
            (&raw const program).cast(),
            size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    if attached != 0 {
        return Err(last_os_error());
    }
    // SAFETY: sockaddr_ll is plain data; zero is a valid start.
    let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    addr.sll_family = libc::AF_PACKET as u16;
    addr.sll_protocol = protocol;
    addr.sll_ifindex = index as i32;
    // SAFETY: `addr` is a valid sockaddr_ll of the size given.
    let bound = unsafe {
        libc::bind(
            fd,
            (&raw const addr).cast(),
            size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if bound != 0 {
        return Err(last_os_error());
    }
    Ok(socket)
}

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    delivered: AtomicU64,
    malformed: AtomicU64,
    own: AtomicU64,
    other_channel: AtomicU64,
    not_for_us: AtomicU64,
    duplicates: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// What the receive path did with one packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A frame for us.
    Deliver(Box<Received>, Option<i8>),
    /// Not radiotap + a valid ESP-NOW frame (bad FCS included).
    Malformed,
    /// Our own transmission, heard back.
    Own,
    /// Sent on another channel.
    OtherChannel,
    /// For another unicast address.
    NotForUs,
    /// A retransmission of a frame already delivered.
    Duplicate,
}

/// One endpoint of the monitor link. All methods take `&self`.
pub struct MonitorLink {
    socket: AsyncFd<OwnedFd>,
    mac: Addr,
    channel: AtomicU8,
    sequence: AtomicU16,
    dedup: Mutex<Deduplicator>,
    counters: Counters,
    capture: Option<Capture>,
}

impl fmt::Debug for MonitorLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MonitorLink")
            .field("mac", &self.mac)
            .field("channel", &self.channel())
            .finish_non_exhaustive()
    }
}

impl MonitorLink {
    /// Opens the link on `config.iface`. Must be called inside a tokio runtime (and, for a
    /// network namespace, on a thread that entered it).
    pub fn open(config: &MonitorConfig) -> io::Result<MonitorLink> {
        if config.mac.0[0] & 0x01 != 0 {
            return Err(LinkError::NotUnicastMac { mac: config.mac }.into());
        }
        let channel = check_channel(config.channel)?;
        if !config.raw {
            check_interface(&config.iface)?;
        }
        let socket = packet_socket(&config.iface)?;
        // SAFETY: the OwnedFd keeps its descriptor open until the AsyncFd drops it.
        let socket = unsafe { AsyncFd::register(socket) }?;
        Ok(MonitorLink {
            socket,
            mac: config.mac,
            channel: AtomicU8::new(channel),
            sequence: AtomicU16::new(0),
            dedup: Mutex::new(Deduplicator::new(DEDUP_WINDOW)),
            counters: Counters::default(),
            capture: None,
        })
    }

    /// Records every frame sent and delivered into `capture` (`--pcap`).
    pub fn with_capture(mut self, capture: Capture) -> Self {
        self.capture = Some(capture);
        self
    }

    /// Our MAC address.
    pub fn local_addr(&self) -> Addr {
        self.mac
    }

    /// The channel we listen on.
    pub fn channel(&self) -> u8 {
        self.channel.load(Ordering::Relaxed)
    }

    /// Changes the channel we listen and send on (the card itself is tuned with `iw`).
    pub fn set_channel(&self, channel: u8) -> io::Result<()> {
        self.channel
            .store(check_channel(channel)?, Ordering::Relaxed);
        Ok(())
    }

    /// Counters since open (`duplicates` are counted as `malformed`-free drops).
    pub fn stats(&self) -> (LinkStats, u64) {
        let c = &self.counters;
        let stats = LinkStats {
            sent: c.sent.load(Ordering::Relaxed),
            delivered: c.delivered.load(Ordering::Relaxed),
            malformed: c.malformed.load(Ordering::Relaxed),
            own: c.own.load(Ordering::Relaxed),
            other_channel: c.other_channel.load(Ordering::Relaxed),
            not_for_us: c.not_for_us.load(Ordering::Relaxed),
        };
        (stats, c.duplicates.load(Ordering::Relaxed))
    }

    /// Sends a protocol transmit.
    pub async fn send(&self, transmit: &Transmit) -> io::Result<()> {
        self.send_to(transmit.dst, transmit.channel, &transmit.frame)
            .await
    }

    /// Sends `frame` to `dst` on `channel` as radiotap + an ESP32's ESP-NOW frame.
    pub async fn send_to(&self, dst: Addr, channel: u8, frame: &[u8]) -> io::Result<()> {
        if frame.len() > MAX_FRAME {
            return Err(LinkError::FrameTooLong { len: frame.len() }.into());
        }
        let channel = check_channel(channel)?;
        let mut random = [0u8; 4];
        getrandom::fill(&mut random)
            .map_err(|error| io::Error::other(format!("no OS randomness: {error}")))?;
        let repr = EspNowRepr {
            retry: false,
            duration: 0,
            dst,
            src: self.mac,
            addr3: Addr::BROADCAST,
            sequence_number: self.sequence.fetch_add(1, Ordering::Relaxed) & 0x0fff,
            random,
            version: espnow::ESPNOW_VERSION_1,
            body: frame,
        };
        let mut packet = [0u8; 32 + espnow::MAX_FRAME_LEN];
        let len = encode_packet(&repr, channel, &mut packet)?;
        let sent = self
            .socket
            .async_io(Interest::WRITABLE, |fd| {
                // SAFETY: the buffer is valid for `len` bytes.
                let n = unsafe { libc::send(fd.as_raw_fd(), packet.as_ptr().cast(), len, 0) };
                if n < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(n as usize)
                }
            })
            .await?;
        if sent != len {
            return Err(io::Error::other(format!(
                "the interface took {sent} of {len} bytes"
            )));
        }
        bump(&self.counters.sent);
        if let Some(capture) = &self.capture {
            let header_len = usize::from(u16::from_le_bytes([packet[2], packet[3]]));
            capture.frame(channel, None, &packet[header_len..len]);
        }
        Ok(())
    }

    /// Waits for the next frame for us. Only socket errors are returned; everything else
    /// is counted (see [`Self::stats`]) and skipped.
    pub async fn recv(&self) -> io::Result<Received> {
        let mut buffer = [0u8; RECV_BUFFER];
        loop {
            let (len, outgoing) = self
                .socket
                .async_io(Interest::READABLE, |fd| recv_packet(fd, &mut buffer))
                .await?;
            if outgoing {
                bump(&self.counters.own);
                continue;
            }
            if let Verdict::Deliver(received, rssi) = self.accept(&buffer[..len]) {
                if let (Some(capture), Ok(parsed)) =
                    (&self.capture, Radiotap::parse(&buffer[..len]))
                {
                    capture.frame(received.channel, rssi, parsed.frame);
                }
                return Ok(*received);
            }
        }
    }

    /// The receive path for one packet (radiotap + 802.11), counting what it drops.
    /// Public so captures can be replayed through exactly these checks.
    pub fn accept(&self, packet: &[u8]) -> Verdict {
        let verdict = self.judge(packet);
        let c = &self.counters;
        match &verdict {
            Verdict::Deliver(..) => bump(&c.delivered),
            Verdict::Malformed => bump(&c.malformed),
            Verdict::Own => bump(&c.own),
            Verdict::OtherChannel => bump(&c.other_channel),
            Verdict::NotForUs => bump(&c.not_for_us),
            Verdict::Duplicate => bump(&c.duplicates),
        }
        verdict
    }

    fn judge(&self, packet: &[u8]) -> Verdict {
        let Ok(parsed) = Radiotap::parse(packet) else {
            return Verdict::Malformed;
        };
        if parsed
            .header
            .flags
            .is_some_and(|f| f & radiotap::FLAG_BAD_FCS != 0)
        {
            return Verdict::Malformed;
        }
        let Ok(frame) = EspNowFrame::new_checked(parsed.frame) else {
            return Verdict::Malformed;
        };
        let Ok(repr) = EspNowRepr::parse(&frame) else {
            return Verdict::Malformed;
        };
        if repr.src == self.mac {
            return Verdict::Own;
        }
        let channel = match parsed.header.channel {
            Some((freq, _)) => match channel_of(freq) {
                Some(channel) => channel,
                None => return Verdict::OtherChannel,
            },
            None => self.channel(),
        };
        if channel != self.channel() {
            return Verdict::OtherChannel;
        }
        if repr.dst != self.mac && !repr.dst.is_broadcast() {
            return Verdict::NotForUs;
        }
        let duplicate = self
            .dedup
            .lock()
            .map(|mut d| d.is_duplicate(DedupKey::of(&frame)))
            .unwrap_or(false);
        if duplicate {
            return Verdict::Duplicate;
        }
        let Ok(body) = heapless::Vec::from_slice(repr.body) else {
            return Verdict::Malformed;
        };
        let received = Received {
            src: repr.src,
            dst: repr.dst,
            channel,
            frame: body,
        };
        Verdict::Deliver(Box::new(received), parsed.header.antenna_signal_dbm)
    }
}

/// 2.4 GHz channel of a centre frequency.
fn channel_of(freq: u16) -> Option<u8> {
    (1..=14).find(|&c| radiotap::channel_frequency(c) == Some(freq))
}

/// Writes radiotap (rate 1 Mbps, channel, no-ACK on broadcasts) and the frame without FCS
/// (the card appends it) into `out`; returns the length.
pub fn encode_packet(repr: &EspNowRepr<'_>, channel: u8, out: &mut [u8]) -> io::Result<usize> {
    let header = Radiotap {
        flags: Some(0),
        rate: Some(2),
        channel: radiotap::channel_frequency(channel)
            .map(|freq| (freq, radiotap::CHANNEL_FLAGS_2GHZ_CCK)),
        antenna_signal_dbm: None,
        tx_flags: Some(if repr.dst.is_broadcast() {
            TX_BROADCAST
        } else {
            0
        }),
    };
    let invalid = |e: &dyn fmt::Display| io::Error::new(io::ErrorKind::InvalidInput, e.to_string());
    let header_len = header.emit(out).map_err(|e| invalid(&e))?;
    let frame_len = repr
        .emit(&mut out[header_len..], false)
        .map_err(|e| invalid(&e))?;
    Ok(header_len + frame_len)
}

/// recvfrom(2) on the packet socket: length and whether it is our own outgoing packet.
fn recv_packet(fd: &OwnedFd, buffer: &mut [u8]) -> io::Result<(usize, bool)> {
    // SAFETY: sockaddr_ll is plain data; zero is a valid start.
    let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    let mut from_len = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
    // SAFETY: buffer and address are valid for the lengths given.
    let n = unsafe {
        libc::recvfrom(
            fd.as_raw_fd(),
            buffer.as_mut_ptr().cast(),
            buffer.len(),
            0,
            (&raw mut from).cast(),
            &mut from_len,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((n as usize, from.sll_pkttype == libc::PACKET_OUTGOING))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_can_be_shared_between_tasks() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<MonitorLink>();
    }

    #[test]
    fn filter_jumps_land_on_the_reject() {
        let filter = espnow_filter();
        let reject = filter.len() - 1;
        for (i, op) in filter.iter().enumerate() {
            if op.code == 0x15 {
                assert_eq!(i + 1 + usize::from(op.jf), reject, "instruction {i}");
            }
        }
        assert_eq!(filter[reject].k, 0);
    }

    #[test]
    fn a_missing_interface_is_named() {
        let error = check_interface("zt-no-such0").expect_err("missing");
        assert_eq!(error, MonitorError::NoInterface("zt-no-such0".into()));
        assert!(error.to_string().contains("ip link"));
    }

    #[test]
    fn channels_map_from_frequencies() {
        assert_eq!(channel_of(2412), Some(1));
        assert_eq!(channel_of(2484), Some(14));
        assert_eq!(channel_of(5180), None);
    }
}
