//! Devices: the allowlist (add, re-allow, import, revoke, look up), each change together
//! with its audit record in one transaction. The daemon's state transitions are in
//! `transitions`.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::json;
use sqlx::AnyConnection;
use sqlx::Row;
use sqlx::any::AnyRow;
use zerotouch_proto::{Addr, KeyHash, SuiteId};

use crate::error::{ImportConflict, StoreError};
use crate::model::{
    AllowlistSnapshot, AuditKind, DEFAULT_PROFILE, Device, DeviceFilter, DeviceState, NewDevice,
    UnixMillis, failure_reason_from_name, parse_key_hash, parse_mac,
};
use crate::profiles::validate_settings;
use crate::registry::{Registry, now_ms};

pub(crate) const DEVICE_COLUMNS: &str = "key_hash, suite, public_key, label, profile, overrides, state, failure_reason, expires_at, last_mac, last_event, last_event_at, created_at, updated_at, provisioned_at, provision_count";

/// Longest label accepted.
const MAX_LABEL_LEN: usize = 128;
/// Fewest hex digits accepted as a key-hash prefix.
const MIN_PREFIX_LEN: usize = 4;

fn validate_label(label: &str) -> Result<(), StoreError> {
    if label.is_empty() || label.len() > MAX_LABEL_LEN {
        return Err(StoreError::InvalidInput(format!(
            "label {label:?} must be 1 to {MAX_LABEL_LEN} bytes"
        )));
    }
    if label.chars().any(|c| c.is_control()) {
        return Err(StoreError::InvalidInput(format!(
            "label {label:?} contains control characters"
        )));
    }
    Ok(())
}

fn validate_new_device(device: &NewDevice) -> Result<(), StoreError> {
    if device.public_key.len() != device.suite.public_key_len() {
        return Err(StoreError::InvalidInput(format!(
            "a {:?} public key has {} bytes, not {}",
            device.suite,
            device.suite.public_key_len(),
            device.public_key.len()
        )));
    }
    if let Some(label) = &device.label {
        validate_label(label)?;
    }
    Ok(())
}

impl Registry {
    pub(crate) fn device_from_row(&self, row: &AnyRow) -> Result<Device, StoreError> {
        let get_err = |e: sqlx::Error| self.db_err(e);
        let key_text: String = row.try_get("key_hash").map_err(get_err)?;
        let corrupt = |what: &str| StoreError::Corrupt {
            location: self.location().to_string(),
            detail: format!("device {key_text}: {what}"),
        };
        let key_hash = parse_key_hash(&key_text).ok_or_else(|| corrupt("bad key hash"))?;
        let suite_id: i64 = row.try_get("suite").map_err(get_err)?;
        let suite = u8::try_from(suite_id)
            .ok()
            .and_then(SuiteId::from_u8)
            .ok_or_else(|| corrupt("unknown suite"))?;
        let public_key_hex: String = row.try_get("public_key").map_err(get_err)?;
        let public_key = hex::decode(public_key_hex).map_err(|_| corrupt("bad public key"))?;
        let overrides_sealed: Option<String> = row.try_get("overrides").map_err(get_err)?;
        let overrides = match overrides_sealed {
            Some(sealed) => {
                let plain =
                    self.secret
                        .open_or_tampered("devices", "overrides", &key_text, &sealed)?;
                serde_json::from_slice(&plain).map_err(|_| corrupt("bad overrides"))?
            }
            None => BTreeMap::new(),
        };
        let state: String = row.try_get("state").map_err(get_err)?;
        let reason: Option<String> = row.try_get("failure_reason").map_err(get_err)?;
        let last_mac: Option<String> = row.try_get("last_mac").map_err(get_err)?;
        Ok(Device {
            key_hash,
            suite,
            public_key,
            label: row.try_get("label").map_err(get_err)?,
            profile: row.try_get("profile").map_err(get_err)?,
            overrides,
            state: DeviceState::from_columns(&state, reason.as_deref())?,
            last_failure: reason.as_deref().map(failure_reason_from_name),
            expires_at_ms: row.try_get("expires_at").map_err(get_err)?,
            last_mac: last_mac.as_deref().and_then(parse_mac).map(Addr),
            last_event: row.try_get("last_event").map_err(get_err)?,
            last_event_at_ms: row.try_get("last_event_at").map_err(get_err)?,
            created_at_ms: row.try_get("created_at").map_err(get_err)?,
            updated_at_ms: row.try_get("updated_at").map_err(get_err)?,
            provisioned_at_ms: row.try_get("provisioned_at").map_err(get_err)?,
            provision_count: row.try_get("provision_count").map_err(get_err)?,
        })
    }

