//! Reliable delivery of control messages: one control channel as a sans-IO state machine.
//!
//! RFC 2661 §5.8 and RFC 3931 §4.2 put a small transport under the L2TP control connection:
//! every control message except the ZLB (and the L2TPv3 explicit ACK) takes one slot of a 16-bit
//! sequence space, is retransmitted with exponential back-off until the peer's Nr covers it, and
//! is delivered to the upper layer in order and exactly once. Like go-l2tp's `l2tp/transport.go`
//! this engine is separate from the tunnel and session state machines, but it does no I/O and
//! reads no clock: the caller
//!
//! - hands it messages to send ([`Channel::send`]: the AVP bytes, already encoded),
//! - feeds it what arrives ([`Channel::handle_incoming`]) and expired deadlines
//!   ([`Channel::handle_timeout`]), both with the current time,
//! - drains datagrams to put on the wire ([`Channel::poll_transmit`]) until it returns `None`,
//! - and sleeps until [`Channel::poll_timeout`] (one deadline per channel).
//!
//! The engine owns Ns and Nr and writes the 12-byte control header
//! ([`ControlHeader::emit`]) each time a datagram leaves, so a retransmission carries the latest
//! Nr (RFC 2661 §5.8: "the Nr value MUST be updated").
//!
//! Congestion control follows RFC 2661 Appendix A: CWND starts at 1 and SSTHRESH at the peer's
//! Receive Window Size; CWND grows by one per acknowledged message below SSTHRESH (slow start)
//! and by one per CWND acknowledged messages above it (congestion avoidance), never beyond the
//! peer's window; a retransmission timeout sets SSTHRESH = max(CWND/2, 1) and CWND = 1.
//!
//! HELLO keepalives are the tunnel layer's job; [`Channel::idle_since`] tells it when the peer
//! was last heard from.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use l2xdp_wire::l2tp::header::{ControlHeader, Version};

mod resume;

pub use self::resume::Unacked;

/// The default Receive Window Size when the peer sends no Receive Window Size AVP
/// (RFC 2661 §4.4.3, RFC 3931 §5.4.3).
pub const DEFAULT_WINDOW: u16 = 4;

/// The largest window either side may use: the half-space comparison of RFC 2661 §5.8 cannot
/// tell more than 32768 outstanding numbers apart.
pub const MAX_WINDOW: u16 = 32768;

/// Durations in the configuration are clamped to this, so that adding them to an `Instant`
/// cannot overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);

/// The largest AVP payload a control message can carry: the 16-bit Length field covers the
/// 12-byte header too (RFC 2661 §3.1, RFC 3931 §3.2.1).
pub const MAX_AVP_LEN: usize = u16::MAX as usize - ControlHeader::LEN;

/// Message Type of the L2TPv3 Explicit Acknowledgement (RFC 3931 §3.1, §6.15).
const MSG_TYPE_ACK: u16 = 20;

/// Tunables of a control channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub struct ReliableConfig {
    /// The first retransmission timeout (RFC 2661 §5.8: "a recommended default is 1 second").
    pub initial_timeout: Duration,
    /// The cap on the doubling timeout (RFC 2661 §5.8: "MUST be no less than 8 seconds").
    pub max_timeout: Duration,
    /// Retransmissions of one message before the channel fails (RFC 2661 §5.8 recommends 5,
    /// RFC 3931 §4.2 recommends 10; both say it must be configurable).
    pub max_retries: u32,
    /// How long an acknowledgement may wait for an outgoing message to ride on before a ZLB is
    /// sent for it (RFC 2661 §5.8, Appendix A).
    pub ack_delay: Duration,
    /// The Receive Window Size we advertise and hold out-of-order messages in
    /// (RFC 2661 §4.4.3); clamped to 1..=[`MAX_WINDOW`].
    pub receive_window: u16,
    /// The peer's RFC 4951 §5.1 Recovery Time, during which it may recover the tunnel. It runs
    /// from the first retransmission timeout since the peer last acknowledged anything (the
    /// start of the control channel timeout), so the channel fails at the later of "retries
    /// exhausted" and "timeout start + hold"; between the two it holds. Can also be set later
    /// with [`Channel::set_hold`].
    pub hold: Duration,
}

