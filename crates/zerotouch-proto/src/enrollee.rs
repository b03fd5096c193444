//! The Enrollee (IoT device) state machine. No allocator: every buffer is fixed-size.
//!
//! Announcing (hopping channels, backing off with jitter) -> Handshake (verify the
//! configurator's certificate and transcript signature, answer with our own) -> Receiving the
//! configuration over the reliable channel -> Joining (the driver tries the network and calls
//! [`Enrollee::report_join`]) -> Reporting -> Provisioned (the driver commits). A failed join
//! discards the configuration and announces again with the reason flagged.
//!
//! RAM: an `Enrollee` is about 14 KiB on a 64-bit host (the 8226-byte reassembly buffer, the
//! 8-frame retransmission window and the transmit queue); keep it in a static or on the heap. The session lives inside it and is
//! re-initialised in place for every attempt, so accepting a Challenge never builds a second,
//! temporary copy on the stack: the handshake's peak stack use is that of the signature and
//! ECDH code plus a few hundred bytes of frame buffers.

use heapless::{Deque, Vec};

use crate::cert::ConfiguratorCert;
use crate::channel::{Channel, ChannelError, ChannelTiming};
use crate::config::{ConfigView, MAX_CONFIG_LEN};
use crate::crypto::{AeadKey, EphemeralSecret, MAX_PUBLIC_LEN, NONCE_KIND_DATA, TAG_LEN};
use crate::error::CertError;
use crate::keys::{PublicKey, SigningIdentity};
use crate::status::{AnnounceMode, FailureReason};
use crate::wire::{self, FLAG_COMPLETE, FrameType, Header, RESPONSE_LEN, SIGNATURE_LEN};
use crate::{Addr, Error, Instant, MAX_FRAME, Transmit};

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
    /// Which configurators to trust: pinned owner keys, or trust on first use. In
    /// [`AnnounceMode::Reconfigure`] a device has pinned its owner, so [`Trust::FirstUse`]
    /// there is a configuration error and every configurator is rejected
    /// ([`RejectReason::UnknownOwner`]) instead of silently trusting the first one.
    pub trust: Trust,
    /// [`AnnounceMode::New`] for a fresh device, [`AnnounceMode::Reconfigure`] for a
    /// provisioned one that can no longer join.
    pub mode: AnnounceMode,
    /// The reason the previous attempt failed, if any (flagged in announcements).
    pub last_failure: Option<FailureReason>,
    /// The channel that worked last time: tried first.
    pub last_channel: Option<u8>,
    /// Best known Unix time (RTC, or the highest authenticated time seen so far; 0 = unknown).
    /// Certificates that expired before it are rejected. A provisioning advances it to the
    /// configurator's time, which is bounded by that configurator's certificate `not_after`
    /// (PROTOCOL.md §6: a configurator with a wrong clock can push it that far, no further).
    pub known_unix_time: u32,
    /// Timers.
    pub timing: EnrolleeTiming,
    /// This boot's number: the driver persists a value greater than at every earlier boot
    /// (one flash write per boot, none per announcement). It is the high half of the
    /// announcement counter (PROTOCOL.md §4.1); configurators drop Announces whose counter
    /// is not above the newest they verified for the key, so a repeated boot counter makes
    /// the device's announcements look like replays until its round counter catches up.
    pub boot_counter: u32,
}

/// Response retransmissions before a handshake that gets no answer is abandoned: the
/// configurator's session is gone (evicted, restarted), so a new attempt is cheaper than
/// waiting out the whole RTO schedule (PROTOCOL.md §9.1).
pub const HANDSHAKE_RESPONSE_RETRIES: u8 = 2;

/// How an enrollee decides which configurators to trust (PROTOCOL.md §5). Explicit, so that
/// a driver cannot fall into trust on first use by handing over keys that cannot match.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Trust {
    /// Only configurators certified by one of these owners.
    Pinned(PinnedOwners),
    /// Trust on first use: the first configurator that provisions the device pins its owner.
    FirstUse,
}

/// One to [`MAX_PINNED_OWNERS`] owner keys, all of the identity's suite: built only by
/// [`Trust::pinned`], which checks that.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PinnedOwners {
    suite: crate::SuiteId,
    keys: heapless::Vec<PublicKey, MAX_PINNED_OWNERS>,
}

impl PinnedOwners {
    /// The pinned keys.
    pub fn keys(&self) -> &[PublicKey] {
        &self.keys
    }

    /// Their suite (the identity's).
    pub fn suite(&self) -> crate::SuiteId {
        self.suite
    }
}

/// Why owner keys cannot be pinned for an identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TrustError {
    /// No key given: that is [`Trust::FirstUse`], which must be chosen explicitly.
    NoOwnerKey,
    /// The key at this index is of another suite than the identity: it could never verify
    /// a certificate the device accepts.
    SuiteMismatch(usize),
    /// More than [`MAX_PINNED_OWNERS`] keys.
    TooMany,
}

impl core::fmt::Display for TrustError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NoOwnerKey => {
                f.write_str("no owner key to pin (trust on first use must be chosen explicitly)")
            }
            Self::SuiteMismatch(i) => write!(
                f,
                "owner key {} is of another cipher suite than the device identity: it can never match",
                i + 1
            ),
            Self::TooMany => write!(f, "more than {MAX_PINNED_OWNERS} owner keys"),
        }
    }
}

