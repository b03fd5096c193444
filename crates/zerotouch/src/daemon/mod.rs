//! The configurator daemon (`zerotouch configurator run`).
//!
//! One task owns the [`ConfiguratorDriver`] and the link: it feeds received frames and timer
//! expiries to the driver, sends what it transmits, and hands registry jobs to a single
//! worker task that runs them in order (so each device's audit records keep their order),
//! everything queued at once in one registry transaction, and sends the results back. A
//! second task polls the registry's change counter and sends fresh allowlist snapshots, so
//! `zerotouch allow add|revoke` and profile changes made while the daemon runs take effect
//! within [`ALLOWLIST_POLL_MS`].
//!
//! SIGHUP reloads what can change at run time: the config file (its `log_level`) and, at
//! once, the allowlist and profiles from the registry; it logs "reloaded" (or, if the file
//! is invalid, a warning and keeps the running settings). SIGUSR1 logs a status summary.
//!
//! On SIGINT/SIGTERM the daemon stops taking frames, lets the worker finish the registry
//! writes already queued (confirming the join reports they commit), and exits 130 (the
//! README's "interrupted"; systemd units say `SuccessExitStatus=130`). After a
//! SIGKILL, only sessions in flight are lost: a join report is confirmed to the device only
//! after it is committed, so the device retries, and the registry counts a repeated report
//! as a re-join, never a second provisioning.

pub mod driver;
pub mod link;

use std::time::Duration;

use tokio::sync::mpsc;
use zerotouch_proto::configurator::{
    ConfiguratorIdentity, ConfiguratorLimits, ConfiguratorSettings,
};
use zerotouch_proto::{ConfiguratorCert, Instant, PublicKey, SigningIdentity};
use zerotouch_store::Fleet;

use self::driver::{
    ALLOWLIST_POLL_MS, ConfiguratorDriver, JobOutcome, MAX_BATCH, RegistryJob, execute_batch,
};
use self::link::{LinkSpec, open_capture, open_link};
use crate::cli::Context;
use crate::error::AppError;

/// Arguments of `zerotouch configurator run`.
#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// The link: `udp` (loopback multicast defaults), `udp:GROUP:PORT`,
    /// `monitor:IFACE[?no-nl80211]` (a Wi-Fi card in monitor mode, Linux; see docs/monitor-mode.md),
    /// or `serial:PATH` (an ESP32-C3 radio bridge, e.g. serial:/dev/ttyACM0).
    #[arg(long, default_value = "udp", value_name = "LINK")]
    pub link: LinkSpec,

    /// The radio channel to serve, 1..=13 (normally the access point's). Enrollees hop over
    /// channels 1 to 13 until they find it; channel 14 (Japan, 802.11b only) is not used.
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u8).range(1..=13), value_name = "N")]
    pub channel: u8,

    /// Local IPv4 address of the interface that carries the multicast link.
    #[arg(long, value_name = "ADDR")]
    pub iface: Option<std::net::Ipv4Addr>,

    /// Most concurrent provisioning sessions (at least 1).
    #[arg(long, value_name = "N", value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub max_sessions: Option<usize>,

    /// Seconds before a device whose join failed gets the same configuration again (doubling
    /// with each identical failure, up to 32 times). A profile or device change that alters
    /// its configuration is delivered at once.
    #[arg(long, default_value_t = 30, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    pub join_retry_backoff: u64,

    /// Record every frame the daemon sends and receives into FILE (pcapng, radiotap +
    /// 802.11; open it in Wireshark with tools/wireshark/zerotouch.lua).
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<std::path::PathBuf>,

    /// The HTTP API and metrics.
    #[command(flatten)]
    pub http: crate::http::HttpArgs,
}

/// Unix time in seconds now (0 if the clock is before 1970).
pub(crate) fn unix_seconds() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX))
}

