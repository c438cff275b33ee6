//! The generic control-protocol driver: runs an [`Fsm`] for one of LCP, IPCP, IPv6CP, turns
//! received packets into RFC 1661 §4.1 events and carries out the actions with packets built by
//! the wire crate. What differs per protocol (which options to request, how to judge the
//! peer's) is a [`Negotiator`].

use std::collections::VecDeque;
use std::fmt::Debug;
use std::time::Instant;

use l2xdp_wire::ppp::{CpBody, CpOption, CpRepr, FrameRepr, PppBody, PppPacket};

use super::fsm::{Actions, Fsm, FsmConfig, FsmEvent, State};
use super::{Counters, DownReason};

/// The most frames a link queues before the caller drains them; more are dropped and counted.
const MAX_QUEUED: usize = 64;

/// The answer to a peer's Configure-Request (RFC 1661 §5.2-§5.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict<O> {
    Ack,
    Nak(Vec<O>),
    Reject(Vec<O>),
}

/// What a control protocol decides about its options.
pub(crate) trait Negotiator {
    type Opt: CpOption + Clone + PartialEq + Debug;
    /// The options of our next Configure-Request.
    fn request(&mut self) -> Vec<Self::Opt>;
    /// Judges the peer's Configure-Request; `nak_allowed` is false after Max-Failure Naks
    /// (Reject instead). An error closes the link.
    fn check(
        &mut self,
        req: &[Self::Opt],
        nak_allowed: bool,
    ) -> Result<Verdict<Self::Opt>, DownReason>;
    /// We are sending a Configure-Ack for the peer's `req`: its values are now in effect.
    fn peer_acked(&mut self, req: &[Self::Opt]);
    /// The peer acknowledged our request `opts`.
    fn acked(&mut self, opts: &[Self::Opt]);
    /// The peer Nak'ed `opts` of our request.
    fn naked(&mut self, opts: &[Self::Opt]) -> Result<(), DownReason>;
    /// The peer Rejected `opts` of our request.
    fn rejected(&mut self, opts: &[Self::Opt]) -> Result<(), DownReason>;
}

/// Frames waiting to be sent and the link's counters, shared by the protocols of one link.
#[derive(Debug, Default)]
pub(crate) struct Io {
    pub frames: VecDeque<Vec<u8>>,
    pub counters: Counters,
    /// The peer's MRU: Code-Reject and Protocol-Reject contents are cut to fit it.
    pub peer_mru: u16,
}

impl Io {
    /// Queues a control packet of protocol `O::PROTOCOL`, always with full framing.
    pub fn send<O: CpOption>(&mut self, pkt: &CpRepr<O>) {
        let framing = FrameRepr::full(O::PROTOCOL);
        let mut buf = vec![0u8; framing.header_len() + pkt.emit_len()];
        let ok = framing
            .emit(&mut buf)
            .and_then(|h| pkt.emit(&mut buf[h..]))
            .is_ok();
        if ok {
            self.push(buf);
        } else {
            self.counters.emit_errors += 1;
        }
    }

    /// Queues a PAP or CHAP (or any control) packet with full framing.
    pub fn send_body(&mut self, body: PppBody) {
        let pkt = PppPacket {
            frame: FrameRepr::full(body.protocol()),
            body,
        };
        let mut buf = vec![0u8; pkt.emit_len()];
        if pkt.emit(&mut buf).is_ok() {
            self.push(buf);
        } else {
            self.counters.emit_errors += 1;
        }
    }

    /// Queues a whole frame.
    pub fn push(&mut self, frame: Vec<u8>) {
        if self.frames.len() >= MAX_QUEUED {
            self.counters.tx_dropped += 1;
            return;
        }
        self.frames.push_back(frame);
    }

    /// The most bytes of a rejected packet that fit the peer's MRU after `overhead` bytes.
    pub fn reject_room(&self, overhead: usize) -> usize {
        usize::from(self.peer_mru.max(64)).saturating_sub(overhead)
    }
}

/// What a control protocol reports to its link after an input.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    /// tlu, tld, tls, tlf.
    pub layer: Actions,
    /// The link must close.
    pub fail: Option<DownReason>,
}

