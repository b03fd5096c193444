//! The Configurator state machine: answers announcements from allowlisted keys, runs the
//! handshake, delivers configurations and collects join reports, for many enrollees at once.
//!
//! Bounded by construction: at most `max_sessions` sessions, a per-source rate limit, and an
//! allowlist check (one SHA-256 and one lookup) before any public-key operation. Uses `alloc`
//! for session storage (the configurator runs on a host or a large MCU).

use crate::cert::ConfiguratorCert;
use crate::keys::{KeyHash, SigningIdentity};
use crate::status::{AnnounceMode, FailureReason};
use crate::{Addr, Error, Instant, Transmit};

/// Answers "may this key be provisioned?". Must be cheap: it runs for every announcement,
/// before any public-key operation.
pub trait Allowlist {
    /// True if `key` is allowlisted (and not revoked or expired).
    fn is_allowed(&self, key: &KeyHash) -> bool;
}

impl Allowlist for alloc::collections::BTreeSet<KeyHash> {
    fn is_allowed(&self, key: &KeyHash) -> bool {
        self.contains(key)
    }
}

impl<A: Allowlist + ?Sized> Allowlist for &A {
    fn is_allowed(&self, key: &KeyHash) -> bool {
        (**self).is_allowed(key)
    }
}

/// Timers and limits of the configurator. [`Default`] gives the values in PROTOCOL.md.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConfiguratorLimits {
    /// Concurrent sessions; announcements beyond it are ignored (the enrollee retries).
    pub max_sessions: usize,
    /// Announcements accepted per source address per `rate_window_ms`.
    pub per_source_burst: u16,
    /// Rate-limit window.
    pub rate_window_ms: u64,
    /// First retransmission timeout; doubles on each retry.
    pub rto_initial_ms: u64,
    /// Retransmission timeout cap.
    pub rto_max_ms: u64,
    /// Retransmissions of one frame before the session is abandoned.
    pub max_retries: u8,
    /// How long a session may wait for the driver (config, confirmation) or the join report.
    pub session_timeout_ms: u64,
}

/// A configurator identity for one suite, with its owner certificate.
pub struct ConfiguratorIdentity {
    /// The configurator's signing key.
    pub identity: SigningIdentity,
    /// The owner's certificate for it.
    pub cert: ConfiguratorCert,
    /// The owner public key that signed `cert` (sent in the Config message so that a
    /// trust-on-first-use enrollee can verify the certificate and pin the owner).
    pub owner: crate::keys::PublicKey,
}

/// Everything a configurator needs to start.
pub struct ConfiguratorSettings {
    /// One identity per supported suite (an announcement of a suite without one is ignored).
    pub identities: heapless::Vec<ConfiguratorIdentity, 2>,
    /// The channel this configurator listens and sends on.
    pub channel: u8,
    /// Unix time now (from the host clock), sent authenticated to enrollees.
    pub unix_time: u32,
    /// Limits and timers.
    pub limits: ConfiguratorLimits,
}

/// Identifies one provisioning session at this configurator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub u32);

/// What the configurator tells its driver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfiguratorEvent {
    /// An allowlisted key announced (a session is starting or already running).
    Announced {
        /// Its key hash.
        key: KeyHash,
        /// Source address.
        src: Addr,
        /// Announcement mode.
        mode: AnnounceMode,
        /// Failure flagged in the announcement, if any.
        last_failure: Option<FailureReason>,
    },
    /// A key not on the allowlist announced (rate-limited per key; see PROTOCOL.md).
    NotAllowed {
        /// Its key hash.
        key: KeyHash,
        /// Source address.
        src: Addr,
    },
    /// The enrollee proved possession of its key. The driver must answer with
    /// [`Configurator::provide_config`] or [`Configurator::decline`].
    Authenticated {
        /// Session.
        session: SessionId,
        /// Enrollee key hash.
        key: KeyHash,
        /// Source address.
        src: Addr,
    },
    /// The enrollee acknowledged the whole configuration.
    ConfigDelivered {
        /// Session.
        session: SessionId,
        /// Enrollee key hash.
        key: KeyHash,
    },
    /// The enrollee reported its join result. The driver persists it, then calls
    /// [`Configurator::confirm`], which releases the final acknowledgement.
    JoinReported {
        /// Session.
        session: SessionId,
        /// Enrollee key hash.
        key: KeyHash,
        /// Joined, or failed with a reason.
        result: Result<(), FailureReason>,
    },
    /// The session ended without a join report.
    SessionFailed {
        /// Session.
        session: SessionId,
        /// Enrollee key hash.
        key: KeyHash,
        /// Why.
        reason: SessionFailure,
    },
}

