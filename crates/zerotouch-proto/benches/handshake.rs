//! Configurator CPU per provisioning session, per suite, against the cost of the same
//! cryptographic operations alone, measured interleaved in the same run.
//!
//! Run: `cargo bench -p zerotouch-proto --bench handshake` (release profile).
//!
//! "Session" = everything the configurator does for one device without loss: the
//! Announcement (key hash, allowlist lookup, identity key decoding, the v2 Announce signature), the Challenge
//! (ephemeral key, ECDH, key schedule, transcript signature, AEAD), the Response (AEAD,
//! signature verification, application keys), the Config delivery, the Ack, the Status
//! report and the final Ack. Only time spent inside `Configurator` calls is counted; the
//! enrollee runs in the same loop untimed.
//!
//! "Crypto alone" = the same primitive operations, called directly through the crate's
//! crypto layer with no protocol state, framing or sessions: SHA-256 of the SPKI, identity
//! key decoding, ephemeral key generation, ECDH, HKDF extract and the 8 expands, the 4
//! transcript hashes, one signature, two verifications (Announce and Response), and the AEAD seal/open of each frame
//! with the same sizes.
//!
//! Output: median per-session microseconds of each, and their ratio (goal: within 1.5x).

use std::collections::BTreeSet;
use std::hint::black_box;
use std::time::{Duration, Instant as Clock};

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use zerotouch_proto::cert::ConfiguratorCert;
use zerotouch_proto::config::{ConfigWriter, Credential, Network, Security};
use zerotouch_proto::configurator::{
    Configurator, ConfiguratorEvent, ConfiguratorIdentity, ConfiguratorLimits, ConfiguratorSettings,
};
use zerotouch_proto::crypto::{AeadKey, EphemeralSecret, Prk, sha256};
use zerotouch_proto::enrollee::{Enrollee, EnrolleeEvent, EnrolleeSettings, EnrolleeTiming, Trust};
use zerotouch_proto::{Addr, AnnounceMode, KeyHash, PublicKey, SigningIdentity, SuiteId, Transmit};

const UNIX_TIME: u32 = 1_800_000_000;
const ENROLLEES: usize = 64;
const ROUNDS: usize = 25;
const C_ADDR: Addr = Addr([0x02, 0, 0, 0, 0, 0xc0]);

fn config_object() -> Vec<u8> {
    let mut buf = vec![0u8; zerotouch_proto::config::MAX_CONFIG_LEN];
    let mut w = ConfigWriter::new(&mut buf);
    w.network(&Network {
        ssid: b"factory-floor",
        security: Security::Wpa2Psk,
        credential: Credential::Passphrase("correct horse battery staple"),
        bssid: None,
        channel: None,
    })
    .expect("valid network");
    let len = w.finish().expect("one network");
    buf.truncate(len);
    buf
}

struct Bench {
    suite: SuiteId,
    configurator: Configurator<ChaCha20Rng>,
    allowlist: BTreeSet<KeyHash>,
    enrollee_secrets: Vec<SigningIdentity>,
    config: Vec<u8>,
    now: u64,
    // Sizes observed in a real session, reused by the crypto-only baseline.
    sizes: FrameSizes,
}

#[derive(Default, Clone, Copy)]
struct FrameSizes {
    challenge_plain: usize,
    config_plain: usize,
    status_plain: usize,
}

fn drain(c: &mut Configurator<ChaCha20Rng>) -> Vec<Transmit> {
    std::iter::from_fn(|| c.poll_transmit()).collect()
}

impl Bench {
    fn new(suite: SuiteId) -> Self {
        let mut rng = ChaCha20Rng::from_seed([suite as u8; 32]);
        let owner = SigningIdentity::generate(suite, &mut rng);
        let identity = SigningIdentity::generate(suite, &mut rng);
        let cert = ConfiguratorCert::issue(&owner, &identity.public_key(), UNIX_TIME + 86_400)
            .expect("same suite");
        let mut identities = heapless::Vec::new();
        let _ = identities.push(ConfiguratorIdentity {
            identity,
            cert,
            owner: owner.public_key(),
        });
        let limits = ConfiguratorLimits {
            // One announcement per enrollee per round; no rate limiting in a CPU benchmark.
            per_source_burst: u16::MAX,
            ..ConfiguratorLimits::default()
        };
        let configurator = Configurator::new(
            ConfiguratorSettings {
                identities,
                channel: 6,
                unix_time: UNIX_TIME,
                limits,
            },
            ChaCha20Rng::from_seed([0xc0; 32]),
        );
        let enrollee_secrets: Vec<_> = (0..ENROLLEES)
            .map(|_| SigningIdentity::generate(suite, &mut rng))
            .collect();
        let allowlist = enrollee_secrets
            .iter()
            .map(|k| k.public_key().key_hash())
            .collect();
        Bench {
            suite,
            configurator,
            allowlist,
            enrollee_secrets,
            config: config_object(),
            now: 0,
            sizes: FrameSizes::default(),
        }
    }