impl Default for ReliableConfig {
    fn default() -> Self {
        ReliableConfig {
            initial_timeout: Duration::from_secs(1),
            max_timeout: Duration::from_secs(8),
            max_retries: 5,
            ack_delay: Duration::from_millis(100),
            receive_window: DEFAULT_WINDOW,
            hold: Duration::ZERO,
        }
    }
}

/// What the channel tells the tunnel layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The next in-order control message from the peer: its Ns, the Session ID of its header
    /// (L2TPv2; always 0 for L2TPv3) and its AVP bytes (everything after the header).
    Deliver {
        ns: u16,
        session_id: u16,
        avps: Vec<u8>,
    },
    /// The peer acknowledged the message we sent with this Ns.
    Acked { ns: u16 },
    /// The last retransmission timed out and the channel now waits `hold` before it fails:
    /// what is left of the RFC 4951 §5.1 Recovery Time, which started with the first
    /// retransmission timeout. Only reported when something is left; an
    /// acknowledgement or [`Channel::reset_sequence`] during the hold revives the channel.
    Holding { hold: Duration },
    /// The peer did not acknowledge a message after every retransmission (and the hold): the
    /// tunnel and all its sessions must be cleared (RFC 2661 §5.8). The channel has stopped.
    Failed,
}

/// Why the channel refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ChannelError {
    /// The channel has failed; nothing more is sent.
    #[error("the control channel has failed")]
    Failed,
    /// The AVPs do not fit in one control message.
    #[error("control message of {len} AVP bytes exceeds the {MAX_AVP_LEN}-byte maximum")]
    TooLong { len: usize },
    /// An L2TPv2 Tunnel ID is 16 bits.
    #[error("tunnel ID {0} does not fit in an L2TPv2 header")]
    TunnelIdTooLarge(u32),
    /// A persisted sequence state whose messages do not line up with its Ns.
    #[error("sequence state inconsistent: the unacknowledged messages do not end at Ns")]
    Inconsistent,
}

/// Counters of one channel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Stats {
    /// Messages transmitted for the first time.
    pub sent: u64,
    /// Retransmissions.
    pub retransmitted: u64,
    /// Control messages handed to [`Channel::handle_incoming`], ZLBs included.
    pub received: u64,
    /// Messages delivered to the upper layer.
    pub delivered: u64,
    /// Messages received again after they had been received (and re-acknowledged).
    pub duplicates: u64,
    /// Messages that arrived early and were held for in-order delivery.
    pub reordered: u64,
    /// Messages discarded because their Ns was beyond our receive window.
    pub out_of_window: u64,
    /// Messages discarded because their Nr acknowledged something we never sent
    /// (RFC 3931 §4.2: "the control message is clearly invalid").
    pub invalid_nr: u64,
    /// ZLB acknowledgements sent.
    pub zlbs_sent: u64,
    /// ZLBs and explicit ACKs received.
    pub acks_received: u64,
    /// Retransmission timeouts that collapsed the congestion window.
    pub timeouts: u64,
}

/// Whether sequence number `a` comes before `b` in the half-space sense of RFC 2661 §5.8:
/// `b` is 1 to 32768 steps ahead of `a`, modulo 65536.
pub fn seq_before(a: u16, b: u16) -> bool {
    let d = b.wrapping_sub(a);
    d != 0 && d <= MAX_WINDOW
}

/// A message sent at least once and not yet acknowledged.
#[derive(Debug)]
struct InFlight {
    ns: u16,
    session_id: u16,
    avps: Vec<u8>,
    /// Retransmissions so far.
    retries: u32,
    /// The timeout that runs from the latest transmission.
    rto: Duration,
    /// When the latest transmission times out; meaningless while `due` is set.
    deadline: Instant,
    /// Timed out: waiting in the queue to be retransmitted by `poll_transmit`.
    due: bool,
}

