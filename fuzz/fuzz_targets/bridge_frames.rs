//! Fuzzes the radio-bridge decoders on both ends: arbitrary bytes on the serial line never
//! panic the frame decoder, the message parsers or `BridgeCore`, a parsed message encodes
//! back to the same bytes, and the core's counters account for every bad run.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zerotouch_bridge::frame::{FrameDecoder, MAX_WIRE_LEN};
use zerotouch_bridge::message::FirmwareVersion;
use zerotouch_bridge::{BridgeConfig, BridgeCore, BridgeMsg, HostMsg, RadioEvent, TxOutcome};

fuzz_target!(|data: &[u8]| {
    // Host side: what a bridge (or garbage) writes.
    let mut decoder: FrameDecoder = FrameDecoder::new();
    for &byte in data {
        if let Some(Ok(message)) = decoder.push(byte) {
            let mut again = [0u8; 300];
            if let Ok(msg) = BridgeMsg::parse(message) {
                let len = msg.encode(&mut again).expect("a parsed message encodes");
                assert_eq!(&again[..len], message);
            }
            if let Ok(msg) = HostMsg::parse(message) {
                let len = msg.encode(&mut again).expect("a parsed message encodes");
                assert_eq!(&again[..len], message);
            }
        }
    }
    // Bridge side: the same bytes from the host, with the radio answering everything.
    let mut core: BridgeCore<4, 8, 2> = BridgeCore::new(BridgeConfig {
        mac: [2, 0, 0, 0, 0, 1],
        firmware: FirmwareVersion { major: 0, minor: 0, patch: 0 },
        channel: 1,
    });
    let mut out = [0u8; MAX_WIRE_LEN];
    for chunk in data.chunks(7) {
        core.handle_host_bytes(chunk);
        while let Some(command) = core.poll_radio() {
            match command {
                zerotouch_bridge::RadioCommand::SetChannel(channel) => {
                    core.handle_radio(RadioEvent::ChannelSet(Ok(channel)))
                }
                zerotouch_bridge::RadioCommand::Send { .. } => {
                    core.handle_radio(RadioEvent::SendDone(TxOutcome::NotAcked))
                }
                _ => {}
            }
        }
        while core.poll_host(&mut out).is_some() {}
    }
    assert_eq!(u64::from(core.stats().host_bad_frames), decoder.stats().bad_frames);
});
