//! `zerotouch token`: bearer tokens for the daemon's HTTP API (stored hashed; the token is
//! printed once, at creation).

use clap::{Args, Subcommand};
use serde::Serialize;
use zerotouch_store::{ApiToken, Role};

use crate::cli::Context;
use crate::error::AppError;
use crate::output::{Direction, format_time, parse_when, print_json, print_table, write_stdout};

/// `zerotouch token ...`
#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Create a token and print it (once: only its hash is stored).
    Create(CreateArgs),
    /// List tokens: name, role, created, expires, revoked, last used.
    List,
    /// Revoke a token: it stops working at once.
    Revoke(RevokeArgs),
}

/// Arguments of `zerotouch token create`.
#[derive(Args, Debug)]
pub struct CreateArgs {
    /// Unique name, recorded in the audit log with every change the token makes.
    pub name: String,
    /// viewer (read), operator (also add, import, revoke devices), admin (also profiles).
    #[arg(long, value_parser = ["viewer", "operator", "admin"])]
    pub role: String,
    /// Expiry: RFC 3339 time, a date or a duration from now (`90d`).
    #[arg(long, value_name = "WHEN")]
    pub expires: Option<String>,
}

/// Arguments of `zerotouch token revoke`.
#[derive(Args, Debug)]
pub struct RevokeArgs {
    /// The token's name.
    pub name: String,
}

#[derive(Serialize)]
struct TokenView {
    name: String,
    role: &'static str,
    created_at: String,
    expires_at: Option<String>,
    revoked_at: Option<String>,
    last_used_at: Option<String>,
}

impl TokenView {
    fn of(token: &ApiToken) -> Self {
        Self {
            name: token.name.clone(),
            role: token.role.name(),
            created_at: format_time(token.created_at_ms),
            expires_at: token.expires_at_ms.map(format_time),
            revoked_at: token.revoked_at_ms.map(format_time),
            last_used_at: token.last_used_at_ms.map(format_time),
        }
    }
}

/// Runs a `token` command.
pub async fn run(cmd: TokenCommand, ctx: &Context) -> Result<(), AppError> {
    let registry = ctx.open_registry().await?;
    match cmd {
        TokenCommand::Create(args) => {
            let role = Role::from_name(&args.role)
                .ok_or_else(|| AppError::Usage(format!("unknown role {:?}", args.role)))?;
            let expires = args
                .expires
                .as_deref()
                .map(|t| parse_when(t, Direction::Future, "--expires"))
                .transpose()?;
            let token = registry.create_token(&args.name, role, expires).await?;
            if ctx.json {
                return print_json(&serde_json::json!({
                    "name": args.name, "role": role.name(), "token": token
                }));
            }
            write_stdout(&token)
        }
        TokenCommand::List => {
            let views: Vec<TokenView> = registry
                .list_tokens()
                .await?
                .iter()
                .map(TokenView::of)
                .collect();
            if ctx.json {
                return print_json(&views);
            }
            let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
            let rows: Vec<Vec<String>> = views
                .iter()
                .map(|v| {
                    vec![
                        v.name.clone(),
                        v.role.to_string(),
                        v.created_at.clone(),
                        dash(&v.expires_at),
                        dash(&v.revoked_at),
                        dash(&v.last_used_at),
                    ]
                })
                .collect();
            print_table(
                &["NAME", "ROLE", "CREATED", "EXPIRES", "REVOKED", "LAST USED"],
                &rows,
            )
        }
        TokenCommand::Revoke(args) => {
            let changed = registry.revoke_token(&args.name).await?;
            if ctx.json {
                return print_json(
                    &serde_json::json!({ "name": args.name, "revoked": true, "changed": changed }),
                );
            }
            write_stdout(&if changed {
                format!("revoked token {}", args.name)
            } else {
                format!("token {} was already revoked", args.name)
            })
        }
    }
}
