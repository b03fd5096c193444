//! The radio model: channels, airtime and per-link impairments.
//!
//! Each of the channels 1..=13 is one shared medium. A frame occupies it for its airtime,
//! computed from the PHY rate, a fixed PHY preamble/header time and the 802.11 + ESP-NOW
//! overhead around the body. Transmissions on one channel are serialized (a simple CSMA
//! model: a frame starts when the channel is free), and a frame is heard by the nodes that
//! listen on its channel when it ends. Loss, duplication, reordering and delay are applied
//! per receiver, from a [`LinkModel`] that may be set per (source, destination) pair.

use zerotouch_proto::Addr;

/// Lowest radio channel.
pub const MIN_CHANNEL: u8 = 1;
/// Highest radio channel (2.4 GHz, as ESP-NOW uses in most regions).
pub const MAX_CHANNEL: u8 = 13;

/// Bytes an ESP-NOW v1 frame adds around its body: 24 (802.11 MAC header) + 15 (action
/// category, OUI, random bytes, vendor element header) + 4 (FCS).
pub const ESPNOW_OVERHEAD_BYTES: u32 = 43;

/// Radio-wide parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct RadioConfig {
    /// PHY rate in bits per second (ESP-NOW's default is 1 Mbps DSSS).
    pub rate_bps: u64,
    /// PHY preamble and header time in microseconds (192 us: 802.11b long preamble).
    pub phy_overhead_us: u64,
    /// Bytes on air around the body (see [`ESPNOW_OVERHEAD_BYTES`]).
    pub mac_overhead_bytes: u32,
    /// Extra channel time taken by a unicast frame for the link-layer ACK
    /// (SIFS + 14-byte ACK at 1 Mbps with preamble: about 314 us).
    pub unicast_ack_us: u64,
    /// Idle time between two frames on one channel (DIFS).
    pub interframe_us: u64,
    /// Longest a frame waits for a busy channel before the sender's MAC gives up on it
    /// (the frame is then never on air, as when an ESP-NOW send reports failure). Models a
    /// saturated medium: without it, a backlog could grow without bound.
    pub max_access_delay_us: u64,
    /// Impairments for every link without an override.
    pub link: LinkModel,
    /// Keep a copy of every frame on air ([`crate::Simulator::recorder`]). Costs memory
    /// proportional to the traffic; turn it off for very large fleets.
    pub record_frames: bool,
}

impl Default for RadioConfig {
    fn default() -> Self {
        Self {
            rate_bps: 1_000_000,
            phy_overhead_us: 192,
            mac_overhead_bytes: ESPNOW_OVERHEAD_BYTES,
            unicast_ack_us: 314,
            interframe_us: 50,
            max_access_delay_us: 50_000,
            link: LinkModel::default(),
            record_frames: true,
        }
    }
}

impl RadioConfig {
    /// Time in microseconds a frame with a `body_len`-byte body occupies the channel
    /// (preamble, header, overhead and body; not the unicast ACK).
    pub fn airtime_us(&self, body_len: usize) -> u64 {
        let bits = (body_len as u64 + u64::from(self.mac_overhead_bytes)) * 8;
        // Round up: a partial microsecond still occupies the medium.
        self.phy_overhead_us + (bits * 1_000_000).div_ceil(self.rate_bps.max(1))
    }

    /// Channel time of one transmission: airtime, plus the ACK for unicast, plus the
    /// interframe gap.
    pub fn channel_time_us(&self, body_len: usize, dst: Addr) -> u64 {
        let ack = if dst.is_broadcast() {
            0
        } else {
            self.unicast_ack_us
        };
        self.airtime_us(body_len) + ack + self.interframe_us
    }
}

/// Impairments of one directed link (or of all links, as the default).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LinkModel {
    /// Probability that a frame is not received, 0.0..=1.0.
    pub loss: f64,
    /// Probability that a received frame is received twice.
    pub duplicate: f64,
    /// Probability that a received frame is held back by a random extra delay.
    pub reorder: f64,
    /// Largest extra delay of a reordered (or duplicated) frame, in microseconds.
    pub reorder_max_us: u64,
    /// Fixed delay added to every received frame, in microseconds (driver and queue latency).
    pub delay_us: u64,
}

impl Default for LinkModel {
    fn default() -> Self {
        Self {
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            reorder_max_us: 20_000,
            delay_us: 0,
        }
    }
}

impl LinkModel {
    /// A perfect link.
    pub fn perfect() -> Self {
        Self::default()
    }

    /// A lossy link with duplication and reordering at the same probability as `loss / 2`
    /// (the combination the scenario tests use).
    pub fn lossy(loss: f64) -> Self {
        Self {
            loss,
            duplicate: loss / 2.0,
            reorder: loss / 2.0,
            ..Self::default()
        }
    }

    /// An unusable link (every frame lost): models nodes out of range of each other.
    pub fn cut() -> Self {
        Self {
            loss: 1.0,
            ..Self::default()
        }
    }
}

/// True if `channel` is a valid channel number.
pub fn is_valid_channel(channel: u8) -> bool {
    (MIN_CHANNEL..=MAX_CHANNEL).contains(&channel)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_frame_airtime_matches_espnow_figure() {
        // 250-byte body at 1 Mbps: (250 + 43) * 8 us + 192 us preamble = 2536 us.
        let radio = RadioConfig::default();
        assert_eq!(radio.airtime_us(250), 2536);
        assert_eq!(radio.airtime_us(0), 192 + 43 * 8);
    }

    #[test]
    fn faster_rate_shortens_airtime() {
        let radio = RadioConfig {
            rate_bps: 11_000_000,
            ..RadioConfig::default()
        };
        assert!(radio.airtime_us(250) < 500);
    }

    #[test]
    fn unicast_costs_an_ack() {
        let radio = RadioConfig::default();
        let uni = radio.channel_time_us(100, Addr([2, 0, 0, 0, 0, 1]));
        let bcast = radio.channel_time_us(100, Addr::BROADCAST);
        assert_eq!(uni - bcast, radio.unicast_ack_us);
    }
}
