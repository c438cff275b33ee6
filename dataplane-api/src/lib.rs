//! l2xdp-dataplane-api: the narrow interface between the control plane and the fast path
//! (go-l2tp's `dataplane.go` is the model): the control plane says when a session becomes
//! usable or goes away, and the fast path forwards. Implementations: [`MemoryDataPlane`] here
//! (tests, and a control plane without a kernel) and `l2xdp_dataplane::XdpDataPlane` over the
//! pinned maps.
//!
//! It holds the trait, its entry and error types and the memory implementation, and must not
//! depend on aya, the eBPF object or anything that needs a kernel or clang: the control plane
//! builds and tests against it alone (`cargo test -p l2xdp-controlplane --no-default-features`).
//!
//! What an entry holds is what forwarding needs and nothing else: the outer template and ids
//! ([`l2xdp_wire::datapath::Session`]; the Ethernet addresses in it are ignored by the XDP
//! implementation, which resolves next hops with `bpf_fib_lookup`), the subscriber addresses
//! that steer downstream traffic into the session (L2TPv2/PPP), or the attachment circuit of
//! an L2TPv3 Ethernet pseudowire.

/// The default bpffs directory of the fast path's pinned maps and links.
pub const PIN_DIR: &str = "/sys/fs/bpf/l2xdp";

pub mod stats;
pub mod table;

use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, Ipv6Addr};

use l2xdp_wire::datapath::{Session, SessionKey};
use serde::Serialize;

/// An IPv6 prefix delegated or assigned to a subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Ipv6Prefix {
    /// The prefix address (host bits zero).
    pub addr: Ipv6Addr,
    /// The prefix length (0..=128).
    pub len: u8,
}

/// Where decapsulated traffic of a session goes and what steers traffic into it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Binding {
    /// L2TPv2 / PPP: the subscriber's addresses; downstream packets to them are encapsulated.
    Subscriber {
        /// The IPv4 address IPCP assigned (RFC 1332), if any.
        ipv4: Option<Ipv4Addr>,
        /// The IPv6 prefixes routed to the subscriber (interface id from IPv6CP, RFC 5072).
        ipv6: Vec<Ipv6Prefix>,
    },
    /// L2TPv3 Ethernet pseudowire (RFC 4719): frames from and to this interface.
    AttachmentCircuit {
        /// The attachment interface's index.
        ifindex: u32,
    },
}

/// One session as the fast path knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionEntry {
    /// Outer template, ids both ways, cookies, sublayer, sequencing, PPP framing.
    pub session: Session,
    /// What steers traffic into the session and where decapsulated traffic goes.
    pub binding: Binding,
}

impl SessionEntry {
    /// The key the fast path finds the session by (the ids that arrive in packets).
    pub fn key(&self) -> SessionKey {
        self.session.our_ids
    }
}

/// Per-session counters, summed over CPUs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SessionCounters {
    /// Packets decapsulated (access → core).
    pub rx_packets: u64,
    /// Bytes of those packets as received.
    pub rx_bytes: u64,
    /// Packets encapsulated (core → access).
    pub tx_packets: u64,
    /// Bytes of those packets as sent.
    pub tx_bytes: u64,
}

