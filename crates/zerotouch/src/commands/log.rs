//! `zerotouch log`: the audit log.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use clap::Args;
use serde::Serialize;
use zerotouch_proto::KeyHash;
use zerotouch_store::{AuditEvent, AuditFilter, DeviceFilter, Registry};

use crate::cli::Context;
use crate::commands::allow::find_device;
use crate::error::AppError;
use crate::output::{Direction, format_time, parse_when, print_json, write_stdout};

/// Arguments of `zerotouch log`. With `--json`, one JSON object per line.
#[derive(Args, Debug)]
pub struct LogArgs {
    /// Keep printing new events as they are recorded (polls the registry).
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// Only events of this device (key-hash prefix or label).
    #[arg(long)]
    pub device: Option<String>,
    /// Only events at or after this time: RFC 3339, a date, or a duration ago (`1h`, `2d`).
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
    /// At most this many events (the most recent), before following.
    #[arg(long, short = 'n')]
    pub limit: Option<u32>,
}

/// How often `--follow` polls the registry.
const FOLLOW_POLL: Duration = Duration::from_millis(500);
/// Audit records fetched per query.
const PAGE: u32 = 1000;

/// One audit record as printed.
#[derive(Serialize)]
struct EventView<'a> {
    id: i64,
    at: String,
    kind: &'a str,
    key_hash: Option<String>,
    label: Option<&'a str>,
    configurator: Option<&'a str>,
    detail: &'a serde_json::Value,
}

/// Runs `zerotouch log`.
pub async fn run(args: LogArgs, ctx: &Context) -> Result<(), AppError> {
    let registry = ctx.open_existing_registry().await?;
    let since_ms = args
        .since
        .as_deref()
        .map(|t| parse_when(t, Direction::Past, "--since"))
        .transpose()?;
    let key_hash = match &args.device {
        Some(what) => Some(device_of(&registry, what).await?),
        None => None,
    };
    let filter = AuditFilter {
        key_hash,
        limit: Some(PAGE),
    };
    let mut labels = labels(&registry).await?;
    let mut columns = Columns::default();

    // The backlog, oldest first; with --limit only the newest N are kept.
    let mut backlog: VecDeque<AuditEvent> = VecDeque::new();
    let mut last_id = 0;
    loop {
        let page = registry.audit_since(last_id, &filter).await?;
        let Some(last) = page.last() else { break };
        last_id = last.id;
        for event in page {
            if since_ms.is_none_or(|since| event.at_ms >= since) {
                backlog.push_back(event);
                if args.limit.is_some_and(|n| backlog.len() > n as usize) {
                    backlog.pop_front();
                }
            }
        }
    }
    columns.fit(backlog.iter(), &labels);
    for event in &backlog {
        print_event(event, &labels, &columns, ctx)?;
    }
    if !args.follow {
        if backlog.is_empty() && !ctx.json {
            write_stdout("(no audit events match)")?;
        }
        return Ok(());
    }

    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    loop {
        tokio::select! {
            _ = &mut interrupted => return Ok(()),
            () = tokio::time::sleep(FOLLOW_POLL) => {}
        }
        loop {
            let page = registry.audit_since(last_id, &filter).await?;
            let Some(last) = page.last() else { break };
            last_id = last.id;
            if page
                .iter()
                .any(|e| e.key_hash.is_some_and(|k| !labels.contains_key(&k)))
            {
                labels = self::labels(&registry).await?;
            }
            for event in &page {
                print_event(event, &labels, &columns, ctx)?;
            }
        }
    }
}

/// Labels of all devices, to show beside key hashes.
async fn labels(registry: &Registry) -> Result<HashMap<KeyHash, Option<String>>, AppError> {
    Ok(registry
        .list_devices(&DeviceFilter::default())
        .await?
        .into_iter()
        .map(|d| (d.key_hash, d.label))
        .collect())
}

/// The device of `--device`: a device by its label or key-hash prefix now, or else the one
/// device that had this label when an audit record was written (a label it no longer has).
async fn device_of(registry: &Registry, what: &str) -> Result<KeyHash, AppError> {
    let error = match find_device(registry, what).await {
        Ok(device) => return Ok(device.key_hash),
        Err(error @ AppError::NotFound(_)) => error,
        Err(error) => return Err(error),
    };
    let filter = AuditFilter {
        key_hash: None,
        limit: Some(PAGE),
    };
    let mut holders: Vec<KeyHash> = Vec::new();
    let mut last_id = 0;
    loop {
        let page = registry.audit_since(last_id, &filter).await?;
        let Some(last) = page.last() else { break };
        last_id = last.id;
        for event in &page {
            if let Some(key) = event.key_hash
                && event
                    .detail
                    .get("label")
                    .and_then(serde_json::Value::as_str)
                    == Some(what)
                && !holders.contains(&key)
            {
                holders.push(key);
            }
        }
    }
    match holders.as_slice() {
        [] => Err(error),
        [key] => Ok(*key),
        several => Err(AppError::Conflict(format!(
            "{what:?} was the label of {} devices: give a key-hash prefix. Candidates:\n{}",
            several.len(),
            several
                .iter()
                .map(|k| format!("  {k}"))
                .collect::<Vec<_>>()
                .join("\n")
        ))),
    }
}