    fn enrollee(&self, i: usize, seed: u64) -> Enrollee<ChaCha20Rng> {
        let secret = &self.enrollee_secrets[i % ENROLLEES];
        let settings = EnrolleeSettings {
            identity: SigningIdentity::from_secret_bytes(self.suite, &secret.secret_bytes()[..])
                .expect("round trip"),
            trust: Trust::FirstUse,
            mode: AnnounceMode::New,
            last_failure: None,
            last_channel: Some(6),
            known_unix_time: 0,
            timing: EnrolleeTiming::default(),
            // A later boot for every session of this key: the configurator answers each
            // announcement counter once (PROTOCOL.md §9.2).
            boot_counter: u32::try_from(self.now / 60_000).unwrap_or(u32::MAX),
        };
        Enrollee::new(settings, ChaCha20Rng::seed_from_u64(seed), self.now)
    }

    /// One complete provisioning session; returns the time spent inside the configurator.
    fn session(&mut self, i: usize, seed: u64) -> Duration {
        let e_addr = Addr([0x02, 0, 0, 0, (i >> 8) as u8, i as u8]);
        // A minute later than the previous session: earlier sessions of this key have
        // finished lingering (PROTOCOL.md timers), so this is a fresh provisioning.
        self.now += 60_000;
        let mut e = self.enrollee(i, seed);
        let t0 = Clock::now();
        self.configurator.handle_timeout(self.now);
        let mut spent = t0.elapsed();
        let mut to_c: Vec<Vec<u8>> = Vec::new();
        // The first announcement.
        loop {
            if let Some(t) = e.poll_transmit() {
                to_c.push(t.frame.to_vec());
                break;
            }
            let deadline = e
                .poll_timeout()
                .expect("an announcing enrollee has a timer");
            self.now = self.now.max(deadline);
            e.handle_timeout(self.now);
        }
        let mut provisioned = false;
        for _step in 0..64 {
            // Configurator turn (timed).
            let mut to_e: Vec<Transmit> = Vec::new();
            let t0 = Clock::now();
            for frame in to_c.drain(..) {
                self.configurator
                    .handle_frame(self.now, e_addr, &frame, &self.allowlist);
                while let Some(ev) = self.configurator.poll_event() {
                    match ev {
                        ConfiguratorEvent::Authenticated { session, .. } => self
                            .configurator
                            .provide_config(self.now, session, &self.config, &self.allowlist)
                            .expect("session is live"),
                        ConfiguratorEvent::JoinReported { session, .. } => self
                            .configurator
                            .confirm(self.now, session)
                            .expect("session is live"),
                        _ => {}
                    }
                }
                to_e.extend(drain(&mut self.configurator));
            }
            spent += t0.elapsed();
            // Enrollee turn (untimed).
            for t in to_e {
                e.handle_frame(self.now, C_ADDR, &t.frame);
            }
            while let Some(ev) = e.poll_event() {
                match ev {
                    EnrolleeEvent::ConfigReceived => {
                        e.report_join(self.now, Ok(())).expect("joining");
                    }
                    EnrolleeEvent::Provisioned(_) => provisioned = true,
                    _ => {}
                }
            }
            while let Some(t) = e.poll_transmit() {
                to_c.push(t.frame.to_vec());
            }
            if provisioned {
                break;
            }
            self.now += 1;
        }
        assert!(provisioned, "benchmark session did not complete");
        spent
    }

    /// Records the plaintext sizes the configurator seals, from one real session.
    fn observe_sizes(&mut self) {
        let p = self.suite.public_key_len();
        let cert_len = ConfiguratorCert::encoded_len(self.suite);
        self.sizes = FrameSizes {
            challenge_plain: cert_len + 64,
            // Config message: type ‖ owner key ‖ configuration object.
            config_plain: 1 + p + self.config.len(),
            status_plain: 2,
        };
    }

