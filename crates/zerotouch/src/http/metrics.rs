//! The daemon's Prometheus metrics (served at `/metrics` in the text exposition format).
//!
//! The daemon loop and its registry worker update them as frames, jobs and commits happen;
//! the API only encodes them. Names follow Prometheus conventions (`_total` counters,
//! `_seconds` histograms).

use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry as MetricRegistry;

/// Labels of per-frame metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FrameLabels {
    /// `sent` or `received`.
    pub direction: &'static str,
    /// `announce`, `challenge`, `response`, `data`, `ack` or `other`.
    pub message_type: &'static str,
}

/// Labels of failures.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    /// The failure reason (`auth-failed`, `timeout`, ...).
    pub reason: String,
}

/// Labels of link errors.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DirectionLabels {
    /// `send` or `receive`.
    pub direction: &'static str,
}

/// Every metric of the daemon.
pub struct Metrics {
    registry: MetricRegistry,
    /// Devices newly provisioned (joins committed).
    pub provisioned: Counter,
    /// Announcements of keys not on the allowlist.
    pub refused: Counter,
    /// Failed joins and sessions, by reason.
    pub failed: Family<ReasonLabels, Counter>,
    /// Provisioning sessions in progress.
    pub active_sessions: Gauge,
    /// Announcements dropped because the handshake budget was spent.
    pub handshake_budget_drops: Counter,
    /// Frames by direction and message type.
    pub frames: Family<FrameLabels, Counter>,
    /// Frame bytes by direction and message type.
    pub frame_bytes: Family<FrameLabels, Counter>,
    /// From a device's first announcement seen by this daemon to its committed join.
    pub time_to_provision: Histogram,
    /// Registry transaction latency of the daemon's worker (one commit per batch).
    pub registry_commit: Histogram,
    /// Link send/receive errors.
    pub link_errors: Family<DirectionLabels, Counter>,
    /// The core's throttle counter last seen, to turn its total into increments.
    throttled_seen: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric under the `zerotouch_` prefix.
    pub fn new() -> Self {
        let mut registry = MetricRegistry::with_prefix("zerotouch");
        let provisioned = Counter::default();
        let refused = Counter::default();
        let failed = Family::<ReasonLabels, Counter>::default();
        let active_sessions = Gauge::default();
        let handshake_budget_drops = Counter::default();
        let frames = Family::<FrameLabels, Counter>::default();
        let frame_bytes = Family::<FrameLabels, Counter>::default();
        // 0.25 s to ~2 min: provisioning takes seconds, longer under loss.
        let time_to_provision = Histogram::new(
            prometheus_client::metrics::histogram::exponential_buckets(0.25, 2.0, 10),
        );
        // 0.5 ms to ~4 s: an fsync costs milliseconds; seconds mean trouble.
        let registry_commit = Histogram::new(
            prometheus_client::metrics::histogram::exponential_buckets(0.0005, 2.0, 14),
        );
        let link_errors = Family::<DirectionLabels, Counter>::default();
        registry.register(
            "provisioned",
            "Devices newly provisioned",
            provisioned.clone(),
        );
        registry.register(
            "refused",
            "Announcements of keys not on the allowlist",
            refused.clone(),
        );
        registry.register(
            "failed",
            "Failed joins and sessions by reason",
            failed.clone(),
        );
        registry.register(
            "active_sessions",
            "Provisioning sessions in progress",
            active_sessions.clone(),
        );
        registry.register(
            "handshake_budget_drops",
            "Announcements dropped because the handshake budget was spent",
            handshake_budget_drops.clone(),
        );
        registry.register(
            "frames",
            "Frames by direction and message type",
            frames.clone(),
        );
        registry.register(
            "frame_bytes",
            "Frame bytes by direction and message type",
            frame_bytes.clone(),
        );
        registry.register_with_unit(
            "time_to_provision",
            "From the first announcement this daemon saw to the committed join",
            prometheus_client::registry::Unit::Seconds,
            time_to_provision.clone(),
        );
        registry.register_with_unit(
            "registry_commit",
            "Registry transaction latency of the daemon's worker",
            prometheus_client::registry::Unit::Seconds,
            registry_commit.clone(),
        );
        registry.register(
            "link_errors",
            "Link send and receive errors",
            link_errors.clone(),
        );
        Self {
            registry,
            provisioned,
            refused,
            failed,
            active_sessions,
            handshake_budget_drops,
            frames,
            frame_bytes,
            time_to_provision,
            registry_commit,
            link_errors,
            throttled_seen: AtomicU64::new(0),
        }
    }

