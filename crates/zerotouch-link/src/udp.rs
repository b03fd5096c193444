//! A datagram link between processes on one host or LAN segment, with ESP-NOW semantics.
//!
//! Every UDP datagram is `"ZTL1"`, the channel byte, then a complete ESP-NOW 802.11 action
//! frame with FCS, built by [`crate::espnow`]: a packet capture of the link shows real
//! ESP-NOW frames. Datagrams go to a multicast group (default `239.255.90.1:47470`, TTL 1,
//! multicast loopback on) on the loopback interface by default, so any number of processes
//! on the host share the medium; set [`UdpLinkConfig::interface`] to a LAN address to reach
//! other hosts on the segment.
//!
//! Linux delivers multicast on `lo` without any system change when the sending interface
//! (`IP_MULTICAST_IF`) and the membership both use 127.0.0.1, even though `lo` lacks the
//! MULTICAST flag (verified as root in an unprivileged container with no routes changed).
//! Where that is not possible, give a broadcast address instead of a group (for example
//! `127.255.255.255`): a non-multicast [`UdpLinkConfig::group`] selects UDP broadcast.
//!
//! Like the radio, the receiver keeps only frames addressed to its MAC or to broadcast, on
//! the channel it listens to (ESP-NOW peers must share a channel), and never its own
//! transmissions. Malformed datagrams are counted and dropped: bad input never ends the
//! receive loop.

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicU8, AtomicU16, AtomicU64, Ordering};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use zerotouch_proto::{Addr, MAX_FRAME, Transmit};

use crate::espnow::{self, EspNowFrame, EspNowRepr, Fcs};
use crate::pcap::Capture;

/// Magic that starts every link datagram (zerotouch link, format 1).
pub const MAGIC: [u8; 4] = *b"ZTL1";
/// Bytes before the 802.11 frame: magic and channel.
pub const DATAGRAM_HEADER_LEN: usize = 5;
/// Default multicast group (organisation-local scope).
pub const DEFAULT_GROUP: Ipv4Addr = Ipv4Addr::new(239, 255, 90, 1);
/// Default UDP port.
pub const DEFAULT_PORT: u16 = 47470;
/// Largest datagram the link sends: header and a full ESP-NOW frame with FCS.
pub const MAX_DATAGRAM: usize = DATAGRAM_HEADER_LEN + espnow::MAX_FRAME_LEN;
/// Receive buffer: larger than any valid datagram, so an oversized one is detected.
const RECV_BUFFER: usize = 1024;

/// Misuse of the link API (wrapped in an [`io::Error`] of kind `InvalidInput`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkError {
    /// A frame longer than the 250 bytes one ESP-NOW v1 frame carries.
    FrameTooLong {
        /// Length given.
        len: usize,
    },
    /// A channel outside the 2.4 GHz channels 1..=14.
    InvalidChannel {
        /// Channel given.
        channel: u8,
    },
    /// Our own MAC must be a unicast address (bit 0 of the first byte clear).
    NotUnicastMac {
        /// Address given.
        mac: Addr,
    },
}

impl fmt::Display for LinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            LinkError::FrameTooLong { len } => write!(
                f,
                "frame of {len} bytes exceeds the ESP-NOW limit of {MAX_FRAME} bytes; split it before sending"
            ),
            LinkError::InvalidChannel { channel } => {
                write!(f, "channel {channel} is not a 2.4 GHz channel (1..=14)")
            }
            LinkError::NotUnicastMac { mac } => write!(
                f,
                "link address {mac} is a group address; use a unicast MAC (see derive_mac)"
            ),
        }
    }
}

impl std::error::Error for LinkError {}

impl From<LinkError> for io::Error {
    fn from(error: LinkError) -> Self {
        io::Error::new(io::ErrorKind::InvalidInput, error)
    }
}

/// How to join the link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpLinkConfig {
    /// Our MAC address: the source of what we send, the unicast destination we accept.
    pub mac: Addr,
    /// Channel we listen on (1..=14); frames sent on other channels are not received.
    pub channel: u8,
    /// Multicast group and port, or a broadcast address and port (see the module docs).
    pub group: SocketAddrV4,
    /// Address of the interface to use: 127.0.0.1 for this host, a LAN address otherwise.
    pub interface: Ipv4Addr,
    /// Multicast TTL; 1 keeps datagrams on the local segment.
    pub ttl: u32,
}

