//! [`BridgeCore`]: the bridge's logic as a sans-IO state machine (quinn-proto style).
//!
//! The firmware (or a host emulator) owns the USB port and the radio and drives the core:
//!
//! ```text
//! bytes from the host   -> handle_host_bytes()  -> poll_radio()  -> radio commands
//! events from the radio -> handle_radio()       -> poll_host()   -> frames for the host
//! ```
//!
//! The core never blocks and never allocates: the transmit queue, the host queue and the
//! peer table are bounded, and whatever does not fit is dropped and counted by cause in
//! [`Stats`]. One radio operation is outstanding at a time: after a `Send` the core waits
//! for [`RadioEvent::SendDone`], after a `SetChannel` for [`RadioEvent::ChannelSet`].
//! `AddPeer`/`RemovePeer` need no answer. The broadcast peer is added first and kept;
//! unicast peers are added on first use and the least recently used one is evicted when
//! the table is full (ESP-NOW holds 20 peers).

use heapless::{Deque, Vec};

use crate::frame::{FrameDecoder, MAX_WIRE_LEN};
use crate::message::{
    BridgeMsg, ErrorCode, FirmwareVersion, Hello, HelloReason, HostMsg, Stats, TxOutcome,
};
use crate::{BROADCAST, MAX_PAYLOAD, Mac, PROTOCOL_VERSION};

/// Host-queue slots kept free of `Received` frames, so answers to the host still fit.
const CONTROL_RESERVE: usize = 4;

/// What the bridge is and where it starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BridgeConfig {
    /// The radio's station MAC.
    pub mac: Mac,
    /// Firmware version reported in Hello.
    pub firmware: FirmwareVersion,
    /// Channel the radio is on at boot.
    pub channel: u8,
}

/// An operation for the radio driver.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)]
pub enum RadioCommand {
    /// Retune; answer with [`RadioEvent::ChannelSet`].
    SetChannel(u8),
    /// Add an ESP-NOW peer (channel 0: the current one, unencrypted).
    AddPeer(Mac),
    /// Remove an ESP-NOW peer.
    RemovePeer(Mac),
    /// Send one frame; answer with [`RadioEvent::SendDone`].
    Send {
        /// Destination (a peer already added).
        dest: Mac,
        /// 1..=250 bytes.
        payload: Vec<u8, MAX_PAYLOAD>,
    },
}

/// Something the radio driver reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RadioEvent<'a> {
    /// A frame was received.
    Received {
        /// Sender.
        src: Mac,
        /// Destination.
        dst: Mac,
        /// Channel.
        channel: u8,
        /// Signal strength, dBm.
        rssi: i8,
        /// Receive time, microseconds since boot.
        rx_time_us: u64,
        /// Payload (frames over 250 bytes are counted and dropped).
        payload: &'a [u8],
    },
    /// The answer to `SetChannel`: `Ok(channel)` or the radio refused.
    ChannelSet(Result<u8, ()>),
    /// The answer to `Send`.
    SendDone(TxOutcome),
    /// The driver's own receive queue overflowed and lost `dropped` frames.
    Overflow {
        /// Frames lost.
        dropped: u32,
    },
}

/// One `Send` waiting for the radio.
#[derive(Clone, Debug)]
struct PendingSend {
    seq: u16,
    dest: Mac,
    channel: u8,
    payload: Vec<u8, MAX_PAYLOAD>,
}

/// A host message parsed and copied out of the decoder's buffer.
// No allocator: frames live inline, in bounded queues.
#[allow(clippy::large_enum_variant)]
enum Command {
    GetHello,
    GetStats,
    SetChannel(u8),
    Send(PendingSend),
    Invalid(ErrorCode),
}

/// A message waiting for the host (an owned [`BridgeMsg`]).
#[derive(Clone, Debug)]
#[allow(clippy::large_enum_variant)]
enum Outgoing {
    Hello(Hello),
    ChannelSet {
        channel: u8,
        error: Option<ErrorCode>,
    },
    TxStatus {
        seq: u16,
        outcome: TxOutcome,
    },
    Received {
        src: Mac,
        dst: Mac,
        channel: u8,
        rssi: i8,
        rx_time_us: u64,
        payload: Vec<u8, MAX_PAYLOAD>,
    },
    Stats(Stats),
    Error(ErrorCode),
}

impl Outgoing {
    fn as_msg(&self) -> BridgeMsg<'_> {
        match self {
            Self::Hello(hello) => BridgeMsg::Hello(*hello),
            Self::ChannelSet { channel, error } => BridgeMsg::ChannelSet {
                channel: *channel,
                error: *error,
            },
            Self::TxStatus { seq, outcome } => BridgeMsg::TxStatus {
                seq: *seq,
                outcome: *outcome,
            },
            Self::Received {
                src,
                dst,
                channel,
                rssi,
                rx_time_us,
                payload,
            } => BridgeMsg::Received {
                src: *src,
                dst: *dst,
                channel: *channel,
                rssi: *rssi,
                rx_time_us: *rx_time_us,
                payload,
            },
            Self::Stats(stats) => BridgeMsg::Stats(*stats),
            Self::Error(code) => BridgeMsg::Error { code: *code },
        }
    }
}