/// A message queued and never sent: its Ns is assigned when it first leaves.
#[derive(Debug)]
struct Queued {
    session_id: u16,
    avps: Vec<u8>,
}

/// A received message waiting for the gap before it to fill.
#[derive(Debug, Clone)]
struct Held {
    session_id: u16,
    avps: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Active,
    /// Retries exhausted; fail at `until` (`None`: never, until revived).
    Holding {
        until: Option<Instant>,
    },
    Failed,
}

/// The reliable delivery state of one control channel (RFC 2661 §5.8, RFC 3931 §4.2).
#[derive(Debug)]
pub struct Channel {
    version: Version,
    config: ReliableConfig,
    peer_tunnel_id: u32,
    peer_window: u16,
    /// Ns of the next new message.
    next_ns: u16,
    /// Ns of the next message expected from the peer.
    nr: u16,
    cwnd: u16,
    ssthresh: u16,
    /// Acknowledged messages counted towards the next congestion-avoidance increment.
    ca_acked: u16,
    /// A timeout of a message sent before this Ns does not collapse the window again: one
    /// collapse per window of losses.
    recover: u16,
    in_flight: VecDeque<InFlight>,
    queued: VecDeque<Queued>,
    /// Slot `i` holds the message with Ns `nr + i` when it arrived early.
    reorder: VecDeque<Option<Held>>,
    /// When an acknowledgement must be sent if no message carries it first.
    ack_due: Option<Instant>,
    last_received: Option<Instant>,
    /// When the control channel timeout started: the first retransmission timeout since the
    /// peer last acknowledged anything. RFC 4951 §5.1 starts the Recovery Time here, not when
    /// the retries run out.
    timeout_started: Option<Instant>,
    state: State,
    stats: Stats,
    /// Bumped whenever what [`Channel::unacked`], [`Channel::next_ns`] or [`Channel::nr`]
    /// report changes: the tunnel layer persists the sequence state when it moved.
    generation: u64,
}

impl Channel {
    /// A fresh channel: Ns = Nr = 0, peer tunnel ID 0 (unknown until the SCCRP), peer window
    /// [`DEFAULT_WINDOW`].
    pub fn new(version: Version, config: ReliableConfig) -> Self {
        let config = ReliableConfig {
            initial_timeout: config.initial_timeout.min(MAX_DURATION),
            max_timeout: config
                .max_timeout
                .min(MAX_DURATION)
                .max(config.initial_timeout.min(MAX_DURATION)),
            ack_delay: config.ack_delay.min(MAX_DURATION),
            receive_window: config.receive_window.clamp(1, MAX_WINDOW),
            hold: config.hold.min(MAX_DURATION),
            max_retries: config.max_retries,
        };
        Channel {
            version,
            config,
            peer_tunnel_id: 0,
            peer_window: DEFAULT_WINDOW,
            next_ns: 0,
            nr: 0,
            cwnd: 1,
            ssthresh: DEFAULT_WINDOW,
            ca_acked: 0,
            recover: 0,
            in_flight: VecDeque::new(),
            queued: VecDeque::new(),
            reorder: VecDeque::new(),
            ack_due: None,
            last_received: None,
            timeout_started: None,
            state: State::Active,
            stats: Stats::default(),
            generation: 0,
        }
    }

    /// Changes whenever the sequence state ([`Channel::next_ns`], [`Channel::nr`],
    /// [`Channel::unacked`]) may have changed.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The L2TP version of the headers this channel writes.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The configuration in force (after clamping).
    pub fn config(&self) -> &ReliableConfig {
        &self.config
    }

    /// Sets the peer's Tunnel ID (L2TPv2) or Control Connection ID (L2TPv3), learnt from its
    /// Assigned Tunnel ID / Assigned Control Connection ID AVP. Later (re)transmissions use it.
    pub fn set_peer_tunnel_id(&mut self, id: u32) -> Result<(), ChannelError> {
        if self.version == Version::V2 && id > u32::from(u16::MAX) {
            return Err(ChannelError::TunnelIdTooLarge(id));
        }
        self.peer_tunnel_id = id;
        Ok(())
    }

