//! [`Fleet`]: the common scenario in one builder. N enrollees (the first M allowlisted),
//! K configurators on chosen channels (each serving its share of the allowlist, or all of
//! it), one WPA2-PSK access point, a radio with loss/duplication/reordering, and one seed
//! from which every key, nonce and radio decision is derived. [`FleetRun::run`] runs it
//! until every allowlisted device is provisioned (or a deadline) and returns a
//! [`FleetReport`] with per-device and fleet-wide figures.

use std::collections::BTreeSet;
use std::fmt;

use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};
use zerotouch_proto::config::{ConfigWriter, Credential, MAX_CONFIG_LEN, Network, Security};
use zerotouch_proto::configurator::{
    ConfiguratorIdentity, ConfiguratorLimits, ConfiguratorSettings,
};
use zerotouch_proto::enrollee::{EnrolleeSettings, EnrolleeTiming, Trust};
use zerotouch_proto::{
    Addr, AnnounceMode, ConfiguratorCert, Instant, KeyHash, PublicKey, SigningIdentity, SuiteId,
};

use crate::configurator_node::ConfiguratorNode;
use crate::enrollee_node::{ApModel, DEFAULT_JOIN_DELAY_MS, EnrolleeNode};
use crate::radio::{LinkModel, RadioConfig};
use crate::sim::{NodeId, SimReport, Simulator};

/// Unix time the simulated configurators report (2027-01-15).
pub const SIM_UNIX_TIME: u32 = 1_800_000_000;
/// Validity of the configurator certificates the fleet issues.
pub const CERT_VALIDITY_S: u32 = 365 * 24 * 3600;

/// Which suite the enrollees use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SuiteChoice {
    /// Every enrollee on one suite.
    Only(SuiteId),
    /// Alternate: even devices Ed25519, odd devices P-256.
    Mixed,
}

impl SuiteChoice {
    fn for_device(self, index: usize) -> SuiteId {
        match self {
            Self::Only(suite) => suite,
            Self::Mixed if index.is_multiple_of(2) => SuiteId::Ed25519,
            Self::Mixed => SuiteId::P256,
        }
    }
}

/// Failure to build a fleet (bad parameters or a protocol-layer refusal).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FleetError {
    /// A parameter is out of range; the message says which and why.
    BadParameter(&'static str),
    /// The protocol crate refused something (certificate, configuration object).
    Protocol(String),
}

impl fmt::Display for FleetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadParameter(what) => write!(f, "bad fleet parameter: {what}"),
            Self::Protocol(what) => write!(f, "protocol layer refused the fleet setup: {what}"),
        }
    }
}

impl std::error::Error for FleetError {}

/// Builder for a simulated fleet.
#[derive(Clone, Debug)]
pub struct Fleet {
    seed: u64,
    devices: usize,
    allowlisted: Option<usize>,
    configurator_channels: Vec<u8>,
    shared_allowlist: bool,
    suite: SuiteChoice,
    radio: RadioConfig,
    join_delay_ms: u64,
    off_channel_join: Option<u64>,
    pin_owner: bool,
    ssid: String,
    passphrase: String,
    ap_channel: u8,
    settings_bytes: usize,
    power_on_spread_ms: u64,
    enrollees_hear_broadcasts: bool,
    enrollee_timing: Option<EnrolleeTiming>,
    limits: Option<ConfiguratorLimits>,
}

