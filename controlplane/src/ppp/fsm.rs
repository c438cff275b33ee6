//! The option negotiation automaton of RFC 1661 §4, shared by LCP, IPCP and IPv6CP.
//!
//! [`Fsm`] holds the state, the Restart counter and timer, and the Max-Failure count; it turns
//! an [`FsmEvent`] into a set of [`Actions`] (RFC 1661 §4.1 state transition table) that the
//! protocol layer carries out: it builds and sends the packets (scr, sca, scn, str, sta, scj,
//! ser) and reports the layer changes (tlu, tld, tls, tlf). irc and zrc are done here. The
//! "restart" and "passive" options of §4.1 are not used; crossed connections (`x`) follow
//! the table.

use std::time::{Duration, Instant};

/// The ten states of RFC 1661 §4.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum State {
    /// 0: lower layer down, no Open.
    Initial,
    /// 1: Open issued, lower layer down.
    Starting,
    /// 2: lower layer up, no Open.
    Closed,
    /// 3: waiting for a Down event or the peer's Configure-Request after finishing.
    Stopped,
    /// 4: Terminate-Request sent after Close.
    Closing,
    /// 5: Terminate-Request sent or received, waiting to finish.
    Stopping,
    /// 6: Configure-Request sent.
    ReqSent,
    /// 7: Configure-Request sent and Configure-Ack received.
    AckRcvd,
    /// 8: Configure-Request and Configure-Ack sent.
    AckSent,
    /// 9: both Configure-Acks exchanged.
    Opened,
}

impl State {
    /// Whether the Restart timer runs in this state (RFC 1661 §4.6).
    pub const fn has_timer(self) -> bool {
        matches!(
            self,
            State::Closing | State::Stopping | State::ReqSent | State::AckRcvd | State::AckSent
        )
    }
}

/// The events of RFC 1661 §4.1. TO+ and TO- are told apart by [`Fsm::timeout`] from the
/// Restart counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FsmEvent {
    /// Lower layer is Up.
    Up,
    /// Lower layer is Down.
    Down,
    /// Administrative Open.
    Open,
    /// Administrative Close.
    Close,
    /// Timeout with counter > 0.
    TimeoutPlus,
    /// Timeout with counter expired.
    TimeoutMinus,
    /// Receive-Configure-Request, good.
    RcrPlus,
    /// Receive-Configure-Request, bad (Nak or Reject sent).
    RcrMinus,
    /// Receive-Configure-Ack.
    Rca,
    /// Receive-Configure-Nak/Rej.
    Rcn,
    /// Receive-Terminate-Request.
    Rtr,
    /// Receive-Terminate-Ack.
    Rta,
    /// Receive-Unknown-Code.
    Ruc,
    /// Receive-Code-Reject or Protocol-Reject, permitted.
    RxjPlus,
    /// Receive-Code-Reject or Protocol-Reject, catastrophic.
    RxjMinus,
    /// Receive-Echo-Request, -Reply or Discard-Request.
    Rxr,
}

/// A set of actions, carried out in the order of the constants below (which is the order the
/// RFC 1661 §4.1 table lists them in every cell).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Actions(u16);

impl Actions {
    /// This-Layer-Down.
    pub const TLD: Actions = Actions(1);
    /// This-Layer-Started.
    pub const TLS: Actions = Actions(1 << 1);
    /// Initialize-Restart-Count.
    pub const IRC: Actions = Actions(1 << 2);
    /// Zero-Restart-Count.
    pub const ZRC: Actions = Actions(1 << 3);
    /// Send-Configure-Request.
    pub const SCR: Actions = Actions(1 << 4);
    /// Send-Configure-Ack.
    pub const SCA: Actions = Actions(1 << 5);
    /// Send-Configure-Nak/Rej.
    pub const SCN: Actions = Actions(1 << 6);
    /// Send-Terminate-Request.
    pub const STR: Actions = Actions(1 << 7);
    /// Send-Terminate-Ack.
    pub const STA: Actions = Actions(1 << 8);
    /// Send-Code-Reject.
    pub const SCJ: Actions = Actions(1 << 9);
    /// Send-Echo-Reply.
    pub const SER: Actions = Actions(1 << 10);
    /// This-Layer-Up.
    pub const TLU: Actions = Actions(1 << 11);
    /// This-Layer-Finished.
    pub const TLF: Actions = Actions(1 << 12);
    /// No action.
    pub const NONE: Actions = Actions(0);

