//! Bakes the manufacturing settings into the image, from environment variables read at
//! build time (so a production line builds one image per fleet, and a development build
//! needs nothing):
//!
//! - `ZEROTOUCH_OWNER_KEYS`: owner public keys to pin, as base64 DER SubjectPublicKeyInfo
//!   (the `K:` format of DPP URIs), separated by commas or whitespace; at most 4. Unset or
//!   empty = trust on first use (the first owner that provisions the device is pinned).
//! - `ZEROTOUCH_SUITE`: the identity key's cipher suite, `ed25519` (default) or `p256`.
//! - `ZEROTOUCH_MARKET`: where the device is sold, `US`, `CA`, `EU` (default), `GB`, `JP`
//!   or `CN`: the Wi-Fi country code and the channels it may use (1-11 in the US and Canada).
//! - `ZEROTOUCH_TX_POWER_QDBM`: maximum TX power in quarter-dBm, 8..=84 (default 60 = 15 dBm).
//!
//! Malformed values fail the build, so a production image can never silently fall back
//! to trust on first use, and so does an owner key of another suite than `ZEROTOUCH_SUITE`.
//! The keys are fully validated (curve point, suite of the stored identity) again at boot.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::PathBuf;

use zerotouch_firmware_policy::{Market, TxPower};

const MAX_OWNERS: usize = 4;

fn main() {
    println!("cargo:rerun-if-env-changed=ZEROTOUCH_OWNER_KEYS");
    println!("cargo:rerun-if-env-changed=ZEROTOUCH_SUITE");
    println!("cargo:rerun-if-env-changed=ZEROTOUCH_MARKET");
    println!("cargo:rerun-if-env-changed=ZEROTOUCH_TX_POWER_QDBM");
    println!("cargo:rerun-if-changed=build.rs");

    let owners_var = env::var("ZEROTOUCH_OWNER_KEYS").unwrap_or_default();
    let owners: Vec<&str> = owners_var
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .collect();
    if owners.len() > MAX_OWNERS {
        fail(&format!(
            "ZEROTOUCH_OWNER_KEYS holds {} keys; at most {MAX_OWNERS} can be pinned",
            owners.len()
        ));
    }
    // Cargo sets this for the `suite-p256` feature (on by default).
    let p256_built_in = env::var_os("CARGO_FEATURE_SUITE_P256").is_some();
    for key in &owners {
        let base64 = key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'=');
        // DER SPKI of the supported suites: 44 bytes (Ed25519), 59 (P-256 compressed) or
        // 91 (P-256 uncompressed): 60, 80 or 124 base64 characters.
        if !base64 || !matches!(key.len(), 60 | 80 | 124) {
            fail(&format!(
                "ZEROTOUCH_OWNER_KEYS entry `{key}` is not a base64 DER SubjectPublicKeyInfo of an Ed25519 or P-256 key"
            ));
        }
        if key.len() != 60 && !p256_built_in {
            fail(&format!(
                "ZEROTOUCH_OWNER_KEYS entry `{key}` is a P-256 key but the image is built without the `suite-p256` feature; drop --no-default-features or pin Ed25519 owner keys"
            ));
        }
    }

    let suite = env::var("ZEROTOUCH_SUITE").unwrap_or_else(|_| "ed25519".into());
    if suite != "ed25519" && suite != "p256" {
        fail(&format!(
            "ZEROTOUCH_SUITE is `{suite}`; use `ed25519` or `p256`"
        ));
    }

    if suite == "p256" && !p256_built_in {
        fail(
            "ZEROTOUCH_SUITE is `p256` but the image is built without the `suite-p256` feature; drop --no-default-features or use `ed25519`",
        );
    }
    // An owner key of another suite than the identity could never certify a configurator
    // the device accepts (the firmware also halts on one at boot, against the suite of the
    // identity it actually stored).
    for key in &owners {
        let key_suite = if key.len() == 60 { "ed25519" } else { "p256" };
        if key_suite != suite {
            fail(&format!(
                "ZEROTOUCH_OWNER_KEYS entry `{key}` is of suite {key_suite} but ZEROTOUCH_SUITE is `{suite}`: it could never match; pin {suite} owner keys or set ZEROTOUCH_SUITE={key_suite}"
            ));
        }
    }

    let market_var = env::var("ZEROTOUCH_MARKET").unwrap_or_else(|_| "EU".into());
    let market = Market::parse(&market_var).unwrap_or_else(|| {
        fail(&format!(
            "ZEROTOUCH_MARKET is `{market_var}`; use US, CA, EU, GB, JP or CN"
        ))
    });
    let power = match env::var("ZEROTOUCH_TX_POWER_QDBM") {
        Ok(text) => TxPower::parse(&text).unwrap_or_else(|| {
            fail(&format!(
                "ZEROTOUCH_TX_POWER_QDBM is `{text}`; use an integer from 8 to 84 (quarter-dBm: 2 to 20 dBm)"
            ))
        }),
        Err(_) => TxPower::DEFAULT,
    };

    let mut out = String::new();
    out.push_str(
        "/// Owner keys pinned at manufacturing (base64 DER SPKI), from `ZEROTOUCH_OWNER_KEYS`.\n",
    );
    out.push_str("pub const OWNER_KEYS_SPKI_BASE64: &[&str] = &[");
    for key in &owners {
        let _ = write!(out, "\"{key}\", ");
    }
    out.push_str("];\n");
    out.push_str("/// Cipher suite name of the identity key, from `ZEROTOUCH_SUITE`.\n");
    let _ = writeln!(out, "pub const IDENTITY_SUITE_NAME: &str = \"{suite}\";");
    out.push_str("/// Market (country code, allowed channels), from `ZEROTOUCH_MARKET`.\n");
    let _ = writeln!(
        out,
        "pub const MARKET: zerotouch_firmware_policy::Market = zerotouch_firmware_policy::Market::{market:?};"
    );
    out.push_str("/// Maximum TX power in quarter-dBm, from `ZEROTOUCH_TX_POWER_QDBM`.\n");
    let _ = writeln!(
        out,
        "pub const TX_POWER_QDBM: i8 = {};",
        power.quarter_dbm()
    );

    let path =
        PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("manufacturing.rs");
    fs::write(&path, out)
        .unwrap_or_else(|e| fail(&format!("cannot write {}: {e}", path.display())));
}

fn fail(message: &str) -> ! {
    eprintln!("error: {message}");
    std::process::exit(1);
}
