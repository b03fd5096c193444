//! The encrypted, ordered, reliable message channel over 250-byte frames: fragmentation,
//! per-fragment AEAD with counter nonces, selective acknowledgement and retransmission,
//! duplicate suppression. Fixed-size buffers (no allocator).
//!
//! PROTOCOL.md §4.4-4.6. Rules that make it simple and safe:
//! - every fragment but the last of a message carries exactly [`MAX_FRAGMENT`] bytes, so a
//!   fragment's place in the message follows from its seq and out-of-order fragments go
//!   straight into the reassembly buffer;
//! - a sender starts a message only when the previous one is fully acknowledged;
//! - a Data frame is sealed once and retransmitted byte for byte (a nonce never protects two
//!   different AADs); fresh acknowledgement state travels in Ack frames, whose counter
//!   strictly increases;
//! - sequence numbers and ack counters never wrap: a session that would need more than
//!   65 535 of either fails (the largest message needs 38 fragments).

use heapless::{Deque, Vec};
use zeroize::Zeroize;

use crate::crypto::{AeadKey, NONCE_KIND_ACK, NONCE_KIND_DATA, TAG_LEN};
use crate::suite::SuiteId;
use crate::wire::{
    self, ACK_LEN, CHANNEL_HEADER_LEN, ChannelHeader, FLAG_END, FrameType, MAX_FRAGMENT,
};
use crate::{Instant, MAX_FRAME};

/// Fragments in flight (sent, not yet acknowledged) per direction.
pub const WINDOW: usize = 8;
/// Peer fragments beyond the cumulative ack that the SACK bitmap can describe.
pub const SACK_BITS: u16 = 16;

/// One frame's bytes.
pub type FrameBuf = Vec<u8, MAX_FRAME>;

/// Why the channel refused an operation or gave up.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ChannelError {
    /// A message does not fit the buffer (sender: [`Channel::send`]; receiver: a fragment
    /// would land beyond the reassembly buffer).
    TooLarge,
    /// The previous message is not fully acknowledged yet.
    Busy,
    /// A fragment was retransmitted `max_retries` times without acknowledgement.
    RetriesExhausted,
    /// Sequence or ack-counter space is used up.
    Exhausted,
    /// The frame is not for this session or failed authentication (drop it).
    Rejected,
}

/// Retransmission and acknowledgement timers of one channel.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ChannelTiming {
    /// First retransmission timeout.
    pub rto_initial_ms: u64,
    /// RTO cap (the RTO doubles on every timeout).
    pub rto_max_ms: u64,
    /// Timeouts without progress before giving up.
    pub max_retries: u8,
    /// How long an acknowledgement may wait for a Data frame to ride on.
    pub ack_delay_ms: u64,
}

struct InFlight {
    seq: u16,
    frame: FrameBuf,
    sacked: bool,
    resend: bool,
}

/// What a received Data frame did.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct DataOutcome {
    /// A whole message is now available in [`Channel::message`].
    pub message_complete: bool,
    /// The fragment had been received before.
    pub duplicate: bool,
}

/// One session's channel. `RX` = reassembly buffer size, `TX` = largest message sent.
pub struct Channel<const RX: usize, const TX: usize> {
    suite: SuiteId,
    sid: u32,
    tx_key: AeadKey,
    rx_key: AeadKey,
    timing: ChannelTiming,
    // Sender.
    tx_msg: Vec<u8, TX>,
    tx_offset: usize,
    tx_msg_start: u16,
    next_seq: u32,
    snd_una: u32,
    in_flight: Deque<InFlight, WINDOW>,
    rto_deadline: Option<Instant>,
    rto_ms: u64,
    retries: u8,
    next_ack_counter: u32,
    // Receiver.
    rx_buf: [u8; RX],
    rcv_next: u16,
    rx_msg_start: u16,
    rx_sack: u16,
    rx_end: Option<(u16, usize)>,
    rx_complete: Option<usize>,
    last_peer_ack_counter: Option<u16>,
    ack_due: Option<Instant>,
    unacked: u8,
    auto_ack: bool,
    /// Keep the completed message (see [`Channel::hold_message`]).
    hold: bool,
    /// A short message received while holding.
    rx_side: Vec<u8, HELD_SIDE_MESSAGE_LEN>,
}

