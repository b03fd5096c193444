//! A tiny deterministic in-memory harness: one enrollee, one configurator, a frame queue,
//! virtual time and a programmable link (loss, duplication, delay, tampering). The
//! simulator crate does fleets; this is for protocol tests of one session.
#![allow(dead_code)]

use std::collections::BTreeSet;

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use zerotouch_proto::config::{ConfigView, ConfigWriter, Credential, Network, Security};
use zerotouch_proto::configurator::{
    Configurator, ConfiguratorEvent, ConfiguratorIdentity, ConfiguratorLimits, ConfiguratorSettings,
};
use zerotouch_proto::enrollee::{
    Enrollee, EnrolleeEvent, EnrolleeSettings, EnrolleeState, EnrolleeTiming, Trust,
};
use zerotouch_proto::{
    Addr, AnnounceMode, ConfiguratorCert, FailureReason, KeyHash, PublicKey, SigningIdentity,
    SuiteId,
};

pub const E_ADDR: Addr = Addr([2, 0, 0, 0, 0, 1]);
pub const C_ADDR: Addr = Addr([2, 0, 0, 0, 0, 0xc]);
pub const C_CHANNEL: u8 = 6;
pub const UNIX_TIME: u32 = 1_790_000_000;

/// The default limits without presence Beacons: these tests follow one session frame by
/// frame (`tests/beacon.rs` tests the Beacons).
pub fn quiet_limits() -> ConfiguratorLimits {
    ConfiguratorLimits {
        beacon_interval_ms: 0,
        ..ConfiguratorLimits::default()
    }
}

/// A configurator with `identity` on [`C_CHANNEL`] at [`UNIX_TIME`], its RNG seeded `seed`.
pub fn configurator_on_c_channel(
    identity: ConfiguratorIdentity,
    limits: ConfiguratorLimits,
    seed: u64,
) -> Configurator<ChaCha20Rng> {
    let settings = ConfiguratorSettings {
        identities: [identity].into_iter().collect(),
        channel: C_CHANNEL,
        unix_time: UNIX_TIME,
        limits,
    };
    Configurator::new(settings, ChaCha20Rng::seed_from_u64(seed))
}

/// Which way a frame travels.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Dir {
    ToConfigurator,
    ToEnrollee,
}

/// Decides the fate of one frame: the delays (ms) of its copies (empty = lost). May modify
/// the bytes.
pub type Link = Box<dyn FnMut(&mut ChaCha20Rng, Dir, &mut Vec<u8>) -> Vec<u64>>;

/// A perfect link: every frame once, 1 ms later.
pub fn perfect() -> Link {
    Box::new(|_, _, _| vec![1])
}

/// A lossy link: each frame lost with `loss`, duplicated with `dup`, delayed 1..=`jitter` ms
/// (so reordered).
pub fn lossy(loss: f64, dup: f64, jitter: u64) -> Link {
    Box::new(move |rng, _, _| {
        use rand_chacha::rand_core::Rng;
        let unit = |rng: &mut ChaCha20Rng| f64::from(rng.next_u32()) / f64::from(u32::MAX);
        if unit(rng) < loss {
            return vec![];
        }
        let mut delays = vec![1 + u64::from(rng.next_u32()) % jitter];
        if unit(rng) < dup {
            delays.push(1 + u64::from(rng.next_u32()) % jitter);
        }
        delays
    })
}

pub struct Keys {
    pub suite: SuiteId,
    pub owner: SigningIdentity,
    pub configurator: SigningIdentity,
    pub enrollee: SigningIdentity,
}

impl Keys {
    pub fn new(suite: SuiteId, seed: u8) -> Self {
        let mut rng = ChaCha20Rng::from_seed([seed; 32]);
        Keys {
            suite,
            owner: SigningIdentity::generate(suite, &mut rng),
            configurator: SigningIdentity::generate(suite, &mut rng),
            enrollee: SigningIdentity::generate(suite, &mut rng),
        }
    }

    pub fn identity(&self, owner: &SigningIdentity) -> ConfiguratorIdentity {
        let identity =
            SigningIdentity::from_secret_bytes(self.suite, &self.configurator.secret_bytes()[..])
                .unwrap();
        let cert =
            ConfiguratorCert::issue(owner, &identity.public_key(), UNIX_TIME + 86_400).unwrap();
        ConfiguratorIdentity {
            identity,
            cert,
            owner: owner.public_key(),
        }
    }

