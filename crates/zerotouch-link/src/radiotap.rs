//! Minimal radiotap header reader and writer, enough for ESP-NOW captures and injection.
//!
//! Radiotap (<https://www.radiotap.org>) prefixes each 802.11 frame from a monitor-mode
//! interface: version 0, pad, `it_len` (LE u16, covers the whole header), then one or more
//! LE u32 `present` words (bit 31 chains another word), then the fields in bit order, each
//! aligned to its natural size relative to the header start. The reader walks the fields
//! of the first present word whose sizes it knows (bits 0..=27) and stops at the first
//! unknown one; the 802.11 frame always starts at `it_len`, whatever the reader understood.

use core::fmt;

/// Flags field bit: the 802.11 frame ends with a 4-byte FCS.
pub const FLAG_FCS: u8 = 0x10;
/// Flags field bit: the frame failed the FCS check in the receiver.
pub const FLAG_BAD_FCS: u8 = 0x40;
/// TX flags bit: do not wait for an ACK (injected broadcast-like unicast).
pub const TX_FLAG_NO_ACK: u16 = 0x0008;

const BIT_FLAGS: u32 = 1;
const BIT_RATE: u32 = 2;
const BIT_CHANNEL: u32 = 3;
const BIT_ANTENNA_SIGNAL: u32 = 5;
const BIT_TX_FLAGS: u32 = 15;
const BIT_EXT: u32 = 31;

/// (alignment, size) of the radiotap fields for present bits 0..=27 (radiotap.org).
const FIELD_LAYOUT: [(usize, usize); 28] = [
    (8, 8),  // 0 TSFT
    (1, 1),  // 1 Flags
    (1, 1),  // 2 Rate
    (2, 4),  // 3 Channel
    (1, 2),  // 4 FHSS
    (1, 1),  // 5 dBm antenna signal
    (1, 1),  // 6 dBm antenna noise
    (2, 2),  // 7 lock quality
    (2, 2),  // 8 TX attenuation
    (2, 2),  // 9 dB TX attenuation
    (1, 1),  // 10 dBm TX power
    (1, 1),  // 11 antenna
    (1, 1),  // 12 dB antenna signal
    (1, 1),  // 13 dB antenna noise
    (2, 2),  // 14 RX flags
    (2, 2),  // 15 TX flags
    (1, 1),  // 16 RTS retries
    (1, 1),  // 17 data retries
    (4, 8),  // 18 XChannel
    (1, 3),  // 19 MCS
    (4, 8),  // 20 A-MPDU status
    (2, 12), // 21 VHT
    (8, 12), // 22 timestamp
    (2, 12), // 23 HE
    (2, 12), // 24 HE-MU
    (2, 6),  // 25 HE-MU other user
    (1, 1),  // 26 0-length PSDU
    (2, 4),  // 27 L-SIG
];

/// Why a radiotap header could not be read or written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// Fewer bytes than the header (or its declared length) needs.
    Truncated {
        /// Bytes available.
        len: usize,
        /// Bytes needed.
        needed: usize,
    },
    /// Radiotap version is not 0.
    UnsupportedVersion {
        /// Version byte.
        version: u8,
    },
    /// `it_len` is shorter than the present words or the fields it announces.
    BadLength {
        /// Declared header length.
        it_len: u16,
    },
    /// The output buffer is too small.
    BufferTooSmall {
        /// Buffer length.
        len: usize,
        /// Bytes needed.
        needed: usize,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::Truncated { len, needed } => {
                write!(f, "radiotap header truncated: {len} bytes, {needed} needed")
            }
            Error::UnsupportedVersion { version } => {
                write!(f, "radiotap version {version}, only version 0 exists")
            }
            Error::BadLength { it_len } => write!(
                f,
                "radiotap length {it_len} is too short for the fields its present words announce"
            ),
            Error::BufferTooSmall { len, needed } => {
                write!(
                    f,
                    "output buffer of {len} bytes is too small; {needed} needed"
                )
            }
        }
    }
}

impl std::error::Error for Error {}