impl Fleet {
    /// A fleet of 10 allowlisted Ed25519 devices and one configurator on channel 6, on a
    /// perfect radio.
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            devices: 10,
            allowlisted: None,
            configurator_channels: vec![6],
            shared_allowlist: false,
            suite: SuiteChoice::Only(SuiteId::Ed25519),
            radio: RadioConfig::default(),
            join_delay_ms: DEFAULT_JOIN_DELAY_MS,
            off_channel_join: None,
            pin_owner: false,
            ssid: "zerotouch-sim-net".to_owned(),
            passphrase: "correct horse battery staple".to_owned(),
            ap_channel: 6,
            settings_bytes: 0,
            power_on_spread_ms: 0,
            enrollees_hear_broadcasts: false,
            enrollee_timing: None,
            limits: None,
        }
    }

    /// Number of enrollees.
    pub fn devices(mut self, n: usize) -> Self {
        self.devices = n;
        self
    }

    /// How many of them (the first ones) are allowlisted; default all.
    pub fn allowlisted(mut self, m: usize) -> Self {
        self.allowlisted = Some(m);
        self
    }

    /// One configurator per entry, on that channel. An empty list builds none: the caller
    /// adds its own configurator node (e.g. one backed by a real registry) and reads the
    /// device keys from [`FleetRun::keys`].
    pub fn configurators_on(mut self, channels: &[u8]) -> Self {
        self.configurator_channels = channels.to_vec();
        self
    }

    /// True: every configurator has the whole allowlist. False (default): device i is
    /// allowlisted only at configurator i mod K.
    pub fn shared_allowlist(mut self, shared: bool) -> Self {
        self.shared_allowlist = shared;
        self
    }

    /// Enrollee suite(s).
    pub fn suite(mut self, suite: SuiteChoice) -> Self {
        self.suite = suite;
        self
    }

    /// The radio (PHY rate, default link model, recorder on/off).
    pub fn radio(mut self, radio: RadioConfig) -> Self {
        self.radio = radio;
        self
    }

    /// Loss probability on every link, with duplication and reordering at half of it.
    pub fn lossy(mut self, loss: f64) -> Self {
        self.radio.link = LinkModel::lossy(loss);
        self
    }

    /// Default link model.
    pub fn link(mut self, link: LinkModel) -> Self {
        self.radio.link = link;
        self
    }

    /// Keep every frame in the recorder (on by default; off for large fleets).
    pub fn record_frames(mut self, record: bool) -> Self {
        self.radio.record_frames = record;
        self
    }

    /// Virtual time a join attempt takes.
    pub fn join_delay_ms(mut self, ms: u64) -> Self {
        self.join_delay_ms = ms;
        self
    }

    /// Every enrollee's radio leaves the ESP-NOW channel while it joins, and the join is
    /// bounded at `timeout_ms` (see [`EnrolleeNode::with_off_channel_join`]).
    pub fn off_channel_join(mut self, timeout_ms: u64) -> Self {
        self.off_channel_join = Some(timeout_ms);
        self
    }

    /// Pin the owner key in every enrollee (otherwise trust on first use).
    pub fn pin_owner(mut self, pin: bool) -> Self {
        self.pin_owner = pin;
        self
    }

    /// The access point (and the network the configurators hand out).
    pub fn network(mut self, ssid: &str, passphrase: &str, channel: u8) -> Self {
        self.ssid = ssid.to_owned();
        self.passphrase = passphrase.to_owned();
        self.ap_channel = channel;
        self
    }

    /// Adds an application setting of this many bytes to every configuration object
    /// (exercises fragmentation).
    pub fn settings_bytes(mut self, n: usize) -> Self {
        self.settings_bytes = n;
        self
    }

    /// Switch the devices on at independent uniformly random times within the first
    /// `ms` milliseconds instead of all at time 0 (an installer powering a building up).
    /// Times to provision are counted from each device's own power-on.
    pub fn power_on_spread_ms(mut self, ms: u64) -> Self {
        self.power_on_spread_ms = ms;
        self
    }

    /// Deliver broadcast frames (other devices' announcements) to the enrollees too. Off
    /// by default: enrollees drop them, and with thousands of devices the deliveries would
    /// dominate the run time. A test checks that it changes nothing on air.
    pub fn enrollees_hear_broadcasts(mut self, hear: bool) -> Self {
        self.enrollees_hear_broadcasts = hear;
        self
    }

    /// Enrollee timers (default: the protocol's).
    pub fn enrollee_timing(mut self, timing: EnrolleeTiming) -> Self {
        self.enrollee_timing = Some(timing);
        self
    }

    /// Configurator limits (default: the protocol's).
    pub fn limits(mut self, limits: ConfiguratorLimits) -> Self {
        self.limits = Some(limits);
        self
    }

    /// The address of enrollee `index`.
    pub fn enrollee_addr(index: usize) -> Addr {
        let i = (index as u32).to_be_bytes();
        Addr([0x02, 0x5a, i[0], i[1], i[2], i[3]])
    }

    /// The address of configurator `index`.
    pub fn configurator_addr(index: usize) -> Addr {
        let i = (index as u32).to_be_bytes();
        Addr([0x02, 0xc0, i[0], i[1], i[2], i[3]])
    }

    /// Builds the simulation: keys, certificates, configuration objects, nodes.
    pub fn build(&self) -> Result<FleetRun, FleetError> {
        if !self
            .configurator_channels
            .iter()
            .all(|&c| crate::radio::is_valid_channel(c))
        {
            return Err(FleetError::BadParameter(
                "configurator channels must be 1..=13",
            ));
        }
        let allowlisted = self.allowlisted.unwrap_or(self.devices);
        if allowlisted > self.devices {
            return Err(FleetError::BadParameter(
                "more allowlisted devices than devices",
            ));
        }
        let mut master = ChaCha8Rng::seed_from_u64(self.seed);
        // A stream of its own, so that spreading power-on changes no key or nonce.
        let mut power_on = ChaCha8Rng::seed_from_u64(self.seed ^ 0x706f_7765_725f_6f6e);
        let mut sim = Simulator::new(self.radio.clone(), master.next_u64());

        // One owner key per suite, so that either kind of enrollee can verify its chain.
        let owners: Vec<SigningIdentity> = SuiteId::ALL
            .iter()
            .map(|&suite| SigningIdentity::generate(suite, &mut master))
            .collect();
        let owner_public = |suite: SuiteId| -> PublicKey {
            let index = SuiteId::ALL.iter().position(|&s| s == suite).unwrap_or(0);
            owners[index].public_key()
        };

        let config = self.config_object()?;
        let ap = ApModel::wpa2(&self.ssid, &self.passphrase, self.ap_channel);

        // Enrollees: identity keys first (the allowlists need their hashes).
        // With no configurators (a caller adds its own), the allowlist still says which
        // devices count as permitted in the report.
        let k = self.configurator_channels.len().max(1);
        let mut allowlists = vec![BTreeSet::new(); k];
        let mut enrollees = Vec::with_capacity(self.devices);
        let mut keys = Vec::with_capacity(self.devices);
        for index in 0..self.devices {
            let suite = self.suite.for_device(index);
            let identity = SigningIdentity::generate(suite, &mut master);
            let key = identity.public_key().key_hash();
            keys.push(key);
            if index < allowlisted {
                if self.shared_allowlist {
                    allowlists.iter_mut().for_each(|a| {
                        a.insert(key);
                    });
                } else {
                    allowlists[index % k].insert(key);
                }
            }
            let pinned = self.pin_owner.then(|| owner_public(suite));
            let mut settings = new_device_settings(identity, pinned);
            if let Some(timing) = self.enrollee_timing {
                settings.timing = timing;
            }
            let rng = ChaCha8Rng::seed_from_u64(master.next_u64());
            let at = match self.power_on_spread_ms {
                0 => 0,
                spread => power_on.next_u64() % spread,
            };
            let addr = Self::enrollee_addr(index);
            let mut node = if at == 0 {
                EnrolleeNode::new(addr, settings, rng, 0, vec![ap.clone()])
            } else {
                EnrolleeNode::switched_on_at(addr, settings, rng, at, vec![ap.clone()])
            }
            .with_join_delay(self.join_delay_ms)
            .with_broadcasts(self.enrollees_hear_broadcasts);
            if let Some(timeout) = self.off_channel_join {
                node = node.with_off_channel_join(timeout);
            }
            enrollees.push(node);
        }

        let mut configurators = Vec::with_capacity(k);
        for (index, (&channel, allowlist)) in self
            .configurator_channels
            .iter()
            .zip(allowlists)
            .enumerate()
        {
            let mut identities = heapless::Vec::new();
            for (owner, &suite) in owners.iter().zip(SuiteId::ALL.iter()) {
                let identity = SigningIdentity::generate(suite, &mut master);
                let cert = ConfiguratorCert::issue(
                    owner,
                    &identity.public_key(),
                    SIM_UNIX_TIME + CERT_VALIDITY_S,
                )
                .map_err(|e| FleetError::Protocol(format!("certificate: {e}")))?;
                let _ = identities.push(ConfiguratorIdentity {
                    identity,
                    cert,
                    owner: owner.public_key(),
                });
            }
            let settings = ConfiguratorSettings {
                identities,
                channel,
                unix_time: SIM_UNIX_TIME,
                limits: self.limits.unwrap_or_else(default_limits),
            };
            let rng = ChaCha8Rng::seed_from_u64(master.next_u64());
            let node = ConfiguratorNode::new(
                Self::configurator_addr(index),
                settings,
                rng,
                allowlist,
                Some(config.clone()),
            );
            configurators.push(sim.add_node(Box::new(node)));
        }
        let enrollee_ids = enrollees
            .into_iter()
            .map(|node| sim.add_node(Box::new(node)))
            .collect();

        Ok(FleetRun {
            sim,
            enrollees: enrollee_ids,
            configurators,
            keys,
            allowlisted,
            seed: self.seed,
            owners: owners.iter().map(SigningIdentity::public_key).collect(),
            ssid: self.ssid.as_bytes().to_vec(),
            passphrase: self.passphrase.as_bytes().to_vec(),
            config,
        })
    }

    fn config_object(&self) -> Result<Vec<u8>, FleetError> {
        let mut buf = vec![0u8; MAX_CONFIG_LEN];
        let settings_value = vec![0x5a; self.settings_bytes];
        let mut writer = ConfigWriter::new(&mut buf);
        writer
            .network(&Network {
                ssid: self.ssid.as_bytes(),
                security: Security::Wpa2Psk,
                credential: Credential::Passphrase(&self.passphrase),
                bssid: None,
                channel: Some(self.ap_channel),
            })
            .map_err(|e| FleetError::Protocol(format!("network entry: {e:?}")))?;
        if self.settings_bytes > 0 {
            writer
                .setting("app.blob", &settings_value)
                .map_err(|e| FleetError::Protocol(format!("setting: {e:?}")))?;
        }
        let len = writer
            .finish()
            .map_err(|e| FleetError::Protocol(format!("config object: {e:?}")))?;
        buf.truncate(len);
        Ok(buf)
    }
}

