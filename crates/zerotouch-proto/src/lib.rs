//! zerotouch-proto: the zerotouch provisioning protocol as a `no_std`, sans-IO core.
//!
//! This crate is the protocol and nothing else: no clocks, sockets, threads or entropy
//! live here. The driver (firmware, Linux agent, configurator daemon, simulator) feeds in
//! the current time, received frames and an RNG; the state machines hand back frames to
//! send, the next timer deadline and events. The same code runs on an ESP32-C3
//! (`riscv32imc-unknown-none-elf`) and on a Linux host.
//!
//! Layout (each layer in its own module, as in smoltcp):
//! - [`suite`], [`crypto`]: cipher suites behind a small provider trait.
//! - [`keys`], [`cert`], [`uri`]: identities, key hashes, configurator certificates and
//!   DPP bootstrap URIs.
//! - [`wire`]: zero-copy views over frame bytes, with explicit length checks.
//! - [`config`]: the configuration object (networks and application settings).
//! - [`channel`]: the encrypted, reliable message channel over 250-byte frames.
//! - [`enrollee`], [`configurator`]: the two state machines.
//!
//! PROTOCOL.md at the repository root is the specification; this crate implements it.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod cert;
pub mod channel;
pub mod config;
pub mod configurator;
pub mod crypto;
pub mod enrollee;
pub mod error;
pub mod keys;
pub mod status;
pub mod suite;
pub mod uri;
pub mod wire;

pub use cert::ConfiguratorCert;
pub use error::Error;
pub use keys::{KeyHash, PublicKey, SigningIdentity};
pub use status::{AnnounceMode, FailureReason};
pub use suite::SuiteId;

/// Largest protocol frame: the ESP-NOW v1 body limit.
pub const MAX_FRAME: usize = 250;

/// Monotonic time in milliseconds since an arbitrary epoch chosen by the driver.
pub type Instant = u64;

/// A link-layer (MAC) address: the ESP-NOW source or destination.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct Addr(pub [u8; 6]);

impl Addr {
    /// The broadcast address `ff:ff:ff:ff:ff:ff`.
    pub const BROADCAST: Addr = Addr([0xff; 6]);

    /// True for `ff:ff:ff:ff:ff:ff`.
    pub fn is_broadcast(&self) -> bool {
        *self == Self::BROADCAST
    }
}

impl core::fmt::Display for Addr {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let a = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            a[0], a[1], a[2], a[3], a[4], a[5]
        )
    }
}

/// One frame the driver must put on the air.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// Destination: a unicast address or [`Addr::BROADCAST`].
    pub dst: Addr,
    /// Radio channel (1..=13) to send on.
    pub channel: u8,
    /// Frame bytes, at most [`MAX_FRAME`].
    pub frame: heapless::Vec<u8, MAX_FRAME>,
}
