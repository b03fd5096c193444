//! The API's handlers: devices, profiles (secrets write-only, versioned with ETags),
//! configurators, fleet status and the audit log (paged, and live as Server-Sent Events).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use zerotouch_store::{
    AuditEvent, AuditFilter, CredentialSpec, DevicePageQuery, DeviceSort, NetworkSpec, NewDevice,
    Profile, ProfilePrecondition, SecurityKind, parse_key_hash,
};

use super::AppState;
use super::auth::Caller;
use super::error::ApiError;
use crate::commands::allow::{EntryView, import_text, parse_device};
use crate::output::{Direction, format_time, parse_when};

/// Largest page of devices or audit records.
const MAX_PAGE: u32 = 1000;
/// Default page size.
const DEFAULT_PAGE: u32 = 100;
/// How often a live audit stream looks for new records.
const STREAM_POLL: Duration = Duration::from_millis(250);

/// A JSON request body: too large, not JSON, or not the expected shape each get a JSON
/// error naming the problem (serde names the missing, unknown or mistyped field).
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(body_rejection)?;
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| ApiError::bad_request(format!("the body is not the expected JSON: {e}")))
    }
}

/// The JSON error for a body that could not be read.
fn body_rejection(rejection: BytesRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!(
                "the body is larger than {} bytes: split the import",
                super::MAX_BODY_BYTES
            ),
        );
    }
    ApiError::bad_request(format!("cannot read the body: {}", rejection.body_text()))
}

fn query_rejection(rejection: QueryRejection) -> ApiError {
    ApiError::bad_request(format!("bad query string: {}", rejection.body_text()))
}

fn path_rejection(rejection: PathRejection) -> ApiError {
    ApiError::bad_request(format!("bad path: {}", rejection.body_text()))
}

/// `GET /api/devices` query.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceListParams {
    state: Option<String>,
    profile: Option<String>,
    q: Option<String>,
    sort: Option<String>,
    limit: Option<u32>,
    offset: Option<u64>,
}

/// `GET /api/devices`: filter, sort (`-` prefix for descending), paginate.
pub async fn list_devices(
    State(state): State<AppState>,
    params: Result<Query<DeviceListParams>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(params) = params.map_err(query_rejection)?;
    if let Some(s) = &params.state
        && ![
            "allowed",
            "provisioning",
            "provisioned",
            "failed",
            "revoked",
        ]
        .contains(&s.as_str())
    {
        return Err(ApiError::invalid_field(
            "state",
            "must be allowed, provisioning, provisioned, failed or revoked",
        ));
    }
    let sort_text = params.sort.as_deref().unwrap_or("created_at");
    let (descending, sort_name) = match sort_text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, sort_text),
    };
    let sort = DeviceSort::from_name(sort_name).ok_or_else(|| {
        ApiError::invalid_field(
            "sort",
            "must be created_at, label, state or last_event_at (prefix - to reverse)",
        )
    })?;
    let limit = params.limit.unwrap_or(DEFAULT_PAGE);
    if limit == 0 || limit > MAX_PAGE {
        return Err(ApiError::invalid_field(
            "limit",
            format!("must be 1 to {MAX_PAGE}"),
        ));
    }
    let offset = params.offset.unwrap_or(0);
    let query = DevicePageQuery {
        state: params.state,
        profile: params.profile,
        search: params.q,
        sort,
        descending,
        limit,
        offset,
    };
    let (devices, total) = state.registry.device_page(&query).await?;
    let items: Vec<EntryView> = devices.iter().map(EntryView::of).collect();
    Ok(Json(
        json!({ "items": items, "total": total, "limit": limit, "offset": offset }),
    ))
}

/// `POST /api/devices` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddDevice {
    uri: String,
    label: Option<String>,
    profile: Option<String>,
    expires: Option<String>,
}

/// `POST /api/devices`: allowlist one device.
pub async fn add_device(
    Extension(caller): Extension<Caller>,
    JsonBody(body): JsonBody<AddDevice>,
) -> Result<Response, ApiError> {
    let parsed = parse_device(&body.uri).map_err(|e| ApiError::invalid_field("uri", e))?;
    let expires_at_ms = body
        .expires
        .as_deref()
        .map(|t| parse_when(t, Direction::Future, "expires"))
        .transpose()
        .map_err(|e| ApiError::invalid_field("expires", e))?;
    let mut new = NewDevice::from_public_key(&parsed.key);
    new.label = body.label.or(parsed.info);
    new.profile = body.profile;
    new.expires_at_ms = expires_at_ms;
    let device = caller.registry.allow(new).await?;
    Ok((StatusCode::CREATED, Json(EntryView::of(&device))).into_response())
}