    /// The configurator's cryptographic work for one session, with nothing else.
    fn crypto_only(
        &self,
        i: usize,
        rng: &mut ChaCha20Rng,
        c_identity: &SigningIdentity,
    ) -> Duration {
        let suite = self.suite;
        let e_identity = &self.enrollee_secrets[i % ENROLLEES];
        let e_public = e_identity.public_key();
        // Inputs prepared outside the timed region: the enrollee's ephemeral key and
        // its signature (the enrollee's work, not the configurator's).
        let e_eph = EphemeralSecret::generate(suite, rng);
        let announce = [0x5au8; 145];
        let challenge = [0x11u8; 247];
        let response = [0x22u8; 88];
        let e_sig = e_identity.sign(b"enrollee transcript");
        let a_msg = zerotouch_proto::crypto::schedule::a_sig_message(&announce[..81]);
        let a_sig = e_identity.sign(&a_msg);
        let mut buf = [0u8; 512];

        let t0 = Clock::now();
        // Announcement: key hash of the SPKI, then the identity key decoding.
        let spki = e_public.to_spki_der();
        black_box(sha256(&[&spki]));
        let id = PublicKey::from_wire(suite, e_public.as_wire()).expect("valid");
        // Protocol v2: the Announce signature.
        black_box(id.verify(&a_msg, &a_sig).is_err());
        // Challenge: ephemeral key, ECDH, key schedule, transcript signature, AEAD.
        let eph = EphemeralSecret::generate(suite, rng);
        let ss = eph.agree(e_eph.public()).expect("valid point");
        let prk = Prk::extract(b"zerotouch-v1\x01", &ss[..]);
        let th1 = sha256(&[&announce, &challenge[..60]]);
        let hs_c = AeadKey::derive(suite, &prk, b"zt hs c key", b"zt hs c iv", &th1);
        let hs_e = AeadKey::derive(suite, &prk, b"zt hs e key", b"zt hs e iv", &th1);
        let sig_hash = sha256(&[&announce, &challenge[..60], &challenge[60..166]]);
        black_box(c_identity.sign(&sig_hash));
        let n = self.sizes.challenge_plain;
        let tag = hs_c.seal(&hs_c.nonce(0, 0), &challenge[..60], &mut buf[..n]);
        black_box(tag.expect("seal"));
        // Response: AEAD open (a seal of the same size costs the same), verify, app keys.
        let tag = hs_e.seal(&hs_e.nonce(0, 0), &response[..8], &mut buf[..64]);
        black_box(tag.expect("seal"));
        let th2 = sha256(&[&announce, &challenge]);
        black_box(id.verify(&th2, &e_sig).is_err());
        let th3 = sha256(&[&announce, &challenge, &response]);
        let ap_c = AeadKey::derive(suite, &prk, b"zt ap c key", b"zt ap c iv", &th3);
        let ap_e = AeadKey::derive(suite, &prk, b"zt ap e key", b"zt ap e iv", &th3);
        // Config data, the enrollee's Ack, its Status, our final Ack.
        let n = self.sizes.config_plain;
        black_box(ap_c.seal(&ap_c.nonce(0, 0), &[0u8; 15], &mut buf[..n]).ok());
        black_box(ap_e.seal(&ap_e.nonce(1, 0), &[0u8; 15], &mut []).ok());
        let n = self.sizes.status_plain;
        black_box(ap_e.seal(&ap_e.nonce(0, 0), &[0u8; 15], &mut buf[..n]).ok());
        black_box(ap_c.seal(&ap_c.nonce(1, 0), &[0u8; 15], &mut []).ok());
        t0.elapsed()
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    // `cargo test --benches` runs this binary with --bench absent: keep that quick.
    let quick = !std::env::args().any(|a| a == "--bench");
    let (rounds, per_round) = if quick { (2, 4) } else { (ROUNDS, ENROLLEES) };
    println!("zerotouch configurator CPU per session vs the same crypto alone");
    println!(
        "{rounds} rounds x {per_round} sessions per suite, interleaved; medians of round means"
    );
    for suite in SuiteId::ALL {
        let mut bench = Bench::new(suite);
        bench.observe_sizes();
        let mut rng = ChaCha20Rng::from_seed([0x77; 32]);
        let c_identity = SigningIdentity::generate(suite, &mut rng);
        // Warm-up: caches, lazy tables.
        for i in 0..per_round.min(8) {
            bench.session(i, i as u64);
            bench.crypto_only(i, &mut rng, &c_identity);
        }
        let (mut proto, mut crypto) = (Vec::new(), Vec::new());
        let mut seed = 1_000u64;
        for _ in 0..rounds {
            let (mut p, mut c) = (Duration::ZERO, Duration::ZERO);
            for i in 0..per_round {
                seed += 1;
                p += bench.session(i, seed);
                c += bench.crypto_only(i, &mut rng, &c_identity);
            }
            proto.push(p.as_secs_f64() * 1e6 / per_round as f64);
            crypto.push(c.as_secs_f64() * 1e6 / per_round as f64);
        }
        let (p, c) = (median(proto), median(crypto));
        println!(
            "suite {} ({:>7}): configurator {:>8.1} us/session, crypto alone {:>8.1} us, ratio {:.2}x (goal <= 1.5x)",
            suite as u8,
            suite.name(),
            p,
            c,
            p / c
        );
        bench.now += 3_600_000;
        bench.configurator.handle_timeout(bench.now);
        assert_eq!(bench.configurator.session_count(), 0, "sessions leaked");
    }
}