/// Why a configurator session ended early.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionFailure {
    /// The enrollee stopped answering.
    Timeout,
    /// The enrollee's proof (signature) did not verify.
    BadProof,
    /// The key was revoked during the session.
    Revoked,
    /// The driver declined (e.g. no profile for the device).
    Declined,
}

/// Counters for benchmarks and diagnostics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConfiguratorStats {
    /// Frames handed to the driver.
    pub frames_sent: u64,
    /// Their payload bytes.
    pub bytes_sent: u64,
    /// Of those, retransmissions.
    pub retransmissions: u64,
    /// Announcements from keys not on the allowlist.
    pub not_allowed: u64,
    /// Frames dropped by the per-source rate limit.
    pub rate_limited: u64,
    /// Announcements ignored because `max_sessions` were running.
    pub busy: u64,
    /// Frames dropped as malformed, unauthenticated or for an unknown session.
    pub dropped: u64,
}

/// The configurator state machine.
pub struct Configurator<R> {
    _rng: R,
    _settings: ConfiguratorSettings,
}

impl<R: rand_core::CryptoRng> Configurator<R> {
    /// Creates a configurator.
    pub fn new(settings: ConfiguratorSettings, rng: R) -> Self {
        Self { _rng: rng, _settings: settings }
    }

    /// Handles a received frame. Never panics; bad frames are counted and dropped.
    pub fn handle_frame(&mut self, now: Instant, src: Addr, frame: &[u8], allowlist: &impl Allowlist) {
        todo!("{now} {src} {frame:?} {}", allowlist.is_allowed(&KeyHash([0; 32])))
    }

    /// Handles the expiry of the deadline returned by [`Configurator::poll_timeout`].
    pub fn handle_timeout(&mut self, now: Instant) {
        todo!("{now}")
    }

    /// The next frame to send, if any.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        todo!()
    }

    /// When [`Configurator::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        todo!()
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<ConfiguratorEvent> {
        todo!()
    }

    /// Delivers the encoded configuration object for an authenticated session. The key is
    /// checked against `allowlist` once more first (revocation races).
    pub fn provide_config(
        &mut self,
        now: Instant,
        session: SessionId,
        config: &[u8],
        allowlist: &impl Allowlist,
    ) -> Result<(), Error> {
        todo!("{now} {session:?} {config:?} {}", allowlist.is_allowed(&KeyHash([0; 32])))
    }

    /// Refuses an authenticated session (the enrollee is told, and retries later).
    pub fn decline(&mut self, now: Instant, session: SessionId) -> Result<(), Error> {
        todo!("{now} {session:?}")
    }

    /// Confirms that a [`ConfiguratorEvent::JoinReported`] result is persisted; sends the
    /// final acknowledgement.
    pub fn confirm(&mut self, now: Instant, session: SessionId) -> Result<(), Error> {
        todo!("{now} {session:?}")
    }

    /// Aborts every session of `key` at once (revocation).
    pub fn revoke(&mut self, now: Instant, key: &KeyHash) {
        todo!("{now} {key:?}")
    }

    /// Updates the authenticated Unix time sent to enrollees.
    pub fn set_unix_time(&mut self, unix_time: u32) {
        let _ = unix_time;
        todo!()
    }

    /// Sessions running now.
    pub fn session_count(&self) -> usize {
        todo!()
    }

    /// Counters.
    pub fn stats(&self) -> ConfiguratorStats {
        todo!()
    }
}