impl Outcome {
    fn fail(reason: DownReason) -> Self {
        Outcome {
            layer: Actions::NONE,
            fail: Some(reason),
        }
    }
}

/// One control protocol: the automaton, its negotiator, the Identifier and options of our
/// last Configure-Request.
#[derive(Debug)]
pub(crate) struct Cp<N: Negotiator> {
    pub fsm: Fsm,
    pub neg: N,
    id: u8,
    /// Identifier of Code-Rejects (never the Configure-Request's, whose replies we match).
    reject_id: u8,
    /// Boxed slices, not vectors: kept for the link's life, so without spare capacity.
    last_req: Box<[N::Opt]>,
    /// Identifier and options of the peer's request we last acknowledged.
    last_acked: Option<(u8, Box<[N::Opt]>)>,
    /// Data of our Terminate-Requests (a reason, for the peer's logs).
    pub term_data: Vec<u8>,
}

impl<N: Negotiator> Cp<N> {
    pub fn new(config: FsmConfig, neg: N, first_id: u8) -> Self {
        Cp {
            fsm: Fsm::new(config),
            neg,
            id: first_id,
            reject_id: first_id.wrapping_add(0x80),
            last_req: Box::default(),
            last_acked: None,
            term_data: Vec::new(),
        }
    }

    pub fn state(&self) -> State {
        self.fsm.state()
    }

    /// An administrative or lower-layer event (Up, Down, Open, Close).
    pub fn event(&mut self, ev: FsmEvent, now: Instant, io: &mut Io) -> Outcome {
        let acts = self.fsm.event(ev, now);
        self.run(acts, None, 0, &[], false, io)
    }

    /// The Restart timer, if due.
    pub fn timeout(&mut self, now: Instant, io: &mut Io) -> Outcome {
        // RFC 1661 §5.1: a retransmission may keep its Identifier, which lets the peer tell
        // it from a new request — unless a valid reply (an Ack, in Ack-Rcvd) came meanwhile.
        let same_id = matches!(self.fsm.state(), State::ReqSent | State::AckSent);
        let acts = self.fsm.timeout(now);
        if acts.contains(Actions::SCR) || acts.contains(Actions::STR) {
            io.counters.retransmissions += 1;
        }
        self.run(acts, None, 0, &[], same_id, io)
    }

    /// Puts the automaton in Opened with `ours` as our acknowledged request (proxy LCP).
    pub fn force_opened(&mut self, ours: Vec<N::Opt>) {
        self.fsm.force_opened();
        self.last_req = ours.into_boxed_slice();
    }