impl UdpLinkConfig {
    /// The default link (group 239.255.90.1:47470 on loopback, TTL 1) for `mac` on `channel`.
    pub fn new(mac: Addr, channel: u8) -> Self {
        UdpLinkConfig {
            mac,
            channel,
            group: SocketAddrV4::new(DEFAULT_GROUP, DEFAULT_PORT),
            interface: Ipv4Addr::LOCALHOST,
            ttl: 1,
        }
    }
}

/// A frame received from the link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// Sender's MAC.
    pub src: Addr,
    /// Destination: our MAC or broadcast.
    pub dst: Addr,
    /// Channel the frame was sent on (always our listening channel).
    pub channel: u8,
    /// The zerotouch frame (the ESP-NOW body).
    pub frame: heapless::Vec<u8, MAX_FRAME>,
}

/// Counters of what the receiver did with datagrams (monotonic since bind).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LinkStats {
    /// Frames sent.
    pub sent: u64,
    /// Frames delivered by [`UdpLink::recv`].
    pub delivered: u64,
    /// Datagrams dropped as malformed (bad magic, bad ESP-NOW frame, bad FCS, oversize).
    pub malformed: u64,
    /// Our own transmissions looped back and dropped.
    pub own: u64,
    /// Frames for another channel, dropped.
    pub other_channel: u64,
    /// Frames for another unicast address, dropped.
    pub not_for_us: u64,
}

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    delivered: AtomicU64,
    malformed: AtomicU64,
    own: AtomicU64,
    other_channel: AtomicU64,
    not_for_us: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

fn check_channel(channel: u8) -> Result<u8, LinkError> {
    if (1..=14).contains(&channel) {
        Ok(channel)
    } else {
        Err(LinkError::InvalidChannel { channel })
    }
}

/// One endpoint of the UDP link. All methods take `&self`: share it in an `Arc` to send
/// and receive from different tasks.
pub struct UdpLink {
    socket: UdpSocket,
    mac: Addr,
    group: SocketAddrV4,
    channel: AtomicU8,
    sequence: AtomicU16,
    counters: Counters,
    capture: Option<Capture>,
}

impl fmt::Debug for UdpLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UdpLink")
            .field("mac", &self.mac)
            .field("group", &self.group)
            .field("channel", &self.channel())
            .finish_non_exhaustive()
    }
}

impl UdpLink {
    /// Joins the link. Several processes (and several links in one process) may bind the
    /// same group and port. Must be called inside a tokio runtime. A port of 0 picks a free
    /// port; [`Self::group_addr`] tells which, for the other endpoints.
    pub fn bind(config: UdpLinkConfig) -> io::Result<UdpLink> {
        if config.mac.0[0] & 0x01 != 0 {
            return Err(LinkError::NotUnicastMac { mac: config.mac }.into());
        }
        let channel = check_channel(config.channel)?;
        let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
        socket.set_reuse_address(true)?;
        socket.set_reuse_port(true)?;
        // Binding the group (not 0.0.0.0) keeps unrelated traffic to the port out.
        socket.bind(&SocketAddr::V4(config.group).into())?;
        if config.group.ip().is_multicast() {
            socket.join_multicast_v4(config.group.ip(), &config.interface)?;
            socket.set_multicast_if_v4(&config.interface)?;
            socket.set_multicast_loop_v4(true)?;
            socket.set_multicast_ttl_v4(config.ttl)?;
        } else {
            socket.set_broadcast(true)?;
        }
        socket.set_nonblocking(true)?;
        let std_socket: std::net::UdpSocket = socket.into();
        let group = match std_socket.local_addr()? {
            SocketAddr::V4(bound) => SocketAddrV4::new(*config.group.ip(), bound.port()),
            SocketAddr::V6(_) => config.group,
        };
        Ok(UdpLink {
            socket: UdpSocket::from_std(std_socket)?,
            mac: config.mac,
            group,
            channel: AtomicU8::new(channel),
            sequence: AtomicU16::new(0),
            counters: Counters::default(),
            capture: None,
        })
    }

