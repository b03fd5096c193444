//! Golden frames: every frame type written out by hand, field by field from PROTOCOL.md §4
//! (not through the encoder's offsets), for both suites. Each decoder must read every field
//! from its documented place, each encoder must produce exactly these bytes, and a frame one
//! byte longer or shorter, or with another magic, version, type or suite, is rejected. A
//! consistent offset error in encoder and decoder passes the round-trip tests of
//! `tests/wire.rs` but not these.

use zerotouch_proto::wire::*;
use zerotouch_proto::{AnnounceMode, FailureReason, SuiteId};

/// `len` bytes of a recognisable pattern starting at `first`.
fn pattern(first: u8, len: usize) -> Vec<u8> {
    (0..len).map(|i| first.wrapping_add(i as u8)).collect()
}

fn p_of(suite: SuiteId) -> usize {
    match suite {
        SuiteId::Ed25519 => 32,
        SuiteId::P256 => 33,
    }
}

/// §4.1, written out: header, mode 1 (RetryAfterFailure), reason 2 (auth failed), IdE, EphE,
/// counter (boot 0x01020304, round 0x05060708), channel 6, sig_A (opaque here).
fn golden_announce(suite: SuiteId) -> Vec<u8> {
    let p = p_of(suite);
    [
        &[0x5a, 0x02, 0x01, suite as u8][..],
        &[0x01],
        &[0x02],
        &pattern(0x10, p),
        &pattern(0x80, p),
        &[0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08],
        &[0x06],
        &pattern(0xc0, 64),
    ]
    .concat()
}

/// §4.2, written out: header, sid 0x0a0b0c0d, Nc, EphC, timeC 1790000000 (0x6ab1_3b80),
/// then cert (73+P) ‖ sig_C (64) ‖ tag (16) as opaque bytes.
fn golden_challenge(suite: SuiteId) -> Vec<u8> {
    let p = p_of(suite);
    [
        &[0x5a, 0x02, 0x02, suite as u8][..],
        &[0x0a, 0x0b, 0x0c, 0x0d],
        &pattern(0x40, 16),
        &pattern(0x60, p),
        &[0x6a, 0xb1, 0x3b, 0x80],
        &pattern(0xa0, 73 + p),
        &pattern(0x20, 64),
        &pattern(0xf0, 16),
    ]
    .concat()
}

/// §4.3: header, sid, sig_E ciphertext (64), tag (16).
fn golden_response(suite: SuiteId) -> Vec<u8> {
    [
        &[0x5a, 0x02, 0x03, suite as u8][..],
        &[0x0a, 0x0b, 0x0c, 0x0d],
        &pattern(0x30, 64),
        &pattern(0xf0, 16),
    ]
    .concat()
}

/// §4.4: header, sid, seq 0x0102, ack 0x0304, sack 0x8001, flags END, 5-byte fragment, tag.
fn golden_data(suite: SuiteId) -> Vec<u8> {
    [
        &[0x5a, 0x02, 0x04, suite as u8][..],
        &[0x0a, 0x0b, 0x0c, 0x0d],
        &[0x01, 0x02],
        &[0x03, 0x04],
        &[0x80, 0x01],
        &[0x01],
        &[0xd0, 0xd1, 0xd2, 0xd3, 0xd4],
        &pattern(0xf0, 16),
    ]
    .concat()
}

/// §4.5: header, sid, counter 0x0007, ack 0x0009, sack 0x0003, flags COMPLETE, tag.
fn golden_ack(suite: SuiteId) -> Vec<u8> {
    [
        &[0x5a, 0x02, 0x05, suite as u8][..],
        &[0x0a, 0x0b, 0x0c, 0x0d],
        &[0x00, 0x07],
        &[0x00, 0x09],
        &[0x00, 0x03],
        &[0x01],
        &pattern(0xf0, 16),
    ]
    .concat()
}

const SID: u32 = 0x0a0b_0c0d;

