//! Frame formats as zero-copy views over byte slices with explicit `check_len`, as smoltcp
//! does. Canonical: one encoding per message; decoders never panic.
//!
//! Each frame type of PROTOCOL.md §4 has a view (`Announce<T>`, `Challenge<T>`,
//! `Response<T>`, `Data<T>`, `Ack<T>`) whose `new_checked` validates the common header,
//! the exact length and every cleartext field, after which the typed accessors cannot fail.
//! Builders (`*Repr::emit`) write a frame into a caller buffer and return its length.
//! Encrypted parts are handled by the session layers ([`crate::enrollee`],
//! [`crate::configurator`], [`crate::channel`]); here they are opaque byte ranges.

use crate::crypto::TAG_LEN;
use crate::status::{AnnounceMode, FailureReason};
use crate::suite::SuiteId;

/// First byte of every frame ("Z").
pub const MAGIC: u8 = 0x5A;
/// Protocol version carried in every frame (PROTOCOL.md version 2: authenticated Announce).
pub const VERSION: u8 = 2;
/// Common header length.
pub const HEADER_LEN: usize = 4;
/// Length of a Response frame (both suites).
pub const RESPONSE_LEN: usize = 88;
/// Cleartext header length of Data and Ack frames (also their AAD).
pub const CHANNEL_HEADER_LEN: usize = 15;
/// Length of an Ack frame.
pub const ACK_LEN: usize = CHANNEL_HEADER_LEN + TAG_LEN;
/// Largest fragment payload in one Data frame: 250 - 15 - 16.
pub const MAX_FRAGMENT: usize = crate::MAX_FRAME - CHANNEL_HEADER_LEN - TAG_LEN;
/// Smallest Data frame (one byte of fragment).
pub const MIN_DATA_LEN: usize = CHANNEL_HEADER_LEN + 1 + TAG_LEN;
/// Signature length of both suites.
pub const SIGNATURE_LEN: usize = 64;
/// Length of the Challenge nonce `Nc`.
pub const CHALLENGE_NONCE_LEN: usize = 16;
/// Data flag: last fragment of a message.
pub const FLAG_END: u8 = 0x01;
/// Ack flag: the configurator persisted the join report (C → E only).
pub const FLAG_COMPLETE: u8 = 0x01;

/// Frame types (byte 2 of the header).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub enum FrameType {
    /// Enrollee presence announcement.
    Announce = 1,
    /// Configurator challenge.
    Challenge = 2,
    /// Enrollee response.
    Response = 3,
    /// Encrypted channel fragment.
    Data = 4,
    /// Encrypted channel acknowledgement.
    Ack = 5,
    /// Configurator presence beacon (unauthenticated: a timing hint only).
    Beacon = 6,
}

impl FrameType {
    /// The frame type with this wire value.
    pub fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            1 => Self::Announce,
            2 => Self::Challenge,
            3 => Self::Response,
            4 => Self::Data,
            5 => Self::Ack,
            6 => Self::Beacon,
            _ => return None,
        })
    }
}

/// Why a frame was rejected by a decoder.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum WireError {
    /// Shorter than the common header.
    Truncated,
    /// First byte is not [`MAGIC`]: not a zerotouch frame.
    BadMagic,
    /// Protocol version other than [`VERSION`].
    BadVersion,
    /// Unknown frame type.
    UnknownType,
    /// Unknown cipher suite.
    UnknownSuite,
    /// The frame type was expected to be another one.
    WrongType,
    /// Length differs from the exact length of its type (Data: outside its range).
    BadLength,
    /// A cleartext field has a non-canonical or out-of-range value.
    BadField,
}

impl core::fmt::Display for WireError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::Truncated => "frame shorter than the 4-byte header",
            Self::BadMagic => "not a zerotouch frame (bad magic byte)",
            Self::BadVersion => "unsupported protocol version",
            Self::UnknownType => "unknown frame type",
            Self::UnknownSuite => "unknown cipher suite",
            Self::WrongType => "frame type differs from the expected one",
            Self::BadLength => "frame length is wrong for its type and suite",
            Self::BadField => "a header field has an invalid or non-canonical value",
        })
    }
}

