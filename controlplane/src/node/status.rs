//! The node as the operator sees it: the status types the control socket, `l2xdpctl` and the
//! metrics endpoint serve (tunnels, sessions, one session in detail, the glue's counters, RFC
//! 4951 failover status and recoveries), and the [`Node`] queries that build them.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Instant;

use l2xdp_wire::l2tp::header::Version;
use serde::Serialize;

use crate::l2tp::{Peer, TunnelId};
use crate::ppp::Link;

use super::{Node, SessionRef, SessionState};

/// One tunnel as the operator sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TunnelStatus {
    /// Our tunnel ID.
    pub tunnel: TunnelId,
    /// The peer's tunnel ID.
    pub peer_tunnel: u32,
    /// The peer.
    pub peer: Peer,
    /// L2TP version.
    pub version: Version,
    /// Control connection state.
    pub state: String,
    /// The peer's Host Name.
    pub peer_host_name: String,
    /// Sessions in the tunnel.
    pub sessions: usize,
    /// We opened it.
    pub initiator: bool,
    /// The peer's RFC 4951 Failover Capability.
    pub peer_failover: Option<crate::l2tp::FailoverCapability>,
    /// An RFC 4951 recovery tunnel: the old tunnel (our ID) it recovers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovery_of: Option<TunnelId>,
}

/// One session as the operator sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionStatus {
    /// Our tunnel ID.
    pub tunnel: TunnelId,
    /// Our session ID.
    pub session: u32,
    /// The peer's session ID.
    pub peer_session: u32,
    /// L2TP version.
    pub version: Version,
    /// The authenticated (or, for the emulator, configured) user.
    pub user: Option<String>,
    /// PPP phase ("Network" when up), or "none" for pseudowires.
    pub ppp: String,
    /// The subscriber's IPv4 address, once PPP is up.
    pub ipv4: Option<Ipv4Addr>,
    /// Installed in the fast path.
    pub installed: bool,
}

/// Counters of the glue (the registry and the links count their own).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct NodeCounters {
    /// L2TPv2 data messages handed to a PPP link.
    pub ppp_frames_in: u64,
    /// PPP frames sent in L2TPv2 data messages.
    pub ppp_frames_out: u64,
    /// Data messages for a session without a PPP link (unknown, v3, or not up).
    pub data_unknown_session: u64,
    /// Data messages that did not parse.
    pub data_malformed: u64,
    /// L2TPv3 data messages that reached the control plane (a pseudowire's frames are the
    /// fast path's business: they arrive here only on a node without one), dropped.
    pub data_v3: u64,
    /// Fast-path installs and removals that failed.
    pub dataplane_errors: u64,
    /// Fast-path installs (an L2TPv2 session we accept is installed twice: unbound when it
    /// comes up, bound to the subscriber's addresses when PPP is up).
    pub installs: u64,
    /// Sessions removed from the fast path.
    pub removals: u64,
    /// Failover store operations applied.
    pub store_ops: u64,
    /// Failover store commits (one per driver turn that produced operations).
    pub store_commits: u64,
    /// Failover store operations or commits that failed.
    pub store_errors: u64,
    /// Sessions restored by [`Node::recover`].
    pub restored: u64,
    /// Fast-path entries kept as they were by [`Node::recover`].
    pub restored_kept: u64,
    /// Fast-path entries removed by [`Node::recover`] because no session was restored for them.
    pub stale_removed: u64,
    /// Control connections that went down.
    pub tunnels_down: u64,
    /// Sessions that went down.
    pub sessions_down: u64,
}

/// Where an RFC 4951 recovery of one old tunnel stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RecoveryOutcome {
    /// The recovery tunnel is being set up, or sessions are being confirmed (§3.2, §3.3).
    Recovering,
    /// The tunnel was recovered (its sessions confirmed or cleared, §3.3).
    Recovered,
    /// It could not be: the tunnel and its sessions were cleared silently.
    Failed,
}