    /// Counts one frame sent or received.
    pub fn count_frame(&self, direction: &'static str, frame: &[u8]) {
        let labels = FrameLabels {
            direction,
            message_type: message_type(frame),
        };
        self.frames.get_or_create(&labels).inc();
        self.frame_bytes
            .get_or_create(&labels)
            .inc_by(u64::try_from(frame.len()).unwrap_or(u64::MAX));
    }

    /// Counts a failure by reason.
    pub fn count_failure(&self, reason: &str) {
        self.failed
            .get_or_create(&ReasonLabels {
                reason: reason.to_string(),
            })
            .inc();
    }

    /// Counts a link error.
    pub fn count_link_error(&self, direction: &'static str) {
        self.link_errors
            .get_or_create(&DirectionLabels { direction })
            .inc();
    }

    /// Takes the core's running totals: sessions now, handshake-budget drops so far.
    pub fn observe_core(&self, sessions: usize, throttled_total: u64) {
        self.active_sessions
            .set(i64::try_from(sessions).unwrap_or(i64::MAX));
        let before = self.throttled_seen.swap(throttled_total, Ordering::Relaxed);
        if throttled_total > before {
            self.handshake_budget_drops.inc_by(throttled_total - before);
        }
    }

    /// The text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// The message type of a zerotouch frame (byte 2 of its header).
fn message_type(frame: &[u8]) -> &'static str {
    use zerotouch_proto::wire::FrameType;
    match frame.get(2).copied().and_then(FrameType::from_u8) {
        Some(FrameType::Announce) => "announce",
        Some(FrameType::Challenge) => "challenge",
        Some(FrameType::Response) => "response",
        Some(FrameType::Data) => "data",
        Some(FrameType::Ack) => "ack",
        Some(FrameType::Beacon) => "beacon",
        None => "other",
    }
}

/// Counts what registry jobs report, and times each device from its first announcement to
/// its committed join. Lives on the daemon's registry worker.
#[derive(Default)]
pub struct JobMetrics {
    first_seen: std::collections::HashMap<zerotouch_proto::KeyHash, std::time::Instant>,
}

/// Devices whose announcement is remembered for the time-to-provision histogram.
const MAX_TRACKED: usize = 100_000;

impl JobMetrics {
    /// Notes a job about to be executed.
    pub fn observe(&mut self, metrics: &Metrics, job: &crate::daemon::driver::RegistryJob) {
        use crate::daemon::driver::RegistryJob;
        match job {
            RegistryJob::Announced { key, .. } => {
                if self.first_seen.len() < MAX_TRACKED {
                    self.first_seen
                        .entry(*key)
                        .or_insert_with(std::time::Instant::now);
                }
            }
            RegistryJob::Refused { .. } => {
                metrics.refused.inc();
            }
            RegistryJob::JoinReported { key, result, .. } => match result {
                Ok(()) => {
                    if let Some(at) = self.first_seen.remove(key) {
                        metrics
                            .time_to_provision
                            .observe(at.elapsed().as_secs_f64());
                    }
                }
                Err(reason) => metrics.count_failure(reason.name()),
            },
            RegistryJob::SessionFailed { reason, .. } => metrics.count_failure(match reason {
                zerotouch_proto::configurator::SessionFailure::Timeout => "session-timeout",
                zerotouch_proto::configurator::SessionFailure::BadProof => "bad-proof",
                zerotouch_proto::configurator::SessionFailure::Revoked => "revoked",
                zerotouch_proto::configurator::SessionFailure::Declined => "declined",
            }),
            RegistryJob::FetchConfig { .. }
            | RegistryJob::Delivered { .. }
            | RegistryJob::RefusalSummary(_) => {}
        }
    }
}