/// The widths of the text columns.
#[derive(Default)]
struct Columns {
    label: usize,
}

/// Width of the event column: the longest kind the registry writes (`fleet-initialized`).
const KIND_WIDTH: usize = 17;
/// Hex digits of the key hash shown (enough to name a device; `--json` has all of it).
const KEY_DIGITS: usize = 16;

impl Columns {
    /// Makes the label column as wide as the longest label of `events` and of the devices.
    fn fit<'a>(
        &mut self,
        events: impl Iterator<Item = &'a AuditEvent>,
        labels: &HashMap<KeyHash, Option<String>>,
    ) {
        let known = labels.values().flatten().map(|l| l.chars().count());
        let recorded = events.filter_map(|e| recorded_label(e).map(|l| l.chars().count()));
        self.label = known.chain(recorded).max().unwrap_or(1).max(1);
    }
}

/// The label recorded with the event (the device's label at the time), if any.
fn recorded_label(event: &AuditEvent) -> Option<&str> {
    event
        .detail
        .get("label")
        .and_then(serde_json::Value::as_str)
}

/// A suite number as its name (older records carry numbers).
fn suite_name(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::Number(n) => n
            .as_u64()
            .and_then(|n| u8::try_from(n).ok())
            .and_then(zerotouch_proto::SuiteId::from_u8)
            .map(|s| s.name().to_string())
            .or_else(|| Some(n.to_string())),
        serde_json::Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

/// One detail value as text: strings bare unless they need quotes, lists comma-separated.
fn value_text(key: &str, value: &serde_json::Value) -> Option<String> {
    use serde_json::Value;
    Some(match (key, value) {
        (_, Value::Null) => return None,
        ("suite", v) => suite_name(v)?,
        ("suites", Value::Array(items)) => items
            .iter()
            .filter_map(suite_name)
            .collect::<Vec<_>>()
            .join(","),
        ("expires_at", Value::Number(n)) => n.as_i64().map_or_else(|| n.to_string(), format_time),
        ("keys", Value::Array(items)) => items
            .iter()
            .map(
                |item| match (item.get("key").and_then(Value::as_str), item.get("count")) {
                    (Some(key), Some(count)) => {
                        format!("{}:{count}", key.get(..KEY_DIGITS).unwrap_or(key))
                    }
                    _ => item.to_string(),
                },
            )
            .collect::<Vec<_>>()
            .join(","),
        (_, Value::String(s)) => {
            if s.is_empty() || s.chars().any(|c| c.is_whitespace() || c == '"' || c == '=') {
                Value::String(s.clone()).to_string()
            } else {
                s.clone()
            }
        }
        (_, Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join(","),
        (_, other) => other.to_string(),
    })
}

/// The detail as `key=value` pairs (the label is in its own column).
fn detail_text(detail: &serde_json::Value) -> String {
    match detail {
        serde_json::Value::Object(map) => map
            .iter()
            .filter(|(key, _)| key.as_str() != "label")
            .filter_map(|(key, value)| value_text(key, value).map(|v| format!("{key}={v}")))
            .collect::<Vec<_>>()
            .join(" "),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn print_event(
    event: &AuditEvent,
    labels: &HashMap<KeyHash, Option<String>>,
    columns: &Columns,
    ctx: &Context,
) -> Result<(), AppError> {
    // The label of the time if the record has it, else the device's label now.
    let label = recorded_label(event).or_else(|| {
        event
            .key_hash
            .and_then(|k| labels.get(&k))
            .and_then(Option::as_deref)
    });
    if ctx.json {
        // One object per line, so `--follow --json` streams.
        return print_json(&EventView {
            id: event.id,
            at: format_time(event.at_ms),
            kind: event.kind.name(),
            key_hash: event.key_hash.map(|k| k.to_string()),
            label,
            configurator: event.configurator.as_deref(),
            detail: &event.detail,
        });
    }
    let key = event.key_hash.map_or_else(
        || "-".to_string(),
        |k| k.to_string()[..KEY_DIGITS].to_string(),
    );
    let line = format!(
        "{}  {:<KIND_WIDTH$}  {key:<KEY_DIGITS$}  {:<width$}  {}",
        format_time(event.at_ms),
        event.kind.name(),
        label.unwrap_or("-"),
        detail_text(&event.detail),
        width = columns.label,
    );
    write_stdout(line.trim_end())
}
