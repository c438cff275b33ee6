//! New control connections at the responder (RFC 2661 §7.2, RFC 3931 §7.3): an SCCRQ to
//! tunnel ID 0 — its retransmissions, the per-source rate, the tie breaker (RFC 2661 §4.4.3,
//! RFC 3931 §5.4.3) — the admission limits it must pass, and the half-open tracking that
//! feeds the admission table ([`crate::l2tp::admission`]).

use std::time::Instant;

use l2xdp_wire::l2tp::avp::{Avp, AvpType};
use l2xdp_wire::l2tp::codes::{ErrorCode, StopCcnResult};
use l2xdp_wire::l2tp::header::{Transport, Version};
use l2xdp_wire::l2tp::message::{ControlMessage, MessageType, ParseContext};

use super::super::admission::Class;
use super::super::tunnel::{Role, TunnelState};
use super::super::{Peer, ResultCode, TunnelId};
use super::Registry;

impl Registry {
    /// How long a half-open tunnel is kept: `half_open_timeout_ms`, and never less than one
    /// retransmission cycle (RFC 2661 §5.8), so that a lossy peer's retransmitted SCCCN still
    /// finds it. Under a flood the table's size, not this, bounds the state.
    pub(super) fn half_open_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.cfg.limits.half_open_timeout_ms)
            .max(self.cfg.retransmission_cycle())
    }

    /// Updates the admission table's view of tunnel `id`.
    pub(super) fn track(&mut self, id: TunnelId) {
        let Some(t) = self.tunnels.get(&id) else {
            self.admission.forget(id);
            return;
        };
        let closed = matches!(t.state(), TunnelState::Closing | TunnelState::Finished);
        let half_open =
            !t.is_initiator() && matches!(t.state(), TunnelState::Idle | TunnelState::WaitCtlConn);
        let class = Class {
            open: !closed && !half_open,
            half_open,
            unverified: half_open
                && t.state() == TunnelState::WaitCtlConn
                && !t.channel().is_quiescent(),
            waiting_reply: t.is_initiator() && t.state() == TunnelState::WaitCtlReply,
            peer: t.peer(),
        };
        // Half-open tunnels are admitted apart from `max_tunnels` (a flood of them must not
        // lock real LACs out), so the limit is applied again when one becomes established.
        if class.open
            && self.admission.is_half_open(id)
            && self.admission.open() >= self.cfg.limits.max_tunnels
        {
            self.over_limit.push_back(id);
        }
        let now = self.now.unwrap_or_else(Instant::now);
        self.admission.update(id, class, now);
    }

    /// A message to tunnel ID 0: an SCCRQ creates a responder tunnel.
    pub(super) fn handle_new(&mut self, peer: Peer, version: Version, msg: &[u8], now: Instant) {
        let secret = self.cfg.secret_bytes().map(<[u8]>::to_vec);
        let Ok(parsed) = ControlMessage::parse(
            msg,
            &ParseContext {
                secret: secret.as_deref(),
            },
        ) else {
            self.counters.count_invalid("malformed message to tunnel 0");
            self.log
                .note("malformed control message to tunnel 0", &peer, now);
            return;
        };
        if parsed.message_type() != Some(MessageType::Sccrq) {
            self.counters.count_invalid("non-SCCRQ to tunnel 0");
            return;
        }
        if version == Version::V2 && peer.transport != Transport::Udp {
            self.counters.count_invalid("L2TPv2 over IP");
            return;
        }
        let peer_tid = parsed.assigned_tunnel_id().unwrap_or(0);
        // A retransmitted SCCRQ goes to the tunnel it created.
        if let Some(&id) = self.by_peer.get(&(peer, peer_tid)) {
            if peer_tid != 0 {
                // While the peer has acknowledged nothing our SCCRP is not retransmitted on
                // a timer; its retransmitted SCCRQ gets it again instead, one for one.
                // At most as often as our own retries (RFC 2661 §5.8): one for one, never more
                // datagrams than the peer sent.
                let max = u8::try_from(self.cfg.retransmit.max_retries).unwrap_or(u8::MAX);
                let again = self.admission.may_answer_again(id, max);
                self.with_tunnel(id, now, |t, ctx| {
                    t.handle_datagram(ctx, msg);
                    if again {
                        t.retransmit_now();
                    }
                });
                return;
            }
        }
        // Per-source rate of new tunnels: beyond it the SCCRQ is dropped unanswered, so a
        // flood from one address costs it nothing and us no datagram.
        let l = self.cfg.limits;
        if !self.rate.allow(
            peer.addr.ip(),
            l.sccrq_per_source_per_sec,
            l.sccrq_per_source_burst,
            l.rate_limit_sources,
            now,
        ) {
            self.counters
                .count_admission("SCCRQ dropped (source over its rate)");
            self.log
                .note("SCCRQ dropped: source over its rate", &peer, now);
            return;
        }
        if let Some((theirs_old, ours_old)) = parsed.tunnel_recovery() {
            return self
                .handle_recovery_sccrq(peer, version, msg, &parsed, theirs_old, ours_old, now);
        }
        let mut reject: Option<ResultCode> = None;
        // Tie breaker (RFC 2661 §4.4.3, RFC 3931 §5.4.3): an SCCRQ from a peer we have an
        // outstanding SCCRQ to. RFC 4951 §3.2.1: only among non-recovery tunnels.
        let theirs = match parsed.get(AvpType::TieBreaker) {
            Some(Avp::TieBreaker(v)) => Some(*v),
            _ => None,
        };
        if let Some(theirs) = theirs.filter(|_| self.admission.waiting_reply() > 0) {
            let ours = self
                .tunnels
                .values()
                .filter(|t| {
                    t.is_initiator()
                        && t.role() == Role::Normal
                        && t.state() == TunnelState::WaitCtlReply
                        && t.version() == version
                        && t.peer().addr.ip() == peer.addr.ip()
                        && t.peer().transport == peer.transport
                })
                .map(|t| (t.id(), t.tie_breaker()))
                .next();
            if let Some((our_id, our_tb)) = ours {
                let we_win = match our_tb {
                    None => false,
                    Some(o) => o < theirs,
                };
                let equal = our_tb == Some(theirs);
                if !we_win {
                    tracing::info!(tunnel = our_id, "lost the tie breaker");
                    self.with_tunnel(our_id, now, |t, ctx| t.discard(ctx));
                }
                if we_win || equal {
                    // RFC 3931 §5.4.3: the winner SHOULD reject the losing SCCRQ with a StopCCN.
                    reject = Some(ResultCode::new(
                        StopCcnResult::ALREADY_EXISTS.0,
                        ErrorCode::NO_ERROR.0,
                        "control connection already exists (tie breaker)",
                    ));
                }
            }
        }
        if reject.is_none() {
            reject = self.admit(peer, now);
        }
        let Some(id) = self.new_tunnel(peer, version, false) else {
            self.counters.count_invalid("no tunnel ID free");
            self.log
                .note("SCCRQ dropped: no tunnel ID free", &peer, now);
            return;
        };
        if peer_tid != 0 {
            self.by_peer.insert((peer, peer_tid), id);
        }
        self.with_tunnel(id, now, |t, ctx| {
            if let Some(rc) = reject {
                t.set_reject(rc);
            }
            t.handle_datagram(ctx, msg)
        });
        self.settle_new(id, peer, peer_tid, now);
    }

    /// The limits an SCCRQ from `peer` must pass (counters, no scan): `Some` refuses it with
    /// that result. When the half-open table is full the oldest tunnel whose peer has
    /// acknowledged nothing makes room.
    pub(super) fn admit(&mut self, peer: Peer, now: Instant) -> Option<ResultCode> {
        let l = self.cfg.limits;
        let refuse = |why: &str| {
            Some(ResultCode::new(
                StopCcnResult::GENERAL_ERROR.0,
                ErrorCode::NO_RESOURCES.0,
                why,
            ))
        };
        if self.admission.open() >= l.max_tunnels {
            self.counters
                .count_admission("SCCRQ refused (tunnel limit)");
            self.log
                .note("SCCRQ refused: tunnel limit reached", &peer, now);
            return refuse("tunnel limit reached");
        }
        if self.admission.half_open_from(peer.addr.ip()) >= l.max_half_open_per_source {
            self.counters
                .count_admission("SCCRQ refused (half-open limit per source)");
            self.log
                .note("SCCRQ refused: half-open limit per source", &peer, now);
            return refuse("too many half-open tunnels from this address");
        }
        while self.admission.half_open() >= l.max_half_open.max(1) {
            let Some(old) = self.admission.oldest_unverified() else {
                self.counters
                    .count_admission("SCCRQ refused (half-open limit)");
                self.log.note("SCCRQ refused: half-open limit", &peer, now);
                return refuse("half-open tunnel limit reached");
            };
            self.counters.count_admission("half-open tunnel evicted");
            self.log
                .note("half-open tunnels evicted (table full)", &peer, now);
            self.remove(old);
        }
        None
    }

    /// After a new responder tunnel handled its SCCRQ: a half-open one is kept; one that
    /// refused it (StopCCN) or ignored it (RFC 3931 §5.4.1: a Message Digest that does not
    /// verify) is dropped at once with at most its one answer sent — a refused SCCRQ keeps
    /// no state and draws no retransmissions (RFC 2661 §5.7 lingering is for peers that
    /// have shown they exist; a retransmitted SCCRQ is refused again, statelessly).
    pub(super) fn settle_new(&mut self, id: TunnelId, peer: Peer, peer_tid: u32, now: Instant) {
        let Some(t) = self.tunnels.get_mut(&id) else {
            return;
        };
        if t.state() == TunnelState::WaitCtlConn {
            self.counters.count_admission("half-open tunnel opened");
            return;
        }
        if let Some(d) = t.poll_transmit(now, &mut self.counters) {
            self.stateless.push_back((t.peer(), d));
        }
        // Its peer tunnel ID may not have been learnt, so `remove` may not find this entry;
        // a stale one would swallow the SCCRQ's retransmissions.
        if self.by_peer.get(&(peer, peer_tid)) == Some(&id) {
            self.by_peer.remove(&(peer, peer_tid));
        }
        self.remove(id);
    }
}
