//! The control socket's listener: how the socket file is created (and what is refused at its
//! path), who may connect, and the bounds on what a connection may cost.
//!
//! - **The path.** A stale socket file (nobody listening) is replaced; a socket somebody
//!   listens on is refused (another l2xdpd runs); anything else — a regular file, a directory,
//!   a symbolic link — is refused and left as it is ([`BindError`]).
//! - **Permissions.** The socket is created with mode 0600 whatever the umask, then given mode
//!   0660 and the group `[daemon] control_socket_group` when configured (else the daemon's
//!   own group): root, the daemon's user and that group's members may connect.
//! - **Peer credentials** (`SO_PEERCRED`) are checked again on each connection (a socket file
//!   chmod-ed open by mistake still refuses strangers): root, the daemon's own user, or a member
//!   of the configured group (primary or supplementary group of the connecting process); anyone
//!   else gets one `refused` reply and the connection is closed.
//! - **Bounds** ([`Limits`]): connections at a time (one more gets a `refused` reply and is
//!   closed), the length of a request line (a longer one gets a `bad_request` reply and the
//!   connection is closed, having read at most the limit), the time a client may take to send
//!   its next line and to read a reply.
//! - **`accept()` errors** (fd exhaustion above all) never end the loop: logged (at most one
//!   line per [`AcceptErrors::LOG_EVERY`], the rest counted in it), then retried after a
//!   back-off growing from 10 ms to 1 s.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Semaphore;

use super::{answer, Context, ErrorKind, Reply, Request};

/// What a control connection may cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections served at a time.
    pub max_connections: usize,
    /// Bytes in one request line (its newline excluded).
    pub max_line: usize,
    /// How long a client may take to send its next request line (the whole line).
    pub idle: Duration,
    /// How long a client may take to read a reply.
    pub write: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 32,
            max_line: 64 * 1024,
            idle: Duration::from_secs(10),
            write: Duration::from_secs(10),
        }
    }
}

