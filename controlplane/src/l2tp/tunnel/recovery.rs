//! RFC 4951 failover, a tunnel's part: what it persists, how it is restored and recovered.
//!
//! - Persisting (§3.2): an established tunnel and its established sessions are written to the
//!   state store as [`TunnelRecord`] / [`SessionRecord`] (through [`FailoverEvent::Store`]).
//! - Restoring (recovery endpoint, §3.2): [`Tunnel::restore`] and [`Tunnel::restore_session`]
//!   rebuild an old tunnel and its sessions from their records.
//! - Recovery tunnel (§3.2.1): [`Tunnel::start_recovery`] (recovery endpoint) and
//!   `set_recovery_responder` (remote endpoint); when it is up the old tunnel's control channel
//!   is reset (§3.2.2, `control_reset`), the data channels too (§3.2.3), and the sessions are
//!   synchronised with FSQ/FSR (§3.3).
//!
//! The records are in `l2tp/failover.rs`, the store itself in `l2tp/failover/redb.rs`.

use std::sync::Arc;

use l2xdp_wire::l2tp::avp::Avp;
use l2xdp_wire::l2tp::codes::{CdnResult, ErrorCode, StopCcnResult};
use l2xdp_wire::l2tp::header::{Transport, Version};
use l2xdp_wire::l2tp::message::{ControlMessage, MessageType};

use crate::l2tp::config::L2tpConfig;
use crate::l2tp::failover::{
    self, FailoverEvent, RecordTransport, ResetRole, SessionRecord, StoreOp, TunnelRecord,
};
use crate::l2tp::{
    CallParams, Event, L2tpError, Peer, ResultCode, SessionDownReason, SessionUp, TunnelDownReason,
    TunnelId,
};
use crate::random::Random;

use super::session::{Session, SessionState};
use super::{Ctx, RecoveryAction, Role, Tunnel, TunnelState};

/// FSS AVPs per FSQ/FSR: 14 octets each, so a message stays under 1 KiB with its header,
/// Message Type and Message Digest (RFC 4951 §3.3 allows several per message).
pub const FSS_PER_MESSAGE: usize = 64;

impl Tunnel {
    /// RFC 4951 §5.1: a remote endpoint gives a failover-capable peer (C bit) its Recovery Time,
    /// counted from the start of the control channel timeout, before giving up on it, when we
    /// take part in failover ourselves (we sent the AVP). The channel fails at the later of
    /// "retries exhausted" and "timeout start + Recovery Time" (see `ReliableConfig::hold`).
    pub(super) fn apply_hold(&mut self) {
        if self.role != Role::Normal || self.our_failover().is_none() {
            return;
        }
        if let Some(f) = self.peer_failover.filter(|f| f.control) {
            self.channel
                .set_hold(std::time::Duration::from_millis(u64::from(
                    f.recovery_time_ms,
                )));
        }
    }

    /// Recovery endpoint: makes this (new, initiator) tunnel the recovery tunnel of the old
    /// tunnel `old`, whose peer ID is `old_peer`, and sends its SCCRQ (RFC 4951 §3.2.1): the
    /// Tunnel Recovery AVP and a Tie Breaker, no Failover Capability AVP.
    pub fn start_recovery(&mut self, ctx: &mut Ctx<'_>, old: TunnelId, old_peer: u32) {
        self.role = Role::Recovery { old };
        if self.tie_breaker.is_none() {
            self.tie_breaker = Some(ctx.rng.array());
        }
        let mut avps = self.setup_avps();
        avps.push(self.plain(Avp::TunnelRecovery {
            tunnel_id: old,
            remote_tunnel_id: old_peer,
        }));
        self.send_sccrq(ctx, avps);
        ctx.counters.count_failover("recovery SCCRQ sent");
    }

    /// Remote endpoint: makes this (new, responder) tunnel the recovery tunnel of our old
    /// tunnel `old`, suggesting `scs` (Ns, Nr of the recovery endpoint) in its SCCRP.
    pub(crate) fn set_recovery_responder(&mut self, old: TunnelId, scs: (u16, u16)) {
        self.role = Role::Recovery { old };
        self.scs = Some(scs);
    }

