//! The Configurator state machine: answers announcements from allowlisted keys, runs the
//! handshake, delivers configurations and collects join reports, for many enrollees at once.
//!
//! Bounded by construction: an allowlist check (one SHA-256 and one lookup) before any
//! per-announcement state or public-key operation; then the announcement counter (replays
//! and copies stop here), the Announce signature within a verification budget, a per-key
//! rate limit, an airtime budget for everything sent before authentication, a pool of at
//! most `max_sessions` unauthenticated handshakes (oldest evicted) next to at most
//! `max_sessions` authenticated sessions. Uses `alloc` for
//! session storage (the configurator runs on a host or a large MCU).

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, VecDeque};

use heapless::Vec;

use crate::cert::ConfiguratorCert;
use crate::channel::{Channel, ChannelTiming};
use crate::config::{ConfigView, MAX_CONFIG_LEN};
use crate::crypto::{
    AeadKey, EphemeralSecret, MAX_PUBLIC_LEN, NONCE_KIND_DATA, Prk, TAG_LEN, sha256,
};
use crate::enrollee::{MSG_ABORT, MSG_CONFIG, MSG_STATUS};
use crate::keys::{KeyHash, PublicKey, SigningIdentity};
use crate::status::{AnnounceMode, FailureReason};
use crate::suite::SuiteId;
use crate::wire::{
    self, ACK_LEN, CHALLENGE_NONCE_LEN, CHANNEL_HEADER_LEN, FLAG_COMPLETE, FrameType, Header,
    RESPONSE_LEN, SIGNATURE_LEN,
};
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
    /// Concurrent authenticated sessions; announcements beyond it are ignored (the enrollee
    /// retries). Unauthenticated handshakes have a separate pool of the same size, where the
    /// oldest is evicted for a new one.
    pub max_sessions: usize,
    /// Announcements accepted per allowlisted key per `rate_window_ms` (keyed by key hash
    /// after the allowlist check, not by the spoofable source address; the name is kept for
    /// compatibility).
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
    /// Presence Beacon period (0 = no beacons): devices that hear one stay on this channel
    /// and announce at the pace it states (PROTOCOL.md §4.8).
    pub beacon_interval_ms: u64,
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
    /// Announcements of allowlisted keys dropped by the per-key rate limit.
    pub rate_limited: u64,
    /// Announcements ignored because `max_sessions` authenticated sessions were running.
    pub busy: u64,
    /// Fresh announcements (and copies) not answered because the airtime budget for frames
    /// sent before authentication ([`PREAUTH_BYTES_PER_SECOND`]) was spent. It also bounds
    /// the handshakes (one signature each) started per second.
    pub throttled: u64,
    /// Unauthenticated handshakes evicted to make room for a newer one.
    pub evicted: u64,
    /// Announcements whose counter is not above the newest verified for the key: replays
    /// and copies (the device's own on other channels, an attacker's). They cost a
    /// comparison and draw nothing.
    pub stale_announces: u64,
    /// Announcements sent on another channel than ours (heard through adjacent-channel
    /// leakage, or relayed here by someone): their Challenge could not reach the device.
    pub other_channel: u64,
    /// Fresh, verified announcements (answered or not).
    pub fresh_announces: u64,
    /// Announcements whose signature `sig_A` did not verify (forged or corrupted).
    pub bad_announce_signatures: u64,
    /// Announcements not verified because the verification budget
    /// ([`VERIFICATIONS_PER_SECOND`]) was spent.
    pub verification_throttled: u64,

    /// Frames dropped as malformed, unauthenticated or for an unknown session.
    pub dropped: u64,
}

impl Default for ConfiguratorLimits {
    /// PROTOCOL.md §9.3: 128 sessions; 4 announcements per key per second; RTO 200 ms
    /// doubling to 3.2 s; 6 retries; 30 s session timeout.
    fn default() -> Self {
        ConfiguratorLimits {
            max_sessions: 128,
            per_source_burst: 4,
            rate_window_ms: 1_000,
            rto_initial_ms: 200,
            rto_max_ms: 3_200,
            max_retries: 6,
            session_timeout_ms: 30_000,
            // Off by default: in the simulator Beacons speed up a burst of 1,000 devices 6.5x
            // but slow 10,000 down (BENCHMARKS.md §3); opt in with BEACON_INTERVAL_MS.
            beacon_interval_ms: 0,
        }
    }
}

/// The Beacon period to opt in with: 0.6 % of a 1 Mbit/s channel.
pub const BEACON_INTERVAL_MS: u64 = 100;
/// Fresh Announces per second the Beacons' pace aims at: what one configurator can answer
/// and carry through (the airtime budget allows about 100 Challenges per second, and
/// `max_sessions` sessions of about 2 s each ~64 provisionings per second).
pub const TARGET_ANNOUNCES_PER_SECOND: u64 = 60;
/// The announce interval Beacons ask for, adapted between these bounds so that the devices
/// waiting on the channel announce about [`TARGET_ANNOUNCES_PER_SECOND`] in all.
pub const MIN_PACE_MS: u64 = 100;
/// Upper bound of the announce interval Beacons ask for.
pub const MAX_PACE_MS: u64 = 8_000;

