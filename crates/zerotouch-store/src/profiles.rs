//! Network profiles, per-device PSKs, the configuration plan of one device, and the
//! hostapd PSK export. Profile networks and settings are sealed (they hold passphrases).

use std::collections::BTreeMap;

use serde_json::json;
use sqlx::Row;
use zeroize::Zeroizing;
use zerotouch_proto::config::{MAX_NETWORKS, Security};
use zerotouch_proto::{Addr, KeyHash};

use crate::error::StoreError;
use crate::model::{
    AuditKind, CredentialSpec, DEFAULT_PROFILE, DeviceConfigPlan, DeviceState, NetworkSpec,
    PlannedCredential, PlannedNetwork, Profile, ProvisionedPsk, SecurityKind, parse_key_hash,
    parse_mac,
};
use crate::registry::{Durability, Registry, now_ms};

/// Characters of generated per-device passphrases: letters and digits without look-alikes
/// (0/O, 1/l/I), nothing that needs quoting in wpa_supplicant, hostapd or shell files.
const PSK_ALPHABET: &[u8] = b"23456789abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ";
/// Length of generated passphrases: 32 characters of a 56-letter alphabet, ~186 bits.
const GENERATED_PSK_LEN: usize = 32;
/// Longest profile name.
const MAX_PROFILE_NAME_LEN: usize = 64;
/// Longest setting key (bytes), as the configuration object allows.
const MAX_SETTING_KEY_LEN: usize = 64;
/// Longest setting value (bytes), as the configuration object allows.
const MAX_SETTING_VALUE_LEN: usize = 4096;

/// Checks application settings against the configuration object's limits.
pub(crate) fn validate_settings(settings: &BTreeMap<String, String>) -> Result<(), StoreError> {
    for (key, value) in settings {
        if key.is_empty() || key.len() > MAX_SETTING_KEY_LEN {
            return Err(StoreError::InvalidConfig(format!(
                "setting key {key:?} must be 1 to {MAX_SETTING_KEY_LEN} bytes"
            )));
        }
        if value.len() > MAX_SETTING_VALUE_LEN {
            return Err(StoreError::InvalidConfig(format!(
                "the value of setting {key:?} is longer than {MAX_SETTING_VALUE_LEN} bytes"
            )));
        }
    }
    Ok(())
}

fn validate_passphrase(ssid: &str, passphrase: &str) -> Result<(), StoreError> {
    if !(8..=63).contains(&passphrase.len())
        || !passphrase.bytes().all(|b| (0x20..=0x7e).contains(&b))
    {
        return Err(StoreError::InvalidConfig(format!(
            "the passphrase of {ssid:?} must be 8 to 63 printable ASCII characters"
        )));
    }
    Ok(())
}

fn validate_network(net: &NetworkSpec) -> Result<(), StoreError> {
    let ssid = &net.ssid;
    if net.ssid.is_empty() || net.ssid.len() > 32 {
        return Err(StoreError::InvalidConfig(format!(
            "SSID {ssid:?} must be 1 to 32 bytes"
        )));
    }
    match (net.security, &net.credential) {
        (SecurityKind::Open, CredentialSpec::None) => {}
        (SecurityKind::Open, _) => {
            return Err(StoreError::InvalidConfig(format!(
                "{ssid:?} is open: it takes no passphrase"
            )));
        }
        (_, CredentialSpec::None) => {
            return Err(StoreError::InvalidConfig(format!(
                "{ssid:?} needs a passphrase, a raw PSK or per-device"
            )));
        }
        (_, CredentialSpec::Passphrase(p)) => validate_passphrase(ssid, p)?,
        (SecurityKind::Wpa2Psk, CredentialSpec::RawPsk(hex_psk)) => {
            if hex_psk.len() != 64 || !hex_psk.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(StoreError::InvalidConfig(format!(
                    "the raw PSK of {ssid:?} must be 64 hex characters"
                )));
            }
        }
        (_, CredentialSpec::RawPsk(_)) => {
            return Err(StoreError::InvalidConfig(format!(
                "{ssid:?}: a raw PSK works with wpa2-psk only; WPA3-SAE needs a passphrase"
            )));
        }
        (_, CredentialSpec::PerDevice) => {}
    }
    if let Some(bssid) = &net.bssid
        && parse_mac(bssid).is_none()
    {
        return Err(StoreError::InvalidConfig(format!(
            "BSSID {bssid:?} of {ssid:?} is not of the form aa:bb:cc:dd:ee:ff"
        )));
    }
    if let Some(channel) = net.channel
        && !(1..=13).contains(&channel)
    {
        return Err(StoreError::InvalidConfig(format!(
            "channel {channel} of {ssid:?} is not 1 to 13 (the channels zerotouch radios use; 14 is not supported)"
        )));
    }
    Ok(())
}

