//! DPP bootstrap URIs: the URIs of hostap's own test suite, the key hash wpa_supplicant
//! reports for them (checked statically and against a real wpa_supplicant run), every
//! rejection class, and property tests (write → parse round trip, no panics).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use zerotouch_proto::Addr;
use zerotouch_proto::error::{KeyError, UriError};
use zerotouch_proto::keys::{KeyHash, SigningIdentity};
use zerotouch_proto::suite::SuiteId;
use zerotouch_proto::uri::BootstrapUri;

/// From hostap `tests/hwsim/test_dpp.py`, `test_dpp_qr_code_parsing` (the list of URIs it
/// expects wpa_supplicant to accept, near line 70 of current hostap main).
const HOSTAP_URI_WITH_INFO: &str = "DPP:I:SN=4774LH2b4044;M:010203040506;K:MDkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDIgADURzxmttZoIRIPWGoQMV00XHWCAQIhXruVWOz0NjlkIA=;;";
/// The `pkhash` wpa_supplicant v2.10 (Debian 12) prints for it: `wpa_cli dpp_qr_code <URI>`
/// then `wpa_cli dpp_bootstrap_info <id>`. Also equal to `base64 -d | sha256sum` of `K:`.
const HOSTAP_URI_WITH_INFO_PKHASH: &str =
    "a85f7e51e2ca05f25e22705eb6cd0150fb6d4ffd14ca00dbe9679fe7a629f485";
/// Same test, first URI (channel list), and its wpa_supplicant v2.10 `pkhash`.
const HOSTAP_URI_WITH_CHANNELS: &str = "DPP:C:81/1,115/36;K:MDkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDIgADM2206avxHJaHXgLMkq/24e0rsrfMP9K1Tm8gx+ovP0I=;;";
const HOSTAP_URI_WITH_CHANNELS_PKHASH: &str =
    "bc4cbe2a7f4735f6db5ea817ee468d46110e47fa58833f4ecaacce775b657302";

fn key_hash(uri: &str) -> KeyHash {
    BootstrapUri::parse(uri).unwrap().key.key_hash()
}

#[test]
fn p256_key_hash_of_known_dpp_uri_equals_wpa_supplicant_pkhash() {
    assert_eq!(
        key_hash(HOSTAP_URI_WITH_INFO).to_string(),
        HOSTAP_URI_WITH_INFO_PKHASH
    );
    assert_eq!(
        key_hash(HOSTAP_URI_WITH_CHANNELS).to_string(),
        HOSTAP_URI_WITH_CHANNELS_PKHASH
    );
}

#[test]
fn hostap_uris_parse_with_their_fields() {
    let uri = BootstrapUri::parse(HOSTAP_URI_WITH_INFO).unwrap();
    assert_eq!(uri.info, Some("SN=4774LH2b4044"));
    assert_eq!(uri.mac, Some(Addr([1, 2, 3, 4, 5, 6])));
    assert_eq!(uri.version, None);
    assert_eq!(uri.key.suite(), SuiteId::P256);

    let k = "K:MDkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDIgADM2206avxHJaHXgLMkq/24e0rsrfMP9K1Tm8gx+ovP0I=;;";
    for channels in [
        "81/1,115/36",
        "81/1,81/2,81/3,81/4,81/5,81/6,81/7,81/8,81/9,81/10,81/11,81/12,81/13,82/14,83/1,115/36",
        "81/1,2,3,4,5,6,7,8,9,10,11,12,13,82/14,83/1,2,3,4,5,6,7,8,9,84/5,6,115/36",
        "81/1,2,3",
    ] {
        let text = format!("DPP:C:{channels};{k}");
        assert_eq!(
            BootstrapUri::parse(&text).unwrap().channels,
            Some(channels),
            "{text}"
        );
    }
    // An empty `I:` is allowed (hostap accepts it).
    let empty_info = HOSTAP_URI_WITH_INFO.replace("SN=4774LH2b4044", "");
    assert_eq!(BootstrapUri::parse(&empty_info).unwrap().info, Some(""));
}

