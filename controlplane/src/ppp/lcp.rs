//! LCP option negotiation (RFC 1661 §6) for both roles.
//!
//! We request: Maximum-Receive-Unit when it is not the default 1500 (§6.1), the
//! Authentication-Protocol (server only, §6.2: PAP or CHAP-MD5 in the configured order),
//! Magic-Number (§6.4), and PFC/ACFC when configured (§6.5, §6.6). From the peer we accept MRU
//! (Nak below the configured minimum), ACCM (accepted and ignored: L2TP carries synchronous
//! frames, RFC 2661 §3.1), Magic-Number (Nak'ed with a new value when it equals ours or is zero:
//! loop detection, §6.4), PFC/ACFC when configured, and — client only — the
//! Authentication-Protocol the server asks for if configured (else a Nak with ours). The server
//! Rejects an Authentication-Protocol (the LNS does not authenticate itself) and both Reject
//! Quality-Protocol and unknown options.

use l2xdp_wire::ppp::lcp::AuthProtocol;
use l2xdp_wire::ppp::LcpOption;

use super::config::{AuthMethod, PppConfig};
use super::negotiate::{Negotiator, Verdict};
use super::{DownReason, Rng, Role};

/// The MRU of RFC 1661 §6.1 when none is negotiated.
pub const DEFAULT_MRU: u16 = 1500;

fn method(a: &AuthProtocol) -> Option<AuthMethod> {
    match a {
        AuthProtocol::Pap => Some(AuthMethod::Pap),
        AuthProtocol::ChapMd5 => Some(AuthMethod::Chap),
        AuthProtocol::ChapMsV2 => Some(AuthMethod::MsChapV2),
        AuthProtocol::Other { .. } => None,
    }
}

fn protocol(m: AuthMethod) -> AuthProtocol {
    match m {
        AuthMethod::Pap => AuthProtocol::Pap,
        AuthMethod::Chap => AuthProtocol::ChapMd5,
        AuthMethod::MsChapV2 => AuthProtocol::ChapMsV2,
    }
}

/// The LCP negotiator: what we ask for and what was agreed.
#[derive(Debug, Clone)]
pub(crate) struct LcpNeg {
    role: Role,
    /// Authentication protocols, preferred first (server: to request; client: to accept).
    allowed: [Option<AuthMethod>; 3],
    /// Bit per AuthMethod already refused by the peer (server).
    refused: u8,
    want_mru: Option<u16>,
    min_mru: u16,
    pub our_magic: u32,
    our_auth: Option<AuthMethod>,
    request_pfc: bool,
    request_acfc: bool,
    accept_pfc: bool,
    accept_acfc: bool,
    rng: Rng,
    // Agreed values.
    /// The MRU the peer announced: the most we may send.
    pub peer_mru: u16,
    /// The MRU the peer acknowledged for us.
    pub local_mru: u16,
    pub peer_magic: u32,
    /// The peer asked for PFC/ACFC and we acknowledged: we may send compressed frames.
    pub tx_pfc: bool,
    pub tx_acfc: bool,
    /// Server: the protocol the peer agreed to authenticate with. Client: the protocol the
    /// server asked for and we acknowledged.
    pub auth: Option<AuthMethod>,
}

fn bit(m: AuthMethod) -> u8 {
    match m {
        AuthMethod::Pap => 1,
        AuthMethod::Chap => 2,
        AuthMethod::MsChapV2 => 4,
    }
}

impl LcpNeg {
    pub fn new(role: Role, config: &PppConfig, mut rng: Rng) -> Self {
        let mut allowed = [None; 3];
        let mut n = 0;
        for m in &config.auth {
            if n < allowed.len() && !allowed.contains(&Some(*m)) {
                allowed[n] = Some(*m);
                n += 1;
            }
        }
        let our_magic = rng.nonzero_u32();
        LcpNeg {
            role,
            allowed,
            refused: 0,
            want_mru: (config.mru != DEFAULT_MRU).then_some(config.mru),
            min_mru: config.min_mru,
            our_magic,
            our_auth: if role == Role::Server {
                allowed[0]
            } else {
                None
            },
            request_pfc: config.pfc,
            request_acfc: config.acfc,
            accept_pfc: config.pfc,
            accept_acfc: config.acfc,
            rng,
            peer_mru: DEFAULT_MRU,
            local_mru: DEFAULT_MRU,
            peer_magic: 0,
            tx_pfc: false,
            tx_acfc: false,
            auth: None,
        }
    }