/// The configurator identities of a fleet, one per suite, from the registry.
pub(crate) fn configurator_identities(
    fleet: &Fleet,
) -> Result<heapless::Vec<ConfiguratorIdentity, 2>, AppError> {
    let mut identities = heapless::Vec::new();
    for keys in &fleet.keys {
        let identity =
            SigningIdentity::from_secret_bytes(keys.suite, keys.configurator_secret.as_slice())
                .map_err(|e| {
                    AppError::Corrupt(format!(
                        "the configurator key of suite {} is invalid: {e}",
                        keys.suite.name()
                    ))
                })?;
        let cert = ConfiguratorCert::from_bytes(keys.suite, &keys.certificate)?;
        let owner = PublicKey::from_wire(keys.suite, &keys.owner_public).map_err(|e| {
            AppError::Corrupt(format!(
                "the owner key of suite {} is invalid: {e}",
                keys.suite.name()
            ))
        })?;
        if identities
            .push(ConfiguratorIdentity {
                identity,
                cert,
                owner,
            })
            .is_err()
        {
            break;
        }
    }
    if identities.is_empty() {
        return Err(AppError::NotFound(
            "the fleet has no keys; run `zerotouch fleet init`".into(),
        ));
    }
    Ok(identities)
}

/// SIGINT/SIGTERM, as a future that can be awaited any number of times.
pub struct Shutdown {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
    requested: bool,
}

impl Shutdown {
    /// Installs the handlers (the default actions stop applying).
    pub fn install() -> Result<Self, AppError> {
        use tokio::signal::unix::{SignalKind, signal};
        let interrupt = signal(SignalKind::interrupt())
            .map_err(|e| AppError::io("cannot install the SIGINT handler", e))?;
        let terminate = signal(SignalKind::terminate())
            .map_err(|e| AppError::io("cannot install the SIGTERM handler", e))?;
        Ok(Self {
            interrupt,
            terminate,
            requested: false,
        })
    }

    /// Completes when a signal arrived (at once if one already did).
    pub async fn wait(&mut self) {
        if self.requested {
            return;
        }
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
        self.requested = true;
    }
}

/// SIGHUP (reload) and SIGUSR1 (status), installed before anything else so that neither
/// kills the daemon while it starts.
struct Control {
    hangup: tokio::signal::unix::Signal,
    user1: tokio::signal::unix::Signal,
}

impl Control {
    fn install() -> Result<Self, AppError> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            hangup: signal(SignalKind::hangup())
                .map_err(|e| AppError::io("cannot install the SIGHUP handler", e))?,
            user1: signal(SignalKind::user_defined1())
                .map_err(|e| AppError::io("cannot install the SIGUSR1 handler", e))?,
        })
    }
}

/// SIGHUP: re-reads the config file (log level) and the allowlist; logs "reloaded".
async fn reload<R: rand_core::CryptoRng>(
    ctx: &Context,
    registry: &zerotouch_store::Registry,
    driver: &mut ConfiguratorDriver<R>,
    now: Instant,
) {
    let reloaded = match crate::logging::reload(ctx) {
        Ok(reloaded) => reloaded,
        Err(err) => {
            tracing::warn!(%err, "SIGHUP: config file not reloaded; the running settings stay");
            return;
        }
    };
    if !reloaded.needs_restart.is_empty() {
        tracing::warn!(
            settings = reloaded.needs_restart.join(","),
            "SIGHUP: these config file settings changed but only take effect after a restart"
        );
    }
    let allowlisted = match registry.allowlist_snapshot().await {
        Ok(snapshot) => {
            let n = snapshot.keys.len();
            driver.replace_allowlist(now, snapshot);
            Some(n)
        }
        Err(err) => {
            tracing::warn!(%err, "SIGHUP: cannot reload the allowlist; keeping the current one");
            None
        }
    };
    tracing::info!(
        config = ?reloaded.config,
        log_level = %reloaded.level.directive,
        log_level_from = reloaded.level.source,
        allowlisted,
        "reloaded"
    );
}

/// SIGUSR1: one log line saying what the daemon is doing.
fn log_status<R: rand_core::CryptoRng>(
    driver: &ConfiguratorDriver<R>,
    started: tokio::time::Instant,
) {
    let stats = driver.stats();
    tracing::info!(
        uptime_s = started.elapsed().as_secs(),
        sessions = driver.session_count(),
        allowlist_counter = driver.allowlist_counter(),
        authenticated = stats.authenticated,
        joined = stats.joined,
        join_failed = stats.join_failed,
        refused = stats.refused,
        bad_proofs = stats.bad_proofs,
        declined = stats.declined,
        held_back_devices = driver.held_back_devices(),
        held_back_sessions = stats.held_back,
        repeated_failures = stats.repeated_failures,
        "status"
    );
}

