//! The Linux enrollee agent (`zerotouch enrollee run|uri`).
//!
//! A Linux device runs the enrollee state machine over a real link: it announces itself,
//! authenticates the configurator, receives its configuration, applies it ([`apply`]), runs
//! the join check ([`join`]), reports the result, and commits ([`state`]) only after the
//! configurator confirmed the report. Its identity key is created on first run and never
//! replaced silently: a new key would orphan the device from its allowlist entry.

pub mod apply;
pub mod join;
pub mod state;

use std::path::PathBuf;
use std::time::Duration;

use zerotouch_proto::enrollee::{
    AttemptFailure, Enrollee, EnrolleeEvent, EnrolleeSettings, EnrolleeTiming, MAX_PINNED_OWNERS,
    Trust, TrustError,
};
use zerotouch_proto::uri::BootstrapUri;
use zerotouch_proto::{AnnounceMode, FailureReason, Instant, SigningIdentity, SuiteId};

use self::apply::{ApplyTarget, DeliveredConfig};
use self::join::{JoinCheck, run_join_check, run_join_check_detailed};
use self::state::AgentState;
use crate::cli::Context;
use crate::daemon::link::{LinkSpec, open_capture, open_link, sleep_until};
use crate::error::AppError;

/// Arguments of `zerotouch enrollee run`.
#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// The device's state directory: identity key (created 0600 on first run), provisioning
    /// state, pinned owner keys, settings.json.
    #[arg(long, value_name = "DIR")]
    pub state_dir: PathBuf,

    /// The link to the configurator: `udp` (loopback multicast defaults), `udp:GROUP:PORT`,
    /// `monitor:IFACE[?no-nl80211]` (a Wi-Fi card in monitor mode, Linux), or `serial:PATH`
    /// (an ESP32-C3 radio co-processor running the bridge firmware).
    #[arg(long, default_value = "udp", value_name = "LINK")]
    pub link: LinkSpec,

    /// Record every frame the agent sends and receives into FILE (pcapng, radiotap +
    /// 802.11; open it in Wireshark with tools/wireshark/zerotouch.lua).
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<PathBuf>,

    /// Where the received network configuration goes: `wpa-supplicant:PATH[?reload=IFACE]`
    /// (replaces only the networks marked `id_str="zerotouch"` in PATH, keeping its global
    /// settings and other networks, the previous file in PATH.zerotouch-bak; `?reload=IFACE`
    /// then runs `wpa_cli -i IFACE reconfigure`), `networkmanager:DIR` (keyfiles), `exec:CMD`
    /// (credentials in ZEROTOUCH_* environment variables, never on the command line) or
    /// `none`.
    #[arg(long, default_value = "none", value_name = "TARGET")]
    pub apply: ApplyTarget,

    /// How to check the join: `exec:CMD` (exit code 0 joined, 1 AP not found, 2 auth failed,
    /// 3 no IP address, 4 config rejected, 5 timeout, other codes "other") or `none`
    /// (assume joined).
    #[arg(long, default_value = "none", value_name = "CHECK")]
    pub join_check: JoinCheck,

    /// Seconds the join check may take before it counts as a timeout.
    #[arg(long, default_value_t = 60, value_name = "SECS")]
    pub join_timeout: u64,

    /// Owner public key to require (hex, optionally `ed25519:`/`p256:` prefixed, or a file
    /// with one per line). Repeatable. Without any (and no `owner-keys` file in the state
    /// directory) the first configurator that provisions the device is trusted and pinned.
    #[arg(long = "owner-key", value_name = "HEX|FILE")]
    pub owner_keys: Vec<String>,

    /// Suite of the identity created on first run.
    #[arg(long, default_value = "ed25519", value_parser = parse_suite, value_name = "SUITE")]
    pub suite: SuiteId,

    /// Announce in reconfigure mode even though the device is provisioned (e.g. its network
    /// credentials were rotated).
    #[arg(long)]
    pub reconfigure: bool,

    /// Keep running after provisioning; with a join check, re-run it every
    /// `--check-interval` seconds and ask to be reconfigured when it fails.
    #[arg(long)]
    pub stay: bool,

    /// Seconds between join checks with `--stay`.
    #[arg(long, default_value_t = 60, value_name = "SECS")]
    pub check_interval: u64,

    /// Give up (exit 1) if not provisioned within this many seconds. Default: never.
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<u64>,
}

