//! ESP-NOW 802.11 vendor-specific action frame codec, in the smoltcp style.
//!
//! [`EspNowFrame`] is a zero-copy view over any byte buffer: [`EspNowFrame::new_checked`]
//! validates the structure once, then the accessors read fields in place. [`EspNowRepr`] is
//! the parsed, owned-by-reference form; [`EspNowRepr::emit`] writes a frame into a caller's
//! buffer. Layout (field notes §2, offsets in bytes):
//!
//! ```text
//!  0 frame control d0 00 (byte 1: 0x08 Retry)   22 sequence control (LE)
//!  2 duration (LE)                               24 category 127, OUI 18:fe:34, 4 random bytes
//!  4 addr1 = destination                         32 element 221, length = 5 + body
//! 10 addr2 = source                              34 OUI 18:fe:34, type 4, version
//! 16 addr3 (broadcast on ESP32, destination      39 body (<= 250 bytes)
//!    on ESP8266-era firmware: never required)   end FCS, CRC-32 LE (optional)
//! ```
//!
//! The FCS is optional on the wire we see (captures may or may not keep it), so its presence
//! is inferred from the bytes left after the vendor element and reported by
//! [`EspNowFrame::fcs`]; [`EspNowRepr::parse`] additionally rejects a bad or cut-off FCS,
//! and [`EspNowRepr::parse_with_fcs`] also a missing one, for senders known to append it.

use core::fmt;

use zerotouch_proto::{Addr, MAX_FRAME};

/// Espressif's OUI, used both after the action category and inside the vendor element.
pub const ESPRESSIF_OUI: [u8; 3] = [0x18, 0xfe, 0x34];
/// 802.11 action category "vendor specific".
pub const CATEGORY_VENDOR_SPECIFIC: u8 = 127;
/// 802.11 element ID "vendor specific".
pub const ELEMENT_VENDOR_SPECIFIC: u8 = 221;
/// ESP-NOW vendor element type.
pub const ESPNOW_TYPE: u8 = 4;
/// Version byte that ESP-NOW v1 senders (and we) put in the vendor element.
pub const ESPNOW_VERSION_1: u8 = 1;
/// Largest body in one v1 vendor element (the element length byte holds `5 + body`).
pub const MAX_BODY: usize = MAX_FRAME;
/// Bytes before the body: MAC header (24), action header (8), vendor element header (7).
pub const HEADER_LEN: usize = 39;
/// Length of the frame check sequence.
pub const FCS_LEN: usize = 4;
/// Longest frame this codec emits: header, 250-byte body and FCS (293 bytes).
pub const MAX_FRAME_LEN: usize = HEADER_LEN + MAX_BODY + FCS_LEN;

/// Frame control byte 0: protocol version 0, type management, subtype Action.
const FRAME_CONTROL_ACTION: u8 = 0xd0;
/// Frame control byte 1 flag: this is a retransmission.
const FLAG_RETRY: u8 = 0x08;
/// Flags that do not change the layout and may appear on received frames
/// (Retry, Power Management, More Data). ToDS/FromDS, More Fragments, Protected and
/// +HTC/Order all change how the frame must be read, so they are refused.
const ALLOWED_FLAGS: u8 = FLAG_RETRY | 0x10 | 0x20;
/// Version byte bit set by ESP-NOW v2 when another vendor element follows.
const VERSION_MORE_DATA: u8 = 0x10;
/// Vendor element length covers OUI (3), type (1) and version (1) before the body.
const ELEMENT_FIXED_LEN: usize = 5;