/// Entries in the per-key rate-limit table (oldest evicted beyond it).
pub const RATE_TABLE_CAP: usize = 1024;
/// An unauthenticated (Challenged) handshake lives at most this long. A genuine enrollee
/// answers within its dwell (150 ms) plus a round trip, or re-announces; a spoofed
/// handshake never gets a valid Response and must not hold a slot for long.
pub const CHALLENGED_LIFETIME_MS: u64 = 2_000;
/// Entries in the "not allowed" report table (oldest evicted beyond it).
pub const NOT_ALLOWED_TABLE_CAP: usize = 1024;
/// A key not on the allowlist is reported at most once per this period.
pub const NOT_ALLOWED_REPORT_MS: u64 = 60_000;
/// NotAllowed events are not queued while this many events wait for the driver.
pub const MAX_QUEUED_NOT_ALLOWED: usize = 1024;
/// How long a finished session stays to re-acknowledge duplicate join reports.
pub const LINGER_MS: u64 = 10_000;
/// Finished sessions remembered for re-acknowledgement (oldest evicted beyond it). They do
/// not count against [`ConfiguratorLimits::max_sessions`]; each entry holds no secret and
/// about a hundred bytes (PROTOCOL.md §9.2).
pub const FINISHED_TABLE_CAP: usize = 4096;
/// Re-acknowledgements sent for one finished session at most (a replayed join report cannot
/// keep the configurator transmitting).
pub const MAX_REACKS: u8 = 8;
/// Concurrent handshakes (Challenged sessions) per key. Announces are signed and counted, so
/// only the device itself can start a handshake and its newest Announce supersedes the
/// older one (PROTOCOL.md §9.2).
pub const MAX_HANDSHAKES_PER_KEY: usize = 1;
/// A copy of the Announce a handshake answered draws the identical Challenge again at most
/// this often ...
pub const CHALLENGE_RESEND_INTERVAL_MS: u64 = 100;
/// ... and at most this many times per handshake.
pub const MAX_CHALLENGE_RESENDS: u8 = 4;
/// Announce signatures verified per second at most (after the allowlist check): bounds the
/// CPU spent on forged Announces of heard identity keys.
pub const VERIFICATIONS_PER_SECOND: u64 = 1024;
/// Verifications that may run at once after an idle period.
pub const VERIFICATION_BURST: u64 = 256;
/// Bytes per second the configurator sends before the peer is authenticated (Challenges):
/// about 100 Challenges, a fifth of a 1 Mbit/s channel (PROTOCOL.md §9.5).
pub const PREAUTH_BYTES_PER_SECOND: u64 = 24_576;
/// Pre-authentication bytes that may go out at once after an idle period (64 Challenges).
pub const PREAUTH_BYTES_BURST: u64 = 64 * 247;
/// Keys whose newest verified announcement counter is remembered (oldest inserted evicted
/// beyond it). Only verified Announces of allowlisted keys insert, so an attacker cannot
/// evict entries; size it above the number of devices announcing at once.
pub const ANNOUNCE_TABLE_CAP: usize = 65_536;
/// Abort reason: the device was revoked.
pub const ABORT_REVOKED: u8 = 1;
/// Abort reason: the driver declined.
pub const ABORT_DECLINED: u8 = 2;

/// SPKI prefix of an Ed25519 key (RFC 8410), for the key hash.
const SPKI_ED25519: &[u8] = &[
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];
/// SPKI prefix of a compressed P-256 key (as DPP).
#[cfg(feature = "suite-p256")]
const SPKI_P256: &[u8] = &[
    0x30, 0x39, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x22, 0x00,
];

/// Key hash of wire-encoded key bytes without decoding the point: one SHA-256. Equal to
/// [`PublicKey::key_hash`] for valid keys.
pub fn wire_key_hash(suite: SuiteId, key: &[u8]) -> KeyHash {
    let prefix = match suite {
        SuiteId::Ed25519 => SPKI_ED25519,
        #[cfg(feature = "suite-p256")]
        SuiteId::P256 => SPKI_P256,
    };
    KeyHash(sha256(&[prefix, key]))
}

const TX_CAPACITY: usize = 1 + MAX_PUBLIC_LEN + MAX_CONFIG_LEN;
/// A join report on the air: one Data frame carrying `[MSG_STATUS, code]`.
const STATUS_FRAME_LEN: usize = CHANNEL_HEADER_LEN + 2 + TAG_LEN;
type SessionChannel = Channel<8, TX_CAPACITY>;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    Challenged,
    AwaitingConfig,
    Delivering,
    AwaitingStatus,
    StatusReported,
    Aborting,
}

struct Session {
    key: KeyHash,
    peer: Addr,
    suite: SuiteId,
    identity: PublicKey,
    announce: Vec<u8, { wire::MAX_ANNOUNCE_LEN }>,
    challenge: Vec<u8, { 181 + 2 * MAX_PUBLIC_LEN }>,
    response: Vec<u8, RESPONSE_LEN>,
    /// Handshake secrets: dropped (zeroized) once the application keys are derived, so a
    /// later compromise of the running session cannot reveal the handshake.
    prk: Option<Prk>,
    hs_e: Option<AeadKey>,
    channel: Option<Box<SessionChannel>>,
    phase: Phase,
    deadline: Instant,
    /// Challenge resends drawn by copies of the Announce, and the last one's time.
    resends: u8,
    last_resend: Option<Instant>,
    /// When the handshake started (orders the unauthenticated pool; bounds its life).
    created: Instant,
    /// When a duplicate Response was last answered (at most one answer per RTO).
    last_response_ack: Option<Instant>,
    /// The join report's Data frame as received (its retransmissions are byte-identical).
    status_frame: Option<[u8; STATUS_FRAME_LEN]>,
}

/// What remains of a confirmed session: enough to answer a retransmitted join report with
/// the same sealed COMPLETE acknowledgement. No keys.
struct Finished {
    peer: Addr,
    status_frame: [u8; STATUS_FRAME_LEN],
    complete: [u8; ACK_LEN],
    expires: Instant,
    reacks: u8,
}

