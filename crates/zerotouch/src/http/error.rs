//! [`ApiError`]: every failure of an API request as a JSON body
//! `{"error": {"code", "message", "field"?, "problems"?}}` with the matching status code.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use zerotouch_store::StoreError;

use crate::commands::allow::{ImportError, ImportProblem};

/// A failed API request.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    field: Option<String>,
    problems: Vec<ImportProblem>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: Detail<'a>,
}

#[derive(Serialize)]
struct Detail<'a> {
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    problems: &'a [ImportProblem],
}

impl ApiError {
    /// An error with this status, machine-readable code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
            problems: Vec::new(),
        }
    }

    /// 422: the field `field` of the request is invalid, for `reason`.
    pub fn invalid_field(field: &str, reason: impl std::fmt::Display) -> Self {
        let mut err = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            format!("{field}: {reason}"),
        );
        err.field = Some(field.to_string());
        err
    }

    /// 400: the body is not what the endpoint takes.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Body {
            error: Detail {
                code: self.code,
                message: &self.message,
                field: self.field.as_deref(),
                problems: &self.problems,
            },
        };
        (self.status, Json(body)).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        let message = err.to_string();
        let (status, code) = match &err {
            StoreError::DeviceNotFound(_) | StoreError::TokenNotFound(_) | StoreError::NoFleet => {
                (StatusCode::NOT_FOUND, "not_found")
            }
            StoreError::UnknownProfile(_) => (StatusCode::UNPROCESSABLE_ENTITY, "unknown_profile"),
            StoreError::DuplicateKey(_)
            | StoreError::DuplicateLabel(_)
            | StoreError::DuplicateToken(_)
            | StoreError::AmbiguousPrefix { .. }
            | StoreError::ProfileInUse { .. }
            | StoreError::DeviceRevoked(_)
            | StoreError::FleetExists(_)
            | StoreError::ImportRejected(_) => (StatusCode::CONFLICT, "conflict"),
            StoreError::ProfileVersionMismatch { .. } => {
                (StatusCode::PRECONDITION_FAILED, "version_mismatch")
            }
            StoreError::InvalidConfig(_) | StoreError::InvalidInput(_) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "invalid")
            }
            // The database is unreachable or busy: retry later; the daemon keeps provisioning.
            StoreError::Busy { .. }
            | StoreError::Unreachable { .. }
            | StoreError::Database(_)
            | StoreError::Io { .. } => (StatusCode::SERVICE_UNAVAILABLE, "registry_unavailable"),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        if status == StatusCode::INTERNAL_SERVER_ERROR || status == StatusCode::SERVICE_UNAVAILABLE
        {
            tracing::warn!(%err, "API request failed on the registry");
        }
        Self::new(status, code, message)
    }
}

impl From<ImportError> for ApiError {
    fn from(err: ImportError) -> Self {
        match err {
            ImportError::Format(message) => {
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, "bad_import_file", message)
            }
            ImportError::Empty => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "empty_import",
                "the import has no entries; nothing was imported",
            ),
            ImportError::Rejected(problems) => Self {
                problems,
                ..Self::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "import_rejected",
                    "import rejected, nothing was imported (the import is all or nothing): every bad entry is listed",
                )
            },
            ImportError::Conflicts(problems) => Self {
                problems,
                ..Self::new(
                    StatusCode::CONFLICT,
                    "import_conflicts",
                    "import rejected, nothing was imported (the import is all or nothing): these entries conflict with the registry",
                )
            },
            ImportError::Store(e) => e.into(),
        }
    }
}