    /// Whether every action of `other` is in the set.
    pub const fn contains(self, other: Actions) -> bool {
        self.0 & other.0 == other.0 && other.0 != 0
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The layer actions only (tlu, tld, tls, tlf).
    pub const fn layer(self) -> Actions {
        Actions(self.0 & (Self::TLD.0 | Self::TLS.0 | Self::TLU.0 | Self::TLF.0))
    }
}

impl std::ops::BitOr for Actions {
    type Output = Actions;
    fn bitor(self, o: Actions) -> Actions {
        Actions(self.0 | o.0)
    }
}

impl std::ops::BitOrAssign for Actions {
    fn bitor_assign(&mut self, o: Actions) {
        self.0 |= o.0;
    }
}

/// Counters and timer of RFC 1661 §4.6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FsmConfig {
    /// The Restart timer (default 3 s).
    pub restart: Duration,
    /// Max-Terminate (default 2).
    pub max_terminate: u32,
    /// Max-Configure (default 10).
    pub max_configure: u32,
    /// Max-Failure (default 5).
    pub max_failure: u32,
}

impl Default for FsmConfig {
    fn default() -> Self {
        FsmConfig {
            restart: Duration::from_secs(3),
            max_terminate: 2,
            max_configure: 10,
            max_failure: 5,
        }
    }
}

/// One RFC 1661 automaton.
#[derive(Debug, Clone)]
pub struct Fsm {
    state: State,
    config: FsmConfig,
    restart_count: u32,
    naks_sent: u32,
    deadline: Option<Instant>,
}

