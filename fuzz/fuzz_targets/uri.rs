//! Fuzzes the DPP bootstrap URI parser: never panics on any string.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zerotouch_proto::uri::BootstrapUri;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = core::str::from_utf8(data)
        && let Ok(uri) = BootstrapUri::parse(text)
    {
        let mut out = String::new();
        let _ = uri.write(&mut out);
    }
});
