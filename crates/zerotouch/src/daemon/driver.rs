//! The configurator driver shared by the daemon and the demo: the protocol core, the
//! allowlist snapshot it consults, and the registry work its events cause.
//!
//! The driver itself stays sans-IO, like the core it wraps: frames, timers and registry
//! results go in; frames, deadlines and [`RegistryJob`]s come out. The daemon runs the jobs
//! on an async worker, the demo runs them inline inside the simulator; both feed the
//! results back with [`ConfiguratorDriver::handle_outcome`]. [`execute`] is the one place
//! that turns a job into registry calls.
//!
//! The daemon runs jobs in batches ([`execute_batch`]): every record of a batch goes into one
//! registry transaction, so a busy daemon pays one commit for many devices.
//!
//! A device whose join failed is not sent the same configuration again at once: until the
//! registry changes (a profile or device edit bumps its change counter) and the configuration
//! differs, or a backoff expires (initial [`DEFAULT_FAILURE_BACKOFF_MS`], doubling up to
//! [`MAX_FAILURE_BACKOFF_FACTOR`] times), its sessions are declined right after
//! authentication, with no registry write. A failure identical to the last one (same
//! configuration, same reason) is confirmed to the device and counted, not written again.
//!
//! Nothing durable comes from what is not authenticated. An Announce is verified and fresh
//! when the core reports it, but its source address is not authenticated (the link layer
//! carries it): the registry learns nothing from it, and a device's `last_mac` is the address
//! of its authenticated Response. Announcements of keys not on the allowlist are not verified
//! at all (the key hash is whatever the sender wrote): they are counted in memory (and in the
//! metrics) and written as at most one summary record per [`REFUSAL_SUMMARY_MS`], never a
//! row per frame, and they touch no device row.
//!
//! Ordering that makes a crash harmless: a join report is acknowledged to the device
//! (`confirm`, which lets it commit) only after the registry committed it. A crash before
//! that loses only the session in flight; the device retries and the registry records the
//! repeated report as a re-join, never as a second provisioning.

use std::collections::{HashMap, VecDeque};

use zeroize::Zeroizing;
use zerotouch_proto::config::{ConfigWriter, MAX_CONFIG_LEN};
use zerotouch_proto::configurator::{
    Configurator, ConfiguratorEvent, ConfiguratorSettings, ConfiguratorStats, SessionFailure,
    SessionId,
};
use zerotouch_proto::{Addr, AnnounceMode, FailureReason, Instant, KeyHash, Transmit};
use zerotouch_store::{
    AllowlistSnapshot, RefusalSummary, Registry, StoreError, Transition, TransitionOutcome,
};

/// How often the daemon asks the registry whether the allowlist changed.
pub const ALLOWLIST_POLL_MS: u64 = 500;

/// An allowlisted key announcing again with the same mode is recorded at most this often
/// (announcements repeat every few hundred milliseconds while a device waits).
const ANNOUNCE_RECORD_INTERVAL_MS: u64 = 30_000;

/// Refused announcements are summed up in one audit record per this window at most.
pub const REFUSAL_SUMMARY_MS: u64 = 60_000;
/// Distinct refused keys counted one by one within a window (the others are counted in
/// the total only), so a flood of distinct keys costs bounded memory.
pub const REFUSAL_KEYS_TRACKED: usize = 1024;
/// The most refused keys named in a summary record.
pub const REFUSAL_SUMMARY_KEYS: usize = 16;

/// Refused announcements of the current summary window.
#[derive(Debug)]
struct Refusals {
    since: Instant,
    refused: u64,
    counts: HashMap<KeyHash, u64>,
}

/// First pause before a configuration that failed to join is delivered again unchanged.
pub const DEFAULT_FAILURE_BACKOFF_MS: u64 = 30_000;
/// The pause doubles with each identical failure, up to this many times the first one.
pub const MAX_FAILURE_BACKOFF_FACTOR: u64 = 32;

/// A device whose last join failed with the configuration of digest `digest`.
#[derive(Clone, Copy, Debug)]
struct HeldBack {
    digest: [u8; 32],
    reason: FailureReason,
    /// The registry change counter when it failed: a different one may mean a fixed profile.
    counter: i64,
    /// No unchanged re-delivery before this.
    until: Instant,
    backoff_ms: u64,
    /// Identical failures in a row (the first one is written, the others are counted).
    failures: u64,
}

