//! The host side of an ESP32-C3 radio bridge on a serial port (`--link serial:PATH`).
//!
//! The port is opened raw with rustix termios (no new dependency, no `unsafe`, and no
//! modem-line calls at all): esptool and espflash reset an ESP32-C3 on USB-Serial-JTAG by
//! driving RTS without DTR (`TIOCMSET`/`TIOCMBIS`); this module never issues those ioctls,
//! so opening, reopening and closing never reset or boot-mode the chip. `HUPCL` is cleared
//! so closing leaves the lines as they are. An exclusive `flock` keeps a second daemon off
//! the port.
//!
//! A background task owns the port: it asks for the bridge's Hello and checks its protocol
//! version, retunes the channel, writes `Send`s (at most [`MAX_IN_FLIGHT`] awaiting their
//! `TxStatus`; more is a dropped frame, never a blocked caller), reads frames through the
//! COBS decoder (garbage counted), notices a fresh boot Hello (the bridge rebooted: the
//! channel is set again), and when the port vanishes (EOF, EIO, unplug) reopens it with
//! backoff while the caller's state lives on. An unacknowledged unicast is a lost frame the
//! protocol retransmits.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

use rustix::fs::{FlockOperation, Mode, OFlags};
use rustix::termios::{self, ControlModes, OptionalActions};
use tokio::net::unix::pipe;
use tokio::sync::{Mutex, mpsc};
use tokio::time::{Instant, timeout};
use zerotouch_bridge::frame::{FrameDecoder, MAX_WIRE_LEN};
use zerotouch_bridge::message::{Hello, HelloReason};
use zerotouch_bridge::{BridgeMsg, HostMsg, PROTOCOL_VERSION, TxOutcome};
use zerotouch_proto::{Addr, MAX_FRAME, Transmit};

/// Sends awaiting their `TxStatus` (the bridge queues 8).
pub const MAX_IN_FLIGHT: usize = 8;
/// A `Send` whose `TxStatus` has not come within this long is given up (counted).
const TX_STATUS_TIMEOUT: Duration = Duration::from_secs(1);
/// Received frames waiting for the caller; more are dropped and counted.
const RX_QUEUE: usize = 256;
/// Frames waiting for the port task.
const TX_QUEUE: usize = 64;
/// Reopen backoff bounds.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// How often `GetHello` is repeated while waiting for a Hello.
const HELLO_RETRY: Duration = Duration::from_millis(300);
/// A write the port does not take within this long is abandoned (a wedged bridge).
const WRITE_TIMEOUT: Duration = Duration::from_secs(1);

/// How to reach the bridge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SerialConfig {
    /// The port, e.g. `/dev/ttyACM0` or a `/dev/serial/by-id/...` link.
    pub path: PathBuf,
    /// Channel to listen on (1..=14).
    pub channel: u8,
    /// How long to wait for the bridge's Hello before saying it is not a bridge.
    pub hello_timeout: Duration,
}

impl SerialConfig {
    /// `path` on `channel`, waiting 3 s for the Hello.
    pub fn new(path: impl Into<PathBuf>, channel: u8) -> Self {
        Self {
            path: path.into(),
            channel,
            hello_timeout: Duration::from_secs(3),
        }
    }
}

/// Why the bridge could not be used; each names the fix.
#[derive(Debug)]
pub enum SerialError {
    /// The path does not exist.
    NotFound(PathBuf),
    /// No permission to open it.
    PermissionDenied(PathBuf),
    /// The path is not a terminal device.
    NotATty(PathBuf),
    /// Another process holds the port.
    Busy(PathBuf),
    /// No Hello within the timeout.
    NoHello(PathBuf, Duration),
    /// A bridge of another protocol version.
    WrongVersion(PathBuf, Hello),
    /// Any other I/O error.
    Io(PathBuf, io::Error),
}