/// Arguments of `zerotouch enrollee uri`.
#[derive(clap::Args, Debug)]
pub struct UriArgs {
    /// The device's state directory.
    #[arg(long, value_name = "DIR")]
    pub state_dir: PathBuf,

    /// Print the URI only, without the terminal QR code.
    #[arg(long)]
    pub no_qr: bool,
}

fn parse_suite(name: &str) -> Result<SuiteId, String> {
    SuiteId::from_name(name).ok_or_else(|| format!("unknown suite `{name}`: use ed25519 or p256"))
}

/// File name of the application settings in the state directory.
pub const SETTINGS_FILE: &str = "settings.json";

/// Milliseconds on the agent's monotonic clock.
fn now_ms(start: tokio::time::Instant) -> Instant {
    u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Prints the device's DPP URI (and a QR code on a terminal, unless `--json` or `--no-qr`).
pub async fn uri(args: UriArgs, ctx: &Context) -> Result<(), AppError> {
    let identity = crate::identity::load(&args.state_dir)?;
    let public = identity.public_key();
    let mac = zerotouch_link::derive_mac(&public.key_hash().0);
    let mut uri = String::new();
    BootstrapUri {
        key: public,
        mac: Some(mac),
        info: None,
        version: None,
        channels: None,
    }
    .write(&mut uri)
    .map_err(|_| AppError::Failed("cannot format the DPP URI".into()))?;
    if ctx.json {
        let value = serde_json::json!({
            "uri": uri,
            "key_hash": public.key_hash().to_string(),
            "suite": public.suite().name(),
            "mac": mac.to_string(),
        });
        println!("{value}");
        return Ok(());
    }
    println!("{uri}");
    // A QR code in a pipe (`enrollee uri | allow import -`) would be read as input.
    if !args.no_qr && std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        match qrcode::QrCode::new(uri.as_bytes()) {
            Ok(code) => {
                let image = code
                    .render::<qrcode::render::unicode::Dense1x2>()
                    .dark_color(qrcode::render::unicode::Dense1x2::Light)
                    .light_color(qrcode::render::unicode::Dense1x2::Dark)
                    .quiet_zone(true)
                    .build();
                println!("{image}");
            }
            Err(err) => tracing::warn!(%err, "the URI does not fit a QR code"),
        }
    }
    Ok(())
}

/// What the agent does at start-up, decided from its state and flags.
fn start_mode(state: &AgentState, reconfigure: bool) -> AnnounceMode {
    if state.provisioned {
        AnnounceMode::Reconfigure
    } else if state.last_failure.is_some() && !reconfigure {
        AnnounceMode::RetryAfterFailure
    } else {
        AnnounceMode::New
    }
}