/// The radio operation the core waits on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Busy {
    Idle,
    /// A channel change, for the host or for the send at the head of the queue.
    Channel {
        for_send: bool,
    },
    Sending {
        seq: u16,
    },
}

/// The bridge's logic. `TX` sends may wait for the radio, `HOST` messages for the host,
/// `PEERS` unicast peers are kept (besides broadcast; ESP-NOW allows 20 in all).
pub struct BridgeCore<const TX: usize = 8, const HOST: usize = 16, const PEERS: usize = 16> {
    config: BridgeConfig,
    channel: u8,
    decoder: FrameDecoder,
    tx_queue: Deque<PendingSend, TX>,
    host_queue: Deque<Outgoing, HOST>,
    /// Unicast peers and when each was last used.
    peers: Vec<(Mac, u32), PEERS>,
    use_clock: u32,
    broadcast_peer_added: bool,
    requested_channel: Option<u8>,
    busy: Busy,
    stats: Stats,
}

impl<const TX: usize, const HOST: usize, const PEERS: usize> BridgeCore<TX, HOST, PEERS> {
    /// A freshly booted bridge: its first frame for the host is a Hello (reason `Boot`).
    pub fn new(config: BridgeConfig) -> Self {
        const {
            assert!(
                HOST > CONTROL_RESERVE,
                "the host queue needs room beyond the control reserve"
            )
        };
        let mut core = Self {
            config,
            channel: config.channel,
            decoder: FrameDecoder::new(),
            tx_queue: Deque::new(),
            host_queue: Deque::new(),
            peers: Vec::new(),
            use_clock: 0,
            broadcast_peer_added: false,
            requested_channel: None,
            busy: Busy::Idle,
            stats: Stats::default(),
        };
        core.queue_control(Outgoing::Hello(core.hello(HelloReason::Boot)));
        core
    }

    /// The counters (host-frame counters included).
    pub fn stats(&self) -> Stats {
        let decoder = self.decoder.stats();
        Stats {
            host_bad_frames: decoder.bad_frames as u32,
            host_garbage_bytes: decoder.garbage_bytes as u32,
            ..self.stats
        }
    }

    /// The channel the radio is on.
    pub fn channel(&self) -> u8 {
        self.channel
    }

