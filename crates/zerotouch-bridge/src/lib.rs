//! zerotouch-bridge: the protocol between a host and an ESP32-C3 radio bridge.
//!
//! A radio bridge is an ESP32-C3 on USB that relays ESP-NOW frames for a host daemon, like
//! a Zigbee coordinator stick. This crate is shared by the bridge firmware and the host:
//!
//! - [`message`]: the messages each way, with a fixed, versioned byte layout;
//! - [`frame`]: COBS framing with a CRC-32C, so a reader resynchronises after any garbage
//!   (boot ROM text and logs share the port);
//! - [`core`]: [`BridgeCore`], the bridge's own logic as a sans-IO state machine: host bytes
//!   in, radio commands out; radio events in, host frames out; bounded queues with drops
//!   counted by cause; the ESP-NOW peer table.
//!
//! `no_std`, no allocator, no `unsafe`. The byte layout is specified in `BRIDGE.md`.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "std")]
extern crate std;

pub mod core;
pub mod frame;
pub mod message;

pub use crate::core::{BridgeConfig, BridgeCore, RadioCommand, RadioEvent};
pub use crate::frame::{FrameDecoder, FrameError, encode_frame};
pub use crate::message::{BridgeMsg, ErrorCode, HostMsg, MessageError, Stats, TxOutcome};

/// The bridge protocol version this crate speaks: byte 0 of every message.
pub const PROTOCOL_VERSION: u8 = 1;

/// Largest ESP-NOW (v1) payload a bridge carries.
pub const MAX_PAYLOAD: usize = 250;

/// A MAC address.
pub type Mac = [u8; 6];

/// The ESP-NOW broadcast address.
pub const BROADCAST: Mac = [0xff; 6];