/// Runs the agent until it is provisioned (or, with `--stay`, until a signal).
pub async fn run(args: RunArgs, ctx: &Context) -> Result<(), AppError> {
    let _ = ctx;
    // Before anything is created: a target the agent cannot write, or a check it cannot
    // run, would otherwise only show as failed attempts until --timeout.
    args.apply.check()?;
    args.join_check.check()?;
    state::check_owner_key_flags(&args.owner_keys).map_err(|e| AppError::Usage(e.to_string()))?;
    let (identity, created) = crate::identity::load_or_create(&args.state_dir, args.suite)?;
    if created {
        tracing::info!(state_dir = %args.state_dir.display(), "created a new device identity (first run)");
    }
    let mut state =
        AgentState::load(&args.state_dir).map_err(|e| AppError::Corrupt(e.to_string()))?;
    let owners = state::pinned_owners(&args.owner_keys, &args.state_dir, &state)
        .map_err(|e| AppError::Usage(e.to_string()))?;
    let mut trust = resolve_trust(identity.suite(), owners)?;
    let public = identity.public_key();
    tracing::info!(key_hash = %public.key_hash(), suite = public.suite().name(), trust = %trust.describe(), "enrollee agent starting");

    let deadline = args
        .timeout
        .map(|s| tokio::time::Instant::now() + Duration::from_secs(s));
    let join_timeout = Duration::from_secs(args.join_timeout);
    let mut shutdown = crate::daemon::Shutdown::install()?;

    if state.provisioned && !args.reconfigure {
        let check = run_join_check(&args.join_check, None, join_timeout).await;
        match check {
            Ok(()) => {
                tracing::info!("already provisioned and the join check passes; nothing to do");
                if !args.stay {
                    return Ok(());
                }
                if !stay_until_join_fails(&args, &mut shutdown).await? {
                    return Ok(());
                }
            }
            Err(reason) => {
                tracing::warn!(
                    reason = reason.name(),
                    "provisioned, but the join check fails: asking to be reconfigured"
                );
            }
        }
    }

    let capture = open_capture(args.pcap.as_deref())?;
    let link = open_link(
        &args.link,
        zerotouch_link::derive_mac(&public.key_hash().0),
        1,
        None,
        capture,
    )
    .await?;
    let mut mode = start_mode(&state, args.reconfigure);
    let mut identity = identity;
    loop {
        let outcome = provision_once(
            &args,
            &link,
            identity,
            &trust,
            &mut state,
            mode,
            deadline,
            join_timeout,
            &mut shutdown,
        )
        .await?;
        identity = outcome;
        if !args.stay {
            return Ok(());
        }
        // The committed state now holds the owner this provisioning pinned (trust on first
        // use learns it here): a reconfiguration must require it, and the core rejects every
        // configurator in reconfigure mode without one.
        let owners = state::pinned_owners(&args.owner_keys, &args.state_dir, &state)
            .map_err(|e| AppError::Usage(e.to_string()))?;
        trust = resolve_trust(identity.suite(), owners)?;
        if !stay_until_join_fails(&args, &mut shutdown).await? {
            return Ok(());
        }
        mode = AnnounceMode::Reconfigure;
    }
}

/// The trust mode from the owner keys given, stored and pinned: none is trust on first use;
/// a key that cannot match the identity's suite is a start-up error, never a silent fall
/// into trust on first use.
fn resolve_trust(
    suite: zerotouch_proto::SuiteId,
    owners: Vec<zerotouch_proto::PublicKey>,
) -> Result<Trust, AppError> {
    if owners.is_empty() {
        return Ok(Trust::FirstUse);
    }
    let mismatch = |i: usize| owners.get(i).map(|k| k.suite().name()).unwrap_or("?");
    Trust::pinned(suite, owners.iter().copied()).map_err(|e| {
        AppError::Usage(match e {
            TrustError::SuiteMismatch(i) => format!(
                "owner key {} is a {} key but this device's identity is {}: it could never verify a configurator certificate. Give the owner key of the {} suite (`zerotouch fleet show --owner-pub FILE` on the configurator)",
                i + 1,
                mismatch(i),
                suite.name(),
                suite.name()
            ),
            TrustError::TooMany => format!(
                "at most {MAX_PINNED_OWNERS} owner keys can be pinned, {} given",
                owners.len()
            ),
            other => other.to_string(),
        })
    })
}

/// With `--stay`: re-runs the join check periodically. Returns `true` when it fails (the
/// device must be reconfigured), `false` on a shutdown signal.
async fn stay_until_join_fails(
    args: &RunArgs,
    shutdown: &mut crate::daemon::Shutdown,
) -> Result<bool, AppError> {
    if args.join_check == JoinCheck::None {
        tracing::info!("provisioned; staying until a signal (no join check to repeat)");
        shutdown.wait().await;
        return Ok(false);
    }
    loop {
        tokio::select! {
            () = shutdown.wait() => return Ok(false),
            () = tokio::time::sleep(Duration::from_secs(args.check_interval.max(1))) => {}
        }
        if let Err(reason) = run_join_check(
            &args.join_check,
            None,
            Duration::from_secs(args.join_timeout),
        )
        .await
        {
            tracing::warn!(
                reason = reason.name(),
                "join check failed: asking to be reconfigured"
            );
            return Ok(true);
        }
    }
}

