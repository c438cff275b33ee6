//! Transparent resume after a restart, and the StopCCN a peer gets when that cannot work.
//!
//! **Resume** (RFC 2661 §5.8, RFC 3931 §4.2): an established tunnel's sequence state — our
//! next Ns, our Nr, the messages the peer has not acknowledged — is persisted as a
//! [`SequenceRecord`] under the store's commit-before-send rule (see `l2tp/failover.rs`), at
//! most once per commit. A restarted control plane rebuilds the tunnel from it
//! ([`Tunnel::resume`]) and goes on with the **same** control connection: what was in flight
//! is sent again at once, a HELLO follows as a probe, the peer's retransmissions are accepted
//! (in-window Ns) and acknowledged, HELLO is answered. The peer sees nothing but a few
//! retransmissions. It works whatever the peer implements: it needs nothing beyond RFC 2661
//! §5.8 / RFC 3931 §4.2.
//!
//! **The rule** for when a resume has failed (the tunnel is then recovered with RFC 4951 when
//! the peer negotiated it, torn down with a StopCCN otherwise):
//! - confirmed by the first acknowledgement or in-order message from the peer;
//! - failed when the peer's first message contradicts the stored state: an Ns beyond our
//!   receive window (it sent messages we never acknowledged and cannot have lost) or an Nr
//!   acknowledging what we never sent;
//! - the peer's StopCCN ends it as it ends any tunnel;
//! - a peer that says nothing is retransmitted to like any other (RFC 2661 §5.8: the probe is
//!   retransmitted until the channel gives up, one full retransmission cycle); then the tunnel
//!   is cleared as any tunnel whose control channel failed.
//!
//! **Farewell** (RFC 2661 §5.7): a tunnel that can neither be resumed nor recovered (no
//! sequence state, a peer without RFC 4951) is closed with a StopCCN (Result Code 1, general
//! request to clear), so that the peer and its subscribers redial at once instead of waiting
//! for their timers. Without the sequence state our Ns is unknown, and a peer discards a
//! StopCCN out of sequence; so it is found first: two HELLOs half the sequence space apart go
//! to the peer's tunnel ID, one of which the peer must take as a duplicate and acknowledge
//! (RFC 2661 §5.8: duplicates MUST be acknowledged) — its ZLB names the Ns it expects, and the
//! StopCCN goes with that Ns. The probes are sent [`FAREWELL_PROBES`] times,
//! [`FAREWELL_INTERVAL`] apart; a peer that never answers is given up silently.

use std::time::{Duration, Instant};

use l2xdp_wire::l2tp::codes::{ErrorCode, StopCcnResult};
use l2xdp_wire::l2tp::header::{ControlHeader, Transport};
use l2xdp_wire::l2tp::message::{ControlMessage, MessageType};

use crate::l2tp::failover::{FailoverEvent, SequenceRecord, TunnelRecord, UnackedMessage};
use crate::l2tp::{ResultCode, TunnelDownReason};
use crate::reliable::{self, ChannelError, Unacked};

use super::{Ctx, RecoveryAction, Role, Tunnel, TunnelState};

/// How many times the farewell's sequence probes are sent before the peer is given up.
pub const FAREWELL_PROBES: u8 = 4;
/// Between two rounds of farewell probes.
pub const FAREWELL_INTERVAL: Duration = Duration::from_millis(250);

/// A tunnel saying goodbye without knowing its sequence numbers (see the module docs).
#[derive(Debug, Clone)]
pub(crate) struct Farewell {
    /// A guess at our next Ns: the probes go with this minus one and half a space beyond.
    base_ns: u16,
    /// Our Nr in the probes.
    nr: u16,
    rounds_left: u8,
    next: Instant,
    out: Vec<Vec<u8>>,
}

/// The StopCCN's Result Code of a tunnel that could not survive the restart.
fn restart_clear(why: &str) -> ResultCode {
    ResultCode::new(StopCcnResult::GENERAL_REQUEST.0, ErrorCode::NO_ERROR.0, why)
}

impl Tunnel {
    /// Whether the sequence state changed since it was last persisted.
    pub(crate) fn sequence_dirty(&self) -> bool {
        self.persisted
            && self.cfg.resume
            && self.role == Role::Normal
            && !self.recovering
            && self.farewell.is_none()
            && self.state == TunnelState::Established
            && self.seq_gen != Some(self.channel.generation())
    }

