//! A session's fast-path entry: the [`Session`] the node builds for the fast path (outer
//! addresses, both sides' IDs, cookies, sequencing, the binding), installed when the session
//! comes up, rebound as PPP comes and goes, and removed when it goes down.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use l2xdp_dataplane_api::{Binding, SessionEntry};
use l2xdp_wire::datapath::{PppTx, Session};
use l2xdp_wire::net::ethernet::{MacAddr, Vlans};

use crate::l2tp::SessionUp;
use crate::ppp::LinkUp;

use super::Node;

impl Node {
    pub(super) fn template(&self, up: &SessionUp, ppp: Option<&LinkUp>) -> Session {
        let local = self
            .local_of
            .get(&up.peer)
            .copied()
            .unwrap_or_else(|| SocketAddr::new(unspecified_like(up.peer.addr.ip()), 1701));
        Session {
            transport: up.peer.transport,
            local_addr: local.ip(),
            peer_addr: up.peer.addr.ip(),
            local_port: local.port(),
            peer_port: up.peer.addr.port(),
            local_mac: MacAddr([0; 6]),
            next_hop_mac: MacAddr([0; 6]),
            vlans: Vlans::NONE,
            our_ids: up.our_ids,
            peer_ids: up.peer_ids,
            cookie_rx: up.cookie_rx,
            cookie_tx: up.cookie_tx,
            l2ss: up.sublayer_rx || up.sublayer_tx,
            sequencing: up.sequencing_rx || up.sequencing_tx,
            ppp: PppTx {
                acfc: ppp.is_some_and(|u| u.acfc),
                pfc: ppp.is_some_and(|u| u.pfc),
            },
            ttl: 64,
            dscp: 0,
            udp_checksum_v4: false,
        }
    }

    pub(super) fn install(
        &mut self,
        up: &SessionUp,
        ppp: Option<&LinkUp>,
        binding: Binding,
    ) -> bool {
        let entry = SessionEntry {
            session: self.template(up, ppp),
            binding,
        };
        self.install_entry(up, &entry)
    }

    /// Installs `entry` (of session `up`) in the fast path, counted; whether it went in.
    pub(super) fn install_entry(&mut self, up: &SessionUp, entry: &SessionEntry) -> bool {
        match self.dataplane.install(entry) {
            Ok(()) => {
                self.counters.installs += 1;
                true
            }
            Err(e) => {
                self.counters.dataplane_errors += 1;
                tracing::warn!(tunnel = up.tunnel, session = up.session, %e, "fast-path install failed");
                false
            }
        }
    }

    pub(super) fn uninstall(&mut self, up: &SessionUp) {
        match self.dataplane.remove(&up.our_ids) {
            Ok(()) => self.counters.removals += 1,
            Err(e) => {
                self.counters.dataplane_errors += 1;
                tracing::warn!(tunnel = up.tunnel, session = up.session, %e, "fast-path removal failed");
            }
        }
    }
}

/// A PPP session's binding before (or between) IPCP/IPv6CP: no subscriber address.
pub(super) fn unbound() -> Binding {
    Binding::Subscriber {
        ipv4: None,
        ipv6: Vec::new(),
    }
}

fn unspecified_like(a: IpAddr) -> IpAddr {
    match a {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
    }
}