#[test]
fn golden_announce_decodes_and_encodes() {
    for suite in SuiteId::ALL {
        let p = p_of(suite);
        let golden = golden_announce(suite);
        assert_eq!(golden.len(), [143, 145][suite as usize - 1], "§4.7 length");
        let view = Announce::new_checked(&golden[..]).expect("golden Announce");
        assert_eq!(view.suite(), suite);
        assert_eq!(view.mode(), AnnounceMode::RetryAfterFailure);
        assert_eq!(view.last_failure(), Some(FailureReason::AuthFailed));
        assert_eq!(view.identity(), &pattern(0x10, p)[..]);
        assert_eq!(view.ephemeral(), &pattern(0x80, p)[..]);
        assert_eq!(view.counter(), 0x0102_0304_0506_0708);
        assert_eq!(view.signature()[..], pattern(0xc0, 64)[..]);
        assert_eq!(view.channel(), 6);
        assert_eq!(
            view.signed_part(),
            &golden[..6 + 2 * p + 9],
            "sig_A covers 0..15+2P"
        );

        let mut buf = [0u8; 250];
        let (identity, ephemeral) = (pattern(0x10, p), pattern(0x80, p));
        let n = AnnounceRepr {
            suite,
            mode: AnnounceMode::RetryAfterFailure,
            last_failure: Some(FailureReason::AuthFailed),
            identity: &identity,
            ephemeral: &ephemeral,
            counter: 0x0102_0304_0506_0708,
            channel: 6,
        }
        .emit(&mut buf, |part| {
            assert_eq!(part, &golden[..6 + 2 * p + 9]);
            pattern(0xc0, 64).try_into().unwrap()
        })
        .expect("emit");
        assert_eq!(&buf[..n], &golden[..], "{suite:?}");
        rejects_variants(&golden, |b| Announce::new_checked(b).is_ok());
    }
}

#[test]
fn golden_challenge_decodes_and_encodes() {
    for suite in SuiteId::ALL {
        let p = p_of(suite);
        let golden = golden_challenge(suite);
        assert_eq!(golden.len(), [245, 247][suite as usize - 1], "§4.7 length");
        let view = Challenge::new_checked(&golden[..]).expect("golden Challenge");
        assert_eq!(view.sid(), SID);
        assert_eq!(view.nonce(), &pattern(0x40, 16)[..]);
        assert_eq!(view.ephemeral(), &pattern(0x60, p)[..]);
        assert_eq!(view.unix_time(), 1_790_000_000);
        assert_eq!(view.clear(), &golden[..28 + p], "CH_clear = bytes 0..28+P");
        let sealed = [pattern(0xa0, 73 + p), pattern(0x20, 64)].concat();
        assert_eq!(view.ciphertext(), &sealed[..]);
        assert_eq!(view.tag()[..], pattern(0xf0, 16)[..]);

        // The encoder writes the plaintext (cert ‖ sig_C) where the ciphertext goes and a
        // zero tag, which the sealing then fills.
        let mut buf = [0u8; 250];
        let ephemeral = pattern(0x60, p);
        let sig: [u8; 64] = pattern(0x20, 64).try_into().expect("64");
        let n = ChallengeRepr {
            suite,
            sid: SID,
            nonce: pattern(0x40, 16).try_into().expect("16"),
            ephemeral: &ephemeral,
            unix_time: 1_790_000_000,
        }
        .emit_plain(&mut buf, &pattern(0xa0, 73 + p), &sig)
        .expect("emit");
        assert_eq!(&buf[..n - 16], &golden[..golden.len() - 16], "{suite:?}");
        assert_eq!(&buf[n - 16..n], &[0u8; 16]);
        rejects_variants(&golden, |b| Challenge::new_checked(b).is_ok());
    }
}

#[test]
fn golden_response_decodes_and_encodes() {
    for suite in SuiteId::ALL {
        let golden = golden_response(suite);
        assert_eq!(golden.len(), 88);
        let view = Response::new_checked(&golden[..]).expect("golden Response");
        assert_eq!(view.suite(), suite);
        assert_eq!(view.sid(), SID);
        assert_eq!(view.aad(), &golden[..8], "aad = bytes 0..8");
        assert_eq!(view.ciphertext(), &pattern(0x30, 64)[..]);
        assert_eq!(view.tag()[..], pattern(0xf0, 16)[..]);

        let mut buf = [0u8; 250];
        let sig: [u8; 64] = pattern(0x30, 64).try_into().expect("64");
        let n = emit_response_plain(&mut buf, suite, SID, &sig).expect("emit");
        assert_eq!(&buf[..n - 16], &golden[..72]);
        rejects_variants(&golden, |b| Response::new_checked(b).is_ok());
    }
}