impl Trust {
    /// Pins `keys` for an identity of `suite`: at least one, all of that suite, duplicates
    /// removed.
    pub fn pinned(
        suite: crate::SuiteId,
        keys: impl IntoIterator<Item = PublicKey>,
    ) -> Result<Trust, TrustError> {
        let mut pinned = heapless::Vec::new();
        for (i, key) in keys.into_iter().enumerate() {
            if key.suite() != suite {
                return Err(TrustError::SuiteMismatch(i));
            }
            if !pinned.contains(&key) {
                pinned.push(key).map_err(|_| TrustError::TooMany)?;
            }
        }
        if pinned.is_empty() {
            return Err(TrustError::NoOwnerKey);
        }
        Ok(Trust::Pinned(PinnedOwners {
            suite,
            keys: pinned,
        }))
    }

    /// The pinned owner keys (none in trust on first use).
    pub fn owners(&self) -> &[PublicKey] {
        match self {
            Trust::Pinned(p) => p.keys(),
            Trust::FirstUse => &[],
        }
    }

    /// A short description for logs: "pinned (2 owner keys)" or "trust on first use".
    pub fn describe(&self) -> TrustDescription<'_> {
        TrustDescription(self)
    }
}

/// [`Trust::describe`]'s display form.
pub struct TrustDescription<'a>(&'a Trust);

impl core::fmt::Display for TrustDescription<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            Trust::Pinned(p) if p.keys.len() == 1 => f.write_str("pinned (1 owner key)"),
            Trust::Pinned(p) => write!(f, "pinned ({} owner keys)", p.keys.len()),
            Trust::FirstUse => f.write_str("trust on first use"),
        }
    }
}

/// Longest stay on a beacon's channel, per round of hopping: what a forged Beacon can cost a
/// device at most per round (PROTOCOL.md §9.1).
pub const MAX_CAMP_MS: u64 = 16_000;
/// Bounds on the announce interval a Beacon may ask for.
pub const MIN_CAMP_INTERVAL_MS: u64 = 50;
/// Upper bound of the announce interval a Beacon may ask for.
pub const MAX_CAMP_INTERVAL_MS: u64 = 8_000;

/// A stay on the channel of a configurator's Beacon: announce there, paced by it, instead
/// of hopping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Camp {
    started: Instant,
    until: Instant,
    interval_ms: u64,
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
    /// Reported once per reason per announcement round and only while the event queue has
    /// room (forged Challenges must not bury other events); every rejection is counted in
    /// [`EnrolleeStats::configurators_rejected`].
    ConfiguratorRejected(RejectReason),
    /// The configuration is complete; read it with [`Enrollee::config`], try to join, then
    /// call [`Enrollee::report_join`]. Released by [`Enrollee::poll_transmit`] once the
    /// Config's Ack has been handed out: send that frame before starting the join.
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
    /// Configurators rejected (each counted, reported as events only in part).
    pub configurators_rejected: u32,
}

impl Default for EnrolleeTiming {
    /// PROTOCOL.md §9.3: dwell 150 ms; round pause 1 s doubling to 30 s; RTO 250 ms
    /// doubling to 4 s; 6 retries.
    fn default() -> Self {
        EnrolleeTiming {
            dwell_ms: 150,
            round_pause_initial_ms: 1_000,
            round_pause_max_ms: 30_000,
            rto_initial_ms: 250,
            rto_max_ms: 4_000,
            max_retries: 6,
        }
    }
}

impl EnrolleeTiming {
    /// How long a session may stay silent before the enrollee gives up: the time the peer
    /// needs to exhaust its own retransmissions at the same timer settings.
    pub fn idle_limit_ms(&self) -> u64 {
        let mut rto = self.rto_initial_ms.max(1);
        let mut total: u64 = 0;
        for _ in 0..=self.max_retries {
            total = total.saturating_add(rto);
            rto = rto.saturating_mul(2).min(self.rto_max_ms.max(1));
        }
        total
    }
}

/// Reassembly capacity: message type, owner key and the largest configuration object.
pub const RX_CAPACITY: usize = 1 + MAX_PUBLIC_LEN + MAX_CONFIG_LEN;
/// Delayed-acknowledgement time: long enough for a join report to carry the ack.
pub const ACK_DELAY_MS: u64 = 40;
/// Message types on the channel (§4.6).
pub(crate) const MSG_CONFIG: u8 = 1;
pub(crate) const MSG_STATUS: u8 = 2;
pub(crate) const MSG_ABORT: u8 = 3;

const MAX_ANNOUNCE: usize = wire::MAX_ANNOUNCE_LEN;
const MAX_CHALLENGE: usize = 181 + 2 * MAX_PUBLIC_LEN;
const CHANNELS: usize = 13;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    /// Response sent; waiting for the first authenticated channel frame.
    Handshake,
    Receiving,
    Joining,
    /// Status sent (`None` = joined); waiting for its acknowledgement.
    Reporting(Option<FailureReason>),
    Done,
}

