//! The RFC 4951 ordering contract through a node: what the registry persists is committed
//! before any datagram that follows it leaves (group commit).

use std::sync::{Arc, Mutex};

use l2xdp_dataplane_api::MemoryDataPlane;

use super::*;
use crate::l2tp::failover::{MemoryStore, RecoveryState, StoreError, StoreOp};
use crate::l2tp::{FailoverConfig, L2tpConfig};
use crate::ppp::MemoryCredentials;

/// A store that buffers until `commit`, as the embedded-database store does; the test
/// sees what is pending and what is committed.
#[derive(Clone, Default)]
struct Spy(Arc<Mutex<(Vec<StoreOp>, MemoryStore, usize)>>);

impl Spy {
    fn pending(&self) -> usize {
        self.0.lock().expect("spy").0.len()
    }
    fn committed(&self) -> RecoveryState {
        self.0.lock().expect("spy").1.load().expect("load")
    }
    fn commits(&self) -> usize {
        self.0.lock().expect("spy").2
    }
}

impl StateStore for Spy {
    fn put_tunnel(&mut self, t: &crate::l2tp::failover::TunnelRecord) -> Result<(), StoreError> {
        self.apply(&StoreOp::PutTunnel(Box::new(t.clone())))
    }
    fn remove_tunnel(&mut self, id: u32) -> Result<(), StoreError> {
        self.apply(&StoreOp::RemoveTunnel(id))
    }
    fn put_sequence(
        &mut self,
        q: &crate::l2tp::failover::SequenceRecord,
    ) -> Result<(), StoreError> {
        self.apply(&StoreOp::PutSequence(Box::new(q.clone())))
    }
    fn put_session(&mut self, s: &crate::l2tp::failover::SessionRecord) -> Result<(), StoreError> {
        self.apply(&StoreOp::PutSession(Box::new(s.clone())))
    }
    fn remove_session(&mut self, tunnel: u32, session: u32) -> Result<(), StoreError> {
        self.apply(&StoreOp::RemoveSession { tunnel, session })
    }
    fn apply(&mut self, op: &StoreOp) -> Result<(), StoreError> {
        self.0.lock().expect("spy").0.push(op.clone());
        Ok(())
    }
    fn commit(&mut self) -> Result<(), StoreError> {
        let mut g = self.0.lock().expect("spy");
        let ops = std::mem::take(&mut g.0);
        for op in &ops {
            g.1.apply(op)?;
        }
        g.2 += 1;
        Ok(())
    }
    fn load(&self) -> Result<RecoveryState, StoreError> {
        Ok(self.committed())
    }
}

fn node(name: &str, spy: &Spy) -> Node {
    let mut l2tp = L2tpConfig {
        host_name: name.into(),
        failover: Some(FailoverConfig {
            control: true,
            data: true,
            recovery_time_ms: 5_000,
        }),
        ..L2tpConfig::default()
    };
    l2tp.pseudowire.cookie_len = 4;
    Node::new(
        NodeConfig {
            l2tp,
            ppp: Arc::new(PppConfig::default()),
            credentials: Arc::new(MemoryCredentials::new()),
            pool: None,
            attachment_circuits: HashMap::new(),
            random: Random::seeded(7),
        },
        Box::new(MemoryDataPlane::new()),
    )
    .with_store(Box::new(spy.clone()))
}

/// Every datagram a node hands out leaves nothing uncommitted behind it: the tunnel's
/// record before the SCCCN / the ZLB acknowledging it, each session's record before the
/// ICCN (LAC) or the ZLB acknowledging the ICCN (LNS). Checked at every datagram of a
/// whole set-up, both roles, L2TPv3.
#[test]
fn store_is_committed_before_any_datagram_leaves() {
    let (lac_spy, lns_spy) = (Spy::default(), Spy::default());
    let mut lac = node("lac", &lac_spy);
    let mut lns = node("lns", &lns_spy);
    let (a_addr, b_addr): (SocketAddr, SocketAddr) = (
        "192.0.2.2:1701".parse().expect("addr"),
        "192.0.2.1:1701".parse().expect("addr"),
    );
    let (a, b) = (Peer::udp(a_addr), Peer::udp(b_addr));
    let now = Instant::now();
    let t = lac.open_tunnel(b, Version::V3, now).expect("tunnel");
    let mut opened = false;
    let mut datagrams = 0;
    for _ in 0..50 {
        let mut moved = false;
        while let Some((to, d)) = lac.poll_transmit() {
            assert_eq!(lac_spy.pending(), 0, "LAC sent with records uncommitted");
            assert_eq!(to, b);
            lns.handle_datagram(b_addr, a, &d, now);
            moved = true;
            datagrams += 1;
        }
        while let Some((to, d)) = lns.poll_transmit() {
            assert_eq!(lns_spy.pending(), 0, "LNS sent with records uncommitted");
            assert_eq!(to, a);
            lac.handle_datagram(a_addr, b, &d, now);
            moved = true;
            datagrams += 1;
        }
        if !opened
            && lac
                .registry()
                .tunnels()
                .any(|x| x.id() == t && x.state() == crate::l2tp::tunnel::TunnelState::Established)
        {
            for _ in 0..3 {
                lac.open_session(t, CallParams::default(), None, now)
                    .expect("session");
            }
            opened = true;
            moved = true;
        }
        if !moved {
            break;
        }
    }
    assert!(opened, "the tunnel came up");
    for (side, spy) in [("LAC", &lac_spy), ("LNS", &lns_spy)] {
        let st = spy.committed();
        assert_eq!(st.tunnels.len(), 1, "{side}: the tunnel committed");
        assert_eq!(st.sessions.len(), 3, "{side}: every session committed");
        assert!(spy.commits() >= 2, "{side}: {} commits", spy.commits());
    }
    assert!(datagrams > 8, "{datagrams} datagrams");
}

/// Issue 16 item 6: a node holds a million of each; a field added inline shows here (sizes
/// of a 64-bit target).
#[test]
fn per_session_structures_stay_small() {
    use std::mem::size_of;
    assert!(
        size_of::<SessionState>() <= 64,
        "{}",
        size_of::<SessionState>()
    );
    assert!(size_of::<SessionUp>() <= 264, "{}", size_of::<SessionUp>());
    assert!(size_of::<Link>() <= 816, "{}", size_of::<Link>());
}
