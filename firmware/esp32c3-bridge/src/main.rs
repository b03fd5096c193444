//! zerotouch radio bridge firmware for the ESP32-C3.
//!
//! Relays ESP-NOW frames to and from a host daemon over the chip's USB-Serial-JTAG port,
//! like a Zigbee coordinator stick. All protocol logic (messages, framing, queues, drops,
//! peer table) is the shared `zerotouch-bridge` crate's [`BridgeCore`], the same code the
//! host tests run; this firmware is the thin driver around it:
//!
//! - [`host`]: USB bytes in and frames out, in two loops so a host that stops reading
//!   never stalls the radio;
//! - [`radio`]: an ESP-NOW receive loop that drains esp-radio's queue into the core, and a
//!   loop that runs the core's radio commands (channel, peers, sends with their status).
//!
//! Logs and panics go to UART0 (GPIO21, 115200 baud), never to the USB port. A Hello
//! (reason Boot) is the first frame the host reads after a reset.
//!
//! [`BridgeCore`]: zerotouch_bridge::BridgeCore

#![no_std]
#![no_main]

mod host;
mod radio;
mod shared;

use embassy_executor::Spawner;
use embassy_futures::join::join5;
use embassy_time::{Duration, Timer};
use esp_backtrace as _;
use esp_hal::clock::CpuClock;
use esp_hal::efuse::{self, InterfaceMacAddress};
use esp_hal::timer::timg::TimerGroup;
use esp_hal::usb::usb_serial_jtag::UsbSerialJtag;
use esp_radio::wifi::{ControllerConfig, WifiController};
use zerotouch_bridge::message::FirmwareVersion;
use zerotouch_bridge::{BridgeConfig, Mac, PROTOCOL_VERSION};

use crate::shared::Shared;

esp_bootloader_esp_idf::esp_app_desc!();

/// The channel the radio listens on until the host sets one.
const BOOT_CHANNEL: u8 = 1;
/// How often the counters are logged on UART0.
const STATS_LOG_EVERY: Duration = Duration::from_secs(60);

#[esp_rtos::main]
async fn main(_spawner: Spawner) -> ! {
    esp_println::logger::init_logger_from_env();
    let peripherals = esp_hal::init(esp_hal::Config::default().with_cpu_clock(CpuClock::max()));
    // The Wi-Fi blobs allocate their buffers here, and esp-radio its received frames.
    esp_alloc::heap_allocator!(#[esp_hal::ram(reclaimed)] size: 64 * 1024);
    let timg0 = TimerGroup::new(peripherals.TIMG0);
    esp_rtos::start(timg0.timer0, peripherals.FROM_CPU_INTR0);

    let controller = match WifiController::new(peripherals.WIFI, ControllerConfig::default()) {
        Ok(controller) => controller,
        Err(e) => halt(format_args!(
            "Wi-Fi driver failed to start: {e:?} (check the heap size and the radio blobs)"
        )),
    };
    let esp_now = controller.esp_now();
    if let Err(e) = esp_now.set_channel(BOOT_CHANNEL) {
        log::warn!("cannot tune to boot channel {BOOT_CHANNEL}: {e:?}");
    }
    let (manager, sender, receiver) = esp_now.split();

    let mac = station_mac();
    let shared = Shared::new(BridgeConfig {
        mac,
        firmware: firmware_version(),
        channel: BOOT_CHANNEL,
    });
    log::info!(
        "zerotouch bridge {} (protocol {PROTOCOL_VERSION}) MAC {mac:02x?} on channel {BOOT_CHANNEL}",
        env!("CARGO_PKG_VERSION")
    );

    let (usb_rx, usb_tx) = UsbSerialJtag::new(peripherals.USB_DEVICE)
        .into_async()
        .split();
    // Loops that never end: the first `!` is the function's result. `controller` stays
    // alive meanwhile (dropping it would stop the radio).
    let (never, ..) = join5(
        host::read_loop(usb_rx, &shared),
        host::write_loop(usb_tx, &shared),
        radio::receive_loop(receiver, &shared),
        radio::command_loop(manager, sender, &shared),
        log_stats(&shared),
    )
    .await;
    never
}

/// The station MAC: the address peers see and the host learns from Hello.
fn station_mac() -> Mac {
    let mut mac = [0u8; 6];
    mac.copy_from_slice(efuse::interface_mac_address(InterfaceMacAddress::Station).as_bytes());
    mac
}

/// This crate's version, reported in Hello.
fn firmware_version() -> FirmwareVersion {
    let part = |text: &str| text.parse().unwrap_or(u8::MAX);
    FirmwareVersion {
        major: part(env!("CARGO_PKG_VERSION_MAJOR")),
        minor: part(env!("CARGO_PKG_VERSION_MINOR")),
        patch: part(env!("CARGO_PKG_VERSION_PATCH")),
    }
}

/// Logs the counters now and then, for whoever watches UART0.
async fn log_stats(shared: &Shared) -> ! {
    loop {
        Timer::after(STATS_LOG_EVERY).await;
        let stats = shared.stats();
        log::info!(
            "channel {} rx {} tx {} (delivered {}, not acked {}, failed {}) drops: host queue {}, tx queue {}; bad host frames {}",
            shared.channel(),
            stats.rx_frames,
            stats.tx_frames,
            stats.tx_delivered,
            stats.tx_not_acked,
            stats.tx_failed,
            stats.drop_host_queue_full,
            stats.drop_tx_queue_full,
            stats.host_bad_frames,
        );
    }
}

/// Nothing to relay without a radio: stay up and keep saying why on UART0.
fn halt(why: core::fmt::Arguments<'_>) -> ! {
    loop {
        log::error!("halted: {why}");
        let until = esp_hal::time::Instant::now() + esp_hal::time::Duration::from_secs(10);
        while esp_hal::time::Instant::now() < until {}
    }
}