/// The one session an enrollee runs. It lives inside the [`Enrollee`] for its whole life
/// and is re-initialised in place for each attempt ([`Session::active`] says whether it is
/// in use): building a fresh ~10 KiB value and moving it in would put it on the stack first.
struct Session {
    active: bool,
    peer: Addr,
    sid: u32,
    channel_no: u8,
    challenge: Vec<u8, MAX_CHALLENGE>,
    response: Vec<u8, RESPONSE_LEN>,
    cert: ConfiguratorCert,
    owner: Option<PublicKey>,
    unix_time: u32,
    channel: Channel<RX_CAPACITY, 2>,
    phase: Phase,
    config_ok: bool,
    complete_seen: bool,
    /// The Config is complete but its acknowledgement has not been handed to the driver
    /// yet: [`EnrolleeEvent::ConfigReceived`] waits for it (see [`Enrollee::poll_transmit`]).
    config_ack_pending: bool,
    response_rto: u64,
    response_deadline: Option<Instant>,
    response_retries: u8,
    idle_deadline: Instant,
}

impl Session {
    /// An unused session (placeholders only: nothing is read before [`Session::active`]).
    fn inactive(identity: PublicKey, timing: ChannelTiming) -> Self {
        let suite = identity.suite();
        Session {
            active: false,
            peer: Addr::BROADCAST,
            sid: 0,
            channel_no: 0,
            challenge: Vec::new(),
            response: Vec::new(),
            cert: ConfiguratorCert {
                owner_id: [0; 4],
                not_after: 0,
                subject: identity,
                signature: [0; 64],
            },
            owner: None,
            unix_time: 0,
            channel: Channel::new(
                suite,
                0,
                AeadKey::placeholder(suite),
                AeadKey::placeholder(suite),
                timing,
            ),
            phase: Phase::Handshake,
            config_ok: false,
            complete_seen: false,
            config_ack_pending: false,
            response_rto: 0,
            response_deadline: None,
            response_retries: 0,
            idle_deadline: 0,
        }
    }

    fn get(&self) -> Option<&Session> {
        self.active.then_some(self)
    }

    fn get_mut(&mut self) -> Option<&mut Session> {
        self.active.then_some(self)
    }

    /// Ends the session: wipes the channel's keys and buffers and the handshake frames.
    fn deactivate(&mut self) {
        self.active = false;
        self.config_ok = false;
        self.channel.wipe();
        self.challenge.clear();
        self.response.clear();
    }
}

/// The enrollee state machine. `R` is the RNG the driver hands in (hardware TRNG on the
/// device, a seeded ChaCha in simulations).
pub struct Enrollee<R> {
    rng: R,
    settings: EnrolleeSettings,
    now: Instant,
    state: EnrolleeState,
    /// This attempt's ephemeral secret, taken (and zeroized) as soon as a Challenge is
    /// answered: duplicate Challenges are answered from the cached Response, and the next
    /// attempt generates a fresh one (forward secrecy, PROTOCOL.md §9.5).
    ephemeral: Option<EphemeralSecret>,
    announce: Vec<u8, MAX_ANNOUNCE>,
    /// Announcement rounds started this boot: the low half of the announcement counter.
    round: u32,
    /// This round's announcement counter.
    counter: u64,
    order: Vec<u8, CHANNELS>,
    hop_index: usize,
    radio_channel: u8,
    round_pause_ms: u64,
    hop_deadline: Option<Instant>,
    /// Camping on a beacon's channel (at most once per round of hopping).
    camp: Option<Camp>,
    camped_this_round: bool,
    session: Session,
    tx: Deque<Transmit, 4>,
    events: Deque<EnrolleeEvent, 8>,
    /// Rejection reasons already reported this round (bit = `RejectReason as u8`).
    rejections_reported: u8,
    stats: EnrolleeStats,
}

fn channel_order(last: Option<u8>) -> Vec<u8, CHANNELS> {
    let mut order: Vec<u8, CHANNELS> = Vec::new();
    let preferred = last.filter(|c| (1..=13).contains(c));
    for ch in preferred.into_iter().chain([1, 6, 11]).chain(1..=13) {
        if !order.contains(&ch) {
            let _ = order.push(ch);
        }
    }
    order
}

fn channel_timing(timing: &EnrolleeTiming) -> ChannelTiming {
    ChannelTiming {
        rto_initial_ms: timing.rto_initial_ms,
        rto_max_ms: timing.rto_max_ms,
        max_retries: timing.max_retries,
        ack_delay_ms: ACK_DELAY_MS,
    }
}

fn reject_reason(e: CertError) -> RejectReason {
    match e {
        CertError::Expired => RejectReason::CertificateExpired,
        CertError::BadSignature => RejectReason::BadSignature,
        CertError::OwnerMismatch => RejectReason::UnknownOwner,
        _ => RejectReason::Malformed,
    }
}

impl<R: rand_core::CryptoRng> Enrollee<R> {
    /// Creates an enrollee that starts announcing at `now`.
    pub fn new(settings: EnrolleeSettings, mut rng: R, now: Instant) -> Self {
        let suite = settings.identity.suite();
        let ephemeral = EphemeralSecret::generate(suite, &mut rng);
        let session = Session::inactive(
            settings.identity.public_key(),
            channel_timing(&settings.timing),
        );
        let mut e = Enrollee {
            rng,
            now,
            state: EnrolleeState::Announcing,
            ephemeral: Some(ephemeral),
            announce: Vec::new(),
            round: 0,
            counter: 0,
            order: channel_order(settings.last_channel),
            hop_index: 0,
            radio_channel: 0,
            round_pause_ms: settings.timing.round_pause_initial_ms,
            hop_deadline: None,
            camp: None,
            camped_this_round: false,
            session,
            tx: Deque::new(),
            events: Deque::new(),
            rejections_reported: 0,
            stats: EnrolleeStats::default(),
            settings,
        };
        e.enter_channel(now, 0);
        e
    }

