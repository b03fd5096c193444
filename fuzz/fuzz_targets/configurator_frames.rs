//! Feeds arbitrary frames (length-prefixed chunks of the input) to a configurator whose
//! allowlist admits everything, interleaved with timeouts: never panics, never emits
//! oversized frames, never exceeds its session cap.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use zerotouch_proto::configurator::{
    Allowlist, Configurator, ConfiguratorIdentity, ConfiguratorLimits, ConfiguratorSettings,
};
use zerotouch_proto::{Addr, ConfiguratorCert, KeyHash, SigningIdentity, SuiteId};

struct Everyone;
impl Allowlist for Everyone {
    fn is_allowed(&self, _: &KeyHash) -> bool {
        true
    }
}

fuzz_target!(|data: &[u8]| {
    let mut identities = heapless::Vec::new();
    for suite in SuiteId::ALL {
        let owner = SigningIdentity::from_secret_bytes(suite, &[3u8; 32]).expect("fixed key");
        let identity = SigningIdentity::from_secret_bytes(suite, &[5u8; 32]).expect("fixed key");
        let cert =
            ConfiguratorCert::issue(&owner, &identity.public_key(), u32::MAX).expect("same suite");
        let _ = identities.push(ConfiguratorIdentity {
            identity,
            cert,
            owner: owner.public_key(),
        });
    }
    let limits = ConfiguratorLimits {
        max_sessions: 4,
        ..ConfiguratorLimits::default()
    };
    let settings = ConfiguratorSettings {
        identities,
        channel: 6,
        unix_time: 1_790_000_000,
        limits,
    };
    let mut c = Configurator::new(settings, ChaCha20Rng::from_seed([2; 32]));
    let mut now = 0;
    let mut rest = data;
    while let Some((&len, tail)) = rest.split_first() {
        let n = usize::from(len).min(tail.len());
        let (frame, tail) = tail.split_at(n);
        rest = tail;
        now += 10;
        let src = Addr([2, 0, 0, 0, 0, len % 4]);
        c.handle_frame(now, src, frame, &Everyone);
        if let Some(t) = c.poll_timeout()
            && t <= now
        {
            c.handle_timeout(now);
        }
        while let Some(t) = c.poll_transmit() {
            assert!(t.frame.len() <= 250);
        }
        while c.poll_event().is_some() {}
        assert!(c.session_count() <= 4);
    }
});
