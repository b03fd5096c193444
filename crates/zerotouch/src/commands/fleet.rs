//! `zerotouch fleet`: the fleet owner key and the configurator identity.

use base64ct::{Base64, Encoding};
use clap::{Args, Subcommand};
use serde::Serialize;
use zerotouch_proto::{ConfiguratorCert, PublicKey, SuiteId};
use zerotouch_store::{Fleet, FleetKeys, Registry, StoreError};

use crate::cli::Context;
use crate::error::AppError;
use crate::identity;
use crate::output::{format_time, now_ms, print_json, write_stdout};

/// `zerotouch fleet ...`
#[derive(Subcommand, Debug)]
pub enum FleetCommand {
    /// Create the owner keys and the configurator identities with owner-signed certificates
    /// (one of each per suite: ed25519 and p256), and print the owner public keys to pin
    /// into devices. Done once per registry: the owner key is never replaced.
    Init(InitArgs),
    /// Print the owner public keys and the configurator certificates' validity.
    Show,
}

/// Arguments of `zerotouch fleet init`.
#[derive(Args, Debug)]
pub struct InitArgs {
    /// A name for the fleet (shown by `fleet show`).
    #[arg(long, default_value = "zerotouch")]
    pub name: String,
    /// How long the configurator certificates are valid, in days.
    #[arg(long, default_value_t = 730, value_name = "DAYS", value_parser = clap::value_parser!(u32).range(1..=36500))]
    pub cert_validity_days: u32,
}

/// One suite's public fleet keys, as printed.
#[derive(Serialize)]
struct SuiteKeysView {
    suite: &'static str,
    owner_public_hex: String,
    owner_public_base64: String,
    owner_spki_base64: String,
    owner_key_hash: String,
    configurator_public_hex: String,
    configurator_key_hash: String,
    certificate_not_after: String,
}

/// What `fleet init` and `fleet show` print.
#[derive(Serialize)]
struct FleetView {
    name: String,
    registry: String,
    secret_key: String,
    suites: Vec<SuiteKeysView>,
}

/// Runs a `fleet` command.
pub async fn run(cmd: FleetCommand, ctx: &Context) -> Result<(), AppError> {
    let registry = ctx.open_registry().await?;
    match cmd {
        FleetCommand::Init(args) => init(args, ctx, &registry).await,
        FleetCommand::Show => {
            let fleet = registry.fleet().await?.ok_or(StoreError::NoFleet)?;
            print_fleet(&fleet, ctx, "Fleet")
        }
    }
}

async fn init(args: InitArgs, ctx: &Context, registry: &Registry) -> Result<(), AppError> {
    if let Some(existing) = registry.fleet().await? {
        return Err(AppError::Conflict(format!(
            "the registry {} already holds fleet {:?}; its owner key is pinned in devices, so it is \
             never replaced. Use another --registry for a new fleet, or `zerotouch fleet show` to \
             print its keys",
            ctx.registry, existing.name
        )));
    }
    let validity_secs = u64::from(args.cert_validity_days) * 86_400;
    let now_secs = u64::try_from(now_ms() / 1000).unwrap_or(0);
    let not_after = u32::try_from(now_secs + validity_secs).map_err(|_| {
        AppError::Usage(
            "--cert-validity-days reaches past 2106, the certificate time limit; choose fewer days"
                .into(),
        )
    })?;
    let mut keys = Vec::with_capacity(SuiteId::ALL.len());
    for suite in SuiteId::ALL {
        let owner = identity::generate(suite)?;
        let configurator = identity::generate(suite)?;
        let cert = ConfiguratorCert::issue(&owner, &configurator.public_key(), not_after)?;
        keys.push(FleetKeys {
            suite,
            owner_public: owner.public_key().as_wire().to_vec(),
            owner_secret: owner.secret_bytes(),
            configurator_public: configurator.public_key().as_wire().to_vec(),
            configurator_secret: configurator.secret_bytes(),
            certificate: cert.to_bytes().to_vec(),
        });
    }
    registry.init_fleet(&args.name, &keys).await?;
    let fleet = registry.fleet().await?.ok_or(StoreError::NoFleet)?;
    print_fleet(&fleet, ctx, "Created fleet")
}

fn print_fleet(fleet: &Fleet, ctx: &Context, title: &str) -> Result<(), AppError> {
    let mut suites = Vec::with_capacity(fleet.keys.len());
    for keys in &fleet.keys {
        let owner = PublicKey::from_wire(keys.suite, &keys.owner_public)?;
        let configurator = PublicKey::from_wire(keys.suite, &keys.configurator_public)?;
        let cert = ConfiguratorCert::from_bytes(keys.suite, &keys.certificate)?;
        suites.push(SuiteKeysView {
            suite: keys.suite.name(),
            owner_public_hex: hex::encode(owner.as_wire()),
            owner_public_base64: Base64::encode_string(owner.as_wire()),
            owner_spki_base64: Base64::encode_string(&owner.to_spki_der()),
            owner_key_hash: owner.key_hash().to_string(),
            configurator_public_hex: hex::encode(configurator.as_wire()),
            configurator_key_hash: configurator.key_hash().to_string(),
            certificate_not_after: format_time(i64::from(cert.not_after) * 1000),
        });
    }
    let view = FleetView {
        name: fleet.name.clone(),
        registry: ctx.registry.to_string(),
        secret_key: ctx.secret_key_location(),
        suites,
    };
    if ctx.json {
        return print_json(&view);
    }
    let mut text = format!("{title} {:?}\n", view.name);
    text.push_str(&format!("  registry:   {}\n", view.registry));
    text.push_str(&format!(
        "  secret key: {} (back it up; without it the registry's secrets are lost)\n",
        view.secret_key
    ));
    for s in &view.suites {
        text.push_str(&format!(
            "\n  {} owner public key (pin this into {} devices):\n",
            s.suite, s.suite
        ));
        text.push_str(&format!("    hex:         {}\n", s.owner_public_hex));
        text.push_str(&format!("    base64:      {}\n", s.owner_public_base64));
        text.push_str(&format!("    spki base64: {}\n", s.owner_spki_base64));
        text.push_str(&format!("    key hash:    {}\n", s.owner_key_hash));
        text.push_str(&format!(
            "  {} configurator key hash {}, certificate valid until {}\n",
            s.suite, s.configurator_key_hash, s.certificate_not_after
        ));
    }
    write_stdout(text.trim_end())
}