    pub fn enrollee_settings(&self, pinned: &[PublicKey]) -> EnrolleeSettings {
        EnrolleeSettings {
            identity: SigningIdentity::from_secret_bytes(
                self.suite,
                &self.enrollee.secret_bytes()[..],
            )
            .unwrap(),
            trust: if pinned.is_empty() {
                Trust::FirstUse
            } else {
                Trust::pinned(self.suite, pinned.iter().copied()).unwrap()
            },
            mode: AnnounceMode::New,
            last_failure: None,
            last_channel: None,
            known_unix_time: 0,
            timing: EnrolleeTiming::default(),
            boot_counter: 1,
        }
    }
}

/// A configuration with one WPA2 network and `settings_bytes` of settings (in 1 KiB values).
pub fn config_object(psk: &str, settings_bytes: usize) -> Vec<u8> {
    let mut buf = vec![0u8; 8192];
    let mut w = ConfigWriter::new(&mut buf);
    w.network(&Network {
        ssid: b"factory-floor",
        security: Security::Wpa2Psk,
        credential: Credential::Passphrase(psk),
        bssid: None,
        channel: Some(C_CHANNEL),
    })
    .unwrap();
    let mut left = settings_bytes;
    let mut i = 0;
    while left > 0 {
        let n = left.min(1024);
        let key = format!("setting-{i}");
        let value: Vec<u8> = (0..n).map(|j| (j * 7 + i) as u8).collect();
        w.setting(&key, &value).unwrap();
        left -= n;
        i += 1;
    }
    let len = w.finish().unwrap();
    buf.truncate(len);
    buf
}

pub struct World {
    pub now: u64,
    pub rng: ChaCha20Rng,
    pub enrollee: Enrollee<ChaCha20Rng>,
    pub configurator: Configurator<ChaCha20Rng>,
    pub allowlist: BTreeSet<KeyHash>,
    pub link: Link,
    pub queue: Vec<(u64, u64, Dir, Vec<u8>)>,
    pub seqno: u64,
    /// Every frame put on the air, in order.
    pub air: Vec<(Dir, Vec<u8>)>,
    pub config: Vec<u8>,
    /// The AP's passphrase: a join succeeds when the delivered network's passphrase equals it.
    pub ap_psk: String,
    pub enrollee_events: Vec<EnrolleeEvent>,
    pub configurator_events: Vec<ConfiguratorEvent>,
    pub joined_configs: Vec<Vec<u8>>,
    /// Revoke the key when the configurator reports Authenticated (instead of providing).
    pub revoke_on_authenticated: bool,
}

impl World {
    pub fn new(
        keys: &Keys,
        pinned: &[PublicKey],
        owner: &SigningIdentity,
        link: Link,
        seed: u64,
    ) -> Self {
        Self::with_identity(keys, pinned, keys.identity(owner), link, seed)
    }

    pub fn with_identity(
        keys: &Keys,
        pinned: &[PublicKey],
        identity: ConfiguratorIdentity,
        link: Link,
        seed: u64,
    ) -> Self {
        let configurator = configurator_on_c_channel(identity, quiet_limits(), seed ^ 0xc0);
        let enrollee = Enrollee::new(
            keys.enrollee_settings(pinned),
            ChaCha20Rng::seed_from_u64(seed ^ 0xe0),
            0,
        );
        let mut allowlist = BTreeSet::new();
        allowlist.insert(keys.enrollee.public_key().key_hash());
        World {
            now: 0,
            rng: ChaCha20Rng::seed_from_u64(seed),
            enrollee,
            configurator,
            allowlist,
            link,
            queue: Vec::new(),
            seqno: 0,
            air: Vec::new(),
            config: config_object("correct horse", 64),
            ap_psk: "correct horse".into(),
            enrollee_events: Vec::new(),
            configurator_events: Vec::new(),
            joined_configs: Vec::new(),
            revoke_on_authenticated: false,
        }
    }

    /// Replaces the configurator by a fresh one with `identity` (a daemon restart: every
    /// session and table is gone).
    pub fn restart_configurator(&mut self, identity: ConfiguratorIdentity) {
        self.configurator = configurator_on_c_channel(identity, quiet_limits(), self.seqno ^ 0xc1);
    }

