//! [`Registry`]: opening (backend choice, file modes, migrations, schema and key checks),
//! transactions, the audit log and the fleet keys.

use std::fs::OpenOptions;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sqlx::AnyConnection;
use sqlx::any::AnyPoolOptions;
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::{Any, AnyPool, Row, Transaction};
use zeroize::Zeroizing;
use zerotouch_proto::{KeyHash, SuiteId};

use crate::error::StoreError;
use crate::model::{
    AuditEvent, AuditFilter, AuditKind, Fleet, FleetKeys, UnixMillis, parse_key_hash,
};
use crate::secret::{SecretKey, SecretKeySource, io_error};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// Plaintext sealed into `meta.secret_check`: opening it proves the key matches.
const SECRET_CHECK_PLAINTEXT: &[u8] = b"zerotouch registry secret key check";
/// Refused announcements of one key get at most one audit record per this window.
const DEFAULT_REFUSAL_WINDOW_MS: i64 = 60_000;
/// Audit records returned by one `audit_since` call when no limit is given.
const DEFAULT_AUDIT_LIMIT: u32 = 1000;

/// Which database holds the registry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Backend {
    /// An embedded SQLite file.
    Sqlite {
        /// The database file.
        path: PathBuf,
    },
    /// A PostgreSQL database.
    Postgres,
}

/// How durable a write transaction's commit must be (see the crate docs, "Durability").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Durability {
    /// Survives a crash of the process (SQLite `synchronous = NORMAL` in WAL mode: the
    /// commit is in the OS page cache); a power loss may undo it until the next durable
    /// commit. For events that only make a device look "provisioning" again if lost.
    Relaxed,
    /// On stable storage when the commit returns (SQLite `synchronous = FULL`: the WAL is
    /// fsynced, which also makes every earlier relaxed commit durable).
    Durable,
}

/// The registry: one handle (cheap to clone) on a SQLite file or a PostgreSQL database.
/// Several handles, in one process or several, may use the same database at once.
#[derive(Clone)]
pub struct Registry {
    /// Reads and durable writes (SQLite connections with `synchronous = FULL`).
    pub(crate) pool: AnyPool,
    /// Relaxed writes: SQLite connections with `synchronous = NORMAL`; on PostgreSQL the
    /// same pool as `pool` (every commit there stays durable).
    relaxed_pool: AnyPool,
    backend: Backend,
    location: String,
    pub(crate) secret: Arc<SecretKey>,
    pub(crate) configurator_id: Option<String>,
    pub(crate) refusal_window_ms: i64,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("location", &self.location)
            .field("configurator_id", &self.configurator_id)
            .finish_non_exhaustive()
    }
}

/// Milliseconds since the Unix epoch, now.
pub(crate) fn now_ms() -> UnixMillis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Pool settings. Relaxed SQLite connections switch to `synchronous = NORMAL` when they
/// connect, so every connection of a pool commits the same way and a level never leaks
/// between pools. The others keep SQLite's default, FULL (checked by a test); they run no
/// statement on connecting, so a file that is not a database fails on its first query with
/// a clear error.
fn pool_options(backend: &Backend, max_connections: u32, durability: Durability) -> AnyPoolOptions {
    let options = AnyPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10));
    if !matches!(backend, Backend::Sqlite { .. }) || durability == Durability::Durable {
        return options;
    }
    options.after_connect(|conn, _meta| {
        Box::pin(async move {
            sqlx::Executor::execute(conn, "PRAGMA synchronous = NORMAL").await?;
            Ok(())
        })
    })
}

/// Parses a registry location: a path, `sqlite:PATH`, `sqlite://PATH`, or a PostgreSQL URL.
fn parse_location(url: &str) -> Result<Backend, StoreError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Backend::Postgres);
    }
    let path = if let Some(rest) = url.strip_prefix("sqlite://") {
        rest
    } else if let Some(rest) = url.strip_prefix("sqlite:") {
        rest
    } else if url.contains("://") {
        return Err(StoreError::UnsupportedUrl(url.to_string()));
    } else {
        url
    };
    let path = path.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        // An in-memory database would be a different empty database per pooled connection.
        return Err(StoreError::UnsupportedUrl(url.to_string()));
    }
    Ok(Backend::Sqlite {
        path: PathBuf::from(path),
    })
}

/// The URL with any password replaced, for messages.
fn redact(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://")
        && let Some((userinfo, host)) = rest.split_once('@')
        && let Some((user, _password)) = userinfo.split_once(':')
    {
        return format!("{scheme}://{user}:***@{host}");
    }
    url.to_string()
}