/// The common header, parsed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Header {
    /// Frame type.
    pub frame_type: FrameType,
    /// Cipher suite.
    pub suite: SuiteId,
}

impl Header {
    /// Parses and checks the 4-byte common header.
    pub fn parse(bytes: &[u8]) -> Result<Self, WireError> {
        let h = bytes.get(..HEADER_LEN).ok_or(WireError::Truncated)?;
        if h[0] != MAGIC {
            return Err(WireError::BadMagic);
        }
        if h[1] != VERSION {
            return Err(WireError::BadVersion);
        }
        let frame_type = FrameType::from_u8(h[2]).ok_or(WireError::UnknownType)?;
        let suite = SuiteId::from_u8(h[3]).ok_or(WireError::UnknownSuite)?;
        Ok(Header { frame_type, suite })
    }

    fn emit(self, buf: &mut [u8]) {
        buf[0] = MAGIC;
        buf[1] = VERSION;
        buf[2] = self.frame_type as u8;
        buf[3] = self.suite as u8;
    }
}

fn check_header(bytes: &[u8], expected: FrameType) -> Result<SuiteId, WireError> {
    let h = Header::parse(bytes)?;
    if h.frame_type != expected {
        return Err(WireError::WrongType);
    }
    Ok(h.suite)
}

fn be16(b: &[u8], off: usize) -> u16 {
    u16::from_be_bytes([b[off], b[off + 1]])
}

