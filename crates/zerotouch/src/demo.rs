//! `zerotouch demo`: a whole fleet provisioned over the simulated radio, end to end.
//!
//! It creates a fleet in a fresh embedded registry (owner key, configurator identity, a
//! profile with a per-device PSK, N device keys of which most are allowlisted), then runs
//! the real configurator driver against that registry, as a node of the deterministic radio
//! simulator, with N real enrollees around it on a lossy channel. Every registry write is
//! real (SQLite, audit log included); only the radio and the clock are simulated. It ends
//! with a summary and leaves the registry behind for `zerotouch log` and friends.
//! `--pcap FILE` records every frame on the simulated air as the ESP-NOW 802.11 frames an
//! ESP32 would send, stamped with virtual time from the start of the run.

use std::any::Any;
use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};
use serde::Serialize;
use zeroize::Zeroizing;
use zerotouch_link::espnow::{ESPNOW_VERSION_1, EspNowRepr};
use zerotouch_link::pcap::PcapWriter;
use zerotouch_proto::configurator::{
    ConfiguratorIdentity, ConfiguratorLimits, ConfiguratorSettings,
};
use zerotouch_proto::enrollee::{EnrolleeSettings, EnrolleeTiming, Trust};
use zerotouch_proto::{
    Addr, AnnounceMode, ConfiguratorCert, Instant, SigningIdentity, SuiteId, Transmit,
};
use zerotouch_sim::{
    Adversary, AirFrame, ApModel, EnrolleeNode, LinkModel, Node, NodeId, RadioConfig, Simulator,
    Verdict,
};
use zerotouch_store::{
    CredentialSpec, DeviceFilter, FleetKeys, NetworkSpec, NewDevice, Profile, Registry,
    SecretKeySource, SecurityKind,
};

use crate::cli::Context;
use crate::daemon::driver::{ALLOWLIST_POLL_MS, ConfiguratorDriver, execute};
use crate::error::AppError;

/// Channel of the demo's access point and configurator.
const DEMO_CHANNEL: u8 = 6;
/// SSID of the demo network.
const DEMO_SSID: &str = "zerotouch-demo";
/// Devices are switched on at random times within this window (ms of virtual time).
const POWER_ON_WINDOW_MS: u64 = 5_000;
/// Virtual time between two progress updates.
const PROGRESS_EVERY_MS: u64 = 250;
/// Certificate lifetime of the demo configurator.
const CERT_VALIDITY_S: u32 = 365 * 24 * 3600;

/// Arguments of `zerotouch demo`.
#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Devices in the fleet.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub devices: u32,

    /// Share of the devices that are allowlisted (the others must be refused).
    #[arg(long, default_value_t = 0.9, value_parser = parse_fraction)]
    pub allowlisted_fraction: f64,

    /// Frame loss probability on every link (duplication and reordering at half of it).
    #[arg(long, default_value_t = 0.1, value_parser = parse_fraction)]
    pub loss: f64,

    /// Seed of every random choice of the simulation (keys, loss, timing).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// Cipher suite of the devices' keys.
    #[arg(long, default_value = "ed25519", value_parser = parse_suite)]
    pub suite: SuiteId,

    /// Directory for the fresh registry (must not hold one yet). Default: a new directory
    /// under the system's temporary directory, kept after the run.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,

    /// Give up after this much virtual time (seconds).
    #[arg(long, default_value_t = 600)]
    pub max_virtual_secs: u64,

    /// Record every frame on the simulated air into FILE (pcapng, radiotap + 802.11; open
    /// it in Wireshark with tools/wireshark/zerotouch.lua).
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<PathBuf>,
}

fn parse_fraction(text: &str) -> Result<f64, String> {
    let value: f64 = text
        .parse()
        .map_err(|_| format!("`{text}` is not a number"))?;
    if (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err(format!("{value} is not between 0 and 1"))
    }
}

fn parse_suite(name: &str) -> Result<SuiteId, String> {
    SuiteId::from_name(name).ok_or_else(|| format!("unknown suite `{name}`: use ed25519 or p256"))
}

