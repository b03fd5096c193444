//! [`EnrolleeNode`]: a simulated IoT device around the real `zerotouch_proto::Enrollee`.
//!
//! The device's driver is modelled too: when the configuration arrives it "joins" by
//! checking the delivered networks against the access points in range ([`ApModel`]),
//! after a join delay, and reports the result; when the configurator confirms, it records
//! what it would commit to flash ([`Commit`]) and when.
//!
//! [`EnrolleeNode::with_off_channel_join`] models a single-radio device such as the
//! ESP32-C3: its station join takes the radio off the ESP-NOW channel (deaf and silent)
//! for the whole join, which its driver bounds by a timeout and reports as
//! [`FailureReason::Timeout`] when it expires.

use std::any::Any;

use rand_chacha::ChaCha8Rng;
use zerotouch_proto::config::{ConfigView, Credential, Security};
use zerotouch_proto::enrollee::{
    AttemptFailure, Enrollee, EnrolleeEvent, EnrolleeSettings, EnrolleeState, EnrolleeStats,
    Provisioned, RejectReason,
};
use zerotouch_proto::{Addr, FailureReason, Instant, KeyHash, PublicKey, Transmit};

use crate::sim::Node;

/// Default time a device takes to try a network (scan, associate, 4-way handshake, DHCP).
pub const DEFAULT_JOIN_DELAY_MS: u64 = 1500;

/// The secret an access point expects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApSecret {
    /// Open network.
    None,
    /// A WPA2/WPA3 passphrase.
    Passphrase(String),
    /// A raw 256-bit WPA2 PSK.
    RawPsk([u8; 32]),
}

/// An access point in range of a device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApModel {
    /// Its SSID.
    pub ssid: Vec<u8>,
    /// Its security mode.
    pub security: Security,
    /// The secret it accepts.
    pub secret: ApSecret,
    /// Its channel.
    pub channel: u8,
}

impl ApModel {
    /// A WPA2-PSK access point with a passphrase.
    pub fn wpa2(ssid: &str, passphrase: &str, channel: u8) -> Self {
        Self {
            ssid: ssid.as_bytes().to_vec(),
            security: Security::Wpa2Psk,
            secret: ApSecret::Passphrase(passphrase.to_owned()),
            channel,
        }
    }

    /// Whether this AP accepts `credential` for `security`. Passphrases and raw PSKs are
    /// compared as given (the model does not derive a PSK from a passphrase).
    fn accepts(&self, security: Security, credential: &Credential<'_>) -> bool {
        if security != self.security {
            return false;
        }
        match (&self.secret, credential) {
            (ApSecret::None, Credential::None) => true,
            (ApSecret::Passphrase(expected), Credential::Passphrase(given)) => {
                expected.as_bytes() == given.as_bytes()
            }
            (ApSecret::RawPsk(expected), Credential::RawPsk(given)) => expected == *given,
            _ => false,
        }
    }
}

/// The outcome of a simulated join: the first network of the configuration that an AP in
/// range accepts wins; otherwise AuthFailed if some AP had a configured SSID, else ApNotFound.
pub fn simulate_join(config: &ConfigView<'_>, aps: &[ApModel]) -> Result<(), FailureReason> {
    let mut ssid_seen = false;
    for network in config.networks() {
        for ap in aps.iter().filter(|ap| ap.ssid == network.ssid) {
            ssid_seen = true;
            if ap.accepts(network.security, &network.credential) {
                return Ok(());
            }
        }
    }
    Err(if ssid_seen {
        FailureReason::AuthFailed
    } else {
        FailureReason::ApNotFound
    })
}

/// When a join of `delay_ms` started at `now` ends, and how: cut at the driver's bound, if
/// any, as [`FailureReason::Timeout`].
fn join_outcome(
    delay_ms: u64,
    bound_ms: Option<u64>,
    now: Instant,
    result: Result<(), FailureReason>,
) -> (Instant, Result<(), FailureReason>) {
    match bound_ms {
        Some(bound) if delay_ms > bound => (now + bound, Err(FailureReason::Timeout)),
        _ => (now + delay_ms, result),
    }
}

/// What the device committed when it was provisioned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Commit {
    /// Virtual time of the commit, ms.
    pub at: Instant,
    /// What the enrollee says to persist (owner, configurator, channel, time).
    pub provisioned: Provisioned,
    /// The encoded configuration object it received and joined with.
    pub config: Vec<u8>,
}