/// The configurator state machine.
pub struct Configurator<R> {
    rng: R,
    settings: ConfiguratorSettings,
    now: Instant,
    sessions: BTreeMap<u32, Session>,
    /// Live sessions per key: up to [`MAX_HANDSHAKES_PER_KEY`] in the Challenged phase, or
    /// exactly one that is past it.
    by_key: BTreeMap<KeyHash, Vec<u32, MAX_HANDSHAKES_PER_KEY>>,
    finished: BTreeMap<u32, Finished>,
    /// Finished sids, oldest first (all entries live [`LINGER_MS`], so also by expiry).
    finished_order: VecDeque<u32>,
    /// Unauthenticated (Challenged) sessions by start time, oldest first (eviction order).
    challenged: alloc::collections::BTreeSet<(Instant, u32)>,
    /// Per-key rate limit: window start and count; keys in insertion order for O(1) eviction.
    rate: BTreeMap<KeyHash, (Instant, u16)>,
    rate_order: VecDeque<KeyHash>,
    /// Last NotAllowed report per unknown key; keys in insertion order for O(1) eviction.
    not_allowed: BTreeMap<KeyHash, Instant>,
    not_allowed_order: VecDeque<KeyHash>,
    /// Newest verified announcement counter per key; keys in insertion order for eviction.
    newest_counter: BTreeMap<KeyHash, u64>,
    newest_order: VecDeque<KeyHash>,
    /// Global budgets: Announce verifications, pre-authentication airtime (bytes; one
    /// Challenge, so one signature, per handshake).
    verifications: TokenBucket,
    preauth_bytes: TokenBucket,
    /// When the next Beacon is due, the announce interval it states, and the count of
    /// unanswered fresh Announces when the last one went out.
    beacon_due: Instant,
    pace_ms: u64,
    fresh_at_beacon: u64,
    tx: VecDeque<Transmit>,
    events: VecDeque<ConfiguratorEvent>,
    stats: ConfiguratorStats,
}

/// A token bucket over virtual time: `rate` tokens per second, at most `burst` stored.
/// Kept in thousandths of a token so that millisecond refills are exact.
struct TokenBucket {
    milli_tokens: u64,
    at: Instant,
    rate: u64,
    burst: u64,
}

impl TokenBucket {
    fn full(rate: u64, burst: u64) -> Self {
        TokenBucket {
            milli_tokens: burst * 1000,
            at: 0,
            rate,
            burst,
        }
    }

    /// Takes `n` tokens if that many are left (refilling up to `now` first).
    fn take(&mut self, now: Instant, n: u64) -> bool {
        let elapsed = now.saturating_sub(self.at);
        self.at = self.at.max(now);
        self.milli_tokens = self
            .milli_tokens
            .saturating_add(elapsed.saturating_mul(self.rate))
            .min(self.burst * 1000);
        let cost = n.saturating_mul(1000);
        if self.milli_tokens < cost {
            return false;
        }
        self.milli_tokens -= cost;
        true
    }
}

/// Returns the entry of `key` in a bounded table, inserting `fresh` if absent and evicting
/// the first-inserted key when the table is full: O(log n), no scan.
fn bounded_entry<'a, V>(
    map: &'a mut BTreeMap<KeyHash, V>,
    order: &mut VecDeque<KeyHash>,
    cap: usize,
    key: KeyHash,
    fresh: V,
) -> &'a mut V {
    if !map.contains_key(&key) {
        while map.len() >= cap.max(1) {
            let Some(oldest) = order.pop_front() else {
                break;
            };
            map.remove(&oldest);
        }
        order.push_back(key);
    }
    map.entry(key).or_insert(fresh)
}

impl<R: rand_core::CryptoRng> Configurator<R> {
    /// Creates a configurator.
    pub fn new(settings: ConfiguratorSettings, rng: R) -> Self {
        Configurator {
            rng,
            settings,
            now: 0,
            sessions: BTreeMap::new(),
            by_key: BTreeMap::new(),
            finished: BTreeMap::new(),
            finished_order: VecDeque::new(),
            challenged: alloc::collections::BTreeSet::new(),
            rate: BTreeMap::new(),
            rate_order: VecDeque::new(),
            not_allowed: BTreeMap::new(),
            not_allowed_order: VecDeque::new(),
            newest_counter: BTreeMap::new(),
            newest_order: VecDeque::new(),
            verifications: TokenBucket::full(VERIFICATIONS_PER_SECOND, VERIFICATION_BURST),
            preauth_bytes: TokenBucket::full(PREAUTH_BYTES_PER_SECOND, PREAUTH_BYTES_BURST),
            beacon_due: 0,
            pace_ms: MIN_PACE_MS,
            fresh_at_beacon: 0,
            tx: VecDeque::new(),
            events: VecDeque::new(),
            stats: ConfiguratorStats::default(),
        }
    }

    fn channel_timing(&self) -> ChannelTiming {
        let l = self.settings.limits;
        ChannelTiming {
            rto_initial_ms: l.rto_initial_ms,
            rto_max_ms: l.rto_max_ms,
            max_retries: l.max_retries,
            ack_delay_ms: 0,
        }
    }

    fn queue(&mut self, dst: Addr, frame: &[u8], retransmission: bool) {
        let Ok(frame) = Vec::from_slice(frame) else {
            return;
        };
        if retransmission {
            self.stats.retransmissions += 1;
        }
        self.tx.push_back(Transmit {
            dst,
            channel: self.settings.channel,
            frame,
        });
    }

    /// Handles a received frame. Never panics; bad frames are counted and dropped.
    pub fn handle_frame(
        &mut self,
        now: Instant,
        src: Addr,
        frame: &[u8],
        allowlist: &impl Allowlist,
    ) {
        self.now = now;
        let accepted = match Header::parse(frame) {
            Ok(h) => match h.frame_type {
                FrameType::Announce => {
                    self.on_announce(now, src, frame, allowlist);
                    return;
                }
                FrameType::Response => self.on_response(now, src, frame),
                FrameType::Data => self.on_data(now, frame),
                FrameType::Ack => self.on_ack(now, frame),
                FrameType::Challenge | FrameType::Beacon => false,
            },
            Err(_) => false,
        };
        if !accepted {
            self.stats.dropped += 1;
        }
    }