impl fmt::Display for SerialError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotFound(p) => write!(
                f,
                "no serial port {}: is the bridge plugged in? `zerotouch radio list` shows the ports",
                p.display()
            ),
            Self::PermissionDenied(p) => write!(
                f,
                "permission denied on {}: add your user to the dialout group (`sudo usermod -aG dialout $USER`, then log in again)",
                p.display()
            ),
            Self::NotATty(p) => write!(
                f,
                "{} is not a serial port (not a tty): give the bridge's port, e.g. /dev/ttyACM0",
                p.display()
            ),
            Self::Busy(p) => write!(
                f,
                "{} is in use by another process (another zerotouch or a serial monitor): stop it first",
                p.display()
            ),
            Self::NoHello(p, t) => write!(
                f,
                "{} sent no bridge Hello within {} s: it is not a zerotouch radio bridge (flash firmware/esp32c3-bridge onto it; see docs/hardware.md)",
                p.display(),
                t.as_secs_f32()
            ),
            Self::WrongVersion(p, hello) => write!(
                f,
                "the bridge on {} speaks bridge protocol v{} (firmware {}), this zerotouch speaks v{PROTOCOL_VERSION}: flash the bridge firmware of this release",
                p.display(),
                hello.protocol_version,
                hello.firmware
            ),
            Self::Io(p, e) => write!(f, "serial port {}: {e}", p.display()),
        }
    }
}

impl std::error::Error for SerialError {}

impl From<SerialError> for io::Error {
    fn from(error: SerialError) -> Self {
        let kind = match error {
            SerialError::NotFound(_) => io::ErrorKind::NotFound,
            SerialError::PermissionDenied(_) => io::ErrorKind::PermissionDenied,
            SerialError::Busy(_) => io::ErrorKind::ResourceBusy,
            SerialError::NoHello(..) => io::ErrorKind::TimedOut,
            _ => io::ErrorKind::InvalidData,
        };
        io::Error::new(kind, error)
    }
}

/// A frame the bridge heard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heard {
    /// Sender.
    pub src: Addr,
    /// Destination (the bridge or broadcast).
    pub dst: Addr,
    /// Channel.
    pub channel: u8,
    /// Signal strength, dBm.
    pub rssi: i8,
    /// The bridge's receive time, µs since its boot.
    pub rx_time_us: u64,
    /// Payload.
    pub frame: heapless::Vec<u8, MAX_FRAME>,
}

/// Counters of the serial link.
#[derive(Debug, Default)]
struct Counters {
    sent: AtomicU64,
    delivered: AtomicU64,
    not_acked: AtomicU64,
    tx_failed: AtomicU64,
    tx_dropped: AtomicU64,
    status_lost: AtomicU64,
    received: AtomicU64,
    rx_dropped: AtomicU64,
    bad_frames: AtomicU64,
    garbage_bytes: AtomicU64,
    bridge_reboots: AtomicU64,
    reopens: AtomicU64,
}

/// A snapshot of the serial link's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SerialStats {
    /// `Send`s written to the bridge.
    pub sent: u64,
    /// `TxStatus` delivered.
    pub delivered: u64,
    /// Unicasts not acknowledged (losses the protocol retransmits).
    pub not_acked: u64,
    /// `TxStatus` failed (bridge queue full, radio error).
    pub tx_failed: u64,
    /// Frames dropped on the host: in-flight window full, or the port was down.
    pub tx_dropped: u64,
    /// `Send`s whose `TxStatus` never came.
    pub status_lost: u64,
    /// Frames received from the bridge.
    pub received: u64,
    /// Received frames dropped because the caller did not keep up.
    pub rx_dropped: u64,
    /// Runs on the line that were not frames (boot text, logs, noise).
    pub bad_frames: u64,
    /// Bytes in those runs.
    pub garbage_bytes: u64,
    /// Boot Hellos after the first: the bridge rebooted.
    pub bridge_reboots: u64,
    /// Times the port was reopened after it vanished.
    pub reopens: u64,
}

impl Counters {
    fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self) -> SerialStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        SerialStats {
            sent: get(&self.sent),
            delivered: get(&self.delivered),
            not_acked: get(&self.not_acked),
            tx_failed: get(&self.tx_failed),
            tx_dropped: get(&self.tx_dropped),
            status_lost: get(&self.status_lost),
            received: get(&self.received),
            rx_dropped: get(&self.rx_dropped),
            bad_frames: get(&self.bad_frames),
            garbage_bytes: get(&self.garbage_bytes),
            bridge_reboots: get(&self.bridge_reboots),
            reopens: get(&self.reopens),
        }
    }
}