/// Registry work caused by a protocol event. Executed in order by [`execute`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegistryJob {
    /// An allowlisted device announced (verified and fresh, from an unauthenticated source
    /// address). Counted for the metrics; writes nothing to the registry.
    Announced {
        /// Its key hash.
        key: KeyHash,
        /// Announcement mode.
        mode: AnnounceMode,
        /// The failure it flagged.
        last_failure: Option<FailureReason>,
    },
    /// A key that is not allowlisted announced (already rate-limited by the core). Not
    /// authenticated: counted for the metrics; writes nothing to the registry.
    Refused {
        /// The key hash the frame named.
        key: KeyHash,
    },
    /// The refusals of a window, summed up: one audit record.
    RefusalSummary(RefusalSummary),
    /// A device authenticated: record it, then fetch and encode its configuration.
    FetchConfig {
        /// The session waiting for it.
        session: SessionId,
        /// The device.
        key: KeyHash,
        /// Radio address of its authenticated Response (recorded as its `last_mac`).
        src: Addr,
    },
    /// The device acknowledged its configuration.
    Delivered {
        /// The device.
        key: KeyHash,
        /// The profile the configuration was made from.
        profile: Option<String>,
    },
    /// The device reported its join: persist, then confirm.
    JoinReported {
        /// The session waiting for the confirmation.
        session: SessionId,
        /// The device.
        key: KeyHash,
        /// Joined, or why not.
        result: Result<(), FailureReason>,
    },
    /// A session ended without a join report.
    SessionFailed {
        /// The device.
        key: KeyHash,
        /// Why.
        reason: SessionFailure,
    },
}

/// The result of a [`RegistryJob`], fed back with [`ConfiguratorDriver::handle_outcome`].
pub enum JobOutcome {
    /// A record was written (or failed and was logged); nothing to do.
    Recorded,
    /// The configuration object for a session, or the reason to decline it.
    Config {
        /// The session.
        session: SessionId,
        /// The encoded configuration object, or why there is none.
        config: Result<Zeroizing<Vec<u8>>, String>,
        /// The profile it was made from.
        profile: Option<String>,
    },
    /// A join report was committed to the registry (`true`), or could not be (`false`:
    /// the device is not confirmed, keeps its report pending and retries later).
    JoinPersisted {
        /// The session.
        session: SessionId,
        /// Whether the registry committed it.
        persisted: bool,
    },
}

/// Counters of the driver (on top of the core's [`ConfiguratorStats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DriverStats {
    /// Announcements of keys not on the allowlist (events, after the core's rate limit).
    pub refused: u64,
    /// Sessions authenticated.
    pub authenticated: u64,
    /// Configurations handed to the core.
    pub configs_provided: u64,
    /// Sessions declined (no configuration for the device).
    pub declined: u64,
    /// Successful joins committed and confirmed.
    pub joined: u64,
    /// Failed joins reported.
    pub join_failed: u64,
    /// Sessions that ended without a report.
    pub sessions_failed: u64,
    /// Of those, sessions whose Response opened under the keys of the device's verified
    /// Announce but whose identity signature (sig_E) did not verify: a fault of the device
    /// (its firmware or key storage), not a forged frame and not a clone (a clone has the
    /// key and signs correctly).
    pub bad_proofs: u64,
    /// Refusal summary records queued.
    pub refusal_summaries: u64,
    /// Join reports the registry could not commit (left unconfirmed).
    pub persist_failures: u64,
    /// Allowlist reloads.
    pub allowlist_reloads: u64,
    /// Sessions declined because the device just failed to join with the same configuration.
    pub held_back: u64,
    /// Join failures identical to the previous one of the device: confirmed, not written.
    pub repeated_failures: u64,
}

/// Logs a per-device event at `info`, or at `debug` when the driver was made quiet (the demo
/// provisions hundreds of devices and shows a progress bar instead).
macro_rules! device_event {
    ($driver:expr, $($arg:tt)*) => {
        if $driver.quiet_events {
            tracing::debug!($($arg)*)
        } else {
            tracing::info!($($arg)*)
        }
    };
}

/// The configurator driver: the core plus the allowlist snapshot and the job queue.
pub struct ConfiguratorDriver<R> {
    core: Configurator<R>,
    allowlist: AllowlistSnapshot,
    jobs: VecDeque<RegistryJob>,
    /// Last recorded announcement per key, to keep repeated announcements out of the audit log.
    announce_recorded: HashMap<KeyHash, (AnnounceMode, Option<FailureReason>, Instant)>,
    stats: DriverStats,
    quiet_events: bool,
    /// Devices whose last join failed, and with what.
    held: HashMap<KeyHash, HeldBack>,
    /// The device of each authenticated session.
    session_keys: HashMap<u32, KeyHash>,
    /// The digest of the configuration delivered in each session.
    session_digests: HashMap<u32, [u8; 32]>,
    /// The profile of the configuration handed to each session.
    session_profiles: HashMap<u32, String>,
    /// Sessions declined by the backoff (their end is not news).
    held_sessions: std::collections::HashSet<u32>,
    failure_backoff_ms: u64,
    /// Refused announcements not yet summed up in a record.
    refusals: Option<Refusals>,
}

