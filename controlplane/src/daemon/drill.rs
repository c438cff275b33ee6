//! `failover drill`: [`Running::drill`] drops the node's control state as a crash of l2xdpd
//! would and runs the RFC 4951 recovery from the persisted store in a new node, as a
//! restarted l2xdpd does — the fast path untouched and handed over as it is.

use l2xdp_dataplane_api::MemoryDataPlane;
use serde::Serialize;

use super::start::node_without_store;
use super::{Running, StartError};
use crate::random::Random;

/// Why a failover drill did not run.
#[derive(Debug, thiserror::Error)]
pub enum DrillError {
    /// Nothing is persisted: every session would be lost.
    #[error("no failover drill without RFC 4951 state: set [l2tp.failover] control = true (and daemon.state_dir); without persisted state a failover loses every session")]
    NoFailover,
    /// Some tunnels would be cleared.
    #[error("tunnels {0:?} did not negotiate control-channel failover with their peer (RFC 4951 §5.1): a failover would clear them and their sessions; force the drill (l2xdpctl failover drill --force) to clear them anyway")]
    NotNegotiated(Vec<crate::l2tp::TunnelId>),
    /// The new node could not be built.
    #[error("building the new control state: {0}")]
    Start(#[from] StartError),
    /// The recovery could not start.
    #[error(transparent)]
    Recover(#[from] crate::node::RecoverError),
    /// The control plane stopped.
    #[error(transparent)]
    Stopped(#[from] crate::driver::Stopped),
}

/// What a failover drill did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DrillReport {
    /// Sessions restored from the store.
    pub sessions_restored: usize,
    /// Per old tunnel: outcome and duration.
    pub tunnels: Vec<crate::node::RecoveryRecord>,
    /// Every tunnel's recovery ended (recovered or failed) within the time limit.
    pub complete: bool,
    /// From dropping the control state to the last recovery's end (or the time limit), ms.
    pub duration_ms: u64,
}

impl Running {
    /// `failover drill`: the node's control state is dropped silently, as a crash of l2xdpd
    /// would drop it — no CDN, no StopCCN, the fast path untouched and handed over as it is —
    /// and a new node runs the RFC 4951 recovery from the persisted store exactly as a
    /// restarted l2xdpd does ([`Node::recover`]). Waits (at most `limit`) for every tunnel's
    /// recovery to end. Refused without persisted state, and — unless `force`, or with `[l2tp]
    /// resume` on (every tunnel is then resumed) — when a tunnel did not negotiate
    /// control-channel failover (it would be cleared).
    ///
    /// [`Node::recover`]: crate::node::Node::recover
    pub async fn drill(
        &self,
        handle: &crate::driver::Handle,
        force: bool,
        limit: std::time::Duration,
    ) -> Result<DrillReport, DrillError> {
        let cfg = self.config.lock().await.clone();
        // Without a store (it could not be opened or written) nothing is persisted either.
        if !cfg.l2tp.persists() || !handle.inspect(|n| n.has_store()).await? {
            return Err(DrillError::NoFailover);
        }
        // With transparent resume no tunnel is cleared by the drill: the new node goes on with
        // every control connection, whatever its peer negotiated.
        if !force && !cfg.l2tp.resume {
            let bad: Vec<_> = handle
                .inspect(|n| n.failover_status())
                .await?
                .tunnels
                .into_iter()
                .filter(|t| t.state == "Established" && !t.control)
                .map(|t| t.tunnel)
                .collect();
            if !bad.is_empty() {
                return Err(DrillError::NotNegotiated(bad));
            }
        }
        let fresh = node_without_store(
            &cfg,
            Box::new(MemoryDataPlane::new()),
            Random::from_os().map_err(StartError::from)?,
            true,
        )?;
        let start = std::time::Instant::now();
        let report = handle
            .update(move |n, now| {
                let mut fresh = fresh;
                fresh.replace_dataplane(n.replace_dataplane(Box::new(MemoryDataPlane::new())));
                // The store's handle is handed over (redb allows one per file and process),
                // holding what the old node committed: what a restarted l2xdpd would open.
                if let Some(store) = n.take_store() {
                    fresh = fresh.with_store(store);
                }
                let old = std::mem::replace(n, fresh);
                // Silently: the old state machines send nothing more.
                drop(old);
                tracing::warn!("failover drill: control state dropped, recovering");
                n.recover(now)
            })
            .await??;
        let (tunnels, complete) = loop {
            let recs = handle.inspect(|n| n.recoveries()).await?;
            let done = recs
                .iter()
                .all(|r| r.outcome != crate::node::RecoveryOutcome::Recovering);
            if done || start.elapsed() >= limit {
                break (recs, done);
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        };
        Ok(DrillReport {
            sessions_restored: report.sessions,
            tunnels,
            complete,
            duration_ms: start.elapsed().as_millis() as u64,
        })
    }
}