    /// Records every frame this endpoint sends and delivers into `capture` (`--pcap`).
    pub fn with_capture(mut self, capture: Capture) -> Self {
        self.capture = Some(capture);
        self
    }

    /// Taps the 802.11 frame of a datagram that was sent or delivered.
    fn tap(&self, channel: u8, datagram: &[u8]) {
        if let Some(capture) = &self.capture {
            capture.frame(channel, None, &datagram[DATAGRAM_HEADER_LEN..]);
        }
    }

    /// Our MAC address.
    pub fn local_addr(&self) -> Addr {
        self.mac
    }

    /// The group (or broadcast) address and port datagrams go to.
    pub fn group_addr(&self) -> SocketAddrV4 {
        self.group
    }

    /// The channel we listen on.
    pub fn channel(&self) -> u8 {
        self.channel.load(Ordering::Relaxed)
    }

    /// Changes the listening channel (as an ESP-NOW radio retunes).
    pub fn set_channel(&self, channel: u8) -> io::Result<()> {
        self.channel
            .store(check_channel(channel)?, Ordering::Relaxed);
        Ok(())
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> LinkStats {
        let c = &self.counters;
        LinkStats {
            sent: c.sent.load(Ordering::Relaxed),
            delivered: c.delivered.load(Ordering::Relaxed),
            malformed: c.malformed.load(Ordering::Relaxed),
            own: c.own.load(Ordering::Relaxed),
            other_channel: c.other_channel.load(Ordering::Relaxed),
            not_for_us: c.not_for_us.load(Ordering::Relaxed),
        }
    }

    /// Sends a protocol transmit on its channel.
    pub async fn send(&self, transmit: &Transmit) -> io::Result<()> {
        self.send_to(transmit.dst, transmit.channel, &transmit.frame)
            .await
    }

    /// Sends `frame` to `dst` (unicast or broadcast) on `channel`. Frames over 250 bytes
    /// and channels outside 1..=14 are refused with an `InvalidInput` [`LinkError`].
    pub async fn send_to(&self, dst: Addr, channel: u8, frame: &[u8]) -> io::Result<()> {
        let mut datagram = [0u8; MAX_DATAGRAM];
        let len = self.build_datagram(dst, channel, frame, &mut datagram)?;
        self.socket.send_to(&datagram[..len], self.group).await?;
        bump(&self.counters.sent);
        self.tap(channel, &datagram[..len]);
        Ok(())
    }

    fn build_datagram(
        &self,
        dst: Addr,
        channel: u8,
        frame: &[u8],
        out: &mut [u8; MAX_DATAGRAM],
    ) -> io::Result<usize> {
        let mut random = [0u8; 4];
        getrandom::fill(&mut random)
            .map_err(|error| io::Error::other(format!("no OS randomness: {error}")))?;
        let sequence_number = self.sequence.fetch_add(1, Ordering::Relaxed) & 0x0fff;
        let header = DatagramHeader {
            src: self.mac,
            dst,
            channel,
            sequence_number,
            random,
        };
        Ok(encode_datagram(&header, frame, out)?)
    }

    /// Sends raw bytes to the link's group, bypassing the codec. For tests and tools that
    /// need to inject malformed or foreign datagrams.
    pub async fn send_raw(&self, datagram: &[u8]) -> io::Result<()> {
        self.socket.send_to(datagram, self.group).await.map(|_| ())
    }

    /// Waits for the next frame for us on our channel. Only socket errors are returned;
    /// malformed or filtered datagrams are counted (see [`Self::stats`]) and skipped.
    pub async fn recv(&self) -> io::Result<Received> {
        let mut buffer = [0u8; RECV_BUFFER];
        loop {
            let (len, _from) = self.socket.recv_from(&mut buffer).await?;
            if let Some(received) = self.accept(&buffer[..len]) {
                bump(&self.counters.delivered);
                self.tap(received.channel, &buffer[..len]);
                return Ok(received);
            }
        }
    }

    /// Applies the parse and the filters to one datagram, counting what it drops.
    fn accept(&self, datagram: &[u8]) -> Option<Received> {
        let Some(frame) = parse_datagram(datagram) else {
            bump(&self.counters.malformed);
            return None;
        };
        if frame.src == self.mac {
            bump(&self.counters.own);
            return None;
        }
        if frame.channel != self.channel() {
            bump(&self.counters.other_channel);
            return None;
        }
        if frame.dst != self.mac && !frame.dst.is_broadcast() {
            bump(&self.counters.not_for_us);
            return None;
        }
        Some(frame)
    }
}

/// Everything in a link datagram besides the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DatagramHeader {
    /// Sender's MAC (addr2).
    pub src: Addr,
    /// Destination MAC or broadcast (addr1).
    pub dst: Addr,
    /// Channel the frame is sent on (1..=14).
    pub channel: u8,
    /// 802.11 sequence number (12 bits used).
    pub sequence_number: u16,
    /// ESP-NOW random bytes.
    pub random: [u8; 4],
}