/// The summary printed at the end (and with `--json`, as JSON).
#[derive(Debug, Serialize)]
pub struct DemoSummary {
    /// Devices in the fleet.
    pub devices: usize,
    /// Of those, allowlisted.
    pub allowlisted: usize,
    /// Allowlisted devices that committed their configuration.
    pub provisioned: usize,
    /// Devices the registry records as provisioned.
    pub registry_provisioned: usize,
    /// Devices that are not allowlisted and got nothing (must be all of them).
    pub refused: usize,
    /// Devices that are not allowlisted but were provisioned (must be 0).
    pub wrongly_provisioned: usize,
    /// Retransmissions by enrollees and the configurator.
    pub retries: u64,
    /// Attempts that ended without provisioning (and were retried).
    pub failed_attempts: usize,
    /// Median time from power-on to commit, virtual ms.
    pub median_ms: Option<u64>,
    /// 99th percentile, virtual ms.
    pub p99_ms: Option<u64>,
    /// Slowest device, virtual ms.
    pub max_ms: Option<u64>,
    /// Virtual time when the run ended, ms.
    pub virtual_ms: u64,
    /// Frames on air.
    pub frames_on_air: u64,
    /// Their body bytes.
    pub bytes_on_air: u64,
    /// Receptions lost to the radio model.
    pub frames_lost: u64,
    /// Channel time the frames occupied (airtime, ACKs and gaps at 1 Mbps), ms.
    pub airtime_ms: u64,
    /// Wall-clock time of the simulation, ms.
    pub wall_ms: u64,
    /// The registry file.
    pub registry: PathBuf,
    /// Records in its audit log.
    pub audit_records: i64,
    /// Loss probability used.
    pub loss: f64,
    /// Seed used.
    pub seed: u64,
    /// Suite used.
    pub suite: &'static str,
}