    fn is_allowed(&self, m: AuthMethod) -> bool {
        self.allowed.contains(&Some(m))
    }

    fn new_magic(&mut self, not: u32) -> u32 {
        loop {
            let m = self.rng.nonzero_u32();
            if m != not {
                return m;
            }
        }
    }

    /// Whether the proxied "Last Sent LCP CONFREQ" (the LAC's side, now ours) is something we
    /// would have asked for (RFC 2661 §4.4.5).
    pub fn proxy_ours_fits(&self, ours: &[LcpOption]) -> bool {
        let mut auth = None;
        for o in ours {
            match o {
                LcpOption::Mru(_)
                | LcpOption::Accm(_)
                | LcpOption::MagicNumber(_)
                | LcpOption::ProtocolFieldCompression
                | LcpOption::AddressControlFieldCompression => {}
                LcpOption::AuthProtocol(a) => match method(a) {
                    Some(m) if self.is_allowed(m) => auth = Some(m),
                    _ => return false,
                },
                _ => return false,
            }
        }
        // An authenticator that requires authentication needs it negotiated.
        auth.is_some() == self.allowed[0].is_some()
    }

    /// Takes the values a link agreed before a restart (RFC 4951 failover): our request is
    /// what was acknowledged then, so a later renegotiation asks for the same.
    pub fn restore(&mut self, saved: &super::LinkState) {
        self.our_magic = saved.local_magic;
        self.peer_magic = saved.peer_magic;
        self.local_mru = saved.local_mru;
        self.peer_mru = saved.peer_mru;
        self.want_mru = (saved.local_mru != DEFAULT_MRU).then_some(saved.local_mru);
        self.tx_pfc = saved.pfc;
        self.tx_acfc = saved.acfc;
        self.auth = saved.auth;
        if self.role == Role::Server {
            self.our_auth = saved.auth;
        }
    }

    /// Adopts the proxied request as ours, acknowledged.
    pub fn adopt_ours(&mut self, ours: &[LcpOption]) {
        self.want_mru = None;
        self.our_magic = 0;
        self.our_auth = None;
        self.request_pfc = false;
        self.request_acfc = false;
        for o in ours {
            match o {
                LcpOption::Mru(v) => self.want_mru = Some(*v),
                LcpOption::MagicNumber(m) => self.our_magic = *m,
                LcpOption::AuthProtocol(a) => self.our_auth = method(a),
                LcpOption::ProtocolFieldCompression => self.request_pfc = true,
                LcpOption::AddressControlFieldCompression => self.request_acfc = true,
                _ => {}
            }
        }
        self.acked(ours);
    }
}

impl Negotiator for LcpNeg {
    type Opt = LcpOption;

    fn request(&mut self) -> Vec<LcpOption> {
        let mut o = Vec::with_capacity(5);
        if let Some(m) = self.want_mru {
            o.push(LcpOption::Mru(m));
        }
        if let Some(a) = self.our_auth {
            o.push(LcpOption::AuthProtocol(protocol(a)));
        }
        if self.our_magic != 0 {
            o.push(LcpOption::MagicNumber(self.our_magic));
        }
        if self.request_pfc {
            o.push(LcpOption::ProtocolFieldCompression);
        }
        if self.request_acfc {
            o.push(LcpOption::AddressControlFieldCompression);
        }
        o
    }