/// What the caller asks of the port task.
// Frames travel inline, as everywhere in the link layer (`Transmit` holds its bytes).
#[allow(clippy::large_enum_variant)]
enum Request {
    Send(Transmit),
    SetChannel(u8),
}

/// An open radio bridge.
pub struct SerialLink {
    hello: Hello,
    requests: mpsc::Sender<Request>,
    heard: Mutex<mpsc::Receiver<Heard>>,
    channel: Arc<AtomicU8>,
    counters: Arc<Counters>,
    task: tokio::task::JoinHandle<()>,
}

impl fmt::Debug for SerialLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SerialLink")
            .field("hello", &self.hello)
            .finish_non_exhaustive()
    }
}

impl Drop for SerialLink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SerialLink {
    /// Opens the port, waits for the bridge's Hello, checks its version and sets the channel.
    pub async fn open(config: SerialConfig) -> Result<SerialLink, SerialError> {
        let mut port = Port::open(&config.path)?;
        let counters = Arc::new(Counters::default());
        let hello = port.handshake(&config, &counters).await?;
        let channel = Arc::new(AtomicU8::new(config.channel));
        let (requests, request_rx) = mpsc::channel(TX_QUEUE);
        let (heard_tx, heard) = mpsc::channel(RX_QUEUE);
        let task = PortTask {
            config,
            port: Some(port),
            requests: request_rx,
            heard: heard_tx,
            channel: channel.clone(),
            counters: counters.clone(),
            in_flight: VecDeque::new(),
            next_seq: 0,
            channel_due: false,
        };
        let task = tokio::spawn(task.run());
        Ok(SerialLink {
            hello,
            requests,
            heard: Mutex::new(heard),
            channel,
            counters,
            task,
        })
    }

    /// The bridge's Hello at open.
    pub fn hello(&self) -> &Hello {
        &self.hello
    }

    /// Our address on the air: the bridge's MAC.
    pub fn local_addr(&self) -> Addr {
        Addr(self.hello.mac)
    }

    /// The channel the link listens on.
    pub fn channel(&self) -> u8 {
        self.channel.load(Ordering::Relaxed)
    }

    /// Counters so far.
    pub fn stats(&self) -> SerialStats {
        self.counters.snapshot()
    }

    /// Queues one frame; never waits for the bridge (a full queue drops it, counted).
    pub fn send(&self, transmit: &Transmit) -> io::Result<()> {
        if transmit.frame.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "an ESP-NOW frame needs at least one byte",
            ));
        }
        if self
            .requests
            .try_send(Request::Send(transmit.clone()))
            .is_err()
        {
            Counters::bump(&self.counters.tx_dropped);
        }
        Ok(())
    }

    /// Retunes the bridge.
    pub fn set_channel(&self, channel: u8) -> io::Result<()> {
        if !(1..=14).contains(&channel) {
            return Err(crate::udp::LinkError::InvalidChannel { channel }.into());
        }
        self.channel.store(channel, Ordering::Relaxed);
        // The task re-reads the channel after a reboot or reopen, so a dropped request heals.
        let _ = self.requests.try_send(Request::SetChannel(channel));
        Ok(())
    }

    /// The next frame heard.
    pub async fn recv(&self) -> io::Result<Heard> {
        self.heard.lock().await.recv().await.ok_or_else(|| {
            io::Error::new(io::ErrorKind::BrokenPipe, "the serial link task stopped")
        })
    }
}

/// The open tty, registered with tokio through its pipe types: they take any
/// non-blocking fd (`*_unchecked` skips only their FIFO check), safely.
struct Port {
    rx: pipe::Receiver,
    tx: pipe::Sender,
    decoder: FrameDecoder,
}