/// Runs the demo.
pub async fn run(args: DemoArgs, ctx: &Context) -> Result<(), AppError> {
    let dir = demo_dir(args.dir.as_deref())?;
    let registry_path = dir.join("registry.db");
    if registry_path.exists() {
        return Err(AppError::Conflict(format!(
            "{} already holds a registry; the demo needs a fresh one: give another --dir",
            registry_path.display()
        )));
    }
    let capture = match &args.pcap {
        Some(path) => Some(AirCapture::create(path)?),
        None => None,
    };
    let registry_url = registry_path.to_string_lossy().into_owned();
    let key_file = Registry::default_key_file(&registry_path);
    let mut registry = Registry::open(&registry_url, SecretKeySource::File(key_file)).await?;

    let devices = args.devices as usize;
    let allowlisted = ((devices as f64) * args.allowlisted_fraction).round() as usize;
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
    if !ctx.json {
        eprintln!(
            "zerotouch demo: {devices} devices ({allowlisted} allowlisted), {} % loss, seed {}, registry {}",
            args.loss * 100.0,
            args.seed,
            registry_path.display()
        );
    }

    // The fleet: owner and configurator keys for both suites.
    let unix_now = crate::daemon::unix_seconds();
    let mut fleet_keys = Vec::new();
    for suite in SuiteId::ALL {
        let owner = SigningIdentity::generate(suite, &mut rng);
        let configurator = SigningIdentity::generate(suite, &mut rng);
        let cert = ConfiguratorCert::issue(
            &owner,
            &configurator.public_key(),
            unix_now.saturating_add(CERT_VALIDITY_S),
        )?;
        fleet_keys.push(FleetKeys {
            suite,
            owner_public: owner.public_key().as_wire().to_vec(),
            owner_secret: owner.secret_bytes(),
            configurator_public: configurator.public_key().as_wire().to_vec(),
            configurator_secret: configurator.secret_bytes(),
            certificate: cert.to_bytes().to_vec(),
        });
    }
    registry.init_fleet("demo", &fleet_keys).await?;
    registry
        .set_profile(&Profile {
            name: zerotouch_store::DEFAULT_PROFILE.to_owned(),
            networks: vec![NetworkSpec {
                ssid: DEMO_SSID.to_owned(),
                security: SecurityKind::Wpa2Psk,
                credential: CredentialSpec::PerDevice,
                bssid: None,
                channel: Some(DEMO_CHANNEL),
            }],
            settings: [
                (
                    "mqtt.url".to_owned(),
                    "mqtts://broker.demo.example:8883".to_owned(),
                ),
                ("telemetry.interval_s".to_owned(), "30".to_owned()),
            ]
            .into_iter()
            .collect(),
        })
        .await?;

    // Device keys; the first `allowlisted` are on the allowlist, each with its own PSK
    // (which the simulated access point accepts, as hostapd would from the exported file).
    let mut identities = Vec::with_capacity(devices);
    let mut new_devices = Vec::with_capacity(allowlisted);
    for index in 0..devices {
        let identity = SigningIdentity::generate(args.suite, &mut rng);
        if index < allowlisted {
            let mut entry = NewDevice::from_public_key(&identity.public_key());
            entry.label = Some(format!("demo-{index:05}"));
            new_devices.push(entry);
        }
        identities.push(identity);
    }
    registry.allow_many(new_devices).await?;
    let mut psks = Vec::with_capacity(devices);
    for (index, identity) in identities.iter().enumerate() {
        let psk = if index < allowlisted {
            registry
                .device_psk(&identity.public_key().key_hash())
                .await?
        } else {
            Zeroizing::new(format!("not-allowlisted-{index}"))
        };
        psks.push(psk);
    }

    let fleet = registry
        .fleet()
        .await?
        .ok_or_else(|| AppError::Failed("the demo fleet vanished from its registry".into()))?;
    let configurator_identities = crate::daemon::configurator_identities(&fleet)?;
    let owners: Vec<_> = configurator_identities.iter().map(|c| c.owner).collect();
    let configurator_id = configurator_identities[0]
        .identity
        .public_key()
        .key_hash()
        .to_string();
    registry.set_configurator_id(Some(configurator_id));

    let progress = Progress::new(allowlisted, ctx.json);
    let handle = tokio::runtime::Handle::current();
    let sim_registry = registry.clone();
    let loss = args.loss;
    let seed = args.seed;
    let deadline_ms = args.max_virtual_secs.saturating_mul(1000);
    let wall = std::time::Instant::now();
    let outcome = tokio::task::spawn_blocking(move || {
        run_simulation(SimSetup {
            handle,
            registry: sim_registry,
            identities: configurator_identities,
            devices: identities,
            psks,
            owners,
            allowlisted,
            loss,
            seed,
            unix_now,
            deadline_ms,
            progress,
            capture,
        })
    })
    .await
    .map_err(|e| AppError::Failed(format!("the simulation thread failed: {e}")))??;
    let wall_ms = u64::try_from(wall.elapsed().as_millis()).unwrap_or(u64::MAX);

    let registry_provisioned = registry
        .list_devices(&DeviceFilter {
            state: Some("provisioned".into()),
            profile: None,
        })
        .await?
        .len();
    let audit_records = registry.latest_audit_id().await?;
    registry.close().await;

    let summary = DemoSummary {
        devices,
        allowlisted,
        provisioned: outcome.provisioned,
        registry_provisioned,
        refused: outcome.refused,
        wrongly_provisioned: outcome.wrongly_provisioned,
        retries: outcome.retries,
        failed_attempts: outcome.failed_attempts,
        median_ms: outcome.median_ms,
        p99_ms: outcome.p99_ms,
        max_ms: outcome.max_ms,
        virtual_ms: outcome.virtual_ms,
        frames_on_air: outcome.frames_on_air,
        bytes_on_air: outcome.bytes_on_air,
        frames_lost: outcome.frames_lost,
        airtime_ms: outcome.airtime_ms,
        wall_ms,
        registry: registry_path.clone(),
        audit_records,
        loss: args.loss,
        seed: args.seed,
        suite: args.suite.name(),
    };
    if ctx.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&summary).map_err(|e| AppError::Failed(e.to_string()))?
        );
    } else {
        print_summary(&summary);
    }
    if summary.provisioned < summary.allowlisted || summary.wrongly_provisioned > 0 {
        return Err(AppError::Failed(format!(
            "only {} of {} allowlisted devices were provisioned within {} s of virtual time ({} wrongly provisioned)",
            summary.provisioned,
            summary.allowlisted,
            args.max_virtual_secs,
            summary.wrongly_provisioned
        )));
    }
    Ok(())
}

/// The demo directory: the one given (created if missing), or a fresh temporary one.
fn demo_dir(given: Option<&Path>) -> Result<PathBuf, AppError> {
    match given {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .map_err(|e| AppError::io(format!("cannot create {}", dir.display()), e))?;
            Ok(dir.to_path_buf())
        }
        None => {
            let dir = tempfile::Builder::new()
                .prefix("zerotouch-demo-")
                .tempdir()
                .map_err(|e| {
                    AppError::io(
                        "cannot create a temporary directory for the demo registry",
                        e,
                    )
                })?;
            Ok(dir.keep())
        }
    }
}

