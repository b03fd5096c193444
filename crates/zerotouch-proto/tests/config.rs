//! The configuration object (PROTOCOL.md §7): a hand-encoded known answer, every validation
//! rule on both the writer and the view, and property tests (writer → view round trip,
//! canonical encoding, no panics on arbitrary bytes).

use proptest::prelude::*;
use zerotouch_proto::config::{
    ConfigError, ConfigView, ConfigWriter, Credential, MAX_CONFIG_LEN, MAX_NETWORKS, Network,
    Security,
};

const PSK: [u8; 32] = [0x42; 32];

fn wpa2<'a>(ssid: &'a [u8], passphrase: &'a str) -> Network<'a> {
    Network {
        ssid,
        security: Security::Wpa2Psk,
        credential: Credential::Passphrase(passphrase),
        bssid: None,
        channel: None,
    }
}

fn encode(networks: &[Network<'_>], settings: &[(&str, &[u8])]) -> Result<Vec<u8>, ConfigError> {
    let mut buf = vec![0u8; MAX_CONFIG_LEN];
    let mut writer = ConfigWriter::new(&mut buf);
    for net in networks {
        writer.network(net)?;
    }
    for (key, value) in settings {
        writer.setting(key, value)?;
    }
    let len = writer.finish()?;
    buf.truncate(len);
    Ok(buf)
}

#[test]
fn known_encoding() {
    let net = Network {
        ssid: b"lab",
        security: Security::Wpa2Psk,
        credential: Credential::Passphrase("password"),
        bssid: Some([1, 2, 3, 4, 5, 6]),
        channel: Some(6),
    };
    let bytes = encode(&[net], &[("mqtt", b"x")]).unwrap();
    #[rustfmt::skip]
    let expected: &[u8] = &[
        1, 0, 23,                       // Network, 23 bytes
        3, b'l', b'a', b'b',            // ssid
        1,                              // WPA2-PSK
        1, 8, b'p', b'a', b's', b's', b'w', b'o', b'r', b'd', // passphrase
        3, 1, 2, 3, 4, 5, 6, 6,         // hints: bssid + channel
        2, 0, 6,                        // Setting, 6 bytes
        4, b'm', b'q', b't', b't', b'x',
    ];
    assert_eq!(bytes, expected);
    let view = ConfigView::parse(&bytes).unwrap();
    assert_eq!(view.networks().collect::<Vec<_>>(), vec![net]);
    assert_eq!(
        view.settings().collect::<Vec<_>>(),
        vec![("mqtt", &b"x"[..])]
    );
    assert_eq!(view.setting("mqtt"), Some(&b"x"[..]));
    assert_eq!(view.setting("other"), None);
    assert_eq!(view.as_bytes(), expected);
}

#[test]
fn network_rules() {
    let (p63, p64) = ("p".repeat(63), "p".repeat(64));
    let open = Network {
        ssid: b"cafe",
        security: Security::Open,
        credential: Credential::None,
        bssid: None,
        channel: None,
    };
    let raw = Network {
        ssid: b"x",
        security: Security::Wpa2Psk,
        credential: Credential::RawPsk(&PSK),
        bssid: None,
        channel: Some(14),
    };
    let sae = Network {
        security: Security::Wpa3Sae,
        ..wpa2(b"home", "12345678")
    };
    let max_ssid = wpa2(&[0xff; 32], "passphrase with spaces and ~ symbols ok");
    for net in [open, raw, sae, max_ssid, wpa2(b"a", &p63)] {
        let bytes = encode(&[net], &[]).unwrap();
        assert_eq!(
            ConfigView::parse(&bytes)
                .unwrap()
                .networks()
                .collect::<Vec<_>>(),
            vec![net]
        );
    }
    let invalid = [
        wpa2(b"", "12345678"),
        wpa2(&[b'a'; 33], "12345678"),
        wpa2(b"a", "1234567"),
        wpa2(b"a", &p64),
        wpa2(b"a", "tab\tinside"),
        wpa2(b"a", "caf\u{e9}-latte"),
        Network {
            credential: Credential::None,
            ..wpa2(b"a", "12345678")
        },
        Network {
            security: Security::Open,
            ..wpa2(b"a", "12345678")
        },
        Network {
            security: Security::Wpa3Sae,
            credential: Credential::RawPsk(&PSK),
            ..open
        },
        Network {
            channel: Some(0),
            ..open
        },
        Network {
            channel: Some(15),
            ..open
        },
    ];
    for net in invalid {
        assert_eq!(
            encode(&[net], &[]),
            Err(ConfigError::InvalidValue),
            "{net:?}"
        );
    }
}

#[test]
fn object_rules() {
    let net = wpa2(b"a", "12345678");
    assert_eq!(encode(&[], &[("k", b"v")]), Err(ConfigError::NoNetwork));
    assert_eq!(
        encode(&[net; MAX_NETWORKS + 1], &[]),
        Err(ConfigError::TooManyNetworks)
    );
    assert!(encode(&[net; MAX_NETWORKS], &[]).is_ok());
    assert_eq!(
        encode(&[net], &[("k", b"1"), ("k", b"2")]),
        Err(ConfigError::DuplicateSetting)
    );
    assert_eq!(
        encode(&[net], &[("", b"1")]),
        Err(ConfigError::InvalidValue)
    );
    assert_eq!(
        encode(&[net], &[(&"k".repeat(65), b"1")]),
        Err(ConfigError::InvalidValue)
    );
    assert_eq!(
        encode(&[net], &[("k", &[0; 4097])]),
        Err(ConfigError::InvalidValue)
    );
    assert!(encode(&[net], &[(&"k".repeat(64), &[0; 4096]), ("\u{1F600}", b"")]).is_ok());
    // Too large for MAX_CONFIG_LEN.
    let big = [0u8; 4096];
    assert_eq!(
        encode(&[net], &[("a", &big), ("b", &big)]),
        Err(ConfigError::TooLarge)
    );

    // Networks come first.
    let mut buf = [0u8; 256];
    let mut writer = ConfigWriter::new(&mut buf);
    writer.network(&net).unwrap().setting("k", b"v").unwrap();
    assert!(matches!(writer.network(&net), Err(ConfigError::OutOfOrder)));
    // A failed call leaves the object unchanged.
    let before = writer.len();
    assert!(writer.setting("k", b"again").is_err());
    assert_eq!(writer.len(), before);
    let len = writer.finish().unwrap();
    assert_eq!(
        ConfigView::parse(&buf[..len]).unwrap().settings().count(),
        1
    );

    // A small output buffer.
    let mut tiny = [0u8; 10];
    let mut writer = ConfigWriter::new(&mut tiny);
    assert!(writer.is_empty());
    assert!(matches!(writer.network(&net), Err(ConfigError::TooLarge)));
    assert!(writer.is_empty());
}

#[test]
fn view_rejects_every_malformation() {
    let net = wpa2(b"a", "12345678");
    let good = encode(&[net], &[("k", b"v")]).unwrap();
    let network_end = 3 + usize::from(good[2]);
    let cases: Vec<(Vec<u8>, ConfigError)> = vec![
        (vec![], ConfigError::NoNetwork),
        (good[..good.len() - 1].to_vec(), ConfigError::Malformed),
        (good[..2].to_vec(), ConfigError::Malformed),
        (
            [&good[..], &[9, 0, 0]].concat(),
            ConfigError::UnknownEntry(9),
        ),
        (
            [&good[network_end..], &good[..network_end]].concat(),
            ConfigError::OutOfOrder,
        ),
        (
            [&good[..], &good[network_end..]].concat(),
            ConfigError::DuplicateSetting,
        ),
        (vec![0; MAX_CONFIG_LEN + 1], ConfigError::TooLarge),
        (good[network_end..].to_vec(), ConfigError::NoNetwork),
    ];
    for (bytes, expected) in cases {
        assert_eq!(
            ConfigView::parse(&bytes).map(|_| ()),
            Err(expected),
            "{bytes:?}"
        );
    }
    // Field-level corruption inside the Network value (offsets from the layout in §7).
    let corrupt = |offset: usize, value: u8| {
        let mut b = good.clone();
        b[offset] = value;
        ConfigView::parse(&b).map(|_| ())
    };
    assert_eq!(corrupt(3, 200), Err(ConfigError::Malformed)); // ssid_len past the value
    assert_eq!(corrupt(5, 3), Err(ConfigError::InvalidValue)); // unknown security
    assert_eq!(corrupt(5, 0), Err(ConfigError::InvalidValue)); // open with a passphrase
    assert_eq!(corrupt(6, 7), Err(ConfigError::InvalidValue)); // unknown credential kind
    assert_eq!(corrupt(8, 0x07), Err(ConfigError::InvalidValue)); // control char in passphrase
    assert_eq!(corrupt(16, 0x04), Err(ConfigError::InvalidValue)); // unknown hint flag
    assert_eq!(corrupt(16, 0x02), Err(ConfigError::Malformed)); // channel hint missing
    // Trailing byte inside a Network value.
    let mut long = good.clone();
    long[2] += 1;
    long.insert(network_end, 0);
    assert_eq!(
        ConfigView::parse(&long).map(|_| ()),
        Err(ConfigError::Malformed)
    );
    // Setting key not UTF-8, and empty key.
    let mut bad_key = good.clone();
    bad_key[network_end + 4] = 0xff;
    assert_eq!(
        ConfigView::parse(&bad_key).map(|_| ()),
        Err(ConfigError::InvalidValue)
    );
    let mut empty_key = good.clone();
    empty_key[network_end + 3] = 0;
    assert_eq!(
        ConfigView::parse(&empty_key).map(|_| ()),
        Err(ConfigError::InvalidValue)
    );
}

#[test]
fn error_messages_are_sentences() {
    for e in [
        ConfigError::TooLarge,
        ConfigError::InvalidValue,
        ConfigError::OutOfOrder,
        ConfigError::UnknownEntry(9),
    ] {
        let m = e.to_string();
        assert!(m.len() > 30 && m.contains("configuration"), "{m}");
    }
}

/// Inputs of a generated network: SSID, kind (open, WPA2, WPA3, raw PSK), passphrase, hints.
type NetworkSpec = (Vec<u8>, u8, String, Option<[u8; 6]>, Option<u8>);

fn network_strategy() -> impl Strategy<Value = NetworkSpec> {
    (
        proptest::collection::vec(any::<u8>(), 1..=32),
        0u8..4,
        "[ -~]{8,63}",
        proptest::option::of(any::<[u8; 6]>()),
        proptest::option::of(1u8..=14),
    )
}

fn to_network(spec: &NetworkSpec) -> Network<'_> {
    let (ssid, kind, passphrase, bssid, channel) = spec;
    let (security, credential) = match kind {
        0 => (Security::Open, Credential::None),
        1 => (
            Security::Wpa2Psk,
            Credential::Passphrase(passphrase.as_str()),
        ),
        2 => (
            Security::Wpa3Sae,
            Credential::Passphrase(passphrase.as_str()),
        ),
        _ => (Security::Wpa2Psk, Credential::RawPsk(&PSK)),
    };
    Network {
        ssid,
        security,
        credential,
        bssid: *bssid,
        channel: *channel,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn writer_then_view_round_trips(
        specs in proptest::collection::vec(network_strategy(), 1..=MAX_NETWORKS),
        settings in proptest::collection::btree_map("\\PC{1,16}", proptest::collection::vec(any::<u8>(), 0..64), 0..8),
    ) {
        let networks: Vec<Network<'_>> = specs.iter().map(to_network).collect();
        let settings: Vec<(&str, &[u8])> = settings.iter().map(|(k, v)| (k.as_str(), v.as_slice())).collect();
        let bytes = encode(&networks, &settings).unwrap();
        let view = ConfigView::parse(&bytes).unwrap();
        prop_assert_eq!(view.networks().collect::<Vec<_>>(), networks.clone());
        prop_assert_eq!(view.settings().collect::<Vec<_>>(), settings.clone());
        // Canonical: re-encoding what was read gives the same bytes.
        let again = encode(&view.networks().collect::<Vec<_>>(), &view.settings().collect::<Vec<_>>()).unwrap();
        prop_assert_eq!(again, bytes);
    }

    #[test]
    fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        if let Ok(view) = ConfigView::parse(&bytes) {
            // Only canonical objects are accepted: they re-encode to the same bytes.
            let again = encode(&view.networks().collect::<Vec<_>>(), &view.settings().collect::<Vec<_>>()).unwrap();
            prop_assert_eq!(again, bytes);
        }
    }

    #[test]
    fn mutated_objects_never_panic_and_stay_canonical(
        spec in network_strategy(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let mut bytes = encode(&[to_network(&spec)], &[("key", b"value")]).unwrap();
        for (index, value) in edits {
            let i = index.index(bytes.len());
            bytes[i] = value;
        }
        if let Ok(view) = ConfigView::parse(&bytes) {
            let again = encode(&view.networks().collect::<Vec<_>>(), &view.settings().collect::<Vec<_>>()).unwrap();
            prop_assert_eq!(again, bytes);
        }
    }
}