/// One provisioning: runs the enrollee until the configurator confirmed a join report and
/// the state is committed. Returns the identity for a later reconfiguration.
#[allow(clippy::too_many_arguments)]
async fn provision_once(
    args: &RunArgs,
    link: &crate::daemon::link::Link,
    identity: SigningIdentity,
    trust: &Trust,
    state: &mut AgentState,
    mode: AnnounceMode,
    deadline: Option<tokio::time::Instant>,
    join_timeout: Duration,
    shutdown: &mut crate::daemon::Shutdown,
) -> Result<SigningIdentity, AppError> {
    let secret = identity.secret_bytes();
    let suite = identity.suite();
    // Every enrollee run announces with higher counters than any before it: a new boot
    // number, saved before the first announcement (one write per run, none per Announce).
    state.boot_counter = state.boot_counter.checked_add(1).ok_or_else(|| {
        AppError::Corrupt("the boot counter in the agent state is exhausted".into())
    })?;
    state
        .save(&args.state_dir)
        .map_err(|e| AppError::Failed(e.to_string()))?;
    let settings = EnrolleeSettings {
        identity,
        trust: trust.clone(),
        mode,
        last_failure: if mode == AnnounceMode::New {
            None
        } else {
            state.last_failure_reason()
        },
        last_channel: state.last_channel,
        known_unix_time: state.known_unix_time,
        timing: EnrolleeTiming::default(),
        boot_counter: state.boot_counter,
    };
    tracing::info!(?mode, "announcing");
    let start = tokio::time::Instant::now();
    let rng = rand_core::UnwrapErr(getrandom::SysRng);
    let mut enrollee = Enrollee::new(settings, rng, now_ms(start));
    link.set_channel(enrollee.channel());
    let settings_path = args.state_dir.join(SETTINGS_FILE);
    let mut pending_join: Option<PendingJoin> = None;
    let mut applied: Option<apply::Applied> = None;
    // What went wrong last, for the error at --timeout.
    let mut last_failure: Option<String> = None;

    loop {
        // Drain everything the state machine wants done now.
        while let Some(transmit) = enrollee.poll_transmit() {
            if let Err(err) = link.send(&transmit).await {
                tracing::warn!(%err, "could not send a frame; the protocol will retransmit");
            }
        }
        while let Some(event) = enrollee.poll_event() {
            match event {
                EnrolleeEvent::ChannelChanged(channel) => {
                    tracing::debug!(channel, "listening on a new channel");
                    link.set_channel(channel);
                }
                EnrolleeEvent::Authenticated {
                    configurator,
                    owner,
                } => {
                    tracing::info!(configurator = %hex::encode(configurator.as_wire()), owner = %hex::encode(owner.as_wire()), "configurator authenticated");
                }
                EnrolleeEvent::ConfiguratorRejected(reason) => {
                    tracing::warn!(?reason, "refused a configurator");
                    last_failure = Some(format!("refused a configurator ({reason:?})"));
                }
                EnrolleeEvent::ConfigReceived => {
                    // A new attempt's configuration: nothing of an earlier one may linger.
                    abandon(&mut pending_join, &mut applied).await;
                    let config = enrollee
                        .config()
                        .map(|view| DeliveredConfig::from_view(&view));
                    tracing::info!(
                        networks = config.as_ref().map_or(0, |c| c.networks.len()),
                        "configuration received; applying"
                    );
                    match config {
                        Some(config) => {
                            let target = args.apply.clone();
                            let settings_path = settings_path.clone();
                            let task = tokio::task::spawn_blocking({
                                let config = config.clone();
                                move || apply::apply(&target, &config, &settings_path)
                            });
                            pending_join = Some(PendingJoin::Applying { task, config });
                        }
                        None => {
                            let why = "the received configuration could not be read";
                            last_failure = Some(why.to_owned());
                            let result = Err(FailureReason::ConfigRejected);
                            if let Err(err) = enrollee.report_join(now_ms(start), result) {
                                tracing::debug!(%err, "join result after the attempt ended");
                            }
                        }
                    }
                }
                EnrolleeEvent::Provisioned(provisioned) => {
                    state.provisioned = true;
                    state.provisioned_at = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .ok()
                        .map(|d| d.as_secs());
                    state.owner = Some(state::StoredKey::from_key(&provisioned.owner));
                    state.configurator =
                        Some(state::StoredKey::from_key(&provisioned.configurator));
                    state.last_channel = Some(provisioned.channel);
                    state.known_unix_time = state.known_unix_time.max(provisioned.unix_time);
                    state.last_failure = None;
                    state
                        .save(&args.state_dir)
                        .map_err(|e| AppError::Failed(e.to_string()))?;
                    if let Some(applied) = applied.take() {
                        applied.commit();
                    }
                    tracing::info!(channel = provisioned.channel, "provisioned and committed");
                    let identity = SigningIdentity::from_secret_bytes(suite, secret.as_slice())?;
                    return Ok(identity);
                }
                EnrolleeEvent::AttemptFailed(failure) => {
                    // Revoked (Abort), timed out, or the join failed: the attempt ends
                    // without a commit, so the files go back to what they were, even while
                    // the apply or the join check still runs.
                    abandon(&mut pending_join, &mut applied).await;
                    match failure {
                        AttemptFailure::Join(reason) => {
                            tracing::warn!(
                                reason = reason.name(),
                                "join failed; reported, announcing again"
                            );
                            state.last_failure = Some(reason.name().to_owned());
                            state
                                .save(&args.state_dir)
                                .map_err(|e| AppError::Failed(e.to_string()))?;
                        }
                        other => {
                            tracing::info!(?other, "attempt ended; announcing again");
                            if last_failure.is_none() {
                                last_failure = Some(format!("an attempt ended ({other:?})"));
                            }
                        }
                    }
                }
            }
        }

        let timer = enrollee
            .poll_timeout()
            .map(|t| start + Duration::from_millis(t));
        tokio::select! {
            received = link.recv() => match received {
                Ok((src, frame)) => enrollee.handle_frame(now_ms(start), src, &frame),
                Err(err) => tracing::warn!(%err, "link receive error"),
            },
            () = sleep_until(timer) => enrollee.handle_timeout(now_ms(start)),
            step = next_join_step(&mut pending_join) => match step {
                JoinStep::Applied { result: Ok(files), config } => {
                    let check = args.join_check.clone();
                    let task = tokio::spawn(async move {
                        run_join_check_detailed(&check, Some(&config), join_timeout).await
                    });
                    pending_join = Some(PendingJoin::Checking { task, applied: files });
                }
                JoinStep::Applied { result: Err((reason, why)), .. } => {
                    last_failure = Some(format!("{why} (reported as {})", reason.name()));
                    if let Err(err) = enrollee.report_join(now_ms(start), Err(reason)) {
                        tracing::debug!(%err, "join result after the attempt ended");
                    }
                }
                JoinStep::Checked { result, applied: files } => {
                    let result = match result {
                        Ok(()) => {
                            // Kept until the configurator confirms the report and the state
                            // is committed; restored if the attempt ends first.
                            applied = Some(files);
                            Ok(())
                        }
                        Err((reason, why)) => {
                            files.rollback();
                            last_failure = Some(format!("{why} (reported as {})", reason.name()));
                            Err(reason)
                        }
                    };
                    if let Err(err) = enrollee.report_join(now_ms(start), result) {
                        tracing::debug!(%err, "join result after the attempt ended");
                    }
                }
            },
            () = sleep_until(deadline) => {
                let checking = matches!(pending_join, Some(PendingJoin::Checking { .. }));
                abandon(&mut pending_join, &mut applied).await;
                let secs = args.timeout.unwrap_or_default();
                return Err(AppError::Failed(match (&last_failure, checking) {
                    (_, true) => format!(
                        "not provisioned within {secs} s: the join check was still running (see --join-timeout); the previous files are restored{}",
                        last_failure.as_ref().map(|why| format!("; earlier failure: {why}")).unwrap_or_default()
                    ),
                    (Some(why), false) => format!("not provisioned within {secs} s; last failure: {why}"),
                    (None, false) => format!(
                        "not provisioned within {secs} s and no configuration arrived; check that a configurator runs on this link and that the device is allowlisted (`zerotouch enrollee uri`)"
                    ),
                }));
            }
            () = shutdown.wait() => {
                abandon(&mut pending_join, &mut applied).await;
                return Err(AppError::Interrupted);
            }
        }
    }
}

