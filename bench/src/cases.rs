//! The forwarding cases (`forward`, `cost`, the callgrind driver) and the sessions and frames of
//! every traffic scenario: L2TPv2 sessions between the lab's LNS and LAC addresses, the one
//! L2TPv3 pseudowire, 64-byte frames per case.

use l2xdp_dataplane::api::{Binding, SessionEntry};
use l2xdp_ebpf::maps::verdict;
use l2xdp_lab::topology::{CORE_MAC, LAC_MAC, LA_MAC, LC_MAC};
use l2xdp_wire::datapath::{encap, PppTx, Session, SessionKey, TxSeq};
use l2xdp_wire::l2tp::header::{Cookie, Transport};
use l2xdp_wire::net::ethernet::{MacAddr, Vlans};
use l2xdp_wire::net::frame::{udp_frame, Endpoints};
use serde::Serialize;

use crate::bpf::prog;
use crate::common::{Error, CORE4, LAC4, LNS4, SUB_BASE};

/// Payload of the 64-byte frames: 14 + 20 + 8 + 22.
const PAYLOAD: [u8; 22] = [7; 22];

/// The cases, in their default interleaving order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Case {
    /// Swap MACs and XDP_TX on la, back to lac0: the cost baseline.
    #[serde(rename = "swapmac")]
    SwapMac,
    /// Plain XDP_REDIRECT la → lc.
    BaselineUp,
    /// L2TPv2 decap la → lc.
    DecapV2,
    /// Plain XDP_REDIRECT lc → la.
    BaselineDown,
    /// L2TPv2 encap lc → la.
    EncapV2,
    /// L2TPv3 decap la → ac0 (one pseudowire: a v3 session is bound to an interface).
    DecapV3,
    /// L2TPv3 encap ac0 → la.
    EncapV3,
    /// The routed baseline la → lc: `xdp_router` (parse, bpf_fib_lookup, TTL − 1, MACs from
    /// the FIB, redirect — the kernel's xdp_fwd sample); not in the default set.
    RouterUp,
}

impl Case {
    /// Every case, in the default interleaving order.
    pub const ALL: [Case; 5] = [
        Case::SwapMac,
        Case::BaselineUp,
        Case::DecapV2,
        Case::BaselineDown,
        Case::EncapV2,
    ];

    /// The L2TPv3 cases (not in the default set; `l2xdp-bench cost` runs them).
    pub const V3: [Case; 2] = [Case::DecapV3, Case::EncapV3];

    /// The routed baseline (not in the default set: `forward --cases …,router-up`).
    pub const ROUTED: [Case; 1] = [Case::RouterUp];

    /// The name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Case::DecapV3 => "decap-v3",
            Case::EncapV3 => "encap-v3",
            Case::SwapMac => "swapmac",
            Case::BaselineUp => "baseline-up",
            Case::DecapV2 => "decap-v2",
            Case::BaselineDown => "baseline-down",
            Case::EncapV2 => "encap-v2",
            Case::RouterUp => "router-up",
        }
    }

    /// Parses a name.
    pub fn parse(s: &str) -> Option<Case> {
        Case::ALL
            .into_iter()
            .chain(Case::V3)
            .chain(Case::ROUTED)
            .find(|c| c.name() == s)
    }

    /// The generator sends from lac0 into la (else from core0 into lc).
    pub(crate) fn gen_at_lac(self) -> bool {
        matches!(
            self,
            Case::SwapMac | Case::BaselineUp | Case::DecapV2 | Case::DecapV3 | Case::RouterUp
        )
    }

    /// The frames end at core0's sink (else at lac0's).
    pub(crate) fn to_core(self) -> bool {
        matches!(
            self,
            Case::BaselineUp | Case::DecapV2 | Case::DecapV3 | Case::RouterUp
        )
    }

    /// "up" (lac → core), "down" (core → lac) or "back" (lac → la → lac).
    pub fn direction(self) -> &'static str {
        match (self.gen_at_lac(), self.to_core()) {
            (true, true) => "up",
            (true, false) => "back",
            _ => "down",
        }
    }

    /// The fast path's verdict counter every frame of this case must raise, if any.
    pub(crate) fn fastpath_verdict(self) -> Option<u32> {
        match self {
            Case::DecapV2 | Case::DecapV3 => Some(verdict::DECAP),
            Case::EncapV2 | Case::EncapV3 => Some(verdict::ENCAP),
            _ => None,
        }
    }

    /// The XDP_REDIRECT baseline this case's Mpps is compared with (itself for a baseline;
    /// baseline-up for swapmac, which starts on the same veth pair).
    pub fn baseline(self) -> Case {
        if self.gen_at_lac() {
            Case::BaselineUp
        } else {
            Case::BaselineDown
        }
    }

    /// The LNS program under test.
    pub fn program(self) -> &'static str {
        match self {
            Case::SwapMac => prog::SWAP_MAC,
            Case::BaselineUp | Case::BaselineDown => prog::REDIRECT_PLAIN,
            Case::DecapV2 | Case::DecapV3 => prog::ACCESS,
            Case::EncapV2 | Case::EncapV3 => prog::CORE,
            Case::RouterUp => prog::ROUTER,
        }
    }
}

