//! Feeds arbitrary frames (length-prefixed chunks of the input) to an announcing enrollee of
//! each suite, interleaved with timeouts: it must never panic and never emit oversized frames.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use zerotouch_proto::enrollee::{Enrollee, EnrolleeSettings, EnrolleeTiming};
use zerotouch_proto::{Addr, AnnounceMode, SigningIdentity, SuiteId};

fuzz_target!(|data: &[u8]| {
    for suite in SuiteId::ALL {
        let identity = SigningIdentity::from_secret_bytes(suite, &[7u8; 32]).expect("fixed key");
        let settings = EnrolleeSettings {
            identity,
            pinned_owners: heapless::Vec::new(),
            mode: AnnounceMode::New,
            last_failure: None,
            last_channel: Some(6),
            known_unix_time: 0,
            timing: EnrolleeTiming::default(),
        };
        let mut e = Enrollee::new(settings, ChaCha20Rng::from_seed([1; 32]), 0);
        let mut now = 0;
        let mut rest = data;
        while let Some((&len, tail)) = rest.split_first() {
            let n = usize::from(len).min(tail.len());
            let (frame, tail) = tail.split_at(n);
            rest = tail;
            now += 10;
            e.handle_frame(now, Addr([2, 0, 0, 0, 0, 1]), frame);
            if let Some(t) = e.poll_timeout()
                && t <= now
            {
                e.handle_timeout(now);
            }
            while let Some(t) = e.poll_transmit() {
                assert!(t.frame.len() <= 250);
            }
            while e.poll_event().is_some() {}
        }
    }
});