/// A received configuration on its way to a join result.
enum PendingJoin {
    /// The files are being written. The write runs on a blocking thread and cannot be
    /// cancelled: abandoning it means waiting for it to finish, then restoring.
    Applying {
        task: tokio::task::JoinHandle<Result<apply::Applied, apply::ApplyError>>,
        config: DeliveredConfig,
    },
    /// The files are written and the join check runs; aborting its task kills the check's
    /// process (`kill_on_drop`). The agent, not the task, owns the files to restore.
    Checking {
        task: tokio::task::JoinHandle<Result<(), (FailureReason, String)>>,
        applied: apply::Applied,
    },
}

/// A finished phase of a [`PendingJoin`]. A failure comes with its description (for the
/// error at `--timeout`).
enum JoinStep {
    /// The apply finished: its files, or why it failed.
    Applied {
        result: Result<apply::Applied, (FailureReason, String)>,
        config: DeliveredConfig,
    },
    /// The join check finished; `applied` holds the files to keep or restore.
    Checked {
        result: Result<(), (FailureReason, String)>,
        applied: apply::Applied,
    },
}

/// Waits for the running phase of the pending join (never completes without one) and takes
/// it out of `slot`. Cancel-safe: nothing is taken before the phase finished.
async fn next_join_step(slot: &mut Option<PendingJoin>) -> JoinStep {
    enum Done {
        Applied(Result<apply::Applied, (FailureReason, String)>),
        Checked(Result<(), (FailureReason, String)>),
    }
    let done = match slot.as_mut() {
        None => return std::future::pending().await,
        Some(PendingJoin::Applying { task, .. }) => Done::Applied(match task.await {
            Ok(Ok(applied)) => Ok(applied),
            Ok(Err(err)) => {
                tracing::error!(%err, "could not apply the configuration");
                let why = format!("could not apply the configuration: {err}");
                let reason = match err {
                    apply::ApplyError::Unsupported(_) => FailureReason::ConfigRejected,
                    _ => FailureReason::Other,
                };
                Err((reason, why))
            }
            Err(err) => {
                tracing::error!(%err, "the apply task failed");
                Err((
                    FailureReason::Other,
                    format!("the apply task failed: {err}"),
                ))
            }
        }),
        Some(PendingJoin::Checking { task, .. }) => Done::Checked(match task.await {
            Ok(result) => result,
            Err(err) => Err((
                FailureReason::Other,
                format!("the join check task failed: {err}"),
            )),
        }),
    };
    match (slot.take(), done) {
        (Some(PendingJoin::Applying { config, .. }), Done::Applied(result)) => {
            JoinStep::Applied { result, config }
        }
        (Some(PendingJoin::Checking { applied, .. }), Done::Checked(result)) => {
            JoinStep::Checked { result, applied }
        }
        // The slot held the phase just awaited; no other pairing exists.
        _ => std::future::pending().await,
    }
}

/// Ends an attempt that will not be committed: waits for a running apply, kills a running
/// join check, and restores every file the configuration changed.
async fn abandon(pending: &mut Option<PendingJoin>, applied: &mut Option<apply::Applied>) {
    let mut restore = applied.take();
    match pending.take() {
        None => {}
        Some(PendingJoin::Applying { task, .. }) => {
            tracing::info!("waiting for the apply to finish, to restore the previous files");
            // An apply that failed has restored its files itself.
            if let Ok(Ok(files)) = task.await {
                restore = Some(files);
            }
        }
        Some(PendingJoin::Checking { task, applied }) => {
            task.abort();
            // Awaiting the aborted task makes sure the check is gone before the restore.
            let _ = task.await;
            tracing::info!("the attempt ended during the join check; the check is stopped");
            restore = Some(applied);
        }
    }
    if let Some(files) = restore {
        let paths: Vec<String> = files.paths().map(|p| p.display().to_string()).collect();
        files.rollback();
        tracing::info!(files = ?paths, "not committed: previous files restored");
    }
}
