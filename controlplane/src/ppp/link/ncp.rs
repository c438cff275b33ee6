//! The Network-Layer Protocol phase (RFC 1661 §3.6): the subscriber's IPv4 address (fixed or
//! from the pool), bringing IPCP (RFC 1332) and IPv6CP (RFC 5072) up and down, NCPs the peer
//! Protocol-Rejects (RFC 1661 §5.7), and when the link counts as up ([`Event::Up`]).

use std::time::Instant;

use super::{Link, Ncp, IPCP_GONE, IPV6CP_GONE};
use crate::ppp::fsm::{Actions, FsmEvent, State};
use crate::ppp::negotiate::Outcome;
use crate::ppp::{DownReason, Event, LinkUp, Phase, Role};

impl Link {
    /// Enters the Network phase: an address for the subscriber, then the NCPs.
    pub(super) fn network(&mut self, now: Instant) {
        self.phase = Phase::Network;
        self.ncp_gone = 0;
        if self.role == Role::Server {
            if let Some(reason) = self.assign_address() {
                self.close(reason, now);
                return;
            }
        }
        if let Some(cp) = self.ipcp.as_mut() {
            let mut o = cp.event(FsmEvent::Up, now, &mut self.io);
            let o2 = cp.event(FsmEvent::Open, now, &mut self.io);
            o.layer |= o2.layer;
            self.on_ncp(Ncp::Ipcp, o, now);
        }
        if let Some(cp) = self.ipv6cp.as_mut() {
            let mut o = cp.event(FsmEvent::Up, now, &mut self.io);
            let o2 = cp.event(FsmEvent::Open, now, &mut self.io);
            o.layer |= o2.layer;
            self.on_ncp(Ncp::Ipv6cp, o, now);
        }
        if self.ipcp.is_none() && self.ipv6cp.is_none() {
            self.check_up();
        }
    }

    pub(super) fn network_down(&mut self) {
        if self.up {
            self.up = false;
            if self.phase != Phase::Terminate {
                self.io.counters.renegotiations += 1;
            }
            self.events.push_back(Event::NetworkDown);
        }
    }

    /// Server: the subscriber's IPv4 address (kept across renegotiations).
    fn assign_address(&mut self) -> Option<DownReason> {
        let cp = self.ipcp.as_mut()?;
        if cp.neg.assigned.is_some() {
            return None;
        }
        let addr = match (self.fixed_ipv4, &self.pool) {
            (Some(a), Some(pool)) => {
                let mut p = match pool.lock() {
                    Ok(p) => p,
                    Err(_) => return Some(DownReason::PoolExhausted),
                };
                if !p.reserve(a) {
                    return Some(DownReason::AddressInUse);
                }
                if p.contains(a) {
                    self.lease = Some(a);
                }
                Some(a)
            }
            (Some(a), None) => Some(a),
            (None, Some(pool)) => {
                let a = pool.lock().ok().and_then(|mut p| p.allocate());
                match a {
                    Some(a) => {
                        self.lease = Some(a);
                        Some(a)
                    }
                    None => return Some(DownReason::PoolExhausted),
                }
            }
            (None, None) => None,
        };
        cp.neg.assigned = addr;
        None
    }

    pub(super) fn ncp_rejected(&mut self, which: Ncp, now: Instant) {
        // RFC 1661 §5.7: stop sending the protocol.
        let o = match which {
            Ncp::Ipcp => self
                .ipcp
                .as_mut()
                .map(|c| c.event(FsmEvent::Down, now, &mut self.io)),
            Ncp::Ipv6cp => self
                .ipv6cp
                .as_mut()
                .map(|c| c.event(FsmEvent::Down, now, &mut self.io)),
        };
        self.ncp_gone |= match which {
            Ncp::Ipcp => IPCP_GONE,
            Ncp::Ipv6cp => IPV6CP_GONE,
        };
        if let Some(mut o) = o {
            o.layer |= Actions::TLF;
            self.on_ncp(which, o, now);
        }
    }

    pub(super) fn on_ncp(&mut self, which: Ncp, o: Outcome, now: Instant) {
        if let Some(r) = o.fail {
            self.close(r, now);
            return;
        }
        if o.layer.contains(Actions::TLD) {
            self.network_down();
        }
        if o.layer.contains(Actions::TLF) && self.phase == Phase::Network {
            self.ncp_gone |= match which {
                Ncp::Ipcp => IPCP_GONE,
                Ncp::Ipv6cp => IPV6CP_GONE,
            };
            let ipcp_gone = self.ipcp.is_none() || self.ncp_gone & IPCP_GONE != 0;
            let ipv6_gone = self.ipv6cp.is_none() || self.ncp_gone & IPV6CP_GONE != 0;
            if ipcp_gone && ipv6_gone {
                self.close(DownReason::NoNetworkProtocols, now);
                return;
            }
        }
        if o.layer.contains(Actions::TLU) || o.layer.contains(Actions::TLF) {
            self.check_up();
        }
    }

    fn check_up(&mut self) {
        if self.phase != Phase::Network || self.up {
            return;
        }
        let status = |state: Option<State>, gone: bool| match state {
            None => (true, false),
            Some(State::Opened) => (true, true),
            Some(_) => (gone, false),
        };
        let (ip4_settled, ip4_open) = status(self.ipcp_state(), self.ncp_gone & IPCP_GONE != 0);
        let (ip6_settled, ip6_open) = status(self.ipv6cp_state(), self.ncp_gone & IPV6CP_GONE != 0);
        let none_configured = self.ipcp.is_none() && self.ipv6cp.is_none();
        if !(ip4_settled && ip6_settled && (ip4_open || ip6_open || none_configured)) {
            return;
        }
        self.up = true;
        let up = self.current_up();
        self.events.push_back(Event::Up(up));
    }

    /// The values of the open layers (for [`Event::Up`] and [`Link::state`]).
    pub(super) fn current_up(&self) -> LinkUp {
        let ip4_open = self.ipcp_state() == Some(State::Opened);
        let ip6_open = self.ipv6cp_state() == Some(State::Opened);
        let lcp = &self.lcp.neg;
        let ipcp = self.ipcp.as_ref().filter(|_| ip4_open).map(|c| &c.neg);
        LinkUp {
            user: self.user.clone(),
            local_ipv4: ipcp.and_then(|n| n.local_addr),
            peer_ipv4: ipcp.and_then(|n| n.peer_addr),
            dns: ipcp.map(|n| n.agreed_dns).unwrap_or_default(),
            ipv6: self
                .ipv6cp
                .as_ref()
                .filter(|_| ip6_open)
                .map(|c| (c.neg.ours, c.neg.peer.unwrap_or_default())),
            peer_mru: lcp.peer_mru,
            local_mru: lcp.local_mru,
            local_magic: lcp.our_magic,
            peer_magic: lcp.peer_magic,
            pfc: lcp.tx_pfc,
            acfc: lcp.tx_acfc,
        }
    }
}