impl<R: rand_core::CryptoRng> ConfiguratorDriver<R> {
    /// A driver around a new core, answering the keys of `allowlist`.
    pub fn new(settings: ConfiguratorSettings, rng: R, allowlist: AllowlistSnapshot) -> Self {
        Self {
            core: Configurator::new(settings, rng),
            allowlist,
            jobs: VecDeque::new(),
            announce_recorded: HashMap::new(),
            stats: DriverStats::default(),
            quiet_events: false,
            held: HashMap::new(),
            session_keys: HashMap::new(),
            session_digests: HashMap::new(),
            session_profiles: HashMap::new(),
            held_sessions: std::collections::HashSet::new(),
            failure_backoff_ms: DEFAULT_FAILURE_BACKOFF_MS,
            refusals: None,
        }
    }

    /// Sets the first pause before an unchanged configuration is delivered again to a device
    /// whose join failed with it (default [`DEFAULT_FAILURE_BACKOFF_MS`]).
    pub fn with_failure_backoff(mut self, backoff_ms: u64) -> Self {
        self.failure_backoff_ms = backoff_ms.max(1);
        self
    }

    /// Devices held back after a failed join.
    pub fn held_back_devices(&self) -> usize {
        self.held.len()
    }

    /// Logs per-device events at `debug` instead of `info`.
    pub fn with_quiet_events(mut self) -> Self {
        self.quiet_events = true;
        self
    }

    /// Handles a received frame.
    pub fn handle_frame(&mut self, now: Instant, src: Addr, frame: &[u8]) {
        self.core.handle_frame(now, src, frame, &self.allowlist);
        self.drain_events(now);
    }