fn be32(b: &[u8], off: usize) -> u32 {
    u32::from_be_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

/// Length of the Announce counter: boot counter (u32) ‖ round counter (u32).
pub const ANNOUNCE_COUNTER_LEN: usize = 8;

/// Byte ranges of the Announce fields (§4.1); `p` is the suite's public key length.
mod announce_field {
    use core::ops::Range;

    pub const MODE: usize = 4;
    pub const REASON: usize = 5;
    pub const fn identity(p: usize) -> Range<usize> {
        6..6 + p
    }
    pub const fn ephemeral(p: usize) -> Range<usize> {
        6 + p..6 + 2 * p
    }
    pub const fn counter(p: usize) -> Range<usize> {
        6 + 2 * p..6 + 2 * p + super::ANNOUNCE_COUNTER_LEN
    }
    /// The radio channel the enrollee sent this Announce on.
    pub const fn channel(p: usize) -> usize {
        counter(p).end
    }
    /// Everything the enrollee signs (after the context string): header to channel.
    pub const fn signed(p: usize) -> Range<usize> {
        0..channel(p) + 1
    }
    pub const fn signature(p: usize) -> Range<usize> {
        signed(p).end..signed(p).end + super::SIGNATURE_LEN
    }
}

/// Length of an Announce frame of `suite`: 6 + 2P + 8 + 1 + 64 (143 / 145).
pub const fn announce_len(suite: SuiteId) -> usize {
    announce_field::signature(suite.public_key_len()).end
}

/// Longest Announce frame (suite 2).
pub const MAX_ANNOUNCE_LEN: usize =
    6 + 2 * crate::crypto::MAX_PUBLIC_LEN + ANNOUNCE_COUNTER_LEN + 1 + SIGNATURE_LEN;

/// Length of the cleartext part of a Challenge (`CH_clear`): 28 + P.
pub const fn challenge_clear_len(suite: SuiteId) -> usize {
    28 + suite.public_key_len()
}

/// Length of the certificate inside a Challenge: 73 + P.
pub const fn cert_len(suite: SuiteId) -> usize {
    73 + suite.public_key_len()
}

/// Length of a Challenge frame of `suite`: 181 + 2P.
pub const fn challenge_len(suite: SuiteId) -> usize {
    challenge_clear_len(suite) + cert_len(suite) + SIGNATURE_LEN + TAG_LEN
}

macro_rules! view_common {
    ($name:ident) => {
        impl<T: AsRef<[u8]>> $name<T> {
            /// Wraps `buffer` without any check (accessors may panic on short input:
            /// use [`Self::new_checked`] on untrusted bytes).
            pub const fn new_unchecked(buffer: T) -> Self {
                Self { buffer }
            }

            /// Wraps `buffer` after [`Self::check_len`].
            pub fn new_checked(buffer: T) -> Result<Self, WireError> {
                let view = Self::new_unchecked(buffer);
                view.check_len()?;
                Ok(view)
            }

            /// The cipher suite (valid after `check_len`).
            pub fn suite(&self) -> SuiteId {
                SuiteId::from_u8(self.buffer.as_ref()[3]).unwrap_or(SuiteId::Ed25519)
            }

            /// The whole frame.
            pub fn as_bytes(&self) -> &[u8] {
                self.buffer.as_ref()
            }

            /// Unwraps the buffer.
            pub fn into_inner(self) -> T {
                self.buffer
            }
        }
    };
}

/// Announce frame (§4.1).
#[derive(Clone, Copy, Debug)]
pub struct Announce<T: AsRef<[u8]>> {
    buffer: T,
}
view_common!(Announce);

impl<T: AsRef<[u8]>> Announce<T> {
    /// Checks header, exact length and the mode/reason combination (not the signature:
    /// that needs the decoded identity key, see [`Announce::signed_part`]).
    pub fn check_len(&self) -> Result<(), WireError> {
        let b = self.buffer.as_ref();
        let suite = check_header(b, FrameType::Announce)?;
        if b.len() != announce_len(suite) {
            return Err(WireError::BadLength);
        }
        let p = suite.public_key_len();
        if !(1..=14).contains(&b[announce_field::channel(p)]) {
            return Err(WireError::BadField);
        }
        let reason = b[announce_field::REASON];
        let ok = match b[announce_field::MODE] {
            0 => reason == 0,
            1 => FailureReason::from_u8(reason).is_some(),
            2 => reason == 0 || FailureReason::from_u8(reason).is_some(),
            _ => false,
        };
        if ok { Ok(()) } else { Err(WireError::BadField) }
    }

    /// Announcement mode.
    pub fn mode(&self) -> AnnounceMode {
        match self.buffer.as_ref()[announce_field::MODE] {
            1 => AnnounceMode::RetryAfterFailure,
            2 => AnnounceMode::Reconfigure,
            _ => AnnounceMode::New,
        }
    }

    /// Failure reason flagged, if any.
    pub fn last_failure(&self) -> Option<FailureReason> {
        FailureReason::from_u8(self.buffer.as_ref()[announce_field::REASON])
    }

    fn p(&self) -> usize {
        self.suite().public_key_len()
    }

    /// Enrollee identity public key (wire encoding).
    pub fn identity(&self) -> &[u8] {
        &self.buffer.as_ref()[announce_field::identity(self.p())]
    }

    /// Enrollee ephemeral public key (wire encoding).
    pub fn ephemeral(&self) -> &[u8] {
        &self.buffer.as_ref()[announce_field::ephemeral(self.p())]
    }

    /// The announcement counter: `boot << 32 | round`, strictly increasing over the
    /// device's life (§4.1). A configurator keeps the newest it verified per key.
    pub fn counter(&self) -> u64 {
        let mut c = [0u8; ANNOUNCE_COUNTER_LEN];
        c.copy_from_slice(&self.buffer.as_ref()[announce_field::counter(self.p())]);
        u64::from_be_bytes(c)
    }

    /// The radio channel (1..=14) the enrollee sent this Announce on: signed, so a relay onto
    /// another channel is recognised (PROTOCOL.md §9.2).
    pub fn channel(&self) -> u8 {
        self.buffer.as_ref()[announce_field::channel(self.p())]
    }

    /// The bytes `sig_A` covers (after its context string): header through channel.
    pub fn signed_part(&self) -> &[u8] {
        &self.buffer.as_ref()[announce_field::signed(self.p())]
    }

    /// The identity key's signature `sig_A`.
    pub fn signature(&self) -> [u8; SIGNATURE_LEN] {
        let mut sig = [0u8; SIGNATURE_LEN];
        sig.copy_from_slice(&self.buffer.as_ref()[announce_field::signature(self.p())]);
        sig
    }
}

/// Fields of an Announce frame, for building one.
#[derive(Clone, Copy, Debug)]
pub struct AnnounceRepr<'a> {
    /// Suite.
    pub suite: SuiteId,
    /// Mode.
    pub mode: AnnounceMode,
    /// Last failure (must be `Some` for RetryAfterFailure, `None` for New).
    pub last_failure: Option<FailureReason>,
    /// Identity public key (P bytes).
    pub identity: &'a [u8],
    /// Ephemeral public key (P bytes).
    pub ephemeral: &'a [u8],
    /// Announcement counter (`boot << 32 | round`).
    pub counter: u64,
    /// The radio channel it goes out on (1..=14).
    pub channel: u8,
}

