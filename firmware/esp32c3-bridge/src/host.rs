//! The host side: bytes to and from the USB-Serial-JTAG port.
//!
//! Reading and writing are separate loops, so a host that stops reading (port closed, app
//! stalled) only stalls the writer: the core's bounded host queue then drops and counts
//! `Received` frames while the radio keeps being drained.

use embedded_io_async::{Read, Write};
use esp_hal::Async;
use esp_hal::usb::usb_serial_jtag::{UsbSerialJtagRx, UsbSerialJtagTx};
use zerotouch_bridge::frame::MAX_WIRE_LEN;

use crate::shared::Shared;

/// The USB-Serial-JTAG endpoints carry 64 bytes per packet.
const USB_PACKET: usize = 64;

/// Feeds every byte the host sends into the core (garbage included: the decoder resyncs).
pub async fn read_loop(mut rx: UsbSerialJtagRx<'_, Async>, shared: &Shared) -> ! {
    let mut buf = [0u8; USB_PACKET];
    loop {
        let Ok(n) = rx.read(&mut buf).await;
        shared.host_bytes(&buf[..n]);
    }
}

/// Writes the core's frames to the host, one whole frame at a time.
pub async fn write_loop(mut tx: UsbSerialJtagTx<'_, Async>, shared: &Shared) -> ! {
    let mut frame = [0u8; MAX_WIRE_LEN];
    loop {
        match shared.poll_host(&mut frame) {
            Some(len) => {
                let Ok(()) = tx.write_all(&frame[..len]).await;
                // Ends the USB transfer (a zero-length packet after a multiple of 64 bytes).
                let Ok(()) = tx.flush().await;
            }
            None => shared.host_work().await,
        }
    }
}
