//! The Enrollee (IoT device) state machine. No allocator: every buffer is fixed-size.
//!
//! Announcing (hopping channels, backing off with jitter) -> Handshake (verify the
//! configurator's certificate and transcript signature, answer with our own) -> Receiving the
//! configuration over the reliable channel -> Joining (the driver tries the network and calls
//! [`Enrollee::report_join`]) -> Reporting -> Provisioned (the driver commits). A failed join
//! discards the configuration and announces again with the reason flagged.

use crate::config::ConfigView;
use crate::keys::{PublicKey, SigningIdentity};
use crate::status::{AnnounceMode, FailureReason};
use crate::{Addr, Error, Instant, Transmit};

/// Most pinned owner keys an enrollee holds.
pub const MAX_PINNED_OWNERS: usize = 4;

/// Timers of the enrollee, in milliseconds. [`Default`] gives the values in PROTOCOL.md.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EnrolleeTiming {
    /// How long to listen on one channel after announcing there, before hopping.
    pub dwell_ms: u64,
    /// Pause between two full rounds over the channel list: first value ...
    pub round_pause_initial_ms: u64,
    /// ... doubled after every unanswered round up to this cap (with +-25 % jitter).
    pub round_pause_max_ms: u64,
    /// First retransmission timeout during a session; doubles on each retry.
    pub rto_initial_ms: u64,
    /// Retransmission timeout cap.
    pub rto_max_ms: u64,
    /// Retransmissions of one frame before the session is abandoned.
    pub max_retries: u8,
}

/// Everything an enrollee needs to start; the driver persists it between boots.
pub struct EnrolleeSettings {
    /// The device identity key (generated once, on first boot).
    pub identity: SigningIdentity,
    /// Owner keys to require. Empty = trust on first use (pin the first owner that provisions).
    pub pinned_owners: heapless::Vec<PublicKey, MAX_PINNED_OWNERS>,
    /// [`AnnounceMode::New`] for a fresh device, [`AnnounceMode::Reconfigure`] for a
    /// provisioned one that can no longer join.
    pub mode: AnnounceMode,
    /// The reason the previous attempt failed, if any (flagged in announcements).
    pub last_failure: Option<FailureReason>,
    /// The channel that worked last time: tried first.
    pub last_channel: Option<u8>,
    /// Best known Unix time (RTC, or the highest authenticated time seen so far; 0 = unknown).
    /// Certificates that expired before it are rejected.
    pub known_unix_time: u32,
    /// Timers.
    pub timing: EnrolleeTiming,
}

/// Where the enrollee is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnrolleeState {
    /// Broadcasting announcements, hopping channels.
    Announcing,
    /// Answering a configurator's challenge.
    Handshake,
    /// Receiving the configuration object.
    Receiving,
    /// Configuration received; waiting for the driver's [`Enrollee::report_join`].
    Joining,
    /// Reporting the join result; waiting for the configurator's confirmation.
    Reporting,
    /// Done: the driver has committed (or must commit) the configuration.
    Provisioned,
}

/// What the enrollee tells its driver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EnrolleeEvent {
    /// Tune the radio to this channel (also readable via [`Enrollee::channel`]).
    ChannelChanged(u8),
    /// A configurator proved its identity (and owner certificate, when pinned).
    Authenticated {
        /// The configurator identity key.
        configurator: PublicKey,
        /// The owner key that signed its certificate.
        owner: PublicKey,
    },
    /// A configurator was rejected: not our owner, bad certificate, expired, bad signature.
    ConfiguratorRejected(RejectReason),
    /// The configuration is complete; read it with [`Enrollee::config`], try to join, then
    /// call [`Enrollee::report_join`].
    ConfigReceived,
    /// The configurator confirmed the join report: commit now.
    Provisioned(Provisioned),
    /// The attempt ended without provisioning; announcing again.
    AttemptFailed(AttemptFailure),
}

/// Why the enrollee refused a configurator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RejectReason {
    /// Its certificate is not signed by a pinned owner.
    UnknownOwner,
    /// The certificate expired (by the best known time).
    CertificateExpired,
    /// The certificate or the transcript signature did not verify.
    BadSignature,
    /// Wrong suite or malformed contents inside an authenticated frame.
    Malformed,
}

/// Why an attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttemptFailure {
    /// The join failed (reported to the configurator).
    Join(FailureReason),
    /// The configurator stopped answering (retries exhausted).
    Timeout,
    /// The configurator aborted the session (e.g. the device was revoked).
    Aborted,
}

/// What the driver commits once provisioned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Provisioned {
    /// The owner key to pin from now on (trust on first use pins it here).
    pub owner: PublicKey,
    /// The configurator that provisioned us.
    pub configurator: PublicKey,
    /// The channel the session ran on (try it first next time).
    pub channel: u8,
    /// The configurator's authenticated Unix time: the new `known_unix_time`.
    pub unix_time: u32,
}

/// Counters for benchmarks and diagnostics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EnrolleeStats {
    /// Frames handed to the driver.
    pub frames_sent: u32,
    /// Their payload bytes.
    pub bytes_sent: u32,
    /// Of those, retransmissions.
    pub retransmissions: u32,
    /// Frames received and dropped (malformed, failed authentication, wrong session, ...).
    pub frames_dropped: u32,
}

/// The enrollee state machine. `R` is the RNG the driver hands in (hardware TRNG on the
/// device, a seeded ChaCha in simulations).
pub struct Enrollee<R> {
    _rng: R,
    _settings: EnrolleeSettings,
}

impl<R: rand_core::CryptoRng> Enrollee<R> {
    /// Creates an enrollee that starts announcing at `now`.
    pub fn new(settings: EnrolleeSettings, rng: R, now: Instant) -> Self {
        let _ = now;
        Self { _rng: rng, _settings: settings }
    }

    /// Handles a received frame. Never panics; bad frames are counted and dropped.
    pub fn handle_frame(&mut self, now: Instant, src: Addr, frame: &[u8]) {
        todo!("{now} {src} {frame:?}")
    }

    /// Handles the expiry of the deadline returned by [`Enrollee::poll_timeout`].
    pub fn handle_timeout(&mut self, now: Instant) {
        todo!("{now}")
    }

    /// The next frame to send, if any.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        todo!()
    }

    /// When [`Enrollee::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        todo!()
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<EnrolleeEvent> {
        todo!()
    }

    /// The channel the radio must listen on now.
    pub fn channel(&self) -> u8 {
        todo!()
    }

    /// The received configuration (from [`EnrolleeEvent::ConfigReceived`] until the next
    /// attempt starts).
    pub fn config(&self) -> Option<ConfigView<'_>> {
        todo!()
    }

    /// The driver's join result. `Err(reason)` discards the configuration; announcing
    /// resumes after the report is delivered.
    pub fn report_join(&mut self, now: Instant, result: Result<(), FailureReason>) -> Result<(), Error> {
        todo!("{now} {result:?}")
    }

    /// Current state.
    pub fn state(&self) -> EnrolleeState {
        todo!()
    }

    /// Counters.
    pub fn stats(&self) -> EnrolleeStats {
        todo!()
    }
}