    /// The peer's Tunnel ID / Control Connection ID written into our headers.
    pub fn peer_tunnel_id(&self) -> u32 {
        self.peer_tunnel_id
    }

    /// Sets the peer's Receive Window Size (RFC 2661 §4.4.3) from its SCCRQ or SCCRP. 0 is
    /// invalid (the message validator rejects it) and is taken as 1; values above
    /// [`MAX_WINDOW`] are clamped. SSTHRESH restarts at the window (RFC 2661 Appendix A) and
    /// CWND is capped by it.
    pub fn set_peer_window(&mut self, rws: u16) {
        self.peer_window = rws.clamp(1, MAX_WINDOW);
        self.ssthresh = self.peer_window;
        self.cwnd = self.cwnd.min(self.peer_window);
    }

    /// The peer's Receive Window Size in use.
    pub fn peer_window(&self) -> u16 {
        self.peer_window
    }

    /// Sets the hold between the last retransmission timeout and [`Event::Failed`]: the
    /// peer's RFC 4951 §5.1 Recovery Time, known from its Failover Capability AVP.
    pub fn set_hold(&mut self, hold: Duration) {
        self.config.hold = hold.min(MAX_DURATION);
    }

    /// Queues a control message; `avps` is everything after the 12-byte header, already
    /// encoded. `session_id` is the peer's Session ID for the L2TPv2 header (0 for tunnel
    /// messages; ignored for L2TPv3). Its Ns is assigned when it is first transmitted.
    pub fn send(&mut self, session_id: u16, avps: Vec<u8>) -> Result<(), ChannelError> {
        if self.state == State::Failed {
            return Err(ChannelError::Failed);
        }
        if avps.len() > MAX_AVP_LEN {
            return Err(ChannelError::TooLong { len: avps.len() });
        }
        self.queued.push_back(Queued { session_id, avps });
        self.generation = self.generation.wrapping_add(1);
        Ok(())
    }

    /// Processes a received control message whose header the caller parsed
    /// ([`ControlHeader::parse`]) and whose tunnel ID routed it here. Its Nr acknowledges our
    /// messages; a ZLB (no AVPs) or an L2TPv3 explicit ACK (RFC 3931 §6.15) does nothing more.
    /// Otherwise the message is delivered if it is the next expected, held if it is early but
    /// within our receive window, re-acknowledged if it is a duplicate (RFC 2661 §5.8), and
    /// discarded if it is beyond the window.
    pub fn handle_incoming(
        &mut self,
        header: &ControlHeader,
        avps: &[u8],
        now: Instant,
    ) -> Vec<Event> {
        let mut events = Vec::new();
        if self.state == State::Failed {
            return events;
        }
        self.stats.received += 1;
        // RFC 3931 §4.2: an Nr beyond the last Ns sent plus one is clearly invalid.
        if seq_before(self.next_ns, header.nr) {
            self.stats.invalid_nr += 1;
            return events;
        }
        self.last_received = Some(now);
        self.process_ack(header.nr, &mut events);

        if avps.is_empty() || (self.version == Version::V3 && is_explicit_ack(avps)) {
            // RFC 2661 §5.8: a ZLB takes no sequence slot; its Ns does not move our Nr.
            self.stats.acks_received += 1;
            return events;
        }

        let offset = header.ns.wrapping_sub(self.nr);
        if offset > MAX_WINDOW - 1 {
            // At or before the last received Ns: a duplicate, which MUST be acknowledged.
            self.stats.duplicates += 1;
            self.schedule_ack(now);
            return events;
        }
        if offset >= self.config.receive_window {
            self.stats.out_of_window += 1;
            return events;
        }
        let held = Held {
            session_id: header.session_id,
            avps: avps.to_vec(),
        };
        if offset == 0 {
            self.deliver(held, &mut events);
            self.reorder.pop_front();
            while let Some(Some(_)) = self.reorder.front() {
                if let Some(Some(next)) = self.reorder.pop_front() {
                    self.deliver(next, &mut events);
                }
            }
            self.schedule_ack(now);
        } else {
            let at = usize::from(offset);
            if self.reorder.len() <= at {
                self.reorder.resize(at + 1, None);
            }
            if let Some(slot) = self.reorder.get_mut(at) {
                if slot.is_some() {
                    self.stats.duplicates += 1;
                    self.schedule_ack(now);
                } else {
                    *slot = Some(held);
                    self.stats.reordered += 1;
                }
            }
        }
        events
    }

