//! Adversary hooks: the passive recorder's frame type and the active attacker interface.
//!
//! Every frame that finishes on air is shown to the [`Adversary`] (if one is installed)
//! before anyone hears it. The adversary sees every channel at once (a worst-case attacker
//! with one radio per channel), decides whether receivers get the frame unchanged, nothing,
//! or different bytes, and may queue frames of its own, with any source address, through
//! [`Adversary::poll_inject`] or [`crate::Simulator::inject`].

use std::sync::Arc;

use zerotouch_proto::Addr;

/// One frame as it was on the air.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AirFrame {
    /// Sequence number of the transmission (order of the start of transmission).
    pub id: u64,
    /// When it started on air, microseconds of virtual time.
    pub start_us: u64,
    /// When it ended on air (receivers hear it now), microseconds of virtual time.
    pub end_us: u64,
    /// Radio channel.
    pub channel: u8,
    /// Source address as sent (may be spoofed by an injector).
    pub src: Addr,
    /// Destination address (unicast or broadcast).
    pub dst: Addr,
    /// The body bytes the sender transmitted.
    pub bytes: Arc<[u8]>,
    /// True if the adversary injected it.
    pub injected: bool,
}

/// What happens to a frame in flight.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Receivers get it as sent.
    Deliver,
    /// Nobody receives it (jamming).
    Drop,
    /// Receivers get these bytes instead (an attacker who overpowers the sender).
    Replace(Vec<u8>),
}

/// A frame the adversary wants on the air.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Injection {
    /// Channel to send on.
    pub channel: u8,
    /// Source address to claim (spoofing is allowed).
    pub src: Addr,
    /// Destination address.
    pub dst: Addr,
    /// Body bytes (at most 250 are meaningful for ESP-NOW; longer ones are truncated).
    pub bytes: Vec<u8>,
    /// Extra delay before the transmission starts, microseconds (0 = as soon as the
    /// channel is free).
    pub delay_us: u64,
}

/// An active radio attacker. Every method has a passive default, so an implementation
/// overrides only what it needs.
pub trait Adversary {
    /// Called for each frame sent by a node (not for injected frames, so a relay cannot
    /// loop on its own output) when it ends on air; `now_us` is virtual time.
    fn on_air(&mut self, now_us: u64, frame: &AirFrame) -> Verdict {
        let _ = (now_us, frame);
        Verdict::Deliver
    }

    /// Frames to inject; drained after every [`Adversary::on_air`] call.
    fn poll_inject(&mut self) -> Option<Injection> {
        None
    }
}

/// The attacker of PROTOCOL.md §9.5 "Replay, relay": it hears one device on every channel
/// and, each time that device announces, at once replays every earlier Announce of it and
/// relays the new one onto the configurator's channel (ahead of the device, which is still
/// hopping elsewhere), `copies` times each. Against protocol version 1 this kept a device
/// out indefinitely; against version 2 it may cost the device its Challenge race only.
pub struct AnnounceReplayer {
    victim: Addr,
    target_channel: u8,
    copies: usize,
    heard: std::vec::Vec<Arc<[u8]>>,
    queue: std::vec::Vec<Injection>,
    injected: Arc<core::sync::atomic::AtomicU64>,
}

/// Frame type byte of an Announce.
const ANNOUNCE: u8 = 1;
/// Earlier Announces kept for replay (the oldest are dropped beyond it).
const REPLAY_MEMORY: usize = 32;

impl AnnounceReplayer {
    /// Targets the device at `victim`; injects onto `target_channel`. `injected` counts the
    /// frames it put on the air.
    pub fn new(
        victim: Addr,
        target_channel: u8,
        copies: usize,
        injected: Arc<core::sync::atomic::AtomicU64>,
    ) -> Self {
        AnnounceReplayer {
            victim,
            target_channel,
            copies,
            heard: std::vec::Vec::new(),
            queue: std::vec::Vec::new(),
            injected,
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        for _ in 0..self.copies {
            self.queue.push(Injection {
                channel: self.target_channel,
                src: self.victim,
                dst: Addr::BROADCAST,
                bytes: bytes.to_vec(),
                delay_us: 0,
            });
        }
    }
}

impl Adversary for AnnounceReplayer {
    fn on_air(&mut self, _now_us: u64, frame: &AirFrame) -> Verdict {
        let is_announce =
            frame.bytes.len() > 4 && frame.bytes[0] == 0x5a && frame.bytes[2] == ANNOUNCE;
        if frame.src != self.victim || !is_announce {
            return Verdict::Deliver;
        }
        if !self.heard.iter().any(|h| **h == *frame.bytes) {
            // A new round: replay everything older, relay the new one ahead of the device.
            let older = self.heard.clone();
            for old in &older {
                self.push(old);
            }
            self.push(&frame.bytes);
            self.heard.push(frame.bytes.clone());
            if self.heard.len() > REPLAY_MEMORY {
                self.heard.remove(0);
            }
        }
        Verdict::Deliver
    }

    fn poll_inject(&mut self) -> Option<Injection> {
        let injection = self.queue.pop();
        if injection.is_some() {
            self.injected
                .fetch_add(1, core::sync::atomic::Ordering::Relaxed);
        }
        injection
    }
}
