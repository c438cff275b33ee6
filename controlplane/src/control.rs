//! The operator's control socket: a Unix stream socket speaking one JSON object per line.
//! `l2xdpctl` is its client; anything that can write a line of JSON can use it:
//!
//! ```text
//! → {"cmd":"status"}
//! ← {"v":1,"ok":true,"data":{"tunnels":3,"sessions":120,"ppp_up":118,...}}
//! → {"cmd":"sessions","tunnel":4660}
//! ← {"v":1,"ok":true,"data":[{"tunnel":4660,"session":1,...}]}
//! → {"cmd":"session","session":9}
//! ← {"v":1,"ok":false,"error":"no session 9","kind":"not_found"}
//! → {"cmd":"nonsense"}
//! ← {"v":1,"ok":false,"error":"bad request: unknown variant `nonsense`, ...","kind":"bad_request"}
//! ```
//! A request that does not parse gets an error reply, never a dropped connection. Every
//! reply carries the protocol version (`"v"`, [`PROTOCOL`]); `{"cmd":"hello"}` returns it
//! with the daemon's version. A failed request may carry a `kind` ([`ErrorKind`]) telling a
//! client why (`l2xdpctl` maps it to its exit code).
//!
//! Commands: `hello`, `status`, `tunnels`, `sessions` (`tunnel`, `user`), `session`
//! (`session`, optional `tunnel`), `clear_session` (`session`, optional `tunnel`),
//! `clear_tunnel`, `failover`, `failover_drill` (`force`, `timeout_ms`), `reload`; in the
//! initiator role `open_session` (`tunnel`, `n`: session `n` as `[initiator]` numbers them;
//! `not_found` for no such tunnel or user).
//!
//! Who may connect and what a connection may cost (mode 0660, peer credentials, connection,
//! line-length and idle limits, `accept()` errors survived): `control/listener.rs`
//! ([`bind`], [`serve_listener`], [`Limits`]).

mod listener;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::daemon::Running;
use crate::driver::Handle;
use crate::l2tp::TunnelId;
use crate::node::{Node, SessionRef};

pub(crate) use self::listener::AcceptErrors;
pub use self::listener::{bind, group_id, serve, serve_listener, BindError, Limits, Listener};

/// The version of this protocol; bumped when a request or reply changes incompatibly.
pub const PROTOCOL: u32 = 1;

/// What a control socket serves: the running node, and the daemon's configuration when it
/// runs as `l2xdpd` (for `reload` and `failover_drill`).
#[derive(Clone)]
pub struct Context {
    /// The node.
    pub handle: Handle,
    /// The daemon's configuration; `None`: `reload` and `failover_drill` are refused.
    pub running: Option<std::sync::Arc<Running>>,
}

/// A request.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// Counts and counters.
    Status,
    /// Every tunnel.
    Tunnels,
    /// Sessions, optionally of one tunnel or one user.
    Sessions {
        #[serde(default)]
        tunnel: Option<TunnelId>,
        #[serde(default)]
        user: Option<String>,
    },
    /// Close a session (CDN); without `tunnel`, the one session with this ID.
    ClearSession {
        #[serde(default)]
        tunnel: Option<TunnelId>,
        session: u32,
    },
    /// Initiator role: open session `n` in an established tunnel of ours, as `[initiator]`
    /// numbers them (`daemon::nth_session`: PPP as `user<n>`, or Remote End ID `pw<n>`).
    OpenSession { tunnel: TunnelId, n: usize },
    /// Close a tunnel (StopCCN).
    ClearTunnel { tunnel: TunnelId },
    /// The protocol version and the daemon's.
    Hello,
    /// One session in detail; without `tunnel`, the one session with this ID.
    Session {
        #[serde(default)]
        tunnel: Option<TunnelId>,
        session: u32,
    },
    /// RFC 4951 state per tunnel.
    Failover,
    /// An administrative failover ([`Running::drill`]).
    FailoverDrill {
        /// Drill even when some tunnels would be cleared.
        #[serde(default)]
        force: bool,
        /// How long to wait for the recoveries (default 60 s).
        #[serde(default)]
        timeout_ms: Option<u64>,
    },
    /// Re-read the configuration file ([`Running::reload`]).
    Reload,
}

