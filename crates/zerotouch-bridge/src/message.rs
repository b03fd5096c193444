//! The bridge messages and their byte layout (specified in `BRIDGE.md`).
//!
//! Every message is `version (1) | type (1) | body`, multi-byte integers little-endian.
//! Host-to-bridge types are `0x01..=0x7f`, bridge-to-host types `0x81..=0xff`, so a
//! message read in the wrong direction (a looped-back port) is recognised as such.
//! The body length is fixed per type except for the trailing payload of `Send` and
//! `Received`, whose length is what the frame leaves.
//!
//! `Hello` is frozen across protocol versions (bytes 0..15): a host can always read a
//! bridge's Hello and name the version it speaks, even one it does not understand.

use crate::frame::{MAX_WIRE_LEN, encode_frame};
use crate::{MAX_PAYLOAD, Mac, PROTOCOL_VERSION};

/// Byte ranges of the header and of each message body.
mod field {
    use core::ops::{Range, RangeFrom};

    pub const VERSION: usize = 0;
    pub const TYPE: usize = 1;
    pub const HEADER_LEN: usize = 2;

    pub mod set_channel {
        pub const CHANNEL: usize = 2;
        pub const LEN: usize = 3;
    }
    pub mod send {
        use super::*;
        pub const SEQ: Range<usize> = 2..4;
        pub const DEST: Range<usize> = 4..10;
        pub const CHANNEL: usize = 10;
        pub const PAYLOAD: RangeFrom<usize> = 11..;
    }
    pub mod hello {
        use super::*;
        pub const MAC: Range<usize> = 2..8;
        pub const FIRMWARE: Range<usize> = 8..11;
        pub const MAX_PAYLOAD: Range<usize> = 11..13;
        pub const CHANNEL: usize = 13;
        pub const REASON: usize = 14;
        pub const LEN: usize = 15;
    }
    pub mod channel_set {
        pub const CHANNEL: usize = 2;
        pub const STATUS: usize = 3;
        pub const LEN: usize = 4;
    }
    pub mod tx_status {
        use super::*;
        pub const SEQ: Range<usize> = 2..4;
        pub const OUTCOME: usize = 4;
        pub const ERROR: usize = 5;
        pub const LEN: usize = 6;
    }
    pub mod received {
        use super::*;
        pub const SRC: Range<usize> = 2..8;
        pub const DST: Range<usize> = 8..14;
        pub const CHANNEL: usize = 14;
        pub const RSSI: usize = 15;
        pub const RX_TIME: Range<usize> = 16..24;
        pub const PAYLOAD: RangeFrom<usize> = 24..;
    }
    pub mod stats {
        use super::*;
        pub const COUNTERS: RangeFrom<usize> = 2..;
        pub const LEN: usize = 2 + 4 * super::super::Stats::COUNTERS;
    }
    pub mod error {
        pub const CODE: usize = 2;
        pub const LEN: usize = 3;
    }
}

/// Message type codes (byte 1).
pub mod kind {
    /// Host asks for the bridge's Hello.
    pub const GET_HELLO: u8 = 0x01;
    /// Host retunes the radio.
    pub const SET_CHANNEL: u8 = 0x02;
    /// Host sends one ESP-NOW frame.
    pub const SEND: u8 = 0x03;
    /// Host asks for the counters.
    pub const GET_STATS: u8 = 0x04;
    /// Bridge introduces itself (at boot and when asked).
    pub const HELLO: u8 = 0x81;
    /// Bridge answers a channel change.
    pub const CHANNEL_SET: u8 = 0x82;
    /// Bridge reports the fate of one `Send`.
    pub const TX_STATUS: u8 = 0x83;
    /// Bridge relays one received ESP-NOW frame.
    pub const RECEIVED: u8 = 0x84;
    /// Bridge reports its counters.
    pub const STATS: u8 = 0x85;
    /// Bridge reports a message it could not act on.
    pub const ERROR: u8 = 0x86;
}

/// Largest message (a `Received` with a full payload).
pub const MAX_MESSAGE_LEN: usize = 24 + MAX_PAYLOAD;

