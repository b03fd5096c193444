//! zerotouch-store: the registry of a zerotouch fleet.
//!
//! It holds the fleet owner key and configurator identities, network profiles, the devices
//! (allowlist and provisioning state), per-device PSKs and an append-only audit log. One
//! code path runs on SQLite (embedded, the default: a file path or `sqlite:PATH`) and on
//! PostgreSQL (`postgres://...`): sqlx `Any` with runtime queries, portable SQL and embedded
//! per-backend migrations. Secrets are sealed with a key kept outside the database
//! ([`SecretKeySource`]).
//!
//! Every state change the daemon records writes its audit record in the same transaction,
//! so the log never misses or invents an event. Several processes may share one registry:
//! the daemon notices operator changes through [`Registry::change_counter`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), zerotouch_store::StoreError> {
//! use zerotouch_store::{Registry, SecretKeySource};
//! let registry = Registry::open("/var/lib/zerotouch/registry.db", SecretKeySource::Auto).await?;
//! let allowed = registry.allowlist().await?;
//! # let _ = allowed; Ok(()) }
//! ```

mod devices;
mod error;
mod model;
mod profiles;
mod registry;
mod secret;

pub use error::{ImportConflict, StoreError};
pub use model::{
    AllowlistSnapshot, AuditEvent, AuditFilter, AuditKind, CredentialSpec, DEFAULT_PROFILE, Device,
    DeviceConfigPlan, DeviceFilter, DeviceState, Fleet, FleetKeys, NetworkSpec, NewDevice,
    PlannedCredential, PlannedNetwork, Profile, ProvisionedPsk, SecurityKind, UnixMillis,
    failure_reason_from_name, parse_key_hash, parse_mac,
};
pub use profiles::validate_profile;
pub use registry::{Backend, Registry};
pub use secret::{SECRET_KEY_ENV, SecretKeySource};
