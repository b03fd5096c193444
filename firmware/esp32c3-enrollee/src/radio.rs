//! ESP-NOW as the enrollee's link: 250-byte datagrams to and from MAC addresses on one
//! channel at a time.
//!
//! ESP-NOW only delivers unicast frames to registered peers; the broadcast peer exists from
//! the start. The enrollee talks to one configurator at a time, so this keeps at most one
//! unicast peer registered (bound to "the current channel") and swaps it when the
//! destination changes: the peer table never fills up however many configurators answer.

use esp_radio::esp_now::{
    BROADCAST_ADDRESS, EspNow, EspNowError, EspNowWifiInterface, PeerInfo, ReceivedData,
};
use zerotouch_proto::{Addr, Transmit};

use crate::manufacturing::MARKET;

/// The ESP-NOW link.
pub struct EspNowRadio {
    esp_now: EspNow,
    channel: u8,
    unicast_peer: Option<[u8; 6]>,
}

impl EspNowRadio {
    /// Wraps `esp_now` and tunes it to `channel`.
    pub fn new(esp_now: EspNow, channel: u8) -> Result<Self, EspNowError> {
        let mut radio = Self {
            esp_now,
            channel,
            unicast_peer: None,
        };
        radio.retune()?;
        Ok(radio)
    }

    /// Tunes to `channel`. A channel the build's market does not allow (12 and 13 in the
    /// US and Canada) is refused without touching the radio: the core's hop over it then
    /// stays silent, and nothing is sent there.
    pub fn set_channel(&mut self, channel: u8) -> Result<(), EspNowError> {
        if !MARKET.allows(channel) {
            return Err(EspNowError::Error(
                esp_radio::esp_now::Error::InvalidArgument,
            ));
        }
        if channel != self.channel {
            self.channel = channel;
            self.retune()?;
        }
        Ok(())
    }

    /// Tunes to the current channel again (after a Wi-Fi join moved the radio elsewhere).
    pub fn retune(&mut self) -> Result<(), EspNowError> {
        self.esp_now.set_channel(self.channel)
    }

    /// The next received frame.
    pub async fn receive(&mut self) -> ReceivedData {
        self.esp_now.receive_async().await
    }

    /// Sends `transmit` on its channel. A unicast that got no link-layer ACK is an error
    /// here, but the protocol retransmits by itself, so callers only log it.
    pub async fn send(&mut self, transmit: &Transmit) -> Result<(), EspNowError> {
        self.set_channel(transmit.channel)?;
        let dst = transmit.dst.0;
        if dst != BROADCAST_ADDRESS {
            self.ensure_peer(dst)?;
        }
        self.esp_now.send_async(&dst, &transmit.frame).await
    }

    /// Makes `peer` the one registered unicast peer.
    fn ensure_peer(&mut self, peer: [u8; 6]) -> Result<(), EspNowError> {
        if self.unicast_peer == Some(peer) && self.esp_now.peer_exists(&peer) {
            return Ok(());
        }
        if let Some(old) = self.unicast_peer.take()
            && self.esp_now.peer_exists(&old)
        {
            self.esp_now.remove_peer(&old)?;
        }
        if !self.esp_now.peer_exists(&peer) {
            self.esp_now.add_peer(PeerInfo {
                interface: EspNowWifiInterface::Station,
                peer_address: peer,
                lmk: None,
                // None = whatever channel the radio is on when sending.
                channel: None,
                // The protocol encrypts and authenticates end to end.
                encrypt: false,
            })?;
        }
        self.unicast_peer = Some(peer);
        Ok(())
    }
}

/// The source address of a received frame, as the protocol core names it.
pub fn source(frame: &ReceivedData) -> Addr {
    Addr(frame.info.src_address)
}