/// Why a message could not be read or written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageError {
    /// Shorter than its type requires (or than the 2-byte header).
    Truncated,
    /// Longer than its type allows.
    TooLong,
    /// Version byte of another protocol version (only `Hello` is read across versions).
    UnsupportedVersion {
        /// Version found.
        found: u8,
    },
    /// A type code this version does not define.
    UnknownType {
        /// Type found.
        found: u8,
    },
    /// A valid type of the other direction.
    WrongDirection {
        /// Type found.
        found: u8,
    },
    /// A payload over [`MAX_PAYLOAD`] bytes, or an empty `Send`.
    BadPayloadLength {
        /// Length found.
        len: usize,
    },
    /// A field value outside its range (named).
    BadField {
        /// Field name.
        field: &'static str,
    },
    /// The output buffer is too small (use [`MAX_MESSAGE_LEN`]).
    BufferTooSmall,
}

impl core::fmt::Display for MessageError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            Self::Truncated => f.write_str("message truncated"),
            Self::TooLong => f.write_str("message longer than its type allows"),
            Self::UnsupportedVersion { found } => write!(
                f,
                "bridge protocol version {found}, this side speaks {PROTOCOL_VERSION}"
            ),
            Self::UnknownType { found } => write!(f, "unknown message type {found:#04x}"),
            Self::WrongDirection { found } => {
                write!(
                    f,
                    "message type {found:#04x} travels the other way (port looped back?)"
                )
            }
            Self::BadPayloadLength { len } => {
                write!(f, "payload of {len} bytes (1..={MAX_PAYLOAD} allowed)")
            }
            Self::BadField { field } => write!(f, "bad value in field {field}"),
            Self::BufferTooSmall => f.write_str("output buffer too small"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for MessageError {}

/// Error codes carried by `Error`, `ChannelSet` and `TxStatus`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    /// A host message that passed the CRC but could not be parsed.
    Malformed,
    /// A host message of another protocol version.
    UnsupportedVersion,
    /// A host message type the bridge does not know.
    UnknownType,
    /// A channel outside 1..=14.
    BadChannel,
    /// A payload over the bridge's maximum.
    PayloadTooLong,
    /// The bridge's transmit queue is full: the frame was dropped.
    TxQueueFull,
    /// The radio refused the operation.
    Radio,
    /// A code from a newer bridge.
    Other(u8),
}

impl ErrorCode {
    /// The wire value (never 0: 0 means "no error" in `ChannelSet`).
    pub fn to_u8(self) -> u8 {
        match self {
            Self::Malformed => 1,
            Self::UnsupportedVersion => 2,
            Self::UnknownType => 3,
            Self::BadChannel => 4,
            Self::PayloadTooLong => 5,
            Self::TxQueueFull => 6,
            Self::Radio => 7,
            Self::Other(code) => code,
        }
    }

    /// Reads a wire value; `None` for 0.
    pub fn from_u8(code: u8) -> Option<Self> {
        Some(match code {
            0 => return None,
            1 => Self::Malformed,
            2 => Self::UnsupportedVersion,
            3 => Self::UnknownType,
            4 => Self::BadChannel,
            5 => Self::PayloadTooLong,
            6 => Self::TxQueueFull,
            7 => Self::Radio,
            other => Self::Other(other),
        })
    }

    /// The code for a host message the bridge could not parse.
    pub fn for_parse_error(error: MessageError) -> Self {
        match error {
            MessageError::UnsupportedVersion { .. } => Self::UnsupportedVersion,
            MessageError::UnknownType { .. } | MessageError::WrongDirection { .. } => {
                Self::UnknownType
            }
            MessageError::BadPayloadLength { .. } => Self::PayloadTooLong,
            MessageError::BadField { field: "channel" } => Self::BadChannel,
            _ => Self::Malformed,
        }
    }
}

/// What became of one `Send`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxOutcome {
    /// Broadcast sent, or unicast acknowledged by the peer.
    Delivered,
    /// Unicast sent but not acknowledged: a loss the protocol retransmits.
    NotAcked,
    /// Not sent.
    Failed(ErrorCode),
}

