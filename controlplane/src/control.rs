//! The operator's control socket: a Unix stream socket speaking one JSON object per line.
//! `l2xdpctl` is its client; anything that can write a line of JSON can use it:
//!
//! ```text
//! → {"cmd":"status"}
//! ← {"ok":true,"data":{"tunnels":3,"sessions":120,"ppp_up":118,...}}
//! → {"cmd":"sessions","tunnel":4660}
//! ← {"ok":true,"data":[{"tunnel":4660,"session":1,...}]}
//! → {"cmd":"nonsense"}
//! ← {"ok":false,"error":"unknown command \"nonsense\""}
//! ```
//! A request that does not parse gets an error reply, never a dropped connection.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use crate::driver::Handle;
use crate::l2tp::TunnelId;
use crate::node::Node;

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
    /// Close a session (CDN).
    ClearSession { tunnel: TunnelId, session: u32 },
    /// Initiator role: open session `n` in an established tunnel of ours, as `[initiator]`
    /// numbers them (`daemon::nth_session`: PPP as `user<n>`, or Remote End ID `pw<n>`).
    OpenSession { tunnel: TunnelId, n: usize },
    /// Close a tunnel (StopCCN).
    ClearTunnel { tunnel: TunnelId },
}

/// The reply to a request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Reply {
    /// Whether the request succeeded.
    pub ok: bool,
    /// What was asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Reply {
    fn ok(data: impl Serialize) -> Reply {
        match serde_json::to_value(data) {
            Ok(v) => Reply {
                ok: true,
                data: Some(v),
                error: None,
            },
            Err(e) => Reply::err(format!("cannot encode the reply: {e}")),
        }
    }

    fn err(e: impl Into<String>) -> Reply {
        Reply {
            ok: false,
            data: None,
            error: Some(e.into()),
        }
    }
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
}

fn status(n: &Node) -> Status {
    let (sessions, ppp_up) = n.session_counts();
    Status {
        tunnels: n.tunnel_status().len(),
        sessions,
        ppp_up,
        installed: n.session_status().iter().filter(|s| s.installed).count(),
        l2tp: n.registry().counters(),
        node: n.counters(),
    }
}

/// Answers one request.
pub async fn answer(handle: &Handle, req: Request) -> Reply {
    let r = match req {
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
            let version = handle
                .inspect(move |node| {
                    node.tunnel_status()
                        .iter()
                        .find(|t| t.tunnel == tunnel)
                        .map(|t| t.version)
                })
                .await;
            match version {
                Ok(Some(v)) => match handle
                    .inspect(move |node| crate::daemon::nth_session(node, v, n))
                    .await
                {
                    Ok(Ok((params, auth))) => handle
                        .open_session(tunnel, params, auth)
                        .await
                        .map(|r| r.map_or_else(|e| Reply::err(e.to_string()), Reply::ok)),
                    Ok(Err(e)) => Ok(Reply::err(e)),
                    Err(e) => Err(e),
                },
                Ok(None) => Ok(Reply::err(format!("no tunnel {tunnel}"))),
                Err(e) => Err(e),
            }
        }
        Request::ClearSession { tunnel, session } => handle
            .close_session((tunnel, session))
            .await
            .map(|r| r.map_or_else(|e| Reply::err(e.to_string()), |()| Reply::ok("cleared"))),
        Request::ClearTunnel { tunnel } => handle
            .close_tunnel(tunnel)
            .await
            .map(|r| r.map_or_else(|e| Reply::err(e.to_string()), |()| Reply::ok("cleared"))),
    };
    r.unwrap_or_else(|e| Reply::err(e.to_string()))
}

/// Serves the control socket at `path` until the task is dropped. A stale socket file from a
/// previous run is replaced.
pub async fn serve(path: PathBuf, handle: Handle) -> std::io::Result<()> {
    let listener = bind(&path)?;
    loop {
        let (stream, _) = listener.accept().await?;
        let h = handle.clone();
        tokio::spawn(async move {
            if let Err(e) = connection(stream, h).await {
                tracing::debug!(%e, "control connection ended");
            }
        });
    }
}

fn bind(path: &Path) -> std::io::Result<UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    if path.exists() {
        std::fs::remove_file(path)?;
    }
    UnixListener::bind(path)
}

async fn connection(stream: UnixStream, handle: Handle) -> std::io::Result<()> {
    let (r, mut w) = stream.into_split();
    let mut lines = BufReader::new(r).lines();
    while let Some(line) = lines.next_line().await? {
        if line.trim().is_empty() {
            continue;
        }
        let reply = match serde_json::from_str::<Request>(&line) {
            Ok(req) => answer(&handle, req).await,
            Err(e) => Reply::err(format!("bad request: {e}")),
        };
        let mut out = serde_json::to_vec(&reply).unwrap_or_else(|_| b"{\"ok\":false}".to_vec());
        out.push(b'\n');
        w.write_all(&out).await?;
    }
    Ok(())
}