/// A `sqlite://` URL for `path`, percent-encoding everything but safe path characters.
fn sqlite_url(path: &Path) -> String {
    let mut url = String::from("sqlite://");
    for byte in path.as_os_str().as_encoded_bytes() {
        if byte.is_ascii_alphanumeric() || b"/._-~".contains(byte) {
            url.push(char::from(*byte));
        } else {
            url.push_str(&format!("%{byte:02X}"));
        }
    }
    url.push_str("?mode=rw");
    url
}

/// Creates the SQLite file (mode 0600) if missing, and tightens the mode of an existing one.
fn prepare_sqlite_file(path: &Path) -> Result<(), StoreError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.exists()
    {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| io_error(dir, e))?;
    }
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(|e| io_error(path, e))?;
    let metadata = file.metadata().map_err(|e| io_error(path, e))?;
    if !metadata.is_file() {
        return Err(StoreError::Corrupt {
            location: path.display().to_string(),
            detail: "it is not a regular file".into(),
        });
    }
    if metadata.permissions().mode() & 0o077 != 0 {
        // The file holds the audit log and sealed secrets: nobody else needs to read it.
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|e| io_error(path, e))?;
    }
    Ok(())
}

/// Makes one connection to a PostgreSQL server (the pool would retry a refused connection
/// for its whole acquire timeout): a server that cannot be reached is reported at once as
/// [`StoreError::Unreachable`], with the operating system's reason.
async fn probe_server(url: &str, location: &str) -> Result<(), StoreError> {
    use sqlx::Connection;
    let connecting = AnyConnection::connect(url);
    match tokio::time::timeout(Duration::from_secs(10), connecting).await {
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
            Ok(())
        }
        Ok(Err(sqlx::Error::Io(e))) => Err(StoreError::Unreachable {
            location: location.to_string(),
            detail: e.to_string(),
        }),
        Ok(Err(e)) => Err(StoreError::from_sqlx(e, location)),
        Err(_) => Err(StoreError::Unreachable {
            location: location.to_string(),
            detail: "no answer within 10 s".into(),
        }),
    }
}