#[test]
fn hostap_rejected_uris_are_rejected_with_the_right_error() {
    let k = "K:MDkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDIgADURzxmttZoIRIPWGoQMV00XHWCAQIhXruVWOz0NjlkIA=";
    let cases: Vec<(String, UriError)> = vec![
        ("foo".into(), UriError::MissingScheme),
        ("DPP:".into(), UriError::MissingTerminator),
        ("DPP:;;".into(), UriError::MissingKey),
        ("DPP:;".into(), UriError::MissingKey),
        ("DPP:C:1/2;M:;K;;".into(), UriError::BadMac),
        (format!("DPP:I:;M:01020304050;{k};;"), UriError::BadMac),
        ("DPP:K:aGVsbG8=;;".into(), UriError::BadKey(KeyError::BadSpki)),
        // P-192 and RSA keys from the same hostap test.
        (
            "DPP:K:MEkwEwYHKoZIzj0CAQYIKoZIzj0DAQEDMgAEXiJuIWt1Q/CPCkuULechh37UsXPmbUANOeN5U9sOQROE4o/NEFeFEejROHYwwehF;;".into(),
            UriError::BadKey(KeyError::UnsupportedAlgorithm),
        ),
        (
            "DPP:K:MFwwDQYJKoZIhvcNAQEBBQADSwAwSAJBANNZaZA4T/kRDjnmpI1ACOJhAuTIIEk2KFOpS6XPpGF+EVr/ao3XemkE0/nzXmGaLzLqTUCJknSdxTnVPeWfCVsCAwEAAQ==;;".into(),
            UriError::BadKey(KeyError::UnsupportedAlgorithm),
        ),
        (format!("DPP:I:foo\tbar;M:010203040506;{k};;"), UriError::BadInfo),
        (format!("DPP:C:1;{k};;"), UriError::BadChannelList),
        (format!("DPP:C:81/1a;{k};;"), UriError::BadChannelList),
        (format!("DPP:C:1/2000,81/-1;{k};;"), UriError::BadChannelList),
        (format!("DPP:C:-1/1;{k};;"), UriError::BadChannelList),
        // Beyond hostap's list:
        (format!("DPP:{k};"), UriError::MissingTerminator),
        (format!("DPP:{k}"), UriError::MissingTerminator),
        (format!("DPP:{k};;x"), UriError::TrailingData),
        (format!("dpp:{k};;"), UriError::MissingScheme),
        (format!("DPP:M:010203040506;M:010203040506;{k};;"), UriError::DuplicateField('M')),
        (format!("DPP:{k};{k};;"), UriError::DuplicateField('K')),
        (format!("DPP:Z:1;Z:2;{k};;"), UriError::DuplicateField('Z')),
        (format!("DPP:V:x;{k};;"), UriError::BadVersion),
        (format!("DPP:V:256;{k};;"), UriError::BadVersion),
        (format!("DPP:V:+2;{k};;"), UriError::BadVersion),
        (format!("DPP:V:;{k};;"), UriError::BadVersion),
        (format!("DPP:H:;{k};;"), UriError::BadHost),
        (format!("DPP:x:1;{k};;"), UriError::MalformedField),
        (format!("DPP:KK:1;{k};;"), UriError::MalformedField),
        (format!("DPP:M:0102030405zz;{k};;"), UriError::BadMac),
        ("DPP:K:MDkwEwYHKoZIzj0CAQ!!;;".into(), UriError::BadBase64),
        // Missing base64 padding.
        (format!("DPP:{};;", k.trim_end_matches('=')), UriError::BadBase64),
        ("DPP:V:2;;".into(), UriError::MissingKey),
    ];
    for (text, expected) in cases {
        assert_eq!(BootstrapUri::parse(&text), Err(expected), "{text:?}");
    }
}

#[test]
fn unknown_fields_and_optional_fields() {
    let k = "K:MDkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDIgADURzxmttZoIRIPWGoQMV00XHWCAQIhXruVWOz0NjlkIA=";
    let text = format!("DPP:Q:whatever ok;H:10.0.0.1:8908;V:3;M:AABBCCDDEEFF;{k};;");
    let uri = BootstrapUri::parse(&text).unwrap();
    assert_eq!(uri.version, Some(3));
    assert_eq!(uri.mac, Some(Addr([0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff])));
    assert_eq!(uri.key.key_hash().to_string(), HOSTAP_URI_WITH_INFO_PKHASH);
    // Canonical output: lower-case MAC, fixed order, unknown and `H:` fields dropped.
    assert_eq!(uri.to_string(), format!("DPP:V:3;M:aabbccddeeff;{k};;"));
}