    /// Feeds bytes read from the host.
    pub fn handle_host_bytes(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            let command = match self.decoder.push(byte) {
                None | Some(Err(_)) => continue,
                Some(Ok(message)) => match HostMsg::parse(message) {
                    Ok(msg) => Command::from(msg),
                    Err(error) => Command::Invalid(ErrorCode::for_parse_error(error)),
                },
            };
            self.apply(command);
        }
    }

    fn apply(&mut self, command: Command) {
        match command {
            Command::Invalid(code) => self.queue_control(Outgoing::Error(code)),
            Command::GetHello => {
                self.queue_control(Outgoing::Hello(self.hello(HelloReason::Requested)))
            }
            Command::GetStats => self.queue_control(Outgoing::Stats(self.stats())),
            Command::SetChannel(channel) => self.requested_channel = Some(channel),
            Command::Send(send) => {
                if let Err(send) = self.tx_queue.push_back(send) {
                    self.stats.drop_tx_queue_full += 1;
                    self.queue_tx_status(send.seq, TxOutcome::Failed(ErrorCode::TxQueueFull));
                }
            }
        }
    }

    /// The next radio operation, if the radio is free for one.
    pub fn poll_radio(&mut self) -> Option<RadioCommand> {
        if !self.broadcast_peer_added {
            self.broadcast_peer_added = true;
            return Some(RadioCommand::AddPeer(BROADCAST));
        }
        if self.busy != Busy::Idle {
            return None;
        }
        if let Some(channel) = self.requested_channel.take() {
            self.busy = Busy::Channel { for_send: false };
            return Some(RadioCommand::SetChannel(channel));
        }
        let (dest, channel) = self.tx_queue.front().map(|s| (s.dest, s.channel))?;
        if channel != self.channel {
            self.busy = Busy::Channel { for_send: true };
            return Some(RadioCommand::SetChannel(channel));
        }
        if let Some(peer_command) = self.ensure_peer(dest) {
            return Some(peer_command);
        }
        let send = self.tx_queue.pop_front()?;
        self.touch_peer(send.dest);
        self.busy = Busy::Sending { seq: send.seq };
        self.stats.tx_frames += 1;
        Some(RadioCommand::Send {
            dest: send.dest,
            payload: send.payload,
        })
    }

    /// `None` when `dest` can be sent to; otherwise the peer-table change to make first.
    fn ensure_peer(&mut self, dest: Mac) -> Option<RadioCommand> {
        if dest == BROADCAST || self.peers.iter().any(|(mac, _)| *mac == dest) {
            return None;
        }
        if self.peers.is_full() {
            let oldest = (0..self.peers.len()).min_by_key(|&i| self.peers[i].1)?;
            let (evicted, _) = self.peers.swap_remove(oldest);
            self.stats.peer_evictions += 1;
            return Some(RadioCommand::RemovePeer(evicted));
        }
        let _ = self.peers.push((dest, self.use_clock));
        Some(RadioCommand::AddPeer(dest))
    }

    fn touch_peer(&mut self, dest: Mac) {
        self.use_clock = self.use_clock.wrapping_add(1);
        let now = self.use_clock;
        if let Some(peer) = self.peers.iter_mut().find(|(mac, _)| *mac == dest) {
            peer.1 = now;
        }
    }

    /// Feeds an event from the radio driver.
    pub fn handle_radio(&mut self, event: RadioEvent<'_>) {
        match event {
            RadioEvent::Received {
                src,
                dst,
                channel,
                rssi,
                rx_time_us,
                payload,
            } => self.received(src, dst, channel, rssi, rx_time_us, payload),
            RadioEvent::ChannelSet(result) => self.channel_set(result),
            RadioEvent::SendDone(outcome) => self.send_done(outcome),
            RadioEvent::Overflow { dropped } => {
                self.stats.drop_radio_overflow =
                    self.stats.drop_radio_overflow.wrapping_add(dropped)
            }
        }
    }

    fn received(
        &mut self,
        src: Mac,
        dst: Mac,
        channel: u8,
        rssi: i8,
        rx_time_us: u64,
        payload: &[u8],
    ) {
        self.stats.rx_frames += 1;
        let Ok(payload) = Vec::from_slice(payload) else {
            self.stats.rx_too_long += 1;
            return;
        };
        if self.host_queue.len() + CONTROL_RESERVE >= HOST {
            self.stats.drop_host_queue_full += 1;
            return;
        }
        let frame = Outgoing::Received {
            src,
            dst,
            channel,
            rssi,
            rx_time_us,
            payload,
        };
        let _ = self.host_queue.push_back(frame);
    }

    fn channel_set(&mut self, result: Result<u8, ()>) {
        let Busy::Channel { for_send } = self.busy else {
            return;
        };
        self.busy = Busy::Idle;
        let error = match result {
            Ok(channel) => {
                self.channel = channel;
                None
            }
            Err(()) => Some(ErrorCode::Radio),
        };
        if error.is_some() && for_send {
            // The send at the head can never go out on this channel: fail it, not the queue.
            if let Some(send) = self.tx_queue.pop_front() {
                self.stats.tx_failed += 1;
                self.queue_tx_status(send.seq, TxOutcome::Failed(ErrorCode::Radio));
            }
        }
        self.queue_control(Outgoing::ChannelSet {
            channel: self.channel,
            error,
        });
    }

    fn send_done(&mut self, outcome: TxOutcome) {
        let Busy::Sending { seq } = self.busy else {
            return;
        };
        self.busy = Busy::Idle;
        match outcome {
            TxOutcome::Delivered => self.stats.tx_delivered += 1,
            TxOutcome::NotAcked => self.stats.tx_not_acked += 1,
            TxOutcome::Failed(_) => self.stats.tx_failed += 1,
        }
        self.queue_tx_status(seq, outcome);
    }

    fn queue_tx_status(&mut self, seq: u16, outcome: TxOutcome) {
        self.queue_control(Outgoing::TxStatus { seq, outcome });
    }

    /// Answers go in the reserved room; with the host gone for long they too are dropped.
    fn queue_control(&mut self, message: Outgoing) {
        if self.host_queue.push_back(message).is_err() {
            self.stats.drop_host_queue_full += 1;
        }
    }

    fn hello(&self, reason: HelloReason) -> Hello {
        Hello {
            protocol_version: PROTOCOL_VERSION,
            mac: self.config.mac,
            firmware: self.config.firmware,
            max_payload: MAX_PAYLOAD as u16,
            channel: self.channel,
            reason,
        }
    }

    /// Writes the next frame for the host into `out`; returns its length.
    pub fn poll_host(&mut self, out: &mut [u8; MAX_WIRE_LEN]) -> Option<usize> {
        while let Some(message) = self.host_queue.pop_front() {
            // Every queued message was validated on the way in, so encoding succeeds.
            if let Ok(len) = message.as_msg().to_frame(out) {
                return Some(len);
            }
        }
        None
    }

    /// Whether frames wait for the host.
    pub fn has_host_frames(&self) -> bool {
        !self.host_queue.is_empty()
    }
}

impl From<HostMsg<'_>> for Command {
    fn from(msg: HostMsg<'_>) -> Self {
        match msg {
            HostMsg::GetHello => Self::GetHello,
            HostMsg::GetStats => Self::GetStats,
            HostMsg::SetChannel { channel } => Self::SetChannel(channel),
            HostMsg::Send {
                seq,
                dest,
                channel,
                payload,
            } => Self::Send(PendingSend {
                seq,
                dest,
                channel,
                // The parser bounds the payload to MAX_PAYLOAD.
                payload: Vec::from_slice(payload).unwrap_or_default(),
            }),
        }
    }
}