/// Why a request failed, for clients that act on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// No such tunnel or session (or a session ID that is ambiguous without its tunnel).
    NotFound,
    /// The request is not valid.
    BadRequest,
    /// The daemon refused (reload of a field that cannot change live, a drill without state).
    Refused,
    /// The configuration file does not parse or check.
    Config,
    /// Anything else.
    Failed,
}

/// The reply to a request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Reply {
    /// [`PROTOCOL`].
    #[serde(default)]
    pub v: u32,
    /// Whether the request succeeded.
    pub ok: bool,
    /// What was asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What kind of failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<ErrorKind>,
}

impl Reply {
    fn ok(data: impl Serialize) -> Reply {
        match serde_json::to_value(data) {
            Ok(v) => Reply {
                v: PROTOCOL,
                ok: true,
                data: Some(v),
                error: None,
                kind: None,
            },
            Err(e) => Reply::err(format!("cannot encode the reply: {e}")),
        }
    }

    fn err(e: impl Into<String>) -> Reply {
        Reply::fail(ErrorKind::Failed, e)
    }

    fn fail(kind: ErrorKind, e: impl Into<String>) -> Reply {
        Reply {
            v: PROTOCOL,
            ok: false,
            data: None,
            error: Some(e.into()),
            kind: Some(kind),
        }
    }
}

/// The session `session` of `tunnel`, or without a tunnel the one session with that ID.
fn resolve(n: &Node, tunnel: Option<TunnelId>, session: u32) -> Result<SessionRef, Reply> {
    let all = n.session_refs();
    let hits: Vec<SessionRef> = all
        .into_iter()
        .filter(|&(t, s)| s == session && tunnel.is_none_or(|x| x == t))
        .collect();
    match (hits.as_slice(), tunnel) {
        ([one], _) => Ok(*one),
        ([], Some(t)) => Err(Reply::fail(
            ErrorKind::NotFound,
            format!("no session {t}/{session}"),
        )),
        ([], None) => Err(Reply::fail(
            ErrorKind::NotFound,
            format!("no session {session}"),
        )),
        (many, _) => Err(Reply::fail(
            ErrorKind::NotFound,
            format!(
                "session ID {session} is ambiguous: it is in tunnels {:?}; give TUNNEL/SESSION",
                many.iter().map(|r| r.0).collect::<Vec<_>>()
            ),
        )),
    }
}

/// What `hello` returns.
#[derive(Debug, Clone, Serialize)]
pub struct Hello {
    /// [`PROTOCOL`].
    pub protocol: u32,
    /// The daemon's version.
    pub version: &'static str,
    /// The configuration file, when run as l2xdpd.
    pub config: Option<PathBuf>,
}

/// What `status` returns.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// Tunnels, as `tunnels` lists them (recovery tunnels that are done not counted).
    pub tunnels: usize,
    /// Sessions established.
    pub sessions: usize,
    /// Sessions with PPP up.
    pub ppp_up: usize,
    /// Sessions installed in the fast path.
    pub installed: usize,
    /// The L2TP layer's counters.
    pub l2tp: crate::l2tp::Counters,
    /// The glue's counters.
    pub node: crate::node::NodeCounters,
    /// The address pool: capacity and leased.
    pub pool: Option<(u64, u64)>,
}

fn status(n: &Node) -> Status {
    let (sessions, ppp_up) = n.session_counts();
    Status {
        tunnels: n.tunnel_status().len(),
        sessions,
        ppp_up,
        installed: n.installed_count(),
        l2tp: n.registry().counters(),
        node: n.counters(),
        pool: n.pool_usage(),
    }
}