#[test]
fn golden_data_decodes_and_its_header_encodes() {
    for suite in SuiteId::ALL {
        let golden = golden_data(suite);
        let view = Data::new_checked(&golden[..]).expect("golden Data");
        let header = ChannelHeader {
            frame_type: FrameType::Data,
            suite,
            sid: SID,
            seq: 0x0102,
            ack: 0x0304,
            sack: 0x8001,
            flags: FLAG_END,
        };
        assert_eq!(view.header(), header);
        assert_eq!(view.aad(), &golden[..15], "aad = bytes 0..15");
        assert_eq!(view.ciphertext(), &[0xd0, 0xd1, 0xd2, 0xd3, 0xd4]);
        assert_eq!(view.tag()[..], pattern(0xf0, 16)[..]);
        let mut buf = [0u8; 15];
        header.emit(&mut buf).expect("emit");
        assert_eq!(&buf[..], &golden[..15]);
        // Data has a minimum length, not an exact one: one byte shorter than the minimum
        // (an empty fragment) is rejected, a longer fragment is not.
        let empty = [&golden[..15], &golden[golden.len() - 16..]].concat();
        assert!(Data::new_checked(&empty[..]).is_err(), "empty fragment");
        let mut undefined_flag = golden.clone();
        undefined_flag[14] = 0x02;
        assert!(
            Data::new_checked(&undefined_flag[..]).is_err(),
            "flag bit 1"
        );
        rejects_header_variants(&golden, |b| Data::new_checked(b).is_ok());
    }
}

#[test]
fn golden_ack_decodes_and_encodes() {
    for suite in SuiteId::ALL {
        let golden = golden_ack(suite);
        assert_eq!(golden.len(), 31);
        let view = Ack::new_checked(&golden[..]).expect("golden Ack");
        let header = ChannelHeader {
            frame_type: FrameType::Ack,
            suite,
            sid: SID,
            seq: 7,
            ack: 9,
            sack: 3,
            flags: FLAG_COMPLETE,
        };
        assert_eq!(view.header(), header);
        assert_eq!(view.aad(), &golden[..15]);
        assert_eq!(view.tag()[..], pattern(0xf0, 16)[..]);
        let mut buf = [0u8; 15];
        header.emit(&mut buf).expect("emit");
        assert_eq!(&buf[..], &golden[..15]);
        rejects_variants(&golden, |b| Ack::new_checked(b).is_ok());
    }
}

#[test]
fn a_zero_session_id_is_rejected_in_every_frame_that_carries_one() {
    for suite in SuiteId::ALL {
        let zero_sid = |mut frame: Vec<u8>| {
            frame[4..8].fill(0);
            frame
        };
        assert!(Challenge::new_checked(&zero_sid(golden_challenge(suite))[..]).is_err());
        assert!(Response::new_checked(&zero_sid(golden_response(suite))[..]).is_err());
        assert!(Data::new_checked(&zero_sid(golden_data(suite))[..]).is_err());
        assert!(Ack::new_checked(&zero_sid(golden_ack(suite))[..]).is_err());
    }
}

/// A frame of exact length: one byte more or less, or any header byte changed, is rejected.
fn rejects_variants(golden: &[u8], accepts: impl Fn(&[u8]) -> bool) {
    assert!(accepts(golden));
    assert!(!accepts(&golden[..golden.len() - 1]), "one byte short");
    let longer = [golden, &[0]].concat();
    assert!(!accepts(&longer), "one byte long");
    rejects_header_variants(golden, accepts);
}

fn rejects_header_variants(golden: &[u8], accepts: impl Fn(&[u8]) -> bool) {
    // Another magic, version, type (each other type and an unknown one), unknown suite.
    let other_suite = if golden[3] == 1 { 2 } else { 1 };
    for (at, value) in [
        (0, 0x5b),
        (1, 0x01),
        (1, 0x03),
        (1, 0x00),
        (2, 0x00),
        (2, 0x06),
        (3, 0x00),
        (3, 0x03),
    ]
    .into_iter()
    .chain((1..=5).filter(|&t| t != golden[2]).map(|t| (2, t)))
    {
        let mut changed = golden.to_vec();
        changed[at] = value;
        assert!(!accepts(&changed), "byte {at} = {value:#04x} accepted");
    }
    // The other suite: accepted only where the length is the same for both (the frame then
    // is a valid frame of that suite), never with the same meaning of the key bytes.
    let mut changed = golden.to_vec();
    changed[3] = other_suite;
    if golden[2] == 1 || golden[2] == 2 {
        assert!(
            !accepts(&changed),
            "suite changed, length of the other suite"
        );
    }
}