    /// A recovery tunnel is up (RFC 4951 §3.2.2): the recovery endpoint resets on the SCCRP
    /// (it just sent the SCCCN) and tears the recovery tunnel down; the remote endpoint resets
    /// on the SCCCN (authenticated by now).
    pub(super) fn recovery_up(&mut self, ctx: &mut Ctx<'_>, old: TunnelId) {
        let (ns, nr) = self.scs.unwrap_or((0, 0));
        let nonces = self.digest_key.map(|_| {
            (
                self.local_nonce.clone(),
                self.remote_nonce.clone().unwrap_or_default(),
            )
        });
        let (ns, nr, role) = if self.initiator {
            (ns, nr, ResetRole::Recovery)
        } else {
            // The suggestion is the recovery endpoint's view; ours is the mirror image.
            (nr, ns, ResetRole::Remote)
        };
        self.recovery_done = true;
        ctx.counters.count_failover(if self.initiator {
            "recovery tunnel up (SCCRP)"
        } else {
            "recovery tunnel up (SCCCN)"
        });
        ctx.actions.push(RecoveryAction::Reset {
            old,
            ns,
            nr,
            role,
            nonces,
            peer: self.peer,
        });
        if self.initiator {
            // Appendix A: the recovery endpoint terminates the recovery tunnel; its StopCCN
            // follows the SCCCN in sequence. Result 1: general request to clear.
            self.stop(
                ctx,
                ResultCode::new(
                    StopCcnResult::GENERAL_REQUEST.0,
                    ErrorCode::NO_ERROR.0,
                    "recovery complete",
                ),
            );
        }
    }

    /// A recovery tunnel that closes before the reset reports the recovery as failed.
    pub(super) fn recovery_closed(&mut self, ctx: &mut Ctx<'_>, why: String) {
        if let Role::Recovery { old } = self.role {
            if self.initiator && !self.recovery_done {
                self.recovery_done = true;
                ctx.counters.count_failover("recovery failed");
                ctx.actions
                    .push(RecoveryAction::Failed { old, reason: why });
            }
        }
    }

    pub(super) fn persist_tunnel(&mut self, ctx: &mut Ctx<'_>) {
        if self.role != Role::Normal || !self.cfg.persists() {
            return;
        }
        self.persisted = true;
        ctx.failover
            .push(FailoverEvent::Store(StoreOp::PutTunnel(Box::new(
                self.record(),
            ))));
    }

    pub(super) fn forget_tunnel(&mut self, ctx: &mut Ctx<'_>) {
        if std::mem::take(&mut self.persisted) {
            ctx.failover
                .push(FailoverEvent::Store(StoreOp::RemoveTunnel(self.id)));
        }
    }

    pub(super) fn persist_session(&self, ctx: &mut Ctx<'_>, s: &Session) {
        if self.persisted && s.state == SessionState::Established {
            ctx.failover
                .push(FailoverEvent::Store(StoreOp::PutSession(Box::new(
                    self.session_record(s),
                ))));
        }
    }

    pub(super) fn forget_session(&self, ctx: &mut Ctx<'_>, s: &Session) {
        if self.persisted && s.state == SessionState::Established {
            ctx.failover
                .push(FailoverEvent::Store(StoreOp::RemoveSession {
                    tunnel: self.id,
                    session: s.id,
                }));
        }
    }

    /// The persisted form of this tunnel (RFC 4951 §3.2).
    pub fn record(&self) -> TunnelRecord {
        TunnelRecord {
            id: self.id,
            peer_tunnel_id: self.peer_tunnel_id,
            peer_addr: self.peer.addr,
            transport: match self.peer.transport {
                Transport::Udp => RecordTransport::Udp,
                Transport::Ip => RecordTransport::Ip,
            },
            version: match self.version {
                Version::V2 => 2,
                Version::V3 => 3,
            },
            initiator: self.initiator,
            our_failover: self.our_failover(),
            peer_failover: self.peer_failover,
            host_name: self.cfg.host_name.clone(),
            router_id: self.cfg.router_id,
            peer_host_name: self.peer_host_name.clone(),
            peer_router_id: self.peer_router_id,
            secret_ref: self.secret().map(failover::secret_ref),
            peer_window: self.channel.peer_window(),
            ns: self.channel.next_ns(),
            nr: self.channel.nr(),
        }
    }