fn print_summary(s: &DemoSummary) {
    let secs = |ms: Option<u64>| {
        ms.map_or_else(|| "-".to_owned(), |v| format!("{:.2} s", v as f64 / 1000.0))
    };
    println!();
    println!(
        "provisioned      {}/{} allowlisted devices (registry: {} provisioned)",
        s.provisioned, s.allowlisted, s.registry_provisioned
    );
    println!(
        "refused          {}/{} devices not on the allowlist (wrongly provisioned: {})",
        s.refused,
        s.devices - s.allowlisted,
        s.wrongly_provisioned
    );
    println!(
        "retries          {} retransmissions, {} failed attempts retried",
        s.retries, s.failed_attempts
    );
    println!(
        "time to provision median {}, p99 {}, max {} (virtual time, from power-on)",
        secs(s.median_ms),
        secs(s.p99_ms),
        secs(s.max_ms)
    );
    println!(
        "on air           {} frames, {} bytes, {:.2} s of channel time ({} receptions lost at {} % loss)",
        s.frames_on_air,
        s.bytes_on_air,
        s.airtime_ms as f64 / 1000.0,
        s.frames_lost,
        s.loss * 100.0
    );
    println!(
        "time             {:.2} s virtual, {:.2} s wall",
        s.virtual_ms as f64 / 1000.0,
        s.wall_ms as f64 / 1000.0
    );
    println!(
        "registry         {} ({} audit records)",
        s.registry.display(),
        s.audit_records
    );
    println!(
        "audit log        zerotouch --registry {} log",
        s.registry.display()
    );
}

/// Progress display: a bar on a terminal, a line per 10 % otherwise, nothing with `--json`.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    target: usize,
    quiet: bool,
    last_decile: usize,
}

impl Progress {
    fn new(target: usize, quiet: bool) -> Self {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = indicatif::ProgressBar::new(target as u64);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{spinner} provisioning [{bar:40}] {pos}/{len} devices {msg}",
            ) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar
        });
        Self {
            bar,
            target,
            quiet,
            last_decile: 0,
        }
    }

    fn update(&mut self, finished: usize, now_ms: Instant) {
        if let Some(bar) = &self.bar {
            bar.set_position(finished as u64);
            bar.set_message(format!("({:.1} s virtual)", now_ms as f64 / 1000.0));
        } else if !self.quiet && self.target > 0 {
            let decile = finished * 10 / self.target;
            if decile > self.last_decile {
                self.last_decile = decile;
                eprintln!(
                    "  {finished}/{} provisioned at {:.1} s virtual time",
                    self.target,
                    now_ms as f64 / 1000.0
                );
            }
        }
    }
}

struct SimSetup {
    handle: tokio::runtime::Handle,
    registry: Registry,
    identities: heapless::Vec<ConfiguratorIdentity, 2>,
    devices: Vec<SigningIdentity>,
    psks: Vec<Zeroizing<String>>,
    owners: Vec<zerotouch_proto::PublicKey>,
    allowlisted: usize,
    loss: f64,
    seed: u64,
    unix_now: u32,
    deadline_ms: u64,
    progress: Progress,
    capture: Option<AirCapture>,
}

struct SimOutcome {
    provisioned: usize,
    refused: usize,
    wrongly_provisioned: usize,
    retries: u64,
    failed_attempts: usize,
    median_ms: Option<u64>,
    p99_ms: Option<u64>,
    max_ms: Option<u64>,
    virtual_ms: u64,
    frames_on_air: u64,
    bytes_on_air: u64,
    frames_lost: u64,
    airtime_ms: u64,
}

/// Address of demo device `index`.
fn device_addr(index: usize) -> Addr {
    let i = (index as u32).to_be_bytes();
    Addr([0x02, 0x5a, i[0], i[1], i[2], i[3]])
}