#[test]
fn writes_canonical_uris_for_both_suites() {
    let p256 =
        SigningIdentity::generate(SuiteId::P256, &mut ChaCha20Rng::seed_from_u64(1)).public_key();
    let text = BootstrapUri::for_key(p256).to_string();
    assert!(
        text.starts_with("DPP:V:2;K:MDkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDIgAC")
            || text.starts_with("DPP:V:2;K:MDkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDIgAD"),
        "{text}"
    );
    let full = BootstrapUri {
        key: p256,
        mac: Some(Addr([0x0a, 0x1b, 0x2c, 0x3d, 0x4e, 0x5f])),
        info: Some("SN=42"),
        version: Some(2),
        channels: Some("81/1,6,11"),
    };
    let written = full.to_string();
    assert!(
        written.starts_with("DPP:V:2;C:81/1,6,11;M:0a1b2c3d4e5f;I:SN=42;K:"),
        "{written}"
    );
    assert!(written.ends_with(";;"));
    assert_eq!(BootstrapUri::parse(&written), Ok(full.clone()));

    let ed = SigningIdentity::generate(SuiteId::Ed25519, &mut ChaCha20Rng::seed_from_u64(2))
        .public_key();
    let text = BootstrapUri::for_key(ed).to_string();
    assert!(text.starts_with("DPP:V:2;K:MCowBQYDK2VwAyEA"), "{text}");
    assert_eq!(BootstrapUri::parse(&text).unwrap().key, ed);

    // Fields that the syntax cannot carry are refused rather than written corrupt.
    let mut bad = full;
    bad.info = Some("a;b");
    let mut out = String::new();
    assert!(bad.write(&mut out).is_err());
}

#[test]
fn error_messages_are_sentences() {
    for e in [
        UriError::MissingTerminator,
        UriError::BadMac,
        UriError::DuplicateField('K'),
        UriError::BadKey(KeyError::BadSpki),
    ] {
        let m = e.to_string();
        assert!(m.len() > 30 && m.contains("DPP URI"), "{m}");
    }
    assert!(UriError::DuplicateField('K').to_string().contains("`K:`"));
}

/// A wpa_supplicant on the loopback interface (wired driver), controlled over its own
/// control-socket directory. Killed and cleaned up on drop.
struct WpaSupplicant {
    child: Child,
    dir: PathBuf,
}

