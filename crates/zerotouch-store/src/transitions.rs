//! The state transitions the daemon records while it provisions devices: one per call
//! (`record_announced`, ...) or many in one transaction ([`Registry::record_batch`]), each
//! with its audit record. Each is committed only as durably as it needs to be (see the
//! crate docs, "Durability"), and the refusal-tracking table is kept bounded.

use serde_json::json;
use sqlx::AnyConnection;
use zerotouch_proto::{Addr, FailureReason, KeyHash};

use crate::error::StoreError;
use crate::model::{AuditKind, DeviceState, UnixMillis};
use crate::registry::{Durability, Registry, now_ms};

/// Expired refusal-tracking rows removed per audited refusal. More than one, so that after a
/// flood the table shrinks back to the keys refused within one window.
const EXPIRED_REFUSALS_PRUNED_PER_AUDIT: i64 = 16;

/// One state transition the daemon records. The single-call methods
/// ([`Registry::record_announced`] and the others) document each one's effect;
/// [`Registry::record_batch`] applies many with the same effects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transition {
    /// An allowlisted device announced itself from `mac`.
    Announced {
        /// The device.
        key_hash: KeyHash,
        /// The link address it announced from.
        mac: Addr,
    },
    /// The device proved its key, in a Response from `mac` (when known: the address of the
    /// authenticated frame, recorded as the device's `last_mac`).
    Authenticated {
        /// The device.
        key_hash: KeyHash,
        /// The link address of its authenticated Response.
        mac: Option<Addr>,
    },
    /// Its configuration was sent.
    ConfigDelivered {
        /// The device.
        key_hash: KeyHash,
        /// The profile the configuration was made from (recorded in the audit record).
        profile: Option<String>,
    },
    /// The device reported a successful join.
    Joined {
        /// The device.
        key_hash: KeyHash,
    },
    /// The device reported a failed join.
    JoinFailed {
        /// The device.
        key_hash: KeyHash,
        /// Why it failed.
        reason: FailureReason,
    },
    /// A key that is not allowlisted announced itself from `mac`.
    Refused {
        /// The key.
        key_hash: KeyHash,
        /// The link address it announced from.
        mac: Addr,
    },
}

impl Transition {
    /// The device (or refused key) it is about.
    pub fn key_hash(&self) -> &KeyHash {
        match self {
            Self::Announced { key_hash, .. }
            | Self::Authenticated { key_hash, .. }
            | Self::ConfigDelivered { key_hash, .. }
            | Self::Joined { key_hash }
            | Self::JoinFailed { key_hash, .. }
            | Self::Refused { key_hash, .. } => key_hash,
        }
    }

    /// Whether its commit must be on stable storage before the call returns: true for the
    /// join results, because the configurator acknowledges them to the device, which then
    /// commits its configuration. Losing any other transition in a power loss only makes a
    /// device look "provisioning" again until it re-announces.
    pub fn needs_durability(&self) -> bool {
        matches!(self, Self::Joined { .. } | Self::JoinFailed { .. })
    }

    fn durability(&self) -> Durability {
        if self.needs_durability() {
            Durability::Durable
        } else {
            Durability::Relaxed
        }
    }
}

/// Announcements refused over a window, for [`Registry::record_refusal_summary`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RefusalSummary {
    /// Refusals counted.
    pub refused: u64,
    /// Distinct key hashes among them (at most the number tracked).
    pub distinct_keys: u64,
    /// The window, in milliseconds.
    pub window_ms: u64,
    /// The most refused key hashes with their counts (bounded by the caller).
    pub keys: Vec<(KeyHash, u64)>,
}

/// What recording one [`Transition`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransitionOutcome {
    /// Recorded with its audit record (announced, authenticated, configuration delivered,
    /// join failed).
    Recorded,
    /// A join was recorded. `newly_provisioned` is false if the device already was
    /// provisioned (a repeated report, recorded as `rejoined` and not counted again).
    Joined {
        /// Whether this join made the device `provisioned`.
        newly_provisioned: bool,
    },
    /// A refusal was counted; `audited` says whether it wrote an audit record (at most one
    /// per key per refusal window).
    Refused {
        /// Whether an audit record was written.
        audited: bool,
    },
    /// Nothing was written: the device is revoked.
    DeviceRevoked,
    /// Nothing was written: no device has this key.
    DeviceNotFound,
}