/// Answers one request.
pub async fn answer(ctx: &Context, req: Request) -> Reply {
    let handle = &ctx.handle;
    let r = match req {
        Request::Hello => Ok(Reply::ok(Hello {
            protocol: PROTOCOL,
            version: env!("CARGO_PKG_VERSION"),
            config: ctx.running.as_ref().map(|r| r.path().to_path_buf()),
        })),
        Request::Session { tunnel, session } => {
            handle
                .inspect(move |n| match resolve(n, tunnel, session) {
                    Ok(key) => n
                        .session_detail(key)
                        .map_or_else(|| Reply::fail(ErrorKind::NotFound, "gone"), Reply::ok),
                    Err(r) => r,
                })
                .await
        }
        Request::Failover => handle.inspect(|n| Reply::ok(n.failover_status())).await,
        Request::FailoverDrill { force, timeout_ms } => match &ctx.running {
            None => Ok(Reply::fail(
                ErrorKind::Refused,
                "no daemon configuration here",
            )),
            Some(r) => {
                let limit = std::time::Duration::from_millis(timeout_ms.unwrap_or(60_000));
                Ok(match r.drill(handle, force, limit).await {
                    Ok(rep) => Reply::ok(rep),
                    Err(
                        e @ (crate::daemon::DrillError::NoFailover
                        | crate::daemon::DrillError::NotNegotiated(_)),
                    ) => Reply::fail(ErrorKind::Refused, e.to_string()),
                    Err(e) => Reply::err(e.to_string()),
                })
            }
        },
        Request::Reload => match &ctx.running {
            None => Ok(Reply::fail(
                ErrorKind::Refused,
                "no daemon configuration here",
            )),
            Some(r) => Ok(match r.reload(handle).await {
                Ok(rep) => Reply::ok(rep),
                Err(e @ crate::daemon::ReloadError::Refused(_)) => {
                    Reply::fail(ErrorKind::Refused, e.to_string())
                }
                Err(e @ crate::daemon::ReloadError::Config(_)) => {
                    Reply::fail(ErrorKind::Config, e.to_string())
                }
                Err(e) => Reply::err(e.to_string()),
            }),
        },
        Request::Status => handle.inspect(|n| Reply::ok(status(n))).await,
        Request::Tunnels => handle.inspect(|n| Reply::ok(n.tunnel_status())).await,
        Request::Sessions { tunnel, user } => {
            handle
                .inspect(move |n| {
                    let v: Vec<_> = n
                        .session_status()
                        .into_iter()
                        .filter(|s| tunnel.is_none_or(|t| s.tunnel == t))
                        .filter(|s| user.as_ref().is_none_or(|u| s.user.as_ref() == Some(u)))
                        .collect();
                    Reply::ok(v)
                })
                .await
        }
        Request::OpenSession { tunnel, n } => {
            let found = handle
                .inspect(move |node| -> Result<_, Reply> {
                    let v = node
                        .tunnel_status()
                        .iter()
                        .find(|t| t.tunnel == tunnel)
                        .map(|t| t.version)
                        .ok_or_else(|| {
                            Reply::fail(ErrorKind::NotFound, format!("no tunnel {tunnel}"))
                        })?;
                    crate::daemon::nth_session(node, v, n)
                        .map_err(|e| Reply::fail(ErrorKind::NotFound, e))
                })
                .await;
            match found {
                Ok(Ok((params, auth))) => {
                    handle.open_session(tunnel, params, auth).await.map(|r| {
                        r.map_or_else(
                            |e| Reply::err(e.to_string()),
                            |session| Reply::ok(Opened { tunnel, session }),
                        )
                    })
                }
                Ok(Err(reply)) => Ok(reply),
                Err(e) => Err(e),
            }
        }
        Request::ClearSession { tunnel, session } => {
            match handle.inspect(move |n| resolve(n, tunnel, session)).await {
                Ok(Ok(key)) => handle.close_session(key).await.map(|r| {
                    r.map_or_else(
                        |e| Reply::fail(ErrorKind::NotFound, e.to_string()),
                        |()| Reply::ok(Cleared::session(key)),
                    )
                }),
                Ok(Err(reply)) => Ok(reply),
                Err(e) => Err(e),
            }
        }
        Request::ClearTunnel { tunnel } => handle.close_tunnel(tunnel).await.map(|r| {
            r.map_or_else(
                |e| Reply::fail(ErrorKind::NotFound, e.to_string()),
                |()| {
                    Reply::ok(Cleared {
                        tunnel,
                        session: None,
                    })
                },
            )
        }),
    };
    r.unwrap_or_else(|e| Reply::err(e.to_string()))
}

/// What `clear_session` and `clear_tunnel` return.
#[derive(Debug, Clone, Serialize)]
pub struct Cleared {
    /// The tunnel.
    pub tunnel: TunnelId,
    /// The session (for `clear_session`).
    pub session: Option<u32>,
}

impl Cleared {
    fn session((tunnel, session): SessionRef) -> Self {
        Cleared {
            tunnel,
            session: Some(session),
        }
    }
}

/// What `open_session` returns.
#[derive(Debug, Clone, Serialize)]
pub struct Opened {
    /// The tunnel.
    pub tunnel: TunnelId,
    /// Our Session ID of the new session.
    pub session: u32,
}