    /// The sequence state to persist (and marks it persisted).
    pub(crate) fn sequence_record(&mut self) -> SequenceRecord {
        self.seq_gen = Some(self.channel.generation());
        SequenceRecord {
            tunnel: self.id,
            ns: self.channel.next_ns(),
            nr: self.channel.nr(),
            unacked: self
                .channel
                .unacked()
                .into_iter()
                .map(|m| UnackedMessage {
                    ns: m.ns,
                    session_id: m.session_id,
                    avps: m.avps,
                })
                .collect(),
            nonces: self.digest_key.map(|_| {
                (
                    self.local_nonce.clone(),
                    self.remote_nonce.clone().unwrap_or_default(),
                )
            }),
        }
    }

    /// A tunnel rebuilt from its records to go on with the same control connection (see the
    /// module docs); `start_resume` then sends what was unacknowledged and the probe.
    /// Refused when the sequence state is inconsistent, or an L2TPv3 tunnel with a Message
    /// Digest has no nonces to key it with.
    pub fn resume(
        rec: &TunnelRecord,
        seq: &SequenceRecord,
        version: l2xdp_wire::l2tp::header::Version,
        cfg: std::sync::Arc<crate::l2tp::config::L2tpConfig>,
        rng: &mut crate::random::Random,
        now: Instant,
    ) -> Result<Self, ChannelError> {
        let mut t = Tunnel::restore(rec, version, cfg, rng);
        t.recovering = false;
        if t.digest_key.is_some() {
            let Some((local, remote)) = &seq.nonces else {
                return Err(ChannelError::Inconsistent);
            };
            t.local_nonce = local.clone();
            t.remote_nonce = Some(remote.clone());
        }
        let unacked = seq
            .unacked
            .iter()
            .map(|m| Unacked {
                ns: m.ns,
                session_id: m.session_id,
                avps: m.avps.clone(),
            })
            .collect();
        t.channel.resume(seq.ns, seq.nr, unacked, now)?;
        t.established_at = Some(now);
        t.resuming = true;
        t.seq_gen = Some(t.channel.generation());
        Ok(t)
    }

    /// A resumed tunnel: what was unacknowledged goes again (the channel has it due), and a
    /// HELLO probes the peer (its acknowledgement confirms the resume).
    pub(crate) fn start_resume(&mut self, ctx: &mut Ctx<'_>) {
        self.last_hello = Some(ctx.now);
        self.send(ctx, 0, MessageType::Hello, Vec::new());
        ctx.counters.count_failover("resume started");
    }

    /// Whether its control messages carry an L2TPv3 Message Digest.
    pub(crate) fn has_digest(&self) -> bool {
        self.digest_key.is_some()
    }

    /// A tunnel made for a farewell from what the fast path kept: the peer's tunnel ID, as
    /// if established.
    pub(crate) fn adopt(&mut self, peer_tunnel: u32) {
        if self.channel.set_peer_tunnel_id(peer_tunnel).is_ok() {
            self.peer_tunnel_id = peer_tunnel;
        }
        self.state = TunnelState::Established;
    }

    /// Whether the tunnel was resumed and the peer has not confirmed it yet.
    pub fn is_resuming(&self) -> bool {
        self.resuming
    }

    /// Whether the tunnel is saying goodbye (farewell probes or their StopCCN).
    pub fn is_farewell(&self) -> bool {
        self.farewell.is_some()
    }

    /// After the channel took a datagram while resuming: confirms the resume, or fails it
    /// (true: the datagram is not processed further).
    pub(super) fn check_resume(
        &mut self,
        ctx: &mut Ctx<'_>,
        before: reliable::Stats,
        header: &ControlHeader,
        body_empty: bool,
        events: &[reliable::Event],
    ) -> bool {
        if !self.resuming {
            return false;
        }
        let after = self.channel.stats();
        if after.invalid_nr > before.invalid_nr || after.out_of_window > before.out_of_window {
            // The peer's view: it expects our Ns `header.nr`, its next is after `header.ns`.
            let nr = if body_empty {
                header.ns
            } else {
                header.ns.wrapping_add(1)
            };
            self.resume_failed(ctx, Some((header.nr, nr)));
            return true;
        }
        if events.iter().any(|e| {
            matches!(
                e,
                reliable::Event::Acked { .. } | reliable::Event::Deliver { .. }
            )
        }) {
            self.resuming = false;
            ctx.counters.count_failover("tunnel resumed");
            ctx.failover.push(FailoverEvent::Resumed {
                tunnel: self.id,
                sessions: self.sessions.len(),
            });
        }
        false
    }