impl AnnounceRepr<'_> {
    /// Writes the frame, signed by `sign` over [`Announce::signed_part`] (the caller adds the
    /// context string: [`crate::crypto::schedule::a_sig_message`]); returns its length.
    /// Fails on a short buffer or wrong key lengths.
    pub fn emit(
        &self,
        buf: &mut [u8],
        sign: impl FnOnce(&[u8]) -> [u8; SIGNATURE_LEN],
    ) -> Result<usize, WireError> {
        let p = self.suite.public_key_len();
        let len = announce_len(self.suite);
        if buf.len() < len || self.identity.len() != p || self.ephemeral.len() != p {
            return Err(WireError::BadLength);
        }
        Header {
            frame_type: FrameType::Announce,
            suite: self.suite,
        }
        .emit(buf);
        buf[announce_field::MODE] = self.mode as u8;
        buf[announce_field::REASON] = self.last_failure.map_or(0, |r| r as u8);
        buf[announce_field::identity(p)].copy_from_slice(self.identity);
        buf[announce_field::ephemeral(p)].copy_from_slice(self.ephemeral);
        buf[announce_field::counter(p)].copy_from_slice(&self.counter.to_be_bytes());
        buf[announce_field::channel(p)] = self.channel;
        let signature = sign(&buf[announce_field::signed(p)]);
        buf[announce_field::signature(p)].copy_from_slice(&signature);
        Announce::new_checked(&buf[..len])?;
        Ok(len)
    }
}

/// Length of a Beacon frame (§4.8).
pub const BEACON_LEN: usize = 8;

/// Byte offsets of the Beacon fields (§4.8).
mod beacon_field {
    pub const CHANNEL: usize = 4;
    pub const INTERVAL: core::ops::Range<usize> = 5..7;
    pub const SUITES: usize = 7;
}

/// Beacon frame (§4.8): a configurator says it listens on this channel, which suites it
/// answers, and how often a device waiting here should announce. Not authenticated: a
/// receiver may let it change its timing only, within the bounds of §9.1.
#[derive(Clone, Copy, Debug)]
pub struct Beacon<T: AsRef<[u8]>> {
    buffer: T,
}
view_common!(Beacon);

impl<T: AsRef<[u8]>> Beacon<T> {
    /// Checks header, exact length, the channel (1..=14) and that the suite mask names the
    /// header's suite and no unknown one.
    pub fn check_len(&self) -> Result<(), WireError> {
        let b = self.buffer.as_ref();
        let suite = check_header(b, FrameType::Beacon)?;
        if b.len() != BEACON_LEN {
            return Err(WireError::BadLength);
        }
        let mask = b[beacon_field::SUITES];
        let known = SuiteId::ALL.iter().fold(0u8, |m, s| m | suite_bit(*s));
        if !(1..=14).contains(&b[beacon_field::CHANNEL])
            || mask & !known != 0
            || mask & suite_bit(suite) == 0
        {
            return Err(WireError::BadField);
        }
        Ok(())
    }

    /// The channel the configurator listens on.
    pub fn channel(&self) -> u8 {
        self.buffer.as_ref()[beacon_field::CHANNEL]
    }

    /// How often (ms) a device waiting on this channel should announce.
    pub fn announce_interval_ms(&self) -> u16 {
        be16(self.buffer.as_ref(), beacon_field::INTERVAL.start)
    }

    /// True if the configurator answers `suite`.
    pub fn answers(&self, suite: SuiteId) -> bool {
        self.buffer.as_ref()[beacon_field::SUITES] & suite_bit(suite) != 0
    }
}