/// Why the control socket could not be created.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    /// Something that is not a socket is at the path: it is left alone.
    #[error("control socket {}: the path exists and is not a socket ({what}); refusing to replace it — remove it or set another [daemon] control_socket", path.display())]
    NotASocket {
        /// The path.
        path: PathBuf,
        /// What is there.
        what: &'static str,
    },
    /// A live socket is at the path.
    #[error("control socket {}: another process listens on it (is l2xdpd already running?)", path.display())]
    InUse {
        /// The path.
        path: PathBuf,
    },
    /// `[daemon] control_socket_group` names no group.
    #[error("[daemon] control_socket_group: no group named {group:?}")]
    NoGroup {
        /// The name.
        group: String,
    },
    /// A system call failed.
    #[error("control socket {}: {op}: {source}", path.display())]
    Io {
        /// What was done.
        op: &'static str,
        /// The path.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// A bound control socket, ready for [`serve_listener`].
#[derive(Debug)]
pub struct Listener {
    inner: UnixListener,
    path: PathBuf,
    group: Option<u32>,
}

impl Listener {
    /// The socket file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The group ID of `name` (or a number).
pub fn group_id(name: &str) -> Option<u32> {
    if let Ok(n) = name.parse::<u32>() {
        return Some(n);
    }
    let c = std::ffi::CString::new(name).ok()?;
    let mut buf = vec![0u8; 16 * 1024];
    // SAFETY: `grp` and `buf` outlive the call; `out` is set to null or to `&mut grp`.
    unsafe {
        let mut grp: libc::group = std::mem::zeroed();
        let mut out: *mut libc::group = std::ptr::null_mut();
        let r = libc::getgrnam_r(
            c.as_ptr(),
            &mut grp,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut out,
        );
        (r == 0 && !out.is_null()).then_some(grp.gr_gid)
    }
}

/// Creates the control socket at `path` (see the module documentation): mode 0660, group
/// `group` (a name or number) when given.
pub fn bind(path: &Path, group: Option<&str>) -> Result<Listener, BindError> {
    let io = |op: &'static str| {
        let path = path.to_path_buf();
        move |source| BindError::Io { op, path, source }
    };
    let gid = match group {
        Some(g) => Some(group_id(g).ok_or_else(|| BindError::NoGroup { group: g.into() })?),
        None => None,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io("create its directory"))?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => match std::os::unix::net::UnixStream::connect(path) {
            Ok(_) => {
                return Err(BindError::InUse {
                    path: path.to_path_buf(),
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                tracing::info!(path = %path.display(), "replacing a stale control socket");
                std::fs::remove_file(path).map_err(io("remove the stale socket"))?;
            }
            Err(e) => return Err(io("probe the existing socket")(e)),
        },
        Ok(m) => {
            let t = m.file_type();
            let what = if t.is_file() {
                "a regular file"
            } else if t.is_dir() {
                "a directory"
            } else if t.is_symlink() {
                "a symbolic link"
            } else {
                "a special file"
            };
            return Err(BindError::NotASocket {
                path: path.to_path_buf(),
                what,
            });
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io("stat")(e)),
    }
    // The socket file's mode is 0777 & !umask at bind: with umask 0177 nobody else can
    // connect between bind and the chmod below, whatever umask the daemon was started with.
    // SAFETY: umask only changes this process's file-creation mask; restored at once.
    let old = unsafe { libc::umask(0o177) };
    let bound = UnixListener::bind(path);
    // SAFETY: as above.
    unsafe { libc::umask(old) };
    let inner = bound.map_err(io("bind"))?;
    if let Some(g) = gid {
        std::os::unix::fs::chown(path, None, Some(g)).map_err(io("chown"))?;
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .map_err(io("chmod 0660"))?;
    Ok(Listener {
        inner,
        path: path.to_path_buf(),
        group: gid,
    })
}

/// `accept()` failures: a back-off and a rate-limited log line.
#[derive(Debug)]
pub(crate) struct AcceptErrors {
    what: &'static str,
    delay: Duration,
    last_log: Option<Instant>,
    suppressed: u64,
    /// Failures since start.
    pub total: u64,
}

impl AcceptErrors {
    /// At most one log line per this long.
    pub const LOG_EVERY: Duration = Duration::from_secs(10);
    const FIRST: Duration = Duration::from_millis(10);
    const MAX: Duration = Duration::from_secs(1);

    pub(crate) fn new(what: &'static str) -> Self {
        AcceptErrors {
            what,
            delay: Self::FIRST,
            last_log: None,
            suppressed: 0,
            total: 0,
        }
    }

    /// A successful accept: the back-off starts over.
    pub(crate) fn ok(&mut self) {
        self.delay = Self::FIRST;
    }

    /// A failed accept: logs (rate-limited) and waits the back-off.
    pub(crate) async fn failed(&mut self, e: &std::io::Error) {
        self.total += 1;
        let now = Instant::now();
        if self
            .last_log
            .is_none_or(|t| now.duration_since(t) >= Self::LOG_EVERY)
        {
            tracing::warn!(
                %e,
                suppressed = self.suppressed,
                total = self.total,
                retry_ms = self.delay.as_millis() as u64,
                "{} accept failed; retrying",
                self.what
            );
            self.last_log = Some(now);
            self.suppressed = 0;
        } else {
            self.suppressed += 1;
        }
        tokio::time::sleep(self.delay).await;
        self.delay = (self.delay * 2).min(Self::MAX);
    }
}

/// Serves the control socket at `path` until the task is dropped ([`bind`] with no group,
/// then [`serve_listener`] with the default [`Limits`]).
pub async fn serve(path: PathBuf, ctx: Context) -> Result<(), BindError> {
    let l = bind(&path, None)?;
    serve_listener(l, ctx, Limits::default()).await;
    Ok(())
}

/// Serves `listener` until the task is dropped; never fails (see the module documentation).
pub async fn serve_listener(listener: Listener, ctx: Context, limits: Limits) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut errors = AcceptErrors::new("control socket");
    let me = Allowed {
        // SAFETY: geteuid cannot fail.
        uid: unsafe { libc::geteuid() },
        group: listener.group,
    };
    loop {
        let stream = match listener.inner.accept().await {
            Ok((s, _)) => {
                errors.ok();
                s
            }
            Err(e) => {
                errors.failed(&e).await;
                continue;
            }
        };
        let permit = slots.clone().try_acquire_owned();
        let ctx = ctx.clone();
        tokio::spawn(async move {
            let refusal = match &permit {
                Err(_) => Some(format!(
                    "too many control connections ({} at a time); try again",
                    limits.max_connections
                )),
                Ok(_) => me.check(&stream).inspect_err(|why| denied(why)).err(),
            };
            if let Some(why) = refusal {
                tracing::debug!(%why, "control connection refused");
                let _ = tokio::time::timeout(
                    limits.write,
                    send(&mut { stream }, &Reply::fail(ErrorKind::Refused, why)),
                )
                .await;
                return;
            }
            if let Err(e) = connection(stream, ctx, limits).await {
                tracing::debug!(%e, "control connection ended");
            }
            drop(permit);
        });
    }
}

/// Logs a connection refused by its credentials: at most one WARN line per
/// [`AcceptErrors::LOG_EVERY`] (a local user retrying in a loop cannot flood the log).
fn denied(why: &str) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static LAST: AtomicU64 = AtomicU64::new(0);
    static SUPPRESSED: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let last = LAST.load(Ordering::Relaxed);
    if now >= last + AcceptErrors::LOG_EVERY.as_secs()
        && LAST
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        let suppressed = SUPPRESSED.swap(0, Ordering::Relaxed);
        tracing::warn!(%why, suppressed, "control connection refused");
    } else {
        SUPPRESSED.fetch_add(1, Ordering::Relaxed);
    }
}