impl Registry {
    /// Records many transitions in one transaction, in order, each with the same effect and
    /// audit record as its single call (a transition on a revoked or unknown device writes
    /// nothing and is reported as [`TransitionOutcome::DeviceRevoked`] or
    /// [`TransitionOutcome::DeviceNotFound`]; the others are still recorded). The commit is
    /// durable if any transition [needs it](Transition::needs_durability). Returns one
    /// outcome per transition; on an error nothing of the batch is written.
    pub async fn record_batch(
        &self,
        transitions: &[Transition],
    ) -> Result<Vec<TransitionOutcome>, StoreError> {
        if transitions.is_empty() {
            return Ok(Vec::new());
        }
        let durability = if transitions.iter().any(Transition::needs_durability) {
            Durability::Durable
        } else {
            Durability::Relaxed
        };
        let mut tx = self.begin_write_with(durability).await?;
        let mut outcomes = Vec::with_capacity(transitions.len());
        for transition in transitions {
            outcomes.push(self.apply_transition(&mut tx, transition).await?);
        }
        self.commit(tx).await?;
        Ok(outcomes)
    }

    /// Records one transition in its own transaction; a revoked or unknown device is an
    /// error (and nothing is written).
    async fn record_one(&self, transition: Transition) -> Result<TransitionOutcome, StoreError> {
        let mut tx = self.begin_write_with(transition.durability()).await?;
        match self.apply_transition(&mut tx, &transition).await? {
            TransitionOutcome::DeviceRevoked => {
                Err(StoreError::DeviceRevoked(*transition.key_hash()))
            }
            TransitionOutcome::DeviceNotFound => Err(StoreError::DeviceNotFound(
                transition.key_hash().to_string(),
            )),
            outcome => {
                self.commit(tx).await?;
                Ok(outcome)
            }
        }
    }

    /// An allowlisted device announced itself from `mac`.
    pub async fn record_announced(&self, key_hash: &KeyHash, mac: Addr) -> Result<(), StoreError> {
        self.record_one(Transition::Announced {
            key_hash: *key_hash,
            mac,
        })
        .await
        .map(drop)
    }

    /// The device proved its key: `allowed`/`failed` become `provisioning` (a provisioned
    /// device being reconfigured stays `provisioned`). Error if revoked.
    pub async fn record_authenticated(&self, key_hash: &KeyHash) -> Result<(), StoreError> {
        self.record_one(Transition::Authenticated {
            key_hash: *key_hash,
            mac: None,
        })
        .await
        .map(drop)
    }

    /// As [`Registry::record_authenticated`], and records `mac`, the address of the
    /// authenticated Response, as the device's `last_mac`.
    pub async fn record_authenticated_from(
        &self,
        key_hash: &KeyHash,
        mac: Addr,
    ) -> Result<(), StoreError> {
        self.record_one(Transition::Authenticated {
            key_hash: *key_hash,
            mac: Some(mac),
        })
        .await
        .map(drop)
    }

    /// Writes one audit record summing up announcements refused (keys not on the
    /// allowlist) over a window. Such announcements are not authenticated (their key hash
    /// and address are whatever the sender chose), so the daemon counts them in memory and
    /// writes only this bounded summary, never a row per frame, and touches no device row.
    pub async fn record_refusal_summary(&self, summary: &RefusalSummary) -> Result<(), StoreError> {
        let mut tx = self.begin_write_with(Durability::Relaxed).await?;
        let keys: Vec<serde_json::Value> = summary
            .keys
            .iter()
            .map(|(key, count)| json!({ "key": key.to_string(), "count": count }))
            .collect();
        self.append_audit(
            &mut tx,
            now_ms(),
            None,
            AuditKind::Refused,
            json!({
                "summary": true,
                "unauthenticated": true,
                "refused": summary.refused,
                "distinct_keys": summary.distinct_keys,
                "window_ms": summary.window_ms,
                "keys": keys,
            }),
        )
        .await?;
        self.commit(tx).await
    }

