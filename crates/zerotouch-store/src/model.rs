//! The values the registry stores and returns: devices, profiles, fleet keys, audit events.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};
use zerotouch_proto::config::Security;
use zerotouch_proto::{Addr, FailureReason, KeyHash, SuiteId};

use crate::error::StoreError;

/// Milliseconds since the Unix epoch.
pub type UnixMillis = i64;

/// Where a device is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeviceState {
    /// Allowlisted, never provisioned.
    Allowed,
    /// Authenticated; a configuration is being delivered or joined.
    Provisioning,
    /// Joined its network (at least once).
    Provisioned,
    /// The last join failed, for this reason; it will retry.
    Failed(FailureReason),
    /// Removed from the allowlist; refused from now on.
    Revoked,
}

impl DeviceState {
    /// The stored name (`allowed`, `provisioning`, `provisioned`, `failed`, `revoked`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Allowed => "allowed",
            Self::Provisioning => "provisioning",
            Self::Provisioned => "provisioned",
            Self::Failed(_) => "failed",
            Self::Revoked => "revoked",
        }
    }

    pub(crate) fn from_columns(state: &str, reason: Option<&str>) -> Result<Self, StoreError> {
        Ok(match state {
            "allowed" => Self::Allowed,
            "provisioning" => Self::Provisioning,
            "provisioned" => Self::Provisioned,
            "failed" => Self::Failed(
                reason
                    .map(failure_reason_from_name)
                    .unwrap_or(FailureReason::Other),
            ),
            "revoked" => Self::Revoked,
            other => {
                return Err(StoreError::Database(format!(
                    "unknown device state {other:?} in the registry"
                )));
            }
        })
    }
}

impl std::fmt::Display for DeviceState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Failed(reason) => write!(f, "failed ({})", reason.name()),
            other => f.write_str(other.name()),
        }
    }
}

/// The reason whose [`FailureReason::name`] is `name`; unknown names are `Other`.
pub fn failure_reason_from_name(name: &str) -> FailureReason {
    (1..=255u8)
        .filter_map(FailureReason::from_u8)
        .find(|r| r.name() == name)
        .unwrap_or(FailureReason::Other)
}

/// A device to allowlist.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewDevice {
    /// SHA-256 of the key's SubjectPublicKeyInfo ([`zerotouch_proto::PublicKey::key_hash`]).
    pub key_hash: KeyHash,
    /// The key's suite.
    pub suite: SuiteId,
    /// The key's wire encoding ([`zerotouch_proto::PublicKey::as_wire`]).
    pub public_key: Vec<u8>,
    /// Optional unique label (e.g. a serial number).
    pub label: Option<String>,
    /// Profile name; `None` uses the profile named [`DEFAULT_PROFILE`].
    pub profile: Option<String>,
    /// When the allowlist entry expires (it is then refused like a revoked one).
    pub expires_at_ms: Option<UnixMillis>,
}

impl NewDevice {
    /// A device with no label, the default profile and no expiry.
    pub fn from_public_key(key: &zerotouch_proto::PublicKey) -> Self {
        Self {
            key_hash: key.key_hash(),
            suite: key.suite(),
            public_key: key.as_wire().to_vec(),
            label: None,
            profile: None,
            expires_at_ms: None,
        }
    }
}

/// Profile used by devices that name none.
pub const DEFAULT_PROFILE: &str = "default";

/// A device as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Device {
    /// The allowlist identifier.
    pub key_hash: KeyHash,
    /// The key's suite.
    pub suite: SuiteId,
    /// The key's wire encoding.
    pub public_key: Vec<u8>,
    /// Unique label, if any.
    pub label: Option<String>,
    /// Profile name; `None` means [`DEFAULT_PROFILE`].
    pub profile: Option<String>,
    /// Per-device settings that override the profile's.
    pub overrides: BTreeMap<String, String>,
    /// Current state.
    pub state: DeviceState,
    /// The reason of the last failed join, kept after a later success.
    pub last_failure: Option<FailureReason>,
    /// Allowlist expiry.
    pub expires_at_ms: Option<UnixMillis>,
    /// Radio address of the last announcement.
    pub last_mac: Option<Addr>,
    /// Kind of the last audit event about this device (`announced`, `joined`, ...).
    pub last_event: Option<String>,
    /// When that event happened.
    pub last_event_at_ms: Option<UnixMillis>,
    /// When it was allowlisted.
    pub created_at_ms: UnixMillis,
    /// Last change.
    pub updated_at_ms: UnixMillis,
    /// First successful join.
    pub provisioned_at_ms: Option<UnixMillis>,
    /// How many times a join moved it into `provisioned` (1 for a device provisioned once).
    pub provision_count: i64,
}

