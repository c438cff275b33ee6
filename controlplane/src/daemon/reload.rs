//! `config reload`: [`Running::reload`] re-reads the file and applies what can change live to
//! the running node ([`crate::node::Node::reconfigure`]); [`live_refusals`] names what cannot
//! change without a restart (a restart keeps the sessions: RFC 4951 recovery).

use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;

use crate::config_file::ConfigError;
use crate::ppp::Credentials;

use super::start::attachment_circuits;
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
        let live = crate::node::LiveConfig {
            l2tp: new.l2tp.clone(),
            ppp: Arc::new(new.ppp.clone()),
            credentials,
            pool,
            attachment_circuits,
        };
        let pool = handle
            .update(move |n, _| {
                n.reconfigure(live);
                n.pool_usage()
            })
            .await?;
        *running = new;
        tracing::info!(path = %self.path.display(), ?changed, "configuration reloaded");
        Ok(ReloadReport {
            path: self.path.clone(),
            changed,
            pool,
        })
    }
}