/// Longest message a channel accepts while it holds a completed one (an Abort is 2 bytes).
pub const HELD_SIDE_MESSAGE_LEN: usize = 16;

impl<const RX: usize, const TX: usize> Drop for Channel<RX, TX> {
    fn drop(&mut self) {
        // The buffers hold credentials.
        self.rx_buf.zeroize();
        self.tx_msg.as_mut_slice().zeroize();
    }
}

impl<const RX: usize, const TX: usize> Channel<RX, TX> {
    /// A channel for session `sid`, sending under `tx_key`, receiving under `rx_key`.
    pub fn new(
        suite: SuiteId,
        sid: u32,
        tx_key: AeadKey,
        rx_key: AeadKey,
        timing: ChannelTiming,
    ) -> Self {
        Channel {
            suite,
            sid,
            tx_key,
            rx_key,
            timing,
            tx_msg: Vec::new(),
            tx_offset: 0,
            tx_msg_start: 0,
            next_seq: 0,
            snd_una: 0,
            in_flight: Deque::new(),
            rto_deadline: None,
            rto_ms: timing.rto_initial_ms,
            retries: 0,
            next_ack_counter: 0,
            rx_buf: [0; RX],
            rcv_next: 0,
            rx_msg_start: 0,
            rx_sack: 0,
            rx_end: None,
            rx_complete: None,
            last_peer_ack_counter: None,
            ack_due: None,
            unacked: 0,
            auto_ack: true,
            hold: false,
            rx_side: Vec::new(),
        }
    }

    /// Re-initialises the channel in place for a new session: the same result as
    /// [`Channel::new`], without building a value of `RX + TX` bytes on the stack (the
    /// enrollee's channel is ~4 KiB). The previous session's buffers are wiped.
    pub fn reset(
        &mut self,
        suite: SuiteId,
        sid: u32,
        tx_key: AeadKey,
        rx_key: AeadKey,
        timing: ChannelTiming,
    ) {
        self.wipe();
        self.suite = suite;
        self.sid = sid;
        self.tx_key = tx_key;
        self.rx_key = rx_key;
        self.timing = timing;
        self.tx_offset = 0;
        self.tx_msg_start = 0;
        self.next_seq = 0;
        self.snd_una = 0;
        self.rto_deadline = None;
        self.rto_ms = timing.rto_initial_ms;
        self.retries = 0;
        self.next_ack_counter = 0;
        self.rcv_next = 0;
        self.rx_msg_start = 0;
        self.rx_sack = 0;
        self.rx_end = None;
        self.rx_complete = None;
        self.last_peer_ack_counter = None;
        self.ack_due = None;
        self.unacked = 0;
        self.auto_ack = true;
    }

    /// Erases the keys, the message buffers and the frames in flight. The keys become
    /// placeholders: the owner must not feed the channel frames again before
    /// [`Channel::reset`] (the enrollee only does while its session is active).
    pub fn wipe(&mut self) {
        self.hold = false;
        self.rx_side.as_mut_slice().zeroize();
        self.rx_side.clear();
        self.rx_buf.zeroize();
        self.tx_msg.as_mut_slice().zeroize();
        self.tx_msg.clear();
        self.tx_offset = 0;
        self.rx_complete = None;
        self.rx_end = None;
        while let Some(mut f) = self.in_flight.pop_front() {
            f.frame.as_mut_slice().zeroize();
        }
        self.rto_deadline = None;
        self.ack_due = None;
        self.tx_key = AeadKey::placeholder(self.suite);
        self.rx_key = AeadKey::placeholder(self.suite);
    }

    /// Whether received fragments schedule Ack frames by themselves (default true). The
    /// configurator turns it off to hold the acknowledgement of a join report until the
    /// driver persisted it.
    pub fn set_auto_ack(&mut self, on: bool) {
        self.auto_ack = on;
        if !on {
            self.ack_due = None;
        }
    }