impl Device {
    /// The public key, parsed (checks the point).
    pub fn public_key(
        &self,
    ) -> Result<zerotouch_proto::PublicKey, zerotouch_proto::error::KeyError> {
        zerotouch_proto::PublicKey::from_wire(self.suite, &self.public_key)
    }

    /// The profile this device uses (its own, or [`DEFAULT_PROFILE`]).
    pub fn profile_name(&self) -> &str {
        self.profile.as_deref().unwrap_or(DEFAULT_PROFILE)
    }

    /// True if the device is on the allowlist at `now` (not revoked, not expired).
    pub fn is_allowed_at(&self, now: UnixMillis) -> bool {
        self.state != DeviceState::Revoked && self.expires_at_ms.is_none_or(|t| t > now)
    }
}

/// Which devices [`crate::Registry::list_devices`] returns.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeviceFilter {
    /// Only this state name (`allowed`, `provisioning`, `provisioned`, `failed`, `revoked`).
    pub state: Option<String>,
    /// Only devices using this profile (the default profile matches devices with none).
    pub profile: Option<String>,
}

/// The allowlist at one moment, for the daemon. Implements the core's
/// [`zerotouch_proto::configurator::Allowlist`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AllowlistSnapshot {
    /// Allowlisted keys (not revoked, not expired).
    pub keys: HashSet<KeyHash>,
    /// [`crate::Registry::change_counter`] when taken: reload when it differs.
    pub change_counter: i64,
    /// The earliest expiry among `keys`: reload at that time too.
    pub next_expiry_ms: Option<UnixMillis>,
    /// The labels of the keys that have one, for the daemon's log lines.
    pub labels: std::collections::HashMap<KeyHash, String>,
}

impl AllowlistSnapshot {
    /// The label of an allowlisted key, if it has one.
    pub fn label(&self, key: &KeyHash) -> Option<&str> {
        self.labels.get(key).map(String::as_str)
    }
}

impl zerotouch_proto::configurator::Allowlist for AllowlistSnapshot {
    fn is_allowed(&self, key: &KeyHash) -> bool {
        self.keys.contains(key)
    }
}

/// Wi-Fi security of a profile network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SecurityKind {
    /// Open network.
    Open,
    /// WPA2-Personal.
    Wpa2Psk,
    /// WPA3-Personal (SAE).
    Wpa3Sae,
}

impl SecurityKind {
    /// The wire value.
    pub fn to_security(self) -> Security {
        match self {
            Self::Open => Security::Open,
            Self::Wpa2Psk => Security::Wpa2Psk,
            Self::Wpa3Sae => Security::Wpa3Sae,
        }
    }
}

/// The credential of a profile network.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "value")]
pub enum CredentialSpec {
    /// None (open network).
    None,
    /// One passphrase for every device, 8..=63 printable ASCII characters.
    Passphrase(String),
    /// One raw 256-bit PSK for every device, 64 hex characters (WPA2 only).
    RawPsk(String),
    /// A unique passphrase per device, generated on first need and kept in the registry.
    PerDevice,
}

impl std::fmt::Debug for CredentialSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::None => "None",
            Self::Passphrase(_) => "Passphrase(<redacted>)",
            Self::RawPsk(_) => "RawPsk(<redacted>)",
            Self::PerDevice => "PerDevice",
        })
    }
}

/// One network of a profile.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkSpec {
    /// SSID, 1..=32 bytes of UTF-8.
    pub ssid: String,
    /// Security mode.
    pub security: SecurityKind,
    /// Credential matching `security`.
    pub credential: CredentialSpec,
    /// Optional BSSID hint, `aa:bb:cc:dd:ee:ff`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bssid: Option<String>,
    /// Optional channel hint, 1..=13 (as the configurator's channel; 14 is not supported).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<u8>,
}