    async fn profile_exists(
        &self,
        conn: &mut AnyConnection,
        name: &str,
    ) -> Result<bool, StoreError> {
        let found: Option<String> = sqlx::query_scalar("SELECT name FROM profiles WHERE name = $1")
            .bind(name.to_string())
            .fetch_optional(&mut *conn)
            .await
            .map_err(|e| self.db_err(e))?;
        Ok(found.is_some())
    }

    /// Why `device` cannot be added to the registry as it is now, if it cannot.
    async fn conflict_of(
        &self,
        conn: &mut AnyConnection,
        device: &NewDevice,
    ) -> Result<Option<StoreError>, StoreError> {
        let existing: Option<String> =
            sqlx::query_scalar("SELECT key_hash FROM devices WHERE key_hash = $1")
                .bind(device.key_hash.to_string())
                .fetch_optional(&mut *conn)
                .await
                .map_err(|e| self.db_err(e))?;
        if existing.is_some() {
            return Ok(Some(StoreError::DuplicateKey(device.key_hash)));
        }
        if let Some(label) = &device.label {
            let owner: Option<String> =
                sqlx::query_scalar("SELECT key_hash FROM devices WHERE label = $1")
                    .bind(label.clone())
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(|e| self.db_err(e))?;
            if owner.is_some() {
                return Ok(Some(StoreError::DuplicateLabel(label.clone())));
            }
        }
        if let Some(profile) = &device.profile
            && !self.profile_exists(conn, profile).await?
        {
            return Ok(Some(StoreError::UnknownProfile(profile.clone())));
        }
        Ok(None)
    }