    /// Queues `msg` for sending. Fails if the previous message is not fully acknowledged.
    pub fn send(&mut self, now: Instant, msg: &[u8]) -> Result<(), ChannelError> {
        if !self.tx_idle() {
            return Err(ChannelError::Busy);
        }
        if msg.is_empty() {
            return Err(ChannelError::TooLarge);
        }
        let frags = msg.len().div_ceil(MAX_FRAGMENT) as u32;
        if self.next_seq + frags > u32::from(u16::MAX) {
            return Err(ChannelError::Exhausted);
        }
        self.tx_msg.as_mut_slice().zeroize();
        self.tx_msg.clear();
        self.tx_msg
            .extend_from_slice(msg)
            .map_err(|_| ChannelError::TooLarge)?;
        self.tx_offset = 0;
        self.tx_msg_start = self.next_seq as u16;
        let _ = now;
        Ok(())
    }

    /// True when everything sent has been acknowledged.
    pub fn tx_idle(&self) -> bool {
        self.in_flight.is_empty() && self.tx_offset >= self.tx_msg.len()
    }

    /// Sequence number one past the last fragment sent (for "is my message acked" checks).
    pub fn next_seq(&self) -> u16 {
        self.next_seq as u16
    }

    /// The completed received message, if any (until the next message starts arriving,
    /// unless it is held).
    pub fn message(&self) -> Option<&[u8]> {
        self.rx_complete.map(|len| &self.rx_buf[..len])
    }

    /// Keeps the completed message in [`Channel::message`] until [`Channel::reset`]: later
    /// messages never overwrite it. Only single-fragment messages of at most
    /// [`HELD_SIDE_MESSAGE_LEN`] bytes are accepted next to it (in order, each replacing the
    /// previous one in [`Channel::side_message`]); anything else is rejected. The enrollee
    /// holds a validated Config this way, so that only an Abort can follow it.
    pub fn hold_message(&mut self) {
        self.hold = self.rx_complete.is_some();
    }

    /// The latest short message received while holding (see [`Channel::hold_message`]).
    pub fn side_message(&self) -> Option<&[u8]> {
        (self.hold && !self.rx_side.is_empty()).then_some(self.rx_side.as_slice())
    }

    /// Whether the completed message is held.
    pub fn is_holding(&self) -> bool {
        self.hold
    }

    /// Sequence number of the next fragment expected from the peer: 0 until the first
    /// received fragment is in order (e.g. "has the peer sent anything yet").
    pub fn rcv_next(&self) -> u16 {
        self.rcv_next
    }

    /// Sequence number one past the last of our fragments the peer acknowledged
    /// cumulatively (it only grows: a change means the peer made progress).
    pub fn acked_seq(&self) -> u16 {
        self.snd_una as u16
    }

    /// The session id.
    pub fn sid(&self) -> u32 {
        self.sid
    }

    fn process_ack(&mut self, now: Instant, ack: u16, sack: u16) {
        let ack = u32::from(ack);
        if ack < self.snd_una || ack > self.next_seq {
            return; // stale or impossible: ignore
        }
        let progressed = ack > self.snd_una;
        while let Some(front) = self.in_flight.front() {
            if u32::from(front.seq) < ack {
                self.in_flight.pop_front();
            } else {
                break;
            }
        }
        self.snd_una = ack;
        for f in self.in_flight.iter_mut() {
            let off = u32::from(f.seq) - ack; // >= 0: the front was removed above
            if off >= 1 && off <= u32::from(SACK_BITS) && sack & (1 << (off - 1)) != 0 {
                f.sacked = true;
                f.resend = false;
            }
        }
        if progressed {
            self.retries = 0;
            self.rto_ms = self.timing.rto_initial_ms;
            self.rto_deadline = if self.in_flight.is_empty() {
                None
            } else {
                Some(now.saturating_add(self.rto_ms))
            };
        }
    }

    fn check_header(&self, h: &ChannelHeader) -> Result<(), ChannelError> {
        if h.sid != self.sid || h.suite != self.suite {
            return Err(ChannelError::Rejected);
        }
        Ok(())
    }

