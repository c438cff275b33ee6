//! `l2xdpd`'s configuration and start-up: one TOML file (every section optional except what
//! the role needs), turned into a [`Node`](crate::node::Node) over its sockets and fast path.
//!
//! - `config.rs`: the file — [`DaemonConfig`] and its sections, the checks a type cannot
//!   express, and (in its documentation) every section with an example.
//! - `start.rs`: start-up — the sockets ([`sockets`]), the fast path ([`dataplane`]), the RFC
//!   4951 failover store ([`store`]), the node ([`node`]), and the initiator role's tunnels and
//!   sessions ([`initiate`]).
//! - `reload.rs`: `config reload` ([`Running::reload`]; what it refuses: [`live_refusals`]).
//! - `drill.rs`: `failover drill` ([`Running::drill`]).
//! - `stop.rs`: how l2xdpd stops — SIGTERM hands off (nothing torn down, the next l2xdpd
//!   resumes), SIGINT tears down ([`teardown`]: a StopCCN to every peer).
//! - this file: [`Running`], the running daemon's configuration that both act on.
//!
//! `deploy/l2xdp.toml` is a commented production example.
//!
//! `config reload` (the control socket, or SIGHUP) re-reads the file and applies what can
//! change live — `[l2tp]` but its failover capability, `[ppp]` (pool included, leases
//! carried over), `[users]` (the initiator's passwords too), `[[pseudowire]]` — to what is
//! set up from then on, and refuses the rest ([`live_refusals`]; `[initiator]` among them: it
//! is acted on at start-up only), leaving the running configuration as it was.
//! Errors name the file, line and field (see [`crate::config_file`]).

mod config;
mod drill;
mod reload;
mod start;
mod stop;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

pub use self::config::{
    DaemonConfig, DaemonSection, DataplaneMode, DataplaneSection, InitiatorSection, MetricsSection,
    PseudowireBinding, UsersSection,
};
pub use self::drill::{DrillError, DrillReport};
pub use self::reload::{live_refusals, Refusal, ReloadError, ReloadReport};
pub use self::start::{
    dataplane, initiate, node, node_with_entropy, nth_session, sockets, store, StartError,
};
pub use self::stop::{teardown, TEARDOWN_LIMIT};

/// The running daemon's configuration: the file it came from and what is applied.
pub struct Running {
    path: PathBuf,
    config: tokio::sync::Mutex<DaemonConfig>,
}

impl Running {
    /// `config`, read from `path`, is running.
    pub fn new(path: PathBuf, config: DaemonConfig) -> Self {
        Running {
            path,
            config: tokio::sync::Mutex::new(config),
        }
    }

    /// The configuration file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A copy of the running configuration.
    pub async fn config(&self) -> DaemonConfig {
        self.config.lock().await.clone()
    }
}