    /// Starts a round: its counter is strictly above every earlier one.
    fn next_round(&mut self) {
        self.round = self.round.saturating_add(1);
        self.counter = (u64::from(self.settings.boot_counter) << 32) | u64::from(self.round);
    }

    /// Builds and signs this round's Announce for `channel` (one signature per channel
    /// visited, PROTOCOL.md §4.1: the channel is signed so that a relay elsewhere is refused).
    fn build_announce(&mut self, channel: u8) {
        let suite = self.settings.identity.suite();
        let identity = self.settings.identity.public_key();
        let mut buf = [0u8; MAX_ANNOUNCE];
        let mode = self.settings.mode;
        let last_failure = match mode {
            AnnounceMode::New => None,
            AnnounceMode::RetryAfterFailure => {
                Some(self.settings.last_failure.unwrap_or(FailureReason::Other))
            }
            AnnounceMode::Reconfigure => self.settings.last_failure,
        };
        let counter = self.counter;
        let Some(ephemeral) = self.ephemeral.as_ref() else {
            return;
        };
        let repr = wire::AnnounceRepr {
            suite,
            mode,
            last_failure,
            identity: identity.as_wire(),
            ephemeral: ephemeral.public(),
            counter,
            channel,
        };
        let signer = &self.settings.identity;
        let signed = repr.emit(&mut buf, |part| {
            signer.sign(&crate::crypto::schedule::a_sig_message(part))
        });
        self.announce.clear();
        if let Ok(n) = signed {
            let _ = self.announce.extend_from_slice(&buf[..n]);
        }
    }

    fn push_event(&mut self, event: EnrolleeEvent) {
        // Bounded queue: the oldest event is dropped if the driver does not poll.
        if self.events.is_full() {
            self.events.pop_front();
        }
        let _ = self.events.push_back(event);
    }

    /// Counts a rejected configurator and reports it, coalesced: once per reason per round,
    /// never displacing a queued event.
    fn reject_configurator(&mut self, reason: RejectReason) {
        self.stats.configurators_rejected = self.stats.configurators_rejected.saturating_add(1);
        let bit = 1u8 << (reason as u8);
        if self.rejections_reported & bit == 0 && !self.events.is_full() {
            self.rejections_reported |= bit;
            let _ = self
                .events
                .push_back(EnrolleeEvent::ConfiguratorRejected(reason));
        }
    }

    fn queue(&mut self, dst: Addr, frame: &[u8], retransmission: bool) {
        let Ok(frame) = Vec::from_slice(frame) else {
            return;
        };
        if self.tx.is_full() {
            self.tx.pop_front();
        }
        if retransmission {
            self.stats.retransmissions += 1;
        }
        let _ = self.tx.push_back(Transmit {
            dst,
            channel: self.radio_channel,
            frame,
        });
    }

    fn enter_channel(&mut self, now: Instant, index: usize) {
        if index == 0 {
            // A new round: a new counter (configurators answer each counter once), and
            // rejections may be reported again.
            self.next_round();
            self.rejections_reported = 0;
            self.camped_this_round = false;
        }
        self.hop_index = index;
        let ch = self.order.get(index).copied().unwrap_or(1);
        if ch != self.radio_channel {
            self.radio_channel = ch;
            self.push_event(EnrolleeEvent::ChannelChanged(ch));
        }
        self.announce_on(ch);
        self.hop_deadline = Some(now.saturating_add(self.settings.timing.dwell_ms));
    }

    /// Signs this round's Announce for `channel` and queues it (broadcast).
    fn announce_on(&mut self, channel: u8) {
        self.build_announce(channel);
        let announce = self.announce.clone();
        self.queue(Addr::BROADCAST, &announce, false);
    }

    /// Uniform in [0, 2 ms]: the mean is `ms`, and devices that heard the same Beacon at the
    /// same instant spread their Announces over the whole interval instead of colliding.
    fn spread(&mut self, ms: u64) -> u64 {
        u64::from(self.rng.next_u32()) % (2 * ms + 1)
    }

    fn jittered(&mut self, ms: u64) -> u64 {
        // Uniform in [0.75 ms, 1.25 ms].
        let spread = ms / 2;
        ms - ms / 4 + u64::from(self.rng.next_u32()) % (spread + 1)
    }

    fn hop(&mut self, now: Instant) {
        let next = self.hop_index + 1;
        if next < self.order.len() {
            self.enter_channel(now, next);
        } else if next == self.order.len() && self.camped_this_round {
            // A configurator was heard this round: it paces the announcements, so the next
            // round starts at once and the backoff starts over.
            self.round_pause_ms = self.settings.timing.round_pause_initial_ms;
            self.enter_channel(now, 0);
        } else if next == self.order.len() {
            // Round over, unanswered: pause (listening on the last channel), then restart.
            self.hop_index = next;
            let pause = self.jittered(self.round_pause_ms);
            self.round_pause_ms = self
                .round_pause_ms
                .saturating_mul(2)
                .min(self.settings.timing.round_pause_max_ms);
            self.hop_deadline = Some(now.saturating_add(pause));
        } else {
            self.enter_channel(now, 0);
        }
    }