mod field {
    use core::ops::Range;
    pub const FRAME_CONTROL: Range<usize> = 0..2;
    pub const DURATION: Range<usize> = 2..4;
    pub const ADDR1: Range<usize> = 4..10;
    pub const ADDR2: Range<usize> = 10..16;
    pub const ADDR3: Range<usize> = 16..22;
    pub const SEQUENCE_CONTROL: Range<usize> = 22..24;
    pub const CATEGORY: usize = 24;
    pub const ACTION_OUI: Range<usize> = 25..28;
    pub const RANDOM: Range<usize> = 28..32;
    pub const ELEMENT_ID: usize = 32;
    pub const ELEMENT_LEN: usize = 33;
    pub const ELEMENT_OUI: Range<usize> = 34..37;
    pub const ELEMENT_TYPE: usize = 37;
    pub const VERSION: usize = 38;
    pub const BODY: usize = 39;
}

/// Why bytes are not an ESP-NOW frame (or not one this codec writes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// Fewer bytes than the frame needs; `needed` is the minimum for what was read so far.
    Truncated {
        /// Bytes available.
        len: usize,
        /// Bytes the frame needs.
        needed: usize,
    },
    /// Frame control is not a management Action frame (e.g. an ACK, `d4 00`).
    NotAction {
        /// The two frame control bytes as read.
        frame_control: [u8; 2],
    },
    /// Frame control flags that change the layout (ToDS/FromDS, fragments, Protected, +HTC).
    UnsupportedFlags {
        /// Frame control byte 1.
        flags: u8,
    },
    /// Action category is not vendor specific (127).
    NotVendorSpecific {
        /// Category byte.
        category: u8,
    },
    /// An OUI is not Espressif's 18:fe:34.
    NotEspressif {
        /// The OUI found.
        oui: [u8; 3],
    },
    /// The element after the random bytes is not a vendor element (221).
    NotVendorElement {
        /// Element ID found.
        element_id: u8,
    },
    /// Vendor element type is not ESP-NOW (4).
    NotEspNow {
        /// Type byte found.
        element_type: u8,
    },
    /// Vendor element version is neither 1 nor 2.
    UnsupportedVersion {
        /// Version number (low nibble of the version byte).
        version: u8,
    },
    /// Element length below 5 (it must cover OUI, type and version).
    BadElementLength {
        /// Element length byte.
        length: u8,
    },
    /// More bytes after the vendor element than an FCS (and no v2 "more data" bit).
    TrailingBytes {
        /// Bytes after the element.
        extra: usize,
    },
    /// The FCS is cut short: only `present` of its 4 bytes are in the buffer.
    FcsTruncated {
        /// FCS bytes present.
        present: usize,
    },
    /// The FCS does not match the frame: corrupted on the air or in the capture.
    FcsMismatch {
        /// FCS carried by the frame.
        received: u32,
        /// CRC-32 computed over the frame.
        computed: u32,
    },
    /// The FCS was required but the frame ends right after the vendor element (or, for
    /// v2 "more data" frames, it could not be located).
    FcsMissing,
    /// A body longer than 250 bytes was given to the builder.
    BodyTooLong {
        /// Body length given.
        len: usize,
    },
    /// The output buffer is too small for the frame.
    BufferTooSmall {
        /// Buffer length.
        len: usize,
        /// Bytes the frame needs.
        needed: usize,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::Truncated { len, needed } => write!(
                f,
                "ESP-NOW frame truncated: {len} bytes, at least {needed} needed (capture snap length or a cut datagram?)"
            ),
            Error::NotAction { frame_control } => write!(
                f,
                "not an 802.11 Action frame: frame control {:02x} {:02x}, expected d0 xx",
                frame_control[0], frame_control[1]
            ),
            Error::UnsupportedFlags { flags } => write!(
                f,
                "frame control flags {flags:#04x} (DS bits, fragments, Protected or +HTC) are not used by ESP-NOW v1; frame ignored"
            ),
            Error::NotVendorSpecific { category } => {
                write!(
                    f,
                    "action category {category}, expected 127 (vendor specific)"
                )
            }
            Error::NotEspressif { oui } => write!(
                f,
                "OUI {:02x}:{:02x}:{:02x} is not Espressif's 18:fe:34",
                oui[0], oui[1], oui[2]
            ),
            Error::NotVendorElement { element_id } => {
                write!(f, "element ID {element_id}, expected 221 (vendor specific)")
            }
            Error::NotEspNow { element_type } => {
                write!(
                    f,
                    "vendor element type {element_type}, expected 4 (ESP-NOW)"
                )
            }
            Error::UnsupportedVersion { version } => {
                write!(
                    f,
                    "ESP-NOW version {version} is not supported (1 or 2 expected)"
                )
            }
            Error::BadElementLength { length } => write!(
                f,
                "vendor element length {length} is below 5 (OUI, type and version)"
            ),
            Error::TrailingBytes { extra } => write!(
                f,
                "{extra} bytes follow the ESP-NOW element: neither nothing nor a 4-byte FCS"
            ),
            Error::FcsTruncated { present } => write!(
                f,
                "FCS cut off: {present} of 4 bytes present; the body is intact but unverified"
            ),
            Error::FcsMismatch { received, computed } => write!(
                f,
                "bad FCS: frame carries {received:#010x}, computed {computed:#010x}; drop the frame"
            ),
            Error::FcsMissing => write!(
                f,
                "FCS required but absent: the frame ends at its vendor element (cut, or a corrupted length byte)"
            ),
            Error::BodyTooLong { len } => write!(
                f,
                "body of {len} bytes exceeds the ESP-NOW v1 limit of {MAX_BODY}; split the message"
            ),
            Error::BufferTooSmall { len, needed } => write!(
                f,
                "output buffer of {len} bytes is too small; {needed} needed"
            ),
        }
    }
}

