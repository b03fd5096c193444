//! Fuzzes the configurator certificate decoder for both suites; a decoded certificate must
//! re-encode to the same bytes (canonical encoding).
#![no_main]

use libfuzzer_sys::fuzz_target;
use zerotouch_proto::{ConfiguratorCert, SuiteId};

fuzz_target!(|data: &[u8]| {
    for suite in SuiteId::ALL {
        if let Ok(cert) = ConfiguratorCert::from_bytes(suite, data) {
            assert_eq!(cert.to_bytes().as_slice(), data);
        }
    }
});
