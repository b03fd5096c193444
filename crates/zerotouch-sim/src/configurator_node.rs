//! [`ConfiguratorNode`]: a simulated configurator around the real
//! `zerotouch_proto::Configurator`, with the registry reduced to memory: an allowlist
//! (mutable during a run, for revocation tests), per-device configuration objects,
//! an optional lookup delay, and immediate confirmation of join reports.

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet};

use rand_chacha::ChaCha8Rng;
use zerotouch_proto::configurator::{
    Configurator, ConfiguratorEvent, ConfiguratorSettings, ConfiguratorStats, SessionFailure,
    SessionId,
};
use zerotouch_proto::{Addr, AnnounceMode, FailureReason, Instant, KeyHash, Transmit};

use crate::sim::Node;

/// What the configurator's driver saw of one allowlisted device.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeviceLog {
    /// First announcement heard, ms.
    pub first_announce: Option<Instant>,
    /// Announcements reported by the configurator (mode, flagged failure).
    pub announces: Vec<(Instant, AnnounceMode, Option<FailureReason>)>,
    /// Sessions authenticated.
    pub authenticated: Vec<(Instant, SessionId)>,
    /// Configurations handed to the configurator for delivery.
    pub configs_provided: Vec<Instant>,
    /// Sessions declined (no profile).
    pub declined: Vec<Instant>,
    /// Configurations the device acknowledged.
    pub delivered: Vec<Instant>,
    /// Join reports.
    pub join_reports: Vec<(Instant, Result<(), FailureReason>)>,
    /// Sessions that ended without a join report.
    pub session_failures: Vec<(Instant, SessionFailure)>,
}

impl DeviceLog {
    /// True once a successful join was reported (and confirmed).
    pub fn joined(&self) -> bool {
        self.join_reports.iter().any(|(_, r)| r.is_ok())
    }
}

/// A simulated configurator with an in-memory registry.
pub struct ConfiguratorNode {
    addr: Addr,
    configurator: Configurator<ChaCha8Rng>,
    allowlist: BTreeSet<KeyHash>,
    configs: BTreeMap<KeyHash, Vec<u8>>,
    default_config: Option<Vec<u8>>,
    registry_delay_ms: u64,
    /// Authenticated sessions waiting for the (delayed) registry lookup.
    pending: BTreeMap<(Instant, SessionId), KeyHash>,
    devices: BTreeMap<KeyHash, DeviceLog>,
    not_allowed: u64,
    peak_sessions: usize,
}

impl ConfiguratorNode {
    /// A configurator at `addr` serving `allowlist`, giving every device `default_config`
    /// unless [`ConfiguratorNode::set_config`] names one for it.
    pub fn new(
        addr: Addr,
        settings: ConfiguratorSettings,
        rng: ChaCha8Rng,
        allowlist: BTreeSet<KeyHash>,
        default_config: Option<Vec<u8>>,
    ) -> Self {
        Self {
            addr,
            configurator: Configurator::new(settings, rng),
            allowlist,
            configs: BTreeMap::new(),
            default_config,
            registry_delay_ms: 0,
            pending: BTreeMap::new(),
            devices: BTreeMap::new(),
            not_allowed: 0,
            peak_sessions: 0,
        }
    }

    /// Makes the registry answer `delay_ms` after authentication instead of at once (an
    /// asynchronous database; opens the window a revocation test needs).
    pub fn with_registry_delay(mut self, delay_ms: u64) -> Self {
        self.registry_delay_ms = delay_ms;
        self
    }

    /// Changes the registry delay during a run (see [`ConfiguratorNode::with_registry_delay`]).
    pub fn set_registry_delay(&mut self, delay_ms: u64) {
        self.registry_delay_ms = delay_ms;
    }

    /// The allowlist, mutable (add devices during a run).
    pub fn allowlist_mut(&mut self) -> &mut BTreeSet<KeyHash> {
        &mut self.allowlist
    }

    /// The allowlist.
    pub fn allowlist(&self) -> &BTreeSet<KeyHash> {
        &self.allowlist
    }

    /// Sets the configuration object of one device (e.g. to fix a wrong PSK).
    pub fn set_config(&mut self, key: KeyHash, config: Vec<u8>) {
        self.configs.insert(key, config);
    }

    /// Sets the configuration object of devices without their own.
    pub fn set_default_config(&mut self, config: Option<Vec<u8>>) {
        self.default_config = config;
    }