impl std::error::Error for Error {}

/// What the trailer after the vendor element says about the frame check sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fcs {
    /// No bytes follow the element: the capture or link stripped the FCS.
    Absent,
    /// A 4-byte FCS is present and matches.
    Valid(u32),
    /// A 4-byte FCS is present and does not match.
    Invalid {
        /// FCS carried by the frame.
        received: u32,
        /// CRC-32 computed over the frame.
        computed: u32,
    },
    /// Only `present` (1..=3) FCS bytes are in the buffer.
    Truncated {
        /// FCS bytes present.
        present: usize,
    },
    /// v2 "more data": further elements follow, which this v1 codec does not walk, so the
    /// trailer is not interpreted and the FCS is not checked.
    NotChecked,
}

/// CRC-32 (IEEE 802.3, as used for the 802.11 FCS) over `bytes`.
pub fn fcs_of(bytes: &[u8]) -> u32 {
    crc32fast::hash(bytes)
}

/// A zero-copy view of an ESP-NOW action frame in a byte buffer.
#[derive(Debug, Clone)]
pub struct EspNowFrame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> EspNowFrame<T> {
    /// Wraps a buffer without checking it. Accessors may panic on a short buffer: call
    /// [`Self::check_len`] first, or use [`Self::new_checked`].
    pub const fn new_unchecked(buffer: T) -> Self {
        EspNowFrame { buffer }
    }

