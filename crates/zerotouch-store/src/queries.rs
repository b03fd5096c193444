//! Read queries for dashboards and the HTTP API: one page of devices filtered and sorted
//! in SQL (so a 10,000-device registry costs one indexed page, not a full read), and the
//! number of devices in each state.

use std::collections::BTreeMap;

use sqlx::Row;

use crate::devices::DEVICE_COLUMNS;
use crate::error::StoreError;
use crate::model::{DEFAULT_PROFILE, Device};
use crate::registry::Registry;

/// Orders a page of devices may be sorted by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DeviceSort {
    /// Oldest allowlist entry first (the default).
    #[default]
    Created,
    /// By label (devices without one last).
    Label,
    /// By state name.
    State,
    /// Most recent event first.
    LastEvent,
}

impl DeviceSort {
    /// Parses `created_at`, `label`, `state` or `last_event_at`.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "created_at" => Self::Created,
            "label" => Self::Label,
            "state" => Self::State,
            "last_event_at" => Self::LastEvent,
            _ => return None,
        })
    }

    fn order_by(self, descending: bool) -> &'static str {
        match (self, descending) {
            (Self::Created, false) => "created_at, key_hash",
            (Self::Created, true) => "created_at DESC, key_hash DESC",
            (Self::Label, false) => "label IS NULL, label, key_hash",
            (Self::Label, true) => "label IS NULL, label DESC, key_hash DESC",
            (Self::State, false) => "state, created_at, key_hash",
            (Self::State, true) => "state DESC, created_at, key_hash",
            (Self::LastEvent, false) => "last_event_at IS NULL, last_event_at DESC, key_hash",
            (Self::LastEvent, true) => "last_event_at IS NULL, last_event_at, key_hash",
        }
    }
}

/// Which page of devices [`Registry::device_page`] returns.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DevicePageQuery {
    /// Only this state name.
    pub state: Option<String>,
    /// Only this profile (the default profile matches devices with none).
    pub profile: Option<String>,
    /// Only devices whose label contains this text or whose key hash starts with it.
    pub search: Option<String>,
    /// Order.
    pub sort: DeviceSort,
    /// Reverse the order.
    pub descending: bool,
    /// Page size.
    pub limit: u32,
    /// Devices skipped before the page.
    pub offset: u64,
}

/// `text` with LIKE's wildcards escaped (with `\`).
fn like_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl Registry {
    /// One page of devices matching `query`, and how many match in all.
    pub async fn device_page(
        &self,
        query: &DevicePageQuery,
    ) -> Result<(Vec<Device>, u64), StoreError> {
        let mut conditions = Vec::new();
        let mut binds: Vec<String> = Vec::new();
        if let Some(state) = &query.state {
            binds.push(state.clone());
            conditions.push(format!("state = ${}", binds.len()));
        }
        if let Some(profile) = &query.profile {
            binds.push(profile.clone());
            let n = binds.len();
            conditions.push(if profile == DEFAULT_PROFILE {
                format!("(profile = ${n} OR profile IS NULL)")
            } else {
                format!("profile = ${n}")
            });
        }
        if let Some(search) = query.search.as_deref().filter(|s| !s.is_empty()) {
            binds.push(format!("%{}%", like_escape(search)));
            binds.push(format!("{}%", like_escape(&search.to_ascii_lowercase())));
            let n = binds.len();
            conditions.push(format!(
                "(label LIKE ${} ESCAPE '\\' OR key_hash LIKE ${n} ESCAPE '\\')",
                n - 1
            ));
        }
        let filter = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };
        let count_sql = format!("SELECT COUNT(*) FROM devices {filter}");
        let mut count = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(count_sql));
        for b in &binds {
            count = count.bind(b.clone());
        }
        let total = count
            .fetch_one(&self.pool)
            .await
            .map_err(|e| self.db_err(e))?;
        let page_sql = format!(
            "SELECT {DEVICE_COLUMNS} FROM devices {filter} ORDER BY {} LIMIT {} OFFSET {}",
            query.sort.order_by(query.descending),
            query.limit,
            query.offset
        );
        let mut page = sqlx::query(sqlx::AssertSqlSafe(page_sql));
        for b in &binds {
            page = page.bind(b.clone());
        }
        let rows = page
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.db_err(e))?;
        let devices = rows
            .iter()
            .map(|r| self.device_from_row(r))
            .collect::<Result<_, _>>()?;
        Ok((devices, u64::try_from(total).unwrap_or(0)))
    }

    /// How many devices are in each state (states with none are left out).
    pub async fn device_counts(&self) -> Result<BTreeMap<String, u64>, StoreError> {
        let rows = sqlx::query("SELECT state, COUNT(*) AS n FROM devices GROUP BY state")
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.db_err(e))?;
        rows.iter()
            .map(|row| {
                let state: String = row.try_get("state")?;
                let n: i64 = row.try_get("n")?;
                Ok((state, u64::try_from(n).unwrap_or(0)))
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(|e| self.db_err(e))
    }
}