/// A built fleet, ready to run (or already run).
pub struct FleetRun {
    /// The simulator, with every node in it.
    pub sim: Simulator,
    /// Enrollee node ids, by device index.
    pub enrollees: Vec<NodeId>,
    /// Configurator node ids, by configurator index.
    pub configurators: Vec<NodeId>,
    /// Key hash of each device.
    pub keys: Vec<KeyHash>,
    /// The first `allowlisted` devices are allowlisted.
    pub allowlisted: usize,
    /// The seed it was built from.
    pub seed: u64,
    /// The owner public keys (one per suite, in `SuiteId::ALL` order).
    pub owners: Vec<PublicKey>,
    /// The network name handed out (for secrecy checks).
    pub ssid: Vec<u8>,
    /// The passphrase handed out (for secrecy checks).
    pub passphrase: Vec<u8>,
    /// The configuration object every device gets.
    pub config: Vec<u8>,
}

impl FleetRun {
    /// Runs until every allowlisted device is provisioned or virtual time reaches
    /// `deadline` (ms); returns the report.
    pub fn run(&mut self, deadline: Instant) -> FleetReport {
        let target = self.allowlisted;
        self.sim
            .run_while(deadline, |sim| sim.finished_count() < target);
        self.report()
    }

    /// The enrollee node of device `index`.
    pub fn enrollee(&self, index: usize) -> Option<&EnrolleeNode> {
        self.sim
            .node_as::<EnrolleeNode>(*self.enrollees.get(index)?)
    }