/// Session i of the forward/latency cases (100 per tunnel): [`v2_session`]'s with these ids.
pub(crate) fn session(i: u32) -> (Session, SessionEntry) {
    let (_, mut entry) = v2_session(i);
    entry.session.our_ids = SessionKey::V2 {
        tunnel_id: 1 + (i / 100) as u16,
        session_id: 1 + i as u16,
    };
    entry.session.peer_ids = SessionKey::V2 {
        tunnel_id: 1000 + (i / 100) as u16,
        session_id: 5000 + i as u16,
    };
    (peer_of(&entry.session), entry)
}

pub(crate) fn sub_addr(i: u32) -> std::net::Ipv4Addr {
    std::net::Ipv4Addr::from(SUB_BASE + 1 + i)
}

pub(crate) fn frame64(
    src_mac: MacAddr,
    dst_mac: MacAddr,
    src: &str,
    dst: &str,
) -> Result<Vec<u8>, Error> {
    let ep = Endpoints {
        src_mac,
        dst_mac,
        src: src
            .parse()
            .map_err(|e| Error::Frame(format!("{src}: {e}")))?,
        dst: dst
            .parse()
            .map_err(|e| Error::Frame(format!("{dst}: {e}")))?,
    };
    udp_frame(&ep, 4000, 5000, &PAYLOAD).map_err(|e| Error::Frame(format!("{e:?}")))
}

/// The customer MACs inside the v3 pseudowire (subscriber side, core side).
pub(crate) const V3_CUST_SUB: MacAddr = MacAddr([2, 0, 0, 2, 0, 1]);
pub(crate) const V3_CUST_CORE: MacAddr = MacAddr([2, 0, 0, 3, 0, 1]);

/// The frames the generator sends for `case`, one per session (v3: all of the one session).
pub(crate) fn frames(case: Case, n: u32) -> Result<Vec<Vec<u8>>, Error> {
    (0..n)
        .map(|i| {
            let sub = sub_addr(i).to_string();
            match case {
                Case::SwapMac | Case::BaselineUp | Case::RouterUp => {
                    frame64(LAC_MAC, LA_MAC, &sub, CORE4)
                }
                Case::BaselineDown | Case::EncapV2 => frame64(CORE_MAC, LC_MAC, CORE4, &sub),
                Case::EncapV3 => frame64(V3_CUST_CORE, V3_CUST_SUB, CORE4, &sub),
                Case::DecapV3 => {
                    let (peer, _) = v3_session(0, 0);
                    let inner = frame64(V3_CUST_SUB, V3_CUST_CORE, &sub, CORE4)?;
                    let mut out = vec![0; 256];
                    let len = encap(&peer, &mut TxSeq::default(), &inner, 1500, &mut out)
                        .map_err(|e| Error::Frame(format!("encap: {e:?}")))?;
                    out.truncate(len);
                    Ok(out)
                }
                Case::DecapV2 => {
                    let (peer, _) = session(i);
                    let inner = frame64(LAC_MAC, LA_MAC, &sub, CORE4)?;
                    let mut out = vec![0; 256];
                    let len = encap(&peer, &mut TxSeq::default(), &inner[14..], 1500, &mut out)
                        .map_err(|e| Error::Frame(format!("encap: {e:?}")))?;
                    out.truncate(len);
                    Ok(out)
                }
            }
        })
        .collect()
}

/// Sessions i → the LNS's entry and the LAC's (peer's) view of it.
pub(crate) fn v2_session(i: u32) -> (Session, SessionEntry) {
    let ours = Session {
        transport: Transport::Udp,
        local_addr: LNS4.parse().expect("literal"),
        peer_addr: LAC4.parse().expect("literal"),
        local_port: 1701,
        peer_port: 1701,
        local_mac: LA_MAC,
        next_hop_mac: LAC_MAC,
        vlans: Vlans::NONE,
        our_ids: SessionKey::V2 {
            tunnel_id: 1 + (i / 60_000) as u16,
            session_id: 1 + (i % 60_000) as u16,
        },
        peer_ids: SessionKey::V2 {
            tunnel_id: 30_000 + (i / 60_000) as u16,
            session_id: 1 + (i % 60_000) as u16,
        },
        cookie_rx: Cookie::NONE,
        cookie_tx: Cookie::NONE,
        l2ss: false,
        sequencing: false,
        ppp: PppTx::default(),
        ttl: 64,
        dscp: 0,
        udp_checksum_v4: true,
    };
    let entry = SessionEntry {
        session: ours,
        binding: Binding::Subscriber {
            ipv4: Some(sub_addr(i)),
            ipv6: vec![],
        },
    };
    (peer_of(&ours), entry)
}

pub(crate) fn v3_session(k: u32, ac_ifindex: u32) -> (Session, SessionEntry) {
    let ours = Session {
        transport: Transport::Ip,
        our_ids: SessionKey::V3 {
            session_id: 0x1000_0000 + k,
        },
        peer_ids: SessionKey::V3 {
            session_id: 0x2000_0000 + k,
        },
        ..v2_session(0).1.session
    };
    let entry = SessionEntry {
        session: ours,
        binding: Binding::AttachmentCircuit {
            ifindex: ac_ifindex,
        },
    };
    (peer_of(&ours), entry)
}

pub(crate) fn peer_of(ours: &Session) -> Session {
    Session {
        local_addr: ours.peer_addr,
        peer_addr: ours.local_addr,
        local_mac: LAC_MAC,
        next_hop_mac: LA_MAC,
        our_ids: ours.peer_ids,
        peer_ids: ours.our_ids,
        ..*ours
    }
}