    /// Handles an Ack frame of this session. Returns its flags.
    pub fn handle_ack(&mut self, now: Instant, frame: &[u8]) -> Result<u8, ChannelError> {
        let view = wire::Ack::new_checked(frame).map_err(|_| ChannelError::Rejected)?;
        let h = view.header();
        self.check_header(&h)?;
        // Strictly increasing; 65 535 is never used (PROTOCOL.md §4.4).
        if h.seq == u16::MAX || self.last_peer_ack_counter.is_some_and(|last| h.seq <= last) {
            return Err(ChannelError::Rejected);
        }
        let nonce = self.rx_key.nonce(NONCE_KIND_ACK, h.seq);
        self.rx_key
            .open(&nonce, view.aad(), &mut [], &view.tag())
            .map_err(|_| ChannelError::Rejected)?;
        self.last_peer_ack_counter = Some(h.seq);
        self.process_ack(now, h.ack, h.sack);
        Ok(h.flags)
    }

    /// Handles a Data frame of this session: authenticates it, takes its acknowledgement
    /// state, stores the fragment.
    pub fn handle_data(&mut self, now: Instant, frame: &[u8]) -> Result<DataOutcome, ChannelError> {
        let view = wire::Data::new_checked(frame).map_err(|_| ChannelError::Rejected)?;
        let h = view.header();
        self.check_header(&h)?;
        let ahead = i32::from(h.seq) - i32::from(self.rcv_next);
        if ahead > i32::from(SACK_BITS) || h.seq == u16::MAX {
            return Err(ChannelError::Rejected); // beyond what we could acknowledge: peer resends
        }
        let mut frag = [0u8; MAX_FRAGMENT];
        let n = view.ciphertext().len();
        frag[..n].copy_from_slice(view.ciphertext());
        let nonce = self.rx_key.nonce(NONCE_KIND_DATA, h.seq);
        let opened = self
            .rx_key
            .open(&nonce, view.aad(), &mut frag[..n], &view.tag());
        if opened.is_err() {
            frag.zeroize();
            return Err(ChannelError::Rejected);
        }
        self.process_ack(now, h.ack, h.sack);
        let mut outcome = DataOutcome::default();
        let already = ahead < 0 || (ahead > 0 && self.rx_sack & (1 << (ahead - 1)) != 0);
        if already {
            outcome.duplicate = true;
            self.schedule_ack(now, true);
            frag.zeroize();
            return Ok(outcome);
        }
        let end = h.flags & FLAG_END != 0;
        if self.hold {
            // Keep the held message: accept only a short single-fragment message, in order.
            let fits =
                end && ahead == 0 && h.seq == self.rx_msg_start && n <= HELD_SIDE_MESSAGE_LEN;
            if fits {
                self.rx_side.as_mut_slice().zeroize();
                self.rx_side.clear();
                let _ = self.rx_side.extend_from_slice(&frag[..n]);
            }
            frag.zeroize();
            if !fits {
                return Err(ChannelError::Rejected);
            }
            self.rcv_next += 1;
            self.rx_msg_start = self.rcv_next;
            self.unacked = self.unacked.saturating_add(1);
            self.schedule_ack(now, true);
            outcome.message_complete = true;
            return Ok(outcome);
        }
        if self.rx_complete.is_some() {
            // A new message begins: the previous one is released.
            self.rx_complete = None;
        }
        let result = self.place_fragment(h.seq, end, &frag[..n]);
        frag.zeroize();
        result?;
        if ahead == 0 {
            self.rcv_next += 1;
            while self.rx_sack & 1 != 0 {
                self.rx_sack >>= 1;
                self.rcv_next += 1;
            }
            self.rx_sack >>= 1;
            self.unacked = self.unacked.saturating_add(1);
            self.schedule_ack(now, usize::from(self.unacked) >= WINDOW / 2);
        } else {
            self.rx_sack |= 1 << (ahead - 1);
            self.schedule_ack(now, true);
        }
        if let Some((end_seq, len)) = self.rx_end
            && self.rcv_next > end_seq
        {
            self.rx_complete = Some(len);
            self.rx_end = None;
            self.rx_msg_start = end_seq + 1;
            outcome.message_complete = true;
            // The receiver may act on it for a long time (an enrollee's join leaves the
            // channel): acknowledge it now rather than after the delayed-ack time.
            self.schedule_ack(now, true);
        }
        Ok(outcome)
    }