    /// Handles the deadline from [`ConfiguratorDriver::poll_timeout`].
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.core.poll_timeout().is_some_and(|t| t <= now) {
            self.core.handle_timeout(now);
        }
        self.drain_events(now);
        if self.refusal_summary_due().is_some_and(|t| t <= now) {
            self.flush_refusals(now);
        }
    }

    /// When the pending refusals must be summed up in a record.
    fn refusal_summary_due(&self) -> Option<Instant> {
        self.refusals
            .as_ref()
            .map(|r| r.since.saturating_add(REFUSAL_SUMMARY_MS))
    }

    /// Queues the summary record of the refusals counted so far, if any (at the end of each
    /// window, and at shutdown).
    pub fn flush_refusals(&mut self, now: Instant) {
        let Some(window) = self.refusals.take() else {
            return;
        };
        let mut keys: Vec<(KeyHash, u64)> = window.counts.into_iter().collect();
        let distinct_keys = keys.len() as u64;
        keys.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.0.cmp(&b.0.0)));
        keys.truncate(REFUSAL_SUMMARY_KEYS);
        let window_ms = now.saturating_sub(window.since);
        tracing::info!(
            refused = window.refused,
            distinct_keys,
            window_s = window_ms / 1000,
            "announcements of keys not on the allowlist refused (unauthenticated: counted, one summary record)"
        );
        self.stats.refusal_summaries += 1;
        self.jobs
            .push_back(RegistryJob::RefusalSummary(RefusalSummary {
                refused: window.refused,
                distinct_keys,
                window_ms,
                keys,
            }));
    }

    /// The next frame to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.core.poll_transmit()
    }

    /// When [`ConfiguratorDriver::handle_timeout`] must run next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.core.poll_timeout(), self.refusal_summary_due()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The next registry job to run.
    pub fn poll_job(&mut self) -> Option<RegistryJob> {
        self.jobs.pop_front()
    }

    /// Feeds back the result of a job.
    pub fn handle_outcome(&mut self, now: Instant, outcome: JobOutcome) {
        match outcome {
            JobOutcome::Recorded => {}
            JobOutcome::Config {
                session,
                config: Ok(bytes),
                profile,
            } => {
                use sha2::Digest as _;
                let digest: [u8; 32] = sha2::Sha256::digest(bytes.as_slice()).into();
                let key = self.session_keys.get(&session.0).copied();
                if let Some(held) = key.and_then(|k| self.held.get(&k))
                    && held.digest == digest
                    && now < held.until
                {
                    // The registry changed, but not this device's configuration.
                    tracing::debug!(
                        session = session.0,
                        "unchanged configuration: still held back"
                    );
                    self.decline_held(now, session);
                    self.drain_events(now);
                    return;
                }
                // Fails if the session ended meanwhile or the key was revoked: the core then
                // sends nothing, and reports the end as an event.
                match self
                    .core
                    .provide_config(now, session, &bytes, &self.allowlist)
                {
                    Ok(()) => {
                        self.stats.configs_provided += 1;
                        self.session_digests.insert(session.0, digest);
                        if let Some(profile) = profile {
                            self.session_profiles.insert(session.0, profile);
                        }
                    }
                    Err(err) => {
                        tracing::debug!(session = session.0, %err, "configuration not delivered")
                    }
                }
            }
            JobOutcome::Config {
                session,
                config: Err(why),
                ..
            } => {
                tracing::warn!(session = session.0, reason = %why, "declining the device: no configuration");
                self.stats.declined += 1;
                let _ = self.core.decline(now, session);
            }
            JobOutcome::JoinPersisted {
                session,
                persisted: true,
            } => {
                if let Err(err) = self.core.confirm(now, session) {
                    tracing::debug!(session = session.0, %err, "join persisted after the session ended");
                }
            }
            JobOutcome::JoinPersisted {
                session,
                persisted: false,
            } => {
                self.stats.persist_failures += 1;
                tracing::warn!(
                    session = session.0,
                    "join report not committed; the device is left unconfirmed and will retry"
                );
            }
        }
        self.drain_events(now);
    }

    /// The change counter of the allowlist snapshot in use.
    pub fn allowlist_counter(&self) -> i64 {
        self.allowlist.change_counter
    }

    /// When the snapshot must be reloaded because an entry expires (Unix ms), if ever.
    pub fn allowlist_next_expiry(&self) -> Option<i64> {
        self.allowlist.next_expiry_ms
    }

    /// Installs a fresh allowlist snapshot; sessions of keys that left it are aborted at once.
    pub fn replace_allowlist(&mut self, now: Instant, snapshot: AllowlistSnapshot) {
        let removed: Vec<(KeyHash, Option<String>)> = self
            .allowlist
            .keys
            .difference(&snapshot.keys)
            .map(|key| (*key, self.allowlist.label(key).map(str::to_owned)))
            .collect();
        self.allowlist = snapshot;
        self.stats.allowlist_reloads += 1;
        for (key, label) in &removed {
            device_event!(self, key = %key, label = label.as_deref(), "revoked: aborting its sessions");
            self.core.revoke(now, key);
            self.held.remove(key);
            self.announce_recorded.remove(key);
        }
        self.drain_events(now);
    }

    /// Sessions running.
    pub fn session_count(&self) -> usize {
        self.core.session_count()
    }

    /// The core's counters.
    pub fn core_stats(&self) -> ConfiguratorStats {
        self.core.stats()
    }

    /// The driver's counters.
    pub fn stats(&self) -> DriverStats {
        self.stats
    }

    /// Updates the Unix time sent to enrollees.
    pub fn set_unix_time(&mut self, unix_time: u32) {
        self.core.set_unix_time(unix_time);
    }

    /// Declines an authenticated session of a held-back device.
    fn decline_held(&mut self, now: Instant, session: SessionId) {
        self.stats.held_back += 1;
        self.held_sessions.insert(session.0);
        if self.core.decline(now, session).is_err() {
            self.held_sessions.remove(&session.0);
        }
    }

    /// Records a failed join for the backoff. Returns `true` when it is identical to the
    /// previous failure of the device (same configuration, same reason): counted, and the
    /// backoff doubled, but not to be written again.
    fn hold_back(
        &mut self,
        now: Instant,
        key: KeyHash,
        reason: FailureReason,
        digest: Option<[u8; 32]>,
    ) -> bool {
        let Some(digest) = digest else {
            // A report whose delivery this driver did not see (e.g. after a restart): write it.
            return false;
        };
        let counter = self.allowlist.change_counter;
        let initial = self.failure_backoff_ms;
        match self.held.get_mut(&key) {
            Some(held) if held.digest == digest && held.reason == reason => {
                held.failures += 1;
                held.backoff_ms = (held.backoff_ms * 2).min(initial * MAX_FAILURE_BACKOFF_FACTOR);
                held.until = now.saturating_add(held.backoff_ms);
                held.counter = counter;
                self.stats.repeated_failures += 1;
                tracing::warn!(
                    key = %key,
                    label = self.allowlist.label(&key),
                    reason = reason.name(),
                    failures = held.failures,
                    retry_in_s = held.backoff_ms / 1000,
                    "device failed again with the same configuration; counted, not recorded again"
                );
                true
            }
            _ => {
                self.held.insert(
                    key,
                    HeldBack {
                        digest,
                        reason,
                        counter,
                        until: now.saturating_add(initial),
                        backoff_ms: initial,
                        failures: 1,
                    },
                );
                false
            }
        }
    }

    fn drain_events(&mut self, now: Instant) {
        while let Some(event) = self.core.poll_event() {
            self.on_event(now, event);
        }
    }

    fn on_event(&mut self, now: Instant, event: ConfiguratorEvent) {
        match event {
            ConfiguratorEvent::Announced {
                key,
                src,
                mode,
                last_failure,
            } => {
                let repeat = self.announce_recorded.get(&key).is_some_and(|&(m, f, at)| {
                    m == mode
                        && f == last_failure
                        && now.saturating_sub(at) < ANNOUNCE_RECORD_INTERVAL_MS
                });
                if !repeat {
                    // The source address is not authenticated: logged, never recorded.
                    tracing::debug!(key = %key, label = self.allowlist.label(&key), %src, ?mode, "allowlisted device announced");
                    self.announce_recorded
                        .insert(key, (mode, last_failure, now));
                    self.jobs.push_back(RegistryJob::Announced {
                        key,
                        mode,
                        last_failure,
                    });
                }
            }
            ConfiguratorEvent::NotAllowed { key, src } => {
                self.stats.refused += 1;
                tracing::debug!(key = %key, %src, "refused: not on the allowlist");
                let window = self.refusals.get_or_insert_with(|| Refusals {
                    since: now,
                    refused: 0,
                    counts: HashMap::new(),
                });
                window.refused += 1;
                if let Some(count) = window.counts.get_mut(&key) {
                    *count += 1;
                } else if window.counts.len() < REFUSAL_KEYS_TRACKED {
                    window.counts.insert(key, 1);
                }
                self.jobs.push_back(RegistryJob::Refused { key });
            }
            ConfiguratorEvent::Authenticated { session, key, src } => {
                self.stats.authenticated += 1;
                self.session_keys.insert(session.0, key);
                if let Some(held) = self.held.get(&key)
                    && held.counter == self.allowlist.change_counter
                    && now < held.until
                {
                    // Nothing changed since its join failed: no fetch, no record, no delivery.
                    tracing::debug!(key = %key, label = self.allowlist.label(&key), session = session.0, retry_in_ms = held.until - now, "held back after a failed join");
                    self.decline_held(now, session);
                    return;
                }
                device_event!(self, key = %key, label = self.allowlist.label(&key), %src, session = session.0, "device authenticated");
                self.jobs
                    .push_back(RegistryJob::FetchConfig { session, key, src });
            }
            ConfiguratorEvent::ConfigDelivered { session, key } => {
                let profile = self.session_profiles.remove(&session.0);
                device_event!(self, key = %key, label = self.allowlist.label(&key), profile = profile.as_deref(), "configuration delivered");
                self.jobs.push_back(RegistryJob::Delivered { key, profile });
            }
            ConfiguratorEvent::JoinReported {
                session,
                key,
                result,
            } => {
                self.session_keys.remove(&session.0);
                let digest = self.session_digests.remove(&session.0);
                match result {
                    Ok(()) => {
                        self.stats.joined += 1;
                        self.held.remove(&key);
                        device_event!(self, key = %key, label = self.allowlist.label(&key), "device joined its network");
                    }
                    Err(reason) => {
                        self.stats.join_failed += 1;
                        if self.hold_back(now, key, reason, digest) {
                            // Identical to the failure on record: confirm, count, do not write.
                            if let Err(err) = self.core.confirm(now, session) {
                                tracing::debug!(session = session.0, %err, "repeated failure after the session ended");
                            }
                            return;
                        }
                        tracing::warn!(key = %key, label = self.allowlist.label(&key), reason = reason.name(), "device could not join");
                    }
                }
                // A new attempt of this device must be recorded even if it looks the same.
                self.announce_recorded.remove(&key);
                self.jobs.push_back(RegistryJob::JoinReported {
                    session,
                    key,
                    result,
                });
            }
            ConfiguratorEvent::SessionFailed {
                session,
                key,
                reason,
            } => {
                self.session_keys.remove(&session.0);
                self.session_digests.remove(&session.0);
                self.session_profiles.remove(&session.0);
                if self.held_sessions.remove(&session.0) {
                    return;
                }
                self.stats.sessions_failed += 1;
                if reason == SessionFailure::BadProof {
                    // Rare and the device's own fault: worth a warning, never an alarm.
                    self.stats.bad_proofs += 1;
                    tracing::warn!(key = %key, label = self.allowlist.label(&key), reason = failure_words(reason), "session ended without a join report");
                } else {
                    device_event!(self, key = %key, label = self.allowlist.label(&key), reason = failure_words(reason), "session ended without a join report");
                }
                self.jobs
                    .push_back(RegistryJob::SessionFailed { key, reason });
            }
        }
    }
}