    /// Processes expired deadlines: messages whose retransmission timeout passed are queued for
    /// retransmission (collapsing the congestion window), a message out of retries starts the
    /// hold or fails the channel, and an expired hold fails it. Acknowledgements that are due
    /// need no call here: [`poll_transmit`](Self::poll_transmit) sends them.
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<Event> {
        let mut events = Vec::new();
        match self.state {
            State::Failed => return events,
            State::Holding { until } => {
                if until.is_some_and(|u| u <= now) {
                    self.fail(&mut events);
                }
                return events;
            }
            State::Active => {}
        }
        let max_retries = self.config.max_retries;
        let expired = |m: &InFlight| !m.due && m.deadline <= now;
        if self.timeout_started.is_none() {
            self.timeout_started = self
                .in_flight
                .iter()
                .filter(|m| expired(m))
                .map(|m| m.deadline)
                .min();
        }
        if self
            .in_flight
            .iter()
            .any(|m| expired(m) && m.retries >= max_retries)
        {
            // RFC 4951 §5.1: the Recovery Time runs from the start of the control channel
            // timeout; whatever is left of it once the retries are exhausted is the hold.
            let started = self.timeout_started.unwrap_or(now);
            let until = started.checked_add(self.config.hold);
            let hold = until.map_or(self.config.hold, |u| u.saturating_duration_since(now));
            if hold.is_zero() {
                self.fail(&mut events);
            } else {
                self.state = State::Holding { until };
                events.push(Event::Holding { hold });
            }
            return events;
        }
        let mut collapse = false;
        for m in self.in_flight.iter_mut().filter(|m| expired(m)) {
            m.retries += 1;
            m.rto = m.rto.saturating_mul(2).min(self.config.max_timeout);
            m.due = true;
            if !seq_before(m.ns, self.recover) {
                collapse = true;
            }
        }
        if collapse {
            // RFC 2661 Appendix A: half of CWND into SSTHRESH, CWND back to one.
            self.ssthresh = (self.cwnd / 2).max(1);
            self.cwnd = 1;
            self.ca_acked = 0;
            self.recover = self.next_ns;
            self.stats.timeouts += 1;
        }
        events
    }