/// Checks a profile completely.
pub fn validate_profile(profile: &Profile) -> Result<(), StoreError> {
    let name = &profile.name;
    if name.is_empty()
        || name.len() > MAX_PROFILE_NAME_LEN
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    {
        return Err(StoreError::InvalidConfig(format!(
            "profile name {name:?} must be 1 to {MAX_PROFILE_NAME_LEN} letters, digits, '.', '_' or '-'"
        )));
    }
    if profile.networks.is_empty() || profile.networks.len() > MAX_NETWORKS {
        return Err(StoreError::InvalidConfig(format!(
            "profile {name:?} must have 1 to {MAX_NETWORKS} networks"
        )));
    }
    profile.networks.iter().try_for_each(validate_network)?;
    validate_settings(&profile.settings)
}

/// A fresh passphrase from the OS CSPRNG (rejection sampling: no modulo bias).
fn generate_passphrase() -> Result<Zeroizing<String>, StoreError> {
    // 224 = 4 * 56: bytes at or above it are discarded so every letter is equally likely.
    let limit = (256 / PSK_ALPHABET.len() * PSK_ALPHABET.len()) as u8;
    let mut out = Zeroizing::new(String::with_capacity(GENERATED_PSK_LEN));
    let mut buf = Zeroizing::new([0u8; 64]);
    while out.len() < GENERATED_PSK_LEN {
        getrandom::fill(buf.as_mut()).map_err(|e| StoreError::Random(e.to_string()))?;
        for &b in buf.iter().filter(|&&b| b < limit) {
            if out.len() == GENERATED_PSK_LEN {
                break;
            }
            out.push(char::from(
                PSK_ALPHABET[usize::from(b) % PSK_ALPHABET.len()],
            ));
        }
    }
    Ok(out)
}

/// What [`Registry::set_profile_if`] expects to find.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProfilePrecondition {
    /// Anything: an unconditional write.
    Any,
    /// No profile of that name (create only).
    Absent,
    /// The profile at this version (from [`Registry::get_profile_versioned`]).
    Version(String),
}

/// A profile's version: a digest of its sealed columns. Every write seals with a fresh
/// nonce, so every write makes a new version, even of identical contents.
fn profile_version(networks_sealed: &str, settings_sealed: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::new()
        .chain_update(networks_sealed.as_bytes())
        .chain_update([0])
        .chain_update(settings_sealed.as_bytes())
        .finalize();
    hex::encode(&digest[..12])
}

impl Registry {
    fn profile_from_row(&self, row: &sqlx::any::AnyRow) -> Result<Profile, StoreError> {
        let name: String = row.try_get("name").map_err(|e| self.db_err(e))?;
        let networks: String = row.try_get("networks").map_err(|e| self.db_err(e))?;
        let settings: String = row.try_get("settings").map_err(|e| self.db_err(e))?;
        let networks = self
            .secret
            .open_or_tampered("profiles", "networks", &name, &networks)?;
        let settings = self
            .secret
            .open_or_tampered("profiles", "settings", &name, &settings)?;
        let corrupt = |what: &str| StoreError::Corrupt {
            location: self.location().to_string(),
            detail: format!("profile {name:?}: {what}"),
        };
        Ok(Profile {
            networks: serde_json::from_slice(&networks).map_err(|_| corrupt("bad networks"))?,
            settings: serde_json::from_slice(&settings).map_err(|_| corrupt("bad settings"))?,
            name,
        })
    }