    /// Starts a new attempt: fresh ephemeral key, announcing from the first channel.
    fn restart(&mut self, now: Instant) {
        if let Some(s) = self.session.get_mut() {
            self.settings.last_channel = Some(s.channel_no);
            s.deactivate();
        }
        self.ephemeral = Some(EphemeralSecret::generate(
            self.settings.identity.suite(),
            &mut self.rng,
        ));
        self.order = channel_order(self.settings.last_channel);
        self.camp = None;
        self.round_pause_ms = self.settings.timing.round_pause_initial_ms;
        self.state = EnrolleeState::Announcing;
        self.enter_channel(now, 0);
    }

    fn fail_attempt(&mut self, now: Instant, failure: AttemptFailure) {
        if let AttemptFailure::Join(reason) = failure {
            if self.settings.mode != AnnounceMode::Reconfigure {
                self.settings.mode = AnnounceMode::RetryAfterFailure;
            }
            self.settings.last_failure = Some(reason);
        }
        self.push_event(EnrolleeEvent::AttemptFailed(failure));
        self.restart(now);
    }

    /// Handles a received frame. Never panics; bad frames are counted and dropped.
    pub fn handle_frame(&mut self, now: Instant, src: Addr, frame: &[u8]) {
        self.now = now;
        let accepted = match Header::parse(frame) {
            // Broadcasts every device hears: other devices' Announces, any configurator's
            // Beacon (of whatever header suite: its mask says what it answers).
            Ok(h) if h.frame_type == FrameType::Announce => true,
            Ok(h) if h.frame_type == FrameType::Beacon => self.on_beacon(now, frame),
            Ok(h) if h.suite == self.settings.identity.suite() => match h.frame_type {
                FrameType::Challenge => self.on_challenge(now, src, frame),
                FrameType::Data => self.on_data(now, frame),
                FrameType::Ack => self.on_ack(now, frame),
                FrameType::Announce | FrameType::Response | FrameType::Beacon => false,
            },
            _ => false,
        };
        if !accepted {
            self.stats.frames_dropped += 1;
        }
    }

    /// A configurator listens on this channel: stay and announce at its pace, instead of
    /// hopping away after the dwell. Unauthenticated, so it changes timing only: at most one
    /// camp of at most [`MAX_CAMP_MS`] per round (PROTOCOL.md §9.1).
    fn on_beacon(&mut self, now: Instant, frame: &[u8]) -> bool {
        let Ok(view) = wire::Beacon::new_checked(frame) else {
            return false;
        };
        let interval_ms = u64::from(view.announce_interval_ms())
            .clamp(MIN_CAMP_INTERVAL_MS, MAX_CAMP_INTERVAL_MS);
        if let Some(camp) = self.camp.as_mut()
            && view.channel() == self.radio_channel
            && view.answers(self.settings.identity.suite())
        {
            // Camping here already: follow the configurator's current pace, staying two
            // intervals past the latest Beacon, within MAX_CAMP_MS of the camp's start.
            camp.interval_ms = interval_ms;
            camp.until = camp
                .until
                .max(now.saturating_add(interval_ms.saturating_mul(2)))
                .min(camp.started.saturating_add(MAX_CAMP_MS));
            return true;
        }
        let camping_allowed = self.state == EnrolleeState::Announcing
            && self.camp.is_none()
            && !self.camped_this_round
            && view.channel() == self.radio_channel
            && view.answers(self.settings.identity.suite());
        if camping_allowed {
            let stay = interval_ms.saturating_mul(2).min(MAX_CAMP_MS);
            self.camped_this_round = true;
            self.camp = Some(Camp {
                started: now,
                until: now.saturating_add(stay),
                interval_ms,
            });
            let next = now.saturating_add(self.spread(interval_ms));
            self.hop_deadline = Some(next);
        }
        true
    }

    /// While camping: announce again (a new round counter: configurators answer each counter
    /// once), or leave when the camp is over.
    fn camp_timeout(&mut self, now: Instant, camp: Camp) {
        if now >= camp.until {
            self.camp = None;
            self.hop(now);
            return;
        }
        self.next_round();
        self.announce_on(self.radio_channel);
        let next = now.saturating_add(self.spread(camp.interval_ms));
        self.hop_deadline = Some(next.min(camp.until));
    }

    fn on_challenge(&mut self, now: Instant, src: Addr, frame: &[u8]) -> bool {
        if let Some(s) = self.session.get() {
            // The configurator did not get our Response: answer its duplicate identically.
            if s.phase == Phase::Handshake && s.challenge.as_slice() == frame {
                let (peer, response) = (s.peer, s.response.clone());
                self.queue(peer, &response, true);
                return true;
            }
            return false; // in a session: other challenges are ignored
        }
        if self.state != EnrolleeState::Announcing {
            return false;
        }
        match self.answer_challenge(now, src, frame) {
            Ok(()) => true,
            Err(Some(reason)) => {
                self.reject_configurator(reason);
                false
            }
            Err(None) => false,
        }
    }

