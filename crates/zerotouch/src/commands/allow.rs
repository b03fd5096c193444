//! `zerotouch allow`: the allowlist.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::cli::Context;
use crate::error::AppError;

/// `zerotouch allow ...`
#[derive(Subcommand, Debug)]
pub enum AllowCommand {
    /// Allow one device, given as a DPP URI, a public key (base64/hex DER SPKI or raw key)
    /// or a 64-hex-digit key hash.
    Add(AddArgs),
    /// Allow many devices from a file: CSV with a header (uri or key or hash, label,
    /// profile, expires), a JSON array, or one DPP URI per line. All or nothing.
    Import(ImportArgs),
    /// List allowlist entries: key hash, label, profile, state, last event.
    List(ListArgs),
    /// Revoke a device: it will be refused from now on, and its PSK leaves the next export.
    Revoke(RevokeArgs),
}

/// Arguments of `zerotouch allow add`.
#[derive(Args, Debug)]
pub struct AddArgs {
    /// DPP URI (`DPP:...;;`), public key (base64 or hex; DER SPKI or raw), or key hash (64 hex).
    pub device: String,
    /// Human label (unique), e.g. a serial number.
    #[arg(long)]
    pub label: Option<String>,
    /// Profile to deliver (must exist).
    #[arg(long)]
    pub profile: Option<String>,
    /// Expiry: RFC 3339 time (`2027-01-31T00:00:00Z`), a date (`2027-01-31`) or a duration
    /// from now (`30d`, `12h`).
    #[arg(long, value_name = "WHEN")]
    pub expires: Option<String>,
}

/// Arguments of `zerotouch allow import`.
#[derive(Args, Debug)]
pub struct ImportArgs {
    /// The file (`-` for stdin).
    pub file: PathBuf,
    /// Profile for entries that do not name one.
    #[arg(long)]
    pub profile: Option<String>,
}

/// Arguments of `zerotouch allow list`.
#[derive(Args, Debug)]
pub struct ListArgs {
    /// Only entries in this state.
    #[arg(long, value_parser = ["allowed", "provisioning", "provisioned", "failed", "revoked"])]
    pub state: Option<String>,
}

/// Arguments of `zerotouch allow revoke`.
#[derive(Args, Debug)]
pub struct RevokeArgs {
    /// The device: a key-hash prefix (at least 4 hex digits) or its label.
    pub device: String,
    /// Why (recorded in the audit log).
    #[arg(long)]
    pub reason: Option<String>,
}

/// Runs an `allow` command.
pub async fn run(cmd: AllowCommand, ctx: &Context) -> Result<(), AppError> {
    let _ = (cmd, ctx);
    Err(AppError::not_built("allow"))
}