impl Registry {
    /// Opens (creating it if needed) the registry at `url`: a file path or `sqlite:PATH` for
    /// SQLite (WAL mode, 5 s busy timeout, foreign keys on, files 0600), or
    /// `postgres://...` for PostgreSQL. Runs the embedded migrations, refuses a schema newer
    /// than this build, and checks that the secret key matches.
    pub async fn open(url: &str, key_source: SecretKeySource) -> Result<Registry, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = parse_location(url)?;
        let (connect_url, location, max_connections) = match &backend {
            Backend::Sqlite { path } => {
                prepare_sqlite_file(path)?;
                (sqlite_url(path), path.display().to_string(), 4)
            }
            Backend::Postgres => (url.to_string(), redact(url), 8),
        };
        if matches!(backend, Backend::Postgres) {
            probe_server(&connect_url, &location).await?;
        }
        let pool = pool_options(&backend, max_connections, Durability::Durable)
            .connect(&connect_url)
            .await
            .map_err(|e| match (&backend, e) {
                // The pool retries a refused connection until its acquire timeout and then
                // reports a timeout: at open time that is an unreachable server, not a lock.
                (Backend::Postgres, sqlx::Error::PoolTimedOut) => StoreError::Unreachable {
                    location: location.clone(),
                    detail: "no connection could be made within 10 s".into(),
                },
                (_, e) => StoreError::from_sqlx(e, &location),
            })?;
        let opening = Opening {
            pool,
            backend,
            location,
        };
        opening.check_and_migrate().await?;
        let secret = Arc::new(opening.load_secret_key(&key_source).await?);
        let relaxed_pool = match &opening.backend {
            // Opened after the migrations: the file is in WAL mode by now, which is what
            // makes `synchronous = NORMAL` crash-safe.
            Backend::Sqlite { .. } => pool_options(&opening.backend, 2, Durability::Relaxed)
                .connect(&connect_url)
                .await
                .map_err(|e| StoreError::from_sqlx(e, &opening.location))?,
            Backend::Postgres => opening.pool.clone(),
        };
        let registry = Registry {
            pool: opening.pool,
            relaxed_pool,
            backend: opening.backend,
            location: opening.location,
            secret,
            configurator_id: None,
            refusal_window_ms: DEFAULT_REFUSAL_WINDOW_MS,
        };
        Ok(registry)
    }

    /// Names the configurator that writes this handle's audit records (the daemon sets its
    /// identity's key hash; operator commands leave it unset).
    pub fn set_configurator_id(&mut self, id: Option<String>) {
        self.configurator_id = id;
    }

    /// Sets how often refused announcements of one key are audited (default 60 s); those in
    /// between are counted in the next record.
    pub fn set_refusal_audit_window(&mut self, window: Duration) {
        self.refusal_window_ms = i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
    }

    /// The backend in use.
    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    /// The file path or URL (password redacted), for messages.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// The key file used for this SQLite registry when the key comes from
    /// [`SecretKeySource::Auto`] without `ZEROTOUCH_SECRET_KEY`.
    pub fn default_key_file(path: &Path) -> PathBuf {
        let mut name = path.as_os_str().to_owned();
        name.push(".key");
        PathBuf::from(name)
    }

    /// Closes every connection (and checkpoints the SQLite WAL).
    pub async fn close(&self) {
        self.relaxed_pool.close().await;
        self.pool.close().await;
    }

    /// The pool whose connections commit with `durability`.
    pub(crate) fn write_pool(&self, durability: Durability) -> &AnyPool {
        match durability {
            Durability::Relaxed => &self.relaxed_pool,
            Durability::Durable => &self.pool,
        }
    }

    pub(crate) fn db_err(&self, err: sqlx::Error) -> StoreError {
        StoreError::from_sqlx(err, &self.location)
    }

    async fn meta_value(&self, key: &str) -> Result<Option<String>, StoreError> {
        meta_value(&self.pool, &self.location, key).await
    }

    /// Starts a write transaction. On SQLite it takes the write lock at once (waiting up to
    /// the busy timeout), so a transaction never fails half-way on a lock upgrade.
    /// Its commit is durable ([`Durability::Durable`]).
    pub(crate) async fn begin_write(&self) -> Result<Transaction<'static, Any>, StoreError> {
        self.begin_write_with(Durability::Durable).await
    }

    /// Starts a write transaction whose commit is as durable as `durability` asks.
    pub(crate) async fn begin_write_with(
        &self,
        durability: Durability,
    ) -> Result<Transaction<'static, Any>, StoreError> {
        let pool = self.write_pool(durability);
        let tx = match self.backend {
            Backend::Sqlite { .. } => pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => pool.begin().await,
        };
        tx.map_err(|e| self.db_err(e))
    }

    /// Appends an audit record inside the caller's transaction; returns its id.
    pub(crate) async fn append_audit(
        &self,
        conn: &mut AnyConnection,
        at: UnixMillis,
        key_hash: Option<&KeyHash>,
        kind: AuditKind,
        mut detail: serde_json::Value,
    ) -> Result<i64, StoreError> {
        // The label the device has now goes into the record, so that the log shows the
        // label of the time (and finds the device by a label it no longer has).
        if let (Some(key), serde_json::Value::Object(map)) = (key_hash, &mut detail)
            && map.get("label").is_none_or(serde_json::Value::is_null)
        {
            let label: Option<Option<String>> =
                sqlx::query_scalar("SELECT label FROM devices WHERE key_hash = $1")
                    .bind(key.to_string())
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(|e| self.db_err(e))?;
            match label.flatten() {
                Some(label) => {
                    map.insert("label".into(), serde_json::Value::String(label));
                }
                None => {
                    map.remove("label");
                }
            }
        }
        // The registry_state row lock orders ids by commit: a follower never skips one.
        let id: i64 = sqlx::query_scalar(
            "UPDATE registry_state SET audit_seq = audit_seq + 1 WHERE id = 1 RETURNING audit_seq",
        )
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| self.db_err(e))?;
        sqlx::query("INSERT INTO audit (id, at, key_hash, kind, detail, configurator) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(id)
            .bind(at)
            .bind(key_hash.map(|k| k.to_string()))
            .bind(kind.name().to_string())
            .bind(detail.to_string())
            .bind(self.configurator_id.clone())
            .execute(&mut *conn)
            .await
            .map_err(|e| self.db_err(e))?;
        Ok(id)
    }

    /// Records that the allowlist or a device configuration changed (see
    /// [`Registry::change_counter`]).
    pub(crate) async fn bump_change_counter(
        &self,
        conn: &mut AnyConnection,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE registry_state SET change_counter = change_counter + 1 WHERE id = 1")
            .execute(&mut *conn)
            .await
            .map_err(|e| self.db_err(e))?;
        Ok(())
    }

    pub(crate) async fn commit(&self, tx: Transaction<'static, Any>) -> Result<(), StoreError> {
        tx.commit().await.map_err(|e| self.db_err(e))
    }

    /// A number that changes whenever the allowlist, a profile or a device's configuration
    /// changes (by any process). Cheap: the daemon polls it and reloads when it differs.
    pub async fn change_counter(&self) -> Result<i64, StoreError> {
        sqlx::query_scalar("SELECT change_counter FROM registry_state WHERE id = 1")
            .fetch_one(&self.pool)
            .await
            .map_err(|e| self.db_err(e))
    }

    /// Audit records with an id greater than `after_id`, oldest first (at most
    /// `filter.limit`, default 1000). Follow the log by passing the last id seen.
    pub async fn audit_since(
        &self,
        after_id: i64,
        filter: &AuditFilter,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        let limit = i64::from(filter.limit.unwrap_or(DEFAULT_AUDIT_LIMIT));
        let rows = match &filter.key_hash {
            Some(key) => sqlx::query(
                "SELECT id, at, key_hash, kind, detail, configurator FROM audit WHERE id > $1 AND key_hash = $2 ORDER BY id LIMIT $3",
            )
            .bind(after_id)
            .bind(key.to_string())
            .bind(limit)
            .fetch_all(&self.pool)
            .await,
            None => sqlx::query("SELECT id, at, key_hash, kind, detail, configurator FROM audit WHERE id > $1 ORDER BY id LIMIT $2")
                .bind(after_id)
                .bind(limit)
                .fetch_all(&self.pool)
                .await,
        }
        .map_err(|e| self.db_err(e))?;
        rows.iter()
            .map(|row| {
                let key_hash: Option<String> = row.try_get("key_hash")?;
                let detail: String = row.try_get("detail")?;
                let kind: String = row.try_get("kind")?;
                Ok(AuditEvent {
                    id: row.try_get("id")?,
                    at_ms: row.try_get("at")?,
                    key_hash: key_hash.as_deref().and_then(parse_key_hash),
                    kind: AuditKind::from_name(&kind),
                    detail: serde_json::from_str(&detail)
                        .unwrap_or(serde_json::Value::String(detail)),
                    configurator: row.try_get("configurator")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(|e| self.db_err(e))
    }

    /// The id of the newest audit record (0 if none): `log --follow` starts after it.
    pub async fn latest_audit_id(&self) -> Result<i64, StoreError> {
        sqlx::query_scalar("SELECT audit_seq FROM registry_state WHERE id = 1")
            .fetch_one(&self.pool)
            .await
            .map_err(|e| self.db_err(e))
    }

    /// Stores the fleet's keys (once per suite) and its name. Secrets are sealed.
    pub async fn init_fleet(&self, name: &str, keys: &[FleetKeys]) -> Result<(), StoreError> {
        if keys.is_empty() {
            return Err(StoreError::InvalidInput(
                "a fleet needs keys for at least one suite".into(),
            ));
        }
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        for k in keys {
            let suite_id = i64::from(k.suite as u8);
            let row = suite_id.to_string();
            let exists: Option<i64> =
                sqlx::query_scalar("SELECT suite FROM fleet_keys WHERE suite = $1")
                    .bind(suite_id)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(|e| self.db_err(e))?;
            if exists.is_some() {
                return Err(StoreError::FleetExists(format!("{:?}", k.suite)));
            }
            let owner_secret =
                self.secret
                    .seal("fleet_keys", "owner_secret", &row, k.owner_secret.as_ref())?;
            let configurator_secret = self.secret.seal(
                "fleet_keys",
                "configurator_secret",
                &row,
                k.configurator_secret.as_ref(),
            )?;
            sqlx::query(
                "INSERT INTO fleet_keys (suite, owner_public, owner_secret, configurator_public, configurator_secret, certificate, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(suite_id)
            .bind(hex::encode(&k.owner_public))
            .bind(owner_secret)
            .bind(hex::encode(&k.configurator_public))
            .bind(configurator_secret)
            .bind(hex::encode(&k.certificate))
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.db_err(e))?;
        }
        sqlx::query("INSERT INTO meta (key, value) VALUES ('fleet_name', $1) ON CONFLICT (key) DO UPDATE SET value = excluded.value")
            .bind(name.to_string())
            .execute(&mut *tx)
            .await
            .map_err(|e| self.db_err(e))?;
        let suites: Vec<&str> = keys.iter().map(|k| k.suite.name()).collect();
        self.append_audit(
            &mut tx,
            now,
            None,
            AuditKind::FleetInitialized,
            serde_json::json!({ "name": name, "suites": suites }),
        )
        .await?;
        self.commit(tx).await
    }

    /// The fleet, or `None` before [`Registry::init_fleet`].
    pub async fn fleet(&self) -> Result<Option<Fleet>, StoreError> {
        let rows = sqlx::query(
            "SELECT suite, owner_public, owner_secret, configurator_public, configurator_secret, certificate FROM fleet_keys ORDER BY suite",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.db_err(e))?;
        if rows.is_empty() {
            return Ok(None);
        }
        let mut keys = Vec::with_capacity(rows.len());
        for row in &rows {
            let suite_id: i64 = row.try_get("suite").map_err(|e| self.db_err(e))?;
            let suite = u8::try_from(suite_id)
                .ok()
                .and_then(SuiteId::from_u8)
                .ok_or_else(|| {
                    StoreError::Database(format!("fleet keys of unknown suite {suite_id}"))
                })?;
            let text = |column: &str| -> Result<String, StoreError> {
                row.try_get(column).map_err(|e| self.db_err(e))
            };
            let row_key = suite_id.to_string();
            let secret = |column: &str| -> Result<Zeroizing<[u8; 32]>, StoreError> {
                let plain =
                    self.secret
                        .open_or_tampered("fleet_keys", column, &row_key, &text(column)?)?;
                let mut out = Zeroizing::new([0u8; 32]);
                if plain.len() != 32 {
                    return Err(StoreError::Tampered {
                        what: format!("fleet_keys.{column} of {row_key}"),
                    });
                }
                out.copy_from_slice(&plain);
                Ok(out)
            };
            let unhex = |column: &str| -> Result<Vec<u8>, StoreError> {
                hex::decode(text(column)?).map_err(|_| StoreError::Corrupt {
                    location: self.location.clone(),
                    detail: format!("fleet_keys.{column} is not hexadecimal"),
                })
            };
            keys.push(FleetKeys {
                suite,
                owner_public: unhex("owner_public")?,
                owner_secret: secret("owner_secret")?,
                configurator_public: unhex("configurator_public")?,
                configurator_secret: secret("configurator_secret")?,
                certificate: unhex("certificate")?,
            });
        }
        let name = self.meta_value("fleet_name").await?.unwrap_or_default();
        Ok(Some(Fleet { name, keys }))
    }
}

/// A database being opened: checked and migrated before the secret key is loaded.
struct Opening {
    pool: AnyPool,
    backend: Backend,
    location: String,
}

impl Opening {
    fn migrator(&self) -> &'static Migrator {
        match self.backend {
            Backend::Sqlite { .. } => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        }
    }

    /// Refuses foreign or newer databases, then applies the embedded migrations.
    async fn check_and_migrate(&self) -> Result<(), StoreError> {
        let migrator = self.migrator();
        let supported = migrator.iter().map(|m| m.version).max().unwrap_or(0);
        let has_migrations_table = match self.backend {
            Backend::Sqlite { .. } => {
                // The first read of a file that is not SQLite fails here with NOTADB.
                let tables: Vec<String> =
                    sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table'")
                        .fetch_all(&self.pool)
                        .await
                        .map_err(|e| self.db_err(e))?;
                let ours = tables.iter().any(|t| t == "_sqlx_migrations");
                if !ours && !tables.is_empty() {
                    return Err(StoreError::Corrupt {
                        location: self.location.clone(),
                        detail: format!(
                            "it is a SQLite database of something else (tables: {})",
                            tables.join(", ")
                        ),
                    });
                }
                // WAL lets readers (the CLI) run while the daemon writes. Persistent in the file.
                let mode: String = sqlx::query_scalar("PRAGMA journal_mode = WAL")
                    .fetch_one(&self.pool)
                    .await
                    .map_err(|e| self.db_err(e))?;
                if !mode.eq_ignore_ascii_case("wal") {
                    return Err(StoreError::Database(format!(
                        "{} cannot use write-ahead logging (journal mode stays {mode}): put the registry on a local file system",
                        self.location
                    )));
                }
                ours
            }
            Backend::Postgres => {
                let count: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = '_sqlx_migrations'",
                )
                .fetch_one(&self.pool)
                .await
                .map_err(|e| self.db_err(e))?;
                count > 0
            }
        };
        if has_migrations_table {
            let found: Option<i64> =
                sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations")
                    .fetch_one(&self.pool)
                    .await
                    .map_err(|e| self.db_err(e))?;
            if let Some(found) = found.filter(|&v| v > supported) {
                return Err(StoreError::SchemaTooNew {
                    location: self.location.clone(),
                    found,
                    supported,
                });
            }
        }
        migrator.run(&self.pool).await.map_err(|e| match e {
            MigrateError::Execute(err) | MigrateError::ExecuteMigration(err, _) => self.db_err(err),
            MigrateError::VersionMissing(found) => StoreError::SchemaTooNew {
                location: self.location.clone(),
                found,
                supported,
            },
            other => StoreError::Migration {
                location: self.location.clone(),
                detail: other.to_string(),
            },
        })
    }

    /// Loads the secret key and checks it against `meta.secret_check` (storing the check
    /// value in a new registry).
    async fn load_secret_key(&self, source: &SecretKeySource) -> Result<SecretKey, StoreError> {
        let default_file = match &self.backend {
            Backend::Sqlite { path } => Some(Registry::default_key_file(path)),
            Backend::Postgres => None,
        };
        let stored = self.meta_value("secret_check").await?;
        let key = SecretKey::resolve(source, default_file.as_deref(), stored.is_none())?;
        let check = match stored {
            Some(check) => check,
            None => {
                let sealed = key.seal("meta", "value", "secret_check", SECRET_CHECK_PLAINTEXT)?;
                // Two processes creating the registry at once: the first check value wins.
                sqlx::query("INSERT INTO meta (key, value) VALUES ('secret_check', $1) ON CONFLICT (key) DO NOTHING")
                    .bind(sealed)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| self.db_err(e))?;
                self.meta_value("secret_check").await?.unwrap_or_default()
            }
        };
        match key.open("meta", "value", "secret_check", &check) {
            Some(plain) if plain.as_slice() == SECRET_CHECK_PLAINTEXT => Ok(key),
            _ => Err(StoreError::WrongSecretKey {
                detail: format!(
                    "{} cannot decrypt {}; use the key this registry was created with (its key file, or ZEROTOUCH_SECRET_KEY)",
                    key.origin, self.location
                ),
            }),
        }
    }

    async fn meta_value(&self, key: &str) -> Result<Option<String>, StoreError> {
        meta_value(&self.pool, &self.location, key).await
    }

    fn db_err(&self, err: sqlx::Error) -> StoreError {
        StoreError::from_sqlx(err, &self.location)
    }
}