/// `POST /api/devices/import` query.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportParams {
    profile: Option<String>,
}

/// `POST /api/devices/import`: the CLI's import (CSV, JSON or URI lines), all or nothing.
pub async fn import_devices(
    Extension(caller): Extension<Caller>,
    params: Result<Query<ImportParams>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(params) = params.map_err(query_rejection)?;
    let body = body.map_err(body_rejection)?;
    let text = std::str::from_utf8(&body)
        .map_err(|e| ApiError::bad_request(format!("the import is not UTF-8 text: {e}")))?;
    let (format, imported) = import_text(&caller.registry, text, params.profile.as_deref()).await?;
    Ok(Json(json!({ "format": format, "imported": imported })))
}

/// `GET /api/devices/{device}`: one device (label or key-hash prefix) and its audit trail.
pub async fn get_device(
    State(state): State<AppState>,
    device: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let Path(device) = device.map_err(path_rejection)?;
    let device = state.registry.find_device(&device).await?;
    let filter = AuditFilter {
        key_hash: Some(device.key_hash),
        limit: Some(MAX_PAGE),
    };
    let audit = state.registry.audit_since(0, &filter).await?;
    let audit: Vec<Value> = audit.iter().map(audit_view).collect();
    Ok(Json(
        json!({ "device": EntryView::of(&device), "audit": audit }),
    ))
}

/// `POST /api/devices/{device}/revoke`: the device is refused from now on.
pub async fn revoke_device(
    Extension(caller): Extension<Caller>,
    device: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let Path(device) = device.map_err(path_rejection)?;
    let found = caller.registry.find_device(&device).await?;
    let changed = caller.registry.revoke(&found.key_hash).await?;
    Ok(Json(
        json!({ "key_hash": found.key_hash.to_string(), "revoked": true, "changed": changed }),
    ))
}

/// A profile as the API shows it: credentials by kind only, never their value.
fn profile_view(profile: &Profile, version: Option<&str>) -> Value {
    let networks: Vec<Value> = profile
        .networks
        .iter()
        .map(|n| {
            let kind = match n.credential {
                CredentialSpec::None => "none",
                CredentialSpec::Passphrase(_) => "passphrase",
                CredentialSpec::RawPsk(_) => "raw-psk",
                CredentialSpec::PerDevice => "per-device",
            };
            json!({
                "ssid": n.ssid,
                "security": n.security,
                "credential": { "kind": kind },
                "bssid": n.bssid,
                "channel": n.channel,
            })
        })
        .collect();
    json!({
        "name": profile.name,
        "networks": networks,
        "settings": profile.settings,
        "version": version,
    })
}

/// `GET /api/profiles`.
pub async fn list_profiles(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let profiles = state.registry.list_profiles().await?;
    let items: Vec<Value> = profiles.iter().map(|p| profile_view(p, None)).collect();
    Ok(Json(json!({ "items": items })))
}

/// The `ETag` header value of a profile version.
fn etag(version: &str) -> String {
    format!("\"{version}\"")
}

/// `GET /api/profiles/{name}`, with its version as `ETag`.
pub async fn get_profile(
    State(state): State<AppState>,
    name: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(name) = name.map_err(path_rejection)?;
    let (profile, version) = state
        .registry
        .get_profile_versioned(&name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no profile named {name:?}")))?;
    Ok((
        [(header::ETAG, etag(&version))],
        Json(profile_view(&profile, Some(&version))),
    )
        .into_response())
}

/// A credential in a profile write: `kind` and, for passphrases and raw PSKs, `value`.
/// `unchanged` keeps the credential of the stored network with the same SSID.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialInput {
    kind: String,
    value: Option<String>,
}

/// A network in a profile write.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkInput {
    ssid: String,
    security: SecurityKind,
    credential: CredentialInput,
    bssid: Option<String>,
    channel: Option<u8>,
}

/// `PUT /api/profiles/{name}` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileInput {
    networks: Vec<NetworkInput>,
    #[serde(default)]
    settings: BTreeMap<String, String>,
}