    /// Configurator node `index`.
    pub fn configurator(&self, index: usize) -> Option<&ConfiguratorNode> {
        self.sim
            .node_as::<ConfiguratorNode>(*self.configurators.get(index)?)
    }

    /// Per-device and fleet figures now.
    pub fn report(&self) -> FleetReport {
        let mut devices = Vec::with_capacity(self.enrollees.len());
        for (index, &id) in self.enrollees.iter().enumerate() {
            let air = self.sim.air_stats(id).unwrap_or_default();
            let Some(node) = self.sim.node_as::<EnrolleeNode>(id) else {
                continue;
            };
            let record = node.record();
            devices.push(DeviceReport {
                index,
                addr: Fleet::enrollee_addr(index),
                key: node.key_hash(),
                allowlisted: index < self.allowlisted,
                provisioned_at: record.commit.as_ref().map(|c| c.at),
                time_to_provision_ms: record.time_to_provision(),
                frames_sent: air.frames_sent,
                bytes_sent: air.bytes_sent,
                frames_addressed: air.frames_addressed,
                bytes_addressed: air.bytes_addressed,
                retransmissions: node.stats().retransmissions,
                failed_attempts: record.attempt_failures.len(),
            });
        }
        let mut times: Vec<u64> = devices
            .iter()
            .filter_map(|d| d.time_to_provision_ms)
            .collect();
        times.sort_unstable();
        let percentile = |p: f64| -> Option<u64> {
            if times.is_empty() {
                return None;
            }
            let rank = ((times.len() as f64 * p).ceil() as usize).clamp(1, times.len());
            Some(times[rank - 1])
        };
        let sim = self.sim.report();
        let elapsed = sim.now_us.max(1);
        let utilisation = sim
            .channels
            .iter()
            .enumerate()
            .filter(|(_, c)| c.frames > 0)
            .map(|(ch, c)| (ch as u8, c.busy_us as f64 / elapsed as f64))
            .collect();
        FleetReport {
            seed: self.seed,
            devices: devices.len(),
            allowlisted: self.allowlisted,
            provisioned: devices
                .iter()
                .filter(|d| d.allowlisted && d.provisioned_at.is_some())
                .count(),
            refused: devices
                .iter()
                .filter(|d| !d.allowlisted && d.provisioned_at.is_none())
                .count(),
            wrongly_provisioned: devices
                .iter()
                .filter(|d| !d.allowlisted && d.provisioned_at.is_some())
                .count(),
            median_ms: percentile(0.5),
            p99_ms: percentile(0.99),
            max_ms: times.last().copied(),
            last_provisioned_ms: devices.iter().filter_map(|d| d.provisioned_at).max(),
            utilisation,
            sim,
            per_device: devices,
        }
    }
}