    /// Per-key rate limit, applied only after an allowlist hit (the key is the one thing
    /// an attacker cannot pick freely without also being allowlisted).
    fn rate_limited(&mut self, now: Instant, key: KeyHash) -> bool {
        let limits = self.settings.limits;
        let entry = bounded_entry(
            &mut self.rate,
            &mut self.rate_order,
            RATE_TABLE_CAP,
            key,
            (now, 0),
        );
        if now >= entry.0.saturating_add(limits.rate_window_ms) {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
        entry.1 > limits.per_source_burst
    }

    /// A byte-identical copy of the Announce a waiting handshake answered: the device may
    /// not have heard our Challenge (or someone relayed its Announce here before it arrived
    /// itself). Resend the identical Challenge to the copy's source, at most once per
    /// [`CHALLENGE_RESEND_INTERVAL_MS`] and [`MAX_CHALLENGE_RESENDS`] times, within the
    /// airtime budget (PROTOCOL.md §9.2).
    fn resend_challenge(&mut self, now: Instant, src: Addr, key: KeyHash, frame: &[u8]) {
        let Some(&sid) = self.by_key.get(&key).and_then(|sids| sids.first()) else {
            return;
        };
        let Some(s) = self.sessions.get_mut(&sid) else {
            return;
        };
        let due = s
            .last_resend
            .is_none_or(|t| now >= t.saturating_add(CHALLENGE_RESEND_INTERVAL_MS));
        if s.phase != Phase::Challenged
            || s.announce.as_slice() != frame
            || s.resends >= MAX_CHALLENGE_RESENDS
            || !due
        {
            return;
        }
        if !self.preauth_bytes.take(now, s.challenge.len() as u64) {
            self.stats.throttled += 1;
            return;
        }
        s.resends += 1;
        s.last_resend = Some(now);
        let challenge = s.challenge.clone();
        self.queue(src, &challenge, true);
    }

    /// The newest verified announcement counter of `key`, if remembered.
    fn newest_counter_of(&self, key: &KeyHash) -> Option<u64> {
        self.newest_counter.get(key).copied()
    }

    /// Verifies `sig_A` with the announced identity, within the verification budget.
    /// `None` = dropped (counted).
    fn verify_announce(&mut self, now: Instant, view: &wire::Announce<&[u8]>) -> Option<PublicKey> {
        if !self.verifications.take(now, 1) {
            self.stats.verification_throttled += 1;
            return None;
        }
        let verified = PublicKey::from_wire(view.suite(), view.identity())
            .ok()
            .filter(|identity| {
                let msg = crate::crypto::schedule::a_sig_message(view.signed_part());
                identity.verify(&msg, &view.signature()).is_ok()
            });
        let Some(identity) = verified else {
            self.stats.bad_announce_signatures += 1;
            return None;
        };
        Some(identity)
    }

    /// Authenticated sessions (everything past the handshake), counted against
    /// `max_sessions`.
    fn authenticated_count(&self) -> usize {
        self.sessions.len() - self.challenged.len()
    }

    fn on_announce(&mut self, now: Instant, src: Addr, frame: &[u8], allowlist: &impl Allowlist) {
        let Ok(view) = wire::Announce::new_checked(frame) else {
            self.stats.dropped += 1;
            return;
        };
        let suite = view.suite();
        let Some(id_index) = self
            .settings
            .identities
            .iter()
            .position(|i| i.identity.suite() == suite)
        else {
            self.stats.dropped += 1;
            return;
        };
        // The device is not listening here: a Challenge would be lost (and a relay ahead of
        // the device must not spend its counter). The channel byte is signed.
        if view.channel() != self.settings.channel {
            self.stats.other_channel += 1;
            return;
        }
        // One SHA-256 and one lookup, before any other state or public-key operation.
        let key = wire_key_hash(suite, view.identity());
        if !allowlist.is_allowed(&key) {
            self.stats.not_allowed += 1;
            let report = self
                .not_allowed
                .get(&key)
                .is_none_or(|t| now >= t.saturating_add(NOT_ALLOWED_REPORT_MS));
            if report {
                *bounded_entry(
                    &mut self.not_allowed,
                    &mut self.not_allowed_order,
                    NOT_ALLOWED_TABLE_CAP,
                    key,
                    now,
                ) = now;
                // A driver that does not poll must not let a flood grow the queue.
                if self.events.len() < MAX_QUEUED_NOT_ALLOWED {
                    self.events
                        .push_back(ConfiguratorEvent::NotAllowed { key, src });
                }
            }
            return;
        }
        // A counter not above the newest verified one is a replay or a copy of the live
        // Announce: one comparison, nothing sent, no state changed (PROTOCOL.md §9.2).
        if self
            .newest_counter_of(&key)
            .is_some_and(|newest| view.counter() <= newest)
        {
            self.stats.stale_announces += 1;
            self.resend_challenge(now, src, key, frame);
            return;
        }
        let Some(identity) = self.verify_announce(now, &view) else {
            return;
        };
        // From here on the Announce is the device's own, and fresh.
        self.stats.fresh_announces += 1;
        if self.rate_limited(now, key) {
            self.stats.rate_limited += 1;
            return;
        }
        if let Some(sids) = self.by_key.get(&key) {
            // Past the handshake: one session per key.
            if sids
                .iter()
                .filter_map(|sid| self.sessions.get(sid))
                .any(|s| s.phase != Phase::Challenged)
            {
                self.stats.dropped += 1;
                return;
            }
        }
        if self.authenticated_count() >= self.settings.limits.max_sessions {
            self.stats.busy += 1;
            return;
        }
        let challenge_len = wire::challenge_len(suite) as u64;
        if !self.preauth_bytes.take(now, challenge_len) {
            self.stats.throttled += 1;
            return;
        }
        // Answered: the counter is spent (an Announce left unanswered above keeps it, so the
        // device's next copy of it can still be answered).
        *bounded_entry(
            &mut self.newest_counter,
            &mut self.newest_order,
            ANNOUNCE_TABLE_CAP,
            key,
            0,
        ) = view.counter();
        // The device's newer Announce supersedes its handshake still waiting for a Response
        // (its Challenge was lost, or the device moved on to a new round).
        let waiting: Vec<u32, MAX_HANDSHAKES_PER_KEY> =
            self.by_key.get(&key).cloned().unwrap_or_default();
        for sid in waiting {
            self.end_session(sid, None);
        }
        // The unauthenticated pool is full: the oldest handshake gives way, never an
        // authenticated session.
        while self.challenged.len() >= self.settings.limits.max_sessions.max(1) {
            let Some(&(_, oldest)) = self.challenged.first() else {
                break;
            };
            self.stats.evicted += 1;
            self.end_session(oldest, None);
        }
        if self
            .start_session(now, src, key, identity, id_index, frame)
            .is_none()
        {
            self.stats.dropped += 1;
            return;
        }
        self.events.push_back(ConfiguratorEvent::Announced {
            key,
            src,
            mode: view.mode(),
            last_failure: view.last_failure(),
        });
    }

    fn fresh_sid(&mut self) -> u32 {
        loop {
            let sid = self.rng.next_u32();
            if sid != 0 && !self.sessions.contains_key(&sid) && !self.finished.contains_key(&sid) {
                return sid;
            }
        }
    }

    fn start_session(
        &mut self,
        now: Instant,
        src: Addr,
        key: KeyHash,
        identity: PublicKey,
        id_index: usize,
        announce: &[u8],
    ) -> Option<()> {
        let view = wire::Announce::new_checked(announce).ok()?;
        let suite = view.suite();
        let ephemeral = EphemeralSecret::generate(suite, &mut self.rng);
        let ss = ephemeral.agree(view.ephemeral()).ok()?;
        let sid = self.fresh_sid();
        let mut nonce = [0u8; CHALLENGE_NONCE_LEN];
        self.rng.fill_bytes(&mut nonce);
        let me = self.settings.identities.get(id_index)?;
        let cert = me.cert.to_bytes();
        let repr = wire::ChallengeRepr {
            suite,
            sid,
            nonce,
            ephemeral: ephemeral.public(),
            unix_time: self.settings.unix_time,
        };
        let mut buf = [0u8; 181 + 2 * MAX_PUBLIC_LEN];
        let clear = wire::challenge_clear_len(suite);
        // Write CH_clear first (the signature covers it), then the signature.
        let len = repr.emit_plain(&mut buf, &cert, &[0; SIGNATURE_LEN]).ok()?;
        let sig_c = me.identity.sign(&crate::crypto::schedule::c_sig_message(
            announce,
            &buf[..clear],
            &cert,
        ));
        let len2 = repr.emit_plain(&mut buf, &cert, &sig_c).ok()?;
        debug_assert_eq!(len, len2);
        let keys = crate::crypto::schedule::handshake_keys(suite, &ss, announce, &buf[..clear]);
        let n = keys.c.nonce(NONCE_KIND_DATA, 0);
        let (aad, body) = buf.split_at_mut(clear);
        let tag = keys.c.seal(&n, aad, &mut body[..len - clear - 16]).ok()?;
        buf[len - 16..len].copy_from_slice(&tag);
        let session = Session {
            key,
            peer: src,
            suite,
            identity,
            announce: Vec::from_slice(announce).ok()?,
            challenge: Vec::from_slice(&buf[..len]).ok()?,
            response: Vec::new(),
            prk: Some(keys.prk),
            hs_e: Some(keys.e),
            channel: None,
            phase: Phase::Challenged,
            // Sent once, never retransmitted: the enrollee's next round signs a new Announce.
            deadline: now.saturating_add(CHALLENGED_LIFETIME_MS),
            resends: 0,
            last_resend: None,
            created: now,
            last_response_ack: None,
            status_frame: None,
        };
        let handshakes = self.by_key.entry(key).or_default();
        handshakes.push(sid).ok()?;
        self.challenged.insert((now, sid));
        self.sessions.insert(sid, session);
        self.queue(src, &buf[..len], false);
        Some(())
    }

    fn frame_sid(frame: &[u8]) -> Option<u32> {
        frame
            .get(4..8)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn on_response(&mut self, now: Instant, src: Addr, frame: &[u8]) -> bool {
        let Ok(view) = wire::Response::new_checked(frame) else {
            return false;
        };
        let sid = view.sid();
        let timing = self.channel_timing();
        let timeout = self.settings.limits.session_timeout_ms;
        let authenticated_full = self.authenticated_count() >= self.settings.limits.max_sessions;
        let Some(s) = self.sessions.get_mut(&sid) else {
            return false;
        };
        if view.suite() != s.suite {
            return false;
        }
        if s.phase != Phase::Challenged {
            // A duplicate of the accepted Response: the enrollee missed our progress. An
            // authenticated Ack tells it the handshake is done. Only before anything arrived
            // on the channel (the Ack would otherwise acknowledge the join report before
            // `confirm`), and at most once per RTO (a replay cannot make us transmit more).
            let rto = self.settings.limits.rto_initial_ms;
            let answerable = matches!(
                s.phase,
                Phase::AwaitingConfig | Phase::Delivering | Phase::AwaitingStatus
            ) && s.status_frame.is_none()
                && s.last_response_ack
                    .is_none_or(|t| now >= t.saturating_add(rto))
                && s.response.as_slice() == frame;
            if answerable
                && let Some(ch) = s.channel.as_mut()
                && ch.rcv_next() == 0
                && let Ok(ack) = ch.force_ack(now, 0)
            {
                s.last_response_ack = Some(now);
                let peer = s.peer;
                self.queue(peer, &ack, false);
                return true;
            }
            return false;
        }
        if authenticated_full {
            // No room past the handshake right now; the enrollee retransmits its Response.
            self.stats.busy += 1;
            return false;
        }
        let mut sig = [0u8; SIGNATURE_LEN];
        sig.copy_from_slice(view.ciphertext());
        let (Some(hs_e), Some(prk)) = (s.hs_e.as_ref(), s.prk.as_ref()) else {
            return false;
        };
        let n = hs_e.nonce(NONCE_KIND_DATA, 0);
        if hs_e.open(&n, view.aad(), &mut sig, &view.tag()).is_err() {
            return false; // unauthenticated: must not end the session
        }
        let msg = crate::crypto::schedule::e_sig_message(&s.announce, &s.challenge);
        let key = s.key;
        if s.identity.verify(&msg, &sig).is_err() {
            self.end_session(sid, Some(SessionFailure::BadProof));
            return true;
        }
        let (k_c, k_e) =
            crate::crypto::schedule::app_keys(s.suite, prk, &s.announce, &s.challenge, frame);
        s.prk = None;
        s.hs_e = None;
        let mut channel = Box::new(SessionChannel::new(s.suite, sid, k_c, k_e, timing));
        channel.set_auto_ack(false);
        s.channel = Some(channel);
        s.response = Vec::from_slice(frame).unwrap_or_default();
        // The Response authenticated: the session's frames go where it came from (copies of
        // the Announce may have carried any source address).
        s.peer = src;
        s.phase = Phase::AwaitingConfig;
        s.deadline = now.saturating_add(timeout);
        let created = s.created;
        let src = s.peer;
        self.challenged.remove(&(created, sid));
        // This handshake won: other candidates of the key (replays) end silently.
        let losers: Vec<u32, MAX_HANDSHAKES_PER_KEY> = self
            .by_key
            .get(&key)
            .map(|sids| sids.iter().copied().filter(|&other| other != sid).collect())
            .unwrap_or_default();
        for other in losers {
            self.end_session(other, None);
        }
        self.events.push_back(ConfiguratorEvent::Authenticated {
            session: SessionId(sid),
            key,
            src,
        });
        true
    }

    fn on_data(&mut self, now: Instant, frame: &[u8]) -> bool {
        let Some(sid) = Self::frame_sid(frame) else {
            return false;
        };
        let timeout = self.settings.limits.session_timeout_ms;
        let Some(s) = self.sessions.get_mut(&sid) else {
            return self.reacknowledge(sid, frame);
        };
        let Some(ch) = s.channel.as_mut() else {
            return false;
        };
        let Ok(outcome) = ch.handle_data(now, frame) else {
            return false;
        };
        let key = s.key;
        let delivered = s.phase == Phase::Delivering && ch.tx_idle();
        if delivered {
            s.phase = Phase::AwaitingStatus;
            s.deadline = now.saturating_add(timeout);
            self.events.push_back(ConfiguratorEvent::ConfigDelivered {
                session: SessionId(sid),
                key,
            });
        }
        let Some(s) = self.sessions.get_mut(&sid) else {
            return true;
        };
        let Some(ch) = s.channel.as_mut() else {
            return true;
        };
        if outcome.message_complete && s.phase == Phase::AwaitingStatus {
            let result = match ch.message() {
                Some([MSG_STATUS, 0]) => Ok(()),
                Some([MSG_STATUS, code]) => {
                    Err(FailureReason::from_u8(*code).unwrap_or(FailureReason::Other))
                }
                _ => return true,
            };
            // A join report is one fragment; keep its bytes to recognise retransmissions
            // after the session is gone (a two-byte message always makes this frame size).
            let Ok(status_frame) = frame.try_into() else {
                return true;
            };
            s.status_frame = Some(status_frame);
            s.phase = Phase::StatusReported;
            s.deadline = now.saturating_add(timeout);
            self.events.push_back(ConfiguratorEvent::JoinReported {
                session: SessionId(sid),
                key,
                result,
            });
        }
        true
    }

    fn on_ack(&mut self, now: Instant, frame: &[u8]) -> bool {
        let Some(sid) = Self::frame_sid(frame) else {
            return false;
        };
        let timeout = self.settings.limits.session_timeout_ms;
        let Some(s) = self.sessions.get_mut(&sid) else {
            return false;
        };
        let Some(ch) = s.channel.as_mut() else {
            return false;
        };
        if ch.handle_ack(now, frame).is_err() {
            return false;
        }
        if ch.tx_idle() {
            match s.phase {
                Phase::Delivering => {
                    s.phase = Phase::AwaitingStatus;
                    s.deadline = now.saturating_add(timeout);
                    let key = s.key;
                    self.events.push_back(ConfiguratorEvent::ConfigDelivered {
                        session: SessionId(sid),
                        key,
                    });
                }
                Phase::Aborting => self.end_session(sid, None),
                _ => {}
            }
        }
        true
    }

    /// Removes a session (zeroizing its keys), optionally reporting why it failed.
    fn end_session(&mut self, sid: u32, failure: Option<SessionFailure>) {
        if let Some(s) = self.sessions.remove(&sid) {
            self.challenged.remove(&(s.created, sid));
            self.unlink(&s.key, sid);
            if let Some(reason) = failure {
                self.events.push_back(ConfiguratorEvent::SessionFailed {
                    session: SessionId(sid),
                    key: s.key,
                    reason,
                });
            }
        }
    }

    /// Forgets `sid` as a live session of `key` (the key may start a new one).
    fn unlink(&mut self, key: &KeyHash, sid: u32) {
        if let Some(sids) = self.by_key.get_mut(key) {
            sids.retain(|&other| other != sid);
            if sids.is_empty() {
                self.by_key.remove(key);
            }
        }
    }

    /// Answers a retransmitted join report of a confirmed session with the identical sealed
    /// COMPLETE frame. The enrollee accepts it only if it never received it (its Ack counter
    /// check refuses a second copy), so re-sending is idempotent. Anything else is dropped.
    fn reacknowledge(&mut self, sid: u32, frame: &[u8]) -> bool {
        let Some(f) = self.finished.get_mut(&sid) else {
            return false;
        };
        if f.status_frame.as_slice() != frame || f.reacks >= MAX_REACKS {
            return false;
        }
        f.reacks += 1;
        let (peer, complete) = (f.peer, f.complete);
        self.queue(peer, &complete, true);
        true
    }

    /// Drops finished sessions whose linger time is over.
    fn expire_finished(&mut self, now: Instant) {
        while let Some(sid) = self.finished_order.front().copied() {
            match self.finished.get(&sid) {
                Some(f) if now < f.expires => break,
                _ => {
                    self.finished.remove(&sid);
                    self.finished_order.pop_front();
                }
            }
        }
    }

    /// Sends an Abort message (when a channel exists and is free) and reports the failure.
    fn abort(&mut self, now: Instant, sid: u32, reason: SessionFailure, code: u8) {
        let Some(s) = self.sessions.get_mut(&sid) else {
            return;
        };
        let key = s.key;
        let sent = match s.channel.as_mut() {
            Some(ch) if ch.tx_idle() => ch.send(now, &[MSG_ABORT, code]).is_ok(),
            _ => false,
        };
        if sent {
            // Keep the session only to deliver the Abort; the key may start over at once.
            s.phase = Phase::Aborting;
            s.deadline = now.saturating_add(self.settings.limits.session_timeout_ms);
            self.unlink(&key, sid);
            self.events.push_back(ConfiguratorEvent::SessionFailed {
                session: SessionId(sid),
                key,
                reason,
            });
        } else {
            // Handshake or mid-delivery: stop sending at once; nothing more goes out.
            self.end_session(sid, Some(reason));
        }
    }

    /// Handles the expiry of the deadline returned by [`Configurator::poll_timeout`].
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        self.expire_finished(now);
        self.beacon(now);
        let limits = self.settings.limits;
        let sids: alloc::vec::Vec<u32> = self.sessions.keys().copied().collect();
        for sid in sids {
            let Some(s) = self.sessions.get_mut(&sid) else {
                continue;
            };
            if let Some(ch) = s.channel.as_mut()
                && ch.handle_timeout(now).is_err()
            {
                let failure = (s.phase != Phase::Aborting).then_some(SessionFailure::Timeout);
                self.end_session(sid, failure);
                continue;
            }
            if now < s.deadline {
                continue;
            }
            match s.phase {
                // Its lifetime is over: ends silently (an unauthenticated peer is not
                // accused of anything, PROTOCOL.md §9.2).
                Phase::Challenged => self.end_session(sid, None),
                Phase::Aborting => self.end_session(sid, None),
                Phase::Delivering => {
                    // The channel's own retransmission limit ends delivery; the session
                    // deadline is a backstop.
                    s.deadline = now.saturating_add(limits.session_timeout_ms);
                }
                _ => self.end_session(sid, Some(SessionFailure::Timeout)),
            }
        }
    }

    /// Sends the presence Beacon when due. Its pace follows the fresh Announces heard since
    /// the last one: the waiting devices' rate scales as 1 / pace, so the pace moves halfway
    /// to the one that would have given [`TARGET_ANNOUNCES_PER_SECOND`].
    fn beacon(&mut self, now: Instant) {
        let period = self.settings.limits.beacon_interval_ms;
        if period == 0 || now < self.beacon_due {
            return;
        }
        let elapsed = now
            .saturating_sub(self.beacon_due.saturating_sub(period))
            .max(1);
        self.beacon_due = now.saturating_add(period);
        let fresh = self.stats.fresh_announces - self.fresh_at_beacon;
        self.fresh_at_beacon = self.stats.fresh_announces;
        let target = (TARGET_ANNOUNCES_PER_SECOND * elapsed).max(1);
        let wanted = self.pace_ms.saturating_mul(fresh.saturating_mul(1000)) / target;
        self.pace_ms = ((self.pace_ms + wanted) / 2).clamp(MIN_PACE_MS, MAX_PACE_MS);
        let suites = self
            .settings
            .identities
            .iter()
            .fold(0u8, |m, i| m | wire::suite_bit(i.identity.suite()));
        let Some(first) = self.settings.identities.first() else {
            return;
        };
        let repr = wire::BeaconRepr {
            suite: first.identity.suite(),
            channel: self.settings.channel,
            announce_interval_ms: u16::try_from(self.pace_ms).unwrap_or(u16::MAX),
            suites,
        };
        let mut buf = [0u8; wire::BEACON_LEN];
        if let Ok(n) = repr.emit(&mut buf) {
            self.queue(Addr::BROADCAST, &buf[..n], false);
        }
    }

    /// The next frame to send, if any.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        let t = match self.tx.pop_front() {
            Some(t) => Some(t),
            None => {
                let now = self.now;
                let mut found = None;
                for s in self.sessions.values_mut() {
                    if let Some(ch) = s.channel.as_mut()
                        && let Some((frame, retransmission)) = ch.poll_transmit(now)
                    {
                        found = Some((
                            Transmit {
                                dst: s.peer,
                                channel: self.settings.channel,
                                frame,
                            },
                            retransmission,
                        ));
                        break;
                    }
                }
                let (t, retransmission) = found?;
                if retransmission {
                    self.stats.retransmissions += 1;
                }
                Some(t)
            }
        };
        if let Some(t) = &t {
            self.stats.frames_sent += 1;
            self.stats.bytes_sent += t.frame.len() as u64;
        }
        t
    }

    /// When [`Configurator::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let oldest_finished = self
            .finished_order
            .front()
            .and_then(|sid| self.finished.get(sid))
            .map(|f| f.expires);
        self.sessions
            .values()
            .flat_map(|s| {
                [
                    Some(s.deadline),
                    s.channel.as_ref().and_then(|c| c.poll_timeout()),
                ]
            })
            .flatten()
            .chain(oldest_finished)
            .chain((self.settings.limits.beacon_interval_ms > 0).then_some(self.beacon_due))
            .min()
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<ConfiguratorEvent> {
        self.events.pop_front()
    }

    /// Delivers the encoded configuration object for an authenticated session. The key is
    /// checked against `allowlist` once more first (revocation races): a revoked key gets an
    /// Abort and [`SessionFailure::Revoked`], and the call returns `Ok` (the session ended as
    /// the allowlist demands).
    pub fn provide_config(
        &mut self,
        now: Instant,
        session: SessionId,
        config: &[u8],
        allowlist: &impl Allowlist,
    ) -> Result<(), Error> {
        self.now = now;
        let sid = session.0;
        let s = self.sessions.get_mut(&sid).ok_or(Error::UnknownSession)?;
        if s.phase != Phase::AwaitingConfig {
            return Err(Error::WrongState);
        }
        ConfigView::parse(config).map_err(Error::Config)?;
        if !allowlist.is_allowed(&s.key) {
            self.abort(now, sid, SessionFailure::Revoked, ABORT_REVOKED);
            return Ok(());
        }
        let owner = self
            .settings
            .identities
            .iter()
            .find(|i| i.identity.suite() == s.suite)
            .map(|i| i.owner)
            .ok_or(Error::WrongState)?;
        let mut msg: alloc::vec::Vec<u8> =
            alloc::vec::Vec::with_capacity(1 + MAX_PUBLIC_LEN + config.len());
        msg.push(MSG_CONFIG);
        msg.extend_from_slice(owner.as_wire());
        msg.extend_from_slice(config);
        let ch = s.channel.as_mut().ok_or(Error::WrongState)?;
        let sent = ch.send(now, &msg);
        zeroize::Zeroize::zeroize(msg.as_mut_slice());
        sent.map_err(|_| Error::Config(crate::config::ConfigError::TooLarge))?;
        s.phase = Phase::Delivering;
        s.deadline = now.saturating_add(self.settings.limits.session_timeout_ms);
        Ok(())
    }

    /// Refuses an authenticated session (the enrollee is told, and retries later).
    pub fn decline(&mut self, now: Instant, session: SessionId) -> Result<(), Error> {
        self.now = now;
        let s = self.sessions.get(&session.0).ok_or(Error::UnknownSession)?;
        if s.phase != Phase::AwaitingConfig {
            return Err(Error::WrongState);
        }
        self.abort(now, session.0, SessionFailure::Declined, ABORT_DECLINED);
        Ok(())
    }

    /// Confirms that a [`ConfiguratorEvent::JoinReported`] result is persisted; sends the
    /// final acknowledgement.
    pub fn confirm(&mut self, now: Instant, session: SessionId) -> Result<(), Error> {
        self.now = now;
        let sid = session.0;
        if self.finished.contains_key(&sid) {
            return Ok(()); // idempotent
        }
        let s = self.sessions.get_mut(&sid).ok_or(Error::UnknownSession)?;
        if s.phase != Phase::StatusReported {
            return Err(Error::WrongState);
        }
        // Always set on entering StatusReported.
        let status_frame = s.status_frame.ok_or(Error::WrongState)?;
        let ch = s.channel.as_mut().ok_or(Error::WrongState)?;
        let ack = ch
            .force_ack(now, FLAG_COMPLETE)
            .map_err(|_| Error::WrongState)?;
        let complete: [u8; ACK_LEN] = ack.as_slice().try_into().map_err(|_| Error::WrongState)?;
        let peer = s.peer;
        // The session (keys, buffers) ends here; only the frames for re-acknowledging a
        // retransmitted join report remain, outside the session table.
        self.end_session(sid, None);
        self.expire_finished(now);
        if self.finished.len() >= FINISHED_TABLE_CAP
            && let Some(oldest) = self.finished_order.pop_front()
        {
            self.finished.remove(&oldest);
        }
        self.finished.insert(
            sid,
            Finished {
                peer,
                status_frame,
                complete,
                expires: now.saturating_add(LINGER_MS),
                reacks: 0,
            },
        );
        self.finished_order.push_back(sid);
        self.queue(peer, &complete, false);
        Ok(())
    }

    /// Aborts every session of `key` at once (revocation).
    pub fn revoke(&mut self, now: Instant, key: &KeyHash) {
        self.now = now;
        let sids: alloc::vec::Vec<u32> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.key == *key && s.phase != Phase::Aborting)
            .map(|(sid, _)| *sid)
            .collect();
        for sid in sids {
            self.abort(now, sid, SessionFailure::Revoked, ABORT_REVOKED);
        }
    }

    /// Updates the authenticated Unix time sent to enrollees.
    pub fn set_unix_time(&mut self, unix_time: u32) {
        self.settings.unix_time = unix_time;
    }

    /// Sessions running now (the ones counted against `max_sessions`; finished sessions
    /// kept to re-acknowledge are counted by [`Configurator::finished_count`]).
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// Confirmed sessions remembered to re-acknowledge a retransmitted join report (at most
    /// [`FINISHED_TABLE_CAP`], each for [`LINGER_MS`]).
    pub fn finished_count(&self) -> usize {
        self.finished.len()
    }

    /// The channel this configurator listens and sends on.
    pub fn channel(&self) -> u8 {
        self.settings.channel
    }

    /// Counters.
    pub fn stats(&self) -> ConfiguratorStats {
        self.stats
    }
}
