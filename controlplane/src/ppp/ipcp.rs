//! IPCP option negotiation (RFC 1332, RFC 1877) for both roles.
//!
//! Server: requests its own IP-Address (RFC 1332 §3.3); tells the subscriber its address by
//! Nak'ing 0.0.0.0 or any other address with the assigned one (also adding the option to the
//! Nak when the request lacks it); Naks Primary/Secondary-DNS with the configured servers
//! (RFC 1877 §1.1, §1.3) or Rejects them when none are configured; Rejects everything else
//! (IP-Addresses, compression, NBNS, unknown).
//!
//! Client: requests IP-Address 0.0.0.0 and, when configured, DNS 0.0.0.0, and takes the values
//! the server Naks; acknowledges the server's non-zero IP-Address.

use std::net::Ipv4Addr;

use l2xdp_wire::ppp::IpcpOption;

use super::negotiate::{Negotiator, Verdict};
use super::{DownReason, Role};

#[derive(Debug, Clone)]
pub(crate) struct IpcpNeg {
    role: Role,
    /// The address we request (server: its own; client: 0.0.0.0, then what the server Naks).
    /// `None` once the peer Rejected the option.
    want_addr: Option<Ipv4Addr>,
    /// Server: the subscriber's address. Client: unused.
    pub assigned: Option<Ipv4Addr>,
    /// Server: DNS to offer. Client: DNS to request (0.0.0.0 until Nak'ed), `None` if not.
    dns: [Option<Ipv4Addr>; 2],
    // Agreed values.
    /// The address the peer acknowledged for us.
    pub local_addr: Option<Ipv4Addr>,
    /// The address in the peer's acknowledged request.
    pub peer_addr: Option<Ipv4Addr>,
    /// Server: the DNS the subscriber acknowledged. Client: the DNS the server gave us.
    pub agreed_dns: [Option<Ipv4Addr>; 2],
}

impl IpcpNeg {
    pub fn new(role: Role, local: Ipv4Addr, dns: &[Ipv4Addr], request_dns: bool) -> Self {
        let (want_addr, dns) = match role {
            Role::Server => (
                (!local.is_unspecified()).then_some(local),
                [dns.first().copied(), dns.get(1).copied()],
            ),
            Role::Client => {
                let d = (request_dns || !dns.is_empty()).then_some(Ipv4Addr::UNSPECIFIED);
                (Some(Ipv4Addr::UNSPECIFIED), [d, d])
            }
        };
        IpcpNeg {
            role,
            want_addr,
            assigned: None,
            dns,
            local_addr: None,
            peer_addr: None,
            agreed_dns: [None; 2],
        }
    }

    /// Takes the values IPCP agreed before a restart (RFC 4951 failover).
    pub fn restore(&mut self, saved: &super::LinkState) {
        self.local_addr = saved.local_ipv4;
        self.peer_addr = saved.peer_ipv4;
        self.agreed_dns = saved.dns;
        match self.role {
            Role::Server => self.assigned = saved.peer_ipv4,
            Role::Client => {
                if let Some(a) = saved.local_ipv4 {
                    self.want_addr = Some(a);
                }
                for (want, got) in self.dns.iter_mut().zip(saved.dns) {
                    if want.is_some() {
                        *want = got.or(*want);
                    }
                }
            }
        }
    }

    fn dns_slot(o: &IpcpOption) -> Option<(usize, Ipv4Addr)> {
        match o {
            IpcpOption::PrimaryDns(a) => Some((0, *a)),
            IpcpOption::SecondaryDns(a) => Some((1, *a)),
            _ => None,
        }
    }

    fn dns_option(slot: usize, a: Ipv4Addr) -> IpcpOption {
        if slot == 0 {
            IpcpOption::PrimaryDns(a)
        } else {
            IpcpOption::SecondaryDns(a)
        }
    }
}

impl Negotiator for IpcpNeg {
    type Opt = IpcpOption;

    fn request(&mut self) -> Vec<IpcpOption> {
        let mut o = Vec::with_capacity(3);
        if let Some(a) = self.want_addr {
            o.push(IpcpOption::IpAddress(a));
        }
        if self.role == Role::Client {
            for (slot, d) in self.dns.iter().enumerate() {
                if let Some(d) = d {
                    o.push(Self::dns_option(slot, *d));
                }
            }
        }
        o
    }