impl Port {
    fn open(path: &Path) -> Result<Port, SerialError> {
        let flags = OFlags::RDWR | OFlags::NOCTTY | OFlags::NONBLOCK | OFlags::CLOEXEC;
        let fd = rustix::fs::open(path, flags, Mode::empty()).map_err(|e| match e {
            rustix::io::Errno::NOENT | rustix::io::Errno::NODEV | rustix::io::Errno::NXIO => {
                SerialError::NotFound(path.into())
            }
            rustix::io::Errno::ACCESS | rustix::io::Errno::PERM => {
                SerialError::PermissionDenied(path.into())
            }
            e => SerialError::Io(path.into(), e.into()),
        })?;
        let mut tio = termios::tcgetattr(&fd).map_err(|e| match e {
            rustix::io::Errno::NOTTY | rustix::io::Errno::INVAL => {
                SerialError::NotATty(path.into())
            }
            e => SerialError::Io(path.into(), e.into()),
        })?;
        rustix::fs::flock(&fd, FlockOperation::NonBlockingLockExclusive)
            .map_err(|_| SerialError::Busy(path.into()))?;
        // Raw bytes both ways; no modem-line changes (that is what resets the chip).
        tio.make_raw();
        tio.control_modes |= ControlModes::CLOCAL | ControlModes::CREAD;
        tio.control_modes -= ControlModes::HUPCL;
        termios::tcsetattr(&fd, OptionalActions::Now, &tio)
            .map_err(|e| SerialError::Io(path.into(), e.into()))?;
        // Whatever the bridge wrote before we came is stale.
        let _ = termios::tcflush(&fd, termios::QueueSelector::IFlush);
        let register = || -> io::Result<Port> {
            let write_fd: OwnedFd = fd.try_clone()?;
            Ok(Port {
                rx: pipe::Receiver::from_owned_fd_unchecked(fd)?,
                tx: pipe::Sender::from_owned_fd_unchecked(write_fd)?,
                decoder: FrameDecoder::new(),
            })
        };
        register().map_err(|e| SerialError::Io(path.into(), e))
    }

    /// Writes one message; a port that does not take it within [`WRITE_TIMEOUT`] fails.
    async fn write(&self, msg: HostMsg<'_>) -> io::Result<()> {
        let mut wire = [0u8; MAX_WIRE_LEN];
        let len = msg
            .to_frame(&mut wire)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let write_all = async {
            let mut rest = &wire[..len];
            while !rest.is_empty() {
                self.tx.writable().await?;
                match self.tx.try_write(rest) {
                    Ok(n) => rest = &rest[n..],
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    Err(e) => return Err(e),
                }
            }
            Ok(())
        };
        timeout(WRITE_TIMEOUT, write_all)
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "the bridge does not read"))?
    }

    /// Reads what is there; `Ok(0)` or an error means the port is gone.
    async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            self.rx.readable().await?;
            match self.rx.try_read(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                result => return result,
            }
        }
    }

    /// Decodes `bytes` into bridge messages, counting garbage.
    fn decode(&mut self, bytes: &[u8], counters: &Counters, mut on_msg: impl FnMut(BridgeMsg<'_>)) {
        let before = self.decoder.stats();
        for &byte in bytes {
            // Bad runs are counted by the decoder.
            if let Some(Ok(message)) = self.decoder.push(byte) {
                match BridgeMsg::parse(message) {
                    Ok(msg) => on_msg(msg),
                    Err(err) => tracing::warn!(%err, "unreadable message from the bridge"),
                }
            }
        }
        let after = self.decoder.stats();
        counters
            .bad_frames
            .fetch_add(after.bad_frames - before.bad_frames, Ordering::Relaxed);
        counters.garbage_bytes.fetch_add(
            after.garbage_bytes - before.garbage_bytes,
            Ordering::Relaxed,
        );
    }

    /// Asks for the Hello until one comes, checks its version, sets the channel.
    async fn handshake(
        &mut self,
        config: &SerialConfig,
        counters: &Counters,
    ) -> Result<Hello, SerialError> {
        let io_err = |e| SerialError::Io(config.path.clone(), e);
        let deadline = Instant::now() + config.hello_timeout;
        let mut buf = [0u8; 512];
        let hello = loop {
            self.write(HostMsg::GetHello).await.map_err(io_err)?;
            let retry = Instant::now() + HELLO_RETRY;
            let mut found = None;
            while found.is_none() && Instant::now() < retry.min(deadline) {
                let n = match timeout(retry.min(deadline) - Instant::now(), self.read(&mut buf))
                    .await
                {
                    Err(_) => break,
                    Ok(Ok(0)) => return Err(io_err(io::ErrorKind::UnexpectedEof.into())),
                    Ok(Ok(n)) => n,
                    Ok(Err(e)) => return Err(io_err(e)),
                };
                self.decode(&buf[..n], counters, |msg| {
                    if let BridgeMsg::Hello(hello) = msg {
                        found = Some(hello);
                    }
                });
            }
            if let Some(hello) = found {
                break hello;
            }
            if Instant::now() >= deadline {
                return Err(SerialError::NoHello(
                    config.path.clone(),
                    config.hello_timeout,
                ));
            }
        };
        if hello.protocol_version != PROTOCOL_VERSION {
            return Err(SerialError::WrongVersion(config.path.clone(), hello));
        }
        self.write(HostMsg::SetChannel {
            channel: config.channel,
        })
        .await
        .map_err(io_err)?;
        Ok(hello)
    }
}