    /// A received packet of this protocol (codes 1-7 and unknown codes; LCP's 8-11 are the
    /// link's). `raw` is the packet from its Code field, for Code-Reject.
    pub fn input(&mut self, pkt: CpRepr<N::Opt>, raw: &[u8], now: Instant, io: &mut Io) -> Outcome {
        let rx_id = pkt.identifier;
        let mut reply = None;
        let ev = match pkt.body {
            CpBody::ConfigureRequest { options } => {
                // A retransmission (same Identifier and options) of the request we acked
                // before opening: our Ack was lost. Ack it again rather than tearing the
                // layer down (RFC 1661 §4.3 would renegotiate; on a lossy tunnel that can
                // go on for ever). A new request still renegotiates.
                if self.fsm.state() == State::Opened
                    && self
                        .last_acked
                        .as_ref()
                        .is_some_and(|(id, o)| *id == rx_id && **o == options[..])
                {
                    io.counters.duplicate_requests += 1;
                    io.send(&CpRepr {
                        identifier: rx_id,
                        body: CpBody::ConfigureAck { options },
                    });
                    return Outcome::default();
                }
                match self.neg.check(&options, self.fsm.nak_allowed()) {
                    Err(reason) => return Outcome::fail(reason),
                    Ok(Verdict::Ack) => {
                        reply = Some(CpBody::ConfigureAck { options });
                        FsmEvent::RcrPlus
                    }
                    Ok(Verdict::Nak(options)) => {
                        reply = Some(CpBody::ConfigureNak { options });
                        FsmEvent::RcrMinus
                    }
                    Ok(Verdict::Reject(options)) => {
                        reply = Some(CpBody::ConfigureReject { options });
                        FsmEvent::RcrMinus
                    }
                }
            }
            CpBody::ConfigureAck { options } => {
                // RFC 1661 §5.2: Identifier and options must match our last request.
                if rx_id != self.id || options[..] != *self.last_req {
                    io.counters.bad_replies += 1;
                    return Outcome::default();
                }
                if self.fsm.state() != State::Opened {
                    self.neg.acked(&options);
                }
                FsmEvent::Rca
            }
            CpBody::ConfigureNak { options } => {
                if rx_id != self.id {
                    io.counters.bad_replies += 1;
                    return Outcome::default();
                }
                if let Err(reason) = self.neg.naked(&options) {
                    return Outcome::fail(reason);
                }
                FsmEvent::Rcn
            }
            CpBody::ConfigureReject { options } => {
                // RFC 1661 §5.4: only options we sent, unmodified.
                if rx_id != self.id || options.iter().any(|o| !self.last_req.contains(o)) {
                    io.counters.bad_replies += 1;
                    return Outcome::default();
                }
                if let Err(reason) = self.neg.rejected(&options) {
                    return Outcome::fail(reason);
                }
                FsmEvent::Rcn
            }
            CpBody::TerminateRequest { .. } => FsmEvent::Rtr,
            CpBody::TerminateAck { .. } => FsmEvent::Rta,
            CpBody::CodeReject { rejected } => {
                // RFC 1661 §5.6: rejecting a code we need (1-7) is catastrophic.
                match rejected.first() {
                    Some(1..=7) => FsmEvent::RxjMinus,
                    _ => FsmEvent::RxjPlus,
                }
            }
            CpBody::Unknown { .. } => FsmEvent::Ruc,
            // Protocol-Reject, Echo and Discard are LCP's and handled by the link.
            CpBody::ProtocolReject { .. }
            | CpBody::EchoRequest { .. }
            | CpBody::EchoReply { .. }
            | CpBody::DiscardRequest { .. } => FsmEvent::Rxr,
        };
        let acts = self.fsm.event(ev, now);
        self.run(acts, reply, rx_id, raw, false, io)
    }

    fn run(
        &mut self,
        acts: Actions,
        reply: Option<CpBody<N::Opt>>,
        rx_id: u8,
        raw: &[u8],
        same_id: bool,
        io: &mut Io,
    ) -> Outcome {
        if acts.contains(Actions::SCR) {
            let req = self.neg.request();
            if !same_id || req[..] != *self.last_req {
                self.id = self.id.wrapping_add(1);
            }
            self.last_req = req.clone().into_boxed_slice();
            io.send(&CpRepr {
                identifier: self.id,
                body: CpBody::ConfigureRequest { options: req },
            });
        }
        if acts.contains(Actions::SCA) || acts.contains(Actions::SCN) {
            if let Some(body) = reply {
                match &body {
                    CpBody::ConfigureAck { options } => {
                        self.neg.peer_acked(options);
                        self.last_acked = Some((rx_id, options.as_slice().into()));
                    }
                    CpBody::ConfigureNak { .. } => self.fsm.nak_sent(),
                    _ => {}
                }
                io.send(&CpRepr {
                    identifier: rx_id,
                    body,
                });
            }
        }
        if acts.contains(Actions::STR) {
            self.id = self.id.wrapping_add(1);
            io.send(&CpRepr::<N::Opt> {
                identifier: self.id,
                body: CpBody::TerminateRequest {
                    data: self.term_data.clone(),
                },
            });
        }
        if acts.contains(Actions::STA) {
            io.send(&CpRepr::<N::Opt> {
                identifier: rx_id,
                body: CpBody::TerminateAck { data: Vec::new() },
            });
        }
        if acts.contains(Actions::SCJ) {
            // RFC 1661 §5.6: the rejected packet from its Code, cut to the peer's MRU.
            let room = io.reject_room(4);
            let rejected = raw[..raw.len().min(room)].to_vec();
            io.counters.code_rejects_sent += 1;
            self.reject_id = self.reject_id.wrapping_add(1);
            io.send(&CpRepr::<N::Opt> {
                identifier: self.reject_id,
                body: CpBody::CodeReject { rejected },
            });
        }
        Outcome {
            layer: acts.layer(),
            fail: None,
        }
    }
}