    fn session_record(&self, s: &Session) -> SessionRecord {
        SessionRecord {
            tunnel: self.id,
            id: s.id,
            peer_id: s.peer_id,
            call: s.call,
            initiator: s.initiator,
            cookie_rx: s.cookie_rx.to_vec(),
            cookie_tx: s.cookie_tx.to_vec(),
            our_l2ss: s.our_l2ss,
            peer_l2ss: s.peer_l2ss,
            our_seq: s.our_seq,
            peer_seq: s.peer_seq,
            pw_type: s.pw_type,
            calling_number: if s.initiator {
                s.params().calling_number.clone()
            } else {
                s.calling_number.to_vec()
            },
            called_number: if s.initiator {
                s.params().called_number.clone()
            } else {
                s.called_number.to_vec()
            },
            sub_address: if s.initiator {
                s.params().sub_address.clone()
            } else {
                s.sub_address.to_vec()
            },
            remote_end_id: if s.initiator {
                s.params().remote_end_id.clone()
            } else {
                s.remote_end_id.to_vec()
            },
            private_group_id: s.private_group_id.to_vec(),
            proxy: s.proxy_values(),
            tx_speed: s.tx_speed,
            rx_speed: s.rx_speed,
            app: s.app.clone(),
        }
    }

    /// Attaches the caller's data to an established session and persists it again.
    pub fn set_app_data(
        &mut self,
        ctx: &mut Ctx<'_>,
        id: u32,
        app: Box<[u8]>,
    ) -> Result<(), L2tpError> {
        let Some(s) = self.sessions.get_mut(&id) else {
            return Err(L2tpError::NoSession {
                tunnel: self.id,
                session: id,
            });
        };
        s.app = app;
        if let Some(s) = self.sessions.get(&id) {
            self.persist_session(ctx, s);
        }
        Ok(())
    }

    /// Recovery endpoint: an old tunnel rebuilt from its record (RFC 4951 §3.2), established
    /// but discarding every control message until its control channel reset.
    pub fn restore(
        rec: &TunnelRecord,
        version: Version,
        cfg: Arc<L2tpConfig>,
        rng: &mut Random,
    ) -> Self {
        let mut t = Tunnel::new(rec.id, version, rec.peer(), rec.initiator, cfg, rng);
        t.state = TunnelState::Established;
        t.peer_tunnel_id = rec.peer_tunnel_id;
        // A v2 ID above 16 bits was refused when the record was made.
        let _ = t.channel.set_peer_tunnel_id(rec.peer_tunnel_id);
        t.channel.set_peer_window(rec.peer_window);
        t.peer_host_name = rec.peer_host_name.clone();
        t.peer_router_id = rec.peer_router_id;
        t.peer_failover = rec.peer_failover;
        t.recovering = true;
        t.persisted = t.cfg.persists();
        t.apply_hold();
        t
    }

    /// Recovery endpoint: adds a restored session (its ID already reserved by the caller for
    /// v3) and returns what the fast path needs.
    pub fn restore_session(&mut self, r: &SessionRecord) -> SessionUp {
        if self.version == Version::V2 {
            self.v2_sessions.reserve(r.id);
        }
        let s = Session {
            id: r.id,
            peer_id: r.peer_id,
            state: SessionState::Established,
            call: r.call,
            initiator: r.initiator,
            params: r.initiator.then(|| {
                Box::new(CallParams {
                    kind: r.call,
                    calling_number: r.calling_number.clone(),
                    called_number: r.called_number.clone(),
                    sub_address: r.sub_address.clone(),
                    remote_end_id: r.remote_end_id.clone(),
                    pw_type: r.pw_type,
                    proxy: r.proxy.clone(),
                    connect_speed: r.tx_speed,
                })
            }),
            cookie_rx: r.cookie_rx.as_slice().into(),
            cookie_tx: r.cookie_tx.as_slice().into(),
            our_l2ss: r.our_l2ss,
            peer_l2ss: r.peer_l2ss,
            our_seq: r.our_seq,
            peer_seq: r.peer_seq,
            pw_type: r.pw_type,
            calling_number: r.calling_number.as_slice().into(),
            called_number: r.called_number.as_slice().into(),
            sub_address: r.sub_address.as_slice().into(),
            remote_end_id: r.remote_end_id.as_slice().into(),
            private_group_id: r.private_group_id.as_slice().into(),
            proxy: (!r.proxy.is_empty()).then(|| Box::new(r.proxy.clone())),
            tx_speed: r.tx_speed,
            rx_speed: r.rx_speed,
            synced: false,
            stale: false,
            app: r.app.clone(),
        };
        let up = self.up_of(&s);
        self.sessions.insert(r.id, s);
        up
    }