/// The background task that owns the port.
struct PortTask {
    config: SerialConfig,
    port: Option<Port>,
    requests: mpsc::Receiver<Request>,
    heard: mpsc::Sender<Heard>,
    channel: Arc<AtomicU8>,
    counters: Arc<Counters>,
    /// Sequence numbers awaiting `TxStatus`, with when they were sent.
    in_flight: VecDeque<(u16, Instant, bool)>,
    next_seq: u16,
    /// The bridge rebooted: its channel must be set again.
    channel_due: bool,
}

impl PortTask {
    async fn run(mut self) {
        let mut buf = [0u8; 1024];
        let mut expiry = tokio::time::interval(TX_STATUS_TIMEOUT / 2);
        loop {
            if self.channel_due {
                self.channel_due = false;
                let channel = self.channel.load(Ordering::Relaxed);
                self.on_request(Request::SetChannel(channel)).await;
            }
            let Some(port) = self.port.as_ref() else {
                self.reopen().await;
                continue;
            };
            tokio::select! {
                read = port.read(&mut buf) => match read {
                    Ok(n) if n > 0 => self.on_bytes(n, &buf),
                    Ok(_) => self.lost("end of file"),
                    Err(err) => self.lost(&err.to_string()),
                },
                request = self.requests.recv() => match request {
                    Some(request) => self.on_request(request).await,
                    None => return,
                },
                _ = expiry.tick() => self.expire(),
            }
        }
    }

    fn on_bytes(&mut self, n: usize, buf: &[u8]) {
        let mut messages = Vec::new();
        if let Some(port) = self.port.as_mut() {
            port.decode(&buf[..n], &self.counters, |msg| {
                messages.push(OwnedMsg::from(msg))
            });
        }
        for msg in messages {
            self.on_message(msg);
        }
    }

    fn on_message(&mut self, msg: OwnedMsg) {
        match msg {
            OwnedMsg::Heard(heard) => {
                Counters::bump(&self.counters.received);
                if self.heard.try_send(heard).is_err() {
                    Counters::bump(&self.counters.rx_dropped);
                }
            }
            OwnedMsg::TxStatus(seq, outcome) => self.on_tx_status(seq, outcome),
            OwnedMsg::Hello(hello) if hello.reason == HelloReason::Boot => {
                Counters::bump(&self.counters.bridge_reboots);
                tracing::warn!(
                    port = %self.config.path.display(),
                    firmware = %hello.firmware,
                    "the radio bridge rebooted; setting its channel again"
                );
                self.in_flight.clear();
                // Written from the loop, awaited like every other write.
                self.channel_due = true;
            }
            OwnedMsg::Hello(_) => {}
            OwnedMsg::ChannelSet(channel, Some(code)) => {
                tracing::warn!(channel, ?code, "the bridge could not change channel")
            }
            OwnedMsg::ChannelSet(..) => {}
            OwnedMsg::Error(code) => tracing::warn!(?code, "the bridge reported an error"),
            OwnedMsg::Stats(stats) => tracing::debug!(?stats, "bridge counters"),
        }
    }

    fn on_tx_status(&mut self, seq: u16, outcome: TxOutcome) {
        let Some(index) = self.in_flight.iter().position(|(s, ..)| *s == seq) else {
            return;
        };
        let unicast = self
            .in_flight
            .remove(index)
            .is_some_and(|(_, _, unicast)| unicast);
        match outcome {
            TxOutcome::Delivered => Counters::bump(&self.counters.delivered),
            TxOutcome::NotAcked => {
                Counters::bump(&self.counters.not_acked);
                if unicast {
                    tracing::debug!(
                        seq,
                        "unicast not acknowledged: a loss the protocol retransmits"
                    );
                }
            }
            TxOutcome::Failed(code) => {
                Counters::bump(&self.counters.tx_failed);
                tracing::debug!(seq, ?code, "the bridge did not send a frame");
            }
        }
    }