/// Builds and runs the simulation on this (blocking) thread.
fn run_simulation(setup: SimSetup) -> Result<SimOutcome, AppError> {
    let SimSetup {
        handle,
        registry,
        identities,
        devices,
        psks,
        owners,
        allowlisted,
        loss,
        seed,
        unix_now,
        deadline_ms,
        mut progress,
        capture,
    } = setup;
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed_0fde);
    let radio = RadioConfig {
        link: LinkModel::lossy(loss),
        record_frames: false,
        ..RadioConfig::default()
    };
    let mut sim = Simulator::new(radio, rng.next_u64());
    if let Some(capture) = capture {
        sim.set_adversary(Box::new(capture));
    }

    let snapshot = handle.block_on(registry.allowlist_snapshot())?;
    let settings = ConfiguratorSettings {
        identities,
        channel: DEMO_CHANNEL,
        unix_time: unix_now,
        limits: ConfiguratorLimits::default(),
    };
    let driver = ConfiguratorDriver::new(
        settings,
        ChaCha8Rng::seed_from_u64(rng.next_u64()),
        snapshot,
    )
    .with_quiet_events();
    let configurator = sim.add_node(Box::new(RegistryConfiguratorNode {
        addr: Addr([0x02, 0xc0, 0, 0, 0, 1]),
        driver,
        registry,
        handle,
        next_allowlist_poll: ALLOWLIST_POLL_MS,
        registry_errors: 0,
    }));

    let mut enrollees: Vec<NodeId> = Vec::with_capacity(devices.len());
    for (index, (identity, psk)) in devices.into_iter().zip(psks).enumerate() {
        let trust = match owners.iter().find(|o| o.suite() == identity.suite()) {
            Some(owner) => Trust::pinned(identity.suite(), [*owner])
                .expect("an owner key of the identity's suite"),
            None => Trust::FirstUse,
        };
        let settings = EnrolleeSettings {
            identity,
            trust,
            mode: AnnounceMode::New,
            last_failure: None,
            last_channel: None,
            known_unix_time: 0,
            timing: EnrolleeTiming::default(),
            boot_counter: 1,
        };
        let power_on = rng.next_u64() % POWER_ON_WINDOW_MS;
        let ap = ApModel::wpa2(DEMO_SSID, &psk, DEMO_CHANNEL);
        let node = EnrolleeNode::new(
            device_addr(index),
            settings,
            ChaCha8Rng::seed_from_u64(rng.next_u64()),
            power_on,
            vec![ap],
        );
        enrollees.push(sim.add_node(Box::new(node)));
    }

    // Only enrollees report "finished"; the configurator never does.
    let bar = progress.bar.clone();
    sim.set_progress(
        PROGRESS_EVERY_MS,
        Box::new(move |p| progress.update(p.finished, p.now_ms)),
    );
    sim.run_while(deadline_ms, |sim| sim.finished_count() < allowlisted);
    if let Some(bar) = bar {
        bar.set_position(sim.finished_count() as u64);
        bar.finish();
    }

    let mut times = Vec::new();
    let mut provisioned = 0;
    let mut wrongly_provisioned = 0;
    let mut retries = 0u64;
    let mut failed_attempts = 0;
    for (index, &id) in enrollees.iter().enumerate() {
        let Some(node) = sim.node_as::<EnrolleeNode>(id) else {
            continue;
        };
        retries += u64::from(node.stats().retransmissions);
        failed_attempts += node.record().attempt_failures.len();
        match (index < allowlisted, node.record().time_to_provision()) {
            (true, Some(t)) => {
                provisioned += 1;
                times.push(t);
            }
            (false, Some(_)) => wrongly_provisioned += 1,
            _ => {}
        }
    }
    if let Some(node) = sim.node_as::<RegistryConfiguratorNode>(configurator) {
        retries += node.driver.core_stats().retransmissions;
        if node.registry_errors > 0 {
            tracing::warn!(
                errors = node.registry_errors,
                "registry errors during the demo"
            );
        }
    }
    times.sort_unstable();
    let percentile = |p: f64| -> Option<u64> {
        if times.is_empty() {
            return None;
        }
        let rank = ((times.len() as f64 * p).ceil() as usize).clamp(1, times.len());
        Some(times[rank - 1])
    };
    let report = sim.report();
    Ok(SimOutcome {
        provisioned,
        refused: enrollees.len() - allowlisted - wrongly_provisioned,
        wrongly_provisioned,
        retries,
        failed_attempts,
        median_ms: percentile(0.5),
        p99_ms: percentile(0.99),
        max_ms: times.last().copied(),
        virtual_ms: report.now_us / 1000,
        frames_on_air: report.frames_on_air,
        bytes_on_air: report.bytes_on_air,
        frames_lost: report.lost,
        airtime_ms: report.channels.iter().map(|c| c.busy_us).sum::<u64>() / 1000,
    })
}