/// Bit of `suite` in a Beacon's suite mask: bit (id - 1).
pub const fn suite_bit(suite: SuiteId) -> u8 {
    1 << (suite as u8 - 1)
}

/// Fields of a Beacon frame, for building one.
#[derive(Clone, Copy, Debug)]
pub struct BeaconRepr {
    /// Suite in the header (one the configurator answers).
    pub suite: SuiteId,
    /// Channel the configurator listens on.
    pub channel: u8,
    /// Suggested announce interval for waiting devices, ms.
    pub announce_interval_ms: u16,
    /// Suites answered ([`suite_bit`] of each).
    pub suites: u8,
}

impl BeaconRepr {
    /// Writes the frame; returns its length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        if buf.len() < BEACON_LEN {
            return Err(WireError::BadLength);
        }
        Header {
            frame_type: FrameType::Beacon,
            suite: self.suite,
        }
        .emit(buf);
        buf[beacon_field::CHANNEL] = self.channel;
        buf[beacon_field::INTERVAL].copy_from_slice(&self.announce_interval_ms.to_be_bytes());
        buf[beacon_field::SUITES] = self.suites;
        Beacon::new_checked(&buf[..BEACON_LEN])?;
        Ok(BEACON_LEN)
    }
}

/// Challenge frame (§4.2).
#[derive(Clone, Copy, Debug)]
pub struct Challenge<T: AsRef<[u8]>> {
    buffer: T,
}
view_common!(Challenge);

impl<T: AsRef<[u8]>> Challenge<T> {
    /// Checks header, exact length and a non-zero session id.
    pub fn check_len(&self) -> Result<(), WireError> {
        let b = self.buffer.as_ref();
        let suite = check_header(b, FrameType::Challenge)?;
        if b.len() != challenge_len(suite) {
            return Err(WireError::BadLength);
        }
        if be32(b, 4) == 0 {
            return Err(WireError::BadField);
        }
        Ok(())
    }

    /// Session id.
    pub fn sid(&self) -> u32 {
        be32(self.buffer.as_ref(), 4)
    }

    /// Configurator nonce `Nc`.
    pub fn nonce(&self) -> &[u8] {
        &self.buffer.as_ref()[8..24]
    }

    /// Configurator ephemeral public key.
    pub fn ephemeral(&self) -> &[u8] {
        let p = self.suite().public_key_len();
        &self.buffer.as_ref()[24..24 + p]
    }

    /// Configurator Unix time.
    pub fn unix_time(&self) -> u32 {
        be32(self.buffer.as_ref(), 24 + self.suite().public_key_len())
    }

    /// `CH_clear`: the cleartext part, also the AAD.
    pub fn clear(&self) -> &[u8] {
        &self.buffer.as_ref()[..challenge_clear_len(self.suite())]
    }

    /// Encrypted `cert ‖ sig_C` (without the tag).
    pub fn ciphertext(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        &b[challenge_clear_len(self.suite())..b.len() - TAG_LEN]
    }

    /// AEAD tag.
    pub fn tag(&self) -> [u8; TAG_LEN] {
        let b = self.buffer.as_ref();
        let mut t = [0u8; TAG_LEN];
        t.copy_from_slice(&b[b.len() - TAG_LEN..]);
        t
    }
}

/// Cleartext fields of a Challenge, for building one.
#[derive(Clone, Copy, Debug)]
pub struct ChallengeRepr<'a> {
    /// Suite.
    pub suite: SuiteId,
    /// Session id (non-zero).
    pub sid: u32,
    /// `Nc`.
    pub nonce: [u8; CHALLENGE_NONCE_LEN],
    /// C ephemeral public key.
    pub ephemeral: &'a [u8],
    /// C Unix time.
    pub unix_time: u32,
}

