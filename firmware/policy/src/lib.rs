//! The decisions of the zerotouch ESP32-C3 enrollee firmware that do not need the chip,
//! kept here so that the host tests exercise them (`cargo test` in this directory, run by
//! `firmware/build.sh`):
//!
//! - [`Backoff`]: how long to wait before retrying after a radio error (instead of halting);
//! - [`Market`]: the country code and the channels the device may use, chosen at build time;
//! - [`stored_channel`]: a channel read from flash is checked before use;
//! - [`TxPower`]: the transmit power setting, checked against the driver's range;
//! - [`TimerCheck`]: timers run after every received frame, so traffic cannot starve them;
//! - [`Heartbeat`]: the watchdog is fed only while the main loop shows progress.
//!
//! `no_std`, no allocator, no dependencies; times are milliseconds since boot.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

/// Exponential backoff with a cap: the wait before the next retry of a failed radio
/// operation. Reset it after a success.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    initial_ms: u64,
    max_ms: u64,
    next_ms: u64,
    failures: u32,
}

impl Backoff {
    /// Waits of `initial_ms`, doubling up to `max_ms`.
    pub const fn new(initial_ms: u64, max_ms: u64) -> Self {
        Self {
            initial_ms,
            max_ms,
            next_ms: initial_ms,
            failures: 0,
        }
    }

    /// Records a failure; returns how long to wait before retrying.
    pub fn failed(&mut self) -> u64 {
        let wait = self.next_ms.min(self.max_ms);
        self.next_ms = self.next_ms.saturating_mul(2).min(self.max_ms);
        self.failures = self.failures.saturating_add(1);
        wait
    }

    /// Records a success: the next failure waits `initial_ms` again.
    pub fn succeeded(&mut self) {
        self.next_ms = self.initial_ms;
        self.failures = 0;
    }

    /// Failures since the last success.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

/// Where the device is sold: sets the Wi-Fi country code and the 2.4 GHz channels it may
/// announce, listen and join on. Chosen at build time (`ZEROTOUCH_MARKET`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Market {
    /// United States (FCC): channels 1-11.
    Us,
    /// Canada (ISED): channels 1-11.
    Ca,
    /// European Union (ETSI): channels 1-13.
    Eu,
    /// United Kingdom: channels 1-13.
    Gb,
    /// Japan: channels 1-13 (channel 14 is 802.11b only, which ESP-NOW does not use).
    Jp,
    /// China: channels 1-13.
    Cn,
}

impl Market {
    /// Parses a market name as given at build time (`US`, `CA`, `EU`, `GB`, `JP`, `CN`;
    /// any case). `None` for anything else.
    pub fn parse(name: &str) -> Option<Self> {
        let mut upper = [0u8; 2];
        let bytes = name.as_bytes();
        if bytes.len() != 2 {
            return None;
        }
        for (dst, src) in upper.iter_mut().zip(bytes) {
            *dst = src.to_ascii_uppercase();
        }
        Some(match &upper {
            b"US" => Self::Us,
            b"CA" => Self::Ca,
            b"EU" => Self::Eu,
            b"GB" => Self::Gb,
            b"JP" => Self::Jp,
            b"CN" => Self::Cn,
            _ => return None,
        })
    }

    /// The ISO 3166 country code handed to the Wi-Fi driver (`EU` for the EU as a whole,
    /// as ESP-IDF accepts it).
    pub fn country_code(self) -> [u8; 2] {
        match self {
            Self::Us => *b"US",
            Self::Ca => *b"CA",
            Self::Eu => *b"EU",
            Self::Gb => *b"GB",
            Self::Jp => *b"JP",
            Self::Cn => *b"CN",
        }
    }

    /// The highest channel allowed (the lowest is always 1).
    pub fn last_channel(self) -> u8 {
        match self {
            Self::Us | Self::Ca => 11,
            Self::Eu | Self::Gb | Self::Jp | Self::Cn => 13,
        }
    }