/// Why the bridge sent its Hello.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HelloReason {
    /// The bridge has just booted: any earlier state (channel, queues) is gone.
    Boot,
    /// The host asked (`GetHello`).
    Requested,
}

/// Firmware version `major.minor.patch`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FirmwareVersion {
    /// Major.
    pub major: u8,
    /// Minor.
    pub minor: u8,
    /// Patch.
    pub patch: u8,
}

impl core::fmt::Display for FirmwareVersion {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// The bridge's introduction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hello {
    /// Bridge protocol version (the header's version byte).
    pub protocol_version: u8,
    /// The bridge's station MAC: the source address of what it sends.
    pub mac: Mac,
    /// Firmware version.
    pub firmware: FirmwareVersion,
    /// Largest payload the bridge carries.
    pub max_payload: u16,
    /// The channel the radio is on.
    pub channel: u8,
    /// Why this Hello was sent.
    pub reason: HelloReason,
}

/// The bridge's counters (all wrap at 2^32).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Frames received from the radio.
    pub rx_frames: u32,
    /// Frames handed to the radio.
    pub tx_frames: u32,
    /// Sends acknowledged (or broadcast).
    pub tx_delivered: u32,
    /// Unicast sends not acknowledged.
    pub tx_not_acked: u32,
    /// Sends the radio refused.
    pub tx_failed: u32,
    /// Received frames dropped because the host queue was full.
    pub drop_host_queue_full: u32,
    /// Received frames the radio driver dropped before the bridge saw them.
    pub drop_radio_overflow: u32,
    /// Sends dropped because the transmit queue was full.
    pub drop_tx_queue_full: u32,
    /// Host frames with a bad CRC or bad COBS, or too long.
    pub host_bad_frames: u32,
    /// Bytes of those bad host frames.
    pub host_garbage_bytes: u32,
    /// Unicast peers evicted from the ESP-NOW peer table to make room.
    pub peer_evictions: u32,
    /// Received frames dropped because their payload exceeded 250 bytes (ESP-NOW v2).
    pub rx_too_long: u32,
}

impl Stats {
    /// Number of counters on the wire.
    pub const COUNTERS: usize = 12;

    fn to_array(self) -> [u32; Self::COUNTERS] {
        [
            self.rx_frames,
            self.tx_frames,
            self.tx_delivered,
            self.tx_not_acked,
            self.tx_failed,
            self.drop_host_queue_full,
            self.drop_radio_overflow,
            self.drop_tx_queue_full,
            self.host_bad_frames,
            self.host_garbage_bytes,
            self.peer_evictions,
            self.rx_too_long,
        ]
    }

    fn from_array(c: [u32; Self::COUNTERS]) -> Self {
        Self {
            rx_frames: c[0],
            tx_frames: c[1],
            tx_delivered: c[2],
            tx_not_acked: c[3],
            tx_failed: c[4],
            drop_host_queue_full: c[5],
            drop_radio_overflow: c[6],
            drop_tx_queue_full: c[7],
            host_bad_frames: c[8],
            host_garbage_bytes: c[9],
            peer_evictions: c[10],
            rx_too_long: c[11],
        }
    }
}

/// Host-to-bridge messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostMsg<'a> {
    /// Ask for a `Hello` (reason `Requested`).
    GetHello,
    /// Retune the radio (answered by `ChannelSet`).
    SetChannel {
        /// Channel 1..=14.
        channel: u8,
    },
    /// Send one ESP-NOW frame (answered by `TxStatus` with the same `seq`).
    Send {
        /// Host's sequence number.
        seq: u16,
        /// Destination, unicast or broadcast.
        dest: Mac,
        /// Channel to send on (the radio stays there).
        channel: u8,
        /// 1..=250 bytes.
        payload: &'a [u8],
    },
    /// Ask for the counters (answered by `Stats`).
    GetStats,
}