/// What a session failure means, in words for the log. A failed proof is said for what it
/// is: the Announce was verified (signed by the device's identity key, over its ephemeral
/// key), the Response opened under the keys of that ephemeral, and only the identity
/// signature inside it failed. Nobody without the device's ephemeral secret can get that
/// far (a forged or replayed Response fails the AEAD and is dropped without a word), so it
/// is a fault of the device, not an attack and not a clone.
pub fn failure_words(reason: SessionFailure) -> &'static str {
    match reason {
        SessionFailure::Timeout => "timeout: the device stopped answering",
        SessionFailure::BadProof => {
            "bad proof: the device's Announce verified, but the identity signature in its Response did not (a device fault: firmware or key storage; not a forged frame, not a clone)"
        }
        SessionFailure::Revoked => "revoked during the session",
        SessionFailure::Declined => "declined",
    }
}

/// Encodes a device's configuration plan as the protocol's configuration object.
pub fn encode_plan(plan: &zerotouch_store::DeviceConfigPlan) -> Result<Zeroizing<Vec<u8>>, String> {
    let mut buf = Zeroizing::new(vec![0u8; MAX_CONFIG_LEN]);
    let mut writer = ConfigWriter::new(&mut buf);
    for (index, network) in plan.networks.iter().enumerate() {
        writer.network(&network.as_network()).map_err(|e| {
            format!(
                "network {} of profile `{}` is invalid: {e:?}",
                index + 1,
                plan.profile
            )
        })?;
    }
    for (key, value) in &plan.settings {
        writer.setting(key, value.as_bytes()).map_err(|e| {
            format!(
                "setting `{key}` of profile `{}` is invalid: {e:?}",
                plan.profile
            )
        })?;
    }
    let len = writer
        .finish()
        .map_err(|e| format!("profile `{}`: {e:?}", plan.profile))?;
    buf.truncate(len);
    Ok(buf)
}

