//! How `l2xdpd` stops (issue 16): two ways, one for each purpose.
//!
//! - **SIGTERM** (`systemctl stop`/`restart`, an upgrade): a hand-off. The failover store is
//!   committed (every record is committed before the datagram it precedes leaves, so nothing
//!   is pending), nothing is torn down — no StopCCN, no CDN, the fast path keeps forwarding —
//!   and the next l2xdpd resumes every control connection (`l2tp/tunnel/resume.rs`). The peers
//!   see at most a few retransmissions.
//! - **SIGINT** (Ctrl-C, or `systemctl kill -s INT l2xdpd` before taking an LNS out of
//!   service): a clean teardown, [`teardown`]. Every tunnel is closed with a StopCCN (RFC
//!   2661 §5.7, Result Code 1), its sessions go with it (their fast-path entries and their
//!   failover records are removed), and l2xdpd exits once the peers have acknowledged (or
//!   [`TEARDOWN_LIMIT`] passed). The peers and their subscribers redial elsewhere at once.

use std::time::Duration;

use crate::driver::{Handle, Stopped};
use crate::l2tp::tunnel::TunnelState;

/// The longest a teardown waits for the peers to acknowledge their StopCCNs.
pub const TEARDOWN_LIMIT: Duration = Duration::from_secs(5);

/// Closes every tunnel with a StopCCN and waits (at most `limit`) until each was
/// acknowledged; returns (tunnels closed, tunnels still closing when it gave up).
pub async fn teardown(handle: &Handle, limit: Duration) -> Result<(usize, usize), Stopped> {
    let closed = handle
        .update(|n, now| {
            let ids: Vec<_> = n
                .registry()
                .tunnels()
                .filter(|t| !matches!(t.state(), TunnelState::Closing | TunnelState::Finished))
                .map(|t| t.id())
                .collect();
            ids.iter()
                .filter(|&&t| n.close_tunnel(t, now).is_ok())
                .count()
        })
        .await?;
    let end = tokio::time::Instant::now() + limit;
    loop {
        let left = handle.inspect(|n| n.registry().len()).await?;
        if left == 0 || tokio::time::Instant::now() >= end {
            return Ok((closed, left));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