    /// Creates or replaces a profile (validated first: SSIDs, passphrases, channels,
    /// settings).
    pub async fn set_profile(&self, profile: &Profile) -> Result<(), StoreError> {
        self.set_profile_if(profile, ProfilePrecondition::Any)
            .await
            .map(drop)
    }

    /// Like [`Registry::set_profile`], only if the stored profile is still the version the
    /// caller read ([`StoreError::ProfileVersionMismatch`] otherwise, nothing written), so
    /// that of two concurrent edits the second is refused instead of silently lost.
    /// Returns the new version.
    pub async fn set_profile_if(
        &self,
        profile: &Profile,
        expected: ProfilePrecondition,
    ) -> Result<String, StoreError> {
        validate_profile(profile)?;
        let now = now_ms();
        let networks = Zeroizing::new(
            serde_json::to_vec(&profile.networks)
                .map_err(|e| StoreError::InvalidConfig(e.to_string()))?,
        );
        let settings = Zeroizing::new(
            serde_json::to_vec(&profile.settings)
                .map_err(|e| StoreError::InvalidConfig(e.to_string()))?,
        );
        let networks = self
            .secret
            .seal("profiles", "networks", &profile.name, &networks)?;
        let settings = self
            .secret
            .seal("profiles", "settings", &profile.name, &settings)?;
        let version = profile_version(&networks, &settings);
        let mut tx = self.begin_write().await?;
        self.check_profile_precondition(&mut tx, &profile.name, &expected)
            .await?;
        sqlx::query(
            "INSERT INTO profiles (name, networks, settings, created_at, updated_at) VALUES ($1, $2, $3, $4, $4) ON CONFLICT (name) DO UPDATE SET networks = excluded.networks, settings = excluded.settings, updated_at = excluded.updated_at",
        )
        .bind(profile.name.clone())
        .bind(networks)
        .bind(settings)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(|e| self.db_err(e))?;
        let ssids: Vec<&str> = profile.networks.iter().map(|n| n.ssid.as_str()).collect();
        self.append_audit(
            &mut tx,
            now,
            None,
            AuditKind::ProfileChanged,
            json!({ "profile": profile.name, "action": "set", "ssids": ssids }),
        )
        .await?;
        self.bump_change_counter(&mut tx).await?;
        self.commit(tx).await?;
        Ok(version)
    }

    /// Fails unless the stored version of profile `name` is what `expected` says. Runs in
    /// the write transaction, with the row locked, so the check and the write are atomic.
    async fn check_profile_precondition(
        &self,
        conn: &mut sqlx::AnyConnection,
        name: &str,
        expected: &ProfilePrecondition,
    ) -> Result<(), StoreError> {
        if *expected == ProfilePrecondition::Any {
            return Ok(());
        }
        // SQLite's BEGIN IMMEDIATE already holds the write lock; PostgreSQL locks the row.
        let sql = match self.backend() {
            crate::Backend::Sqlite { .. } => {
                "SELECT networks, settings FROM profiles WHERE name = $1"
            }
            crate::Backend::Postgres => {
                "SELECT networks, settings FROM profiles WHERE name = $1 FOR UPDATE"
            }
        };
        let row = sqlx::query(sql)
            .bind(name.to_string())
            .fetch_optional(&mut *conn)
            .await
            .map_err(|e| self.db_err(e))?;
        let current = match &row {
            Some(row) => {
                let networks: String = row.try_get("networks").map_err(|e| self.db_err(e))?;
                let settings: String = row.try_get("settings").map_err(|e| self.db_err(e))?;
                Some(profile_version(&networks, &settings))
            }
            None => None,
        };
        let ok = match expected {
            ProfilePrecondition::Any => true,
            ProfilePrecondition::Absent => current.is_none(),
            ProfilePrecondition::Version(v) => current.as_deref() == Some(v.as_str()),
        };
        if ok {
            return Ok(());
        }
        Err(StoreError::ProfileVersionMismatch {
            name: name.to_string(),
            current: current.unwrap_or_else(|| "none".into()),
        })
    }