    /// Revokes a device now: off the allowlist, and every session of it aborted.
    pub fn revoke(&mut self, now: Instant, key: &KeyHash) {
        self.allowlist.remove(key);
        self.pending.retain(|_, k| k != key);
        self.configurator.revoke(now, key);
        self.drain_events(now);
    }

    /// The protocol state machine (read-only).
    pub fn configurator(&self) -> &Configurator<ChaCha8Rng> {
        &self.configurator
    }

    /// The configurator's counters.
    pub fn stats(&self) -> ConfiguratorStats {
        self.configurator.stats()
    }

    /// Most concurrent sessions seen after any call.
    pub fn peak_sessions(&self) -> usize {
        self.peak_sessions
    }

    /// Announcements from keys not on the allowlist (counted, never stored per key).
    pub fn not_allowed(&self) -> u64 {
        self.not_allowed
    }

    /// What the driver saw of each allowlisted device.
    pub fn devices(&self) -> &BTreeMap<KeyHash, DeviceLog> {
        &self.devices
    }

    /// What the driver saw of one device.
    pub fn device(&self, key: &KeyHash) -> Option<&DeviceLog> {
        self.devices.get(key)
    }

    fn provide(&mut self, now: Instant, session: SessionId, key: KeyHash) {
        let config = self.configs.get(&key).or(self.default_config.as_ref());
        let log = self.devices.entry(key).or_default();
        match config {
            Some(config) => {
                // Err = the session ended meanwhile or the key was revoked: nothing is sent.
                if self
                    .configurator
                    .provide_config(now, session, config, &self.allowlist)
                    .is_ok()
                {
                    log.configs_provided.push(now);
                }
            }
            None => {
                log.declined.push(now);
                let _ = self.configurator.decline(now, session);
            }
        }
    }

    fn drain_events(&mut self, now: Instant) {
        while let Some(event) = self.configurator.poll_event() {
            match event {
                ConfiguratorEvent::Announced {
                    key,
                    mode,
                    last_failure,
                    ..
                } => {
                    let log = self.devices.entry(key).or_default();
                    log.first_announce.get_or_insert(now);
                    log.announces.push((now, mode, last_failure));
                }
                ConfiguratorEvent::NotAllowed { .. } => self.not_allowed += 1,
                ConfiguratorEvent::Authenticated { session, key, .. } => {
                    self.devices
                        .entry(key)
                        .or_default()
                        .authenticated
                        .push((now, session));
                    if self.registry_delay_ms == 0 {
                        self.provide(now, session, key);
                    } else {
                        self.pending
                            .insert((now + self.registry_delay_ms, session), key);
                    }
                }
                ConfiguratorEvent::ConfigDelivered { key, .. } => {
                    self.devices.entry(key).or_default().delivered.push(now);
                }
                ConfiguratorEvent::JoinReported {
                    session,
                    key,
                    result,
                } => {
                    // The in-memory registry "persists" at once, then releases the final ack.
                    self.devices
                        .entry(key)
                        .or_default()
                        .join_reports
                        .push((now, result));
                    let _ = self.configurator.confirm(now, session);
                }
                ConfiguratorEvent::SessionFailed { key, reason, .. } => {
                    self.devices
                        .entry(key)
                        .or_default()
                        .session_failures
                        .push((now, reason));
                }
            }
        }
        self.peak_sessions = self.peak_sessions.max(self.configurator.session_count());
    }
}

impl Node for ConfiguratorNode {
    fn addr(&self) -> Addr {
        self.addr
    }

    fn channel(&self) -> u8 {
        self.configurator.channel()
    }

    fn handle_frame(&mut self, now: Instant, src: Addr, frame: &[u8]) {
        self.configurator
            .handle_frame(now, src, frame, &self.allowlist);
        self.drain_events(now);
    }

    fn handle_timeout(&mut self, now: Instant) {
        while let Some(entry) = self.pending.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let ((_, session), key) = entry.remove_entry();
            self.provide(now, session, key);
        }
        if self.configurator.poll_timeout().is_some_and(|t| t <= now) {
            self.configurator.handle_timeout(now);
        }
        self.drain_events(now);
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.configurator.poll_transmit()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        let pending = self.pending.keys().next().map(|(at, _)| *at);
        match (self.configurator.poll_timeout(), pending) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}