/// The radiotap fields zerotouch cares about; `None` = absent (or not understood).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Radiotap {
    /// Flags field (see [`FLAG_FCS`]).
    pub flags: Option<u8>,
    /// Data rate in units of 500 kbps (2 = 1 Mbps, 12 = 6 Mbps).
    pub rate: Option<u8>,
    /// Channel centre frequency in MHz and channel flags.
    pub channel: Option<(u16, u16)>,
    /// Antenna signal in dBm.
    pub antenna_signal_dbm: Option<i8>,
    /// TX flags (see [`TX_FLAG_NO_ACK`]).
    pub tx_flags: Option<u16>,
}

/// A parsed radiotap header and the 802.11 frame after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parsed<'a> {
    /// Fields read.
    pub header: Radiotap,
    /// The header length (`it_len`).
    pub header_len: usize,
    /// The 802.11 frame after the header (with FCS if `header.has_fcs()`).
    pub frame: &'a [u8],
}

impl Radiotap {
    /// True if the Flags field says an FCS ends the frame.
    pub fn has_fcs(&self) -> bool {
        self.flags.is_some_and(|flags| flags & FLAG_FCS != 0)
    }

    /// Reads a radiotap header at the start of `bytes`.
    pub fn parse(bytes: &[u8]) -> Result<Parsed<'_>, Error> {
        if bytes.len() < 8 {
            return Err(Error::Truncated {
                len: bytes.len(),
                needed: 8,
            });
        }
        if bytes[0] != 0 {
            return Err(Error::UnsupportedVersion { version: bytes[0] });
        }
        let it_len = u16::from_le_bytes([bytes[2], bytes[3]]);
        let header_len = usize::from(it_len);
        if bytes.len() < header_len {
            return Err(Error::Truncated {
                len: bytes.len(),
                needed: header_len,
            });
        }
        let header_bytes = &bytes[..header_len];
        // Walk the chain of present words; only the first word's fields are decoded.
        let mut offset = 4;
        let mut first_present = None;
        loop {
            let word = header_bytes
                .get(offset..offset + 4)
                .ok_or(Error::BadLength { it_len })?;
            let present = u32::from_le_bytes([word[0], word[1], word[2], word[3]]);
            first_present.get_or_insert(present);
            offset += 4;
            if present & (1 << BIT_EXT) == 0 {
                break;
            }
        }
        let present = first_present.unwrap_or(0);
        let mut header = Radiotap::default();
        for (bit, &(align, size)) in FIELD_LAYOUT.iter().enumerate() {
            let bit = bit as u32;
            if present & (1 << bit) == 0 {
                continue;
            }
            offset = offset.next_multiple_of(align);
            let value = header_bytes
                .get(offset..offset + size)
                .ok_or(Error::BadLength { it_len })?;
            match bit {
                BIT_FLAGS => header.flags = Some(value[0]),
                BIT_RATE => header.rate = Some(value[0]),
                BIT_CHANNEL => {
                    header.channel = Some((
                        u16::from_le_bytes([value[0], value[1]]),
                        u16::from_le_bytes([value[2], value[3]]),
                    ))
                }
                BIT_ANTENNA_SIGNAL => header.antenna_signal_dbm = Some(value[0] as i8),
                BIT_TX_FLAGS => header.tx_flags = Some(u16::from_le_bytes([value[0], value[1]])),
                _ => {}
            }
            offset += size;
        }
        Ok(Parsed {
            header,
            header_len,
            frame: &bytes[header_len..],
        })
    }

    /// Header length [`Self::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        self.layout().1
    }

    /// (present word, total length) for the fields this writer supports.
    fn layout(&self) -> (u32, usize) {
        let mut present = 0u32;
        let mut len = 8;
        let mut add = |bit: u32, on: bool| {
            if on {
                let (align, size) = FIELD_LAYOUT[bit as usize];
                present |= 1 << bit;
                len = usize::next_multiple_of(len, align) + size;
            }
        };
        add(BIT_FLAGS, self.flags.is_some());
        add(BIT_RATE, self.rate.is_some());
        add(BIT_CHANNEL, self.channel.is_some());
        add(BIT_ANTENNA_SIGNAL, self.antenna_signal_dbm.is_some());
        add(BIT_TX_FLAGS, self.tx_flags.is_some());
        (present, len)
    }

    /// Writes the header (one present word, naturally aligned fields) at the start of
    /// `buffer` and returns its length. With no fields this is the 8-byte minimal header.
    pub fn emit(&self, buffer: &mut [u8]) -> Result<usize, Error> {
        let (present, len) = self.layout();
        if buffer.len() < len {
            return Err(Error::BufferTooSmall {
                len: buffer.len(),
                needed: len,
            });
        }
        let out = &mut buffer[..len];
        out.fill(0);
        // `len` is at most 8 + 1 + 1 + 4 + 1 + 2 plus padding, far below u16::MAX.
        out[2..4].copy_from_slice(&(len as u16).to_le_bytes());
        out[4..8].copy_from_slice(&present.to_le_bytes());
        let mut offset = 8;
        let mut put = |bit: u32, value: &[u8]| {
            let (align, _) = FIELD_LAYOUT[bit as usize];
            offset = usize::next_multiple_of(offset, align);
            out[offset..offset + value.len()].copy_from_slice(value);
            offset += value.len();
        };
        if let Some(flags) = self.flags {
            put(BIT_FLAGS, &[flags]);
        }
        if let Some(rate) = self.rate {
            put(BIT_RATE, &[rate]);
        }
        if let Some((freq, chan_flags)) = self.channel {
            let mut value = [0u8; 4];
            value[..2].copy_from_slice(&freq.to_le_bytes());
            value[2..].copy_from_slice(&chan_flags.to_le_bytes());
            put(BIT_CHANNEL, &value);
        }
        if let Some(signal) = self.antenna_signal_dbm {
            put(BIT_ANTENNA_SIGNAL, &[signal as u8]);
        }
        if let Some(tx_flags) = self.tx_flags {
            put(BIT_TX_FLAGS, &tx_flags.to_le_bytes());
        }
        Ok(len)
    }
}