/// The credential a write asks for.
fn credential_of(
    index: usize,
    input: &NetworkInput,
    stored: Option<&Profile>,
) -> Result<CredentialSpec, ApiError> {
    let field = format!("networks[{index}].credential");
    let value = || {
        input.credential.value.clone().ok_or_else(|| {
            ApiError::invalid_field(&format!("{field}.value"), "is required for this kind")
        })
    };
    Ok(match input.credential.kind.as_str() {
        "none" => CredentialSpec::None,
        "per-device" => CredentialSpec::PerDevice,
        "passphrase" => CredentialSpec::Passphrase(value()?),
        "raw-psk" => CredentialSpec::RawPsk(value()?),
        "unchanged" => stored
            .and_then(|p| p.networks.iter().find(|n| n.ssid == input.ssid))
            .map(|n| n.credential.clone())
            .ok_or_else(|| {
                ApiError::invalid_field(
                    &field,
                    format!(
                        "`unchanged`, but the stored profile has no network {:?}",
                        input.ssid
                    ),
                )
            })?,
        _ => {
            return Err(ApiError::invalid_field(
                &format!("{field}.kind"),
                "must be none, passphrase, raw-psk, per-device or unchanged",
            ));
        }
    })
}

/// What the request's `If-Match` / `If-None-Match` headers require.
fn precondition(headers: &HeaderMap, exists: bool) -> Result<ProfilePrecondition, ApiError> {
    let text = |name| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(tag) = text(header::IF_MATCH) {
        if tag == "*" {
            return Ok(ProfilePrecondition::Any);
        }
        return Ok(ProfilePrecondition::Version(
            tag.trim_matches('"').to_string(),
        ));
    }
    if text(header::IF_NONE_MATCH) == Some("*") || !exists {
        return Ok(ProfilePrecondition::Absent);
    }
    Err(ApiError::new(
        StatusCode::PRECONDITION_REQUIRED,
        "precondition_required",
        "the profile exists: send If-Match with the ETag you read, so that a concurrent edit is not overwritten",
    ))
}