/// A network profile: the networks a device may join and its application settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    /// Unique name.
    pub name: String,
    /// Networks in preference order (1..=8).
    pub networks: Vec<NetworkSpec>,
    /// Application settings (key 1..=64 bytes, value up to 4096 bytes).
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
}

/// The credential to deliver to one device.
#[derive(Clone, PartialEq, Eq)]
pub enum PlannedCredential {
    /// Open network.
    None,
    /// A passphrase (shared, or this device's own).
    Passphrase(Zeroizing<String>),
    /// A raw PSK.
    RawPsk(Zeroizing<[u8; 32]>),
}

impl std::fmt::Debug for PlannedCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::None => "None",
            Self::Passphrase(_) => "Passphrase(<redacted>)",
            Self::RawPsk(_) => "RawPsk(<redacted>)",
        })
    }
}

/// One resolved network for one device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedNetwork {
    /// SSID bytes.
    pub ssid: Vec<u8>,
    /// Security mode.
    pub security: Security,
    /// Credential.
    pub credential: PlannedCredential,
    /// BSSID hint.
    pub bssid: Option<[u8; 6]>,
    /// Channel hint.
    pub channel: Option<u8>,
}

impl PlannedNetwork {
    /// As the core's configuration type, for [`zerotouch_proto::config::ConfigWriter::network`].
    pub fn as_network(&self) -> zerotouch_proto::config::Network<'_> {
        use zerotouch_proto::config::Credential;
        zerotouch_proto::config::Network {
            ssid: &self.ssid,
            security: self.security,
            credential: match &self.credential {
                PlannedCredential::None => Credential::None,
                PlannedCredential::Passphrase(p) => Credential::Passphrase(p.as_str()),
                PlannedCredential::RawPsk(k) => Credential::RawPsk(k),
            },
            bssid: self.bssid,
            channel: self.channel,
        }
    }
}

/// Everything to put in one device's configuration object: its profile's networks (with its
/// own PSK where the profile says "per-device") and settings merged with its overrides.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceConfigPlan {
    /// The device.
    pub key_hash: KeyHash,
    /// The profile used.
    pub profile: String,
    /// Networks in preference order.
    pub networks: Vec<PlannedNetwork>,
    /// Settings (profile, then per-device overrides).
    pub settings: BTreeMap<String, String>,
}

/// A per-device PSK to export (hostapd `wpa_psk_file`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProvisionedPsk {
    /// The device.
    pub key_hash: KeyHash,
    /// Its label.
    pub label: Option<String>,
    /// Radio address of its last announcement (the ESP-NOW/Wi-Fi station address).
    pub mac: Option<Addr>,
    /// Its passphrase.
    pub psk: Zeroizing<String>,
}

/// Keys of the fleet for one suite: the owner key and this registry's configurator identity
/// with its owner-signed certificate. Secret halves zeroized on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct FleetKeys {
    /// The suite of both keys.
    pub suite: SuiteId,
    /// Owner public key (wire encoding).
    pub owner_public: Vec<u8>,
    /// Owner secret ([`zerotouch_proto::SigningIdentity::secret_bytes`]).
    pub owner_secret: Zeroizing<[u8; 32]>,
    /// Configurator public key (wire encoding).
    pub configurator_public: Vec<u8>,
    /// Configurator secret.
    pub configurator_secret: Zeroizing<[u8; 32]>,
    /// The configurator certificate ([`zerotouch_proto::ConfiguratorCert::to_bytes`]).
    pub certificate: Vec<u8>,
}

impl std::fmt::Debug for FleetKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FleetKeys")
            .field("suite", &self.suite)
            .field("owner_public", &hex::encode(&self.owner_public))
            .field(
                "configurator_public",
                &hex::encode(&self.configurator_public),
            )
            .field("certificate", &hex::encode(&self.certificate))
            .finish_non_exhaustive()
    }
}

/// The fleet: a name and keys per suite.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fleet {
    /// Operator's name for the fleet.
    pub name: String,
    /// Keys, one entry per suite, ordered by suite id.
    pub keys: Vec<FleetKeys>,
}