impl ChallengeRepr<'_> {
    /// Writes `CH_clear` and the plaintext `cert ‖ sig_C` into `buf[..challenge_len]`
    /// (tag bytes zero): the caller seals `buf[clear..len-16]` and writes the tag.
    pub fn emit_plain(
        &self,
        buf: &mut [u8],
        cert: &[u8],
        sig: &[u8; SIGNATURE_LEN],
    ) -> Result<usize, WireError> {
        let p = self.suite.public_key_len();
        let len = challenge_len(self.suite);
        let clear = challenge_clear_len(self.suite);
        if buf.len() < len
            || self.ephemeral.len() != p
            || cert.len() != cert_len(self.suite)
            || self.sid == 0
        {
            return Err(WireError::BadLength);
        }
        Header {
            frame_type: FrameType::Challenge,
            suite: self.suite,
        }
        .emit(buf);
        buf[4..8].copy_from_slice(&self.sid.to_be_bytes());
        buf[8..24].copy_from_slice(&self.nonce);
        buf[24..24 + p].copy_from_slice(self.ephemeral);
        buf[24 + p..28 + p].copy_from_slice(&self.unix_time.to_be_bytes());
        buf[clear..clear + cert.len()].copy_from_slice(cert);
        buf[clear + cert.len()..len - TAG_LEN].copy_from_slice(sig);
        buf[len - TAG_LEN..len].fill(0);
        Ok(len)
    }
}

/// Response frame (§4.3).
#[derive(Clone, Copy, Debug)]
pub struct Response<T: AsRef<[u8]>> {
    buffer: T,
}
view_common!(Response);

impl<T: AsRef<[u8]>> Response<T> {
    /// Checks header, exact length and a non-zero session id.
    pub fn check_len(&self) -> Result<(), WireError> {
        let b = self.buffer.as_ref();
        check_header(b, FrameType::Response)?;
        if b.len() != RESPONSE_LEN {
            return Err(WireError::BadLength);
        }
        if be32(b, 4) == 0 {
            return Err(WireError::BadField);
        }
        Ok(())
    }

    /// Session id.
    pub fn sid(&self) -> u32 {
        be32(self.buffer.as_ref(), 4)
    }

    /// The AAD: bytes 0..8.
    pub fn aad(&self) -> &[u8] {
        &self.buffer.as_ref()[..8]
    }

    /// Encrypted `sig_E`.
    pub fn ciphertext(&self) -> &[u8] {
        &self.buffer.as_ref()[8..8 + SIGNATURE_LEN]
    }

    /// AEAD tag.
    pub fn tag(&self) -> [u8; TAG_LEN] {
        let mut t = [0u8; TAG_LEN];
        t.copy_from_slice(&self.buffer.as_ref()[8 + SIGNATURE_LEN..]);
        t
    }
}

/// Writes a Response header (bytes 0..8) and the plaintext `sig_E`; the caller seals
/// bytes 8..72 and writes the tag at 72..88. Returns [`RESPONSE_LEN`].
pub fn emit_response_plain(
    buf: &mut [u8],
    suite: SuiteId,
    sid: u32,
    sig: &[u8; SIGNATURE_LEN],
) -> Result<usize, WireError> {
    if buf.len() < RESPONSE_LEN || sid == 0 {
        return Err(WireError::BadLength);
    }
    Header {
        frame_type: FrameType::Response,
        suite,
    }
    .emit(buf);
    buf[4..8].copy_from_slice(&sid.to_be_bytes());
    buf[8..72].copy_from_slice(sig);
    buf[72..RESPONSE_LEN].fill(0);
    Ok(RESPONSE_LEN)
}

/// The cleartext header shared by Data and Ack frames.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ChannelHeader {
    /// Frame type: [`FrameType::Data`] or [`FrameType::Ack`].
    pub frame_type: FrameType,
    /// Suite.
    pub suite: SuiteId,
    /// Session id.
    pub sid: u32,
    /// Data: fragment sequence number. Ack: ack counter.
    pub seq: u16,
    /// Cumulative ack.
    pub ack: u16,
    /// Selective ack bitmap.
    pub sack: u16,
    /// Flags (END for Data, COMPLETE for Ack).
    pub flags: u8,
}