    /// Wraps a buffer after [`Self::check_len`] succeeded.
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let frame = Self::new_unchecked(buffer);
        frame.check_len()?;
        Ok(frame)
    }

    /// Checks that the buffer holds a whole ESP-NOW frame, so that no accessor panics:
    /// an Action frame with layout-neutral flags, category 127, Espressif OUIs, vendor
    /// element 221 of type 4, version 1 or 2, and the full body. addr3 is not checked.
    /// The FCS is not verified here: see [`Self::fcs`].
    pub fn check_len(&self) -> Result<(), Error> {
        let data = self.buffer.as_ref();
        let len = data.len();
        if len < field::FRAME_CONTROL.end {
            return Err(Error::Truncated {
                len,
                needed: HEADER_LEN,
            });
        }
        let frame_control = [data[0], data[1]];
        if frame_control[0] != FRAME_CONTROL_ACTION {
            return Err(Error::NotAction { frame_control });
        }
        if frame_control[1] & !ALLOWED_FLAGS != 0 {
            return Err(Error::UnsupportedFlags {
                flags: frame_control[1],
            });
        }
        if len < HEADER_LEN {
            return Err(Error::Truncated {
                len,
                needed: HEADER_LEN,
            });
        }
        if data[field::CATEGORY] != CATEGORY_VENDOR_SPECIFIC {
            return Err(Error::NotVendorSpecific {
                category: data[field::CATEGORY],
            });
        }
        check_oui(&data[field::ACTION_OUI])?;
        if data[field::ELEMENT_ID] != ELEMENT_VENDOR_SPECIFIC {
            return Err(Error::NotVendorElement {
                element_id: data[field::ELEMENT_ID],
            });
        }
        let length = data[field::ELEMENT_LEN];
        if usize::from(length) < ELEMENT_FIXED_LEN {
            return Err(Error::BadElementLength { length });
        }
        check_oui(&data[field::ELEMENT_OUI])?;
        if data[field::ELEMENT_TYPE] != ESPNOW_TYPE {
            return Err(Error::NotEspNow {
                element_type: data[field::ELEMENT_TYPE],
            });
        }
        let version = data[field::VERSION] & 0x0f;
        if !(1..=2).contains(&version) {
            return Err(Error::UnsupportedVersion { version });
        }
        let body_end = field::BODY + usize::from(length) - ELEMENT_FIXED_LEN;
        if len < body_end {
            return Err(Error::Truncated {
                len,
                needed: body_end,
            });
        }
        let extra = len - body_end;
        if extra > FCS_LEN && !self.more_data() {
            return Err(Error::TrailingBytes { extra });
        }
        Ok(())
    }

    /// Consumes the view and returns the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    fn addr(&self, range: core::ops::Range<usize>) -> Addr {
        let mut addr = [0u8; 6];
        addr.copy_from_slice(&self.bytes()[range]);
        Addr(addr)
    }

    /// The two frame control bytes.
    pub fn frame_control(&self) -> [u8; 2] {
        let b = self.bytes();
        [b[0], b[1]]
    }

    /// True if the Retry flag is set (a retransmission of an earlier frame).
    pub fn retry(&self) -> bool {
        self.bytes()[1] & FLAG_RETRY != 0
    }

    /// The duration field (microseconds of NAV).
    pub fn duration(&self) -> u16 {
        let b = &self.bytes()[field::DURATION];
        u16::from_le_bytes([b[0], b[1]])
    }

    /// addr1: the destination (receiver) address, possibly broadcast.
    pub fn dst(&self) -> Addr {
        self.addr(field::ADDR1)
    }

    /// addr2: the source (transmitter) address.
    pub fn src(&self) -> Addr {
        self.addr(field::ADDR2)
    }

    /// addr3: broadcast from ESP32 senders, the destination from ESP8266-era senders.
    pub fn addr3(&self) -> Addr {
        self.addr(field::ADDR3)
    }

    /// The raw sequence control field (sequence number << 4 | fragment number).
    pub fn sequence_control(&self) -> u16 {
        let b = &self.bytes()[field::SEQUENCE_CONTROL];
        u16::from_le_bytes([b[0], b[1]])
    }

    /// The 12-bit sequence number.
    pub fn sequence_number(&self) -> u16 {
        self.sequence_control() >> 4
    }

    /// The 4-bit fragment number (0 for ESP-NOW).
    pub fn fragment_number(&self) -> u8 {
        (self.sequence_control() & 0x0f) as u8
    }

    /// The 4 random bytes after the action OUI (a retry-duplicate filter, not a nonce).
    pub fn random(&self) -> [u8; 4] {
        let mut random = [0u8; 4];
        random.copy_from_slice(&self.bytes()[field::RANDOM]);
        random
    }

    /// The raw version byte of the vendor element.
    pub fn version_byte(&self) -> u8 {
        self.bytes()[field::VERSION]
    }

    /// The ESP-NOW version number (1 or 2).
    pub fn version(&self) -> u8 {
        self.version_byte() & 0x0f
    }

    /// v2 "more data": another vendor element follows. This codec reads only the first.
    pub fn more_data(&self) -> bool {
        self.version() >= 2 && self.version_byte() & VERSION_MORE_DATA != 0
    }

    /// The body length given by the element length.
    pub fn body_len(&self) -> usize {
        usize::from(self.bytes()[field::ELEMENT_LEN]) - ELEMENT_FIXED_LEN
    }

    /// The body of the (first) vendor element.
    pub fn body(&self) -> &[u8] {
        &self.bytes()[field::BODY..field::BODY + self.body_len()]
    }

    /// Bytes after the vendor element: nothing, the FCS, part of it, or v2 elements.
    pub fn trailer(&self) -> &[u8] {
        &self.bytes()[field::BODY + self.body_len()..]
    }

    /// Reports whether the frame carries an FCS and whether it matches.
    pub fn fcs(&self) -> Fcs {
        if self.more_data() {
            return Fcs::NotChecked;
        }
        let end = field::BODY + self.body_len();
        let trailer = self.trailer();
        match trailer.len() {
            0 => Fcs::Absent,
            FCS_LEN => {
                let received = u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
                let computed = fcs_of(&self.bytes()[..end]);
                if received == computed {
                    Fcs::Valid(received)
                } else {
                    Fcs::Invalid { received, computed }
                }
            }
            present => Fcs::Truncated { present },
        }
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EspNowFrame<T> {
    fn bytes_mut(&mut self) -> &mut [u8] {
        self.buffer.as_mut()
    }

    /// Sets or clears the Retry flag (recompute the FCS afterwards).
    pub fn set_retry(&mut self, retry: bool) {
        let b = self.bytes_mut();
        if retry {
            b[1] |= FLAG_RETRY;
        } else {
            b[1] &= !FLAG_RETRY;
        }
    }

    /// Sets the sequence number, keeping fragment number 0 (recompute the FCS afterwards).
    pub fn set_sequence_number(&mut self, sequence: u16) {
        let control = (sequence & 0x0fff) << 4;
        self.bytes_mut()[field::SEQUENCE_CONTROL].copy_from_slice(&control.to_le_bytes());
    }

    /// Recomputes the FCS in place if the frame has room for one after the element.
    /// Returns whether an FCS was written.
    pub fn fill_fcs(&mut self) -> bool {
        let end = field::BODY + self.body_len();
        if self.bytes().len() != end + FCS_LEN {
            return false;
        }
        let fcs = fcs_of(&self.bytes()[..end]);
        self.bytes_mut()[end..].copy_from_slice(&fcs.to_le_bytes());
        true
    }
}

fn check_oui(oui: &[u8]) -> Result<(), Error> {
    if oui == ESPRESSIF_OUI {
        Ok(())
    } else {
        Err(Error::NotEspressif {
            oui: [oui[0], oui[1], oui[2]],
        })
    }
}

/// An ESP-NOW frame's fields, borrowing the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EspNowRepr<'a> {
    /// Retry flag.
    pub retry: bool,
    /// Duration field; 0 for broadcast.
    pub duration: u16,
    /// addr1, the destination.
    pub dst: Addr,
    /// addr2, the source.
    pub src: Addr,
    /// addr3: use [`Addr::BROADCAST`] as ESP32s do.
    pub addr3: Addr,
    /// 12-bit sequence number.
    pub sequence_number: u16,
    /// The 4 random bytes.
    pub random: [u8; 4],
    /// Version byte (1 for frames we send).
    pub version: u8,
    /// Body, at most 250 bytes.
    pub body: &'a [u8],
}

