//! The discrete-event engine: a binary heap of timed events, one seeded RNG, and the nodes.
//!
//! Three kinds of events exist: a node's timer, the end of a transmission on a channel,
//! and the delivery of a frame to one receiver. Every event costs O(log n) heap work plus
//! the work of the node it wakes; broadcast frames are handed only to nodes that listen
//! on the frame's channel and want broadcasts ([`Node::hears_broadcast`]), found through a
//! per-channel index, so a large fleet of enrollees costs nothing per foreign announcement.
//!
//! Virtual time runs in microseconds inside the engine (airtime is sub-millisecond);
//! nodes see [`Instant`] milliseconds, as the protocol core does. Ties are broken by
//! insertion order, and the only randomness is the seeded ChaCha8 stream, so a run is a
//! pure function of its seed, its configuration and the nodes.

use std::any::Any;
use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap};
use std::sync::Arc;

use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};
use zerotouch_proto::{Addr, Instant, MAX_FRAME, Transmit};

use crate::adversary::{Adversary, AirFrame, Injection, Verdict};
use crate::radio::{LinkModel, MAX_CHANNEL, RadioConfig, is_valid_channel};

/// A participant in the simulation: a sans-IO protocol endpoint plus whatever its driver
/// does (joining an access point, answering from a registry, ...).
///
/// The simulator calls `handle_frame`/`handle_timeout`, then drains `poll_transmit`, and
/// re-reads `channel`, `poll_timeout` and `is_finished` after every call.
pub trait Node {
    /// The node's own (MAC) address; unicast frames to it are delivered to it.
    fn addr(&self) -> Addr;
    /// The channel the node listens on now (0 = radio off).
    fn channel(&self) -> u8;
    /// A frame was received.
    fn handle_frame(&mut self, now: Instant, src: Addr, frame: &[u8]);
    /// The deadline from [`Node::poll_timeout`] passed.
    fn handle_timeout(&mut self, now: Instant);
    /// The next frame to put on the air, if any.
    fn poll_transmit(&mut self) -> Option<Transmit>;
    /// When [`Node::handle_timeout`] must be called next.
    fn poll_timeout(&self) -> Option<Instant>;
    /// For inspection after (or during) a run.
    fn as_any(&self) -> &dyn Any;
    /// For changes during a run (revocation, profile fixes), via [`Simulator::with_node`].
    fn as_any_mut(&mut self) -> &mut dyn Any;
    /// Whether broadcast frames must be delivered to this node. A node whose protocol role
    /// never receives broadcasts (an enrollee: only announcements are broadcast) may say
    /// `false`; it would drop them anyway, and a fleet of thousands then costs nothing per
    /// announcement.
    fn hears_broadcast(&self) -> bool {
        true
    }
    /// Whether a node that does not hear every broadcast ([`Node::hears_broadcast`] false)
    /// still hears configurators' Beacons (an enrollee does: thousands of them then cost
    /// nothing per announcement, and one delivery each per Beacon).
    fn hears_beacons(&self) -> bool {
        false
    }
    /// True once the node has nothing left to do (e.g. an enrollee is provisioned).
    /// The simulator counts these ([`Simulator::finished_count`]) so that a run can stop
    /// when a whole fleet is done without scanning it.
    fn is_finished(&self) -> bool {
        false
    }
}

/// Index of a node in its [`Simulator`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(pub usize);

/// What the radio saw of one node.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NodeAirStats {
    /// Frames the node put on the air.
    pub frames_sent: u64,
    /// Their body bytes.
    pub bytes_sent: u64,
    /// Channel time they took, microseconds.
    pub airtime_us: u64,
    /// Unicast frames on air addressed to the node (received or not).
    pub frames_addressed: u64,
    /// Their body bytes.
    pub bytes_addressed: u64,
    /// Frames handed to the node (after loss; duplicates count twice).
    pub frames_received: u64,
    /// Transmissions refused: invalid channel or a frame over 250 bytes.
    pub invalid_transmits: u64,
    /// Frames given up because the channel stayed busy too long.
    pub access_dropped: u64,
}

/// Traffic on one channel.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChannelStats {
    /// Frames on air (including injected ones).
    pub frames: u64,
    /// Their body bytes.
    pub bytes: u64,
    /// Channel time used, microseconds (airtime, ACKs and gaps).
    pub busy_us: u64,
}