impl Fleet {
    /// The keys of `suite`, if the fleet has them.
    pub fn keys_for(&self, suite: SuiteId) -> Option<&FleetKeys> {
        self.keys.iter().find(|k| k.suite == suite)
    }
}

/// What happened, in the audit log.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum AuditKind {
    /// An allowlisted device announced itself.
    Announced,
    /// A device proved its key.
    Authenticated,
    /// Its configuration was sent.
    ConfigDelivered,
    /// It joined its network: newly provisioned.
    Joined,
    /// It reported a join again after it was already provisioned (not a new provisioning).
    Rejoined,
    /// It reported a failed join (the reason is in the detail).
    JoinFailed,
    /// A key that is not allowlisted announced itself.
    Refused,
    /// Removed from the allowlist.
    Revoked,
    /// Added to the allowlist.
    Allowed,
    /// A device's profile or overrides changed, or a profile was set or deleted.
    ProfileChanged,
    /// The fleet keys were created.
    FleetInitialized,
    /// An HTTP API token was created.
    TokenCreated,
    /// An HTTP API token was revoked.
    TokenRevoked,
    /// An HTTP API request was refused: no, wrong or expired token (401), or a role that may
    /// not do it (403).
    ApiDenied,
    /// A kind written by a newer zerotouch.
    Other(String),
}

impl AuditKind {
    /// The stored name (kebab-case).
    pub fn name(&self) -> &str {
        match self {
            Self::Announced => "announced",
            Self::Authenticated => "authenticated",
            Self::ConfigDelivered => "config-delivered",
            Self::Joined => "joined",
            Self::Rejoined => "rejoined",
            Self::JoinFailed => "join-failed",
            Self::Refused => "refused",
            Self::Revoked => "revoked",
            Self::Allowed => "allowed",
            Self::ProfileChanged => "profile-changed",
            Self::FleetInitialized => "fleet-initialized",
            Self::TokenCreated => "token-created",
            Self::TokenRevoked => "token-revoked",
            Self::ApiDenied => "api-denied",
            Self::Other(name) => name,
        }
    }

    /// Parses a stored name.
    pub fn from_name(name: &str) -> Self {
        match name {
            "announced" => Self::Announced,
            "authenticated" => Self::Authenticated,
            "config-delivered" => Self::ConfigDelivered,
            "joined" => Self::Joined,
            "rejoined" => Self::Rejoined,
            "join-failed" => Self::JoinFailed,
            "refused" => Self::Refused,
            "revoked" => Self::Revoked,
            "allowed" => Self::Allowed,
            "profile-changed" => Self::ProfileChanged,
            "fleet-initialized" => Self::FleetInitialized,
            "token-created" => Self::TokenCreated,
            "token-revoked" => Self::TokenRevoked,
            "api-denied" => Self::ApiDenied,
            other => Self::Other(other.to_string()),
        }
    }
}

impl std::fmt::Display for AuditKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One audit log record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEvent {
    /// Increasing, gap-free id (committed in id order): follow with `audit_since(last_id)`.
    pub id: i64,
    /// When.
    pub at_ms: UnixMillis,
    /// The device concerned, if any.
    pub key_hash: Option<KeyHash>,
    /// What happened.
    pub kind: AuditKind,
    /// Details (MAC address, failure reason, profile, ...), a JSON object.
    pub detail: serde_json::Value,
    /// The configurator that wrote it (`None` for operator commands).
    pub configurator: Option<String>,
}

/// Which records [`crate::Registry::audit_since`] returns.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Only records about this device.
    pub key_hash: Option<KeyHash>,
    /// At most this many records (default 1000).
    pub limit: Option<u32>,
}

/// Parses 64 lower- or upper-case hex characters.
pub fn parse_key_hash(text: &str) -> Option<KeyHash> {
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut bytes).ok()?;
    Some(KeyHash(bytes))
}

/// Parses `aa:bb:cc:dd:ee:ff` (or `-` separated).
pub fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut parts = text.split([':', '-']);
    for byte in &mut out {
        let part = parts.next()?;
        if part.len() != 2 {
            return None;
        }
        *byte = u8::from_str_radix(part, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}
