//! Framing on the serial line: `0x00 | COBS(message | CRC-32C) | 0x00`.
//!
//! COBS removes every zero byte from the frame, so `0x00` only ever delimits: a reader that
//! starts mid-frame, or reads boot ROM text, log lines or line noise, throws away what it
//! has at the next `0x00` and is in step again. The leading `0x00` ends whatever garbage
//! preceded the frame, so the frame itself is not lost with it. The CRC-32C
//! (Castagnoli, little-endian, over the message) rejects what noise turns into valid COBS.
//! The decoder's buffer is bounded: an over-long run is counted as garbage, never stored.

use crc::{CRC_32_ISCSI, Crc};

use crate::message::MAX_MESSAGE_LEN;

/// The frame check: CRC-32C.
const CRC: Crc<u32> = Crc::<u32>::new(&CRC_32_ISCSI);
/// Bytes of CRC after the message.
pub const CRC_LEN: usize = 4;
/// Largest frame before COBS: a message and its CRC.
pub const MAX_RAW_LEN: usize = MAX_MESSAGE_LEN + CRC_LEN;
/// Largest COBS-encoded frame, without delimiters.
pub const MAX_ENCODED_LEN: usize = cobs::max_encoding_length(MAX_RAW_LEN);
/// Largest frame on the wire, both delimiters included: size write buffers with it.
pub const MAX_WIRE_LEN: usize = MAX_ENCODED_LEN + 2;

/// Why a run of bytes between delimiters was not a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// Longer than any frame: the bytes were discarded up to the next delimiter.
    TooLong,
    /// Not valid COBS.
    BadCobs,
    /// Shorter than a header and CRC.
    TooShort,
    /// The CRC does not match.
    BadCrc,
}

impl core::fmt::Display for FrameError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::TooLong => "frame too long",
            Self::BadCobs => "invalid COBS encoding",
            Self::TooShort => "frame too short",
            Self::BadCrc => "CRC mismatch",
        })
    }
}

#[cfg(feature = "std")]
impl std::error::Error for FrameError {}

/// Frames `message` into `out` (at least [`MAX_WIRE_LEN`] bytes for any message); returns
/// the frame's length, delimiters included.
pub fn encode_frame(message: &[u8], out: &mut [u8]) -> Result<usize, FrameError> {
    if message.len() > MAX_MESSAGE_LEN {
        return Err(FrameError::TooLong);
    }
    let mut raw = [0u8; MAX_RAW_LEN];
    raw[..message.len()].copy_from_slice(message);
    let crc = CRC.checksum(message).to_le_bytes();
    let raw_len = message.len() + CRC_LEN;
    raw[message.len()..raw_len].copy_from_slice(&crc);
    cobs::try_encode_including_sentinels(&raw[..raw_len], out).map_err(|_| FrameError::TooLong)
}

/// Counters of a [`FrameDecoder`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DecoderStats {
    /// Frames decoded with a good CRC.
    pub frames: u64,
    /// Runs between delimiters that were not frames.
    pub bad_frames: u64,
    /// Bytes in those runs.
    pub garbage_bytes: u64,
}

/// Reassembles frames from a byte stream, `N` bytes of buffer at most (defaults to the
/// largest frame).
#[derive(Clone, Debug, Default)]
pub struct FrameDecoder<const N: usize = MAX_ENCODED_LEN> {
    buffer: heapless::Vec<u8, N>,
    /// Bytes dropped since the buffer overflowed (until the next delimiter).
    overflowed: usize,
    /// The buffer holds the last message returned: clear it before the next byte.
    pending_clear: bool,
    stats: DecoderStats,
}

impl<const N: usize> FrameDecoder<N> {
    /// An empty decoder.
    pub const fn new() -> Self {
        Self {
            buffer: heapless::Vec::new(),
            overflowed: 0,
            pending_clear: false,
            stats: DecoderStats {
                frames: 0,
                bad_frames: 0,
                garbage_bytes: 0,
            },
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> DecoderStats {
        self.stats
    }

    /// Feeds one byte; at a delimiter that ends a non-empty run, returns the message
    /// (without CRC) or why the run was not a frame.
    pub fn push(&mut self, byte: u8) -> Option<Result<&[u8], FrameError>> {
        if self.pending_clear {
            self.buffer.clear();
            self.pending_clear = false;
        }
        if byte != 0 {
            if self.overflowed > 0 || self.buffer.push(byte).is_err() {
                self.overflowed += 1;
            }
            return None;
        }
        if self.overflowed > 0 {
            let dropped = self.buffer.len() + self.overflowed;
            self.buffer.clear();
            self.overflowed = 0;
            return Some(Err(self.garbage(dropped, FrameError::TooLong)));
        }
        if self.buffer.is_empty() {
            return None;
        }
        let run = self.buffer.len();
        let decoded = match cobs::decode_in_place(&mut self.buffer) {
            Ok(len) => len,
            Err(_) => return Some(Err(self.discard(run, FrameError::BadCobs))),
        };
        if decoded < 2 + CRC_LEN {
            return Some(Err(self.discard(run, FrameError::TooShort)));
        }
        let (message, crc) = self.buffer[..decoded].split_at(decoded - CRC_LEN);
        if CRC.checksum(message).to_le_bytes() != crc {
            return Some(Err(self.discard(run, FrameError::BadCrc)));
        }
        self.stats.frames += 1;
        let message_len = message.len();
        self.buffer.truncate(message_len);
        // Cleared on the next byte: the message stays borrowable until then.
        self.pending_clear = true;
        Some(Ok(&self.buffer[..message_len]))
    }

    fn discard(&mut self, run: usize, error: FrameError) -> FrameError {
        self.buffer.clear();
        self.garbage(run, error)
    }

    fn garbage(&mut self, bytes: usize, error: FrameError) -> FrameError {
        self.stats.bad_frames += 1;
        self.stats.garbage_bytes += bytes as u64;
        error
    }
}