/// Bridge-to-host messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BridgeMsg<'a> {
    /// The bridge's introduction.
    Hello(Hello),
    /// The radio's channel after a change; `error` says why it did not change.
    ChannelSet {
        /// Channel the radio is on now.
        channel: u8,
        /// `None` when the change succeeded.
        error: Option<ErrorCode>,
    },
    /// What became of the `Send` with this `seq`.
    TxStatus {
        /// The `Send`'s sequence number.
        seq: u16,
        /// Its outcome.
        outcome: TxOutcome,
    },
    /// One received ESP-NOW frame.
    Received {
        /// Sender.
        src: Mac,
        /// Destination (ours or broadcast).
        dst: Mac,
        /// Channel it was heard on.
        channel: u8,
        /// Signal strength, dBm.
        rssi: i8,
        /// Bridge's receive time, microseconds since its boot.
        rx_time_us: u64,
        /// 0..=250 bytes.
        payload: &'a [u8],
    },
    /// The counters.
    Stats(Stats),
    /// A host message the bridge could not act on.
    Error {
        /// Why.
        code: ErrorCode,
    },
}

fn check_channel(channel: u8) -> Result<u8, MessageError> {
    if (1..=14).contains(&channel) {
        Ok(channel)
    } else {
        Err(MessageError::BadField { field: "channel" })
    }
}

fn mac_at(bytes: &[u8], range: core::ops::Range<usize>) -> Mac {
    let mut mac = [0; 6];
    mac.copy_from_slice(&bytes[range]);
    mac
}

fn u16_at(bytes: &[u8], range: core::ops::Range<usize>) -> u16 {
    u16::from_le_bytes([bytes[range.start], bytes[range.start + 1]])
}

/// Checks the header: `Ok(type)` for our version in the expected direction.
fn check_header(bytes: &[u8], bridge_to_host: bool) -> Result<u8, MessageError> {
    if bytes.len() < field::HEADER_LEN {
        return Err(MessageError::Truncated);
    }
    let kind = bytes[field::TYPE];
    if (kind & 0x80 != 0) != bridge_to_host {
        return Err(MessageError::WrongDirection { found: kind });
    }
    let version = bytes[field::VERSION];
    if version != PROTOCOL_VERSION && kind != kind::HELLO {
        return Err(MessageError::UnsupportedVersion { found: version });
    }
    Ok(kind)
}

/// Checks a fixed body length.
fn check_len(bytes: &[u8], len: usize) -> Result<(), MessageError> {
    match bytes.len() {
        n if n < len => Err(MessageError::Truncated),
        n if n > len => Err(MessageError::TooLong),
        _ => Ok(()),
    }
}

/// Checks a trailing payload.
fn payload_from(bytes: &[u8], start: usize, min: usize) -> Result<&[u8], MessageError> {
    if bytes.len() < start {
        return Err(MessageError::Truncated);
    }
    let payload = &bytes[start..];
    if payload.len() < min || payload.len() > MAX_PAYLOAD {
        return Err(MessageError::BadPayloadLength { len: payload.len() });
    }
    Ok(payload)
}

/// Writes messages into a caller's buffer.
struct Writer<'b> {
    out: &'b mut [u8],
    len: usize,
}

impl<'b> Writer<'b> {
    fn new(out: &'b mut [u8], kind: u8) -> Result<Self, MessageError> {
        let mut writer = Self { out, len: 0 };
        writer.bytes(&[PROTOCOL_VERSION, kind])?;
        Ok(writer)
    }

    fn bytes(&mut self, bytes: &[u8]) -> Result<&mut Self, MessageError> {
        let end = self.len + bytes.len();
        self.out
            .get_mut(self.len..end)
            .ok_or(MessageError::BufferTooSmall)?
            .copy_from_slice(bytes);
        self.len = end;
        Ok(self)
    }

    fn payload(&mut self, payload: &[u8], min: usize) -> Result<&mut Self, MessageError> {
        if payload.len() < min || payload.len() > MAX_PAYLOAD {
            return Err(MessageError::BadPayloadLength { len: payload.len() });
        }
        self.bytes(payload)
    }
}

/// Frames an encoded message (see [`crate::frame`]).
fn frame(
    message: Result<usize, MessageError>,
    raw: &[u8],
    out: &mut [u8],
) -> Result<usize, MessageError> {
    encode_frame(&raw[..message?], out).map_err(|_| MessageError::BufferTooSmall)
}