async fn meta_value(
    pool: &AnyPool,
    location: &str,
    key: &str,
) -> Result<Option<String>, StoreError> {
    sqlx::query_scalar("SELECT value FROM meta WHERE key = $1")
        .bind(key.to_string())
        .fetch_optional(pool)
        .await
        .map_err(|e| StoreError::from_sqlx(e, location))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `synchronous` level of the connection running `tx` (1 = NORMAL, 2 = FULL).
    async fn synchronous_level(tx: &mut Transaction<'static, Any>) -> i64 {
        sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&mut **tx)
            .await
            .expect("read PRAGMA synchronous")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn write_transactions_commit_at_the_level_they_ask_for() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("registry.db");
        let registry = Registry::open(
            path.to_str().expect("utf-8 path"),
            SecretKeySource::Key(Zeroizing::new([3; 32])),
        )
        .await
        .expect("open");
        // Several rounds so that more than one pooled connection of each kind is checked.
        for _ in 0..3 {
            let mut relaxed = registry
                .begin_write_with(Durability::Relaxed)
                .await
                .expect("relaxed transaction");
            assert_eq!(synchronous_level(&mut relaxed).await, 1, "NORMAL");
            let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
                .fetch_one(&mut *relaxed)
                .await
                .expect("journal mode");
            assert_eq!(mode, "wal", "NORMAL is only crash-safe in WAL mode");
            drop(relaxed);
            let mut durable = registry
                .begin_write_with(Durability::Durable)
                .await
                .expect("durable transaction");
            assert_eq!(synchronous_level(&mut durable).await, 2, "FULL");
            durable.commit().await.expect("commit");
            let mut default = registry.begin_write().await.expect("default transaction");
            assert_eq!(synchronous_level(&mut default).await, 2, "FULL by default");
        }
        registry.close().await;
    }
}