/// Why the fast path refused a request.
#[derive(Debug, thiserror::Error)]
pub enum DataPlaneError {
    /// The session entry is not acceptable (mixed address families, v2 over IP, ...).
    #[error("invalid session {key:?}: {why}")]
    Invalid { key: SessionKey, why: String },
    /// No such session.
    #[error("no session {0:?}")]
    NotFound(SessionKey),
    /// A subscriber address or attachment circuit is already bound to another session.
    #[error("{what} is already bound to session {owner:?}")]
    Conflict { what: String, owner: SessionKey },
    /// A map is full.
    #[error("fast-path table full: {0}")]
    Full(&'static str),
    /// The kernel refused (map update, program load, attach...).
    #[error("fast path: {0}")]
    System(String),
}

/// Which of our ids the fast path finds with the fewest lookups per packet. The LNS chooses
/// the ids peers put in data packets (RFC 2661 §3.1 Assigned Session ID, RFC 3931 §5.4.4
/// Local Session ID); the XDP fast path indexes its session table with them directly when the
/// session can have its home slot, so the control plane draws ids at random among those this
/// answers `true` for (any other id works too, one lookup slower).
pub trait IdHint: Send + Sync {
    /// Whether a new session with this key would be found in one lookup.
    fn preferred(&self, key: &SessionKey) -> bool;
}

/// What the control plane asks of the fast path. Every call is idempotent where it can be:
/// installing an entry that is already there with the same contents succeeds.
pub trait DataPlane: Send {
    /// Installs or replaces a session; it forwards from now on.
    fn install(&mut self, entry: &SessionEntry) -> Result<(), DataPlaneError>;
    /// Removes a session and its bindings; its traffic is dropped (counted) from now on.
    fn remove(&mut self, key: &SessionKey) -> Result<(), DataPlaneError>;
    /// RFC 4951 §3.2.3 data channel reset: Ns restarts at 0 and the receiver re-learns the
    /// peer's sequence.
    fn reset_sequence(&mut self, key: &SessionKey) -> Result<(), DataPlaneError>;
    /// Every installed session (after a control-plane restart: what survived in the fast path).
    fn sessions(&self) -> Result<Vec<SessionEntry>, DataPlaneError>;
    /// A session's counters.
    fn counters(&self, key: &SessionKey) -> Result<SessionCounters, DataPlaneError>;
    /// Which ids to prefer for new sessions (`None`: any).
    fn id_hint(&self) -> Option<std::sync::Arc<dyn IdHint>> {
        None
    }
    /// The LNS's own PPP address (the IPCP local address, RFC 1332 §3.3; `None`: none): the
    /// fast path answers ICMP echo requests to it that arrive in a session (subscribers ping
    /// their gateway). A fast path that forwards nothing itself ignores it.
    fn set_gateway(&mut self, _ipv4: Option<Ipv4Addr>) -> Result<(), DataPlaneError> {
        Ok(())
    }
    /// SCCRQs (control messages to tunnel 0, RFC 2661 §5.1) the fast path passes to the
    /// control plane per second, all sources together (0: no budget); beyond, it drops them
    /// before they reach user space (issue 15). A fast path that passes control traffic
    /// through user space anyway ignores it.
    fn set_sccrq_budget(&mut self, _per_sec: u32) -> Result<(), DataPlaneError> {
        Ok(())
    }
}

/// The fast path as a map in memory: what the control plane's tests and a control plane
/// without a kernel run against. Checks what the XDP implementation checks, with the same
/// indexes (subscriber address, prefix, attachment interface → session), so every call is
/// O(1) in the number of sessions.
#[derive(Debug, Default, Clone)]
pub struct MemoryDataPlane {
    sessions: BTreeMap<SessionKey, SessionEntry>,
    by_ipv4: HashMap<Ipv4Addr, SessionKey>,
    by_prefix: HashMap<Ipv6Prefix, SessionKey>,
    by_ifindex: HashMap<u32, SessionKey>,
    sequence_resets: BTreeMap<SessionKey, u64>,
}

impl MemoryDataPlane {
    /// An empty fast path.
    pub fn new() -> Self {
        Self::default()
    }

    /// How often a session's sequence was reset (for tests of RFC 4951 recovery).
    pub fn sequence_resets(&self, key: &SessionKey) -> u64 {
        self.sequence_resets.get(key).copied().unwrap_or(0)
    }

    /// The number of installed sessions.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Whether no session is installed.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// The first binding of `entry` owned by another session.
    fn conflict(&self, entry: &SessionEntry) -> Option<(String, SessionKey)> {
        let key = entry.key();
        let other = |owner: Option<&SessionKey>| owner.copied().filter(|o| *o != key);
        match &entry.binding {
            Binding::Subscriber { ipv4, ipv6 } => ipv4
                .and_then(|a| {
                    other(self.by_ipv4.get(&a)).map(|o| (format!("subscriber address {a}"), o))
                })
                .or_else(|| {
                    ipv6.iter().find_map(|p| {
                        other(self.by_prefix.get(p))
                            .map(|o| (format!("prefix {}/{}", p.addr, p.len), o))
                    })
                }),
            Binding::AttachmentCircuit { ifindex } => other(self.by_ifindex.get(ifindex))
                .map(|o| (format!("attachment interface {ifindex}"), o)),
        }
    }

    fn unindex(&mut self, entry: &SessionEntry) {
        match &entry.binding {
            Binding::Subscriber { ipv4, ipv6 } => {
                if let Some(a) = ipv4 {
                    self.by_ipv4.remove(a);
                }
                for p in ipv6 {
                    self.by_prefix.remove(p);
                }
            }
            Binding::AttachmentCircuit { ifindex } => {
                self.by_ifindex.remove(ifindex);
            }
        }
    }