impl<'a> HostMsg<'a> {
    /// Encodes and frames the message for the serial line; returns the frame's length.
    pub fn to_frame(&self, out: &mut [u8; MAX_WIRE_LEN]) -> Result<usize, MessageError> {
        let mut raw = [0; MAX_MESSAGE_LEN];
        frame(self.encode(&mut raw), &raw, out)
    }

    /// Reads a host message (the bridge's side).
    pub fn parse(bytes: &'a [u8]) -> Result<Self, MessageError> {
        use field::*;
        match check_header(bytes, false)? {
            kind::GET_HELLO => check_len(bytes, HEADER_LEN).map(|()| Self::GetHello),
            kind::GET_STATS => check_len(bytes, HEADER_LEN).map(|()| Self::GetStats),
            kind::SET_CHANNEL => {
                check_len(bytes, set_channel::LEN)?;
                let channel = check_channel(bytes[set_channel::CHANNEL])?;
                Ok(Self::SetChannel { channel })
            }
            kind::SEND => {
                let payload = payload_from(bytes, send::PAYLOAD.start, 1)?;
                Ok(Self::Send {
                    seq: u16_at(bytes, send::SEQ),
                    dest: mac_at(bytes, send::DEST),
                    channel: check_channel(bytes[send::CHANNEL])?,
                    payload,
                })
            }
            found => Err(MessageError::UnknownType { found }),
        }
    }

    /// Writes the message into `out`; returns its length.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, MessageError> {
        let writer = match *self {
            Self::GetHello => Writer::new(out, kind::GET_HELLO)?,
            Self::GetStats => Writer::new(out, kind::GET_STATS)?,
            Self::SetChannel { channel } => {
                let mut w = Writer::new(out, kind::SET_CHANNEL)?;
                w.bytes(&[check_channel(channel)?])?;
                w
            }
            Self::Send {
                seq,
                dest,
                channel,
                payload,
            } => {
                let mut w = Writer::new(out, kind::SEND)?;
                w.bytes(&seq.to_le_bytes())?
                    .bytes(&dest)?
                    .bytes(&[check_channel(channel)?])?
                    .payload(payload, 1)?;
                w
            }
        };
        Ok(writer.len)
    }
}

impl<'a> BridgeMsg<'a> {
    /// Encodes and frames the message for the serial line; returns the frame's length.
    pub fn to_frame(&self, out: &mut [u8; MAX_WIRE_LEN]) -> Result<usize, MessageError> {
        let mut raw = [0; MAX_MESSAGE_LEN];
        frame(self.encode(&mut raw), &raw, out)
    }

    /// Reads a bridge message (the host's side).
    pub fn parse(bytes: &'a [u8]) -> Result<Self, MessageError> {
        use field::*;
        match check_header(bytes, true)? {
            kind::HELLO => parse_hello(bytes).map(Self::Hello),
            kind::CHANNEL_SET => {
                check_len(bytes, channel_set::LEN)?;
                Ok(Self::ChannelSet {
                    channel: bytes[channel_set::CHANNEL],
                    error: ErrorCode::from_u8(bytes[channel_set::STATUS]),
                })
            }
            kind::TX_STATUS => {
                check_len(bytes, tx_status::LEN)?;
                let error = ErrorCode::from_u8(bytes[tx_status::ERROR]);
                let outcome = match (bytes[tx_status::OUTCOME], error) {
                    (0, None) => TxOutcome::Delivered,
                    (1, None) => TxOutcome::NotAcked,
                    (2, Some(code)) => TxOutcome::Failed(code),
                    _ => return Err(MessageError::BadField { field: "outcome" }),
                };
                Ok(Self::TxStatus {
                    seq: u16_at(bytes, tx_status::SEQ),
                    outcome,
                })
            }
            kind::RECEIVED => {
                let payload = payload_from(bytes, received::PAYLOAD.start, 0)?;
                let mut time = [0; 8];
                time.copy_from_slice(&bytes[received::RX_TIME]);
                Ok(Self::Received {
                    src: mac_at(bytes, received::SRC),
                    dst: mac_at(bytes, received::DST),
                    channel: bytes[received::CHANNEL],
                    rssi: bytes[received::RSSI] as i8,
                    rx_time_us: u64::from_le_bytes(time),
                    payload,
                })
            }
            kind::STATS => {
                check_len(bytes, stats::LEN)?;
                let mut counters = [0u32; Stats::COUNTERS];
                for (counter, chunk) in counters
                    .iter_mut()
                    .zip(bytes[stats::COUNTERS].chunks_exact(4))
                {
                    *counter = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
                }
                Ok(Self::Stats(Stats::from_array(counters)))
            }
            kind::ERROR => {
                check_len(bytes, error::LEN)?;
                let code = ErrorCode::from_u8(bytes[error::CODE])
                    .ok_or(MessageError::BadField { field: "code" })?;
                Ok(Self::Error { code })
            }
            found => Err(MessageError::UnknownType { found }),
        }
    }