/// Channel flags for a 2.4 GHz channel with CCK (DSSS) modulation.
pub const CHANNEL_FLAGS_2GHZ_CCK: u16 = 0x00a0;

/// Centre frequency in MHz of 2.4 GHz channel `channel` (1..=14), `None` otherwise.
pub fn channel_frequency(channel: u8) -> Option<u16> {
    match channel {
        1..=13 => Some(2407 + 5 * u16::from(channel)),
        14 => Some(2484),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_header_is_eight_bytes() {
        let mut buf = [0xffu8; 8];
        assert_eq!(Radiotap::default().emit(&mut buf), Ok(8));
        assert_eq!(buf, [0, 0, 8, 0, 0, 0, 0, 0]);
        let parsed = Radiotap::parse(&buf).expect("parse");
        assert_eq!(parsed.header, Radiotap::default());
        assert!(parsed.frame.is_empty());
    }

    #[test]
    fn fields_are_aligned_and_round_trip() {
        let header = Radiotap {
            flags: Some(FLAG_FCS),
            rate: Some(2),
            channel: Some((2412, CHANNEL_FLAGS_2GHZ_CCK)),
            antenna_signal_dbm: Some(-40),
            tx_flags: Some(TX_FLAG_NO_ACK),
        };
        let mut buf = [0u8; 32];
        let len = header.emit(&mut buf).expect("emit");
        // flags@8, rate@9, channel@10..14, signal@14, tx flags aligned to 16..18.
        assert_eq!(len, 18);
        assert_eq!(&buf[10..12], &2412u16.to_le_bytes());
        assert_eq!(&buf[16..18], &TX_FLAG_NO_ACK.to_le_bytes());
        let parsed = Radiotap::parse(&buf[..len]).expect("parse");
        assert_eq!(parsed.header, header);
        assert!(parsed.header.has_fcs());
    }

    #[test]
    fn short_or_inconsistent_headers_are_errors() {
        for len in 0..8 {
            assert!(Radiotap::parse(&[0u8; 8][..len]).is_err());
        }
        // Present says Flags, but it_len leaves no room for it.
        assert_eq!(
            Radiotap::parse(&[0, 0, 8, 0, 2, 0, 0, 0]),
            Err(Error::BadLength { it_len: 8 })
        );
        // Chain bit set with no second word.
        assert_eq!(
            Radiotap::parse(&[0, 0, 8, 0, 0, 0, 0, 0x80]),
            Err(Error::BadLength { it_len: 8 })
        );
        assert_eq!(
            Radiotap::parse(&[0, 0, 40, 0, 0, 0, 0, 0]),
            Err(Error::Truncated { len: 8, needed: 40 })
        );
    }
}