    fn place_fragment(&mut self, seq: u16, end: bool, frag: &[u8]) -> Result<(), ChannelError> {
        let index = usize::from(seq - self.rx_msg_start.min(seq));
        if seq < self.rx_msg_start {
            return Err(ChannelError::Rejected);
        }
        if let Some((end_seq, _)) = self.rx_end
            && (seq > end_seq || (end && seq != end_seq))
        {
            return Err(ChannelError::Rejected);
        }
        if !end && frag.len() != MAX_FRAGMENT {
            return Err(ChannelError::Rejected); // non-canonical fragmentation
        }
        let offset = index * MAX_FRAGMENT;
        let stop = offset + frag.len();
        if stop > RX {
            return Err(ChannelError::TooLarge);
        }
        self.rx_buf[offset..stop].copy_from_slice(frag);
        if end {
            self.rx_end = Some((seq, stop));
        }
        Ok(())
    }

    fn schedule_ack(&mut self, now: Instant, immediately: bool) {
        if !self.auto_ack {
            return;
        }
        let at = if immediately {
            now
        } else {
            now.saturating_add(self.timing.ack_delay_ms)
        };
        self.ack_due = Some(self.ack_due.map_or(at, |d| d.min(at)));
    }

    /// Requests an Ack frame now (optionally with flags), e.g. the final COMPLETE.
    pub fn force_ack(&mut self, now: Instant, flags: u8) -> Result<FrameBuf, ChannelError> {
        self.ack_due = None;
        let _ = now;
        self.build_ack(flags)
    }

    fn build_ack(&mut self, flags: u8) -> Result<FrameBuf, ChannelError> {
        // Counter 65 535 is never used (PROTOCOL.md §4.4), like seq.
        if self.next_ack_counter >= u32::from(u16::MAX) {
            return Err(ChannelError::Exhausted);
        }
        let counter = self.next_ack_counter as u16;
        self.next_ack_counter += 1;
        let h = ChannelHeader {
            frame_type: FrameType::Ack,
            suite: self.suite,
            sid: self.sid,
            seq: counter,
            ack: self.rcv_next,
            sack: self.rx_sack,
            flags,
        };
        let mut buf = [0u8; ACK_LEN];
        h.emit(&mut buf).map_err(|_| ChannelError::Rejected)?;
        let nonce = self.tx_key.nonce(NONCE_KIND_ACK, counter);
        let tag = self
            .tx_key
            .seal(&nonce, &buf[..CHANNEL_HEADER_LEN], &mut [])
            .map_err(|_| ChannelError::Rejected)?;
        buf[CHANNEL_HEADER_LEN..].copy_from_slice(&tag);
        self.unacked = 0;
        Vec::from_slice(&buf).map_err(|_| ChannelError::Rejected)
    }

    /// The next frame to send: retransmissions first, then new fragments (window
    /// permitting), then a due acknowledgement. The flag says "retransmission".
    pub fn poll_transmit(&mut self, now: Instant) -> Option<(FrameBuf, bool)> {
        if let Some(f) = self.in_flight.iter_mut().find(|f| f.resend) {
            f.resend = false;
            return Some((f.frame.clone(), true));
        }
        if self.tx_offset < self.tx_msg.len() && self.in_flight.len() < WINDOW {
            return self.next_fragment(now).map(|f| (f, false));
        }
        if self.ack_due.is_some_and(|d| d <= now) {
            self.ack_due = None;
            return self.build_ack(0).ok().map(|f| (f, false));
        }
        None
    }