    /// Writes the message into `out`; returns its length.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, MessageError> {
        let writer = match *self {
            Self::Hello(hello) => {
                let mut w = Writer::new(out, kind::HELLO)?;
                // The version byte is the Hello's own: an emulator can impersonate another version.
                w.out[field::VERSION] = hello.protocol_version;
                let reason = match hello.reason {
                    HelloReason::Boot => 0,
                    HelloReason::Requested => 1,
                };
                let fw = hello.firmware;
                w.bytes(&hello.mac)?
                    .bytes(&[fw.major, fw.minor, fw.patch])?
                    .bytes(&hello.max_payload.to_le_bytes())?
                    .bytes(&[hello.channel, reason])?;
                w
            }
            Self::ChannelSet { channel, error } => {
                let mut w = Writer::new(out, kind::CHANNEL_SET)?;
                w.bytes(&[channel, error.map_or(0, ErrorCode::to_u8)])?;
                w
            }
            Self::TxStatus { seq, outcome } => {
                let mut w = Writer::new(out, kind::TX_STATUS)?;
                let (code, error) = match outcome {
                    TxOutcome::Delivered => (0, 0),
                    TxOutcome::NotAcked => (1, 0),
                    TxOutcome::Failed(error) => (2, error.to_u8()),
                };
                w.bytes(&seq.to_le_bytes())?.bytes(&[code, error])?;
                w
            }
            Self::Received {
                src,
                dst,
                channel,
                rssi,
                rx_time_us,
                payload,
            } => {
                let mut w = Writer::new(out, kind::RECEIVED)?;
                w.bytes(&src)?
                    .bytes(&dst)?
                    .bytes(&[channel, rssi as u8])?
                    .bytes(&rx_time_us.to_le_bytes())?
                    .payload(payload, 0)?;
                w
            }
            Self::Stats(stats) => {
                let mut w = Writer::new(out, kind::STATS)?;
                for counter in stats.to_array() {
                    w.bytes(&counter.to_le_bytes())?;
                }
                w
            }
            Self::Error { code } => {
                let mut w = Writer::new(out, kind::ERROR)?;
                w.bytes(&[code.to_u8()])?;
                w
            }
        };
        Ok(writer.len)
    }
}

/// Reads a Hello of any version: its first 15 bytes are frozen, later versions may append.
fn parse_hello(bytes: &[u8]) -> Result<Hello, MessageError> {
    use field::hello::*;
    let version = bytes[field::VERSION];
    if bytes.len() < LEN {
        return Err(MessageError::Truncated);
    }
    if version == PROTOCOL_VERSION && bytes.len() > LEN {
        return Err(MessageError::TooLong);
    }
    let reason = match bytes[REASON] {
        0 => HelloReason::Boot,
        1 => HelloReason::Requested,
        _ if version != PROTOCOL_VERSION => HelloReason::Boot,
        _ => return Err(MessageError::BadField { field: "reason" }),
    };
    Ok(Hello {
        protocol_version: version,
        mac: mac_at(bytes, MAC),
        firmware: FirmwareVersion {
            major: bytes[FIRMWARE.start],
            minor: bytes[FIRMWARE.start + 1],
            patch: bytes[FIRMWARE.start + 2],
        },
        max_payload: u16_at(bytes, MAX_PAYLOAD),
        channel: bytes[CHANNEL],
        reason,
    })
}
