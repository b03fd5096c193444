//! Property tests of the wire codec: every builder's output parses back to the same fields,
//! and no input of any length makes a decoder panic.

use proptest::prelude::*;
use zerotouch_proto::wire::*;
use zerotouch_proto::{AnnounceMode, FailureReason, SuiteId};

fn suite() -> impl Strategy<Value = SuiteId> {
    prop_oneof![Just(SuiteId::Ed25519), Just(SuiteId::P256)]
}

fn reason() -> impl Strategy<Value = FailureReason> {
    prop_oneof![
        Just(FailureReason::ApNotFound),
        Just(FailureReason::AuthFailed),
        Just(FailureReason::NoIpAddress),
        Just(FailureReason::ConfigRejected),
        Just(FailureReason::Timeout),
        Just(FailureReason::Other),
    ]
}

proptest! {
    #[test]
    fn announce_round_trips(suite in suite(), r in reason(), mode in 0u8..3, key in any::<[u8; 33]>(), eph in any::<[u8; 33]>(), counter in any::<u64>(), channel in 1u8..=14, sig in any::<[u8; 64]>()) {
        let p = suite.public_key_len();
        let (mode, last_failure) = match mode {
            0 => (AnnounceMode::New, None),
            1 => (AnnounceMode::RetryAfterFailure, Some(r)),
            _ => (AnnounceMode::Reconfigure, Some(r)),
        };
        let mut buf = [0u8; 250];
        let mut signed = Vec::new();
        let n = AnnounceRepr { suite, mode, last_failure, identity: &key[..p], ephemeral: &eph[..p], counter, channel }
            .emit(&mut buf, |part| { signed = part.to_vec(); sig })
            .unwrap();
        prop_assert_eq!(n, announce_len(suite));
        let v = Announce::new_checked(&buf[..n]).unwrap();
        prop_assert_eq!(v.suite(), suite);
        prop_assert_eq!(v.mode(), mode);
        prop_assert_eq!(v.last_failure(), last_failure);
        prop_assert_eq!(v.identity(), &key[..p]);
        prop_assert_eq!(v.ephemeral(), &eph[..p]);
        prop_assert_eq!(v.counter(), counter);
        prop_assert_eq!(v.channel(), channel);
        prop_assert_eq!(v.signature(), sig);
        // The signature covers every byte before it, and exactly those.
        prop_assert_eq!(v.signed_part(), &signed[..]);
        prop_assert_eq!(&buf[..n - 64], &signed[..]);
    }

    #[test]
    fn challenge_and_response_round_trip(suite in suite(), sid in 1u32.., nonce in any::<[u8; 16]>(), eph in any::<[u8; 33]>(), t in any::<u32>(), sig in any::<[u8; 64]>()) {
        let p = suite.public_key_len();
        let cert = vec![5u8; cert_len(suite)];
        let mut buf = [0u8; 250];
        let n = ChallengeRepr { suite, sid, nonce, ephemeral: &eph[..p], unix_time: t }.emit_plain(&mut buf, &cert, &sig).unwrap();
        let v = Challenge::new_checked(&buf[..n]).unwrap();
        prop_assert_eq!((v.sid(), v.nonce(), v.ephemeral(), v.unix_time()), (sid, &nonce[..], &eph[..p], t));
        prop_assert_eq!(v.clear().len(), challenge_clear_len(suite));
        prop_assert_eq!(v.ciphertext().len(), cert_len(suite) + 64);
        let n = emit_response_plain(&mut buf, suite, sid, &sig).unwrap();
        let r = Response::new_checked(&buf[..n]).unwrap();
        prop_assert_eq!((r.sid(), r.ciphertext()), (sid, &sig[..]));
    }

    #[test]
    fn channel_headers_round_trip(suite in suite(), sid in 1u32.., seq in any::<u16>(), ack in any::<u16>(), sack in any::<u16>(), end in any::<bool>(), n in 1usize..=MAX_FRAGMENT) {
        let flags = u8::from(end);
        let h = ChannelHeader { frame_type: FrameType::Data, suite, sid, seq, ack, sack, flags };
        let mut buf = [0u8; 250];
        h.emit(&mut buf).unwrap();
        let len = CHANNEL_HEADER_LEN + n + 16;
        prop_assert_eq!(Data::new_checked(&buf[..len]).unwrap().header(), h);
        let a = ChannelHeader { frame_type: FrameType::Ack, ..h };
        a.emit(&mut buf).unwrap();
        prop_assert_eq!(Ack::new_checked(&buf[..ACK_LEN]).unwrap().header(), a);
    }

    #[test]
    fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300), head in any::<[u8; 4]>()) {
        let mut framed = bytes.clone();
        if framed.len() >= 4 {
            framed[0] = MAGIC;
            framed[1] = VERSION;
            framed[2] = head[2] % 6;
            framed[3] = head[3] % 3;
        }
        for b in [&bytes[..], &framed[..]] {
            let _ = Header::parse(b);
            if let Ok(v) = Announce::new_checked(b) { let _ = (v.mode(), v.identity(), v.ephemeral()); }
            if let Ok(v) = Challenge::new_checked(b) { let _ = (v.ciphertext(), v.tag(), v.unix_time()); }
            if let Ok(v) = Response::new_checked(b) { let _ = (v.ciphertext(), v.tag()); }
            if let Ok(v) = Data::new_checked(b) { let _ = (v.header(), v.ciphertext(), v.tag()); }
            if let Ok(v) = Ack::new_checked(b) { let _ = (v.header(), v.tag()); }
        }
    }
}