    /// The profile named `name` with its version (for [`Registry::set_profile_if`]).
    pub async fn get_profile_versioned(
        &self,
        name: &str,
    ) -> Result<Option<(Profile, String)>, StoreError> {
        let row = sqlx::query("SELECT name, networks, settings FROM profiles WHERE name = $1")
            .bind(name.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| self.db_err(e))?;
        let Some(row) = row else { return Ok(None) };
        let networks: String = row.try_get("networks").map_err(|e| self.db_err(e))?;
        let settings: String = row.try_get("settings").map_err(|e| self.db_err(e))?;
        Ok(Some((
            self.profile_from_row(&row)?,
            profile_version(&networks, &settings),
        )))
    }

    /// The profile named `name`.
    pub async fn get_profile(&self, name: &str) -> Result<Option<Profile>, StoreError> {
        let row = sqlx::query("SELECT name, networks, settings FROM profiles WHERE name = $1")
            .bind(name.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| self.db_err(e))?;
        row.map(|r| self.profile_from_row(&r)).transpose()
    }

    /// Every profile, by name.
    pub async fn list_profiles(&self) -> Result<Vec<Profile>, StoreError> {
        let rows = sqlx::query("SELECT name, networks, settings FROM profiles ORDER BY name")
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.db_err(e))?;
        rows.iter().map(|r| self.profile_from_row(r)).collect()
    }

    /// Deletes a profile no device uses ([`StoreError::ProfileInUse`] otherwise; devices
    /// without a profile use [`DEFAULT_PROFILE`]).
    pub async fn delete_profile(&self, name: &str) -> Result<(), StoreError> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        let users: i64 = if name == DEFAULT_PROFILE {
            sqlx::query_scalar("SELECT COUNT(*) FROM devices WHERE (profile = $1 OR profile IS NULL) AND state <> 'revoked'")
        } else {
            sqlx::query_scalar("SELECT COUNT(*) FROM devices WHERE profile = $1 AND state <> 'revoked'")
        }
        .bind(name.to_string())
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| self.db_err(e))?;
        if users > 0 {
            return Err(StoreError::ProfileInUse {
                name: name.to_string(),
                devices: users,
            });
        }
        // Revoked devices keep no claim on a profile.
        sqlx::query("UPDATE devices SET profile = NULL WHERE profile = $1")
            .bind(name.to_string())
            .execute(&mut *tx)
            .await
            .map_err(|e| self.db_err(e))?;
        let deleted = sqlx::query("DELETE FROM profiles WHERE name = $1")
            .bind(name.to_string())
            .execute(&mut *tx)
            .await
            .map_err(|e| self.db_err(e))?
            .rows_affected();
        if deleted == 0 {
            return Err(StoreError::UnknownProfile(name.to_string()));
        }
        self.append_audit(
            &mut tx,
            now,
            None,
            AuditKind::ProfileChanged,
            json!({ "profile": name, "action": "delete" }),
        )
        .await?;
        self.bump_change_counter(&mut tx).await?;
        self.commit(tx).await
    }

    /// The device's own passphrase: generated (CSPRNG) and sealed on first need, the same
    /// ever after.
    pub async fn device_psk(&self, key_hash: &KeyHash) -> Result<Zeroizing<String>, StoreError> {
        let row_key = key_hash.to_string();
        if let Some(psk) = self.stored_psk(&row_key).await? {
            return Ok(psk);
        }
        let fresh = generate_passphrase()?;
        let sealed = self
            .secret
            .seal("device_psks", "psk", &row_key, fresh.as_bytes())?;
        // Two configurators racing: the first insert wins, both return the stored value.
        // Relaxed: the device commits this PSK only after its join is recorded durably,
        // which makes this insert durable too; lost before that, a fresh PSK is generated.
        sqlx::query("INSERT INTO device_psks (key_hash, psk, created_at) VALUES ($1, $2, $3) ON CONFLICT (key_hash) DO NOTHING")
            .bind(row_key.clone())
            .bind(sealed)
            .bind(now_ms())
            .execute(self.write_pool(Durability::Relaxed))
            .await
            .map_err(|e| {
                if let sqlx::Error::Database(db) = &e
                    && db.kind() == sqlx::error::ErrorKind::ForeignKeyViolation
                {
                    return StoreError::DeviceNotFound(row_key.clone());
                }
                self.db_err(e)
            })?;
        self.stored_psk(&row_key)
            .await?
            .ok_or_else(|| StoreError::DeviceNotFound(row_key.clone()))
    }

    async fn stored_psk(&self, row_key: &str) -> Result<Option<Zeroizing<String>>, StoreError> {
        let sealed: Option<String> =
            sqlx::query_scalar("SELECT psk FROM device_psks WHERE key_hash = $1")
                .bind(row_key.to_string())
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| self.db_err(e))?;
        let Some(sealed) = sealed else {
            return Ok(None);
        };
        let plain = self
            .secret
            .open_or_tampered("device_psks", "psk", row_key, &sealed)?;
        let text = std::str::from_utf8(&plain).map_err(|_| StoreError::Tampered {
            what: format!("device_psks.psk of {row_key}"),
        })?;
        Ok(Some(Zeroizing::new(text.to_string())))
    }

    /// What to deliver to this device: its profile's networks (its own passphrase where the
    /// profile says per-device) and the profile settings overlaid with its overrides.
    /// Errors: not found, revoked or expired ([`StoreError::DeviceRevoked`]), unknown profile.
    pub async fn device_config(&self, key_hash: &KeyHash) -> Result<DeviceConfigPlan, StoreError> {
        let device = self
            .get_device(key_hash)
            .await?
            .ok_or_else(|| StoreError::DeviceNotFound(key_hash.to_string()))?;
        if device.state == DeviceState::Revoked || !device.is_allowed_at(now_ms()) {
            return Err(StoreError::DeviceRevoked(*key_hash));
        }
        let profile_name = device.profile_name().to_string();
        let profile = self
            .get_profile(&profile_name)
            .await?
            .ok_or_else(|| StoreError::UnknownProfile(profile_name.clone()))?;
        let mut networks = Vec::with_capacity(profile.networks.len());
        for net in &profile.networks {
            let credential = match &net.credential {
                CredentialSpec::None => PlannedCredential::None,
                CredentialSpec::Passphrase(p) => {
                    PlannedCredential::Passphrase(Zeroizing::new(p.clone()))
                }
                CredentialSpec::RawPsk(h) => {
                    let mut psk = Zeroizing::new([0u8; 32]);
                    hex::decode_to_slice(h, psk.as_mut()).map_err(|_| {
                        StoreError::InvalidConfig(format!(
                            "the raw PSK of {:?} is not hex",
                            net.ssid
                        ))
                    })?;
                    PlannedCredential::RawPsk(psk)
                }
                CredentialSpec::PerDevice => {
                    PlannedCredential::Passphrase(self.device_psk(key_hash).await?)
                }
            };
            networks.push(PlannedNetwork {
                ssid: net.ssid.as_bytes().to_vec(),
                security: match net.security {
                    SecurityKind::Open => Security::Open,
                    SecurityKind::Wpa2Psk => Security::Wpa2Psk,
                    SecurityKind::Wpa3Sae => Security::Wpa3Sae,
                },
                credential,
                bssid: net.bssid.as_deref().and_then(parse_mac),
                channel: net.channel,
            });
        }
        let mut settings = profile.settings.clone();
        settings.extend(device.overrides.clone());
        Ok(DeviceConfigPlan {
            key_hash: *key_hash,
            profile: profile_name,
            networks,
            settings,
        })
    }

    /// Per-device passphrases of the devices provisioned now (not revoked, failed or
    /// expired), for a hostapd `wpa_psk_file`.
    pub async fn provisioned_psks(&self) -> Result<Vec<ProvisionedPsk>, StoreError> {
        let rows = sqlx::query(
            "SELECT d.key_hash AS key_hash, d.label AS label, d.last_mac AS last_mac, p.psk AS psk FROM devices d JOIN device_psks p ON p.key_hash = d.key_hash WHERE d.state = 'provisioned' AND (d.expires_at IS NULL OR d.expires_at > $1) ORDER BY d.created_at, d.key_hash",
        )
        .bind(now_ms())
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.db_err(e))?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let key: String = row.try_get("key_hash").map_err(|e| self.db_err(e))?;
            let sealed: String = row.try_get("psk").map_err(|e| self.db_err(e))?;
            let mac: Option<String> = row.try_get("last_mac").map_err(|e| self.db_err(e))?;
            let plain = self
                .secret
                .open_or_tampered("device_psks", "psk", &key, &sealed)?;
            let psk = std::str::from_utf8(&plain).map_err(|_| StoreError::Tampered {
                what: format!("device_psks.psk of {key}"),
            })?;
            out.push(ProvisionedPsk {
                key_hash: parse_key_hash(&key).ok_or_else(|| StoreError::Corrupt {
                    location: self.location().to_string(),
                    detail: format!("bad key hash {key:?}"),
                })?,
                label: row.try_get("label").map_err(|e| self.db_err(e))?,
                mac: mac.as_deref().and_then(parse_mac).map(Addr),
                psk: Zeroizing::new(psk.to_string()),
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_passphrases_are_long_distinct_and_from_the_alphabet() {
        let a = generate_passphrase().expect("rng");
        let b = generate_passphrase().expect("rng");
        assert_eq!(a.len(), GENERATED_PSK_LEN);
        assert!(a.bytes().all(|c| PSK_ALPHABET.contains(&c)));
        assert_ne!(*a, *b);
    }

    fn network(security: SecurityKind, credential: CredentialSpec) -> NetworkSpec {
        NetworkSpec {
            ssid: "plant".into(),
            security,
            credential,
            bssid: None,
            channel: None,
        }
    }

    #[test]
    fn network_checks_match_security_and_credential() {
        assert!(validate_network(&network(SecurityKind::Open, CredentialSpec::None)).is_ok());
        assert!(validate_network(&network(SecurityKind::Open, CredentialSpec::PerDevice)).is_err());
        assert!(validate_network(&network(SecurityKind::Wpa2Psk, CredentialSpec::None)).is_err());
        assert!(
            validate_network(&network(
                SecurityKind::Wpa2Psk,
                CredentialSpec::Passphrase("short".into())
            ))
            .is_err()
        );
        assert!(
            validate_network(&network(
                SecurityKind::Wpa3Sae,
                CredentialSpec::Passphrase("long enough".into())
            ))
            .is_ok()
        );
        assert!(
            validate_network(&network(
                SecurityKind::Wpa3Sae,
                CredentialSpec::RawPsk("ab".repeat(32))
            ))
            .is_err()
        );
        assert!(
            validate_network(&network(
                SecurityKind::Wpa2Psk,
                CredentialSpec::RawPsk("ab".repeat(32))
            ))
            .is_ok()
        );
        let mut bad_channel = network(SecurityKind::Wpa2Psk, CredentialSpec::PerDevice);
        bad_channel.channel = Some(15);
        assert!(validate_network(&bad_channel).is_err());
        let mut bad_bssid = network(SecurityKind::Wpa2Psk, CredentialSpec::PerDevice);
        bad_bssid.bssid = Some("aa:bb".into());
        assert!(validate_network(&bad_bssid).is_err());
    }
}
