//! HTTP API bearer tokens: created, listed and revoked by the operator, checked by the
//! daemon's API. Only the SHA-256 of a token is stored; a token is 256 random bits, so its
//! hash is as good as a password hash and lets the API find it with one indexed lookup.

use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::error::StoreError;
use crate::model::{AuditKind, UnixMillis};
use crate::registry::{Registry, now_ms};

/// Prefix of every token, so that a leaked one is recognisable (secret scanners, logs).
pub const TOKEN_PREFIX: &str = "zt_";

/// What a token may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Read everything.
    Viewer,
    /// Viewer, plus add, import and revoke devices.
    Operator,
    /// Operator, plus write profiles.
    Admin,
}

impl Role {
    /// The stored name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Operator => "operator",
            Self::Admin => "admin",
        }
    }

    /// Parses a stored or typed name.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "viewer" => Some(Self::Viewer),
            "operator" => Some(Self::Operator),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }
}

/// A token as stored (without the secret).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiToken {
    /// Unique name, recorded in the audit log with every change the token makes.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// When it was created.
    pub created_at_ms: UnixMillis,
    /// When it stops working, if ever.
    pub expires_at_ms: Option<UnixMillis>,
    /// When it was revoked, if it was.
    pub revoked_at_ms: Option<UnixMillis>,
    /// Last request it authenticated (updated at most once a minute).
    pub last_used_at_ms: Option<UnixMillis>,
}

impl ApiToken {
    /// Usable now: neither revoked nor expired.
    pub fn is_valid_at(&self, now: UnixMillis) -> bool {
        self.revoked_at_ms.is_none() && self.expires_at_ms.is_none_or(|t| t > now)
    }
}

/// How a presented token was judged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenCheck {
    /// Known and valid.
    Valid(ApiToken),
    /// Known, but expired or revoked.
    Invalid(ApiToken),
    /// Not a token of this registry.
    Unknown,
}

/// The stored form of a token: hex SHA-256.
fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

const TOKEN_COLUMNS: &str = "name, role, created_at, expires_at, revoked_at, last_used_at";
/// Last-use times are written at most this often, not on every request.
const LAST_USED_RESOLUTION_MS: i64 = 60_000;

impl Registry {
    fn token_from_row(&self, row: &AnyRow) -> Result<ApiToken, StoreError> {
        let get_err = |e: sqlx::Error| self.db_err(e);
        let role: String = row.try_get("role").map_err(get_err)?;
        Ok(ApiToken {
            name: row.try_get("name").map_err(get_err)?,
            role: Role::from_name(&role)
                .ok_or_else(|| StoreError::Database(format!("unknown token role {role:?}")))?,
            created_at_ms: row.try_get("created_at").map_err(get_err)?,
            expires_at_ms: row.try_get("expires_at").map_err(get_err)?,
            revoked_at_ms: row.try_get("revoked_at").map_err(get_err)?,
            last_used_at_ms: row.try_get("last_used_at").map_err(get_err)?,
        })
    }

    /// Creates a token and returns its secret, which is not stored and cannot be shown
    /// again.
    pub async fn create_token(
        &self,
        name: &str,
        role: Role,
        expires_at_ms: Option<UnixMillis>,
    ) -> Result<String, StoreError> {
        if name.is_empty() || name.len() > 64 || name.chars().any(|c| c.is_control()) {
            return Err(StoreError::InvalidInput(format!(
                "token name {name:?} must be 1 to 64 bytes without control characters"
            )));
        }
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(|e| StoreError::Random(e.to_string()))?;
        let token = format!("{TOKEN_PREFIX}{}", hex::encode(secret));
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        let exists: Option<String> =
            sqlx::query_scalar("SELECT name FROM api_tokens WHERE name = $1")
                .bind(name.to_string())
                .fetch_optional(&mut *tx)
                .await
                .map_err(|e| self.db_err(e))?;
        if exists.is_some() {
            return Err(StoreError::DuplicateToken(name.to_string()));
        }
        sqlx::query(
            "INSERT INTO api_tokens (name, role, token_hash, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(name.to_string())
        .bind(role.name())
        .bind(token_hash(&token))
        .bind(now)
        .bind(expires_at_ms)
        .execute(&mut *tx)
        .await
        .map_err(|e| self.db_err(e))?;
        self.append_audit(
            &mut tx,
            now,
            None,
            AuditKind::TokenCreated,
            json!({ "token": name, "role": role.name(), "expires_at": expires_at_ms }),
        )
        .await?;
        self.commit(tx).await?;
        Ok(token)
    }

    /// Every token, by name (revoked ones included).
    pub async fn list_tokens(&self) -> Result<Vec<ApiToken>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens ORDER BY name"
        )))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.db_err(e))?;
        rows.iter().map(|r| self.token_from_row(r)).collect()
    }

    /// Revokes a token (it stops working at once). Returns false if it already was.
    pub async fn revoke_token(&self, name: &str) -> Result<bool, StoreError> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        let revoked: Option<Option<i64>> =
            sqlx::query_scalar("SELECT revoked_at FROM api_tokens WHERE name = $1")
                .bind(name.to_string())
                .fetch_optional(&mut *tx)
                .await
                .map_err(|e| self.db_err(e))?;
        match revoked {
            None => return Err(StoreError::TokenNotFound(name.to_string())),
            Some(Some(_)) => return Ok(false),
            Some(None) => {}
        }
        sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE name = $2")
            .bind(now)
            .bind(name.to_string())
            .execute(&mut *tx)
            .await
            .map_err(|e| self.db_err(e))?;
        self.append_audit(
            &mut tx,
            now,
            None,
            AuditKind::TokenRevoked,
            json!({ "token": name }),
        )
        .await?;
        self.commit(tx).await?;
        Ok(true)
    }

    /// Judges a presented token, and notes its use.
    pub async fn check_token(&self, token: &str) -> Result<TokenCheck, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE token_hash = $1"
        )))
        .bind(token_hash(token))
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| self.db_err(e))?;
        let Some(row) = row else {
            return Ok(TokenCheck::Unknown);
        };
        let found = self.token_from_row(&row)?;
        let now = now_ms();
        if !found.is_valid_at(now) {
            return Ok(TokenCheck::Invalid(found));
        }
        if found
            .last_used_at_ms
            .is_none_or(|t| now - t >= LAST_USED_RESOLUTION_MS)
        {
            sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE name = $2")
                .bind(now)
                .bind(found.name.clone())
                .execute(self.write_pool(crate::registry::Durability::Relaxed))
                .await
                .map_err(|e| self.db_err(e))?;
        }
        Ok(TokenCheck::Valid(found))
    }

    /// Audits a refused API request (`detail` says who, what and why).
    pub async fn record_api_denied(&self, detail: serde_json::Value) -> Result<(), StoreError> {
        let mut tx = self
            .begin_write_with(crate::registry::Durability::Relaxed)
            .await?;
        self.append_audit(&mut tx, now_ms(), None, AuditKind::ApiDenied, detail)
            .await?;
        self.commit(tx).await
    }
}