    /// Its configuration was sent. Error if revoked.
    pub async fn record_config_delivered(&self, key_hash: &KeyHash) -> Result<(), StoreError> {
        self.record_one(Transition::ConfigDelivered {
            key_hash: *key_hash,
            profile: None,
        })
        .await
        .map(drop)
    }

    /// As [`Registry::record_config_delivered`], naming the profile the configuration was
    /// made from in the audit record.
    pub async fn record_config_delivered_from(
        &self,
        key_hash: &KeyHash,
        profile: &str,
    ) -> Result<(), StoreError> {
        self.record_one(Transition::ConfigDelivered {
            key_hash: *key_hash,
            profile: Some(profile.to_string()),
        })
        .await
        .map(drop)
    }

    /// The device reported a successful join. Returns true if this made it `provisioned`;
    /// false if it already was (a repeated report, e.g. after a daemon restart: recorded as
    /// `rejoined`, not counted again). Error if revoked. Durable when it returns.
    pub async fn record_joined(&self, key_hash: &KeyHash) -> Result<bool, StoreError> {
        let outcome = self
            .record_one(Transition::Joined {
                key_hash: *key_hash,
            })
            .await?;
        Ok(matches!(
            outcome,
            TransitionOutcome::Joined {
                newly_provisioned: true
            }
        ))
    }

    /// The device reported a failed join: state `failed` with `reason`. Error if revoked.
    /// Durable when it returns.
    pub async fn record_join_failed(
        &self,
        key_hash: &KeyHash,
        reason: FailureReason,
    ) -> Result<(), StoreError> {
        self.record_one(Transition::JoinFailed {
            key_hash: *key_hash,
            reason,
        })
        .await
        .map(drop)
    }

    /// A key that is not allowlisted (unknown, revoked or expired) announced itself from
    /// `mac`. At most one audit record per key per refusal window (default 60 s); the
    /// refusals in between are counted in the next one. Returns whether a record was written.
    pub async fn record_refused(&self, key_hash: &KeyHash, mac: Addr) -> Result<bool, StoreError> {
        let outcome = self
            .record_one(Transition::Refused {
                key_hash: *key_hash,
                mac,
            })
            .await?;
        Ok(matches!(
            outcome,
            TransitionOutcome::Refused { audited: true }
        ))
    }