impl ChannelHeader {
    /// Writes the 15-byte header.
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), WireError> {
        if buf.len() < CHANNEL_HEADER_LEN {
            return Err(WireError::BadLength);
        }
        Header {
            frame_type: self.frame_type,
            suite: self.suite,
        }
        .emit(buf);
        buf[4..8].copy_from_slice(&self.sid.to_be_bytes());
        buf[8..10].copy_from_slice(&self.seq.to_be_bytes());
        buf[10..12].copy_from_slice(&self.ack.to_be_bytes());
        buf[12..14].copy_from_slice(&self.sack.to_be_bytes());
        buf[14] = self.flags;
        Ok(())
    }
}

fn parse_channel(b: &[u8], expected: FrameType) -> Result<ChannelHeader, WireError> {
    let suite = check_header(b, expected)?;
    let len_ok = match expected {
        FrameType::Data => (MIN_DATA_LEN..=crate::MAX_FRAME).contains(&b.len()),
        _ => b.len() == ACK_LEN,
    };
    if !len_ok {
        return Err(WireError::BadLength);
    }
    let h = ChannelHeader {
        frame_type: expected,
        suite,
        sid: be32(b, 4),
        seq: be16(b, 8),
        ack: be16(b, 10),
        sack: be16(b, 12),
        flags: b[14],
    };
    if h.sid == 0 || h.flags & !0x01 != 0 {
        return Err(WireError::BadField);
    }
    Ok(h)
}

/// Data frame (§4.4).
#[derive(Clone, Copy, Debug)]
pub struct Data<T: AsRef<[u8]>> {
    buffer: T,
}
view_common!(Data);

impl<T: AsRef<[u8]>> Data<T> {
    /// Checks header, length range (1..=219 fragment bytes), sid and flags.
    pub fn check_len(&self) -> Result<(), WireError> {
        parse_channel(self.buffer.as_ref(), FrameType::Data).map(|_| ())
    }

    /// The parsed cleartext header.
    pub fn header(&self) -> ChannelHeader {
        let b = self.buffer.as_ref();
        parse_channel(b, FrameType::Data).unwrap_or(ChannelHeader {
            frame_type: FrameType::Data,
            suite: self.suite(),
            sid: 0,
            seq: 0,
            ack: 0,
            sack: 0,
            flags: 0,
        })
    }

    /// The AAD: bytes 0..15.
    pub fn aad(&self) -> &[u8] {
        &self.buffer.as_ref()[..CHANNEL_HEADER_LEN]
    }

    /// Encrypted fragment.
    pub fn ciphertext(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        &b[CHANNEL_HEADER_LEN..b.len() - TAG_LEN]
    }

    /// AEAD tag.
    pub fn tag(&self) -> [u8; TAG_LEN] {
        let b = self.buffer.as_ref();
        let mut t = [0u8; TAG_LEN];
        t.copy_from_slice(&b[b.len() - TAG_LEN..]);
        t
    }
}

/// Ack frame (§4.5).
#[derive(Clone, Copy, Debug)]
pub struct Ack<T: AsRef<[u8]>> {
    buffer: T,
}
view_common!(Ack);

impl<T: AsRef<[u8]>> Ack<T> {
    /// Checks header, exact length, sid and flags.
    pub fn check_len(&self) -> Result<(), WireError> {
        parse_channel(self.buffer.as_ref(), FrameType::Ack).map(|_| ())
    }

    /// The parsed cleartext header (`seq` is the ack counter).
    pub fn header(&self) -> ChannelHeader {
        let b = self.buffer.as_ref();
        parse_channel(b, FrameType::Ack).unwrap_or(ChannelHeader {
            frame_type: FrameType::Ack,
            suite: self.suite(),
            sid: 0,
            seq: 0,
            ack: 0,
            sack: 0,
            flags: 0,
        })
    }

    /// The AAD: bytes 0..15.
    pub fn aad(&self) -> &[u8] {
        &self.buffer.as_ref()[..CHANNEL_HEADER_LEN]
    }