    /// Clears the tunnel and its sessions without a word (RFC 4951 §3.2.1: the recovery
    /// failed): the caller removes them from the fast path on the events.
    pub fn clear_silently(&mut self, ctx: &mut Ctx<'_>, reason: String) {
        let mut ids: Vec<u32> = self.sessions.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            self.clear_session(ctx, id);
        }
        self.forget_tunnel(ctx);
        ctx.events.push(Event::TunnelDown {
            tunnel: self.id,
            peer: self.peer,
            reason: TunnelDownReason::RecoveryFailed(reason.clone()),
        });
        ctx.failover.push(FailoverEvent::RecoveryFailed {
            tunnel: self.id,
            reason,
        });
        self.recovering = false;
        self.state = TunnelState::Finished;
    }

    /// Clears one session without a CDN (RFC 4951 §3.3).
    fn clear_session(&mut self, ctx: &mut Ctx<'_>, id: u32) {
        let Some(s) = self.sessions.remove(&id) else {
            return;
        };
        ctx.counters.count_failover("session cleared silently");
        self.session_gone(ctx, id, &s, SessionDownReason::FailoverCleared);
    }

    fn is_sequenced(&self, s: &Session) -> bool {
        s.our_seq > 0 || s.peer_seq > 0 || self.cfg.sequencing_required
    }

    /// RFC 4951 §3.2.2 control channel reset of this old tunnel, then §3.3 Step I and, when we
    /// are a recovery endpoint (it was restored), §3.2.3 data channel reset and the FSQ round.
    pub(crate) fn control_reset(
        &mut self,
        ctx: &mut Ctx<'_>,
        ns: u16,
        nr: u16,
        role: ResetRole,
        nonces: Option<(Vec<u8>, Vec<u8>)>,
        peer: Peer,
    ) {
        if self.state != TunnelState::Established {
            return;
        }
        self.channel.reset_sequence(ns, nr);
        if let (Some((local, remote)), Some(_)) = (nonces, self.digest_key) {
            // RFC 4951 §3.2.1: the recovered tunnel uses the recovery tunnel's nonces.
            self.local_nonce = local;
            self.remote_nonce = Some(remote);
        }
        self.peer = peer;
        self.established_at = Some(ctx.now);
        self.last_hello = None;
        let was_recovering = std::mem::take(&mut self.recovering);
        ctx.counters.count_failover(match role {
            ResetRole::Recovery => "control channel reset (recovery endpoint)",
            ResetRole::Remote => "control channel reset (remote endpoint)",
        });
        ctx.failover.push(FailoverEvent::ControlReset {
            tunnel: self.id,
            ns,
            nr,
            role,
        });
        // Step I: sessions not established are cleared silently, by each endpoint.
        let mut ids: Vec<u32> = self.sessions.keys().copied().collect();
        ids.sort_unstable();
        for &id in &ids {
            match self.sessions.get_mut(&id) {
                Some(s) if s.state != SessionState::Established => self.clear_session(ctx, id),
                Some(s) => s.synced = false,
                None => {}
            }
        }
        if !was_recovering {
            return;
        }
        // §3.2.3 data channel reset: sequenced sessions are recoverable only when both ends
        // set the D bit; the recovery endpoint tears the others down with a CDN.
        let d_ok = self.our_failover().is_some_and(|f| f.data)
            && self.peer_failover.is_some_and(|f| f.data);
        for &id in &ids {
            let Some(s) = self.sessions.get(&id) else {
                continue;
            };
            if !self.is_sequenced(s) {
                continue;
            }
            if d_ok {
                let key = self.up_of(s).our_ids;
                ctx.counters.count_failover("data channel reset");
                ctx.failover.push(FailoverEvent::ResetDataSequence {
                    tunnel: self.id,
                    session: id,
                    key,
                });
            } else {
                ctx.counters
                    .count_failover("sequenced session torn down (no D bit)");
                let rc = ResultCode::new(
                    CdnResult::GENERAL_ERROR.0,
                    ErrorCode::NO_ERROR.0,
                    "data channel not recoverable after failover (RFC 4951 §3.2.3)",
                );
                self.cdn(ctx, id, rc, None);
            }
        }
        // Step III: query every session left.
        let mut left: Vec<(u32, u32)> = self.sessions.values().map(|s| (s.id, s.peer_id)).collect();
        left.sort_unstable();
        self.sync_pending = true;
        for (id, peer_id) in left {
            self.query(id, peer_id);
        }
        self.flush_fsq(ctx);
        self.persist_tunnel(ctx);
        self.check_synced(ctx);
    }

    fn query(&mut self, id: u32, peer_id: u32) {
        self.fsq_outstanding.insert(id);
        self.fsq_queue.push((id, peer_id));
    }

    /// Sends the queued FSS pairs in FSQ messages of at most [`FSS_PER_MESSAGE`] (RFC 4951
    /// §3.3: several FSS AVPs per FSQ).
    fn flush_fsq(&mut self, ctx: &mut Ctx<'_>) {
        let q = std::mem::take(&mut self.fsq_queue);
        self.send_fss(ctx, MessageType::Fsq, q);
    }

    fn send_fss(&mut self, ctx: &mut Ctx<'_>, mt: MessageType, pairs: Vec<(u32, u32)>) {
        for chunk in pairs.chunks(FSS_PER_MESSAGE) {
            let avps = chunk
                .iter()
                .map(|&(session_id, remote_session_id)| {
                    self.plain(Avp::FailoverSessionState {
                        session_id,
                        remote_session_id,
                    })
                })
                .collect();
            self.send(ctx, 0, mt, avps);
        }
    }

    fn check_synced(&mut self, ctx: &mut Ctx<'_>) {
        if self.sync_pending && self.fsq_outstanding.is_empty() {
            self.sync_pending = false;
            ctx.counters.count_failover("tunnel recovered");
            ctx.failover.push(FailoverEvent::Recovered {
                tunnel: self.id,
                sessions: self.sessions.len(),
            });
        }
    }

    /// RFC 4951 §3.3: answer each FSS of an FSQ; a pairing mismatch marks our session stale
    /// (and queries it), it is not cleared.
    pub(super) fn on_fsq(&mut self, ctx: &mut Ctx<'_>, msg: &ControlMessage) {
        let mut answers = Vec::new();
        for (theirs, ours) in msg.failover_session_states() {
            ctx.counters.count_failover("FSS queried by peer");
            let valid = match self.sessions.get_mut(&ours) {
                Some(s) if s.peer_id == theirs && theirs != 0 => {
                    s.synced = true;
                    s.stale = false;
                    true
                }
                Some(s) => {
                    if !s.stale {
                        s.stale = true;
                        let (id, peer_id) = (s.id, s.peer_id);
                        ctx.counters.count_failover("session marked stale");
                        ctx.failover.push(FailoverEvent::SessionStale {
                            tunnel: self.id,
                            session: id,
                        });
                        self.query(id, peer_id);
                    }
                    false
                }
                None => false,
            };
            answers.push((if valid { ours } else { 0 }, theirs));
        }
        self.send_fss(ctx, MessageType::Fsr, answers);
        self.flush_fsq(ctx);
    }

    /// RFC 4951 §3.3: a zero Session ID clears our session silently; otherwise it is recovered.
    pub(super) fn on_fsr(&mut self, ctx: &mut Ctx<'_>, msg: &ControlMessage) {
        for (theirs, ours) in msg.failover_session_states() {
            ctx.counters.count_failover("FSS answered by peer");
            self.fsq_outstanding.remove(&ours);
            if theirs == 0 {
                self.clear_session(ctx, ours);
                continue;
            }
            let Some(s) = self.sessions.get_mut(&ours) else {
                continue;
            };
            if s.peer_id == theirs {
                s.synced = true;
                s.stale = false;
            } else if !s.stale {
                s.stale = true;
                ctx.counters.count_failover("session marked stale");
                ctx.failover.push(FailoverEvent::SessionStale {
                    tunnel: self.id,
                    session: ours,
                });
            }
        }
        self.check_synced(ctx);
    }
}