/// Who may use the socket besides root.
#[derive(Debug, Clone, Copy)]
struct Allowed {
    uid: u32,
    group: Option<u32>,
}

impl Allowed {
    /// `Err(why)` when the peer may not use the socket.
    fn check(&self, s: &UnixStream) -> Result<(), String> {
        let c = s
            .peer_cred()
            .map_err(|e| format!("permission denied: no peer credentials ({e})"))?;
        let uid = c.uid();
        if uid == 0 || uid == self.uid {
            return Ok(());
        }
        if let Some(g) = self.group {
            if c.gid() == g || c.pid().is_some_and(|p| groups_of(p).contains(&g)) {
                return Ok(());
            }
        }
        Err(match self.group {
            Some(g) => format!("permission denied: uid {uid} is not root, l2xdpd's user or in group {g}"),
            None => format!(
                "permission denied: uid {uid} is not root or l2xdpd's user (no [daemon] control_socket_group)"
            ),
        })
    }
}

/// The supplementary groups of process `pid` (`Groups:` of /proc/PID/status).
fn groups_of(pid: i32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| l.strip_prefix("Groups:")).map(|g| {
                g.split_whitespace()
                    .filter_map(|x| x.parse().ok())
                    .collect()
            })
        })
        .unwrap_or_default()
}

async fn send(w: &mut (impl AsyncWriteExt + Unpin), reply: &Reply) -> std::io::Result<()> {
    let mut out = serde_json::to_vec(reply).unwrap_or_else(|_| b"{\"ok\":false}".to_vec());
    out.push(b'\n');
    w.write_all(&out).await
}

/// One line of at most `max` bytes (newline removed); `Ok(None)` at the end of the stream.
async fn read_line(
    r: &mut BufReader<impl tokio::io::AsyncRead + Unpin>,
    max: usize,
    buf: &mut Vec<u8>,
) -> std::io::Result<Option<Result<(), ()>>> {
    buf.clear();
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    let n = AsyncReadExt::take(&mut *r, limit)
        .read_until(b'\n', buf)
        .await?;
    if n == 0 {
        return Ok(None);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
        return Ok(Some(Ok(())));
    }
    if buf.len() > max {
        return Ok(Some(Err(())));
    }
    // The last line, without its newline.
    Ok(Some(Ok(())))
}

