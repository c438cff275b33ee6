//! RFC 4951 failover in the node: what is persisted with a session besides its L2TP record
//! ([`AppData`]: the PPP link's state, the client's user), [`Node::recover`] — rebuilding a
//! restarted node from the state store, its sessions, PPP links and fast-path entries — and
//! the registry's failover events (store operations, restored sessions, control channel
//! resets, recovered and failed tunnels, RFC 4951 §3.2, §3.3).
//!
//! The records and the store are in `crate::l2tp::failover`; a tunnel's own part of the
//! recovery is in `crate::l2tp::tunnel` (`tunnel/recovery.rs`).

use std::collections::HashMap;
use std::time::Instant;

use l2xdp_dataplane_api::{Binding, SessionEntry};
use l2xdp_wire::l2tp::header::Version;
use serde::{Deserialize, Serialize};

use crate::l2tp::failover::{codec, StoreError, StoreOp};
use crate::l2tp::{FailoverEvent, L2tpError, RecoveryReport, Registry, SessionUp, TunnelId};
use crate::ppp::{Link, LinkState, LinkUp};

use super::fastpath::unbound;
use super::{Node, NodeEvent, SessionRef, SessionState};
use super::{RecoveryOutcome, RecoveryRecord};

/// What the node attaches to a persisted session ([`Registry::set_session_app_data`]) and
/// reads back in [`Node::recover`]: encoded with [`codec::to_bytes`] (postcard, about 40
/// bytes; the record that carries it has the format byte), or — a session persisted by
/// l2xdpd before format 2, migrated — its JSON text ([`AppData::decode`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppData {
    /// The link's state while PPP is up; `None` before, and while it renegotiates.
    pub ppp: Option<LinkState>,
    /// Client role (the LAC): the user the PPP client authenticates as. Its password is not
    /// stored: a restored client takes it from the node's credentials (the users file), and
    /// needs it only if the LNS renegotiates. (Always written: the binary encoding has no
    /// field names, so no field may be skipped; `default` reads format 1 JSON without it.)
    #[serde(default)]
    pub client_user: Option<String>,
}

impl AppData {
    /// The bytes persisted with the session (empty for the default: nothing to restore).
    pub fn encode(&self) -> Result<Box<[u8]>, codec::CodecError> {
        if *self == AppData::default() {
            return Ok(Box::default());
        }
        codec::to_bytes(self).map(Vec::into_boxed_slice)
    }

    /// What [`AppData::encode`] wrote, or the JSON of a format 1 record (it starts with `{`,
    /// which no binary `AppData` does: its first byte is an `Option` tag, 0 or 1).
    pub fn decode(bytes: &[u8]) -> Result<AppData, codec::CodecError> {
        match bytes.first() {
            None => Ok(AppData::default()),
            Some(b'{') => Ok(serde_json::from_slice(bytes)?),
            Some(_) => codec::from_bytes(bytes),
        }
    }
}