/// How often a join report is retried when the registry is busy, and the pause between tries.
const PERSIST_ATTEMPTS: u32 = 5;
const PERSIST_RETRY_MS: u64 = 200;

/// Runs one job against the registry. Failures of plain records are logged and do not stop
/// provisioning; a join report that cannot be committed is not confirmed.
pub async fn execute(registry: &Registry, job: RegistryJob) -> JobOutcome {
    match job {
        RegistryJob::Announced {
            key,
            mode,
            last_failure,
        } => {
            tracing::trace!(key = %key, ?mode, last_failure = last_failure.map(FailureReason::name), "announcement (not recorded)");
            JobOutcome::Recorded
        }
        RegistryJob::Refused { .. } => JobOutcome::Recorded,
        RegistryJob::RefusalSummary(summary) => {
            if let Err(err) = registry.record_refusal_summary(&summary).await {
                tracing::warn!(%err, "could not record the refusal summary");
            }
            JobOutcome::Recorded
        }
        RegistryJob::FetchConfig {
            session, key, src, ..
        } => {
            // Revoked since the snapshot: the registry refuses, and the device gets nothing.
            let (config, profile) = match registry.record_authenticated_from(&key, src).await {
                Ok(()) => match registry.device_config(&key).await {
                    Ok(plan) => (encode_plan(&plan), Some(plan.profile)),
                    Err(err) => (Err(err.to_string()), None),
                },
                Err(err) => (Err(err.to_string()), None),
            };
            JobOutcome::Config {
                session,
                config,
                profile,
            }
        }
        RegistryJob::Delivered { key, profile } => {
            let recorded = match &profile {
                Some(profile) => registry.record_config_delivered_from(&key, profile).await,
                None => registry.record_config_delivered(&key).await,
            };
            if let Err(err) = recorded {
                tracing::warn!(key = %key, %err, "could not record the delivery");
            }
            JobOutcome::Recorded
        }
        RegistryJob::JoinReported {
            session,
            key,
            result,
        } => {
            for attempt in 1..=PERSIST_ATTEMPTS {
                let written = match result {
                    Ok(()) => registry.record_joined(&key).await.map(drop),
                    Err(reason) => registry.record_join_failed(&key, reason).await,
                };
                match written {
                    Ok(()) => {
                        return JobOutcome::JoinPersisted {
                            session,
                            persisted: true,
                        };
                    }
                    Err(err @ (StoreError::DeviceRevoked(_) | StoreError::DeviceNotFound(_))) => {
                        tracing::warn!(key = %key, %err, "join report of a device no longer allowlisted; not confirmed");
                        break;
                    }
                    Err(err) => {
                        tracing::warn!(key = %key, %err, attempt, "could not commit the join report");
                        if attempt < PERSIST_ATTEMPTS {
                            tokio::time::sleep(std::time::Duration::from_millis(PERSIST_RETRY_MS))
                                .await;
                        }
                    }
                }
            }
            JobOutcome::JoinPersisted {
                session,
                persisted: false,
            }
        }
        RegistryJob::SessionFailed { key, reason } => {
            // The registry keeps device transitions only; a session that ended early is a
            // log line (the device retries and its next announcement is recorded).
            tracing::debug!(key = %key, reason = failure_words(reason), "session failed (not recorded)");
            JobOutcome::Recorded
        }
    }
}

/// Most jobs the daemon's worker commits in one registry transaction.
pub const MAX_BATCH: usize = 256;