    /// Applies one transition inside the caller's transaction. Writes nothing when the
    /// outcome is [`TransitionOutcome::DeviceRevoked`] or [`TransitionOutcome::DeviceNotFound`].
    async fn apply_transition(
        &self,
        conn: &mut AnyConnection,
        transition: &Transition,
    ) -> Result<TransitionOutcome, StoreError> {
        let now = now_ms();
        let key_hash = transition.key_hash();
        let key = key_hash.to_string();
        // The update, and the audit record and outcome if it changes the device's row.
        let (update, kind, detail, outcome) = match transition {
            Transition::Announced { mac, .. } => (
                sqlx::query(
                    "UPDATE devices SET last_mac = $1, last_event = 'announced', last_event_at = $2, updated_at = $3 WHERE key_hash = $4",
                )
                .bind(mac.to_string())
                .bind(now)
                .bind(now),
                AuditKind::Announced,
                json!({ "mac": mac.to_string() }),
                TransitionOutcome::Recorded,
            ),
            Transition::Authenticated { mac: None, .. } => (
                sqlx::query(
                    "UPDATE devices SET state = CASE WHEN state IN ('allowed', 'failed') THEN 'provisioning' ELSE state END, updated_at = $1, last_event_at = $2, last_event = 'authenticated' WHERE key_hash = $3 AND state <> 'revoked'",
                )
                .bind(now)
                .bind(now),
                AuditKind::Authenticated,
                json!({}),
                TransitionOutcome::Recorded,
            ),
            Transition::Authenticated { mac: Some(mac), .. } => (
                sqlx::query(
                    "UPDATE devices SET state = CASE WHEN state IN ('allowed', 'failed') THEN 'provisioning' ELSE state END, last_mac = $1, updated_at = $2, last_event_at = $3, last_event = 'authenticated' WHERE key_hash = $4 AND state <> 'revoked'",
                )
                .bind(mac.to_string())
                .bind(now)
                .bind(now),
                AuditKind::Authenticated,
                json!({ "mac": mac.to_string() }),
                TransitionOutcome::Recorded,
            ),
            Transition::ConfigDelivered { profile, .. } => (
                sqlx::query(
                    "UPDATE devices SET updated_at = $1, last_event_at = $2, last_event = 'config-delivered' WHERE key_hash = $3 AND state <> 'revoked'",
                )
                .bind(now)
                .bind(now),
                AuditKind::ConfigDelivered,
                match profile {
                    Some(profile) => json!({ "profile": profile }),
                    None => json!({}),
                },
                TransitionOutcome::Recorded,
            ),
            Transition::Joined { .. } => (
                sqlx::query(
                    "UPDATE devices SET state = 'provisioned', provisioned_at = COALESCE(provisioned_at, $1), provision_count = provision_count + 1, updated_at = $2, last_event_at = $3, last_event = 'joined' WHERE key_hash = $4 AND state NOT IN ('provisioned', 'revoked')",
                )
                .bind(now)
                .bind(now)
                .bind(now),
                AuditKind::Joined,
                json!({}),
                TransitionOutcome::Joined {
                    newly_provisioned: true,
                },
            ),
            Transition::JoinFailed { reason, .. } => (
                sqlx::query(
                    "UPDATE devices SET state = 'failed', failure_reason = $1, last_event = 'join-failed', last_event_at = $2, updated_at = $3 WHERE key_hash = $4 AND state <> 'revoked'",
                )
                .bind(reason.name().to_string())
                .bind(now)
                .bind(now),
                AuditKind::JoinFailed,
                json!({ "reason": reason.name() }),
                TransitionOutcome::Recorded,
            ),
            Transition::Refused { mac, .. } => {
                return self.apply_refusal(conn, now, key_hash, *mac).await;
            }
        };
        let rows = update
            .bind(key.clone())
            .execute(&mut *conn)
            .await
            .map_err(|e| self.db_err(e))?
            .rows_affected();
        if rows > 0 {
            self.append_audit(conn, now, Some(key_hash), kind, detail)
                .await?;
            return Ok(outcome);
        }
        match self.device_state(conn, &key).await? {
            None => Ok(TransitionOutcome::DeviceNotFound),
            Some(DeviceState::Provisioned) if matches!(transition, Transition::Joined { .. }) => {
                sqlx::query(
                    "UPDATE devices SET last_event = 'rejoined', last_event_at = $1 WHERE key_hash = $2",
                )
                .bind(now)
                .bind(key)
                .execute(&mut *conn)
                .await
                .map_err(|e| self.db_err(e))?;
                self.append_audit(
                    conn,
                    now,
                    Some(key_hash),
                    AuditKind::Rejoined,
                    json!({ "already_provisioned": true }),
                )
                .await?;
                Ok(TransitionOutcome::Joined {
                    newly_provisioned: false,
                })
            }
            // Every update but the announcement's (which only misses unknown keys) skips
            // revoked devices, and only revoked ones.
            Some(_) => Ok(TransitionOutcome::DeviceRevoked),
        }
    }