/// The configurator of the demo: the daemon's driver, answered by the real registry, as a
/// simulator node. Registry calls run to completion inside the event that caused them
/// (virtual time stands still meanwhile), on the tokio runtime of the command.
struct RegistryConfiguratorNode {
    addr: Addr,
    driver: ConfiguratorDriver<ChaCha8Rng>,
    registry: Registry,
    handle: tokio::runtime::Handle,
    next_allowlist_poll: Instant,
    registry_errors: u64,
}

impl RegistryConfiguratorNode {
    fn run_jobs(&mut self, now: Instant) {
        while let Some(job) = self.driver.poll_job() {
            let outcome = self.handle.block_on(execute(&self.registry, job));
            self.driver.handle_outcome(now, outcome);
        }
    }

    fn poll_allowlist(&mut self, now: Instant) {
        self.next_allowlist_poll = now + ALLOWLIST_POLL_MS;
        let known = self.driver.allowlist_counter();
        let registry = &self.registry;
        let fresh = self.handle.block_on(async {
            let counter = registry.change_counter().await?;
            if counter == known {
                Ok(None)
            } else {
                registry.allowlist_snapshot().await.map(Some)
            }
        });
        match fresh {
            Ok(Some(snapshot)) => self.driver.replace_allowlist(now, snapshot),
            Ok(None) => {}
            Err(err) => {
                self.registry_errors += 1;
                tracing::warn!(%err, "cannot reload the allowlist");
            }
        }
    }
}

impl Node for RegistryConfiguratorNode {
    fn addr(&self) -> Addr {
        self.addr
    }

    fn channel(&self) -> u8 {
        DEMO_CHANNEL
    }

    fn handle_frame(&mut self, now: Instant, src: Addr, frame: &[u8]) {
        self.driver.handle_frame(now, src, frame);
        self.run_jobs(now);
    }

    fn handle_timeout(&mut self, now: Instant) {
        if now >= self.next_allowlist_poll {
            self.poll_allowlist(now);
        }
        self.driver.handle_timeout(now);
        self.run_jobs(now);
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.driver.poll_transmit()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        Some(
            self.driver
                .poll_timeout()
                .map_or(self.next_allowlist_poll, |t| {
                    t.min(self.next_allowlist_poll)
                }),
        )
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

/// `--pcap` for the simulated radio: a passive listener on every channel that writes each
/// frame as it ends on air (before loss, like a sniffer next to the sender).
struct AirCapture {
    writer: Option<PcapWriter>,
    /// Wall-clock start of the run: packet time = start + virtual time.
    start: Duration,
    /// 802.11 sequence counters per sender, as each radio keeps its own.
    sequence: HashMap<Addr, u16>,
}

impl AirCapture {
    fn create(path: &Path) -> Result<Self, AppError> {
        let writer = PcapWriter::create(path).map_err(|e| {
            AppError::io(
                format!(
                    "cannot create the capture file {} (does its directory exist and is it writable?)",
                    path.display()
                ),
                e,
            )
        })?;
        Ok(Self {
            writer: Some(writer),
            start: zerotouch_link::pcap::now(),
            sequence: HashMap::new(),
        })
    }

    fn next_sequence(&mut self, src: Addr) -> u16 {
        let counter = self.sequence.entry(src).or_default();
        let sequence = *counter;
        *counter = (sequence + 1) & 0x0fff;
        sequence
    }
}

impl Adversary for AirCapture {
    fn on_air(&mut self, _now_us: u64, frame: &AirFrame) -> Verdict {
        let sequence_number = self.next_sequence(frame.src);
        let Some(writer) = self.writer.as_mut() else {
            return Verdict::Deliver;
        };
        let id = frame.id.to_be_bytes();
        let repr = EspNowRepr {
            retry: false,
            duration: 0,
            dst: frame.dst,
            src: frame.src,
            addr3: Addr::BROADCAST,
            sequence_number,
            // ESP-NOW's random bytes are opaque; the transmission id keeps them distinct.
            random: [id[4], id[5], id[6], id[7]],
            version: ESPNOW_VERSION_1,
            body: &frame.bytes,
        };
        let timestamp = self.start + Duration::from_micros(frame.start_us);
        if let Err(error) = writer.write_espnow(timestamp, frame.channel, None, &repr) {
            tracing::warn!(%error, "cannot write the capture file; capture stopped, the demo goes on");
            self.writer = None;
        }
        Verdict::Deliver
    }
}
