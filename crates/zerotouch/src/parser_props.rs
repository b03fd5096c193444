//! Property tests: no text or bytes an operator can hand the CLI reach a panic.
//!
//! Every parser behind a command-line argument, an import file or a state file is fed
//! arbitrary UTF-8 (and bytes, decoded lossily, for file contents); each must return a value
//! or an error, never panic. Non-ASCII at byte offsets that are not char boundaries is the
//! case that used to crash `allow add`.

use std::str::FromStr;

use proptest::prelude::*;

use crate::agent::apply::ApplyTarget;
use crate::agent::join::JoinCheck;
use crate::agent::state::parse_owner_key;
use crate::commands::allow::{parse_device, read_entries};
use crate::commands::device::parse_setting;
use crate::daemon::link::LinkSpec;
use crate::output::{Direction, parse_when};
use crate::settings::RegistryLocation;

/// Text that mixes ASCII syntax the parsers look for with multi-byte characters.
fn tricky_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "(DPP:|ed25519:|p256:|udp:|exec:|sim:|[a-z€é😀]{0,4}[:=,;\"\\[]?){0,6}[0-9a-f€]{0,70}",
    ]
}

/// Every single-argument parser of the CLI, on one input.
fn parse_everything(text: &str) {
    let _ = parse_device(text);
    let _ = parse_setting(text);
    let _ = parse_when(text, Direction::Future, "--expires");
    let _ = parse_when(text, Direction::Past, "--since");
    let _ = LinkSpec::from_str(text);
    let _ = JoinCheck::from_str(text);
    let _ = ApplyTarget::from_str(text);
    let _ = parse_owner_key(text);
    let _ = RegistryLocation::parse(text).to_string();
    let _ = zerotouch_proto::uri::BootstrapUri::parse(text);
}

proptest! {
    #[test]
    fn no_argument_text_panics(text in tricky_text()) {
        parse_everything(&text);
    }

    #[test]
    fn no_import_file_panics(text in tricky_text(), lines in prop::collection::vec(tricky_text(), 0..4)) {
        let _ = read_entries(&text);
        let _ = read_entries(&format!("uri,label,profile\n{}", lines.join("\n")));
        let _ = read_entries(&format!("[{}]", lines.join(",")));
    }

    #[test]
    fn no_file_bytes_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let text = String::from_utf8_lossy(&bytes);
        parse_everything(&text);
        let _ = read_entries(&text);
        let _ = crate::identity::parse(&text);
    }
}

#[test]
fn a_multibyte_character_at_byte_four_is_an_error_not_a_panic() {
    assert!(parse_device("abc€").is_err());
    assert!(parse_device("DP€:x").is_err());
}