    /// AEAD tag.
    pub fn tag(&self) -> [u8; TAG_LEN] {
        let mut t = [0u8; TAG_LEN];
        t.copy_from_slice(&self.buffer.as_ref()[CHANNEL_HEADER_LEN..]);
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_frame_type_fits_250_bytes_at_maximum_field_sizes() {
        for suite in SuiteId::ALL {
            let p = suite.public_key_len();
            let max = crate::MAX_FRAME;
            assert!(announce_len(suite) <= max);
            assert!(challenge_len(suite) <= max);
            assert_eq!(cert_len(suite), 73 + p);
            assert!(RESPONSE_LEN <= max);
            assert_eq!(CHANNEL_HEADER_LEN + MAX_FRAGMENT + TAG_LEN, max);
            assert!(ACK_LEN <= max);
            // Build each at its maximum and parse it back.
            let mut buf = [0u8; 300];
            let key = [7u8; 33];
            let n = AnnounceRepr {
                suite,
                mode: AnnounceMode::Reconfigure,
                last_failure: Some(FailureReason::Other),
                identity: &key[..p],
                ephemeral: &key[..p],
                counter: u64::MAX,
                channel: 14,
            }
            .emit(&mut buf, |_| [5; 64])
            .unwrap();
            assert!(n <= max);
            let a = Announce::new_checked(&buf[..n]).unwrap();
            assert_eq!(a.counter(), u64::MAX);
            assert_eq!(a.signature(), [5; 64]);
            assert_eq!(a.signed_part().len(), n - SIGNATURE_LEN);
            let cert = [1u8; 106];
            let n = ChallengeRepr {
                suite,
                sid: u32::MAX,
                nonce: [9; 16],
                ephemeral: &key[..p],
                unix_time: u32::MAX,
            }
            .emit_plain(&mut buf, &cert[..cert_len(suite)], &[3; 64])
            .unwrap();
            assert!(n <= max);
            Challenge::new_checked(&buf[..n]).unwrap();
            let n = emit_response_plain(&mut buf, suite, u32::MAX, &[3; 64]).unwrap();
            Response::new_checked(&buf[..n]).unwrap();
            let h = ChannelHeader {
                frame_type: FrameType::Data,
                suite,
                sid: u32::MAX,
                seq: u16::MAX,
                ack: u16::MAX,
                sack: u16::MAX,
                flags: FLAG_END,
            };
            h.emit(&mut buf).unwrap();
            let data = Data::new_checked(&buf[..max]).unwrap();
            assert_eq!(data.header(), h);
            assert_eq!(data.ciphertext().len(), MAX_FRAGMENT);
            assert_eq!(
                Data::new_checked(&buf[..max + 1]).err(),
                Some(WireError::BadLength)
            );
            let a = ChannelHeader {
                frame_type: FrameType::Ack,
                ..h
            };
            a.emit(&mut buf).unwrap();
            assert_eq!(Ack::new_checked(&buf[..ACK_LEN]).unwrap().header(), a);
        }
    }

    #[test]
    fn decoders_reject_bad_headers_and_lengths() {
        assert_eq!(
            Header::parse(&[0x5A, 1, 1]).err(),
            Some(WireError::Truncated)
        );
        assert_eq!(
            Header::parse(&[0x5B, 1, 1, 1]).err(),
            Some(WireError::BadMagic)
        );
        assert_eq!(
            Header::parse(&[0x5A, 1, 1, 1]).err(),
            Some(WireError::BadVersion)
        );
        assert_eq!(
            Header::parse(&[0x5A, 2, 9, 1]).err(),
            Some(WireError::UnknownType)
        );
        assert_eq!(
            Header::parse(&[0x5A, 2, 1, 3]).err(),
            Some(WireError::UnknownSuite)
        );
        let mut a = [0u8; 143];
        a[..4].copy_from_slice(&[0x5A, 2, 1, 1]);
        a[78] = 6; // channel
        assert!(Announce::new_checked(&a[..]).is_ok());
        a[5] = 2; // mode New with a reason: non-canonical
        assert_eq!(
            Announce::new_checked(&a[..]).err(),
            Some(WireError::BadField)
        );
        assert_eq!(
            Announce::new_checked(&a[..142]).err(),
            Some(WireError::BadLength)
        );
        assert_eq!(
            Response::new_checked(&a[..]).err(),
            Some(WireError::WrongType)
        );
    }
}