    fn expire(&mut self) {
        let now = Instant::now();
        while let Some(&(_, sent, _)) = self.in_flight.front() {
            if now.duration_since(sent) < TX_STATUS_TIMEOUT {
                break;
            }
            self.in_flight.pop_front();
            Counters::bump(&self.counters.status_lost);
        }
    }

    async fn on_request(&mut self, request: Request) {
        let Some(port) = self.port.as_ref() else {
            return;
        };
        let result = match request {
            Request::SetChannel(channel) => port.write(HostMsg::SetChannel { channel }).await,
            Request::Send(transmit) => {
                if self.in_flight.len() >= MAX_IN_FLIGHT {
                    Counters::bump(&self.counters.tx_dropped);
                    return;
                }
                let seq = self.next_seq;
                self.next_seq = seq.wrapping_add(1);
                let msg = HostMsg::Send {
                    seq,
                    dest: transmit.dst.0,
                    channel: transmit.channel,
                    payload: &transmit.frame,
                };
                let written = port.write(msg).await;
                if written.is_ok() {
                    Counters::bump(&self.counters.sent);
                    let unicast = transmit.dst != Addr::BROADCAST;
                    self.in_flight.push_back((seq, Instant::now(), unicast));
                } else {
                    Counters::bump(&self.counters.tx_dropped);
                }
                written
            }
        };
        if let Err(err) = result {
            self.lost(&err.to_string());
        }
    }

    /// The port is gone: drop it; the loop reopens it.
    fn lost(&mut self, why: &str) {
        tracing::warn!(port = %self.config.path.display(), why, "lost the radio bridge; reopening");
        self.port = None;
        self.in_flight.clear();
    }

    /// Reopens with backoff until the bridge answers; frames sent meanwhile are dropped.
    async fn reopen(&mut self) {
        let mut backoff = BACKOFF_MIN;
        loop {
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                request = self.requests.recv() => {
                    match request {
                        Some(Request::Send(_)) => Counters::bump(&self.counters.tx_dropped),
                        Some(Request::SetChannel(_)) => {}
                        None => return,
                    }
                    continue;
                }
            }
            let mut config = self.config.clone();
            config.channel = self.channel.load(Ordering::Relaxed);
            let attempt = async {
                let mut port = Port::open(&config.path)?;
                port.handshake(&config, &self.counters).await?;
                Ok::<_, SerialError>(port)
            };
            match attempt.await {
                Ok(port) => {
                    Counters::bump(&self.counters.reopens);
                    tracing::info!(port = %config.path.display(), channel = config.channel, "radio bridge back");
                    self.port = Some(port);
                    return;
                }
                Err(err) => {
                    tracing::debug!(%err, "radio bridge not back yet");
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
    }
}

/// A bridge message copied out of the decoder.
#[allow(clippy::large_enum_variant)]
enum OwnedMsg {
    Hello(Hello),
    Heard(Heard),
    TxStatus(u16, TxOutcome),
    ChannelSet(u8, Option<zerotouch_bridge::ErrorCode>),
    Error(zerotouch_bridge::ErrorCode),
    Stats(zerotouch_bridge::Stats),
}

impl From<BridgeMsg<'_>> for OwnedMsg {
    fn from(msg: BridgeMsg<'_>) -> Self {
        match msg {
            BridgeMsg::Hello(hello) => Self::Hello(hello),
            BridgeMsg::Received {
                src,
                dst,
                channel,
                rssi,
                rx_time_us,
                payload,
            } => Self::Heard(Heard {
                src: Addr(src),
                dst: Addr(dst),
                channel,
                rssi,
                rx_time_us,
                frame: heapless::Vec::from_slice(payload).unwrap_or_default(),
            }),
            BridgeMsg::TxStatus { seq, outcome } => Self::TxStatus(seq, outcome),
            BridgeMsg::ChannelSet { channel, error } => Self::ChannelSet(channel, error),
            BridgeMsg::Stats(stats) => Self::Stats(stats),
            BridgeMsg::Error { code } => Self::Error(code),
        }
    }
}