/// Encodes one link datagram (`MAGIC`, channel, ESP-NOW frame with FCS, addr3 broadcast
/// as ESP32s send) into `out` and returns its length. What [`UdpLink::send_to`] sends;
/// public for tools that write captures or inject traffic.
pub fn encode_datagram(
    header: &DatagramHeader,
    frame: &[u8],
    out: &mut [u8; MAX_DATAGRAM],
) -> Result<usize, LinkError> {
    if frame.len() > MAX_FRAME {
        return Err(LinkError::FrameTooLong { len: frame.len() });
    }
    let channel = check_channel(header.channel)?;
    let repr = EspNowRepr {
        retry: false,
        duration: 0,
        dst: header.dst,
        src: header.src,
        addr3: Addr::BROADCAST,
        sequence_number: header.sequence_number & 0x0fff,
        random: header.random,
        version: espnow::ESPNOW_VERSION_1,
        body: frame,
    };
    out[..4].copy_from_slice(&MAGIC);
    out[4] = channel;
    // Cannot fail: the body is at most 250 bytes and `out` holds the largest frame.
    let frame_len = repr
        .emit(&mut out[DATAGRAM_HEADER_LEN..], true)
        .map_err(|_| LinkError::FrameTooLong { len: frame.len() })?;
    Ok(DATAGRAM_HEADER_LEN + frame_len)
}

/// Parses one link datagram (`MAGIC`, channel, ESP-NOW frame with a valid FCS), without
/// filtering. `None` for anything malformed. Useful to decode captures of the link.
pub fn parse_datagram(datagram: &[u8]) -> Option<Received> {
    if datagram.len() > MAX_DATAGRAM
        || datagram.len() < DATAGRAM_HEADER_LEN
        || datagram[..4] != MAGIC
    {
        return None;
    }
    let channel = check_channel(datagram[4]).ok()?;
    let frame = EspNowFrame::new_checked(&datagram[DATAGRAM_HEADER_LEN..]).ok()?;
    // The link always sends an FCS: a missing or wrong one means corruption or a forgery
    // by something that is not a zerotouch link endpoint.
    if !matches!(frame.fcs(), Fcs::Valid(_)) {
        return None;
    }
    let body = heapless::Vec::from_slice(frame.body()).ok()?;
    Some(Received {
        src: frame.src(),
        dst: frame.dst(),
        channel,
        frame: body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_can_be_shared_between_tasks() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<UdpLink>();
    }

    #[test]
    fn encoded_datagram_parses_back_and_is_bounded() {
        let header = DatagramHeader {
            src: Addr([2, 0, 0, 0, 0, 1]),
            dst: Addr::BROADCAST,
            channel: 14,
            sequence_number: 0xffff,
            random: [1, 2, 3, 4],
        };
        let mut out = [0u8; MAX_DATAGRAM];
        let body = [0x5a; MAX_FRAME];
        let len = encode_datagram(&header, &body, &mut out).expect("encode");
        assert_eq!(len, MAX_DATAGRAM);
        let parsed = parse_datagram(&out[..len]).expect("parse");
        assert_eq!(
            (parsed.src, parsed.dst, parsed.channel),
            (header.src, header.dst, 14)
        );
        assert_eq!(&parsed.frame[..], &body[..]);
        let bad_channel = DatagramHeader {
            channel: 15,
            ..header
        };
        assert_eq!(
            encode_datagram(&bad_channel, b"x", &mut out),
            Err(LinkError::InvalidChannel { channel: 15 })
        );
    }
}