impl WpaSupplicant {
    fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("zerotouch-uri-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let conf = dir.join("wpa.conf");
        std::fs::write(
            &conf,
            format!("ctrl_interface={}\n", dir.join("ctrl").display()),
        )
        .unwrap();
        let child = Command::new("wpa_supplicant")
            .args(["-i", "lo", "-D", "wired", "-c"])
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect(
                "wpa_supplicant must be installed for this test (`apt-get install wpasupplicant`); \
                 it checks our key hash against the real DPP implementation",
            );
        let mut supplicant = Self { child, dir };
        // Wait for the control socket (a startup deadline, not a timing assertion).
        let deadline = Instant::now() + Duration::from_secs(10);
        while !supplicant.socket().exists() {
            if let Ok(Some(status)) = supplicant.child.try_wait() {
                panic!(
                    "wpa_supplicant exited ({status}) before opening its control socket; it needs root"
                );
            }
            assert!(
                Instant::now() < deadline,
                "wpa_supplicant did not open its control socket (it needs root)"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        supplicant
    }

    fn socket(&self) -> PathBuf {
        self.dir.join("ctrl").join("lo")
    }

    fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("wpa_cli")
            .arg("-p")
            .arg(self.dir.join("ctrl"))
            .args(["-i", "lo"])
            .args(args)
            .output()
            .expect("wpa_cli is installed with wpasupplicant");
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(
            out.status.success() && !text.starts_with("FAIL"),
            "wpa_cli {args:?}: {text}"
        );
        text.trim().to_owned()
    }

    /// `dpp_bootstrap_info` of bootstrap entry `id` as `(name, value)` lines.
    fn info(&self, id: &str) -> Vec<(String, String)> {
        self.cli(&["dpp_bootstrap_info", id])
            .lines()
            .filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
            .collect()
    }

    fn info_field(&self, id: &str, name: &str) -> String {
        self.info(id)
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
            .unwrap_or_else(|| panic!("dpp_bootstrap_info has no {name}"))
    }
}

impl Drop for WpaSupplicant {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn assert_dir_gone(dir: &Path) {
    assert!(!dir.exists(), "{} left behind", dir.display());
}

/// The key hash agrees with the real wpa_supplicant in both directions: URIs we parse
/// (hostap's and our own) get the `pkhash` it reports, and URIs it generates parse here to
/// the key hash it reports.
#[test]
fn key_hash_agrees_with_real_wpa_supplicant() {
    let supplicant = WpaSupplicant::start();
    let dir = supplicant.dir.clone();

    let ours =
        SigningIdentity::generate(SuiteId::P256, &mut ChaCha20Rng::seed_from_u64(3)).public_key();
    let our_uri = BootstrapUri {
        key: ours,
        mac: Some(Addr([0x02, 0x11, 0x22, 0x33, 0x44, 0x55])),
        info: Some("zerotouch test"),
        version: Some(2),
        channels: Some("81/1,6"),
    }
    .to_string();
    for uri in [
        HOSTAP_URI_WITH_INFO,
        HOSTAP_URI_WITH_CHANNELS,
        our_uri.as_str(),
    ] {
        let id = supplicant.cli(&["dpp_qr_code", uri]);
        let parsed = BootstrapUri::parse(uri).unwrap();
        assert_eq!(
            supplicant.info_field(&id, "pkhash"),
            parsed.key.key_hash().to_string(),
            "{uri}"
        );
        assert_eq!(supplicant.info_field(&id, "curve"), "prime256v1");
        let mac = parsed
            .mac
            .map_or("00:00:00:00:00:00".to_owned(), |m| m.to_string());
        assert_eq!(supplicant.info_field(&id, "mac_addr"), mac);
        assert_eq!(
            supplicant.info_field(&id, "info"),
            parsed.info.unwrap_or("")
        );
    }

    let id = supplicant.cli(&[
        "dpp_bootstrap_gen",
        "type=qrcode",
        "chan=81/1,115/36",
        "mac=0a0b0c0d0e0f",
        "info=label-7",
    ]);
    let generated = supplicant.cli(&["dpp_bootstrap_get_uri", &id]);
    let parsed = BootstrapUri::parse(&generated).unwrap();
    assert_eq!(
        supplicant.info_field(&id, "pkhash"),
        parsed.key.key_hash().to_string(),
        "{generated}"
    );
    assert_eq!(parsed.mac, Some(Addr([0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f])));
    assert_eq!(parsed.info, Some("label-7"));
    assert_eq!(parsed.channels, Some("81/1,115/36"));
    // Our canonical rewrite of its URI is accepted by it and names the same key.
    let rewritten = parsed.to_string();
    let id2 = supplicant.cli(&["dpp_qr_code", &rewritten]);
    assert_eq!(
        supplicant.info_field(&id2, "pkhash"),
        parsed.key.key_hash().to_string()
    );

    drop(supplicant);
    assert_dir_gone(&dir);
}

/// Inputs of a generated URI: key seed, P-256 (else Ed25519), MAC, info, version, channels.
type UriSpec = (
    u64,
    bool,
    Option<[u8; 6]>,
    Option<String>,
    Option<u8>,
    Option<String>,
);

fn uri_strategy() -> impl Strategy<Value = UriSpec> {
    (
        any::<u64>(),
        any::<bool>(),
        proptest::option::of(any::<[u8; 6]>()),
        proptest::option::of("[ -:<-~]{0,40}"), // printable ASCII without ';'
        proptest::option::of(any::<u8>()),
        proptest::option::of("[0-9]{1,3}/[0-9]{1,3}(,[0-9]{1,3}(/[0-9]{1,3})?){0,5}"),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn write_then_parse_round_trips((seed, p256, mac, info, version, channels) in uri_strategy()) {
        let suite = if p256 { SuiteId::P256 } else { SuiteId::Ed25519 };
        let key = SigningIdentity::generate(suite, &mut ChaCha20Rng::seed_from_u64(seed)).public_key();
        let uri = BootstrapUri { key, mac: mac.map(Addr), info: info.as_deref(), version, channels: channels.as_deref() };
        let text = uri.to_string();
        prop_assert_eq!(BootstrapUri::parse(&text), Ok(uri));
    }

    #[test]
    fn parse_never_panics(text in "\\PC{0,200}") {
        let _ = BootstrapUri::parse(&text);
    }

    #[test]
    fn parse_never_panics_on_uri_like_input(fields in proptest::collection::vec("[A-Za-z]{0,2}:?[ -~]{0,30}", 0..6), tail in "[;]{0,3}") {
        let text = format!("DPP:{}{tail}", fields.join(";"));
        if let Ok(uri) = BootstrapUri::parse(&text) {
            // Anything accepted can be rewritten canonically and parses back the same.
            let rewritten = uri.to_string();
            prop_assert_eq!(BootstrapUri::parse(&rewritten), Ok(uri));
        }
    }
}
