//! RFC 4951 failover and transparent resume at the registry: a peer's recovery SCCRQ
//! (§3.2.1), restoring the persisted tunnels and sessions after a restart and starting their
//! recovery tunnels (§3.2) or resuming them (`tunnel/resume.rs`), and the farewell StopCCN
//! to a peer whose control connection is lost (RFC 2661 §5.7).

use std::collections::HashMap;
use std::time::Instant;

use l2xdp_wire::l2tp::avp::{Avp, AvpType};
use l2xdp_wire::l2tp::codes::{ErrorCode, StopCcnResult};
use l2xdp_wire::l2tp::header::{Transport, Version};
use l2xdp_wire::l2tp::message::ControlMessage;

use super::super::failover::{self, FailoverEvent, RecoveryState, STATE_FORMAT};
use super::super::tunnel::{Role, Tunnel, TunnelState};
use super::super::{L2tpError, Peer, ResultCode, TunnelId};
use super::Registry;

impl Registry {
    /// Remote endpoint (RFC 4951 §3.2.1): an SCCRQ with a Tunnel Recovery AVP naming our old
    /// tunnel `ours_old` and the peer's `theirs_old`. Accepted (SCCRP with a Suggested Control
    /// Sequence) or refused with a StopCCN.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn handle_recovery_sccrq(
        &mut self,
        peer: Peer,
        version: Version,
        msg: &[u8],
        parsed: &ControlMessage,
        theirs_old: u32,
        ours_old: u32,
        now: Instant,
    ) {
        self.counters.count_failover("recovery SCCRQ received");
        let peer_tid = parsed.assigned_tunnel_id().unwrap_or(0);
        let refuse = |result: StopCcnResult, error: ErrorCode, why: &str| {
            Some(ResultCode::new(result.0, error.0, why))
        };
        let mut reject: Option<ResultCode> = None;
        // Tie breaker, scoped to recovery tunnels of the same old tunnel (§3.2.1, Appendix B).
        let theirs_tb = match parsed.get(AvpType::TieBreaker) {
            Some(Avp::TieBreaker(v)) => Some(*v),
            _ => None,
        };
        let ours = self
            .tunnels
            .values()
            .filter(|_| self.admission.waiting_reply() > 0)
            .find(|t| {
                t.role() == (Role::Recovery { old: ours_old })
                    && t.is_initiator()
                    && t.state() == TunnelState::WaitCtlReply
            })
            .map(|t| (t.id(), t.tie_breaker()));
        if let Some((our_id, our_tb)) = ours {
            let we_win = match (our_tb, theirs_tb) {
                (Some(o), Some(t)) => o < t,
                (Some(_), None) => true,
                (None, _) => false,
            };
            let equal = our_tb.is_some() && our_tb == theirs_tb;
            if !we_win {
                self.counters.count_failover("recovery tie breaker lost");
                self.with_tunnel(our_id, now, |t, ctx| t.discard(ctx));
            }
            if we_win || equal {
                self.counters.count_failover("recovery tie breaker won");
                reject = refuse(
                    StopCcnResult::ALREADY_EXISTS,
                    ErrorCode::NO_ERROR,
                    "recovery tunnel already exists (tie breaker)",
                );
                if equal {
                    // Both lost: nobody recovers this old tunnel.
                    self.with_tunnel(ours_old, now, |t, ctx| {
                        if t.is_recovering() {
                            t.clear_silently(ctx, "equal recovery tie breakers".into());
                        }
                    });
                }
            }
        }
        if reject.is_none() {
            reject = self.check_recovery(peer, version, theirs_old, ours_old);
        }
        if reject.is_none() {
            reject = self.admit(peer, now);
        }
        let scs = self.tunnels.get(&ours_old).map(|t| {
            // §5.3: far from the old sequence numbers in both directions (16384 to 32767
            // ahead, beyond any receive window), so old packets read as duplicates.
            let ch = t.channel();
            let a = 0x4000 + (self.rng.u32() & 0x3fff) as u16;
            let b = 0x4000 + (self.rng.u32() & 0x3fff) as u16;
            (ch.nr().wrapping_add(a), ch.next_ns().wrapping_add(b))
        });
        let Some(id) = self.new_tunnel(peer, version, false) else {
            self.counters.count_invalid("no tunnel ID free");
            return;
        };
        if peer_tid != 0 {
            self.by_peer.insert((peer, peer_tid), id);
        }
        if let Some(rc) = &reject {
            self.counters.count_failover("recovery refused");
            self.failover_events
                .push_back(FailoverEvent::RecoveryRefused {
                    peer,
                    tunnel: ours_old,
                    result: rc.clone(),
                });
        }
        self.with_tunnel(id, now, |t, ctx| {
            t.set_recovery_responder(ours_old, scs.unwrap_or((0, 0)));
            if let Some(rc) = reject {
                t.set_reject(rc);
            }
            t.handle_datagram(ctx, msg)
        });
        self.settle_new(id, peer, peer_tid, now);
    }

    /// RFC 4951 §3.2.1 and §8: whether a recovery of our old tunnel `ours_old` may proceed.
    fn check_recovery(
        &self,
        peer: Peer,
        version: Version,
        theirs_old: u32,
        ours_old: u32,
    ) -> Option<ResultCode> {
        let no = |result: StopCcnResult, error: ErrorCode, why: &str| {
            Some(ResultCode::new(result.0, error.0, why))
        };
        let old = match self.tunnels.get(&ours_old) {
            Some(t)
                if t.state() == TunnelState::Established
                    && t.role() == Role::Normal
                    && t.peer_tunnel_id() == theirs_old =>
            {
                t
            }
            _ => {
                return no(
                    StopCcnResult::GENERAL_ERROR,
                    ErrorCode::NO_CONTROL_CONNECTION,
                    "unknown tunnel to recover",
                )
            }
        };
        let allowed = if self.cfg.recovery_peers.is_empty() {
            old.peer().addr.ip() == peer.addr.ip() && old.peer().transport == peer.transport
        } else {
            self.cfg.recovery_peers.contains(&peer.addr.ip())
        };
        if !allowed {
            return no(
                StopCcnResult::NOT_AUTHORIZED,
                ErrorCode::NO_ERROR,
                "recovery not allowed from this address",
            );
        }
        if old.version() != version {
            return no(
                StopCcnResult::GENERAL_ERROR,
                ErrorCode::OUT_OF_RANGE,
                "recovery tunnel of another L2TP version",
            );
        }
        if !old.peer_failover().is_some_and(|f| f.control) || old.our_failover().is_none() {
            return no(
                StopCcnResult::GENERAL_ERROR,
                ErrorCode::NO_ERROR,
                "failover was not negotiated on the old tunnel",
            );
        }
        None
    }

    /// RFC 4951 §3.2: restores the tunnels and sessions of `state` (persisted before a
    /// restart; no traffic yet) and starts a recovery tunnel for each tunnel whose peer was
    /// control-channel failover capable. The others are cleared silently (events). Call on a
    /// fresh registry; records clashing with live IDs are skipped.
    pub fn recover(
        &mut self,
        mut state: RecoveryState,
        now: Instant,
    ) -> Result<RecoveryReport, L2tpError> {
        if state.format != STATE_FORMAT {
            return Err(L2tpError::BadState(format!(
                "format {}, expected {STATE_FORMAT}",
                state.format
            )));
        }
        self.now = Some(now);
        let mut report = RecoveryReport::default();
        let secret_ref = self.cfg.secret_bytes().map(failover::secret_ref);
        let seqs: HashMap<u32, &failover::SequenceRecord> =
            state.sequences.iter().map(|q| (q.tunnel, q)).collect();
        // Each tunnel's sessions as one run (a store lists them so already): linear, not
        // tunnels × sessions.
        state.sessions.sort_by_key(|s| s.tunnel);
        let mut recover = Vec::new();
        for rec in &state.tunnels {
            let Some(version) = rec.l2tp_version() else {
                self.counters.count_failover("record skipped (bad version)");
                continue;
            };
            if self.tunnels.contains_key(&rec.id) || !self.tunnel_ids.reserve(rec.id) {
                self.counters.count_failover("record skipped (ID in use)");
                continue;
            }
            // Transparent resume when the sequence state is there and consistent
            // (`tunnel/resume.rs`); RFC 4951 recovery or a farewell StopCCN otherwise.
            let resumed = seqs.get(&rec.id).filter(|_| self.cfg.resume).and_then(|q| {
                Tunnel::resume(rec, q, version, self.cfg.clone(), &mut self.rng, now)
                    .map_err(|e| {
                        self.counters.count_failover("sequence record unusable");
                        tracing::warn!(tunnel = rec.id, %e, "cannot resume");
                    })
                    .ok()
            });
            let resuming = resumed.is_some();
            let t = match resumed {
                Some(t) => t,
                None => Tunnel::restore(rec, version, self.cfg.clone(), &mut self.rng),
            };
            self.tunnels.insert(rec.id, t);
            self.track(rec.id);
            self.counters.count_failover("tunnel restored");
            let first = state.sessions.partition_point(|s| s.tunnel < rec.id);
            let end = first + state.sessions[first..].partition_point(|s| s.tunnel == rec.id);
            for s in &mut state.sessions[first..end] {
                if version == Version::V3 && !self.v3_sessions.reserve(s.id) {
                    self.counters.count_failover("record skipped (ID in use)");
                    continue;
                }
                let Some(t) = self.tunnels.get_mut(&rec.id) else {
                    continue;
                };
                let up = t.restore_session(s);
                self.counters.count_failover("session restored");
                report.sessions += 1;
                self.failover_events
                    .push_back(FailoverEvent::SessionRestored {
                        up: Box::new(up),
                        app: std::mem::take(&mut s.app),
                    });
            }
            if resuming {
                self.with_tunnel(rec.id, now, |t, ctx| t.start_resume(ctx));
                report.resuming.push(rec.id);
                continue;
            }
            let capable = rec.peer_failover.is_some_and(|f| f.control) && self.cfg.persists();
            let why = if !capable {
                Some("the peer or we cannot recover the control channel")
            } else if rec.secret_ref != secret_ref {
                // §3.2.1: the recovery tunnel MUST use the old tunnel's secret.
                Some("the configured secret is not the old tunnel's")
            } else {
                None
            };
            if let Some(why) = why {
                // Never leave the peer half-open: a StopCCN (RFC 2661 §5.7) when one can
                // be sent (an L2TPv3 tunnel with a Message Digest cannot be signed without
                // the nonces of its sequence record).
                let farewell = self.tunnels.get(&rec.id).is_some_and(|t| !t.has_digest());
                let (ns, nr) = (rec.ns, rec.nr);
                self.with_tunnel(rec.id, now, |t, ctx| {
                    if farewell {
                        t.start_farewell(ctx, ns, nr);
                    } else {
                        t.clear_silently(ctx, why.into());
                    }
                });
                report.cleared.push(rec.id);
                continue;
            }
            recover.push((rec.id, rec.peer_tunnel_id));
        }
        // Recovery tunnels once every record's ID is taken: a recovery tunnel's random ID
        // must not be one a later record needs (that tunnel was skipped, "ID in use").
        for (old, old_peer) in recover {
            if self.start_recovery_of(old, old_peer, now) {
                report.recovering.push(old);
            } else {
                report.cleared.push(old);
            }
        }
        Ok(report)
    }

    /// Opens the recovery tunnel of the restored tunnel `old` (RFC 4951 §3.2.1); when no
    /// tunnel ID is free `old` is cleared silently. Whether it was opened.
    pub(super) fn start_recovery_of(&mut self, old: TunnelId, old_peer: u32, now: Instant) -> bool {
        let Some((peer, version)) = self.tunnels.get(&old).map(|t| (t.peer(), t.version())) else {
            return false;
        };
        let Some(rid) = self.new_tunnel(peer, version, true) else {
            self.with_tunnel(old, now, |t, ctx| {
                t.clear_silently(ctx, "no tunnel ID free".into())
            });
            return false;
        };
        self.with_tunnel(rid, now, |t, ctx| t.start_recovery(ctx, old, old_peer));
        self.failover_events
            .push_back(FailoverEvent::RecoveryStarted {
                tunnel: old,
                recovery_tunnel: rid,
            });
        true
    }

    /// Tells the peer of a control connection this node has no state for (its fast-path
    /// entries outlived the failover store) that it is gone: a StopCCN (RFC 2661 §5.7) to
    /// `peer_tunnel` at `peer`, in the peer's sequence, found with the farewell probes
    /// (`tunnel/resume.rs`). `our_id`: the tunnel ID the peer knows us by. Ignored when that
    /// ID is in use here or the version cannot carry it; whether it was started.
    pub fn farewell(
        &mut self,
        peer: Peer,
        version: Version,
        our_id: TunnelId,
        peer_tunnel: u32,
        now: Instant,
    ) -> bool {
        self.now = Some(now);
        if our_id == 0
            || peer_tunnel == 0
            || self.tunnels.contains_key(&our_id)
            || !self.tunnel_ids.reserve(our_id)
            || (version == Version::V2
                && (peer.transport != Transport::Udp || peer_tunnel > u32::from(u16::MAX)))
        {
            return false;
        }
        let mut t = Tunnel::new(
            our_id,
            version,
            peer,
            false,
            self.cfg.clone(),
            &mut self.rng,
        );
        if t.has_digest() {
            // Cannot be signed without the nonces of the lost control connection.
            self.tunnel_ids.free(our_id);
            return false;
        }
        t.adopt(peer_tunnel);
        self.tunnels.insert(our_id, t);
        self.track(our_id);
        let base = self.rng.u32() as u16;
        self.with_tunnel(our_id, now, |t, ctx| t.start_farewell(ctx, base, 0));
        true
    }
}

/// What [`Registry::recover`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Tunnels resumed from their sequence state (transparent resume, `tunnel/resume.rs`),
    /// waiting for the peer's confirmation.
    pub resuming: Vec<TunnelId>,
    /// Old tunnels whose recovery tunnel was started.
    pub recovering: Vec<TunnelId>,
    /// Old tunnels cleared at once (peer not failover capable, secret changed, no ID free):
    /// closed with a StopCCN (farewell) when one can be sent, else silently.
    pub cleared: Vec<TunnelId>,
    /// Sessions restored (including those of cleared tunnels, reported down at once).
    pub sessions: usize,
}