/// The last RFC 4951 recovery of one old tunnel, as [`Node::recover`] started it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecoveryRecord {
    /// The old tunnel (our ID, kept by the recovery).
    pub tunnel: TunnelId,
    /// Where it stands.
    pub outcome: RecoveryOutcome,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Sessions restored from the store for it; once recovered, those that survived.
    pub sessions: usize,
    /// From the start of the recovery to its end (`None` while recovering).
    pub duration_ms: Option<u64>,
    /// When the recovery started (seconds since the Unix epoch).
    pub started_unix: u64,
    #[serde(skip)]
    pub(super) started: Instant,
}

/// Recoveries ended since the node started (restarts and failover drills each start a new node).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RecoveryTotals {
    /// Tunnels recovered.
    pub recovered: u64,
    /// Tunnels that could not be recovered.
    pub failed: u64,
    /// Sum of the durations of the recovered tunnels' recoveries, ms.
    pub duration_ms_sum: u64,
}

/// RFC 4951 as the operator sees it: per tunnel, what was negotiated and how the last
/// recovery went.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FailoverStatus {
    /// Our Failover Capability (`[l2tp.failover]`); `None`: none advertised.
    pub ours: Option<crate::l2tp::FailoverConfig>,
    /// Whether tunnels and sessions are persisted for recovery (C bit and a state store).
    pub persisting: bool,
    /// Every tunnel.
    pub tunnels: Vec<TunnelFailover>,
    /// The recoveries started by the last [`Node::recover`] (restart or drill).
    pub recoveries: Vec<RecoveryRecord>,
    /// Ended recoveries.
    pub totals: RecoveryTotals,
    /// The L2TP layer's RFC 4951 step counters (recovery tunnels, resets, FSQ/FSR, ...).
    pub counters: std::collections::BTreeMap<&'static str, u64>,
}

/// One tunnel's failover state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TunnelFailover {
    /// Our tunnel ID.
    pub tunnel: TunnelId,
    /// The peer.
    pub peer: Peer,
    /// Control connection state.
    pub state: String,
    /// "normal", or "recovery of N" for a recovery tunnel (RFC 4951 §3.2.1).
    pub role: String,
    /// The peer's Failover Capability.
    pub peer_failover: Option<crate::l2tp::FailoverCapability>,
    /// Control-channel failover negotiated (C on both sides, RFC 4951 §5.1).
    pub control: bool,
    /// Data-channel failover negotiated (D on both sides).
    pub data: bool,
    /// A restored old tunnel waiting for its control channel reset (§3.2.2).
    pub recovering: bool,
    /// The last recovery of this tunnel, when there was one.
    pub last_recovery: Option<RecoveryRecord>,
}

/// One session in detail (`show session`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionDetail {
    /// What `sessions` lists.
    #[serde(flatten)]
    pub status: SessionStatus,
    /// L2TP session state.
    pub state: String,
    /// The peer (LAC) address.
    pub peer: Peer,
    /// The local address the peer talks to.
    pub local: Option<SocketAddr>,
    /// The peer's tunnel ID.
    pub peer_tunnel: u32,
    /// PPP: LCP state.
    pub lcp: Option<String>,
    /// PPP: IPCP state.
    pub ipcp: Option<String>,
    /// PPP: IPv6CP state.
    pub ipv6cp: Option<String>,
    /// Our (the LNS's) IPv4 address on the link.
    pub local_ipv4: Option<Ipv4Addr>,
    /// Fast-path counters (`None` when not installed or unreadable).
    pub counters: Option<l2xdp_dataplane_api::SessionCounters>,
    /// RFC 4951: persisted for recovery.
    pub persisted: bool,
    /// RFC 4951 §3.3: stale after a failover, not confirmed yet.
    pub stale: Option<bool>,
    /// RFC 4951 §3.3: confirmed (FSQ/FSR) since the last failover.
    pub synced: Option<bool>,
}