    /// Whether the device may use `channel` here.
    pub fn allows(self, channel: u8) -> bool {
        (1..=self.last_channel()).contains(&channel)
    }
}

/// Why a stored channel was not used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChannelProblem {
    /// Not a 2.4 GHz channel at all (flash corruption or an incompatible firmware).
    OutOfRange(u8),
    /// A real channel, but not allowed in this market (the device moved, or was re-flashed
    /// for another market).
    NotAllowed(u8),
}

/// The channel to start on, from the one stored at the last provisioning: used if it is a
/// channel this market allows, else `default` with the reason, so a bad value can never stop
/// a boot.
pub fn stored_channel(
    stored: Option<u8>,
    market: Market,
    default: u8,
) -> (u8, Option<ChannelProblem>) {
    match stored {
        None => (default, None),
        Some(ch) if market.allows(ch) => (ch, None),
        Some(ch) if (1..=14).contains(&ch) => (default, Some(ChannelProblem::NotAllowed(ch))),
        Some(ch) => (default, Some(ChannelProblem::OutOfRange(ch))),
    }
}

/// Maximum transmit power in the Wi-Fi driver's unit, a quarter of a dBm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxPower(i8);

impl TxPower {
    /// The driver accepts 8..=84 (2 to 20 dBm).
    pub const RANGE: core::ops::RangeInclusive<i8> = 8..=84;
    /// The default: 15 dBm. Enough for a room or a floor; esp-radio's own default is 5 dBm
    /// (20), and values above about 16 dBm (65) are reported to break authentication on
    /// some boards.
    pub const DEFAULT: Self = Self(60);

    /// Parses a build-time value: an integer number of quarter-dBm in [`TxPower::RANGE`].
    pub fn parse(text: &str) -> Option<Self> {
        let value: i8 = text.trim().parse().ok()?;
        Self::RANGE.contains(&value).then_some(Self(value))
    }

    /// The value for `esp_wifi_set_max_tx_power`.
    pub fn quarter_dbm(self) -> i8 {
        self.0
    }
}

/// Decides, after each wake-up of the driver loop, which timers are due. The loop waits for
/// the first of "a frame arrived", "the core's deadline" and "the retry timer"; a receive that
/// is always ready would win every time, so the deadlines are checked after every frame too.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimerCheck {
    /// The core's next deadline ([`None`] = none).
    pub core_deadline: Option<u64>,
    /// The firmware's own retry timer ([`None`] = off).
    pub retry_at: Option<u64>,
}

/// Which timers are due now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Due {
    /// Call the core's `handle_timeout`.
    pub core: bool,
    /// The retry timer fired.
    pub retry: bool,
}

impl TimerCheck {
    /// The timers due at `now`.
    pub fn due(&self, now: u64) -> Due {
        Due {
            core: self.core_deadline.is_some_and(|d| d <= now),
            retry: self.retry_at.is_some_and(|d| d <= now),
        }
    }
}

/// Liveness of the main loop, for feeding the watchdog: the loop calls [`Heartbeat::beat`]
/// whenever it makes progress (and at least every few seconds while it waits), and the
/// feeder feeds only while the last beat is recent. A loop stuck in an await that never
/// returns thus gets the chip reset by the watchdog.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Heartbeat {
    last_beat_ms: u64,
    stall_ms: u64,
}

impl Heartbeat {
    /// A heartbeat that counts as stalled `stall_ms` after the last beat; `now` counts as
    /// a beat.
    pub const fn new(now: u64, stall_ms: u64) -> Self {
        Self {
            last_beat_ms: now,
            stall_ms,
        }
    }

    /// The main loop made progress at `now`.
    pub fn beat(&mut self, now: u64) {
        self.last_beat_ms = self.last_beat_ms.max(now);
    }

    /// Whether the watchdog may be fed at `now`.
    pub fn alive(&self, now: u64) -> bool {
        now.saturating_sub(self.last_beat_ms) < self.stall_ms
    }
}