/// Everything the device's driver observed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EnrolleeRecord {
    /// When the device was switched on, ms.
    pub started_at: Instant,
    /// Configurators that authenticated, with the time.
    pub authenticated: Vec<(Instant, PublicKey)>,
    /// Configurators the device refused.
    pub rejected: Vec<(Instant, RejectReason)>,
    /// Every configuration received (encoded), with the time.
    pub configs_received: Vec<(Instant, Vec<u8>)>,
    /// Every join attempt's result.
    pub join_results: Vec<(Instant, Result<(), FailureReason>)>,
    /// Attempts that ended without provisioning.
    pub attempt_failures: Vec<(Instant, AttemptFailure)>,
    /// The commit, once provisioned.
    pub commit: Option<Commit>,
    /// Channel changes the enrollee asked for.
    pub channel_changes: u64,
}

impl EnrolleeRecord {
    /// Virtual time from switch-on to commit, ms.
    pub fn time_to_provision(&self) -> Option<Instant> {
        self.commit
            .as_ref()
            .map(|c| c.at.saturating_sub(self.started_at))
    }
}

/// Whether the device runs yet.
enum Power {
    /// Switched off until `at`; the state machine is created at power-on from `boot`.
    Off {
        at: Instant,
        boot: Option<Box<(EnrolleeSettings, ChaCha8Rng)>>,
    },
    /// Running.
    On(Box<Enrollee<ChaCha8Rng>>),
}

/// A simulated enrollee device.
pub struct EnrolleeNode {
    addr: Addr,
    key_hash: KeyHash,
    power: Power,
    aps: Vec<ApModel>,
    join_delay_ms: u64,
    /// `Some(timeout)`: the radio is off the channel while joining, bounded by `timeout`.
    off_channel_join: Option<u64>,
    pending_join: Option<(Instant, Result<(), FailureReason>)>,
    hears_broadcast: bool,
    record: EnrolleeRecord,
    /// Time of the latest call into the node (transmits are polled at that instant).
    now: Instant,
}

impl EnrolleeNode {
    /// A device at `addr` that switches on at `now`, with the APs it can reach.
    pub fn new(
        addr: Addr,
        settings: EnrolleeSettings,
        rng: ChaCha8Rng,
        now: Instant,
        aps: Vec<ApModel>,
    ) -> Self {
        let mut node = Self::switched_on_at(addr, settings, rng, now, aps);
        node.power_on(now);
        node
    }

    /// A device at `addr` that is off until `at` (its radio is silent and deaf until then).
    pub fn switched_on_at(
        addr: Addr,
        settings: EnrolleeSettings,
        rng: ChaCha8Rng,
        at: Instant,
        aps: Vec<ApModel>,
    ) -> Self {
        let key_hash = settings.identity.public_key().key_hash();
        Self {
            addr,
            key_hash,
            power: Power::Off {
                at,
                boot: Some(Box::new((settings, rng))),
            },
            aps,
            join_delay_ms: DEFAULT_JOIN_DELAY_MS,
            off_channel_join: None,
            pending_join: None,
            hears_broadcast: false,
            record: EnrolleeRecord {
                started_at: at,
                ..EnrolleeRecord::default()
            },
            now: at,
        }
    }

    /// Creates the state machine (it starts announcing at `now`).
    fn power_on(&mut self, now: Instant) {
        if let Power::Off { boot, .. } = &mut self.power
            && let Some(boot) = boot.take()
        {
            let (settings, rng) = *boot;
            self.power = Power::On(Box::new(Enrollee::new(settings, rng, now)));
            self.drain_events(now);
        }
    }

    fn running(&self) -> Option<&Enrollee<ChaCha8Rng>> {
        match &self.power {
            Power::On(enrollee) => Some(enrollee),
            Power::Off { .. } => None,
        }
    }

    /// Sets how long a join attempt takes (virtual ms).
    pub fn with_join_delay(mut self, join_delay_ms: u64) -> Self {
        self.join_delay_ms = join_delay_ms;
        self
    }

    /// Takes the radio off the ESP-NOW channel for the whole join, as a single-radio device
    /// does, and bounds the join at `timeout_ms`: a longer one ends then, as
    /// [`FailureReason::Timeout`] (the ESP32-C3 firmware's `JOIN_TIMEOUT`).
    pub fn with_off_channel_join(mut self, timeout_ms: u64) -> Self {
        self.off_channel_join = Some(timeout_ms);
        self
    }

    /// Whether the radio is away joining a network (deaf and silent on ESP-NOW).
    fn radio_away(&self) -> bool {
        self.off_channel_join.is_some() && self.pending_join.is_some()
    }

    /// Delivers every broadcast frame to the enrollee (off by default: of the broadcasts it
    /// hears only configurators' Beacons, not the other devices' Announces).
    pub fn with_broadcasts(mut self, hears: bool) -> Self {
        self.hears_broadcast = hears;
        self
    }