    async fn insert_device(
        &self,
        conn: &mut AnyConnection,
        device: &NewDevice,
        now: UnixMillis,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO devices (key_hash, suite, public_key, label, profile, state, expires_at, created_at, updated_at, provision_count) VALUES ($1, $2, $3, $4, $5, 'allowed', $6, $7, $8, 0)",
        )
        .bind(device.key_hash.to_string())
        .bind(i64::from(device.suite as u8))
        .bind(hex::encode(&device.public_key))
        .bind(device.label.clone())
        .bind(device.profile.clone())
        .bind(device.expires_at_ms)
        .bind(now)
        .bind(now)
        .execute(&mut *conn)
        .await
        .map_err(|e| self.db_err(e))?;
        self.append_audit(
            conn,
            now,
            Some(&device.key_hash),
            AuditKind::Allowed,
            json!({ "label": device.label, "profile": device.profile.as_deref().unwrap_or(DEFAULT_PROFILE), "suite": device.suite.name(), "expires_at": device.expires_at_ms }),
        )
        .await?;
        Ok(())
    }

    /// Allowlists one device (state `allowed`). A revoked device is allowed again (undoing
    /// a mistaken revoke): back to `allowed` with an `allowed` audit record marked
    /// `"reallowed": true`; it takes `device`'s expiry, and its label and profile where
    /// `device` gives them (it keeps its own otherwise) and its provisioning history.
    /// Errors: [`StoreError::DuplicateKey`] (the key is allowlisted and not revoked),
    /// [`StoreError::DuplicateLabel`], [`StoreError::UnknownProfile`].
    pub async fn allow(&self, device: NewDevice) -> Result<Device, StoreError> {
        validate_new_device(&device)?;
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        let state: Option<String> =
            sqlx::query_scalar("SELECT state FROM devices WHERE key_hash = $1")
                .bind(device.key_hash.to_string())
                .fetch_optional(&mut *tx)
                .await
                .map_err(|e| self.db_err(e))?;
        if state.as_deref() == Some(DeviceState::Revoked.name()) {
            self.reallow_revoked(&mut tx, &device, now).await?;
        } else {
            if let Some(conflict) = self.conflict_of(&mut tx, &device).await? {
                return Err(conflict);
            }
            self.insert_device(&mut tx, &device, now).await?;
        }
        self.bump_change_counter(&mut tx).await?;
        self.commit(tx).await?;
        self.get_device(&device.key_hash)
            .await?
            .ok_or_else(|| StoreError::DeviceNotFound(device.key_hash.to_string()))
    }

    /// Returns a revoked device to `allowed` (see [`Registry::allow`]).
    async fn reallow_revoked(
        &self,
        conn: &mut AnyConnection,
        device: &NewDevice,
        now: UnixMillis,
    ) -> Result<(), StoreError> {
        if let Some(label) = &device.label {
            let owner: Option<String> = sqlx::query_scalar(
                "SELECT key_hash FROM devices WHERE label = $1 AND key_hash <> $2",
            )
            .bind(label.clone())
            .bind(device.key_hash.to_string())
            .fetch_optional(&mut *conn)
            .await
            .map_err(|e| self.db_err(e))?;
            if owner.is_some() {
                return Err(StoreError::DuplicateLabel(label.clone()));
            }
        }
        if let Some(profile) = &device.profile
            && !self.profile_exists(conn, profile).await?
        {
            return Err(StoreError::UnknownProfile(profile.clone()));
        }
        sqlx::query(
            "UPDATE devices SET state = 'allowed', failure_reason = NULL, label = COALESCE($1, label), profile = COALESCE($2, profile), expires_at = $3, updated_at = $4, last_event = 'allowed', last_event_at = $5 WHERE key_hash = $6 AND state = 'revoked'",
        )
        .bind(device.label.clone())
        .bind(device.profile.clone())
        .bind(device.expires_at_ms)
        .bind(now)
        .bind(now)
        .bind(device.key_hash.to_string())
        .execute(&mut *conn)
        .await
        .map_err(|e| self.db_err(e))?;
        self.append_audit(
            conn,
            now,
            Some(&device.key_hash),
            AuditKind::Allowed,
            json!({ "reallowed": true, "label": device.label, "profile": device.profile, "expires_at": device.expires_at_ms }),
        )
        .await?;
        Ok(())
    }

    /// Allowlists many devices atomically: all of them, or none and
    /// [`StoreError::ImportRejected`] listing every entry that conflicts (with the registry or
    /// with another entry). Returns how many were added. A revoked key is a conflict here:
    /// an import never silently re-allows a device; [`Registry::allow`] does it explicitly.
    pub async fn allow_many(&self, devices: Vec<NewDevice>) -> Result<usize, StoreError> {
        let mut conflicts = Vec::new();
        let mut keys_seen: HashMap<KeyHash, usize> = HashMap::new();
        let mut labels_seen: HashMap<&str, usize> = HashMap::new();
        for (index, device) in devices.iter().enumerate() {
            let mut reject = |reason: String| {
                conflicts.push(ImportConflict {
                    index,
                    key_hash: device.key_hash,
                    reason,
                })
            };
            if let Err(e) = validate_new_device(device) {
                reject(e.to_string());
            }
            if let Some(first) = keys_seen.insert(device.key_hash, index) {
                reject(format!("same key as entry {}", first + 1));
            }
            if let Some(label) = &device.label
                && let Some(first) = labels_seen.insert(label, index)
            {
                reject(format!("same label {label:?} as entry {}", first + 1));
            }
        }
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        for (index, device) in devices.iter().enumerate() {
            if let Some(conflict) = self.conflict_of(&mut tx, device).await? {
                conflicts.push(ImportConflict {
                    index,
                    key_hash: device.key_hash,
                    reason: conflict.to_string(),
                });
            }
        }
        if !conflicts.is_empty() {
            conflicts.sort_by_key(|c| c.index);
            // Dropping the transaction rolls it back: nothing was written.
            return Err(StoreError::ImportRejected(conflicts));
        }
        for device in &devices {
            self.insert_device(&mut tx, device, now).await?;
        }
        self.bump_change_counter(&mut tx).await?;
        self.commit(tx).await?;
        Ok(devices.len())
    }

    /// The device with this key hash.
    pub async fn get_device(&self, key_hash: &KeyHash) -> Result<Option<Device>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {DEVICE_COLUMNS} FROM devices WHERE key_hash = $1"
        )))
        .bind(key_hash.to_string())
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| self.db_err(e))?;
        row.map(|r| self.device_from_row(&r)).transpose()
    }

    /// The one device whose label is `label_or_prefix`, or else whose key hash starts with
    /// it (at least 4 hex digits). Errors: [`StoreError::DeviceNotFound`],
    /// [`StoreError::AmbiguousPrefix`].
    pub async fn find_device(&self, label_or_prefix: &str) -> Result<Device, StoreError> {
        let by_label = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {DEVICE_COLUMNS} FROM devices WHERE label = $1"
        )))
        .bind(label_or_prefix.to_string())
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| self.db_err(e))?;
        if let Some(row) = by_label {
            return self.device_from_row(&row);
        }
        let prefix = label_or_prefix.trim().to_ascii_lowercase();
        if prefix.len() < MIN_PREFIX_LEN
            || prefix.len() > 64
            || !prefix.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err(StoreError::DeviceNotFound(label_or_prefix.to_string()));
        }
        // Hex digits only, so the pattern has no LIKE wildcards but the final %.
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {DEVICE_COLUMNS} FROM devices WHERE key_hash LIKE $1 ORDER BY key_hash LIMIT 2"
        )))
        .bind(format!("{prefix}%"))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.db_err(e))?;
        match rows.as_slice() {
            [] => Err(StoreError::DeviceNotFound(label_or_prefix.to_string())),
            [row] => self.device_from_row(row),
            _ => {
                let matches: i64 =
                    sqlx::query_scalar("SELECT COUNT(*) FROM devices WHERE key_hash LIKE $1")
                        .bind(format!("{prefix}%"))
                        .fetch_one(&self.pool)
                        .await
                        .map_err(|e| self.db_err(e))?;
                Err(StoreError::AmbiguousPrefix {
                    prefix: label_or_prefix.to_string(),
                    matches: usize::try_from(matches).unwrap_or(usize::MAX),
                })
            }
        }
    }

    /// Devices matching `filter`, oldest first.
    pub async fn list_devices(&self, filter: &DeviceFilter) -> Result<Vec<Device>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {DEVICE_COLUMNS} FROM devices ORDER BY created_at, key_hash"
        )))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.db_err(e))?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let device = self.device_from_row(row)?;
            let state_ok = filter
                .state
                .as_deref()
                .is_none_or(|s| s == device.state.name());
            let profile_ok = filter
                .profile
                .as_deref()
                .is_none_or(|p| p == device.profile_name());
            if state_ok && profile_ok {
                out.push(device);
            }
        }
        Ok(out)
    }

    /// Revokes a device: it leaves the allowlist, its PSK leaves the export. Returns false
    /// if it was already revoked (nothing is written then).
    pub async fn revoke(&self, key_hash: &KeyHash) -> Result<bool, StoreError> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        let changed = sqlx::query(
            "UPDATE devices SET state = 'revoked', updated_at = $1, last_event = 'revoked', last_event_at = $2 WHERE key_hash = $3 AND state <> 'revoked'",
        )
        .bind(now)
        .bind(now)
        .bind(key_hash.to_string())
        .execute(&mut *tx)
        .await
        .map_err(|e| self.db_err(e))?
        .rows_affected();
        if changed == 0 {
            drop(tx);
            return match self.get_device(key_hash).await? {
                Some(_) => Ok(false),
                None => Err(StoreError::DeviceNotFound(key_hash.to_string())),
            };
        }
        self.append_audit(&mut tx, now, Some(key_hash), AuditKind::Revoked, json!({}))
            .await?;
        self.bump_change_counter(&mut tx).await?;
        self.commit(tx).await?;
        Ok(true)
    }

    /// Moves a device to another profile (`None`: the default profile).
    pub async fn set_device_profile(
        &self,
        key_hash: &KeyHash,
        profile: Option<&str>,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        if let Some(name) = profile
            && !self.profile_exists(&mut tx, name).await?
        {
            return Err(StoreError::UnknownProfile(name.to_string()));
        }
        self.update_device_config(
            &mut tx,
            key_hash,
            "UPDATE devices SET profile = $1, updated_at = $2 WHERE key_hash = $3",
            profile.map(str::to_string),
            now,
        )
        .await?;
        self.append_audit(
            &mut tx,
            now,
            Some(key_hash),
            AuditKind::ProfileChanged,
            json!({ "profile": profile.unwrap_or(DEFAULT_PROFILE) }),
        )
        .await?;
        self.commit(tx).await
    }

    /// Replaces a device's setting overrides (an empty map removes them).
    pub async fn set_device_overrides(
        &self,
        key_hash: &KeyHash,
        overrides: &BTreeMap<String, String>,
    ) -> Result<(), StoreError> {
        validate_settings(overrides)?;
        let now = now_ms();
        let sealed = if overrides.is_empty() {
            None
        } else {
            let plain = zeroize::Zeroizing::new(
                serde_json::to_vec(overrides)
                    .map_err(|e| StoreError::InvalidConfig(e.to_string()))?,
            );
            Some(
                self.secret
                    .seal("devices", "overrides", &key_hash.to_string(), &plain)?,
            )
        };
        let mut tx = self.begin_write().await?;
        self.update_device_config(
            &mut tx,
            key_hash,
            "UPDATE devices SET overrides = $1, updated_at = $2 WHERE key_hash = $3",
            sealed,
            now,
        )
        .await?;
        let keys: Vec<&String> = overrides.keys().collect();
        self.append_audit(
            &mut tx,
            now,
            Some(key_hash),
            AuditKind::ProfileChanged,
            json!({ "overrides": keys }),
        )
        .await?;
        self.commit(tx).await
    }

    /// Sets or clears the allowlist expiry of a device.
    pub async fn set_device_expiry(
        &self,
        key_hash: &KeyHash,
        expires_at_ms: Option<UnixMillis>,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        let changed =
            sqlx::query("UPDATE devices SET expires_at = $1, updated_at = $2 WHERE key_hash = $3")
                .bind(expires_at_ms)
                .bind(now)
                .bind(key_hash.to_string())
                .execute(&mut *tx)
                .await
                .map_err(|e| self.db_err(e))?
                .rows_affected();
        if changed == 0 {
            return Err(StoreError::DeviceNotFound(key_hash.to_string()));
        }
        self.append_audit(
            &mut tx,
            now,
            Some(key_hash),
            AuditKind::Allowed,
            json!({ "expires_at": expires_at_ms }),
        )
        .await?;
        self.bump_change_counter(&mut tx).await?;
        self.commit(tx).await
    }

    async fn update_device_config(
        &self,
        conn: &mut AnyConnection,
        key_hash: &KeyHash,
        sql: &'static str,
        value: Option<String>,
        now: UnixMillis,
    ) -> Result<(), StoreError> {
        let changed = sqlx::query(sql)
            .bind(value)
            .bind(now)
            .bind(key_hash.to_string())
            .execute(&mut *conn)
            .await
            .map_err(|e| self.db_err(e))?
            .rows_affected();
        if changed == 0 {
            return Err(StoreError::DeviceNotFound(key_hash.to_string()));
        }
        self.bump_change_counter(conn).await
    }

    /// The allowlisted keys now (not revoked, not expired).
    pub async fn allowlist(&self) -> Result<HashSet<KeyHash>, StoreError> {
        Ok(self.allowlist_snapshot().await?.keys)
    }

    /// The allowlist with the change counter it matches and the next expiry: the daemon
    /// reloads when [`Registry::change_counter`] differs or `next_expiry_ms` passes.
    pub async fn allowlist_snapshot(&self) -> Result<AllowlistSnapshot, StoreError> {
        let now = now_ms();
        // Counter first: a change racing this read shows up as a newer counter next poll.
        let change_counter = self.change_counter().await?;
        let rows = sqlx::query(
            "SELECT key_hash, expires_at, label FROM devices WHERE state <> 'revoked' AND (expires_at IS NULL OR expires_at > $1)",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.db_err(e))?;
        let mut snapshot = AllowlistSnapshot {
            keys: HashSet::with_capacity(rows.len()),
            change_counter,
            next_expiry_ms: None,
            labels: std::collections::HashMap::new(),
        };
        for row in &rows {
            let key: String = row.try_get("key_hash").map_err(|e| self.db_err(e))?;
            let expires: Option<i64> = row.try_get("expires_at").map_err(|e| self.db_err(e))?;
            let label: Option<String> = row.try_get("label").map_err(|e| self.db_err(e))?;
            if let Some(key_hash) = parse_key_hash(&key) {
                snapshot.keys.insert(key_hash);
                if let Some(label) = label {
                    snapshot.labels.insert(key_hash, label);
                }
            }
            if let Some(t) = expires {
                snapshot.next_expiry_ms = Some(snapshot.next_expiry_ms.map_or(t, |n| n.min(t)));
            }
        }
        Ok(snapshot)
    }
}
