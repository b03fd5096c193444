//! The radio side: ESP-NOW receive and the operations the core asks for.
//!
//! Receiving is its own loop that only copies frames into the core, so esp-radio's small
//! receive queue (10 frames) is drained even while a send waits for its status. The other
//! loop runs the core's radio commands one at a time and reports each result back.

use esp_radio::esp_now::{
    EspNowError, EspNowManager, EspNowReceiver, EspNowSender, EspNowWifiInterface, PeerInfo,
    ReceivedData,
};
use zerotouch_bridge::{ErrorCode, Mac, RadioCommand, RadioEvent, TxOutcome};

use crate::shared::Shared;

/// Hands every received frame to the core, draining whatever else is queued.
pub async fn receive_loop(mut receiver: EspNowReceiver, shared: &Shared) -> ! {
    loop {
        let first = receiver.receive_async().await;
        deliver(shared, &first);
        while let Some(next) = receiver.receive() {
            deliver(shared, &next);
        }
    }
}

fn deliver(shared: &Shared, frame: &ReceivedData) {
    let control = &frame.info.rx_control;
    shared.radio_event(RadioEvent::Received {
        src: frame.info.src_address,
        dst: frame.info.dst_address,
        channel: u8::try_from(control.channel).unwrap_or(0),
        rssi: i8::try_from(control.rssi.clamp(-128, 127)).unwrap_or(i8::MIN),
        rx_time_us: control.timestamp.duration_since_epoch().as_micros(),
        payload: frame.data(),
    });
}

/// Runs the core's radio commands as they come.
pub async fn command_loop(manager: EspNowManager, mut sender: EspNowSender, shared: &Shared) -> ! {
    loop {
        let Some(command) = shared.poll_radio() else {
            shared.radio_work().await;
            continue;
        };
        match command {
            RadioCommand::SetChannel(channel) => {
                let result = manager.set_channel(channel).map(|()| channel).map_err(|e| {
                    log::warn!("cannot tune to channel {channel}: {e:?}");
                });
                shared.radio_event(RadioEvent::ChannelSet(result));
            }
            RadioCommand::AddPeer(mac) => add_peer(&manager, mac),
            RadioCommand::RemovePeer(mac) => {
                if let Err(e) = manager.remove_peer(&mac) {
                    log::warn!("cannot remove peer {mac:02x?}: {e:?}");
                }
            }
            RadioCommand::Send { dest, payload } => {
                // Awaited to the end: esp-radio's send future must not be dropped early.
                let result = sender.send_async(&dest, &payload).await;
                shared.radio_event(RadioEvent::SendDone(outcome(result)));
            }
        }
    }
}

/// Registers `mac` (bound to the current channel, unencrypted: the protocol encrypts end
/// to end). A failure is logged; the send to it then reports the radio error.
fn add_peer(manager: &EspNowManager, mac: Mac) {
    if manager.peer_exists(&mac) {
        return;
    }
    let peer = PeerInfo {
        interface: EspNowWifiInterface::Station,
        peer_address: mac,
        lmk: None,
        channel: None,
        encrypt: false,
    };
    if let Err(e) = manager.add_peer(peer) {
        log::warn!("cannot add peer {mac:02x?}: {e:?}");
    }
}

/// The send callback's status as the bridge protocol reports it.
fn outcome(result: Result<(), EspNowError>) -> TxOutcome {
    match result {
        Ok(()) => TxOutcome::Delivered,
        // The send callback reported failure: for unicast, no link-layer ACK.
        Err(EspNowError::SendFailed) => TxOutcome::NotAcked,
        Err(e) => {
            log::warn!("send refused by the radio: {e:?}");
            TxOutcome::Failed(ErrorCode::Radio)
        }
    }
}