    /// The resume cannot work (see the module docs): RFC 4951 recovery when the peer
    /// negotiated it, else a StopCCN in the peer's sequence (`peer_view`: our Ns and Nr as
    /// the peer sees them).
    pub(super) fn resume_failed(&mut self, ctx: &mut Ctx<'_>, peer_view: Option<(u16, u16)>) {
        self.resuming = false;
        ctx.counters.count_failover("resume failed");
        let (ns, nr) = peer_view.unwrap_or((self.channel.next_ns(), self.channel.nr()));
        tracing::warn!(
            tunnel = self.id,
            peer_tunnel = self.peer_tunnel_id,
            "resume failed: the peer's sequence state is not the stored one"
        );
        if self.peer_failover.is_some_and(|f| f.control) && self.our_failover().is_some() {
            // RFC 4951 §3.2.1: discard everything until the control channel reset.
            self.channel.reset_sequence(ns, nr);
            self.recovering = true;
            ctx.actions.push(RecoveryAction::Recover {
                old: self.id,
                old_peer: self.peer_tunnel_id,
            });
            return;
        }
        // What was unacknowledged is dropped: the StopCCN goes next in the peer's sequence.
        self.channel.reset_sequence(ns, nr);
        self.stop(
            ctx,
            restart_clear("control connection state lost in a restart"),
        );
    }

    /// Closes a restored tunnel whose sequence numbers are unknown with a StopCCN (see the
    /// module docs). `base_ns`/`nr`: the best guess (a [`TunnelRecord`]'s, or anything). Its
    /// sessions go down at once; [`crate::l2tp::Event::TunnelDown`] comes with the StopCCN
    /// (or when the peer never answers).
    pub(crate) fn start_farewell(&mut self, ctx: &mut Ctx<'_>, base_ns: u16, nr: u16) {
        self.all_sessions_down(ctx);
        self.forget_tunnel(ctx);
        self.recovering = false;
        self.resuming = false;
        ctx.counters.count_failover("farewell started");
        self.farewell = Some(Farewell {
            base_ns,
            nr,
            rounds_left: FAREWELL_PROBES,
            next: ctx.now,
            out: Vec::new(),
        });
        self.farewell_round(ctx.now);
    }

    fn farewell_round(&mut self, now: Instant) {
        let (peer_tid, version, ip) = (
            self.peer_tunnel_id,
            self.version,
            self.peer.transport == Transport::Ip,
        );
        let Some(f) = self.farewell.as_mut() else {
            return;
        };
        if f.rounds_left == 0 {
            return;
        }
        f.rounds_left -= 1;
        f.next = now + FAREWELL_INTERVAL;
        let first = f.base_ns.wrapping_sub(1);
        for ns in [first, first.wrapping_add(0x8000)] {
            let h = ControlHeader {
                version,
                tunnel_id: peer_tid,
                session_id: 0,
                ns,
                nr: f.nr,
            };
            if let Ok(mut d) =
                ControlMessage::build(h, MessageType::Hello, Vec::new()).to_bytes(None)
            {
                if ip {
                    let mut v = vec![0u8; 4];
                    v.append(&mut d);
                    d = v;
                }
                f.out.push(d);
            }
        }
        f.out.reverse();
    }

    /// The farewell's next probe to send.
    pub(super) fn poll_farewell(
        &mut self,
        counters: &mut crate::l2tp::Counters,
    ) -> Option<Vec<u8>> {
        let d = self.farewell.as_mut()?.out.pop()?;
        counters.count_failover("farewell probe sent");
        Some(d)
    }

    /// The farewell's next deadline.
    pub(super) fn farewell_due(&self) -> Option<Instant> {
        self.farewell.as_ref().map(|f| f.next)
    }

    /// The farewell's timer: another round of probes, or the peer is given up.
    pub(super) fn farewell_timeout(&mut self, ctx: &mut Ctx<'_>) {
        let Some(f) = self.farewell.as_ref() else {
            return;
        };
        if f.next > ctx.now {
            return;
        }
        if f.rounds_left > 0 {
            self.farewell_round(ctx.now);
            return;
        }
        ctx.counters.count_failover("farewell unanswered");
        self.farewell = None;
        self.state = TunnelState::Finished;
        if self.role == Role::Normal {
            ctx.events.push(crate::l2tp::Event::TunnelDown {
                tunnel: self.id,
                peer: self.peer,
                reason: TunnelDownReason::Timeout,
            });
        }
    }

    /// A datagram from the peer during the farewell: its header names the sequence numbers
    /// the StopCCN must carry (true: it was taken here).
    pub(super) fn farewell_answer(
        &mut self,
        ctx: &mut Ctx<'_>,
        header: &ControlHeader,
        body_empty: bool,
    ) -> bool {
        if self.farewell.take().is_none() {
            return false;
        }
        let nr = if body_empty {
            header.ns
        } else {
            header.ns.wrapping_add(1)
        };
        ctx.counters.count_failover("farewell StopCCN sent");
        self.channel.reset_sequence(header.nr, nr);
        self.stop(
            ctx,
            restart_clear("control connection state lost in a restart"),
        );
        true
    }
}