/// Figures of one device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceReport {
    /// Device index in the fleet.
    pub index: usize,
    /// Its address.
    pub addr: Addr,
    /// Its key hash.
    pub key: KeyHash,
    /// Whether it was allowlisted.
    pub allowlisted: bool,
    /// Virtual time of its commit, ms.
    pub provisioned_at: Option<Instant>,
    /// Switch-on to commit, ms.
    pub time_to_provision_ms: Option<u64>,
    /// Frames it sent.
    pub frames_sent: u64,
    /// Their bytes.
    pub bytes_sent: u64,
    /// Unicast frames addressed to it.
    pub frames_addressed: u64,
    /// Their bytes.
    pub bytes_addressed: u64,
    /// Its retransmissions (from the enrollee's counters).
    pub retransmissions: u32,
    /// Attempts that ended without provisioning.
    pub failed_attempts: usize,
}

/// Figures of a fleet run.
#[derive(Clone, Debug, PartialEq)]
pub struct FleetReport {
    /// Seed of the run.
    pub seed: u64,
    /// Devices in the fleet.
    pub devices: usize,
    /// Of those, allowlisted.
    pub allowlisted: usize,
    /// Allowlisted devices provisioned.
    pub provisioned: usize,
    /// Devices not allowlisted and not provisioned (as it must be).
    pub refused: usize,
    /// Devices not allowlisted but provisioned (must be 0).
    pub wrongly_provisioned: usize,
    /// Median time to provision, ms.
    pub median_ms: Option<u64>,
    /// 99th percentile, ms.
    pub p99_ms: Option<u64>,
    /// Slowest, ms.
    pub max_ms: Option<u64>,
    /// When the last device was provisioned, ms of virtual time.
    pub last_provisioned_ms: Option<Instant>,
    /// Share of the run's virtual time each used channel was busy.
    pub utilisation: Vec<(u8, f64)>,
    /// Engine totals.
    pub sim: SimReport,
    /// Per device.
    pub per_device: Vec<DeviceReport>,
}