    fn next_fragment(&mut self, now: Instant) -> Option<FrameBuf> {
        let seq = self.next_seq as u16;
        let start = self.tx_offset;
        let n = (self.tx_msg.len() - start).min(MAX_FRAGMENT);
        let end = start + n == self.tx_msg.len();
        let h = ChannelHeader {
            frame_type: FrameType::Data,
            suite: self.suite,
            sid: self.sid,
            seq,
            ack: self.rcv_next,
            sack: self.rx_sack,
            flags: if end { FLAG_END } else { 0 },
        };
        let total = CHANNEL_HEADER_LEN + n + TAG_LEN;
        let mut buf = [0u8; MAX_FRAME];
        h.emit(&mut buf).ok()?;
        buf[CHANNEL_HEADER_LEN..CHANNEL_HEADER_LEN + n]
            .copy_from_slice(&self.tx_msg[start..start + n]);
        let nonce = self.tx_key.nonce(NONCE_KIND_DATA, seq);
        let (aad, body) = buf.split_at_mut(CHANNEL_HEADER_LEN);
        let tag = self.tx_key.seal(&nonce, aad, &mut body[..n]).ok()?;
        buf[CHANNEL_HEADER_LEN + n..total].copy_from_slice(&tag);
        let frame = FrameBuf::from_slice(&buf[..total]).ok()?;
        self.in_flight
            .push_back(InFlight {
                seq,
                frame: frame.clone(),
                sacked: false,
                resend: false,
            })
            .ok()?;
        self.tx_offset += n;
        self.next_seq += 1;
        // The Data frame carries our acknowledgement state: no separate Ack needed.
        self.ack_due = None;
        self.unacked = 0;
        if self.rto_deadline.is_none() {
            self.rto_deadline = Some(now.saturating_add(self.rto_ms));
        }
        Some(frame)
    }