impl<'a> EspNowRepr<'a> {
    /// Parses a frame strictly: the structure must be valid and, if an FCS is present, it
    /// must be whole and match. Frames with v2 "more data" yield their first element.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(frame: &EspNowFrame<&'a T>) -> Result<Self, Error> {
        frame.check_len()?;
        match frame.fcs() {
            Fcs::Invalid { received, computed } => {
                return Err(Error::FcsMismatch { received, computed });
            }
            Fcs::Truncated { present } => return Err(Error::FcsTruncated { present }),
            Fcs::Absent | Fcs::Valid(_) | Fcs::NotChecked => {}
        }
        let data: &'a [u8] = T::as_ref(frame.buffer);
        Ok(EspNowRepr {
            retry: frame.retry(),
            duration: frame.duration(),
            dst: frame.dst(),
            src: frame.src(),
            addr3: frame.addr3(),
            sequence_number: frame.sequence_number(),
            random: frame.random(),
            version: frame.version_byte(),
            body: &data[field::BODY..field::BODY + frame.body_len()],
        })
    }

    /// Parses a frame whose sender is known to append an FCS (radiotap Flags has
    /// [`crate::radiotap::FLAG_FCS`], or the UDP link): like [`Self::parse`], but a missing
    /// FCS is an error too. Prefer this whenever the FCS is known to be there: with the FCS
    /// optional, a corrupted element length could make the 4 FCS bytes look like body.
    pub fn parse_with_fcs<T: AsRef<[u8]> + ?Sized>(
        frame: &EspNowFrame<&'a T>,
    ) -> Result<Self, Error> {
        let repr = Self::parse(frame)?;
        match frame.fcs() {
            Fcs::Valid(_) => Ok(repr),
            _ => Err(Error::FcsMissing),
        }
    }

    /// Bytes [`Self::emit`] writes.
    pub fn buffer_len(&self, with_fcs: bool) -> usize {
        HEADER_LEN + self.body.len() + if with_fcs { FCS_LEN } else { 0 }
    }

    /// Writes the frame at the start of `buffer` and returns its length. Fails, writing
    /// nothing, if the body exceeds 250 bytes, the version is not 1 or 2, or the buffer is
    /// too small.
    pub fn emit(&self, buffer: &mut [u8], with_fcs: bool) -> Result<usize, Error> {
        if self.body.len() > MAX_BODY {
            return Err(Error::BodyTooLong {
                len: self.body.len(),
            });
        }
        let version = self.version & 0x0f;
        if !(1..=2).contains(&version) {
            // Never write what no receiver (including ours) accepts.
            return Err(Error::UnsupportedVersion { version });
        }
        let needed = self.buffer_len(with_fcs);
        if buffer.len() < needed {
            return Err(Error::BufferTooSmall {
                len: buffer.len(),
                needed,
            });
        }
        let out = &mut buffer[..needed];
        out[0] = FRAME_CONTROL_ACTION;
        out[1] = if self.retry { FLAG_RETRY } else { 0 };
        out[field::DURATION].copy_from_slice(&self.duration.to_le_bytes());
        out[field::ADDR1].copy_from_slice(&self.dst.0);
        out[field::ADDR2].copy_from_slice(&self.src.0);
        out[field::ADDR3].copy_from_slice(&self.addr3.0);
        out[field::SEQUENCE_CONTROL]
            .copy_from_slice(&((self.sequence_number & 0x0fff) << 4).to_le_bytes());
        out[field::CATEGORY] = CATEGORY_VENDOR_SPECIFIC;
        out[field::ACTION_OUI].copy_from_slice(&ESPRESSIF_OUI);
        out[field::RANDOM].copy_from_slice(&self.random);
        out[field::ELEMENT_ID] = ELEMENT_VENDOR_SPECIFIC;
        // Cannot truncate: body.len() <= 250 was checked above.
        out[field::ELEMENT_LEN] = (ELEMENT_FIXED_LEN + self.body.len()) as u8;
        out[field::ELEMENT_OUI].copy_from_slice(&ESPRESSIF_OUI);
        out[field::ELEMENT_TYPE] = ESPNOW_TYPE;
        out[field::VERSION] = self.version;
        let body_end = field::BODY + self.body.len();
        out[field::BODY..body_end].copy_from_slice(self.body);
        if with_fcs {
            let fcs = fcs_of(&out[..body_end]);
            out[body_end..].copy_from_slice(&fcs.to_le_bytes());
        }
        Ok(needed)
    }
}