impl Fsm {
    /// A new automaton in the Initial state.
    pub fn new(config: FsmConfig) -> Self {
        Fsm {
            state: State::Initial,
            config,
            restart_count: 0,
            naks_sent: 0,
            deadline: None,
        }
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// When the Restart timer expires, if it runs.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Whether a Configure-Nak may still be sent: fewer than Max-Failure were sent since the
    /// last Configure-Ack (RFC 1661 §4.6); otherwise the options must be Rejected.
    pub fn nak_allowed(&self) -> bool {
        self.naks_sent < self.config.max_failure
    }

    /// Counts a Configure-Nak sent (not a Configure-Reject).
    pub fn nak_sent(&mut self) {
        self.naks_sent = self.naks_sent.saturating_add(1);
    }

    /// Enters Opened without a negotiation: the LAC negotiated LCP for us and handed over
    /// the result (RFC 2661 §4.4.5, proxy LCP).
    pub fn force_opened(&mut self) {
        self.state = State::Opened;
        self.deadline = None;
        self.naks_sent = 0;
    }

    /// Handles an expired Restart timer, if it is due at `now`: TO+ or TO-.
    pub fn timeout(&mut self, now: Instant) -> Actions {
        match self.deadline {
            Some(d) if d <= now => {
                self.deadline = None;
                let ev = if self.restart_count > 0 {
                    FsmEvent::TimeoutPlus
                } else {
                    FsmEvent::TimeoutMinus
                };
                self.event(ev, now)
            }
            _ => Actions::NONE,
        }
    }

    /// Applies an event (RFC 1661 §4.1) and returns the actions to carry out. The Restart
    /// counter and timer are updated here: irc, zrc, and one decrement plus a timer start per
    /// scr or str.
    pub fn event(&mut self, ev: FsmEvent, now: Instant) -> Actions {
        use FsmEvent as E;
        use State::*;
        const A: Actions = Actions::NONE;
        let (tld, tls, irc, zrc, scr, sca, scn) = (
            Actions::TLD,
            Actions::TLS,
            Actions::IRC,
            Actions::ZRC,
            Actions::SCR,
            Actions::SCA,
            Actions::SCN,
        );
        let (str_, sta, scj, ser, tlu, tlf) = (
            Actions::STR,
            Actions::STA,
            Actions::SCJ,
            Actions::SER,
            Actions::TLU,
            Actions::TLF,
        );
        let s = self.state;
        let (acts, next) = match (ev, s) {
            (E::Up, Initial) => (A, Closed),
            (E::Up, Starting) => (irc | scr, ReqSent),
            (E::Up, _) => (A, s),

            (E::Down, Closed | Closing) => (A, Initial),
            (E::Down, Stopped) => (tls, Starting),
            (E::Down, Stopping | ReqSent | AckRcvd | AckSent) => (A, Starting),
            (E::Down, Opened) => (tld, Starting),
            (E::Down, _) => (A, s),

            (E::Open, Initial) => (tls, Starting),
            (E::Open, Closed) => (irc | scr, ReqSent),
            (E::Open, Closing) => (A, Stopping),
            (E::Open, _) => (A, s),

            (E::Close, Starting) => (tlf, Initial),
            (E::Close, Stopped) => (A, Closed),
            (E::Close, Stopping) => (A, Closing),
            (E::Close, ReqSent | AckRcvd | AckSent) => (irc | str_, Closing),
            (E::Close, Opened) => (tld | irc | str_, Closing),
            (E::Close, _) => (A, s),

            (E::TimeoutPlus, Closing | Stopping) => (str_, s),
            (E::TimeoutPlus, ReqSent | AckRcvd) => (scr, ReqSent),
            (E::TimeoutPlus, AckSent) => (scr, AckSent),
            (E::TimeoutMinus, Closing) => (tlf, Closed),
            (E::TimeoutMinus, Stopping | ReqSent | AckRcvd | AckSent) => (tlf, Stopped),
            (E::TimeoutPlus | E::TimeoutMinus, _) => (A, s),

            (E::RcrPlus | E::RcrMinus | E::Rca | E::Rcn | E::Rtr, Closed) => (sta, Closed),
            (E::RcrPlus, Stopped) => (irc | scr | sca, AckSent),
            (E::RcrMinus, Stopped) => (irc | scr | scn, ReqSent),
            (E::Rca | E::Rcn | E::Rtr, Stopped) => (sta, Stopped),
            (E::RcrPlus | E::RcrMinus | E::Rca | E::Rcn, Closing | Stopping) => (A, s),
            (E::Rtr, Closing | Stopping) => (sta, s),

            (E::RcrPlus, ReqSent | AckSent) => (sca, AckSent),
            (E::RcrPlus, AckRcvd) => (sca | tlu, Opened),
            (E::RcrPlus, Opened) => (tld | scr | sca, AckSent),
            (E::RcrMinus, ReqSent | AckSent) => (scn, ReqSent),
            (E::RcrMinus, AckRcvd) => (scn, AckRcvd),
            (E::RcrMinus, Opened) => (tld | scr | scn, ReqSent),

            (E::Rca, ReqSent) => (irc, AckRcvd),
            (E::Rca, AckRcvd) => (scr, ReqSent),
            (E::Rca, AckSent) => (irc | tlu, Opened),
            (E::Rca, Opened) => (tld | scr, ReqSent),

            (E::Rcn, ReqSent) => (irc | scr, ReqSent),
            (E::Rcn, AckRcvd) => (scr, ReqSent),
            (E::Rcn, AckSent) => (irc | scr, AckSent),
            (E::Rcn, Opened) => (tld | scr, ReqSent),

            (E::Rtr, ReqSent | AckRcvd | AckSent) => (sta, ReqSent),
            (E::Rtr, Opened) => (tld | zrc | sta, Stopping),

            (E::Rta, Closing) => (tlf, Closed),
            (E::Rta, Stopping) => (tlf, Stopped),
            (E::Rta, AckRcvd) => (A, ReqSent),
            (E::Rta, Opened) => (tld | scr, ReqSent),

            (E::Ruc, Initial | Starting) => (A, s),
            (E::Ruc, _) => (scj, s),

            (E::RxjMinus, Closed | Closing) => (tlf, Closed),
            (E::RxjMinus, Stopped | Stopping | ReqSent | AckRcvd | AckSent) => (tlf, Stopped),
            (E::RxjMinus, Opened) => (tld | irc | str_, Stopping),

            (E::Rxr, Opened) => (ser, Opened),

            // "-" cells (events that cannot occur there) and cells that keep the state.
            _ => (A, s),
        };
        self.state = next;
        if acts.contains(irc) {
            self.restart_count = if acts.contains(str_) {
                self.config.max_terminate
            } else {
                self.config.max_configure
            };
        }
        if acts.contains(zrc) {
            self.restart_count = 0;
            self.deadline = Some(now + self.config.restart);
        }
        if acts.contains(scr) || acts.contains(str_) {
            self.restart_count = self.restart_count.saturating_sub(1);
            self.deadline = Some(now + self.config.restart);
        }
        if acts.contains(sca) {
            self.naks_sent = 0;
        }
        if !next.has_timer() {
            self.deadline = None;
        }
        acts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fsm() -> (Fsm, Instant) {
        (Fsm::new(FsmConfig::default()), Instant::now())
    }

    #[test]
    fn normal_open() {
        let (mut f, t) = fsm();
        assert_eq!(f.event(FsmEvent::Up, t), Actions::NONE);
        assert_eq!(f.state(), State::Closed);
        assert_eq!(f.event(FsmEvent::Open, t), Actions::IRC | Actions::SCR);
        assert_eq!(f.state(), State::ReqSent);
        assert_eq!(f.deadline(), Some(t + Duration::from_secs(3)));
        assert_eq!(f.event(FsmEvent::RcrPlus, t), Actions::SCA);
        assert_eq!(f.event(FsmEvent::Rca, t), Actions::IRC | Actions::TLU);
        assert_eq!(f.state(), State::Opened);
        assert_eq!(f.deadline(), None);
        // Late renegotiation (RFC 1661 §4.1, RCR+ in state 9).
        assert_eq!(
            f.event(FsmEvent::RcrPlus, t),
            Actions::TLD | Actions::SCR | Actions::SCA
        );
        assert_eq!(f.state(), State::AckSent);
    }

    #[test]
    fn max_configure_then_tlf() {
        let (mut f, t) = fsm();
        f.event(FsmEvent::Open, t);
        assert_eq!(f.state(), State::Starting);
        f.event(FsmEvent::Up, t);
        let mut now = t;
        let mut scr = 1;
        loop {
            now += Duration::from_secs(3);
            let a = f.timeout(now);
            if a.contains(Actions::TLF) {
                break;
            }
            assert!(a.contains(Actions::SCR));
            scr += 1;
        }
        assert_eq!(scr, 10, "Max-Configure Configure-Requests");
        assert_eq!(f.state(), State::Stopped);
        assert_eq!(f.deadline(), None);
    }

    #[test]
    fn close_sends_max_terminate_requests() {
        let (mut f, t) = fsm();
        f.event(FsmEvent::Up, t);
        f.event(FsmEvent::Open, t);
        f.event(FsmEvent::RcrPlus, t);
        f.event(FsmEvent::Rca, t);
        let a = f.event(FsmEvent::Close, t);
        assert_eq!(a, Actions::TLD | Actions::IRC | Actions::STR);
        assert_eq!(f.timeout(t + Duration::from_secs(3)), Actions::STR);
        assert_eq!(f.timeout(t + Duration::from_secs(6)), Actions::TLF);
        assert_eq!(f.state(), State::Closed);
    }

    #[test]
    fn peer_terminate_waits_one_restart_period() {
        let (mut f, t) = fsm();
        f.event(FsmEvent::Up, t);
        f.event(FsmEvent::Open, t);
        f.event(FsmEvent::RcrPlus, t);
        f.event(FsmEvent::Rca, t);
        assert_eq!(
            f.event(FsmEvent::Rtr, t),
            Actions::TLD | Actions::ZRC | Actions::STA
        );
        assert_eq!(f.timeout(t), Actions::NONE, "not yet due");
        assert_eq!(f.timeout(t + Duration::from_secs(3)), Actions::TLF);
        assert_eq!(f.state(), State::Stopped);
    }

    #[test]
    fn max_failure_counts_naks_until_an_ack() {
        let (mut f, _) = fsm();
        for _ in 0..5 {
            assert!(f.nak_allowed());
            f.nak_sent();
        }
        assert!(!f.nak_allowed());
        f.event(FsmEvent::Up, Instant::now());
        f.event(FsmEvent::Open, Instant::now());
        f.event(FsmEvent::RcrPlus, Instant::now());
        assert!(f.nak_allowed());
    }
}