    /// The state of the device with key hash `key`, if there is one.
    async fn device_state(
        &self,
        conn: &mut AnyConnection,
        key: &str,
    ) -> Result<Option<DeviceState>, StoreError> {
        let row: Option<(String, Option<String>)> =
            sqlx::query_as("SELECT state, failure_reason FROM devices WHERE key_hash = $1")
                .bind(key.to_string())
                .fetch_optional(&mut *conn)
                .await
                .map_err(|e| self.db_err(e))?;
        row.map(|(state, reason)| DeviceState::from_columns(&state, reason.as_deref()))
            .transpose()
    }

    /// Counts a refusal, auditing it if the key's window has passed, and prunes the
    /// tracking rows of keys whose window has passed, so that a flood of unknown keys cannot
    /// grow the table beyond the keys refused within one window.
    async fn apply_refusal(
        &self,
        conn: &mut AnyConnection,
        now: UnixMillis,
        key_hash: &KeyHash,
        mac: Addr,
    ) -> Result<TransitionOutcome, StoreError> {
        let key = key_hash.to_string();
        let previous: Option<(i64, i64)> =
            sqlx::query_as("SELECT last_audit_at, suppressed FROM refusals WHERE key_hash = $1")
                .bind(key.clone())
                .fetch_optional(&mut *conn)
                .await
                .map_err(|e| self.db_err(e))?;
        if let Some((last, _)) = previous
            && now.saturating_sub(last) < self.refusal_window_ms
        {
            sqlx::query("UPDATE refusals SET suppressed = suppressed + 1 WHERE key_hash = $1")
                .bind(key)
                .execute(&mut *conn)
                .await
                .map_err(|e| self.db_err(e))?;
            return Ok(TransitionOutcome::Refused { audited: false });
        }
        let suppressed = previous.map_or(0, |(_, n)| n);
        sqlx::query(
            "INSERT INTO refusals (key_hash, last_audit_at, suppressed) VALUES ($1, $2, 0) ON CONFLICT (key_hash) DO UPDATE SET last_audit_at = excluded.last_audit_at, suppressed = 0",
        )
        .bind(key.clone())
        .bind(now)
        .execute(&mut *conn)
        .await
        .map_err(|e| self.db_err(e))?;
        sqlx::query("UPDATE devices SET last_mac = $1, last_event = 'refused', last_event_at = $2 WHERE key_hash = $3")
            .bind(mac.to_string())
            .bind(now)
            .bind(key)
            .execute(&mut *conn)
            .await
            .map_err(|e| self.db_err(e))?;
        self.append_audit(
            conn,
            now,
            Some(key_hash),
            AuditKind::Refused,
            json!({ "mac": mac.to_string(), "suppressed_since_last": suppressed }),
        )
        .await?;
        self.prune_expired_refusals(conn, now).await?;
        Ok(TransitionOutcome::Refused { audited: true })
    }

