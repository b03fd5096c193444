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
        Some(what) => Some(find_device(&registry, what).await?.key_hash),
        None => None,
    };
    let filter = AuditFilter {
        key_hash,
        limit: Some(PAGE),
    };
    let mut labels = labels(&registry).await?;

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
    for event in &backlog {
        print_event(event, &labels, ctx)?;
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
                print_event(event, &labels, ctx)?;
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

fn print_event(
    event: &AuditEvent,
    labels: &HashMap<KeyHash, Option<String>>,
    ctx: &Context,
) -> Result<(), AppError> {
    let label = event
        .key_hash
        .and_then(|k| labels.get(&k))
        .and_then(Option::as_deref);
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
    let device = match event.key_hash {
        Some(key) => format!("{} {}", &key.to_string()[..16], label.unwrap_or("-")),
        None => "-".into(),
    };
    let detail = match &event.detail {
        serde_json::Value::Object(map) if map.is_empty() => String::new(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    };
    write_stdout(
        format!(
            "{}  {:<16}  {device}  {detail}",
            format_time(event.at_ms),
            event.kind.name()
        )
        .trim_end(),
    )
}