impl fmt::Display for FleetReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |v: Option<u64>| {
            v.map_or_else(|| "-".to_owned(), |v| format!("{:.3} s", v as f64 / 1000.0))
        };
        writeln!(
            f,
            "seed {}: {} devices, {} allowlisted",
            self.seed, self.devices, self.allowlisted
        )?;
        writeln!(
            f,
            "provisioned {}/{} allowlisted; refused {} (not allowlisted); wrongly provisioned {}",
            self.provisioned, self.allowlisted, self.refused, self.wrongly_provisioned
        )?;
        writeln!(
            f,
            "time to provision: median {}, p99 {}, max {}; last device at {}",
            ms(self.median_ms),
            ms(self.p99_ms),
            ms(self.max_ms),
            ms(self.last_provisioned_ms)
        )?;
        writeln!(
            f,
            "on air: {} frames, {} bytes; lost {}, duplicated {}, gave up on busy channel {}; {} events; virtual time {:.3} s",
            self.sim.frames_on_air,
            self.sim.bytes_on_air,
            self.sim.lost,
            self.sim.duplicated,
            self.sim.access_dropped,
            self.sim.events,
            self.sim.now_us as f64 / 1e6
        )?;
        let util: Vec<String> = self
            .utilisation
            .iter()
            .map(|(ch, u)| format!("ch{ch} {:.1} %", u * 100.0))
            .collect();
        writeln!(f, "airtime utilisation: {}", util.join(", "))
    }
}

/// Settings of a factory-fresh device: never provisioned, no failure, no known time or
/// channel; `pinned_owner` pinned if given (otherwise trust on first use).
pub fn new_device_settings(
    identity: SigningIdentity,
    pinned_owner: Option<PublicKey>,
) -> EnrolleeSettings {
    let trust = match pinned_owner {
        // One key of the identity's suite (the fleet builds it so): cannot fail.
        Some(owner) => Trust::pinned(identity.suite(), [owner]).unwrap_or(Trust::FirstUse),
        None => Trust::FirstUse,
    };
    EnrolleeSettings {
        identity,
        trust,
        mode: AnnounceMode::New,
        last_failure: None,
        last_channel: None,
        known_unix_time: 0,
        timing: default_timing(),
        // A factory-fresh device's first boot.
        boot_counter: 1,
    }
}

/// The enrollee timers a fleet uses unless told otherwise: the protocol's defaults.
pub fn default_timing() -> EnrolleeTiming {
    EnrolleeTiming::default()
}

/// The configurator limits a fleet uses unless told otherwise: the protocol's defaults.
pub fn default_limits() -> ConfiguratorLimits {
    ConfiguratorLimits::default()
}