    fn check(
        &mut self,
        req: &[IpcpOption],
        nak_allowed: bool,
    ) -> Result<Verdict<IpcpOption>, DownReason> {
        let (mut nak, mut rej) = (Vec::new(), Vec::new());
        let mut saw_addr = false;
        for o in req {
            let suggest = |s: IpcpOption, nak: &mut Vec<_>, rej: &mut Vec<_>| {
                if nak_allowed {
                    nak.push(s);
                } else {
                    rej.push(o.clone());
                }
            };
            match (self.role, o) {
                (Role::Server, IpcpOption::IpAddress(a)) => {
                    saw_addr = true;
                    match self.assigned {
                        Some(x) if x == *a => {}
                        Some(x) => suggest(IpcpOption::IpAddress(x), &mut nak, &mut rej),
                        // No pool and no fixed address: the subscriber brings its own.
                        None if !a.is_unspecified() => {}
                        None => rej.push(o.clone()),
                    }
                }
                (Role::Server, IpcpOption::PrimaryDns(_) | IpcpOption::SecondaryDns(_)) => {
                    let (slot, a) = Self::dns_slot(o).unwrap_or((0, Ipv4Addr::UNSPECIFIED));
                    match self.dns[slot] {
                        Some(d) if d == a => {}
                        Some(d) => suggest(Self::dns_option(slot, d), &mut nak, &mut rej),
                        None => rej.push(o.clone()),
                    }
                }
                (Role::Client, IpcpOption::IpAddress(a)) if !a.is_unspecified() => {}
                _ => rej.push(o.clone()),
            }
        }
        if self.role == Role::Server && !saw_addr && nak_allowed {
            // RFC 1661 §5.3: a Nak may add options the sender should include.
            if let Some(x) = self.assigned {
                nak.push(IpcpOption::IpAddress(x));
            }
        }
        Ok(if !rej.is_empty() {
            Verdict::Reject(rej)
        } else if !nak.is_empty() {
            Verdict::Nak(nak)
        } else {
            Verdict::Ack
        })
    }

    fn peer_acked(&mut self, req: &[IpcpOption]) {
        self.peer_addr = None;
        if self.role == Role::Server {
            self.agreed_dns = [None; 2];
        }
        for o in req {
            match o {
                IpcpOption::IpAddress(a) => self.peer_addr = Some(*a),
                o if self.role == Role::Server => {
                    if let Some((slot, a)) = Self::dns_slot(o) {
                        self.agreed_dns[slot] = Some(a);
                    }
                }
                _ => {}
            }
        }
    }

    fn acked(&mut self, opts: &[IpcpOption]) {
        self.local_addr = None;
        if self.role == Role::Client {
            self.agreed_dns = [None; 2];
        }
        for o in opts {
            match o {
                IpcpOption::IpAddress(a) => self.local_addr = Some(*a),
                o if self.role == Role::Client => {
                    if let Some((slot, a)) = Self::dns_slot(o) {
                        self.agreed_dns[slot] = (!a.is_unspecified()).then_some(a);
                    }
                }
                _ => {}
            }
        }
    }

    fn naked(&mut self, opts: &[IpcpOption]) -> Result<(), DownReason> {
        if self.role == Role::Server {
            // Our own address is ours to choose; the Nak is ignored.
            return Ok(());
        }
        for o in opts {
            match o {
                IpcpOption::IpAddress(a) => self.want_addr = Some(*a),
                o => {
                    if let Some((slot, a)) = Self::dns_slot(o) {
                        if self.dns[slot].is_some() {
                            self.dns[slot] = Some(a);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn rejected(&mut self, opts: &[IpcpOption]) -> Result<(), DownReason> {
        for o in opts {
            match o {
                IpcpOption::IpAddress(_) => self.want_addr = None,
                o => {
                    if let Some((slot, _)) = Self::dns_slot(o) {
                        self.dns[slot] = None;
                    }
                }
            }
        }
        Ok(())
    }
}
