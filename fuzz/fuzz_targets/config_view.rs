//! Fuzzes the configuration object parser: never panics; a parsed object iterates cleanly.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zerotouch_proto::config::ConfigView;

fuzz_target!(|data: &[u8]| {
    if let Ok(view) = ConfigView::parse(data) {
        for net in view.networks() {
            let _ = net.validate();
        }
        for (key, value) in view.settings() {
            let _ = (key.len(), value.len());
        }
    }
});