    /// The next instant [`Channel::handle_timeout`] must run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.rto_deadline, self.ack_due) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Runs the timers: marks unacknowledged fragments for retransmission on RTO.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), ChannelError> {
        if let Some(deadline) = self.rto_deadline
            && now >= deadline
        {
            if self.retries >= self.timing.max_retries {
                self.rto_deadline = None;
                return Err(ChannelError::RetriesExhausted);
            }
            self.retries += 1;
            self.rto_ms = self.rto_ms.saturating_mul(2).min(self.timing.rto_max_ms);
            for f in self.in_flight.iter_mut().filter(|f| !f.sacked) {
                f.resend = true;
            }
            self.rto_deadline = Some(now.saturating_add(self.rto_ms));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Prk;

    const TIMING: ChannelTiming = ChannelTiming {
        rto_initial_ms: 100,
        rto_max_ms: 800,
        max_retries: 3,
        ack_delay_ms: 40,
    };

    fn pair() -> (Channel<4096, 4096>, Channel<4096, 4096>) {
        let prk = Prk::extract(b"salt", b"ikm");
        let key = |l: &[u8]| AeadKey::derive(SuiteId::Ed25519, &prk, l, b"iv", &[1; 32]);
        let a = Channel::new(SuiteId::Ed25519, 9, key(b"a"), key(b"b"), TIMING);
        let b = Channel::new(SuiteId::Ed25519, 9, key(b"b"), key(b"a"), TIMING);
        (a, b)
    }

    fn drain(c: &mut Channel<4096, 4096>, now: Instant) -> std::vec::Vec<(FrameBuf, bool)> {
        core::iter::from_fn(|| c.poll_transmit(now)).collect()
    }

    extern crate std;

    #[test]
    fn reassembles_out_of_order_and_resends_byte_identical_frames() {
        let (mut a, mut b) = pair();
        let msg: std::vec::Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
        a.send(0, &msg).unwrap();
        assert_eq!(a.send(0, b"x"), Err(ChannelError::Busy));
        let frames = drain(&mut a, 0);
        assert_eq!(frames.len(), 5); // 4 x 219 + 124
        assert!(frames[..4].iter().all(|(f, _)| f.len() == MAX_FRAME));
        // Deliver in reverse, dropping fragment 1.
        for (i, (f, _)) in frames.iter().enumerate().rev() {
            if i != 1 {
                assert!(!b.handle_data(1, f).unwrap().message_complete);
            }
        }
        assert!(b.message().is_none());
        let acks = drain(&mut b, 1);
        assert_eq!(acks.len(), 1);
        a.handle_ack(2, &acks[0].0).unwrap();
        // Only fragment 1 is outstanding after the SACK; on RTO it is resent byte for byte.
        let rto = a.poll_timeout().unwrap();
        a.handle_timeout(rto).unwrap();
        let resent = drain(&mut a, rto);
        assert_eq!(resent.len(), 1);
        assert_eq!(resent[0], (frames[1].0.clone(), true));
        assert!(b.handle_data(101, &resent[0].0).unwrap().message_complete);
        assert_eq!(b.message(), Some(&msg[..]));
        // A duplicate is reported, acknowledged at once, and not re-delivered.
        assert!(b.handle_data(102, &frames[0].0).unwrap().duplicate);
        let ack = drain(&mut b, 102);
        a.handle_ack(103, &ack[0].0).unwrap();
        assert!(a.tx_idle());
        // Replaying an older Ack (lower counter) is refused.
        assert_eq!(a.handle_ack(104, &acks[0].0), Err(ChannelError::Rejected));
    }

    #[test]
    fn a_held_message_is_never_overwritten_and_only_short_messages_follow_it() {
        let (mut a, mut b) = pair();
        let config: std::vec::Vec<u8> = (0..500u32).map(|i| i as u8).collect();
        a.send(0, &config).unwrap();
        for (f, _) in drain(&mut a, 0) {
            b.handle_data(1, &f).unwrap();
        }
        assert_eq!(b.message(), Some(&config[..]));
        b.hold_message();
        let ack = b.force_ack(1, 0).unwrap();
        a.handle_ack(2, &ack).unwrap();
        // A second long message is refused fragment by fragment; the held one stays.
        a.send(3, &[7; 300]).unwrap();
        for (f, _) in drain(&mut a, 3) {
            assert_eq!(b.handle_data(4, &f), Err(ChannelError::Rejected));
        }
        assert_eq!(b.message(), Some(&config[..]));
        assert_eq!(b.side_message(), None);
        // A short message (an Abort) arrives on the side, still without touching it.
        let (mut a, mut b) = pair();
        a.send(0, &config).unwrap();
        for (f, _) in drain(&mut a, 0) {
            b.handle_data(1, &f).unwrap();
        }
        b.hold_message();
        let ack = b.force_ack(1, 0).unwrap();
        a.handle_ack(2, &ack).unwrap();
        a.send(3, &[9, 1]).unwrap();
        let f = drain(&mut a, 3).remove(0).0;
        assert!(b.handle_data(4, &f).unwrap().message_complete);
        assert_eq!(b.side_message(), Some(&[9, 1][..]));
        assert_eq!(b.message(), Some(&config[..]));
        // Its duplicate is acknowledged and not re-delivered.
        assert!(b.handle_data(5, &f).unwrap().duplicate);
    }

    #[test]
    fn ack_counter_65535_is_never_used() {
        let (mut a, mut b) = pair();
        b.next_ack_counter = u32::from(u16::MAX) - 1;
        let last = b.force_ack(0, 0).unwrap();
        assert_eq!(&last[8..10], &[0xff, 0xfe]);
        a.handle_ack(0, &last).unwrap();
        assert_eq!(b.force_ack(0, 0), Err(ChannelError::Exhausted));
    }

    #[test]
    fn gives_up_after_max_retries_and_rejects_tampering() {
        let (mut a, mut b) = pair();
        a.send(0, b"status").unwrap();
        let f = drain(&mut a, 0).remove(0).0;
        let mut bad = f.clone();
        bad[20] ^= 1;
        assert_eq!(b.handle_data(0, &bad), Err(ChannelError::Rejected));
        let mut now = 0;
        let mut outcome = Ok(());
        for _ in 0..10 {
            now = a.poll_timeout().unwrap();
            outcome = a.handle_timeout(now);
            if outcome.is_err() {
                break;
            }
            drain(&mut a, now);
        }
        assert_eq!(outcome, Err(ChannelError::RetriesExhausted));
        assert!(now >= 100 + 200 + 400);
    }
}