async fn connection(stream: UnixStream, ctx: Context, limits: Limits) -> std::io::Result<()> {
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    let mut buf = Vec::new();
    loop {
        let line =
            match tokio::time::timeout(limits.idle, read_line(&mut r, limits.max_line, &mut buf))
                .await
            {
                Err(_) => {
                    let why = format!(
                        "idle for {} s: closing the connection",
                        limits.idle.as_secs()
                    );
                    let _ = tokio::time::timeout(
                        limits.write,
                        send(&mut w, &Reply::fail(ErrorKind::BadRequest, why)),
                    )
                    .await;
                    return Ok(());
                }
                Ok(r) => r?,
            };
        match line {
            None => return Ok(()),
            Some(Err(())) => {
                let why = format!(
                    "bad request: line longer than {} bytes; closing the connection",
                    limits.max_line
                );
                let _ = tokio::time::timeout(
                    limits.write,
                    send(&mut w, &Reply::fail(ErrorKind::BadRequest, why)),
                )
                .await;
                return Ok(());
            }
            Some(Ok(())) => {}
        }
        let text = String::from_utf8_lossy(&buf);
        if text.trim().is_empty() {
            continue;
        }
        let reply = match serde_json::from_str::<Request>(&text) {
            Ok(req) => answer(&ctx, req).await,
            Err(e) => Reply::fail(ErrorKind::BadRequest, format!("bad request: {e}")),
        };
        tokio::time::timeout(limits.write, send(&mut w, &reply))
            .await
            .map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::TimedOut, "the client does not read")
            })??;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scratch directory, removed on drop.
    struct Scratch(PathBuf);

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    impl std::ops::Deref for Scratch {
        type Target = Path;
        fn deref(&self) -> &Path {
            &self.0
        }
    }

    fn scratch(name: &str) -> Scratch {
        let d = std::env::temp_dir().join(format!("l2xdp-ctl-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("dir");
        Scratch(d)
    }

    #[tokio::test]
    async fn a_regular_file_is_refused_and_kept() {
        let d = scratch("file");
        let p = d.join("ctl.sock");
        std::fs::write(&p, "precious").expect("write");
        let e = bind(&p, None).expect_err("refused");
        assert!(
            matches!(
                e,
                BindError::NotASocket {
                    what: "a regular file",
                    ..
                }
            ),
            "{e}"
        );
        assert_eq!(std::fs::read_to_string(&p).expect("kept"), "precious");
    }

    #[tokio::test]
    async fn a_stale_socket_is_replaced_and_a_live_one_refused() {
        let d = scratch("stale");
        let p = d.join("ctl.sock");
        drop(std::os::unix::net::UnixListener::bind(&p).expect("stale"));
        let l = bind(&p, None).expect("stale replaced");
        let mode = std::fs::metadata(&p).expect("stat").permissions().mode() & 0o7777;
        assert_eq!(mode, 0o660);
        let e = bind(&p, None).expect_err("in use");
        assert!(matches!(e, BindError::InUse { .. }), "{e}");
        drop(l);
    }

    #[tokio::test]
    async fn mode_is_0660_whatever_the_umask() {
        let d = scratch("umask");
        let p = d.join("ctl.sock");
        // SAFETY: the process's file-creation mask; restored below.
        let old = unsafe { libc::umask(0) };
        let l = bind(&p, Some("0"));
        // SAFETY: as above.
        unsafe { libc::umask(old) };
        let _l = l.expect("bind");
        let mode = std::fs::metadata(&p).expect("stat").permissions().mode() & 0o7777;
        assert_eq!(mode, 0o660);
    }

    #[test]
    fn unknown_group_is_an_error() {
        let d = scratch("group");
        let e = bind(&d.join("s"), Some("no-such-group-l2xdp")).expect_err("refused");
        assert_eq!(
            e.to_string(),
            "[daemon] control_socket_group: no group named \"no-such-group-l2xdp\""
        );
        assert_eq!(group_id("root"), Some(0));
    }

    #[tokio::test]
    async fn long_lines_are_refused_reading_at_most_the_limit() {
        let (a, mut b) = tokio::io::duplex(1 << 20);
        let mut r = BufReader::new(a);
        b.write_all(&vec![b'x'; 1000]).await.expect("w");
        b.write_all(b"\n{}\n").await.expect("w");
        let mut buf = Vec::new();
        assert_eq!(
            read_line(&mut r, 100, &mut buf).await.expect("r"),
            Some(Err(()))
        );
        assert_eq!(buf.len(), 101);
        let (a, mut b) = tokio::io::duplex(1 << 20);
        let mut r = BufReader::new(a);
        b.write_all(b"{\"cmd\":\"hello\"}\nrest").await.expect("w");
        drop(b);
        assert_eq!(
            read_line(&mut r, 100, &mut buf).await.expect("r"),
            Some(Ok(()))
        );
        assert_eq!(buf, b"{\"cmd\":\"hello\"}");
        assert_eq!(
            read_line(&mut r, 100, &mut buf).await.expect("r"),
            Some(Ok(()))
        );
        assert_eq!(buf, b"rest");
        assert_eq!(read_line(&mut r, 100, &mut buf).await.expect("r"), None);
    }
}