/// The sizes of a node's tables: a memory proxy that the state-machine fuzzer
/// (`controlplane/fuzz`) bounds after every step ([`Node::footprint`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Footprint {
    /// The registry's tables.
    pub registry: crate::l2tp::RegistryFootprint,
    /// Sessions established at the L2TP level.
    pub sessions: usize,
    /// PPP links.
    pub links: usize,
    /// Link deadlines (the ordered set and the per-link index).
    pub deadlines: usize,
    pub deadline_index: usize,
    /// PPP client credentials of sessions being opened.
    pub client_auth: usize,
    /// The sender map: the local address each peer talks to.
    pub senders: usize,
    /// Datagrams and events not polled yet.
    pub outbox: usize,
    pub events: usize,
    /// Restored sessions waiting for their tunnel's recovery.
    pub deferred_installs: usize,
}

impl Node {
    /// The glue's counters.
    pub fn counters(&self) -> NodeCounters {
        self.counters
    }

    /// The sizes of the node's tables (see [`Footprint`]).
    pub fn footprint(&self) -> Footprint {
        Footprint {
            registry: self.registry.footprint(),
            sessions: self.sessions.len(),
            links: self.sessions.values().filter(|s| s.link.is_some()).count(),
            deadlines: self.deadlines.len(),
            deadline_index: self.deadline_of.len(),
            client_auth: self.client_auth.len(),
            senders: self.local_of.len(),
            outbox: self.outbox.len(),
            events: self.events.len(),
            deferred_installs: self.deferred_installs.len(),
        }
    }

    /// Sessions known, and how many have PPP up.
    pub fn session_counts(&self) -> (usize, usize) {
        let up = self
            .sessions
            .values()
            .filter(|s| s.link.as_deref().is_some_and(Link::is_up))
            .count();
        (self.sessions.len(), up)
    }

    /// Sessions installed in the fast path (what `status` reports: counted, not listed —
    /// `status` is polled, and listing a million sessions to count them held the driver).
    pub fn installed_count(&self) -> usize {
        self.sessions.values().filter(|s| s.installed).count()
    }

    /// Every tunnel, for the operator. An RFC 4951 recovery tunnel is listed while it
    /// recovers (with the old tunnel it recovers); once it is closing it is not: it has done
    /// its work, and is only held for the StopCCN exchange (RFC 2661 §5.7, RFC 3931 §3.3:
    /// kept a full retransmission cycle to acknowledge a retransmitted StopCCN), which the
    /// registry still does.
    pub fn tunnel_status(&self) -> Vec<TunnelStatus> {
        use crate::l2tp::tunnel::{Role, TunnelState};
        let mut v: Vec<TunnelStatus> = self
            .registry
            .tunnels()
            .filter(|t| {
                !(matches!(t.role(), Role::Recovery { .. })
                    && matches!(t.state(), TunnelState::Closing | TunnelState::Finished))
            })
            .map(|t| TunnelStatus {
                tunnel: t.id(),
                peer_tunnel: t.peer_tunnel_id(),
                peer: t.peer(),
                version: t.version(),
                state: format!("{:?}", t.state()),
                peer_host_name: String::from_utf8_lossy(t.peer_host_name()).into_owned(),
                sessions: t.session_count(),
                initiator: t.is_initiator(),
                peer_failover: t.peer_failover(),
                recovery_of: match t.role() {
                    Role::Recovery { old } => Some(old),
                    Role::Normal => None,
                },
            })
            .collect();
        v.sort_by_key(|t| t.tunnel);
        v
    }

    /// Every established session, for the operator.
    pub fn session_status(&self) -> Vec<SessionStatus> {
        let mut v: Vec<SessionStatus> = self
            .sessions
            .iter()
            .map(|(&key, st)| self.session_status_of(key, st))
            .collect();
        v.sort_by_key(|s| (s.tunnel, s.session));
        v
    }