/// Milliseconds on the daemon's monotonic clock.
fn now_ms(start: tokio::time::Instant) -> Instant {
    u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Runs the configurator daemon until SIGINT/SIGTERM, then returns
/// [`AppError::Interrupted`] (exit 130) once the queued registry writes are done.
pub async fn run(args: RunArgs, ctx: &Context) -> Result<(), AppError> {
    let mut shutdown = Shutdown::install()?;
    let mut control = Control::install()?;
    let mut registry = ctx.open_registry().await?;
    let fleet = registry
        .fleet()
        .await
        .map_err(AppError::from)?
        .ok_or_else(|| {
            AppError::NotFound("no fleet in this registry: run `zerotouch fleet init` first".into())
        })?;
    let identities = configurator_identities(&fleet)?;
    let configurator_key = identities[0].identity.public_key();
    let configurator_id = configurator_key.key_hash().to_string();
    registry.set_configurator_id(Some(configurator_id.clone()));
    let addr = zerotouch_link::derive_mac(&configurator_key.key_hash().0);

    let mut limits = ConfiguratorLimits::default();
    if let Some(max) = args.max_sessions {
        limits.max_sessions = max;
    }
    let settings = ConfiguratorSettings {
        identities,
        channel: args.channel,
        unix_time: unix_seconds(),
        limits,
    };
    let snapshot = registry
        .allowlist_snapshot()
        .await
        .map_err(AppError::from)?;
    let allowlisted = snapshot.keys.len();
    let rng = rand_core::UnwrapErr(getrandom::SysRng);
    let mut driver = ConfiguratorDriver::new(settings, rng, snapshot)
        .with_failure_backoff(args.join_retry_backoff.saturating_mul(1000));

    let capture = open_capture(args.pcap.as_deref())?;
    let link = open_link(&args.link, addr, args.channel, args.iface, capture).await?;
    let metrics = std::sync::Arc::new(crate::http::metrics::Metrics::new());
    let daemon_info = crate::http::DaemonInfo {
        configurator_id: configurator_id.clone(),
        channel: args.channel,
        link: args.link.to_string(),
        started_at_ms: unix_millis(),
    };
    let mut api_registry = registry.clone();
    api_registry.set_configurator_id(None);
    let api_state = crate::http::AppState::new(
        api_registry,
        metrics.clone(),
        daemon_info,
        args.http.http_rate_limit,
    );
    crate::http::serve(&args.http, api_state).await?;
    tracing::info!(
        registry = registry.location(),
        configurator = %configurator_id,
        %addr,
        channel = args.channel,
        link = %args.link,
        allowlisted,
        "configurator daemon running"
    );

    // The worker runs registry jobs one at a time, in order, and reports back.
    let (job_tx, mut job_rx) = mpsc::unbounded_channel::<RegistryJob>();
    let (outcome_tx, mut outcome_rx) = mpsc::unbounded_channel::<JobOutcome>();
    let worker_registry = registry.clone();
    let worker_metrics = metrics.clone();
    let worker = tokio::spawn(async move {
        let mut job_metrics = crate::http::metrics::JobMetrics::default();
        while let Some(first) = job_rx.recv().await {
            // Everything queued meanwhile goes into the same registry transaction.
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match job_rx.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            for job in &batch {
                job_metrics.observe(&worker_metrics, job);
            }
            let started = std::time::Instant::now();
            let outcomes = execute_batch(&worker_registry, batch).await;
            worker_metrics
                .registry_commit
                .observe(started.elapsed().as_secs_f64());
            for outcome in outcomes {
                if let JobOutcome::JoinPersisted {
                    persisted: true, ..
                } = &outcome
                {
                    worker_metrics.provisioned.inc();
                }
                if outcome_tx.send(outcome).is_err() {
                    return;
                }
            }
        }
    });

    // The watcher sends a new allowlist snapshot whenever the registry changed.
    let (snapshot_tx, mut snapshot_rx) = mpsc::channel(1);
    let watcher_registry = registry.clone();
    let mut known_counter = driver.allowlist_counter();
    let mut next_expiry = driver.allowlist_next_expiry();
    let watcher = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(ALLOWLIST_POLL_MS));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let counter = match watcher_registry.change_counter().await {
                Ok(counter) => counter,
                Err(err) => {
                    tracing::warn!(%err, "cannot read the registry change counter; keeping the current allowlist");
                    continue;
                }
            };
            let expired = next_expiry.is_some_and(|t| t <= unix_millis());
            if counter == known_counter && !expired {
                continue;
            }
            match watcher_registry.allowlist_snapshot().await {
                Ok(snapshot) => {
                    known_counter = snapshot.change_counter;
                    next_expiry = snapshot.next_expiry_ms;
                    if snapshot_tx.send(snapshot).await.is_err() {
                        break;
                    }
                }
                Err(err) => {
                    tracing::warn!(%err, "cannot reload the allowlist; keeping the current one")
                }
            }
        }
    });

    let start = tokio::time::Instant::now();
    let mut clock_tick = tokio::time::interval(Duration::from_secs(10));
    loop {
        flush(&mut driver, &link, &job_tx, &metrics).await;
        metrics.observe_core(driver.session_count(), driver.core_stats().throttled);
        let timer = driver
            .poll_timeout()
            .map(|t| start + Duration::from_millis(t));
        tokio::select! {
            received = link.recv() => match received {
                Ok((src, frame)) => {
                    metrics.count_frame("received", &frame);
                    driver.handle_frame(now_ms(start), src, &frame)
                }
                Err(err) => {
                    metrics.count_link_error("receive");
                    tracing::warn!(%err, "link receive error")
                }
            },
            () = link::sleep_until(timer) => driver.handle_timeout(now_ms(start)),
            Some(outcome) = outcome_rx.recv() => driver.handle_outcome(now_ms(start), outcome),
            Some(snapshot) = snapshot_rx.recv() => {
                tracing::info!(allowlisted = snapshot.keys.len(), counter = snapshot.change_counter, "allowlist reloaded");
                driver.replace_allowlist(now_ms(start), snapshot);
            }
            _ = clock_tick.tick() => driver.set_unix_time(unix_seconds()),
            Some(()) = control.hangup.recv() => {
                reload(ctx, &registry, &mut driver, now_ms(start)).await;
            }
            Some(()) = control.user1.recv() => log_status(&driver, start),
            () = shutdown.wait() => break,
        }
    }

    tracing::info!(
        sessions = driver.session_count(),
        "shutting down: finishing registry writes"
    );
    watcher.abort();
    // The refusals counted so far get their summary record.
    driver.flush_refusals(now_ms(start));
    // Queue what is left, close the queue, and keep confirming what the worker commits.
    while let Some(job) = driver.poll_job() {
        let _ = job_tx.send(job);
    }
    drop(job_tx);
    while let Some(outcome) = outcome_rx.recv().await {
        driver.handle_outcome(now_ms(start), outcome);
        while let Some(transmit) = driver.poll_transmit() {
            let _ = link.send(&transmit).await;
        }
        // Jobs caused by these outcomes cannot be queued any more; they are records of
        // sessions that end with the daemon anyway.
        while driver.poll_job().is_some() {}
    }
    let _ = worker.await;
    registry.close().await;
    let stats = driver.stats();
    tracing::info!(
        joined = stats.joined,
        join_failed = stats.join_failed,
        refused = stats.refused,
        "configurator daemon stopped"
    );
    // A stop by signal is the daemon's only way out: exit code 130, as the table says.
    Err(AppError::Interrupted)
}

/// Unix time in milliseconds.
pub(crate) fn unix_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Sends pending frames and queues pending registry jobs.
async fn flush<R: rand_core::CryptoRng>(
    driver: &mut ConfiguratorDriver<R>,
    link: &link::Link,
    jobs: &mpsc::UnboundedSender<RegistryJob>,
    metrics: &crate::http::metrics::Metrics,
) {
    while let Some(transmit) = driver.poll_transmit() {
        metrics.count_frame("sent", &transmit.frame);
        if let Err(err) = link.send(&transmit).await {
            metrics.count_link_error("send");
            tracing::warn!(%err, "could not send a frame; the protocol will retransmit");
        }
    }
    while let Some(job) = driver.poll_job() {
        if jobs.send(job).is_err() {
            tracing::error!("the registry worker stopped; registry jobs are being dropped");
        }
    }
}