    /// The next datagram to send now, header included: first retransmissions that are due,
    /// then new messages while the window allows, then a ZLB if an acknowledgement has waited
    /// [`ack_delay`](ReliableConfig::ack_delay). Call until it returns `None`.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Vec<u8>> {
        match self.state {
            State::Failed => return None,
            State::Holding { .. } => return self.poll_zlb(now),
            State::Active => {}
        }
        let deadline_after = |d: Duration| now.checked_add(d).unwrap_or(now);
        let (version, tunnel_id, nr) = (self.version, self.peer_tunnel_id, self.nr);
        if let Some(m) = self.in_flight.iter_mut().find(|m| m.due) {
            m.due = false;
            m.deadline = deadline_after(m.rto);
            let datagram = emit(header(version, tunnel_id, m.session_id, m.ns, nr), &m.avps);
            self.stats.retransmitted += 1;
            self.ack_due = None;
            return datagram;
        }
        if self.in_flight.len() < usize::from(self.window()) {
            if let Some(q) = self.queued.pop_front() {
                let ns = self.next_ns;
                self.next_ns = ns.wrapping_add(1);
                self.generation = self.generation.wrapping_add(1);
                let datagram = emit(self.header(q.session_id, ns), &q.avps);
                self.in_flight.push_back(InFlight {
                    ns,
                    session_id: q.session_id,
                    avps: q.avps,
                    retries: 0,
                    rto: self.config.initial_timeout,
                    deadline: deadline_after(self.config.initial_timeout),
                    due: false,
                });
                self.stats.sent += 1;
                self.ack_due = None;
                return datagram;
            }
        }
        self.poll_zlb(now)
    }

    /// Marks every unacknowledged message for sending again at the next
    /// [`poll_transmit`](Self::poll_transmit), without counting a timeout (the registry's
    /// answer to a retransmitted SCCRQ while the peer has acknowledged nothing). Returns how many.
    pub fn retransmit_now(&mut self) -> usize {
        if self.state != State::Active {
            return 0;
        }
        for m in &mut self.in_flight {
            m.due = true;
        }
        self.in_flight.len()
    }

    /// The one deadline of this channel: the earliest retransmission timeout, pending
    /// acknowledgement or end of hold. `None` when nothing is pending or the channel failed.
    /// Valid after [`poll_transmit`](Self::poll_transmit) has been drained.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let retransmit = match self.state {
            State::Failed => return None,
            State::Holding { until } => until,
            State::Active => self
                .in_flight
                .iter()
                .filter(|m| !m.due)
                .map(|m| m.deadline)
                .min(),
        };
        match (retransmit, self.ack_due) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// RFC 4951 §3.2.2 control channel reset: flushes the transmit and receive windows and
    /// sets Ns and Nr (to the Suggested Control Sequence, or zero without one). Messages in
    /// flight are dropped (their count is returned); messages queued but never sent are kept
    /// and numbered from `ns`. Congestion state restarts (CWND 1, SSTHRESH the peer window),
    /// and a holding or failed channel is active again.
    pub fn reset_sequence(&mut self, ns: u16, nr: u16) -> usize {
        let flushed = self.in_flight.len();
        self.in_flight.clear();
        self.reorder.clear();
        self.next_ns = ns;
        self.nr = nr;
        self.recover = ns;
        self.cwnd = 1;
        self.ssthresh = self.peer_window;
        self.ca_acked = 0;
        self.ack_due = None;
        self.timeout_started = None;
        self.state = State::Active;
        self.generation = self.generation.wrapping_add(1);
        flushed
    }

    /// When the last valid control message (ZLBs included) arrived from the peer; `None` if
    /// none has. The tunnel layer schedules HELLO from it (RFC 2661 §6.5).
    pub fn idle_since(&self) -> Option<Instant> {
        self.last_received
    }

    /// Ns of the next new message.
    pub fn next_ns(&self) -> u16 {
        self.next_ns
    }

    /// Nr: the Ns expected next from the peer.
    pub fn nr(&self) -> u16 {
        self.nr
    }

    /// The congestion window (RFC 2661 Appendix A).
    pub fn cwnd(&self) -> u16 {
        self.cwnd
    }

    /// The slow-start threshold (RFC 2661 Appendix A).
    pub fn ssthresh(&self) -> u16 {
        self.ssthresh
    }

    /// Messages sent and not yet acknowledged.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Messages queued and never sent.
    pub fn queued(&self) -> usize {
        self.queued.len()
    }

    /// Nothing queued, nothing unacknowledged: a StopCCN that was sent has been acknowledged.
    pub fn is_quiescent(&self) -> bool {
        self.in_flight.is_empty() && self.queued.is_empty()
    }

    /// Whether the retries are exhausted and the channel is in its hold.
    pub fn is_holding(&self) -> bool {
        matches!(self.state, State::Holding { .. })
    }

    /// Whether the channel has failed and stopped.
    pub fn is_failed(&self) -> bool {
        self.state == State::Failed
    }

    /// The counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// How many unacknowledged messages may be in flight: min(CWND, peer window).
    fn window(&self) -> u16 {
        self.cwnd.min(self.peer_window)
    }

    fn header(&self, session_id: u16, ns: u16) -> ControlHeader {
        header(self.version, self.peer_tunnel_id, session_id, ns, self.nr)
    }

    fn poll_zlb(&mut self, now: Instant) -> Option<Vec<u8>> {
        if self.ack_due.is_some_and(|due| due <= now) {
            self.ack_due = None;
            self.stats.zlbs_sent += 1;
            // RFC 2661 §5.8: the ZLB carries the next Ns without consuming it.
            return emit(self.header(0, self.next_ns), &[]);
        }
        None
    }

    fn schedule_ack(&mut self, now: Instant) {
        if self.ack_due.is_none() {
            self.ack_due = Some(now.checked_add(self.config.ack_delay).unwrap_or(now));
        }
    }

    fn deliver(&mut self, held: Held, events: &mut Vec<Event>) {
        events.push(Event::Deliver {
            ns: self.nr,
            session_id: held.session_id,
            avps: held.avps,
        });
        self.nr = self.nr.wrapping_add(1);
        self.stats.delivered += 1;
        self.generation = self.generation.wrapping_add(1);
    }

    /// Frees every message the peer's `nr` covers and grows the congestion window.
    fn process_ack(&mut self, nr: u16, events: &mut Vec<Event>) {
        let mut acked = false;
        while let Some(front) = self.in_flight.front() {
            if !seq_before(front.ns, nr) {
                break;
            }
            let ns = front.ns;
            self.in_flight.pop_front();
            events.push(Event::Acked { ns });
            acked = true;
            if self.cwnd < self.ssthresh {
                self.cwnd += 1;
            } else {
                self.ca_acked += 1;
                if self.ca_acked >= self.cwnd {
                    self.cwnd = self.cwnd.saturating_add(1);
                    self.ca_acked = 0;
                }
            }
            self.cwnd = self.cwnd.min(self.peer_window);
        }
        // RFC 4951 §5.1: an acknowledgement stops the recovery timer.
        if acked {
            self.timeout_started = None;
            self.generation = self.generation.wrapping_add(1);
        }
        if acked
            && matches!(self.state, State::Holding { .. })
            && self
                .in_flight
                .iter()
                .all(|m| m.retries < self.config.max_retries)
        {
            self.state = State::Active;
        }
    }

    fn fail(&mut self, events: &mut Vec<Event>) {
        self.state = State::Failed;
        self.in_flight.clear();
        self.queued.clear();
        self.reorder.clear();
        self.ack_due = None;
        events.push(Event::Failed);
    }
}

