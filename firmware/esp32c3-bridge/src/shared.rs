//! The one [`BridgeCore`] the USB and radio loops share, and the wake-ups between them.
//!
//! All loops run joined in one embassy task, so a `RefCell` suffices: no borrow is held
//! across an `.await`. A loop that changes the core wakes the loops that may now have work;
//! polling the core wakes nobody (a loop waking itself would spin).

use core::cell::RefCell;

use embassy_sync::blocking_mutex::raw::NoopRawMutex;
use embassy_sync::signal::Signal;
use zerotouch_bridge::frame::MAX_WIRE_LEN;
use zerotouch_bridge::{BridgeConfig, BridgeCore, RadioCommand, RadioEvent, Stats};

/// The core plus one wake-up per consumer.
pub struct Shared {
    core: RefCell<BridgeCore>,
    host_work: Signal<NoopRawMutex, ()>,
    radio_work: Signal<NoopRawMutex, ()>,
}

impl Shared {
    /// A freshly booted bridge (its Hello is already queued for the host).
    pub fn new(config: BridgeConfig) -> Self {
        Self {
            core: RefCell::new(BridgeCore::new(config)),
            host_work: Signal::new(),
            radio_work: Signal::new(),
        }
    }

    /// Bytes from the host: they may queue radio work and answers.
    pub fn host_bytes(&self, bytes: &[u8]) {
        self.core.borrow_mut().handle_host_bytes(bytes);
        self.radio_work.signal(());
        self.host_work.signal(());
    }

    /// A radio event: it may queue frames for the host. The radio loop polls again by itself.
    pub fn radio_event(&self, event: RadioEvent<'_>) {
        self.core.borrow_mut().handle_radio(event);
        self.host_work.signal(());
    }

    /// The next radio operation, if any.
    pub fn poll_radio(&self) -> Option<RadioCommand> {
        self.core.borrow_mut().poll_radio()
    }

    /// The next frame for the host, written into `out`; its length.
    pub fn poll_host(&self, out: &mut [u8; MAX_WIRE_LEN]) -> Option<usize> {
        self.core.borrow_mut().poll_host(out)
    }

    /// The counters.
    pub fn stats(&self) -> Stats {
        self.core.borrow().stats()
    }

    /// The channel the radio is on.
    pub fn channel(&self) -> u8 {
        self.core.borrow().channel()
    }

    /// Waits until the host loop may have frames to write.
    pub async fn host_work(&self) {
        self.host_work.wait().await
    }

    /// Waits until the radio loop may have operations to run.
    pub async fn radio_work(&self) {
        self.radio_work.wait().await
    }
}