    /// Removes up to [`EXPIRED_REFUSALS_PRUNED_PER_AUDIT`] tracking rows whose window has
    /// passed. A row still counting suppressed refusals gets a final audit record with that
    /// count first, so no refusal goes unaccounted.
    async fn prune_expired_refusals(
        &self,
        conn: &mut AnyConnection,
        now: UnixMillis,
    ) -> Result<(), StoreError> {
        let cutoff = now.saturating_sub(self.refusal_window_ms);
        let expired: Vec<(String, i64)> = sqlx::query_as(
            "SELECT key_hash, suppressed FROM refusals WHERE last_audit_at < $1 ORDER BY last_audit_at LIMIT $2",
        )
        .bind(cutoff)
        .bind(EXPIRED_REFUSALS_PRUNED_PER_AUDIT)
        .fetch_all(&mut *conn)
        .await
        .map_err(|e| self.db_err(e))?;
        for (key, suppressed) in expired {
            if suppressed > 0 {
                let parsed = crate::model::parse_key_hash(&key);
                self.append_audit(
                    conn,
                    now,
                    parsed.as_ref(),
                    AuditKind::Refused,
                    json!({ "suppressed_since_last": suppressed, "window_closed": true }),
                )
                .await?;
            }
            sqlx::query("DELETE FROM refusals WHERE key_hash = $1")
                .bind(key)
                .execute(&mut *conn)
                .await
                .map_err(|e| self.db_err(e))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use zeroize::Zeroizing;

    use super::*;
    use crate::model::AuditFilter;
    use crate::secret::SecretKeySource;

    const MAC: Addr = Addr([2, 0, 0, 0, 0, 9]);

    fn key(i: u32) -> KeyHash {
        let mut bytes = [0u8; 32];
        bytes[..4].copy_from_slice(&i.to_be_bytes());
        KeyHash(bytes)
    }

    async fn tracked_keys(registry: &Registry, keys: &[KeyHash]) -> usize {
        let mut tracked = 0;
        for k in keys {
            let row: Option<i64> =
                sqlx::query_scalar("SELECT suppressed FROM refusals WHERE key_hash = $1")
                    .bind(k.to_string())
                    .fetch_optional(&registry.pool)
                    .await
                    .expect("read refusals");
            tracked += usize::from(row.is_some());
        }
        tracked
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_flood_of_unknown_keys_does_not_grow_the_refusal_table() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("registry.db");
        let mut registry = Registry::open(
            path.to_str().expect("utf-8 path"),
            SecretKeySource::Key(Zeroizing::new([5; 32])),
        )
        .await
        .expect("open");

        // A key refused twice within a long window: one audit record, one suppressed.
        let repeated = key(1_000_000);
        assert!(
            registry
                .record_refused(&repeated, MAC)
                .await
                .expect("refused")
        );
        assert!(
            !registry
                .record_refused(&repeated, MAC)
                .await
                .expect("again")
        );

        // A flood of distinct keys, then (after their short window) another.
        registry.set_refusal_audit_window(Duration::from_millis(1));
        let first_flood: Vec<KeyHash> = (0..100).map(key).collect();
        let batch: Vec<Transition> = first_flood
            .iter()
            .map(|&key_hash| Transition::Refused { key_hash, mac: MAC })
            .collect();
        registry.record_batch(&batch).await.expect("first flood");
        tokio::time::sleep(Duration::from_millis(20)).await;
        let second_flood: Vec<KeyHash> = (100..200).map(key).collect();
        for k in &second_flood {
            registry.record_refused(k, MAC).await.expect("second flood");
        }
        assert_eq!(
            tracked_keys(&registry, &first_flood).await,
            0,
            "expired rows are pruned"
        );
        assert_eq!(tracked_keys(&registry, &[repeated]).await, 0);
        let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM refusals")
            .fetch_one(&registry.pool)
            .await
            .expect("count");
        assert!(total <= 100, "{total} rows tracked for 100 recent keys");

        // The suppressed refusal of the pruned key was not lost: a final record counts it.
        let records = registry
            .audit_since(
                0,
                &AuditFilter {
                    key_hash: Some(repeated),
                    limit: None,
                },
            )
            .await
            .expect("audit");
        assert_eq!(records.len(), 2);
        assert_eq!(records[1].detail["suppressed_since_last"], 1);
        assert_eq!(records[1].detail["window_closed"], true);
        registry.close().await;
    }

    #[test]
    fn only_join_results_need_durability() {
        let k = key(1);
        let durable = [
            Transition::Joined { key_hash: k },
            Transition::JoinFailed {
                key_hash: k,
                reason: FailureReason::AuthFailed,
            },
        ];
        let relaxed = [
            Transition::Announced {
                key_hash: k,
                mac: MAC,
            },
            Transition::Authenticated {
                key_hash: k,
                mac: None,
            },
            Transition::ConfigDelivered {
                key_hash: k,
                profile: None,
            },
            Transition::Refused {
                key_hash: k,
                mac: MAC,
            },
        ];
        assert!(
            durable
                .iter()
                .all(|t| t.durability() == Durability::Durable)
        );
        assert!(
            relaxed
                .iter()
                .all(|t| t.durability() == Durability::Relaxed)
        );
        assert!(durable.iter().chain(&relaxed).all(|t| *t.key_hash() == k));
    }
}