/// Totals of a run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SimReport {
    /// Virtual time reached, microseconds.
    pub now_us: u64,
    /// Events processed.
    pub events: u64,
    /// Frames on air, all channels.
    pub frames_on_air: u64,
    /// Their body bytes.
    pub bytes_on_air: u64,
    /// Frames handed to receivers.
    pub deliveries: u64,
    /// Receptions lost to the link model.
    pub lost: u64,
    /// Extra copies delivered by duplication.
    pub duplicated: u64,
    /// Frames the adversary dropped.
    pub adversary_dropped: u64,
    /// Frames the adversary replaced.
    pub adversary_replaced: u64,
    /// Frames the adversary injected.
    pub injected: u64,
    /// Frames given up because their channel stayed busy longer than
    /// [`RadioConfig::max_access_delay_us`].
    pub access_dropped: u64,
    /// Per channel, index 0 unused.
    pub channels: Vec<ChannelStats>,
    /// Nodes that report [`Node::is_finished`].
    pub finished: usize,
}

/// A frame in the recorder, with what the adversary did to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recorded {
    /// The frame as transmitted.
    pub frame: AirFrame,
    /// The adversary's verdict ([`Verdict::Deliver`] without an adversary).
    pub verdict: Verdict,
}

/// Progress snapshot handed to the progress callback.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Virtual time, milliseconds.
    pub now_ms: Instant,
    /// Nodes finished.
    pub finished: usize,
    /// Nodes in the simulation.
    pub nodes: usize,
    /// Frames on air so far.
    pub frames_on_air: u64,
    /// Events processed so far.
    pub events: u64,
}

/// Callback invoked as virtual time advances (see [`Simulator::set_progress`]).
pub type ProgressFn = Box<dyn FnMut(&Progress)>;

struct Slot {
    node: Box<dyn Node>,
    addr: Addr,
    /// Channel under which the node is indexed (0 = none).
    channel: u8,
    in_broadcast_index: bool,
    in_beacon_index: bool,
    /// The armed timer, microseconds; heap entries for other times are stale.
    timer_us: Option<u64>,
    finished: bool,
    air: NodeAirStats,
}

struct PendingTx {
    frame: AirFrame,
    sender: Option<usize>,
}

enum EventKind {
    Timer(usize),
    TxEnd(Box<PendingTx>),
    Deliver {
        node: usize,
        src: Addr,
        bytes: Arc<[u8]>,
    },
    /// A delayed injection starts competing for its channel only when its delay has
    /// passed, so that it does not reserve the channel in advance.
    Inject(Box<Injection>),
}

struct Event {
    at_us: u64,
    seq: u64,
    kind: EventKind,
}

impl PartialEq for Event {
    fn eq(&self, other: &Self) -> bool {
        (self.at_us, self.seq) == (other.at_us, other.seq)
    }
}
impl Eq for Event {}
impl PartialOrd for Event {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Event {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at_us, self.seq).cmp(&(other.at_us, other.seq))
    }
}

/// The simulator: nodes, channels, the event queue, the recorder and the adversary.
pub struct Simulator {
    radio: RadioConfig,
    rng: ChaCha8Rng,
    now_us: u64,
    seq: u64,
    next_tx_id: u64,
    queue: BinaryHeap<Reverse<Event>>,
    slots: Vec<Slot>,
    by_addr: HashMap<Addr, Vec<usize>>,
    /// Per channel: nodes listening there that hear broadcasts (ordered: deterministic).
    broadcast_index: Vec<BTreeSet<usize>>,
    /// Per channel: the nodes that hear only Beacons of the broadcasts.
    beacon_index: Vec<BTreeSet<usize>>,
    busy_until_us: Vec<u64>,
    links: HashMap<(Addr, Addr), LinkModel>,
    adversary: Option<Box<dyn Adversary>>,
    recorder: Vec<Recorded>,
    report: SimReport,
    finished: usize,
    progress: Option<(u64, u64, ProgressFn)>,
    receivers_scratch: Vec<usize>,
}

const CHANNEL_SLOTS: usize = MAX_CHANNEL as usize + 1;

impl Simulator {
    /// A simulator at virtual time 0 whose every random choice comes from `seed`.
    pub fn new(radio: RadioConfig, seed: u64) -> Self {
        Self {
            radio,
            rng: ChaCha8Rng::seed_from_u64(seed),
            now_us: 0,
            seq: 0,
            next_tx_id: 0,
            queue: BinaryHeap::new(),
            slots: Vec::new(),
            by_addr: HashMap::new(),
            broadcast_index: vec![BTreeSet::new(); CHANNEL_SLOTS],
            beacon_index: vec![BTreeSet::new(); CHANNEL_SLOTS],
            busy_until_us: vec![0; CHANNEL_SLOTS],
            links: HashMap::new(),
            adversary: None,
            recorder: Vec::new(),
            report: SimReport {
                channels: vec![ChannelStats::default(); CHANNEL_SLOTS],
                ..SimReport::default()
            },
            finished: 0,
            progress: None,
            receivers_scratch: Vec::new(),
        }
    }

    /// The radio configuration.
    pub fn radio(&self) -> &RadioConfig {
        &self.radio
    }