/// The registry transition a job records, if any.
fn transition_of(job: &RegistryJob) -> Option<Transition> {
    Some(match job {
        RegistryJob::Announced { .. }
        | RegistryJob::Refused { .. }
        | RegistryJob::RefusalSummary(_) => return None,
        RegistryJob::FetchConfig { key, src, .. } => Transition::Authenticated {
            key_hash: *key,
            mac: Some(*src),
        },
        RegistryJob::Delivered { key, profile } => Transition::ConfigDelivered {
            key_hash: *key,
            profile: profile.clone(),
        },
        RegistryJob::JoinReported {
            key,
            result: Ok(()),
            ..
        } => Transition::Joined { key_hash: *key },
        RegistryJob::JoinReported {
            key,
            result: Err(reason),
            ..
        } => Transition::JoinFailed {
            key_hash: *key,
            reason: *reason,
        },
        RegistryJob::SessionFailed { .. } => return None,
    })
}

/// Runs many jobs with one registry transaction for all their records (one commit, one
/// fsync when a join report needs it), in order, then the configuration lookups. Same
/// outcomes as [`execute`] on each job; if the batch cannot be committed, the jobs run one
/// by one (with [`execute`]'s retries for join reports).
pub async fn execute_batch(registry: &Registry, jobs: Vec<RegistryJob>) -> Vec<JobOutcome> {
    if jobs.len() <= 1 {
        let mut outcomes = Vec::with_capacity(1);
        for job in jobs {
            outcomes.push(execute(registry, job).await);
        }
        return outcomes;
    }
    let transitions: Vec<Option<Transition>> = jobs.iter().map(transition_of).collect();
    let list: Vec<Transition> = transitions.iter().flatten().cloned().collect();
    let results = match registry.record_batch(&list).await {
        Ok(results) if results.len() == list.len() => results,
        Ok(_) | Err(_) => {
            tracing::warn!(
                jobs = jobs.len(),
                "batched registry write failed; writing one by one"
            );
            let mut outcomes = Vec::with_capacity(jobs.len());
            for job in jobs {
                outcomes.push(execute(registry, job).await);
            }
            return outcomes;
        }
    };
    let mut results = results.into_iter();
    let mut outcomes = Vec::with_capacity(jobs.len());
    for (job, transition) in jobs.into_iter().zip(transitions) {
        let recorded = if transition.is_some() {
            results.next()
        } else {
            None
        };
        let refused_by_registry = matches!(
            recorded,
            Some(TransitionOutcome::DeviceRevoked | TransitionOutcome::DeviceNotFound)
        );
        outcomes.push(match job {
            RegistryJob::FetchConfig { session, key, .. } => {
                let (config, profile) = if refused_by_registry {
                    (Err(format!("device {key} is no longer allowlisted")), None)
                } else {
                    match registry.device_config(&key).await {
                        Ok(plan) => (encode_plan(&plan), Some(plan.profile)),
                        Err(err) => (Err(err.to_string()), None),
                    }
                };
                JobOutcome::Config {
                    session,
                    config,
                    profile,
                }
            }
            RegistryJob::JoinReported { session, key, .. } => {
                if refused_by_registry {
                    tracing::warn!(key = %key, "join report of a device no longer allowlisted; not confirmed");
                }
                JobOutcome::JoinPersisted { session, persisted: !refused_by_registry }
            }
            RegistryJob::SessionFailed { key, reason } => {
                tracing::debug!(key = %key, reason = failure_words(reason), "session failed (not recorded)");
                JobOutcome::Recorded
            }
            RegistryJob::RefusalSummary(summary) => {
                if let Err(err) = registry.record_refusal_summary(&summary).await {
                    tracing::warn!(%err, "could not record the refusal summary");
                }
                JobOutcome::Recorded
            }
            other => {
                if refused_by_registry {
                    tracing::debug!(job = ?other, "not recorded: the device is no longer allowlisted");
                }
                JobOutcome::Recorded
            }
        });
    }
    outcomes
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha8Rng;
    use rand_core::SeedableRng;
    use zerotouch_proto::configurator::{ConfiguratorIdentity, ConfiguratorLimits};
    use zerotouch_proto::enrollee::{Enrollee, EnrolleeSettings, EnrolleeTiming, Trust};
    use zerotouch_proto::{ConfiguratorCert, SigningIdentity, SuiteId};

    const CHANNEL: u8 = 6;

    fn driver(allowlist: AllowlistSnapshot) -> ConfiguratorDriver<ChaCha8Rng> {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let owner = SigningIdentity::generate(SuiteId::Ed25519, &mut rng);
        let identity = SigningIdentity::generate(SuiteId::Ed25519, &mut rng);
        let cert =
            ConfiguratorCert::issue(&owner, &identity.public_key(), u32::MAX).expect("certificate");
        let mut identities = heapless::Vec::new();
        identities
            .push(ConfiguratorIdentity {
                identity,
                cert,
                owner: owner.public_key(),
            })
            .ok()
            .expect("one identity");
        let settings = ConfiguratorSettings {
            identities,
            channel: CHANNEL,
            unix_time: 1_800_000_000,
            limits: ConfiguratorLimits::default(),
        };
        ConfiguratorDriver::new(settings, rng, allowlist)
    }

    /// The first Announce of a device with `identity`.
    fn announce(identity: SigningIdentity) -> Vec<u8> {
        let settings = EnrolleeSettings {
            identity,
            trust: Trust::FirstUse,
            mode: AnnounceMode::New,
            last_failure: None,
            last_channel: Some(CHANNEL),
            known_unix_time: 0,
            timing: EnrolleeTiming::default(),
            boot_counter: 1,
        };
        let mut enrollee = Enrollee::new(settings, ChaCha8Rng::seed_from_u64(2), 0);
        enrollee
            .poll_transmit()
            .expect("an Announce")
            .frame
            .to_vec()
    }

    #[test]
    fn a_flood_of_unknown_keys_becomes_one_summary_record_per_window() {
        let mut driver = driver(AllowlistSnapshot::default());
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let frames: Vec<Vec<u8>> = (0..300)
            .map(|_| announce(SigningIdentity::generate(SuiteId::Ed25519, &mut rng)))
            .collect();
        for (i, frame) in frames.iter().enumerate() {
            driver.handle_frame(i as u64, Addr([2, 0, 0, 0, (i >> 8) as u8, i as u8]), frame);
        }
        let mut jobs = Vec::new();
        while let Some(job) = driver.poll_job() {
            jobs.push(job);
        }
        assert_eq!(
            jobs.len(),
            300,
            "one in-memory job per refusal, for the metrics"
        );
        assert!(
            jobs.iter().all(|job| transition_of(job).is_none()),
            "a refusal writes no registry row"
        );
        assert!(
            !jobs
                .iter()
                .any(|j| matches!(j, RegistryJob::RefusalSummary(_)))
        );
        assert_eq!(driver.stats().refused, 300);

        // The window closes on the driver's own timer: one summary record.
        let due = driver.poll_timeout().expect("a summary is due");
        assert!(due <= REFUSAL_SUMMARY_MS, "{due}");
        driver.handle_timeout(due);
        let summaries: Vec<RefusalSummary> = std::iter::from_fn(|| driver.poll_job())
            .filter_map(|job| match job {
                RegistryJob::RefusalSummary(summary) => Some(summary),
                _ => None,
            })
            .collect();
        assert_eq!(summaries.len(), 1);
        assert_eq!(summaries[0].refused, 300);
        assert_eq!(summaries[0].distinct_keys, 300);
        assert_eq!(summaries[0].keys.len(), REFUSAL_SUMMARY_KEYS);
        // Nothing more is due until another refusal; nothing to flush at shutdown.
        driver.flush_refusals(due + 1);
        assert!(driver.poll_job().is_none());
    }

    #[test]
    fn an_announcement_records_nothing_and_authentication_records_the_address() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let device = SigningIdentity::generate(SuiteId::Ed25519, &mut rng);
        let key = device.public_key().key_hash();
        let mut allowlist = AllowlistSnapshot::default();
        allowlist.keys.insert(key);
        let mut driver = driver(allowlist);
        driver.handle_frame(0, Addr([2, 0xba, 0xd, 0, 0, 1]), &announce(device));
        let jobs: Vec<RegistryJob> = std::iter::from_fn(|| driver.poll_job()).collect();
        assert!(
            matches!(jobs.as_slice(), [RegistryJob::Announced { key: k, .. }] if *k == key),
            "{jobs:?}"
        );
        assert_eq!(
            transition_of(&jobs[0]),
            None,
            "an Announce's address is not recorded"
        );
        let authenticated = RegistryJob::FetchConfig {
            session: SessionId(7),
            key,
            src: Addr([2, 0, 0, 0, 0, 2]),
        };
        assert_eq!(
            transition_of(&authenticated),
            Some(Transition::Authenticated {
                key_hash: key,
                mac: Some(Addr([2, 0, 0, 0, 0, 2])),
            })
        );
    }

    #[test]
    fn a_bad_proof_is_worded_as_a_device_fault_after_a_verified_announce() {
        let words = failure_words(SessionFailure::BadProof);
        assert!(words.contains("Announce verified"), "{words}");
        assert!(words.contains("device fault"), "{words}");
        assert!(words.contains("not a clone"), "{words}");
        for reason in [
            SessionFailure::Timeout,
            SessionFailure::Revoked,
            SessionFailure::Declined,
        ] {
            assert!(!failure_words(reason).contains("clone"));
        }
    }
}