/// Key that identifies one transmission and all its retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DedupKey {
    /// Source MAC.
    pub src: Addr,
    /// 12-bit sequence number.
    pub sequence_number: u16,
    /// The frame's 4 random bytes.
    pub random: [u8; 4],
}

impl DedupKey {
    /// The key of a checked frame.
    pub fn of<T: AsRef<[u8]>>(frame: &EspNowFrame<T>) -> Self {
        DedupKey {
            src: frame.src(),
            sequence_number: frame.sequence_number(),
            random: frame.random(),
        }
    }
}

/// Drops retransmissions: remembers the last `capacity` keys seen (oldest forgotten first).
///
/// A monitor-mode receiver sees every retry of a unicast that nobody ACKs (dozens of
/// copies); they share source, sequence number and random bytes. Memory and time per frame
/// are bounded by the window size.
#[derive(Debug, Clone)]
pub struct Deduplicator {
    window: std::collections::VecDeque<DedupKey>,
    seen: std::collections::HashSet<DedupKey>,
    capacity: usize,
}

impl Deduplicator {
    /// A window of `capacity` keys (at least 1).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Deduplicator {
            window: std::collections::VecDeque::with_capacity(capacity),
            seen: std::collections::HashSet::with_capacity(capacity),
            capacity,
        }
    }

    /// Records `key` and returns true if it was already in the window (a duplicate).
    pub fn is_duplicate(&mut self, key: DedupKey) -> bool {
        if self.seen.contains(&key) {
            return true;
        }
        if self.window.len() == self.capacity
            && let Some(oldest) = self.window.pop_front()
        {
            self.seen.remove(&oldest);
        }
        self.window.push_back(key);
        self.seen.insert(key);
        false
    }

    /// Keys currently remembered.
    pub fn len(&self) -> usize {
        self.window.len()
    }

    /// True if nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.window.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repr(body: &[u8]) -> EspNowRepr<'_> {
        EspNowRepr {
            retry: false,
            duration: 0,
            dst: Addr::BROADCAST,
            src: Addr([0x02, 1, 2, 3, 4, 5]),
            addr3: Addr::BROADCAST,
            sequence_number: 0x123,
            random: [9, 8, 7, 6],
            version: ESPNOW_VERSION_1,
            body,
        }
    }

    #[test]
    fn emit_parse_round_trip_with_and_without_fcs() {
        let body = [0xabu8; MAX_BODY];
        for with_fcs in [false, true] {
            let mut buf = [0u8; MAX_FRAME_LEN];
            let n = repr(&body).emit(&mut buf, with_fcs).expect("emit");
            assert_eq!(n, if with_fcs { 293 } else { 289 });
            let frame = EspNowFrame::new_checked(&buf[..n]).expect("checked");
            assert_eq!(frame.fcs() == Fcs::Absent, !with_fcs);
            assert!(matches!(frame.fcs(), Fcs::Absent | Fcs::Valid(_)));
            let parsed = EspNowRepr::parse(&frame).expect("parse");
            assert_eq!(parsed, repr(&body));
        }
    }

    #[test]
    fn body_over_250_is_refused() {
        let body = [0u8; MAX_BODY + 1];
        let mut buf = [0u8; 400];
        assert_eq!(
            repr(&body).emit(&mut buf, true),
            Err(Error::BodyTooLong { len: 251 })
        );
        let mut bad_version = repr(b"x");
        bad_version.version = 0;
        assert_eq!(
            bad_version.emit(&mut buf, true),
            Err(Error::UnsupportedVersion { version: 0 })
        );
        assert_eq!(
            repr(b"x").emit(&mut buf[..HEADER_LEN], true),
            Err(Error::BufferTooSmall {
                len: HEADER_LEN,
                needed: HEADER_LEN + 1 + FCS_LEN
            })
        );
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let mut buf = [0u8; 64];
        let n = repr(b"hello").emit(&mut buf, false).expect("emit");
        for cut in 0..n {
            assert!(
                EspNowFrame::new_checked(&buf[..cut]).is_err(),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn flipped_bit_is_reported_as_invalid_fcs() {
        let mut buf = [0u8; 64];
        let n = repr(b"hello").emit(&mut buf, true).expect("emit");
        buf[field::BODY] ^= 1;
        let frame = EspNowFrame::new_checked(&buf[..n]).expect("structure is fine");
        assert!(matches!(frame.fcs(), Fcs::Invalid { .. }));
        assert!(matches!(
            EspNowRepr::parse(&frame),
            Err(Error::FcsMismatch { .. })
        ));
        let n_plain = repr(b"hello").emit(&mut buf, false).expect("emit");
        let plain = EspNowFrame::new_checked(&buf[..n_plain]).expect("checked");
        assert_eq!(EspNowRepr::parse_with_fcs(&plain), Err(Error::FcsMissing));
        assert_eq!(repr(b"hello").emit(&mut buf, true), Ok(n));
        buf[field::BODY] ^= 1;
        let mut frame = EspNowFrame::new_unchecked(&mut buf[..n]);
        assert!(frame.fill_fcs());
        assert!(matches!(frame.fcs(), Fcs::Valid(_)));
    }

    #[test]
    fn v2_more_data_is_reported_and_first_element_read() {
        let mut buf = [0u8; 80];
        let mut r = repr(b"first");
        r.version = 2 | VERSION_MORE_DATA;
        let n = r.emit(&mut buf, false).expect("emit");
        // A following element the v1 codec does not interpret.
        buf[n..n + 12].copy_from_slice(&[
            221, 10, 0x18, 0xfe, 0x34, 4, 2, b'm', b'o', b'r', b'e', b'!',
        ]);
        let frame = EspNowFrame::new_checked(&buf[..n + 12]).expect("checked");
        assert!(frame.more_data());
        assert_eq!(frame.version(), 2);
        assert_eq!(frame.body(), b"first");
        assert_eq!(frame.fcs(), Fcs::NotChecked);
    }

    #[test]
    fn unsupported_versions_and_flags_are_refused() {
        let mut buf = [0u8; 64];
        let n = repr(b"x").emit(&mut buf, false).expect("emit");
        buf[field::VERSION] = 3;
        assert_eq!(
            EspNowFrame::new_checked(&buf[..n]).map(|_| ()),
            Err(Error::UnsupportedVersion { version: 3 })
        );
        buf[field::VERSION] = 1;
        buf[1] = 0x40;
        assert_eq!(
            EspNowFrame::new_checked(&buf[..n]).map(|_| ()),
            Err(Error::UnsupportedFlags { flags: 0x40 })
        );
    }

    #[test]
    fn deduplicator_forgets_oldest_beyond_window() {
        let key = |n: u16| DedupKey {
            src: Addr([2, 0, 0, 0, 0, 1]),
            sequence_number: n,
            random: [0; 4],
        };
        let mut dedup = Deduplicator::new(2);
        assert!(!dedup.is_duplicate(key(1)));
        assert!(dedup.is_duplicate(key(1)));
        assert!(!dedup.is_duplicate(key(2)));
        assert!(!dedup.is_duplicate(key(3)));
        assert_eq!(dedup.len(), 2);
        assert!(!dedup.is_duplicate(key(1)), "key 1 fell out of the window");
    }
}