    /// Adds a node; it is polled at once (it may transmit and arm a timer now).
    pub fn add_node(&mut self, node: Box<dyn Node>) -> NodeId {
        let idx = self.slots.len();
        let addr = node.addr();
        self.slots.push(Slot {
            node,
            addr,
            channel: 0,
            in_broadcast_index: false,
            in_beacon_index: false,
            timer_us: None,
            finished: false,
            air: NodeAirStats::default(),
        });
        self.by_addr.entry(addr).or_default().push(idx);
        self.after_call(idx, false);
        NodeId(idx)
    }

    /// Number of nodes.
    pub fn node_count(&self) -> usize {
        self.slots.len()
    }

    /// Every node id, in insertion order.
    pub fn node_ids(&self) -> impl Iterator<Item = NodeId> + use<> {
        (0..self.slots.len()).map(NodeId)
    }

    /// A node, as the trait object.
    pub fn node(&self, id: NodeId) -> Option<&dyn Node> {
        self.slots.get(id.0).map(|s| s.node.as_ref())
    }

    /// A node as its concrete type, if it is a `T`.
    pub fn node_as<T: 'static>(&self, id: NodeId) -> Option<&T> {
        self.slots.get(id.0)?.node.as_any().downcast_ref::<T>()
    }

    /// Runs `f` on a node of type `T` with the current virtual time (ms), then picks up
    /// whatever the node wants to send or schedule as a result. `None` if `id` is not a `T`.
    pub fn with_node<T: 'static, R>(
        &mut self,
        id: NodeId,
        f: impl FnOnce(&mut T, Instant) -> R,
    ) -> Option<R> {
        let now = self.now_ms();
        let node = self
            .slots
            .get_mut(id.0)?
            .node
            .as_any_mut()
            .downcast_mut::<T>()?;
        let result = f(node, now);
        self.after_call(id.0, false);
        Some(result)
    }

    /// What the radio saw of a node.
    pub fn air_stats(&self, id: NodeId) -> Option<NodeAirStats> {
        self.slots.get(id.0).map(|s| s.air)
    }

    /// Virtual time, milliseconds.
    pub fn now_ms(&self) -> Instant {
        self.now_us / 1000
    }

    /// Virtual time, microseconds.
    pub fn now_us(&self) -> u64 {
        self.now_us
    }

    /// Nodes that report [`Node::is_finished`] now.
    pub fn finished_count(&self) -> usize {
        self.finished
    }

    /// Overrides the impairments of the directed link `src -> dst`.
    pub fn set_link(&mut self, src: Addr, dst: Addr, link: LinkModel) {
        self.links.insert((src, dst), link);
    }

    /// Changes the impairments of every link without an override.
    pub fn set_default_link(&mut self, link: LinkModel) {
        self.radio.link = link;
    }

    /// Installs an active attacker (replacing any previous one).
    pub fn set_adversary(&mut self, adversary: Box<dyn Adversary>) {
        self.adversary = Some(adversary);
    }

    /// Removes the attacker and returns it.
    pub fn take_adversary(&mut self) -> Option<Box<dyn Adversary>> {
        self.adversary.take()
    }

    /// Every frame that was on the air, in the order it ended (if recording is on).
    pub fn recorder(&self) -> &[Recorded] {
        &self.recorder
    }

    /// Calls `callback` each time virtual time passes another `every_ms` milliseconds.
    pub fn set_progress(&mut self, every_ms: u64, callback: ProgressFn) {
        let every_us = every_ms.max(1) * 1000;
        self.progress = Some((every_us, self.now_us + every_us, callback));
    }

    /// Queues a frame from the adversary (or a test) for transmission.
    pub fn inject(&mut self, injection: Injection) {
        if injection.delay_us > 0 {
            let at = self.now_us + injection.delay_us;
            let due = Injection {
                delay_us: 0,
                ..injection
            };
            self.push(at, EventKind::Inject(Box::new(due)));
            return;
        }
        let mut bytes = injection.bytes;
        bytes.truncate(MAX_FRAME);
        self.report.injected += 1;
        let (src, dst, channel) = (injection.src, injection.dst, injection.channel);
        self.start_transmission(None, src, dst, channel, bytes.into(), true);
    }

    /// Totals so far.
    pub fn report(&self) -> SimReport {
        SimReport {
            now_us: self.now_us,
            finished: self.finished,
            ..self.report.clone()
        }
    }

    /// Processes the next event. False if there is none.
    pub fn step(&mut self) -> bool {
        let Some(Reverse(event)) = self.queue.pop() else {
            return false;
        };
        self.now_us = self.now_us.max(event.at_us);
        self.report.events += 1;
        match event.kind {
            EventKind::Timer(idx) => {
                if self.slots[idx].timer_us == Some(event.at_us) {
                    self.slots[idx].timer_us = None;
                    let now = self.now_ms();
                    self.slots[idx].node.handle_timeout(now);
                    self.after_call(idx, true);
                }
            }
            EventKind::TxEnd(tx) => self.end_transmission(*tx),
            EventKind::Inject(injection) => self.inject(*injection),
            EventKind::Deliver { node, src, bytes } => {
                let now = self.now_ms();
                let slot = &mut self.slots[node];
                slot.air.frames_received += 1;
                self.report.deliveries += 1;
                slot.node.handle_frame(now, src, &bytes);
                self.after_call(node, false);
            }
        }
        self.tick_progress();
        true
    }

    /// Runs every event up to `deadline` (ms); virtual time ends at `deadline`.
    pub fn run_until(&mut self, deadline: Instant) {
        self.run_while(deadline, |_| true);
    }

    /// Runs until no event is left or `deadline` (ms) is reached. True if it went quiet.
    pub fn run_until_quiet(&mut self, deadline: Instant) -> bool {
        let deadline_us = deadline.saturating_mul(1000);
        while self.peek_time().is_some_and(|t| t <= deadline_us) {
            self.step();
        }
        let quiet = self.queue.is_empty();
        if !quiet {
            self.now_us = self.now_us.max(deadline_us);
        }
        quiet
    }

    /// Runs while `keep_going(self)` holds (checked after every event) and events remain
    /// before `deadline` (ms). Returns true if `keep_going` stopped it.
    pub fn run_while(
        &mut self,
        deadline: Instant,
        mut keep_going: impl FnMut(&Simulator) -> bool,
    ) -> bool {
        let deadline_us = deadline.saturating_mul(1000);
        if !keep_going(self) {
            return true;
        }
        while self.peek_time().is_some_and(|t| t <= deadline_us) {
            self.step();
            if !keep_going(self) {
                return true;
            }
        }
        self.now_us = self.now_us.max(deadline_us);
        false
    }

    fn peek_time(&self) -> Option<u64> {
        self.queue.peek().map(|Reverse(e)| e.at_us)
    }

    fn tick_progress(&mut self) {
        let Some((every, next, _)) = &self.progress else {
            return;
        };
        if self.now_us < *next {
            return;
        }
        let every = *every;
        let snapshot = Progress {
            now_ms: self.now_ms(),
            finished: self.finished,
            nodes: self.slots.len(),
            frames_on_air: self.report.frames_on_air,
            events: self.report.events,
        };
        if let Some((_, next, callback)) = &mut self.progress {
            callback(&snapshot);
            *next = (self.now_us / every + 1) * every;
        }
    }

    fn push(&mut self, at_us: u64, kind: EventKind) {
        self.seq += 1;
        self.queue.push(Reverse(Event {
            at_us,
            seq: self.seq,
            kind,
        }));
    }

    fn random_unit(&mut self) -> f64 {
        // 53 random bits -> [0, 1).
        (self.rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    fn random_below(&mut self, bound: u64) -> u64 {
        if bound == 0 {
            0
        } else {
            self.rng.next_u64() % bound
        }
    }

    /// After any call into a node: send what it queued, re-index its channel, re-arm its
    /// timer, update the finished count.
    fn after_call(&mut self, idx: usize, after_timeout: bool) {
        while let Some(transmit) = self.slots[idx].node.poll_transmit() {
            let src = self.slots[idx].addr;
            let bytes: Arc<[u8]> = Arc::from(transmit.frame.as_slice());
            self.start_transmission(Some(idx), src, transmit.dst, transmit.channel, bytes, false);
        }

        let slot = &mut self.slots[idx];
        let channel = slot.node.channel();
        let hears = is_valid_channel(channel) && slot.node.hears_broadcast();
        let beacons = is_valid_channel(channel) && !hears && slot.node.hears_beacons();
        if channel != slot.channel
            || hears != slot.in_broadcast_index
            || beacons != slot.in_beacon_index
        {
            let old = usize::from(slot.channel);
            if slot.in_broadcast_index {
                self.broadcast_index[old].remove(&idx);
            }
            if slot.in_beacon_index {
                self.beacon_index[old].remove(&idx);
            }
            if hears {
                self.broadcast_index[usize::from(channel)].insert(idx);
            }
            if beacons {
                self.beacon_index[usize::from(channel)].insert(idx);
            }
            slot.channel = channel;
            slot.in_broadcast_index = hears;
            slot.in_beacon_index = beacons;
        }

        let finished = slot.node.is_finished();
        if finished != slot.finished {
            slot.finished = finished;
            if finished {
                self.finished += 1;
            } else {
                self.finished -= 1;
            }
        }

        let wanted = slot.node.poll_timeout().map(|deadline_ms| {
            // A deadline at or before the timeout just handled would fire again at once
            // forever; push it to the next millisecond.
            let floor = if after_timeout {
                (self.now_us / 1000 + 1) * 1000
            } else {
                self.now_us
            };
            deadline_ms.saturating_mul(1000).max(floor)
        });
        if wanted != slot.timer_us {
            slot.timer_us = wanted;
            if let Some(at) = wanted {
                self.push(at, EventKind::Timer(idx));
            }
        }
    }

    fn start_transmission(
        &mut self,
        sender: Option<usize>,
        src: Addr,
        dst: Addr,
        channel: u8,
        bytes: Arc<[u8]>,
        injected: bool,
    ) {
        if !is_valid_channel(channel) || bytes.len() > MAX_FRAME {
            if let Some(idx) = sender {
                self.slots[idx].air.invalid_transmits += 1;
            }
            return;
        }
        let ch = usize::from(channel);
        let start = self.now_us.max(self.busy_until_us[ch]);
        if start - self.now_us > self.radio.max_access_delay_us {
            self.report.access_dropped += 1;
            if let Some(idx) = sender {
                self.slots[idx].air.access_dropped += 1;
            }
            return;
        }
        let occupied = self.radio.channel_time_us(bytes.len(), dst);
        let end = start + self.radio.airtime_us(bytes.len());
        self.busy_until_us[ch] = start + occupied;

        let stats = &mut self.report.channels[ch];
        stats.frames += 1;
        stats.bytes += bytes.len() as u64;
        stats.busy_us += occupied;
        self.report.frames_on_air += 1;
        self.report.bytes_on_air += bytes.len() as u64;
        if let Some(idx) = sender {
            let air = &mut self.slots[idx].air;
            air.frames_sent += 1;
            air.bytes_sent += bytes.len() as u64;
            air.airtime_us += occupied;
        }
        if !dst.is_broadcast()
            && let Some(receivers) = self.by_addr.get(&dst)
        {
            for &r in receivers {
                self.slots[r].air.frames_addressed += 1;
                self.slots[r].air.bytes_addressed += bytes.len() as u64;
            }
        }

        self.next_tx_id += 1;
        let frame = AirFrame {
            id: self.next_tx_id,
            start_us: start,
            end_us: end,
            channel,
            src,
            dst,
            bytes,
            injected,
        };
        self.push(end, EventKind::TxEnd(Box::new(PendingTx { frame, sender })));
    }

    fn end_transmission(&mut self, tx: PendingTx) {
        let PendingTx { frame, sender } = tx;
        let verdict = match (&mut self.adversary, frame.injected) {
            (Some(adversary), false) => {
                let verdict = adversary.on_air(self.now_us, &frame);
                let mut injections = Vec::new();
                while let Some(injection) = adversary.poll_inject() {
                    injections.push(injection);
                }
                for injection in injections {
                    self.inject(injection);
                }
                verdict
            }
            _ => Verdict::Deliver,
        };
        let heard: Arc<[u8]> = match &verdict {
            Verdict::Deliver => frame.bytes.clone(),
            Verdict::Drop => {
                self.report.adversary_dropped += 1;
                self.record(frame, verdict);
                return;
            }
            Verdict::Replace(bytes) => {
                self.report.adversary_replaced += 1;
                let mut bytes = bytes.clone();
                bytes.truncate(MAX_FRAME);
                bytes.into()
            }
        };

        let mut receivers = std::mem::take(&mut self.receivers_scratch);
        receivers.clear();
        let ch = usize::from(frame.channel);
        if frame.dst.is_broadcast() {
            receivers.extend(
                self.broadcast_index[ch]
                    .iter()
                    .copied()
                    .filter(|&r| Some(r) != sender),
            );
            let is_beacon = heard.first() == Some(&zerotouch_proto::wire::MAGIC)
                && heard.get(2) == Some(&(zerotouch_proto::wire::FrameType::Beacon as u8));
            if is_beacon {
                receivers.extend(
                    self.beacon_index[ch]
                        .iter()
                        .copied()
                        .filter(|&r| Some(r) != sender),
                );
            }
        } else if let Some(addressed) = self.by_addr.get(&frame.dst) {
            receivers.extend(
                addressed
                    .iter()
                    .copied()
                    .filter(|&r| Some(r) != sender && self.slots[r].channel == frame.channel),
            );
        }
        for &r in &receivers {
            let link = if self.links.is_empty() {
                self.radio.link
            } else {
                let key = (frame.src, self.slots[r].addr);
                self.links.get(&key).copied().unwrap_or(self.radio.link)
            };
            if link.loss > 0.0 && self.random_unit() < link.loss {
                self.report.lost += 1;
                continue;
            }
            let mut delay = link.delay_us;
            if link.reorder > 0.0 && self.random_unit() < link.reorder {
                delay += self.random_below(link.reorder_max_us + 1);
            }
            self.push(
                self.now_us + delay,
                EventKind::Deliver {
                    node: r,
                    src: frame.src,
                    bytes: heard.clone(),
                },
            );
            if link.duplicate > 0.0 && self.random_unit() < link.duplicate {
                self.report.duplicated += 1;
                let extra = self.random_below(link.reorder_max_us + 1);
                self.push(
                    self.now_us + delay + extra,
                    EventKind::Deliver {
                        node: r,
                        src: frame.src,
                        bytes: heard.clone(),
                    },
                );
            }
        }
        self.receivers_scratch = receivers;
        self.record(frame, verdict);
    }

    fn record(&mut self, frame: AirFrame, verdict: Verdict) {
        if self.radio.record_frames {
            self.recorder.push(Recorded { frame, verdict });
        }
    }
}

#[cfg(test)]
mod tests {
    //! Engine tests against a trivial node, independent of the protocol.
    use super::*;
    use crate::adversary::Injection;

    /// Sends `count` frames to `peer` on `channel`, one every `interval_ms` from time 0,
    /// and logs what it receives.
    struct Beacon {
        addr: Addr,
        channel: u8,
        peer: Addr,
        next_send: Option<Instant>,
        interval_ms: u64,
        remaining: u32,
        sent: u32,
        queued: Vec<Transmit>,
        received: Vec<(Instant, Addr, Vec<u8>)>,
    }

    impl Beacon {
        fn new(id: u8, channel: u8, peer: Addr, count: u32, interval_ms: u64) -> Self {
            Self {
                addr: addr(id),
                channel,
                peer,
                next_send: (count > 0).then_some(0),
                interval_ms,
                remaining: count,
                sent: 0,
                queued: Vec::new(),
                received: Vec::new(),
            }
        }

        fn listener(id: u8, channel: u8) -> Self {
            Self::new(id, channel, Addr::BROADCAST, 0, 0)
        }
    }

    fn addr(id: u8) -> Addr {
        Addr([2, 0, 0, 0, 0, id])
    }

    impl Node for Beacon {
        fn addr(&self) -> Addr {
            self.addr
        }
        fn channel(&self) -> u8 {
            self.channel
        }
        fn handle_frame(&mut self, now: Instant, src: Addr, frame: &[u8]) {
            self.received.push((now, src, frame.to_vec()));
        }
        fn handle_timeout(&mut self, now: Instant) {
            if self.remaining == 0 {
                self.next_send = None;
                return;
            }
            let mut frame = heapless::Vec::new();
            let _ = frame.extend_from_slice(&self.sent.to_be_bytes());
            let _ = frame.extend_from_slice(&[0xab; 96]);
            self.queued.push(Transmit {
                dst: self.peer,
                channel: self.channel,
                frame,
            });
            self.sent += 1;
            self.remaining -= 1;
            self.next_send = (self.remaining > 0).then_some(now + self.interval_ms);
        }
        fn poll_transmit(&mut self) -> Option<Transmit> {
            self.queued.pop()
        }
        fn poll_timeout(&self) -> Option<Instant> {
            self.next_send
        }
        fn as_any(&self) -> &dyn Any {
            self
        }
        fn as_any_mut(&mut self) -> &mut dyn Any {
            self
        }
    }

    fn received(sim: &Simulator, id: NodeId) -> &[(Instant, Addr, Vec<u8>)] {
        sim.node_as::<Beacon>(id)
            .map(|b| b.received.as_slice())
            .unwrap_or_default()
    }

    #[test]
    fn frames_on_one_channel_are_serialized_by_airtime() {
        let mut sim = Simulator::new(RadioConfig::default(), 1);
        let rx = sim.add_node(Box::new(Beacon::listener(9, 1)));
        for id in 1..=3 {
            sim.add_node(Box::new(Beacon::new(id, 1, addr(9), 1, 10)));
        }
        sim.run_until(1000);
        let frames = sim.recorder();
        assert_eq!(frames.len(), 3);
        let airtime = sim.radio().airtime_us(100);
        let slot = sim.radio().channel_time_us(100, addr(9));
        for (i, rec) in frames.iter().enumerate() {
            assert_eq!(
                rec.frame.start_us,
                i as u64 * slot,
                "frame {i} waits for the ones before"
            );
            assert_eq!(rec.frame.end_us, rec.frame.start_us + airtime);
        }
        assert_eq!(received(&sim, rx).len(), 3);
    }

    #[test]
    fn unicast_reaches_only_the_addressee_and_broadcast_only_its_channel() {
        let mut sim = Simulator::new(RadioConfig::default(), 2);
        let target = sim.add_node(Box::new(Beacon::listener(9, 6)));
        let bystander = sim.add_node(Box::new(Beacon::listener(8, 6)));
        let other_channel = sim.add_node(Box::new(Beacon::listener(7, 11)));
        let unicaster = sim.add_node(Box::new(Beacon::new(1, 6, addr(9), 2, 5)));
        let broadcaster = sim.add_node(Box::new(Beacon::new(2, 6, Addr::BROADCAST, 3, 5)));
        sim.run_until(1000);
        assert_eq!(received(&sim, target).len(), 5);
        assert_eq!(received(&sim, bystander).len(), 3);
        assert!(received(&sim, other_channel).is_empty());
        // A sender does not hear itself.
        assert!(received(&sim, broadcaster).is_empty());
        assert_eq!(received(&sim, unicaster).len(), 3);
        assert_eq!(sim.air_stats(target).map(|a| a.frames_addressed), Some(2));
    }

    #[test]
    fn loss_rate_matches_the_link_model() {
        let radio = RadioConfig {
            link: LinkModel {
                loss: 0.3,
                ..LinkModel::default()
            },
            ..RadioConfig::default()
        };
        let mut sim = Simulator::new(radio, 3);
        let rx = sim.add_node(Box::new(Beacon::listener(9, 1)));
        sim.add_node(Box::new(Beacon::new(1, 1, addr(9), 10_000, 5)));
        sim.run_until(100_000);
        let got = received(&sim, rx).len() as f64 / 10_000.0;
        assert!((0.67..0.73).contains(&got), "delivered fraction {got}");
        assert_eq!(sim.report().lost + received(&sim, rx).len() as u64, 10_000);
    }

    #[test]
    fn per_link_override_cuts_one_direction_only() {
        let mut sim = Simulator::new(RadioConfig::default(), 4);
        let a = sim.add_node(Box::new(Beacon::new(1, 1, addr(2), 5, 10)));
        let b = sim.add_node(Box::new(Beacon::new(2, 1, addr(1), 5, 10)));
        sim.set_link(addr(1), addr(2), LinkModel::cut());
        sim.run_until(1000);
        assert!(received(&sim, b).is_empty());
        assert_eq!(received(&sim, a).len(), 5);
    }

    #[test]
    fn duplication_and_reordering_happen() {
        let link = LinkModel {
            duplicate: 0.5,
            reorder: 0.5,
            reorder_max_us: 30_000,
            ..LinkModel::default()
        };
        let mut sim = Simulator::new(
            RadioConfig {
                link,
                ..RadioConfig::default()
            },
            5,
        );
        let rx = sim.add_node(Box::new(Beacon::listener(9, 1)));
        sim.add_node(Box::new(Beacon::new(1, 1, addr(9), 200, 5)));
        sim.run_until(100_000);
        let seqs: Vec<u32> = received(&sim, rx)
            .iter()
            .map(|(_, _, f)| u32::from_be_bytes([f[0], f[1], f[2], f[3]]))
            .collect();
        assert!(seqs.len() > 200, "some frames arrive twice");
        assert!(
            seqs.windows(2).any(|w| w[1] < w[0]),
            "some frames arrive out of order"
        );
        let distinct: BTreeSet<u32> = seqs.iter().copied().collect();
        assert_eq!(distinct.len(), 200, "no loss configured");
    }

    type RunTrace = (SimReport, Vec<Recorded>, Vec<(Instant, Addr, Vec<u8>)>);

    fn lossy_run(seed: u64) -> RunTrace {
        let radio = RadioConfig {
            link: LinkModel::lossy(0.3),
            ..RadioConfig::default()
        };
        let mut sim = Simulator::new(radio, seed);
        let rx = sim.add_node(Box::new(Beacon::listener(9, 3)));
        for id in 1..=4 {
            sim.add_node(Box::new(Beacon::new(id, 3, addr(9), 50, 3)));
        }
        sim.run_until(10_000);
        let got = received(&sim, rx).to_vec();
        (sim.report(), sim.recorder().to_vec(), got)
    }

    #[test]
    fn identical_seeds_give_identical_runs() {
        let first = lossy_run(42);
        assert_eq!(first, lossy_run(42));
        assert_ne!(first.2, lossy_run(43).2, "another seed loses other frames");
    }

    struct Jammer {
        seen: u32,
    }

    impl Adversary for Jammer {
        fn on_air(&mut self, _now_us: u64, frame: &AirFrame) -> Verdict {
            self.seen += 1;
            match frame.bytes.get(3) {
                Some(0) => Verdict::Drop,
                Some(1) => Verdict::Replace(b"forged".to_vec()),
                _ => Verdict::Deliver,
            }
        }
        fn poll_inject(&mut self) -> Option<Injection> {
            (self.seen == 1).then(|| {
                self.seen += 100;
                Injection {
                    channel: 1,
                    src: addr(77),
                    dst: addr(9),
                    bytes: b"spoofed".to_vec(),
                    delay_us: 0,
                }
            })
        }
    }

    #[test]
    fn adversary_drops_replaces_and_injects() {
        let mut sim = Simulator::new(RadioConfig::default(), 6);
        let rx = sim.add_node(Box::new(Beacon::listener(9, 1)));
        sim.add_node(Box::new(Beacon::new(1, 1, addr(9), 3, 10)));
        sim.set_adversary(Box::new(Jammer { seen: 0 }));
        sim.run_until(1000);
        let got: Vec<(Addr, Vec<u8>)> = received(&sim, rx)
            .iter()
            .map(|(_, s, f)| (*s, f.clone()))
            .collect();
        assert_eq!(
            got.len(),
            3,
            "frame 0 dropped; forged, spoofed and frame 2 arrive: {got:?}"
        );
        assert_eq!(got[0], (addr(77), b"spoofed".to_vec()));
        assert_eq!(got[1], (addr(1), b"forged".to_vec()));
        assert_eq!(got[2].1[3], 2);
        let recorded = sim.recorder();
        assert_eq!(recorded.len(), 4);
        assert_eq!(recorded[0].verdict, Verdict::Drop);
        assert!(recorded[1].frame.injected);
        let report = sim.report();
        assert_eq!(
            (
                report.adversary_dropped,
                report.adversary_replaced,
                report.injected
            ),
            (1, 1, 1)
        );
    }

    #[test]
    fn a_delayed_injection_does_not_hold_the_channel_before_its_time() {
        let mut sim = Simulator::new(RadioConfig::default(), 10);
        let rx = sim.add_node(Box::new(Beacon::listener(9, 1)));
        sim.inject(Injection {
            channel: 1,
            src: addr(66),
            dst: addr(9),
            bytes: vec![0; 50],
            delay_us: 500_000,
        });
        sim.add_node(Box::new(Beacon::new(1, 1, addr(9), 1, 10)));
        sim.run_until(1000);
        let got = received(&sim, rx);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].1, addr(1), "the node's frame goes first, at once");
        assert!(got[0].0 < 10);
        assert_eq!(got[1].0, 500 + sim.radio().airtime_us(50) / 1000);
    }

    #[test]
    fn a_saturated_channel_drops_what_cannot_get_on_air_in_time() {
        let radio = RadioConfig {
            max_access_delay_us: 10_000,
            ..RadioConfig::default()
        };
        let mut sim = Simulator::new(radio, 11);
        let rx = sim.add_node(Box::new(Beacon::listener(9, 1)));
        // 40 senders at once; each frame takes ~1.6 ms of channel time.
        for id in 1..=40 {
            sim.add_node(Box::new(Beacon::new(id, 1, addr(9), 1, 10)));
        }
        sim.run_until(1000);
        let report = sim.report();
        let got = received(&sim, rx).len() as u64;
        assert_eq!(got + report.access_dropped, 40);
        assert!(
            (6..=8).contains(&got),
            "about 10 ms worth of frames got through: {got}"
        );
    }

    /// A node whose deadline never moves forward: the engine must not spin on it.
    struct Stuck;

    impl Node for Stuck {
        fn addr(&self) -> Addr {
            addr(1)
        }
        fn channel(&self) -> u8 {
            1
        }
        fn handle_frame(&mut self, _: Instant, _: Addr, _: &[u8]) {}
        fn handle_timeout(&mut self, _: Instant) {}
        fn poll_transmit(&mut self) -> Option<Transmit> {
            None
        }
        fn poll_timeout(&self) -> Option<Instant> {
            Some(5)
        }
        fn as_any(&self) -> &dyn Any {
            self
        }
        fn as_any_mut(&mut self) -> &mut dyn Any {
            self
        }
    }

    #[test]
    fn a_stale_deadline_fires_once_per_millisecond_at_most() {
        let mut sim = Simulator::new(RadioConfig::default(), 7);
        sim.add_node(Box::new(Stuck));
        sim.run_until(100);
        assert!(
            sim.report().events <= 100,
            "events: {}",
            sim.report().events
        );
    }

    #[test]
    fn invalid_transmissions_are_refused_and_counted() {
        let mut sim = Simulator::new(RadioConfig::default(), 8);
        let bad = sim.add_node(Box::new(Beacon::new(1, 14, Addr::BROADCAST, 2, 5)));
        sim.run_until(100);
        assert_eq!(sim.report().frames_on_air, 0);
        assert_eq!(sim.air_stats(bad).map(|a| a.invalid_transmits), Some(2));
    }

    #[test]
    fn progress_callback_and_run_while_stop_where_asked() {
        let mut sim = Simulator::new(RadioConfig::default(), 9);
        let rx = sim.add_node(Box::new(Beacon::listener(9, 1)));
        sim.add_node(Box::new(Beacon::new(1, 1, addr(9), 100, 10)));
        let ticks = std::rc::Rc::new(std::cell::Cell::new(0));
        let counter = ticks.clone();
        sim.set_progress(100, Box::new(move |_| counter.set(counter.get() + 1)));
        let stopped = sim.run_while(10_000, |s| received(s, rx).len() < 20);
        assert!(stopped);
        assert_eq!(received(&sim, rx).len(), 20);
        assert!(sim.now_ms() < 200);
        assert!(ticks.get() >= 1);
    }
}
