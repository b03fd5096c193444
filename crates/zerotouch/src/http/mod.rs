//! The daemon's HTTP API (`zerotouch configurator run --http ADDR`), on axum and tower.
//!
//! `/api/...` needs a bearer token ([`auth`]); `/healthz`, `/readyz`, `/metrics` and
//! `/api/openapi.json` do not (bind to localhost, the default, or put them behind your
//! network policy). Every route is listed in `docs/openapi.json`, served at
//! `/api/openapi.json`; a test checks that the two agree. Requests are limited in size
//! ([`MAX_BODY_BYTES`]) and rate (per client address); errors are JSON naming the field
//! and the reason ([`error::ApiError`]). TLS (rustls) when given a certificate and key.

pub mod auth;
pub mod error;
pub mod metrics;
pub mod routes;
pub mod tls;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::Method;
use axum::routing::{MethodRouter, get, post, put};
use zerotouch_store::Registry;

use self::auth::RateLimiter;
use self::metrics::Metrics;
use crate::error::AppError;

/// Largest request body (an import of ~20,000 DPP URIs).
pub const MAX_BODY_BYTES: usize = 4 << 20;
/// The OpenAPI document.
pub const OPENAPI_JSON: &str = include_str!("../../../../docs/openapi.json");

/// Options of the API, part of `zerotouch configurator run`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct HttpArgs {
    /// Serve the HTTP API on ADDR: `PORT` (on 127.0.0.1), `HOST:PORT` or `[V6]:PORT`.
    #[arg(long = "http", value_name = "ADDR", value_parser = parse_listen_addr)]
    pub http: Option<SocketAddr>,
    /// PEM certificate chain: serve HTTPS (with --tls-key).
    #[arg(long, value_name = "FILE", requires = "tls_key", requires = "http")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Requests per second allowed from one client address (bursts of twice that).
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub http_rate_limit: u32,
}

/// `PORT` means 127.0.0.1:PORT: the API is local unless asked otherwise.
fn parse_listen_addr(text: &str) -> Result<SocketAddr, String> {
    if let Ok(port) = text.parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    text.parse().map_err(|_| {
        format!(
            "{text:?} is not a listen address: use PORT, HOST:PORT (127.0.0.1:8080) or [::1]:PORT"
        )
    })
}

/// The client's address, for the rate limit and the audit of refused requests (over TCP
/// or TLS alike).
#[derive(Clone, Copy, Debug)]
pub struct ClientAddr(pub SocketAddr);

impl
    axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, tokio::net::TcpListener>>
    for ClientAddr
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, tokio::net::TcpListener>) -> Self {
        Self(*stream.remote_addr())
    }
}

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, tls::TlsListener>>
    for ClientAddr
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, tls::TlsListener>) -> Self {
        Self(*stream.remote_addr())
    }
}

/// What the API reports about the daemon serving it.
#[derive(Debug, Clone)]
pub struct DaemonInfo {
    /// The configurator's key hash.
    pub configurator_id: String,
    /// The radio channel served.
    pub channel: u8,
    /// The link (`udp:GROUP:PORT`, ...).
    pub link: String,
    /// When the daemon started (Unix ms).
    pub started_at_ms: i64,
}

/// Shared by every handler.
#[derive(Clone)]
pub struct AppState {
    /// The registry (audit records written through it name no token; see [`auth::Caller`]).
    pub registry: Registry,
    /// The daemon's metrics.
    pub metrics: Arc<Metrics>,
    /// The daemon.
    pub daemon: Arc<DaemonInfo>,
    limiter: Arc<RateLimiter>,
}

impl AppState {
    /// State for a daemon.
    pub fn new(registry: Registry, metrics: Arc<Metrics>, daemon: DaemonInfo, rate: u32) -> Self {
        Self {
            registry,
            metrics,
            daemon: Arc::new(daemon),
            limiter: Arc::new(RateLimiter::new(rate)),
        }
    }
}

/// A router that remembers which (method, path) pairs it serves, for the OpenAPI check.
struct Routes {
    router: Router<AppState>,
    served: Vec<(Method, &'static str)>,
}

impl Routes {
    fn new() -> Self {
        Self {
            router: Router::new(),
            served: Vec::new(),
        }
    }