/// The control header of a datagram to the peer; L2TPv3 has no Session ID in it.
fn header(version: Version, tunnel_id: u32, session_id: u16, ns: u16, nr: u16) -> ControlHeader {
    ControlHeader {
        version,
        tunnel_id,
        session_id: match version {
            Version::V2 => session_id,
            Version::V3 => 0,
        },
        ns,
        nr,
    }
}

/// Writes a datagram: header then AVPs. `send` bounded the length and `set_peer_tunnel_id`
/// the tunnel ID, so the header cannot fail to emit; if it did, nothing is sent.
fn emit(header: ControlHeader, avps: &[u8]) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; ControlHeader::LEN + avps.len()];
    let hlen = header.emit(&mut buf, avps.len()).ok()?;
    buf.get_mut(hlen..)?.copy_from_slice(avps);
    Some(buf)
}

/// Whether the AVPs start with a Message Type AVP of 20, the L2TPv3 Explicit Acknowledgement
/// (RFC 3931 §3.1, §6.15): `|M|H|rsvd|Length|`, Vendor ID 0, Attribute Type 0, value.
fn is_explicit_ack(avps: &[u8]) -> bool {
    match avps {
        [b0, b1, 0, 0, 0, 0, t0, t1, ..] => {
            let len = u16::from_be_bytes([*b0, *b1]) & 0x03ff;
            len == 8 && u16::from_be_bytes([*t0, *t1]) == MSG_TYPE_ACK
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests;