/// `PUT /api/profiles/{name}`: create (no header or `If-None-Match: *`) or replace
/// (`If-Match: <ETag>`; 412 when someone else changed it since).
pub async fn put_profile(
    Extension(caller): Extension<Caller>,
    name: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<ProfileInput>,
) -> Result<Response, ApiError> {
    let Path(name) = name.map_err(path_rejection)?;
    let stored = caller.registry.get_profile_versioned(&name).await?;
    let expected = precondition(&headers, stored.is_some())?;
    let stored = stored.map(|(p, _)| p);
    let networks = body
        .networks
        .iter()
        .enumerate()
        .map(|(i, n)| {
            Ok(NetworkSpec {
                ssid: n.ssid.clone(),
                security: n.security,
                credential: credential_of(i, n, stored.as_ref())?,
                bssid: n.bssid.clone(),
                channel: n.channel,
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    let profile = Profile {
        name,
        networks,
        settings: body.settings,
    };
    let version = caller.registry.set_profile_if(&profile, expected).await?;
    let status = if stored.is_some() {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((
        status,
        [(header::ETAG, etag(&version))],
        Json(profile_view(&profile, Some(&version))),
    )
        .into_response())
}

/// `GET /api/status`: the fleet at a glance.
pub async fn status(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let fleet = state.registry.fleet().await?;
    let devices = state.registry.device_counts().await?;
    let latest_audit_id = state.registry.latest_audit_id().await?;
    Ok(Json(json!({
        "fleet": fleet.map(|f| f.name),
        "devices": devices,
        "latest_audit_id": latest_audit_id,
        "configurators": [configurator_view(&state)],
    })))
}

/// This daemon, as `/api/configurators` and `/api/status` show it.
fn configurator_view(state: &AppState) -> Value {
    let info = &state.daemon;
    json!({
        "id": info.configurator_id,
        "channel": info.channel,
        "link": info.link,
        "started_at": format_time(info.started_at_ms),
        "last_heartbeat": format_time(crate::daemon::unix_millis()),
        "active_sessions": state.metrics.active_sessions.get(),
        "provisioned": state.metrics.provisioned.get(),
    })
}

/// `GET /api/configurators`.
pub async fn configurators(State(state): State<AppState>) -> Json<Value> {
    Json(json!({ "items": [configurator_view(&state)] }))
}

/// An audit record as the API shows it.
fn audit_view(event: &AuditEvent) -> Value {
    json!({
        "id": event.id,
        "at": format_time(event.at_ms),
        "at_ms": event.at_ms,
        "kind": event.kind.name(),
        "key_hash": event.key_hash.map(|k| k.to_string()),
        "actor": event.configurator,
        "detail": event.detail,
    })
}

/// `GET /api/audit` query.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditParams {
    after: Option<i64>,
    limit: Option<u32>,
    device: Option<String>,
}

fn audit_filter(device: Option<&str>, limit: u32) -> Result<AuditFilter, ApiError> {
    let key_hash = device
        .map(|d| {
            parse_key_hash(d).ok_or_else(|| {
                ApiError::invalid_field("device", "must be a full key hash (64 hex digits)")
            })
        })
        .transpose()?;
    Ok(AuditFilter {
        key_hash,
        limit: Some(limit),
    })
}

/// `GET /api/audit`: records after `after`, oldest first; `next_after` continues.
pub async fn audit(
    State(state): State<AppState>,
    params: Result<Query<AuditParams>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(params) = params.map_err(query_rejection)?;
    let limit = params.limit.unwrap_or(DEFAULT_PAGE);
    if limit == 0 || limit > MAX_PAGE {
        return Err(ApiError::invalid_field(
            "limit",
            format!("must be 1 to {MAX_PAGE}"),
        ));
    }
    let after = params.after.unwrap_or(0);
    let filter = audit_filter(params.device.as_deref(), limit)?;
    let events = state.registry.audit_since(after, &filter).await?;
    let next_after = events.last().map_or(after, |e| e.id);
    let items: Vec<Value> = events.iter().map(audit_view).collect();
    Ok(Json(json!({ "items": items, "next_after": next_after })))
}

/// `GET /api/audit/stream` query.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamParams {
    after: Option<i64>,
}

/// `GET /api/audit/stream`: every new record as an SSE event (`id` = audit id, so a client
/// that reconnects with `Last-Event-ID` misses nothing). Without `after`, starts at the end.
pub async fn audit_stream(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Result<Query<StreamParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(params) = params.map_err(query_rejection)?;
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok());
    let mut after = match resume.or(params.after) {
        Some(id) => id,
        None => state.registry.latest_audit_id().await?,
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Event, Infallible>>(64);
    let registry = state.registry.clone();
    tokio::spawn(async move {
        let filter = AuditFilter {
            key_hash: None,
            limit: Some(MAX_PAGE),
        };
        loop {
            match registry.audit_since(after, &filter).await {
                Ok(events) => {
                    for event in &events {
                        let sse = Event::default()
                            .id(event.id.to_string())
                            .event(event.kind.name())
                            .data(audit_view(event).to_string());
                        if tx.send(Ok(sse)).await.is_err() {
                            return;
                        }
                        after = event.id;
                    }
                    if events.len() == MAX_PAGE as usize {
                        continue;
                    }
                }
                // The registry is unreachable: keep the stream, try again.
                Err(err) => tracing::debug!(%err, "audit stream cannot read the registry"),
            }
            tokio::select! {
                () = tokio::time::sleep(STREAM_POLL) => {}
                () = tx.closed() => return,
            }
        }
    });
    Ok(Sse::new(tokio_stream::wrappers::ReceiverStream::new(rx))
        .keep_alive(KeepAlive::default())
        .into_response())
}

/// `GET /healthz`: the process serves requests.
pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// `GET /readyz`: 200 while the registry answers, 503 otherwise.
pub async fn readyz(State(state): State<AppState>) -> Response {
    match state.registry.change_counter().await {
        Ok(_) => Json(json!({ "status": "ready" })).into_response(),
        Err(err) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "registry_unavailable",
            format!("the registry does not answer: {err}"),
        )
        .into_response(),
    }
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
        .into_response()
}

/// `GET /api/openapi.json`: the checked-in OpenAPI document.
pub async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        super::OPENAPI_JSON,
    )
        .into_response()
}

/// Any other path: a JSON 404.
pub async fn fallback() -> ApiError {
    ApiError::not_found("no such endpoint: see /api/openapi.json")
}