    fn send(&mut self, dir: Dir, frame: &[u8], channel: u8) {
        self.air.push((dir, frame.to_vec()));
        let mut bytes = frame.to_vec();
        for delay in (self.link)(&mut self.rng, dir, &mut bytes) {
            if dir == Dir::ToConfigurator && channel != C_CHANNEL {
                continue; // nobody listens there
            }
            self.seqno += 1;
            self.queue
                .push((self.now + delay, self.seqno, dir, bytes.clone()));
        }
    }

    fn drain(&mut self) {
        loop {
            let mut progress = false;
            while let Some(t) = self.enrollee.poll_transmit() {
                assert!(t.frame.len() <= 250);
                self.send(Dir::ToConfigurator, &t.frame, t.channel);
                progress = true;
            }
            while let Some(t) = self.configurator.poll_transmit() {
                assert!(t.frame.len() <= 250);
                self.send(Dir::ToEnrollee, &t.frame, t.channel);
                progress = true;
            }
            while let Some(ev) = self.configurator.poll_event() {
                progress = true;
                match &ev {
                    ConfiguratorEvent::Authenticated { session, key, .. } => {
                        if self.revoke_on_authenticated {
                            self.allowlist.remove(key);
                            self.configurator.revoke(self.now, key);
                        } else {
                            let _ = self.configurator.provide_config(
                                self.now,
                                *session,
                                &self.config,
                                &self.allowlist,
                            );
                        }
                    }
                    ConfiguratorEvent::JoinReported { session, .. } => {
                        self.configurator.confirm(self.now, *session).unwrap();
                    }
                    _ => {}
                }
                self.configurator_events.push(ev);
            }
            while let Some(ev) = self.enrollee.poll_event() {
                progress = true;
                if ev == EnrolleeEvent::ConfigReceived {
                    let config = self
                        .enrollee
                        .config()
                        .expect("config readable after ConfigReceived");
                    let result = join(&config, &self.ap_psk);
                    self.joined_configs.push(config.as_bytes().to_vec());
                    self.enrollee.report_join(self.now, result).unwrap();
                }
                self.enrollee_events.push(ev);
            }
            if !progress {
                break;
            }
        }
    }

    /// Runs until the enrollee is provisioned or `limit` ms of virtual time pass.
    pub fn run(&mut self, limit: u64) -> bool {
        loop {
            self.drain();
            if self.enrollee.state() == EnrolleeState::Provisioned {
                return true;
            }
            let mut next = self.queue.iter().map(|q| (q.0, q.1)).min();
            let timers = [
                self.enrollee.poll_timeout(),
                self.configurator.poll_timeout(),
            ];
            let timer = timers.into_iter().flatten().min();
            let at = match (next, timer) {
                (Some((q, _)), Some(t)) => q.min(t),
                (Some((q, _)), None) => q,
                (None, Some(t)) => t,
                (None, None) => return false,
            };
            if at > limit {
                return false;
            }
            self.now = self.now.max(at);
            if let Some((q, s)) = next.take()
                && q <= self.now
            {
                let i = self.queue.iter().position(|x| x.1 == s).unwrap();
                let (_, _, dir, bytes) = self.queue.swap_remove(i);
                match dir {
                    Dir::ToConfigurator => {
                        self.configurator
                            .handle_frame(self.now, E_ADDR, &bytes, &self.allowlist)
                    }
                    Dir::ToEnrollee => {
                        if self.enrollee.channel() == C_CHANNEL {
                            self.enrollee.handle_frame(self.now, C_ADDR, &bytes)
                        }
                    }
                }
                continue;
            }
            if self.enrollee.poll_timeout().is_some_and(|t| t <= self.now) {
                self.enrollee.handle_timeout(self.now);
            }
            if self
                .configurator
                .poll_timeout()
                .is_some_and(|t| t <= self.now)
            {
                self.configurator.handle_timeout(self.now);
            }
        }
    }

    pub fn provisioned(&self) -> Option<&zerotouch_proto::enrollee::Provisioned> {
        self.enrollee_events.iter().find_map(|e| match e {
            EnrolleeEvent::Provisioned(p) => Some(p),
            _ => None,
        })
    }
}

/// The fake AP: joins when the first network's passphrase matches.
pub fn join(config: &ConfigView<'_>, ap_psk: &str) -> Result<(), FailureReason> {
    let net = config
        .networks()
        .next()
        .ok_or(FailureReason::ConfigRejected)?;
    match net.credential {
        Credential::Passphrase(p) if p == ap_psk => Ok(()),
        _ => Err(FailureReason::AuthFailed),
    }
}