    /// Verifies a Challenge and answers it. `Err(Some)` = a configurator we refuse,
    /// `Err(None)` = garbage.
    fn answer_challenge(
        &mut self,
        now: Instant,
        src: Addr,
        frame: &[u8],
    ) -> Result<(), Option<RejectReason>> {
        let view = wire::Challenge::new_checked(frame).map_err(|_| None)?;
        let suite = view.suite();
        let ss = self
            .ephemeral
            .as_ref()
            .ok_or(None)?
            .agree(view.ephemeral())
            .map_err(|_| None)?;
        let keys =
            crate::crypto::schedule::handshake_keys(suite, &ss, &self.announce, view.clear());
        let mut plain = [0u8; MAX_CHALLENGE];
        let ct = view.ciphertext();
        plain[..ct.len()].copy_from_slice(ct);
        let nonce = keys.c.nonce(NONCE_KIND_DATA, 0);
        keys.c
            .open(&nonce, view.clear(), &mut plain[..ct.len()], &view.tag())
            .map_err(|_| None)?;
        let cert_len = wire::cert_len(suite);
        let cert_bytes = &plain[..cert_len];
        let cert = ConfiguratorCert::from_bytes(suite, cert_bytes)
            .map_err(|_| Some(RejectReason::Malformed))?;
        let mut sig_c = [0u8; SIGNATURE_LEN];
        sig_c.copy_from_slice(&plain[cert_len..cert_len + SIGNATURE_LEN]);
        let unix_time = self.settings.known_unix_time.max(view.unix_time());
        let mut owner = None;
        if self.settings.trust == Trust::FirstUse && self.settings.mode == AnnounceMode::Reconfigure
        {
            // Never trust on first use a second time (see `EnrolleeSettings::trust`).
            return Err(Some(RejectReason::UnknownOwner));
        }
        if let Trust::Pinned(pinned_owners) = &self.settings.trust {
            let mut verdict = Err(RejectReason::UnknownOwner);
            // Keys of another suite cannot exist here (`Trust::pinned`); filtered anyway so
            // that a mismatch fails closed.
            for pinned in pinned_owners.keys().iter().filter(|k| k.suite() == suite) {
                if ConfiguratorCert::owner_id_of(pinned) != cert.owner_id {
                    continue;
                }
                match cert.verify(pinned, unix_time) {
                    Ok(()) => {
                        verdict = Ok(*pinned);
                        break;
                    }
                    Err(e) => verdict = Err(reject_reason(e)),
                }
            }
            owner = Some(verdict.map_err(Some)?);
        }
        let msg = crate::crypto::schedule::c_sig_message(&self.announce, view.clear(), cert_bytes);
        cert.subject
            .verify(&msg, &sig_c)
            .map_err(|_| Some(RejectReason::BadSignature))?;

        // Accepted: sign the transcript and answer.
        let sid = view.sid();
        let sig_e = self
            .settings
            .identity
            .sign(&crate::crypto::schedule::e_sig_message(
                &self.announce,
                frame,
            ));
        let mut resp = [0u8; RESPONSE_LEN];
        wire::emit_response_plain(&mut resp, suite, sid, &sig_e).map_err(|_| None)?;
        let nonce = keys.e.nonce(NONCE_KIND_DATA, 0);
        let (aad, body) = resp.split_at_mut(8);
        let tag = keys
            .e
            .seal(&nonce, aad, &mut body[..SIGNATURE_LEN])
            .map_err(|_| None)?;
        resp[8 + SIGNATURE_LEN..].copy_from_slice(&tag);
        debug_assert_eq!(8 + SIGNATURE_LEN + TAG_LEN, RESPONSE_LEN);
        let (k_c, k_e) =
            crate::crypto::schedule::app_keys(suite, &keys.prk, &self.announce, frame, &resp);
        let timing = self.settings.timing;
        // Fill the session in place (see `Session`).
        let s = &mut self.session;
        s.challenge.clear();
        s.challenge.extend_from_slice(frame).map_err(|_| None)?;
        s.response.clear();
        s.response.extend_from_slice(&resp).map_err(|_| None)?;
        s.channel
            .reset(suite, sid, k_e, k_c, channel_timing(&timing));
        s.peer = src;
        s.sid = sid;
        s.channel_no = self.radio_channel;
        s.cert = cert.clone();
        s.owner = owner;
        s.unix_time = unix_time;
        s.phase = Phase::Handshake;
        s.config_ok = false;
        s.complete_seen = false;
        s.config_ack_pending = false;
        s.response_rto = timing.rto_initial_ms;
        s.response_deadline = Some(now.saturating_add(timing.rto_initial_ms));
        s.response_retries = 0;
        s.idle_deadline = now.saturating_add(timing.idle_limit_ms());
        s.active = true;
        self.state = EnrolleeState::Handshake;
        self.ephemeral = None;
        self.hop_deadline = None;
        self.camp = None;
        self.queue(src, &resp, false);
        if let Some(owner) = owner {
            self.push_event(EnrolleeEvent::Authenticated {
                configurator: cert.subject,
                owner,
            });
        }
        Ok(())
    }

