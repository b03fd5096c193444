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
//! # Durability
//!
//! On SQLite (WAL mode) a commit with `synchronous = FULL` fsyncs the write-ahead log; one
//! with `synchronous = NORMAL` leaves it in the OS page cache. Both survive a crash or
//! `kill -9` of any process (the kernel still writes the page cache out); only a power loss
//! or kernel crash can undo a `NORMAL` commit. The registry commits each write as durably
//! as its loss would matter, no more, because each fsync costs milliseconds the radio does
//! not wait for:
//!
//! - `FULL` (on disk when the call returns): [`Registry::record_joined`] and
//!   [`Registry::record_join_failed`], whose results the configurator acknowledges to the
//!   device, which then commits (or abandons) its configuration; every operator change
//!   (allowlist, revocation, profiles, fleet keys, expiry).
//! - `NORMAL`: [`Registry::record_announced`], [`Registry::record_authenticated`],
//!   [`Registry::record_config_delivered`], [`Registry::record_refused`] and the first
//!   generation of a per-device PSK ([`Registry::device_psk`]).
//!
//! Because the WAL is one sequential file, the fsync of a `FULL` commit also makes every
//! earlier `NORMAL` commit durable. So a power loss can lose only the `NORMAL` commits made
//! after the last `FULL` one: announcements, authentications, deliveries and refusals of
//! devices still in flight, and the PSK generated for a device that has not reported its
//! join. That device looks "provisioning" (or "allowed") again, has not committed its
//! configuration (it waits for the acknowledgement of a join, which is only sent after a
//! `FULL` commit), re-announces and is provisioned again, with a fresh PSK if its first was
//! lost. A power loss cannot lose a recorded join or join failure, an operator change, or
//! any event committed before one of those; the audit log never shows a join whose earlier
//! events are missing, since the order of the log is the order of the WAL.
//! [`Registry::record_batch`] commits a batch as `FULL` if any of its transitions needs it.
//! On PostgreSQL every commit is durable (the server's `synchronous_commit` default).
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
mod queries;
mod registry;
mod secret;
mod tokens;
mod transitions;

pub use error::{ImportConflict, StoreError};
pub use model::{
    AllowlistSnapshot, AuditEvent, AuditFilter, AuditKind, CredentialSpec, DEFAULT_PROFILE, Device,
    DeviceConfigPlan, DeviceFilter, DeviceState, Fleet, FleetKeys, NetworkSpec, NewDevice,
    PlannedCredential, PlannedNetwork, Profile, ProvisionedPsk, SecurityKind, UnixMillis,
    failure_reason_from_name, parse_key_hash, parse_mac,
};
pub use profiles::{ProfilePrecondition, validate_profile};
pub use queries::{DevicePageQuery, DeviceSort};
pub use registry::{Backend, Registry};
pub use secret::{SECRET_KEY_ENV, SecretKeySource};
pub use tokens::{ApiToken, Role, TOKEN_PREFIX, TokenCheck};
pub use transitions::{RefusalSummary, Transition, TransitionOutcome};
