//! Bearer-token authentication, role checks and per-client rate limiting for the API.
//!
//! A request carries `Authorization: Bearer zt_...`. No, a wrong, expired or revoked token
//! gets 401; a token whose role may not do what it asks gets 403. Both are audited
//! (`api-denied`, with the token name when known, the method, the path and the client
//! address), and the rate limit bounds how fast anyone can write such records.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use zerotouch_store::{Registry, Role, TokenCheck};

use super::error::ApiError;
use super::{AppState, ClientAddr};

/// The caller of a request that passed authentication.
#[derive(Clone, Debug)]
pub struct Caller {
    /// The registry handle that audits changes with the token's name.
    pub registry: Registry,
}

/// The least role a request needs: reads need a viewer, device changes an operator,
/// profile and token changes an admin.
fn required_role(method: &Method, path: &str) -> Role {
    if method == Method::GET || method == Method::HEAD {
        Role::Viewer
    } else if path.starts_with("/api/profiles") {
        Role::Admin
    } else {
        Role::Operator
    }
}

/// The presented bearer token, if the header has one.
fn bearer(request: &Request) -> Option<&str> {
    let value = request
        .headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Middleware: authenticates, checks the role, and hands a [`Caller`] to the handler.
pub async fn authenticate(
    State(state): State<AppState>,
    ConnectInfo(ClientAddr(client)): ConnectInfo<ClientAddr>,
    mut request: Request,
    next: Next,
) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let check = match bearer(&request) {
        None => None,
        Some(token) => match state.registry.check_token(token).await {
            Ok(check) => Some(check),
            Err(err) => return ApiError::from(err).into_response(),
        },
    };
    let denied = |status: StatusCode, token: Option<&str>, reason: &str| {
        let detail = serde_json::json!({
            "status": status.as_u16(),
            "token": token,
            "reason": reason,
            "method": method.as_str(),
            "path": path,
            "client": client.ip().to_string(),
        });
        (status, reason.to_string(), detail)
    };
    let (status, reason, detail) = match check {
        Some(TokenCheck::Valid(token)) => {
            let needed = required_role(&method, &path);
            if token.role >= needed {
                let mut registry = state.registry.clone();
                registry.set_configurator_id(Some(format!("api:{}", token.name)));
                request.extensions_mut().insert(Caller { registry });
                return next.run(request).await;
            }
            denied(
                StatusCode::FORBIDDEN,
                Some(&token.name),
                &format!(
                    "the token's role {} may not do this: it needs {}",
                    token.role.name(),
                    needed.name()
                ),
            )
        }
        Some(TokenCheck::Invalid(token)) => denied(
            StatusCode::UNAUTHORIZED,
            Some(&token.name),
            if token.revoked_at_ms.is_some() {
                "the token was revoked: create a new one with `zerotouch token create`"
            } else {
                "the token expired: create a new one with `zerotouch token create`"
            },
        ),
        Some(TokenCheck::Unknown) => denied(
            StatusCode::UNAUTHORIZED,
            None,
            "unknown token: use one printed by `zerotouch token create`",
        ),
        None => denied(
            StatusCode::UNAUTHORIZED,
            None,
            "no bearer token: send `Authorization: Bearer <token>` (`zerotouch token create`)",
        ),
    };
    if let Err(err) = state.registry.record_api_denied(detail).await {
        tracing::warn!(%err, "could not audit a refused API request");
    }
    let code = if status == StatusCode::FORBIDDEN {
        "forbidden"
    } else {
        "unauthorized"
    };
    let mut response = ApiError::new(status, code, reason).into_response();
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
    }
    response
}

/// A token bucket per client address.
pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<IpAddr, (f64, Instant)>>,
}

/// Buckets kept before idle ones are dropped.
const MAX_BUCKETS: usize = 4096;

impl RateLimiter {
    /// `per_second` requests per second per client, bursts of twice that.
    pub fn new(per_second: u32) -> Self {
        let per_second = f64::from(per_second.max(1));
        Self {
            per_second,
            burst: per_second * 2.0,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request from `client`'s bucket; false when it is empty.
    fn allow(&self, client: IpAddr) -> bool {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= MAX_BUCKETS {
            let burst = self.burst;
            let rate = self.per_second;
            buckets.retain(|_, (level, at)| {
                *level + now.duration_since(*at).as_secs_f64() * rate < burst
            });
        }
        let (level, at) = buckets.entry(client).or_insert((self.burst, now));
        *level = (*level + now.duration_since(*at).as_secs_f64() * self.per_second).min(self.burst);
        *at = now;
        if *level >= 1.0 {
            *level -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Middleware: 429 with `Retry-After` when a client exceeds its rate.
pub async fn rate_limit(
    State(state): State<AppState>,
    ConnectInfo(ClientAddr(client)): ConnectInfo<ClientAddr>,
    request: Request,
    next: Next,
) -> Response {
    if state.limiter.allow(client.ip()) {
        return next.run(request).await;
    }
    let mut response = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!(
            "more than {} requests per second from {}: slow down",
            state.limiter.per_second,
            client.ip()
        ),
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
    response
}