    fn frame_sid(frame: &[u8]) -> Option<u32> {
        frame
            .get(4..8)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn on_data(&mut self, now: Instant, frame: &[u8]) -> bool {
        let idle = self.settings.timing.idle_limit_ms();
        let Some(s) = self.session.get_mut() else {
            return false;
        };
        if Self::frame_sid(frame) != Some(s.sid) || s.phase == Phase::Done {
            return false;
        }
        let acked_before = s.channel.acked_seq();
        let outcome = match s.channel.handle_data(now, frame) {
            Ok(o) => o,
            Err(ChannelError::TooLarge) => {
                self.reject_config(now);
                return true;
            }
            Err(_) => return false,
        };
        // Only progress keeps the session alive: a replayed old fragment is acknowledged
        // again but must not hold the enrollee in this session forever.
        if !outcome.duplicate || s.channel.acked_seq() != acked_before {
            s.idle_deadline = now.saturating_add(idle);
        }
        if s.phase == Phase::Handshake {
            s.phase = Phase::Receiving;
            s.response_deadline = None;
            self.state = EnrolleeState::Receiving;
        }
        if outcome.message_complete {
            self.on_message(now);
        }
        self.check_reported(now);
        true
    }

    fn on_ack(&mut self, now: Instant, frame: &[u8]) -> bool {
        let idle = self.settings.timing.idle_limit_ms();
        let Some(s) = self.session.get_mut() else {
            return false;
        };
        if Self::frame_sid(frame) != Some(s.sid) || s.phase == Phase::Done {
            return false;
        }
        let Ok(flags) = s.channel.handle_ack(now, frame) else {
            return false;
        };
        // An accepted Ack always carries a new counter (a replay is refused above): progress.
        s.idle_deadline = now.saturating_add(idle);
        if s.phase == Phase::Handshake {
            s.phase = Phase::Receiving;
            s.response_deadline = None;
            self.state = EnrolleeState::Receiving;
        }
        if flags & FLAG_COMPLETE != 0
            && matches!(s.phase, Phase::Reporting(_))
            && s.channel.tx_idle()
        {
            s.complete_seen = true;
        }
        self.check_reported(now);
        true
    }

    fn on_message(&mut self, now: Instant) {
        let Some(s) = self.session.get_mut() else {
            return;
        };
        // After a validated Config the channel holds it: what follows arrives on the side.
        let msg = if s.channel.is_holding() {
            s.channel.side_message()
        } else {
            s.channel.message()
        };
        let Some(msg) = msg else {
            return;
        };
        match msg.first().copied() {
            Some(MSG_ABORT) => self.fail_attempt(now, AttemptFailure::Aborted),
            Some(MSG_CONFIG) if matches!(s.phase, Phase::Receiving) => {
                let suite = s.cert.subject.suite();
                let p = suite.public_key_len();
                let verdict = (|| {
                    let owner_bytes = msg.get(1..1 + p).ok_or(RejectReason::Malformed)?;
                    let owner = PublicKey::from_wire(suite, owner_bytes)
                        .map_err(|_| RejectReason::Malformed)?;
                    match s.owner {
                        // Pinned: the owner that verified the certificate must be the one named.
                        Some(pinned) if pinned != owner => return Err(RejectReason::UnknownOwner),
                        Some(_) => {}
                        None => s.cert.verify(&owner, s.unix_time).map_err(reject_reason)?,
                    }
                    ConfigView::parse(&msg[1 + p..]).map_err(|_| RejectReason::Malformed)?;
                    Ok(owner)
                })();
                match verdict {
                    Ok(owner) => {
                        let tofu = s.owner.is_none();
                        s.owner = Some(owner);
                        s.config_ok = true;
                        // `config()` returns this message until the attempt ends; after it
                        // only an Abort is accepted.
                        s.channel.hold_message();
                        s.phase = Phase::Joining;
                        // The join may take the radio off this channel for seconds: the
                        // Ack must be on the air first (PROTOCOL.md §4.5).
                        s.config_ack_pending = true;
                        let configurator = s.cert.subject;
                        self.state = EnrolleeState::Joining;
                        if tofu {
                            self.push_event(EnrolleeEvent::Authenticated {
                                configurator,
                                owner,
                            });
                        }
                    }
                    Err(reason) => {
                        if reason != RejectReason::Malformed {
                            self.reject_configurator(reason);
                        }
                        self.reject_config(now);
                    }
                }
            }
            _ => {}
        }
    }

    /// Refuses the configuration: report status 4 and, once acknowledged, announce again.
    fn reject_config(&mut self, now: Instant) {
        let Some(s) = self.session.get_mut() else {
            return;
        };
        if matches!(s.phase, Phase::Reporting(_) | Phase::Done) {
            return;
        }
        s.config_ok = false;
        s.response_deadline = None;
        let reason = FailureReason::ConfigRejected;
        if s.channel.send(now, &[MSG_STATUS, reason as u8]).is_err() {
            self.fail_attempt(now, AttemptFailure::Join(reason));
            return;
        }
        s.phase = Phase::Reporting(Some(reason));
        self.state = EnrolleeState::Reporting;
    }

    fn check_reported(&mut self, now: Instant) {
        let Some(s) = self.session.get_mut() else {
            return;
        };
        let Phase::Reporting(result) = s.phase else {
            return;
        };
        if !s.channel.tx_idle() {
            return;
        }
        match result {
            Some(reason) => self.fail_attempt(now, AttemptFailure::Join(reason)),
            None if s.complete_seen => {
                s.phase = Phase::Done;
                // Nothing more is sent or accepted in this session: erase its keys.
                s.channel.wipe();
                let (Some(owner), configurator, channel, unix_time) =
                    (s.owner, s.cert.subject, s.channel_no, s.unix_time)
                else {
                    return;
                };
                self.state = EnrolleeState::Provisioned;
                self.settings.last_channel = Some(channel);
                self.settings.known_unix_time = unix_time;
                self.push_event(EnrolleeEvent::Provisioned(Provisioned {
                    owner,
                    configurator,
                    channel,
                    unix_time,
                }));
            }
            None => {}
        }
    }

    /// Handles the expiry of the deadline returned by [`Enrollee::poll_timeout`].
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        if self.state == EnrolleeState::Announcing {
            if self.hop_deadline.is_some_and(|d| now >= d) {
                match self.camp {
                    Some(camp) => self.camp_timeout(now, camp),
                    None => self.hop(now),
                }
            }
            return;
        }
        let max_retries = self.settings.timing.max_retries;
        let rto_max = self.settings.timing.rto_max_ms;
        let Some(s) = self.session.get_mut() else {
            return;
        };
        if s.phase == Phase::Done {
            return;
        }
        if s.phase != Phase::Joining && now >= s.idle_deadline {
            self.fail_attempt(now, AttemptFailure::Timeout);
            return;
        }
        if let Some(d) = s.response_deadline
            && now >= d
        {
            if s.response_retries >= max_retries.min(HANDSHAKE_RESPONSE_RETRIES) {
                self.fail_attempt(now, AttemptFailure::Timeout);
                return;
            }
            s.response_retries += 1;
            s.response_rto = s.response_rto.saturating_mul(2).min(rto_max);
            s.response_deadline = Some(now.saturating_add(s.response_rto));
            let (peer, response) = (s.peer, s.response.clone());
            self.queue(peer, &response, true);
            return;
        }
        if s.channel.handle_timeout(now).is_err() {
            self.fail_attempt(now, AttemptFailure::Timeout);
        }
    }