    fn index(&mut self, entry: &SessionEntry) {
        let key = entry.key();
        match &entry.binding {
            Binding::Subscriber { ipv4, ipv6 } => {
                if let Some(a) = ipv4 {
                    self.by_ipv4.insert(*a, key);
                }
                for p in ipv6 {
                    self.by_prefix.insert(*p, key);
                }
            }
            Binding::AttachmentCircuit { ifindex } => {
                self.by_ifindex.insert(*ifindex, key);
            }
        }
    }
}

impl DataPlane for MemoryDataPlane {
    fn install(&mut self, entry: &SessionEntry) -> Result<(), DataPlaneError> {
        let key = entry.key();
        entry
            .session
            .validate()
            .map_err(|e| DataPlaneError::Invalid {
                key,
                why: e.to_string(),
            })?;
        if let Some((what, owner)) = self.conflict(entry) {
            return Err(DataPlaneError::Conflict { what, owner });
        }
        if let Some(old) = self.sessions.insert(key, entry.clone()) {
            self.unindex(&old);
        }
        self.index(entry);
        Ok(())
    }

    fn remove(&mut self, key: &SessionKey) -> Result<(), DataPlaneError> {
        let old = self
            .sessions
            .remove(key)
            .ok_or(DataPlaneError::NotFound(*key))?;
        self.unindex(&old);
        Ok(())
    }

    fn reset_sequence(&mut self, key: &SessionKey) -> Result<(), DataPlaneError> {
        if !self.sessions.contains_key(key) {
            return Err(DataPlaneError::NotFound(*key));
        }
        *self.sequence_resets.entry(*key).or_default() += 1;
        Ok(())
    }

    fn sessions(&self) -> Result<Vec<SessionEntry>, DataPlaneError> {
        Ok(self.sessions.values().cloned().collect())
    }

    fn counters(&self, key: &SessionKey) -> Result<SessionCounters, DataPlaneError> {
        self.sessions
            .get(key)
            .map(|_| SessionCounters::default())
            .ok_or(DataPlaneError::NotFound(*key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use l2xdp_wire::datapath::PppTx;
    use l2xdp_wire::l2tp::header::{Cookie, Transport};
    use l2xdp_wire::net::ethernet::{MacAddr, Vlans};

    fn entry(session_id: u16, ipv4: Ipv4Addr) -> SessionEntry {
        SessionEntry {
            session: Session {
                transport: Transport::Udp,
                local_addr: "192.0.2.1".parse().expect("addr"),
                peer_addr: "192.0.2.2".parse().expect("addr"),
                local_port: 1701,
                peer_port: 1701,
                local_mac: MacAddr([0; 6]),
                next_hop_mac: MacAddr([0; 6]),
                vlans: Vlans::NONE,
                our_ids: SessionKey::V2 {
                    tunnel_id: 1,
                    session_id,
                },
                peer_ids: SessionKey::V2 {
                    tunnel_id: 2,
                    session_id: 7,
                },
                cookie_rx: Cookie::NONE,
                cookie_tx: Cookie::NONE,
                l2ss: false,
                sequencing: false,
                ppp: PppTx::default(),
                ttl: 64,
                dscp: 0,
                udp_checksum_v4: false,
            },
            binding: Binding::Subscriber {
                ipv4: Some(ipv4),
                ipv6: vec![],
            },
        }
    }

    #[test]
    fn install_remove_and_conflicts() {
        let mut dp = MemoryDataPlane::new();
        let a = entry(10, Ipv4Addr::new(100, 64, 0, 1));
        dp.install(&a).expect("install");
        dp.install(&a).expect("idempotent");
        let clash = entry(11, Ipv4Addr::new(100, 64, 0, 1));
        assert!(matches!(
            dp.install(&clash),
            Err(DataPlaneError::Conflict { .. })
        ));
        dp.reset_sequence(&a.key()).expect("reset");
        assert_eq!(dp.sequence_resets(&a.key()), 1);
        assert_eq!(dp.sessions().expect("list").len(), 1);
        dp.remove(&a.key()).expect("remove");
        assert!(matches!(
            dp.remove(&a.key()),
            Err(DataPlaneError::NotFound(_))
        ));
        dp.install(&clash).expect("address free again");
    }

    #[test]
    fn invalid_sessions_are_refused() {
        let mut dp = MemoryDataPlane::new();
        let mut e = entry(10, Ipv4Addr::new(100, 64, 0, 1));
        e.session.peer_addr = "2001:db8::1".parse().expect("addr");
        assert!(matches!(
            dp.install(&e),
            Err(DataPlaneError::Invalid { .. })
        ));
    }
}
