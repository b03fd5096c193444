//! `zerotouch export`: registry data for other software.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use zeroize::Zeroizing;
use zerotouch_store::ProvisionedPsk;

use crate::cli::Context;
use crate::commands::device::write_atomic;
use crate::error::AppError;
use crate::output::{print_json, write_stdout};

/// `zerotouch export ...`
#[derive(Subcommand, Debug)]
pub enum ExportCommand {
    /// Write a hostapd `wpa_psk_file`: one line per provisioned device with a per-device PSK.
    HostapdPsk(HostapdPskArgs),
}

/// Arguments of `zerotouch export hostapd-psk`.
#[derive(Args, Debug)]
pub struct HostapdPskArgs {
    /// Output file (replaced atomically, mode 0600; a symlink is written through to its
    /// target), or `-` for stdout.
    pub file: PathBuf,
}

/// Runs an `export` command.
pub async fn run(cmd: ExportCommand, ctx: &Context) -> Result<(), AppError> {
    match cmd {
        ExportCommand::HostapdPsk(args) => hostapd_psk(args, ctx).await,
    }
}

/// The MAC hostapd matches any station with: the passphrase alone identifies the device.
const ANY_STATION: &str = "00:00:00:00:00:00";

/// A `keyid=` value hostapd can parse: no whitespace, no `=`; labels that do not fit are
/// left out rather than mangled.
fn keyid_of(label: Option<&str>) -> Option<&str> {
    label.filter(|l| {
        !l.is_empty()
            && l.len() <= 64
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-:@".contains(&b))
    })
}

/// The `wpa_psk_file` text (one line per device: `[keyid=LABEL] MAC PASSPHRASE`).
pub fn hostapd_psk_file(psks: &[ProvisionedPsk]) -> Result<Zeroizing<String>, AppError> {
    let mut text = Zeroizing::new(String::from(
        "# hostapd wpa_psk_file written by `zerotouch export hostapd-psk`: one line per\n\
         # provisioned device with a per-device passphrase. Regenerate it, do not edit it.\n",
    ));
    for entry in psks {
        let psk = entry.psk.as_str();
        // hostapd takes 8..=63 printable ASCII (a 64-character value would be read as hex).
        if !(8..=63).contains(&psk.len()) || !psk.bytes().all(|b| (0x20..0x7f).contains(&b)) {
            return Err(AppError::Corrupt(format!(
                "the stored passphrase of {} is not 8..=63 printable ASCII characters; the registry was modified outside zerotouch",
                entry.key_hash
            )));
        }
        let mac = entry
            .mac
            .map_or_else(|| ANY_STATION.to_string(), |m| m.to_string());
        if let Some(keyid) = keyid_of(entry.label.as_deref()) {
            text.push_str(&format!("keyid={keyid} "));
        }
        text.push_str(&format!("{mac} {psk}\n"));
    }
    Ok(text)
}

async fn hostapd_psk(args: HostapdPskArgs, ctx: &Context) -> Result<(), AppError> {
    let registry = ctx.open_existing_registry().await?;
    let psks = registry.provisioned_psks().await?;
    let text = hostapd_psk_file(&psks)?;
    if args.file.as_os_str() == "-" {
        return write_stdout(text.trim_end());
    }
    write_atomic(&export_target(&args.file)?, text.as_bytes(), 0o600)?;
    if ctx.json {
        return print_json(&serde_json::json!({
            "file": args.file.display().to_string(),
            "devices": psks.len(),
            "key_hashes": psks.iter().map(|p| p.key_hash.to_string()).collect::<Vec<_>>(),
        }));
    }
    write_stdout(&format!(
        "wrote {} with {} device(s) (mode 0600); point hostapd's wpa_psk_file at it and reload hostapd",
        args.file.display(),
        psks.len()
    ))
}

/// The regular file to replace for `path`: the path itself, or the file a symlink points
/// to (hostapd setups often link the PSK file). A device node, FIFO or directory is refused:
/// replacing `/dev/null` with a file of passphrases is never what was meant.
fn export_target(path: &Path) -> Result<PathBuf, AppError> {
    let Ok(link) = std::fs::symlink_metadata(path) else {
        return Ok(path.to_path_buf());
    };
    if !link.file_type().is_symlink() {
        return regular_or_refused(path, &link).map(|()| path.to_path_buf());
    }
    let resolved = std::fs::canonicalize(path).map_err(|e| {
        AppError::io(
            format_args!(
                "{} is a symlink whose target cannot be resolved; fix or remove the link",
                path.display()
            ),
            e,
        )
    })?;
    let meta = std::fs::metadata(&resolved)
        .map_err(|e| AppError::io(format_args!("cannot inspect {}", resolved.display()), e))?;
    regular_or_refused(&resolved, &meta).map(|()| resolved)
}

fn regular_or_refused(path: &Path, meta: &std::fs::Metadata) -> Result<(), AppError> {
    if meta.is_file() {
        return Ok(());
    }
    Err(AppError::Usage(format!(
        "{} exists and is not a regular file; it was left untouched. Give a file path, or `-` for stdout",
        path.display()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use zerotouch_proto::{Addr, KeyHash};

    #[test]
    fn lines_have_keyid_mac_and_passphrase() {
        let psks = vec![
            ProvisionedPsk {
                key_hash: KeyHash([1; 32]),
                label: Some("dev-0001".into()),
                mac: Some(Addr([2, 0, 0, 0, 0, 1])),
                psk: Zeroizing::new("correct horse battery".into()),
            },
            ProvisionedPsk {
                key_hash: KeyHash([2; 32]),
                label: Some("has space".into()),
                mac: None,
                psk: Zeroizing::new("abcdefgh".into()),
            },
        ];
        let text = hostapd_psk_file(&psks).expect("text");
        let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            lines,
            [
                "keyid=dev-0001 02:00:00:00:00:01 correct horse battery",
                "00:00:00:00:00:00 abcdefgh"
            ]
        );
    }
}