    /// The device's key hash (its allowlist identifier).
    pub fn key_hash(&self) -> KeyHash {
        self.key_hash
    }

    /// The protocol state machine (read-only); `None` before power-on.
    pub fn enrollee(&self) -> Option<&Enrollee<ChaCha8Rng>> {
        self.running()
    }

    /// What the driver observed.
    pub fn record(&self) -> &EnrolleeRecord {
        &self.record
    }

    /// The enrollee's counters.
    pub fn stats(&self) -> EnrolleeStats {
        self.running().map(Enrollee::stats).unwrap_or_default()
    }

    /// The access points in range; tests change them (e.g. rotate a PSK).
    pub fn aps_mut(&mut self) -> &mut Vec<ApModel> {
        &mut self.aps
    }

    fn drain_events(&mut self, now: Instant) {
        let Power::On(enrollee) = &mut self.power else {
            return;
        };
        while let Some(event) = enrollee.poll_event() {
            match event {
                EnrolleeEvent::ChannelChanged(_) => self.record.channel_changes += 1,
                EnrolleeEvent::Authenticated { configurator, .. } => {
                    self.record.authenticated.push((now, configurator))
                }
                EnrolleeEvent::ConfiguratorRejected(reason) => {
                    self.record.rejected.push((now, reason))
                }
                EnrolleeEvent::ConfigReceived => {
                    let (bytes, result) = match enrollee.config() {
                        Some(view) => (view.as_bytes().to_vec(), simulate_join(&view, &self.aps)),
                        None => (Vec::new(), Err(FailureReason::ConfigRejected)),
                    };
                    self.record.configs_received.push((now, bytes));
                    self.pending_join = Some(join_outcome(
                        self.join_delay_ms,
                        self.off_channel_join,
                        now,
                        result,
                    ));
                }
                EnrolleeEvent::Provisioned(provisioned) => {
                    let config = self
                        .record
                        .configs_received
                        .last()
                        .map(|(_, c)| c.clone())
                        .unwrap_or_default();
                    self.record.commit = Some(Commit {
                        at: now,
                        provisioned,
                        config,
                    });
                }
                EnrolleeEvent::AttemptFailed(failure) => {
                    // A new attempt discards any join still in progress.
                    self.pending_join = None;
                    self.record.attempt_failures.push((now, failure));
                }
            }
        }
    }
}

impl Node for EnrolleeNode {
    fn addr(&self) -> Addr {
        self.addr
    }

    fn channel(&self) -> u8 {
        // 0: radio off (or away joining).
        if self.radio_away() {
            return 0;
        }
        self.running().map_or(0, Enrollee::channel)
    }

    fn handle_frame(&mut self, now: Instant, src: Addr, frame: &[u8]) {
        self.now = now;
        if let Power::On(enrollee) = &mut self.power {
            enrollee.handle_frame(now, src, frame);
            self.drain_events(now);
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        if let Power::Off { at, .. } = self.power
            && at <= now
        {
            self.power_on(now);
        }
        let Power::On(enrollee) = &mut self.power else {
            return;
        };
        if let Some((at, result)) = self.pending_join
            && at <= now
        {
            self.pending_join = None;
            self.record.join_results.push((now, result));
            // WrongState means the attempt already ended (e.g. the configurator aborted).
            let _ = enrollee.report_join(now, result);
        }
        if enrollee.poll_timeout().is_some_and(|t| t <= now) {
            enrollee.handle_timeout(now);
        }
        self.drain_events(now);
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        if self.radio_away() {
            return None;
        }
        let Power::On(enrollee) = &mut self.power else {
            return None;
        };
        let transmit = enrollee.poll_transmit();
        if transmit.is_none() {
            // Draining the transmits can release events (ConfigReceived follows its Ack).
            self.drain_events(self.now);
        }
        transmit
    }

    fn poll_timeout(&self) -> Option<Instant> {
        let enrollee = match &self.power {
            Power::On(enrollee) => enrollee,
            Power::Off { at, .. } => return Some(*at),
        };
        let join = self.pending_join.map(|(at, _)| at);
        match (enrollee.poll_timeout(), join) {
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

    fn hears_broadcast(&self) -> bool {
        self.hears_broadcast
    }

    fn hears_beacons(&self) -> bool {
        // A configurator's presence; a provisioned device no longer listens.
        !self.is_finished()
    }

    fn is_finished(&self) -> bool {
        self.running()
            .is_some_and(|e| e.state() == EnrolleeState::Provisioned)
    }
}