/// Why [`Node::recover`] failed.
#[derive(Debug, thiserror::Error)]
pub enum RecoverError {
    /// The node has no store.
    #[error("no failover state store configured")]
    NoStore,
    /// The store could not be read.
    #[error("loading the failover state: {0}")]
    Store(#[from] StoreError),
    /// The registry refused the state.
    #[error("recovering: {0}")]
    Registry(#[from] L2tpError),
}

impl Node {
    /// RFC 4951 §3.2: call once at start-up, before any input, on a node with a store. Loads
    /// the persisted tunnels and sessions, restores them in the registry (which opens a
    /// recovery tunnel per tunnel), rebuilds each session's state — a v2 server session's
    /// PPP link from its saved [`LinkState`] without renegotiating — keeps its fast-path
    /// entry (installs it when missing), and removes fast-path entries of sessions that were
    /// not restored.
    pub fn recover(&mut self, now: Instant) -> Result<RecoveryReport, RecoverError> {
        let state = self.store.as_ref().ok_or(RecoverError::NoStore)?.load()?;
        let report = self.registry.recover(state, now)?;
        self.recoveries.clear();
        let unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        for (&t, outcome) in report
            .resuming
            .iter()
            .chain(report.recovering.iter())
            .map(|t| (t, RecoveryOutcome::Recovering))
            .chain(report.cleared.iter().map(|t| (t, RecoveryOutcome::Failed)))
        {
            self.recoveries.insert(
                t,
                RecoveryRecord {
                    tunnel: t,
                    outcome,
                    reason: (outcome == RecoveryOutcome::Failed)
                        .then(|| "cleared at once (StopCCN where one can be sent): no sequence state to resume, and the peer or we cannot recover the control channel, the secret changed, or no tunnel ID was free".to_string()),
                    sessions: state_sessions(&self.registry, t),
                    duration_ms: (outcome == RecoveryOutcome::Failed).then_some(0),
                    started_unix: unix,
                    started: now,
                },
            );
            if outcome == RecoveryOutcome::Failed {
                self.recovery_totals.failed += 1;
            }
        }
        // What survived in the fast path, listed once: each restored session looks its entry
        // up here (listing per session made recovery quadratic in the number of sessions).
        self.fast_path_snapshot = match self.dataplane.sessions() {
            Ok(v) => Some(v.into_iter().map(|e| (e.key(), e)).collect()),
            Err(err) => {
                self.counters.dataplane_errors += 1;
                tracing::warn!(%err, "listing the fast path failed");
                None
            }
        };
        // Restored sessions first: the registry may already have reported some of them down
        // (tunnels it could not recover), which must find them.
        self.drain_failover(now);
        let snapshot = self.fast_path_snapshot.take();
        let keep: std::collections::HashSet<_> =
            self.sessions.values().map(|s| s.up.our_ids).collect();
        // Entries of sessions that were not restored are stale; the peers of tunnels only the
        // fast path still names are told (a StopCCN, issue 16).
        let mut stale = Vec::new();
        for (key, entry) in snapshot.into_iter().flat_map(HashMap::into_iter) {
            if keep.contains(&key) {
                continue;
            }
            match self.dataplane.remove(&key) {
                Ok(()) => self.counters.stale_removed += 1,
                Err(err) => {
                    self.counters.dataplane_errors += 1;
                    tracing::warn!(?key, %err, "removing a stale fast-path entry failed");
                }
            }
            stale.push(entry);
        }
        self.farewell_orphans(&stale, now);
        tracing::info!(
            resuming = report.resuming.len(),
            recovering = report.recovering.len(),
            cleared = report.cleared.len(),
            sessions = report.sessions,
            "failover state restored"
        );
        self.pump(now);
        Ok(report)
    }

    /// The peers of L2TPv2 tunnels that only the fast path still names (`entries`: fast-path
    /// sessions this node does not own — its failover state is gone, or was never kept) get
    /// a StopCCN (RFC 2661 §5.7, Result Code 1) in their own sequence, found with the
    /// farewell probes ([`Registry::farewell`]), instead of being left half-open until their
    /// timers run out. One per tunnel; tunnels this node has are left alone. An L2TPv3
    /// entry does not name the peer's Control Connection ID: its peer is not told. Returns
    /// how many were started.
    pub fn farewell_orphans(&mut self, entries: &[SessionEntry], now: Instant) -> usize {
        use l2xdp_wire::datapath::SessionKey;
        let mut seen = std::collections::HashSet::new();
        let mut started = 0;
        for e in entries {
            let (
                SessionKey::V2 { tunnel_id, .. },
                SessionKey::V2 {
                    tunnel_id: peer_tid,
                    ..
                },
            ) = (e.session.our_ids, e.session.peer_ids)
            else {
                continue;
            };
            if !seen.insert(tunnel_id) {
                continue;
            }
            let peer = crate::l2tp::Peer {
                addr: std::net::SocketAddr::new(e.session.peer_addr, e.session.peer_port),
                transport: e.session.transport,
            };
            if self.registry.farewell(
                peer,
                Version::V2,
                u32::from(tunnel_id),
                u32::from(peer_tid),
                now,
            ) {
                started += 1;
            }
        }
        if started > 0 {
            tracing::warn!(
                tunnels = started,
                "fast-path sessions of tunnels this l2xdpd has no state for: their peers get a StopCCN"
            );
        }
        self.pump(now);
        started
    }

    /// Handles the registry's failover events; whether there were any.
    pub(super) fn drain_failover(&mut self, now: Instant) -> bool {
        let mut moved = false;
        while let Some(ev) = self.registry.poll_failover_event() {
            moved = true;
            self.on_failover_event(ev, now);
        }
        moved
    }

    fn on_failover_event(&mut self, ev: FailoverEvent, now: Instant) {
        match ev {
            FailoverEvent::Store(op) => self.apply_store(&op),
            FailoverEvent::SessionRestored { up, app } => self.on_session_restored(up, app, now),
            FailoverEvent::ResetDataSequence { key, .. } => {
                if let Err(e) = self.dataplane.reset_sequence(&key) {
                    self.counters.dataplane_errors += 1;
                    tracing::warn!(?key, %e, "fast-path sequence reset failed");
                }
            }
            FailoverEvent::Recovered { tunnel, sessions } => {
                tracing::info!(tunnel, sessions, "tunnel recovered");
                self.install_deferred(tunnel);
                if let Some(r) = self.recoveries.get_mut(&tunnel) {
                    if r.outcome == RecoveryOutcome::Recovering {
                        let ms = now.saturating_duration_since(r.started).as_millis() as u64;
                        r.outcome = RecoveryOutcome::Recovered;
                        r.sessions = sessions;
                        r.duration_ms = Some(ms);
                        self.recovery_totals.recovered += 1;
                        self.recovery_totals.duration_ms_sum += ms;
                    }
                }
                self.events
                    .push_back(NodeEvent::TunnelRecovered { tunnel, sessions });
            }
            FailoverEvent::Resumed { tunnel, sessions } => {
                tracing::info!(tunnel, sessions, "tunnel resumed");
                self.install_deferred(tunnel);
                if let Some(r) = self.recoveries.get_mut(&tunnel) {
                    if r.outcome == RecoveryOutcome::Recovering {
                        let ms = now.saturating_duration_since(r.started).as_millis() as u64;
                        r.outcome = RecoveryOutcome::Recovered;
                        r.reason = Some("resumed: the same control connection goes on".into());
                        r.sessions = sessions;
                        r.duration_ms = Some(ms);
                        self.recovery_totals.recovered += 1;
                        self.recovery_totals.duration_ms_sum += ms;
                    }
                }
                self.events
                    .push_back(NodeEvent::TunnelRecovered { tunnel, sessions });
            }
            FailoverEvent::RecoveryFailed { tunnel, reason } => {
                tracing::warn!(tunnel, %reason, "tunnel recovery failed");
                self.deferred_installs.retain(|k, _| k.0 != tunnel);
                if let Some(r) = self.recoveries.get_mut(&tunnel) {
                    if r.outcome == RecoveryOutcome::Recovering {
                        r.outcome = RecoveryOutcome::Failed;
                        r.duration_ms =
                            Some(now.saturating_duration_since(r.started).as_millis() as u64);
                        self.recovery_totals.failed += 1;
                    }
                    r.reason = Some(reason.clone());
                }
                self.events
                    .push_back(NodeEvent::RecoveryFailed { tunnel, reason });
            }
            other => tracing::debug!(?other, "failover"),
        }
    }

    /// Puts the sequence state of the tunnels whose Ns, Nr or unacknowledged messages moved
    /// into the store (transparent resume): one record per tunnel and commit, committed with
    /// the rest before the datagrams that carry them leave ([`Node::poll_transmit`]).
    pub(super) fn persist_sequences(&mut self) {
        for op in self.registry.take_sequence_ops() {
            self.apply_store(&op);
        }
    }

    fn apply_store(&mut self, op: &StoreOp) {
        let Some(store) = self.store.as_mut() else {
            return;
        };
        self.uncommitted = true;
        match store.apply(op) {
            Ok(()) => self.counters.store_ops += 1,
            Err(e) => {
                self.counters.store_errors += 1;
                tracing::error!(%e, "persisting failover state failed");
            }
        }
    }

    /// Attaches a session's [`AppData`] (persisted when the registry persists).
    pub(super) fn set_app_data(&mut self, key: SessionRef, data: &AppData, now: Instant) {
        if self.store.is_none() {
            return;
        }
        let v = match data.encode() {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(%e, "encoding session state failed");
                return;
            }
        };
        if let Err(e) = self.registry.set_session_app_data(key.0, key.1, v, now) {
            tracing::debug!(tunnel = key.0, session = key.1, %e, "session state not attached");
        }
    }

    /// A session [`Node::recover`] restored: its state here, its PPP link, its fast path.
    fn on_session_restored(&mut self, up: Box<SessionUp>, app: Box<[u8]>, now: Instant) {
        let key = (up.tunnel, up.session);
        self.counters.restored += 1;
        let app = AppData::decode(&app).unwrap_or_else(|e| {
            tracing::warn!(tunnel = key.0, session = key.1, %e, "unreadable session state");
            AppData::default()
        });
        let mut rng = self.cfg.random.fork();
        let mut ppp_up = None;
        let mut ipv4 = None;
        let (link, binding) = match up.version {
            // The PPP client (the LAC): rebuilt from its saved state as the user it was,
            // with that user's password from the credentials (none stored). Without a saved
            // state the session stays, its PPP not driven any more.
            Version::V2 if up.initiator => {
                let link = match (&app.ppp, &app.client_user) {
                    (Some(saved), Some(user)) => {
                        let password = self
                            .cfg
                            .credentials
                            .lookup(user.as_bytes())
                            .map(|e| e.secret)
                            .unwrap_or_default();
                        ipv4 = saved.local_ipv4;
                        ppp_up = Some(saved.link_up());
                        Some(Link::restore_client(
                            self.cfg.ppp.clone(),
                            user,
                            &password,
                            saved,
                            rng,
                            now,
                        ))
                    }
                    _ => None,
                };
                (link, None)
            }
            Version::V2 => {
                let restored = app.ppp.as_ref().and_then(|saved| {
                    match Link::restore_server(
                        self.cfg.ppp.clone(),
                        self.cfg.credentials.clone(),
                        self.cfg.pool.clone(),
                        saved,
                        rng.fork(),
                        now,
                    ) {
                        Ok(l) => Some((l, saved.link_up())),
                        Err(e) => {
                            tracing::warn!(tunnel = key.0, session = key.1, %e, "PPP not restored, renegotiating");
                            None
                        }
                    }
                });
                match restored {
                    Some((link, u)) => {
                        ipv4 = u.peer_ipv4;
                        let b = Binding::Subscriber {
                            ipv4: u.peer_ipv4,
                            ipv6: Vec::new(),
                        };
                        ppp_up = Some(u);
                        (Some(link), Some(b))
                    }
                    None => {
                        let link = Link::server(
                            self.cfg.ppp.clone(),
                            self.cfg.credentials.clone(),
                            self.cfg.pool.clone(),
                            rng,
                            now,
                        );
                        (Some(link), Some(unbound()))
                    }
                }
            }
            Version::V3 => {
                let b = self
                    .cfg
                    .attachment_circuits
                    .get(&up.remote_end_id)
                    .map(|&ifindex| Binding::AttachmentCircuit { ifindex });
                (None, b)
            }
        };
        let installed = match binding {
            Some(b) => self.restore_entry(&up, ppp_up.as_ref(), b),
            None => false,
        };
        tracing::info!(
            tunnel = key.0,
            session = key.1,
            ppp = ppp_up.is_some(),
            ?ipv4,
            "session restored"
        );
        self.events.push_back(NodeEvent::SessionRestored {
            tunnel: key.0,
            session: key.1,
            ppp: ppp_up.is_some(),
            ipv4,
        });
        let has_link = link.is_some();
        self.sessions.insert(
            key,
            SessionState {
                up,
                link: link.map(Box::new),
                installed,
                ipv4,
                pending_client: None,
                client_user: app.client_user.clone(),
            },
        );
        if has_link {
            self.dirty.push(key);
        }
    }

    /// Keeps a restored session's fast-path entry when it is there with `binding` (the fast
    /// path outlived the control plane); otherwise installs it with `binding`, keeping the
    /// outer addresses of an entry that is there (a restarted node does not know yet which
    /// local address each peer talks to).
    fn restore_entry(&mut self, up: &SessionUp, ppp: Option<&LinkUp>, binding: Binding) -> bool {
        let existing = match &self.fast_path_snapshot {
            Some(snapshot) => snapshot.get(&up.our_ids).cloned(),
            None => match self.dataplane.sessions() {
                Ok(v) => v.into_iter().find(|e| e.key() == up.our_ids),
                Err(e) => {
                    self.counters.dataplane_errors += 1;
                    tracing::warn!(%e, "listing the fast path failed");
                    None
                }
            },
        };
        let entry = match existing {
            Some(e) if e.binding == binding => {
                self.counters.restored_kept += 1;
                return true;
            }
            Some(e) => SessionEntry {
                session: e.session,
                binding,
            },
            // No entry to keep, and a fresh node does not know yet which local address the
            // peer talks to (an entry with 0.0.0.0 as its source would send nothing usable).
            // RFC 4951 §3.2: the recovery tunnel runs between the same endpoints as the old
            // one, so the peer's SCCRP to it tells; the entry is installed when the tunnel is
            // recovered ([`Self::install_deferred`]), or dropped with it if the recovery
            // fails. Until then the session's data is not forwarded (it was not either with
            // its entry gone).
            None if !self.local_of.contains_key(&up.peer) => {
                self.deferred_installs
                    .insert((up.tunnel, up.session), (binding, ppp.cloned()));
                return false;
            }
            None => SessionEntry {
                session: self.template(up, ppp),
                binding,
            },
        };
        self.install_entry(up, &entry)
    }

    /// Installs the fast-path entries of `tunnel`'s restored sessions that had none (see
    /// [`Self::restore_entry`]), now that its recovery taught us our local address.
    fn install_deferred(&mut self, tunnel: TunnelId) {
        let keys: Vec<SessionRef> = self
            .deferred_installs
            .range((tunnel, 0)..=(tunnel, u32::MAX))
            .map(|(k, _)| *k)
            .collect();
        for key in keys {
            let Some((binding, ppp)) = self.deferred_installs.remove(&key) else {
                continue;
            };
            let Some(up) = self.sessions.get(&key).map(|st| st.up.clone()) else {
                continue; // cleared by the recovery (FSR said it is gone)
            };
            let ok = self.install(&up, ppp.as_ref(), binding);
            if let Some(st) = self.sessions.get_mut(&key) {
                st.installed = ok;
            }
        }
    }
}

/// Sessions a restored tunnel has (for a recovery's record).
fn state_sessions(registry: &Registry, t: TunnelId) -> usize {
    registry.tunnel(t).map_or(0, |t| t.session_count())
}

#[cfg(test)]
#[path = "recovery_tests.rs"]
mod tests;
