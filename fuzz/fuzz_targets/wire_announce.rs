//! Fuzzes the Announce frame view: `new_checked` and every accessor must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zerotouch_proto::wire::{Announce, Header};

fuzz_target!(|data: &[u8]| {
    let _ = Header::parse(data);
    if let Ok(view) = Announce::new_checked(data) {
        let _ = view.suite();
        let _ = format!("{:?}", view);
        let _ = (
            view.mode(),
            view.last_failure(),
            view.identity(),
            view.ephemeral(),
        );
    }
});
