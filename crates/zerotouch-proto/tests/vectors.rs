//! Test vectors: a full session of each suite from fixed keys and seeded RNGs. The expected
//! text is PROTOCOL.md §10 (between the `vectors:begin`/`vectors:end` markers); this test
//! regenerates it from the code and compares. `ZT_PRINT_VECTORS=1` prints the generated text.

mod common;

use common::*;
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};
use zerotouch_proto::SuiteId;
use zerotouch_proto::enrollee::Enrollee;

const SPEC: &str = include_str!("../../../PROTOCOL.md");
const SESSION_SEED: u64 = 1;

fn frame_name(t: u8) -> &'static str {
    match t {
        1 => "announce",
        2 => "challenge",
        3 => "response",
        4 => "data",
        5 => "ack",
        _ => "?",
    }
}

fn generate() -> String {
    let mut out = String::new();
    for (suite, key_seed) in [(SuiteId::Ed25519, 0x11), (SuiteId::P256, 0x22)] {
        let keys = Keys::new(suite, key_seed);
        let mut w = World::new(
            &keys,
            &[keys.owner.public_key()],
            &keys.owner,
            perfect(),
            SESSION_SEED,
        );
        w.config = config_object("correct horse", 0);
        let mut settings = keys.enrollee_settings(&[keys.owner.public_key()]);
        settings.last_channel = Some(C_CHANNEL);
        w.enrollee = Enrollee::new(settings, ChaCha20Rng::seed_from_u64(SESSION_SEED ^ 0xe0), 0);
        assert!(w.run(60_000));
        // The ephemeral secrets are the first 32 bytes each side draws from its RNG.
        let mut e_eph = [0u8; 32];
        ChaCha20Rng::seed_from_u64(SESSION_SEED ^ 0xe0).fill_bytes(&mut e_eph);
        let mut c_eph = [0u8; 32];
        ChaCha20Rng::seed_from_u64(SESSION_SEED ^ 0xc0).fill_bytes(&mut c_eph);
        let cert = keys.identity(&keys.owner).cert.to_bytes();
        out += &format!("suite {}\n", suite as u8);
        out += &format!(
            "owner-secret {}\n",
            hex::encode(&keys.owner.secret_bytes()[..])
        );
        out += &format!(
            "configurator-secret {}\n",
            hex::encode(&keys.configurator.secret_bytes()[..])
        );
        out += &format!(
            "enrollee-secret {}\n",
            hex::encode(&keys.enrollee.secret_bytes()[..])
        );
        out += &format!("enrollee-ephemeral-secret {}\n", hex::encode(e_eph));
        out += &format!("configurator-ephemeral-secret {}\n", hex::encode(c_eph));
        out += &format!("configurator-unix-time {UNIX_TIME}\n");
        out += &format!("certificate {}\n", hex::encode(&cert));
        out += &format!("config-object {}\n", hex::encode(&w.config));
        for (i, (dir, frame)) in w.air.iter().enumerate() {
            let arrow = if *dir == Dir::ToConfigurator {
                "E->C"
            } else {
                "C->E"
            };
            out += &format!(
                "frame{} {arrow} {} {}\n",
                i + 1,
                frame_name(frame[2]),
                hex::encode(frame)
            );
        }
    }
    out
}

#[test]
fn protocol_md_section_10_matches_the_code() {
    let generated = generate();
    if std::env::var_os("ZT_PRINT_VECTORS").is_some() {
        println!("{generated}");
    }
    let begin = SPEC
        .find("<!-- vectors:begin -->")
        .expect("PROTOCOL.md has the vectors:begin marker");
    let end = SPEC
        .find("<!-- vectors:end -->")
        .expect("PROTOCOL.md has the vectors:end marker");
    let expected: String = SPEC[begin..end]
        .lines()
        .filter(|l| !l.starts_with("<!--") && !l.starts_with("```"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(
        generated.trim(),
        expected.trim(),
        "PROTOCOL.md §10 differs from the code"
    );
}