    /// The next frame to send, if any.
    ///
    /// [`EnrolleeEvent::ConfigReceived`] is released only here, once the Ack of the whole
    /// Config has been handed out: a driver that polls transmits until `None` and then starts
    /// the join can never leave the channel with the configuration unacknowledged.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        let t = match self.tx.pop_front() {
            Some(t) => Some(t),
            None => {
                let now = self.now;
                let channel = self.radio_channel;
                let s = self.session.get_mut()?;
                if s.phase == Phase::Done {
                    return None;
                }
                let polled = s.channel.poll_transmit(now);
                let peer = s.peer;
                // Released even if no Ack could be built: the join must not wait forever.
                if core::mem::take(&mut s.config_ack_pending) {
                    self.push_event(EnrolleeEvent::ConfigReceived);
                }
                let (frame, retransmission) = polled?;
                if retransmission {
                    self.stats.retransmissions += 1;
                }
                Some(Transmit {
                    dst: peer,
                    channel,
                    frame,
                })
            }
        };
        if let Some(t) = &t {
            self.stats.frames_sent += 1;
            self.stats.bytes_sent += t.frame.len() as u32;
            debug_assert!(t.frame.len() <= MAX_FRAME);
        }
        t
    }

    /// When [`Enrollee::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.state == EnrolleeState::Announcing {
            return self.hop_deadline;
        }
        let s = self.session.get()?;
        if s.phase == Phase::Done {
            return None;
        }
        let mut next = s.channel.poll_timeout();
        for d in [
            s.response_deadline,
            (s.phase != Phase::Joining).then_some(s.idle_deadline),
        ]
        .into_iter()
        .flatten()
        {
            next = Some(next.map_or(d, |n| n.min(d)));
        }
        next
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<EnrolleeEvent> {
        self.events.pop_front()
    }

    /// The channel the radio must listen on now.
    pub fn channel(&self) -> u8 {
        self.radio_channel
    }

    /// The validated configuration, from [`EnrolleeEvent::ConfigReceived`] until the attempt
    /// ends: read it on that event. Once [`EnrolleeEvent::Provisioned`] is reported the
    /// session's keys and buffers are wiped (forward secrecy) and this returns `None`.
    pub fn config(&self) -> Option<ConfigView<'_>> {
        let s = self.session.get()?;
        if !s.config_ok {
            return None;
        }
        let p = s.cert.subject.suite().public_key_len();
        ConfigView::parse(s.channel.message()?.get(1 + p..)?).ok()
    }

    /// The driver's join result. `Err(reason)` discards the configuration; announcing
    /// resumes after the report is delivered.
    pub fn report_join(
        &mut self,
        now: Instant,
        result: Result<(), FailureReason>,
    ) -> Result<(), Error> {
        self.now = now;
        let idle = self.settings.timing.idle_limit_ms();
        let s = self.session.get_mut().ok_or(Error::WrongState)?;
        if s.phase != Phase::Joining {
            return Err(Error::WrongState);
        }
        let code = match result {
            Ok(()) => 0,
            Err(reason) => reason as u8,
        };
        s.channel
            .send(now, &[MSG_STATUS, code])
            .map_err(|_| Error::WrongState)?;
        if result.is_err() {
            s.config_ok = false;
        }
        s.phase = Phase::Reporting(result.err());
        s.idle_deadline = now.saturating_add(idle);
        self.state = EnrolleeState::Reporting;
        Ok(())
    }

    /// Current state.
    pub fn state(&self) -> EnrolleeState {
        self.state
    }

    /// Counters.
    pub fn stats(&self) -> EnrolleeStats {
        self.stats
    }
}