    fn check(
        &mut self,
        req: &[LcpOption],
        nak_allowed: bool,
    ) -> Result<Verdict<LcpOption>, DownReason> {
        let (mut nak, mut rej) = (Vec::new(), Vec::new());
        for o in req {
            let suggest = |s: LcpOption, nak: &mut Vec<_>, rej: &mut Vec<_>| {
                if nak_allowed {
                    nak.push(s);
                } else {
                    rej.push(o.clone());
                }
            };
            match o {
                LcpOption::Mru(v) if *v < self.min_mru => {
                    suggest(LcpOption::Mru(self.min_mru), &mut nak, &mut rej)
                }
                LcpOption::Mru(_) | LcpOption::Accm(_) => {}
                LcpOption::AuthProtocol(a) => match self.role {
                    Role::Server => rej.push(o.clone()),
                    Role::Client => match (method(a), self.allowed[0]) {
                        (Some(m), _) if self.is_allowed(m) => {}
                        (_, Some(pref)) => {
                            suggest(LcpOption::AuthProtocol(protocol(pref)), &mut nak, &mut rej)
                        }
                        (_, None) => rej.push(o.clone()),
                    },
                },
                LcpOption::MagicNumber(m) if *m == 0 || *m == self.our_magic => {
                    // RFC 1661 §6.4: possibly looped back; Nak with a different number. Once
                    // Naks are exhausted the link is taken for looped-back.
                    if !nak_allowed && *m != 0 {
                        return Err(DownReason::LoopedBack);
                    }
                    let fresh = self.new_magic(self.our_magic);
                    suggest(LcpOption::MagicNumber(fresh), &mut nak, &mut rej)
                }
                LcpOption::MagicNumber(_) => {}
                LcpOption::ProtocolFieldCompression if self.accept_pfc => {}
                LcpOption::AddressControlFieldCompression if self.accept_acfc => {}
                _ => rej.push(o.clone()),
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

    fn peer_acked(&mut self, req: &[LcpOption]) {
        self.peer_mru = DEFAULT_MRU;
        self.peer_magic = 0;
        self.tx_pfc = false;
        self.tx_acfc = false;
        if self.role == Role::Client {
            self.auth = None;
        }
        for o in req {
            match o {
                LcpOption::Mru(v) => self.peer_mru = *v,
                LcpOption::MagicNumber(m) => self.peer_magic = *m,
                LcpOption::ProtocolFieldCompression => self.tx_pfc = true,
                LcpOption::AddressControlFieldCompression => self.tx_acfc = true,
                LcpOption::AuthProtocol(a) if self.role == Role::Client => self.auth = method(a),
                _ => {}
            }
        }
    }

    fn acked(&mut self, opts: &[LcpOption]) {
        self.local_mru = DEFAULT_MRU;
        if self.role == Role::Server {
            self.auth = None;
        }
        for o in opts {
            match o {
                LcpOption::Mru(v) => self.local_mru = *v,
                LcpOption::AuthProtocol(a) if self.role == Role::Server => self.auth = method(a),
                _ => {}
            }
        }
    }

    fn naked(&mut self, opts: &[LcpOption]) -> Result<(), DownReason> {
        for o in opts {
            match o {
                LcpOption::Mru(v) if *v >= self.min_mru => {
                    self.want_mru = (*v != DEFAULT_MRU).then_some(*v)
                }
                LcpOption::AuthProtocol(a) if self.role == Role::Server => {
                    // RFC 1661 §6.2: the peer suggests another protocol; take it if allowed,
                    // else the next one of ours it has not refused.
                    if let Some(cur) = self.our_auth {
                        self.refused |= bit(cur);
                    }
                    self.our_auth = match method(a) {
                        Some(m) if self.is_allowed(m) && self.refused & bit(m) == 0 => Some(m),
                        _ => self
                            .allowed
                            .iter()
                            .flatten()
                            .copied()
                            .find(|m| self.refused & bit(*m) == 0),
                    };
                    if self.our_auth.is_none() {
                        return Err(DownReason::AuthNotAgreed);
                    }
                }
                LcpOption::MagicNumber(_) => {
                    // RFC 1661 §6.4: choose a new random number.
                    self.our_magic = self.new_magic(self.our_magic);
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn rejected(&mut self, opts: &[LcpOption]) -> Result<(), DownReason> {
        for o in opts {
            match o {
                LcpOption::Mru(_) => self.want_mru = None,
                LcpOption::AuthProtocol(_) if self.role == Role::Server => {
                    return Err(DownReason::AuthNotAgreed)
                }
                LcpOption::MagicNumber(_) => self.our_magic = 0,
                LcpOption::ProtocolFieldCompression => self.request_pfc = false,
                LcpOption::AddressControlFieldCompression => self.request_acfc = false,
                _ => {}
            }
        }
        Ok(())
    }
}