    fn add(mut self, method: Method, path: &'static str, route: MethodRouter<AppState>) -> Self {
        self.router = self.router.route(path, route);
        self.served.push((method, path));
        self
    }
}

/// The authenticated API routes.
fn api_routes() -> Routes {
    Routes::new()
        .add(Method::GET, "/api/status", get(routes::status))
        .add(
            Method::GET,
            "/api/configurators",
            get(routes::configurators),
        )
        .add(Method::GET, "/api/devices", get(routes::list_devices))
        .add(Method::POST, "/api/devices", post(routes::add_device))
        .add(
            Method::POST,
            "/api/devices/import",
            post(routes::import_devices),
        )
        .add(
            Method::GET,
            "/api/devices/{device}",
            get(routes::get_device),
        )
        .add(
            Method::POST,
            "/api/devices/{device}/revoke",
            post(routes::revoke_device),
        )
        .add(Method::GET, "/api/profiles", get(routes::list_profiles))
        .add(
            Method::GET,
            "/api/profiles/{name}",
            get(routes::get_profile),
        )
        .add(
            Method::PUT,
            "/api/profiles/{name}",
            put(routes::put_profile),
        )
        .add(Method::GET, "/api/audit", get(routes::audit))
        .add(Method::GET, "/api/audit/stream", get(routes::audit_stream))
}

/// The routes anyone may call.
fn public_routes() -> Routes {
    Routes::new()
        .add(Method::GET, "/api/openapi.json", get(routes::openapi))
        .add(Method::GET, "/healthz", get(routes::healthz))
        .add(Method::GET, "/readyz", get(routes::readyz))
        .add(Method::GET, "/metrics", get(routes::metrics))
}

/// Every (method, path) the router serves.
#[cfg(test)]
pub fn served_routes() -> Vec<(Method, &'static str)> {
    let mut all = api_routes().served;
    all.extend(public_routes().served);
    all
}

/// The whole application.
pub fn router(state: AppState) -> Router {
    let api = api_routes()
        .router
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ));
    public_routes()
        .router
        .merge(api)
        .fallback(routes::fallback)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::rate_limit,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// Binds the API and serves it in the background; returns the address it listens on.
pub async fn serve(args: &HttpArgs, state: AppState) -> Result<Option<SocketAddr>, AppError> {
    let Some(addr) = args.http else {
        return Ok(None);
    };
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(tls::server_config(cert, key)?),
        _ => None,
    };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| AppError::io(format_args!("cannot listen on {addr} for --http"), e))?;
    let local = listener
        .local_addr()
        .map_err(|e| AppError::io("cannot read the API's address", e))?;
    let app = router(state).into_make_service_with_connect_info::<ClientAddr>();
    match tls {
        Some(config) => {
            let listener = tls::TlsListener::new(listener, config)
                .map_err(|e| AppError::io("cannot start the TLS listener", e))?;
            tokio::spawn(async move {
                if let Err(err) = axum::serve(listener, app).await {
                    tracing::error!(%err, "the HTTPS API stopped");
                }
            });
        }
        None => {
            tokio::spawn(async move {
                if let Err(err) = axum::serve(listener, app).await {
                    tracing::error!(%err, "the HTTP API stopped");
                }
            });
        }
    }
    tracing::info!(addr = %local, tls = args.tls_cert.is_some(), "HTTP API listening");
    Ok(Some(local))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// Every (method, path) of the checked-in OpenAPI document.
    fn documented() -> BTreeSet<(String, String)> {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI_JSON).expect("valid JSON");
        let paths = doc["paths"].as_object().expect("paths");
        paths
            .iter()
            .flat_map(|(path, ops)| {
                ops.as_object()
                    .expect("operations")
                    .keys()
                    .map(|m| (m.to_ascii_uppercase(), path.clone()))
            })
            .collect()
    }

    #[test]
    fn the_openapi_document_lists_exactly_the_routes_served() {
        let served: BTreeSet<(String, String)> = served_routes()
            .into_iter()
            .map(|(m, p)| (m.as_str().to_string(), p.to_string()))
            .collect();
        let documented = documented();
        let undocumented: Vec<_> = served.difference(&documented).collect();
        let unserved: Vec<_> = documented.difference(&served).collect();
        assert!(
            undocumented.is_empty(),
            "served but not in docs/openapi.json: {undocumented:?}"
        );
        assert!(
            unserved.is_empty(),
            "in docs/openapi.json but not served: {unserved:?}"
        );
    }

    #[test]
    fn a_bare_port_listens_on_localhost() {
        assert_eq!(
            parse_listen_addr("8080"),
            Ok(SocketAddr::from(([127, 0, 0, 1], 8080)))
        );
        assert_eq!(
            parse_listen_addr("0.0.0.0:9"),
            Ok(SocketAddr::from(([0, 0, 0, 0], 9)))
        );
        assert!(
            parse_listen_addr("localhost")
                .unwrap_err()
                .contains("HOST:PORT")
        );
    }
}
