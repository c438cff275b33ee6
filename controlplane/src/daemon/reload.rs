//! `config reload`: [`Running::reload`] re-reads the file and applies what can change live to
//! the running node ([`crate::node::Node::reconfigure`]); [`live_refusals`] names what cannot
//! change without a restart (a restart keeps the sessions: RFC 4951 recovery).

use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;

use crate::config_file::ConfigError;
use crate::ppp::Credentials;

use super::start::{advertised, attachment_circuits, gateway};
use super::{DaemonConfig, Running};

/// A field `config reload` cannot change, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    /// The dotted field.
    pub field: &'static str,
    /// Why it cannot change while l2xdpd runs.
    pub why: &'static str,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} cannot change live: {}", self.field, self.why)
    }
}

/// The fields that differ between the running configuration `old` and `new` but cannot
/// change without a restart of l2xdpd (a restart keeps the sessions: RFC 4951 recovery).
pub fn live_refusals(old: &DaemonConfig, new: &DaemonConfig) -> Vec<Refusal> {
    let mut out = Vec::new();
    let mut check = |differs: bool, field: &'static str, why: &'static str| {
        if differs {
            out.push(Refusal { field, why });
        }
    };
    check(
        old.radius != new.radius,
        "radius",
        "the RADIUS client's sockets and servers are set up at start-up",
    );
    let (o, n) = (&old.daemon, &new.daemon);
    check(
        o.listen != n.listen,
        "daemon.listen",
        "the L2TP sockets are bound at start-up and the tunnels are bound to them",
    );
    check(
        o.listen_ip != n.listen_ip,
        "daemon.listen_ip",
        "the L2TP sockets are bound at start-up and the tunnels are bound to them",
    );
    check(
        o.control_socket != n.control_socket,
        "daemon.control_socket",
        "the control socket is bound at start-up",
    );
    check(
        o.control_socket_group != n.control_socket_group,
        "daemon.control_socket_group",
        "the control socket is bound at start-up",
    );
    check(
        o.on_damaged_store != n.on_damaged_store,
        "daemon.on_damaged_store",
        "the failover store is opened at start-up",
    );
    check(
        o.state_dir != n.state_dir,
        "daemon.state_dir",
        "the running tunnels' RFC 4951 state is persisted there",
    );
    check(
        old.dataplane.mode != new.dataplane.mode,
        "dataplane.mode",
        "the fast path is opened at start-up and holds the running sessions",
    );
    check(
        old.dataplane.pin_dir != new.dataplane.pin_dir,
        "dataplane.pin_dir",
        "the fast path is opened at start-up and holds the running sessions",
    );
    check(
        old.metrics != new.metrics,
        "metrics",
        "the metrics listener is bound at start-up",
    );
    check(
        old.initiator != new.initiator,
        "initiator",
        "the initiator's tunnels and sessions are opened at start-up (open_session opens more)",
    );
    check(
        old.l2tp.failover != new.l2tp.failover,
        "l2tp.failover",
        "the Failover Capability was advertised to the peers of the running tunnels and decides what is persisted (RFC 4951 §5.1)",
    );
    out
}

/// What `config reload` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReloadReport {
    /// The file re-read.
    pub path: PathBuf,
    /// The sections that changed (and were applied); `users` is re-read every time.
    pub changed: Vec<&'static str>,
    /// The address pool after the reload: capacity and leased.
    pub pool: Option<(u64, u64)>,
}

/// Why `config reload` changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The file does not parse or check.
    #[error("{0} (the running configuration is unchanged)")]
    Config(#[from] ConfigError),
    /// Fields that cannot change live.
    #[error("refused (the running configuration is unchanged): {}", list(.0))]
    Refused(Vec<Refusal>),
    /// The control plane stopped.
    #[error(transparent)]
    Stopped(#[from] crate::driver::Stopped),
    /// The fast path did not take the new SCCRQ budget.
    #[error("setting the fast path's SCCRQ budget to {per_sec}/s failed (the running configuration is unchanged): {source}")]
    SccrqBudget {
        /// The new `[l2tp.limits] xdp_sccrq_per_sec`.
        per_sec: u32,
        /// What the fast path said.
        source: l2xdp_dataplane_api::DataPlaneError,
    },
    /// The fast path did not take the new gateway address.
    #[error("setting the fast path's gateway address to {address:?} failed (the running configuration is unchanged): {source}")]
    Gateway {
        /// The new `[ppp.ipcp] local_address` (`None`: IPCP off).
        address: Option<std::net::Ipv4Addr>,
        /// What the fast path said.
        source: l2xdp_dataplane_api::DataPlaneError,
    },
}

fn list(r: &[Refusal]) -> String {
    r.iter()
        .map(Refusal::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl Running {
    /// `config reload`: re-reads the file; refuses it whole when it does not parse or changes
    /// a field [`live_refusals`] names; otherwise applies it to the node
    /// ([`Node::reconfigure`]) without touching a tunnel or session that is up.
    ///
    /// [`Node::reconfigure`]: crate::node::Node::reconfigure
    pub async fn reload(
        &self,
        handle: &crate::driver::Handle,
    ) -> Result<ReloadReport, ReloadError> {
        let mut running = self.config.lock().await;
        let new = DaemonConfig::load(&self.path)?;
        let refused = live_refusals(&running, &new);
        if !refused.is_empty() {
            return Err(ReloadError::Refused(refused));
        }
        let credentials: Arc<dyn Credentials> = new.auth_credentials()?;
        let pool = new
            .pool()
            .map_err(|e| ConfigError::value(&self.path, "ppp.ipcp.pool", e.to_string()))?;
        let attachment_circuits = attachment_circuits(&new)?;
        let mut changed = Vec::new();
        if running.l2tp != new.l2tp {
            changed.push("l2tp");
        }
        if running.ppp != new.ppp {
            changed.push("ppp");
        }
        changed.push("users");
        if running.pseudowire != new.pseudowire {
            changed.push("pseudowire");
        }
        let mut live = crate::node::LiveConfig {
            l2tp: new.l2tp.clone(),
            ppp: Arc::new(new.ppp.clone()),
            credentials,
            pool,
            attachment_circuits,
        };
        // The subscribers' gateway the fast path answers ping for (issue 16), when
        // `[ppp.ipcp] local_address` (or `enabled`) changed: set first, so that a fast path
        // that refuses it leaves everything as it was.
        let (old_gw, new_gw) = (gateway(&running.ppp), gateway(&new.ppp));
        if old_gw != new_gw {
            changed.push("gateway");
        }
        let (old_budget, new_budget) = (
            running.l2tp.limits.xdp_sccrq_per_sec,
            new.l2tp.limits.xdp_sccrq_per_sec,
        );
        let pool = handle
            .update(move |n, _| {
                if old_budget != new_budget {
                    n.set_sccrq_budget(new_budget)
                        .map_err(|source| ReloadError::SccrqBudget {
                            per_sec: new_budget,
                            source,
                        })?;
                }
                if old_gw != new_gw {
                    n.set_gateway(new_gw)
                        .map_err(|source| ReloadError::Gateway {
                            address: new_gw,
                            source,
                        })?;
                }
                // Still no C bit when serving without a store (RFC 4951 §5.1).
                live.l2tp = advertised(&live.l2tp, n.has_store());
                n.reconfigure(live);
                Ok::<_, ReloadError>(n.pool_usage())
            })
            .await??;
        *running = new;
        tracing::info!(path = %self.path.display(), ?changed, "configuration reloaded");
        Ok(ReloadReport {
            path: self.path.clone(),
            changed,
            pool,
        })
    }
}