    /// One session in detail; `None` when there is no such session.
    pub fn session_detail(&self, key: SessionRef) -> Option<SessionDetail> {
        let st = self.sessions.get(&key)?;
        let status = self.session_status_of(key, st);
        let tunnel = self.registry.tunnel(key.0);
        let link = st.link.as_deref();
        let local_ipv4 = link
            .and_then(Link::state)
            .and_then(|s| s.link_up().local_ipv4);
        Some(SessionDetail {
            status,
            state: tunnel
                .and_then(|t| t.session_state(key.1))
                .map_or_else(|| "unknown".into(), |s| format!("{s:?}")),
            peer: st.up.peer,
            local: self.local_of.get(&st.up.peer).copied(),
            peer_tunnel: st.up.peer_tunnel,
            lcp: link.map(|l| format!("{:?}", l.lcp_state())),
            ipcp: link.and_then(Link::ipcp_state).map(|s| format!("{s:?}")),
            ipv6cp: link.and_then(Link::ipv6cp_state).map(|s| format!("{s:?}")),
            local_ipv4,
            counters: if st.installed {
                self.dataplane.counters(&st.up.our_ids).ok()
            } else {
                None
            },
            persisted: self.store.is_some() && self.registry.config().persists(),
            stale: tunnel.and_then(|t| t.session_is_stale(key.1)),
            synced: tunnel.and_then(|t| t.session_is_synced(key.1)),
        })
    }

    /// A session's fast-path key.
    pub fn session_key(&self, key: SessionRef) -> Option<l2xdp_wire::datapath::SessionKey> {
        self.sessions.get(&key).map(|s| s.up.our_ids)
    }

    /// RFC 4951 state for the operator.
    pub fn failover_status(&self) -> FailoverStatus {
        let ours = self.registry.config().failover;
        let mut tunnels: Vec<TunnelFailover> = self
            .registry
            .tunnels()
            .map(|t| {
                let peer = t.peer_failover();
                TunnelFailover {
                    tunnel: t.id(),
                    peer: t.peer(),
                    state: format!("{:?}", t.state()),
                    role: match t.role() {
                        crate::l2tp::tunnel::Role::Normal => "normal".into(),
                        crate::l2tp::tunnel::Role::Recovery { old, .. } => {
                            format!("recovery of {old}")
                        }
                    },
                    peer_failover: peer,
                    control: ours.is_some_and(|o| o.control) && peer.is_some_and(|p| p.control),
                    data: ours.is_some_and(|o| o.data) && peer.is_some_and(|p| p.data),
                    recovering: t.is_recovering(),
                    last_recovery: self.recoveries.get(&t.id()).cloned(),
                }
            })
            .collect();
        tunnels.sort_by_key(|t| t.tunnel);
        FailoverStatus {
            ours,
            persisting: self.store.is_some() && self.registry.config().persists(),
            tunnels,
            recoveries: self.recoveries.values().cloned().collect(),
            totals: self.recovery_totals,
            counters: self.registry.counters().failover,
        }
    }

    /// The recoveries started by the last [`Node::recover`].
    pub fn recoveries(&self) -> Vec<RecoveryRecord> {
        self.recoveries.values().cloned().collect()
    }

    /// Ended recoveries.
    pub fn recovery_totals(&self) -> RecoveryTotals {
        self.recovery_totals
    }

    /// The address pool: (capacity, leased); `None` without a pool.
    pub fn pool_usage(&self) -> Option<(u64, u64)> {
        self.cfg.pool.as_ref().map(|p| {
            let p = p.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            (p.capacity(), p.leased())
        })
    }

    fn session_status_of(&self, (tunnel, session): SessionRef, st: &SessionState) -> SessionStatus {
        SessionStatus {
            tunnel,
            session,
            peer_session: st.up.peer_session,
            version: st.up.version,
            user: st.link.as_ref().and_then(|l| l.user().map(str::to_string)),
            ppp: st
                .link
                .as_ref()
                .map_or_else(|| "none".to_string(), |l| format!("{:?}", l.phase())),
            ipv4: st.ipv4,
            installed: st.installed,
        }
    }
}
