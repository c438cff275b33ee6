//! Proxy LCP and authentication (RFC 2661 §4.4.5): what a LAC proxied in its ICCN
//! ([`Proxy`]), and how an LNS-side link takes LCP as Opened from it and verifies a proxied
//! PAP (RFC 1334 §2) or CHAP (RFC 1994) exchange.

use std::time::Instant;

use l2xdp_wire::ppp::cp::parse_options;
use l2xdp_wire::ppp::{
    chap_md5_verify, ChapBody, ChapPacket, LcpOption, PapBody, PapPacket, PppBody,
};

use super::Link;
use crate::ppp::auth::AuthResult;
use crate::ppp::config::{AuthMethod, MAX_DURATION};
use crate::ppp::fsm::FsmEvent;
use crate::ppp::negotiate::{Negotiator, Verdict};
use crate::ppp::{DownReason, Phase};
use l2xdp_wire::crypto::ct_eq;

/// Proxy Authen Type values (RFC 2661 §4.4.5, §10.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[repr(u16)]
pub enum ProxyAuthType {
    /// 1: textual username/password.
    Text = 1,
    /// 2: PPP CHAP.
    Chap = 2,
    /// 3: PPP PAP.
    Pap = 3,
    /// 4: no authentication.
    None = 4,
    /// 5: MS-CHAPv1.
    MsChapV1 = 5,
}

impl ProxyAuthType {
    /// The type for an AVP value, if defined.
    pub fn from_value(v: u16) -> Option<Self> {
        Some(match v {
            1 => Self::Text,
            2 => Self::Chap,
            3 => Self::Pap,
            4 => Self::None,
            5 => Self::MsChapV1,
            _ => return None,
        })
    }
}

/// What a LAC proxied in its ICCN (RFC 2661 §4.4.5), as plain values: the AVP values with the
/// AVP headers removed (and unhidden).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Proxy {
    /// Initial Received LCP CONFREQ (type 26): the options of the peer's first request.
    pub initial_received_lcp: Option<Vec<u8>>,
    /// Last Sent LCP CONFREQ (type 27): the options the LAC requested (and the peer acked).
    pub last_sent_lcp: Option<Vec<u8>>,
    /// Last Received LCP CONFREQ (type 28): the options of the peer's request the LAC acked.
    pub last_received_lcp: Option<Vec<u8>>,
    /// Proxy Authen Type (type 29), see [`ProxyAuthType`].
    pub authen_type: Option<u16>,
    /// Proxy Authen Name (type 30).
    pub authen_name: Option<Vec<u8>>,
    /// Proxy Authen Challenge (type 31).
    pub authen_challenge: Option<Vec<u8>>,
    /// Proxy Authen ID (type 32).
    pub authen_id: Option<u16>,
    /// Proxy Authen Response (type 33): the CHAP response, or the PAP password.
    pub authen_response: Option<Vec<u8>>,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("initial_received_lcp", &self.initial_received_lcp)
            .field("last_sent_lcp", &self.last_sent_lcp)
            .field("last_received_lcp", &self.last_received_lcp)
            .field("authen_type", &self.authen_type)
            .field("authen_name", &self.authen_name)
            .field("authen_id", &self.authen_id)
            .field(
                "authen_response",
                &self
                    .authen_response
                    .as_ref()
                    .map(|r| format!("<{} bytes>", r.len())),
            )
            .finish_non_exhaustive()
    }
}

impl Link {
    /// Proxy LCP and authentication (RFC 2661 §4.4.5). False: negotiate normally.
    pub(super) fn try_proxy(&mut self, proxy: &Proxy, now: Instant) -> bool {
        let (Some(sent), Some(recv)) = (&proxy.last_sent_lcp, &proxy.last_received_lcp) else {
            return false;
        };
        let (Ok(ours), Ok(theirs)) = (
            parse_options::<LcpOption>(sent),
            parse_options::<LcpOption>(recv),
        ) else {
            return false;
        };
        if !self.lcp.neg.proxy_ours_fits(&ours) {
            return false;
        }
        let mut neg = self.lcp.neg.clone();
        neg.adopt_ours(&ours);
        if neg.check(&theirs, true) != Ok(Verdict::Ack) {
            return false;
        }
        neg.peer_acked(&theirs);
        self.lcp.neg = neg;
        self.phase = Phase::Establish;
        let _ = self.lcp.event(FsmEvent::Up, now, &mut self.io);
        self.lcp.force_opened(ours);
        self.io.peer_mru = self.lcp.neg.peer_mru;
        self.echo_next = (!self.config.echo_interval.is_zero())
            .then(|| now + self.config.echo_interval.min(MAX_DURATION));
        let Some(m) = self.lcp.neg.auth else {
            self.network(now);
            return true;
        };
        self.phase = Phase::Authenticate;
        match self.proxy_auth(m, proxy) {
            Some(r) => self.on_auth(r, now),
            None => self
                .server_auth
                .start(m, now, &self.config, &mut self.rng, &mut self.io),
        }
        true
    }

    /// Verifies a proxied PAP or CHAP exchange of method `m` and answers the peer; `None`
    /// when there is none to verify.
    fn proxy_auth(&mut self, m: AuthMethod, proxy: &Proxy) -> Option<AuthResult> {
        let creds = self.creds.clone()?;
        if creds.external() {
            // RADIUS: no secret here to check the proxied exchange against; the LNS
            // authenticates the peer itself (RFC 2661 §4.4.5 allows it).
            return None;
        }
        let name = proxy.authen_name.as_ref()?;
        let response = proxy.authen_response.as_ref()?;
        let id = u8::try_from(proxy.authen_id?).ok()?;
        let kind = proxy.authen_type.and_then(ProxyAuthType::from_value)?;
        let entry = creds.lookup(name);
        let user = Some(String::from_utf8_lossy(name).into_owned());
        let ok = match (m, kind) {
            (AuthMethod::Chap, ProxyAuthType::Chap) => {
                let challenge = proxy.authen_challenge.as_ref()?;
                let ok = entry
                    .as_ref()
                    .is_some_and(|e| chap_md5_verify(id, &e.secret, challenge, response));
                self.io.send_body(PppBody::Chap(ChapPacket {
                    identifier: id,
                    body: if ok {
                        ChapBody::Success {
                            message: b"Welcome".to_vec(),
                        }
                    } else {
                        ChapBody::Failure {
                            message: b"Authentication failed".to_vec(),
                        }
                    },
                }));
                ok
            }
            (AuthMethod::Pap, ProxyAuthType::Pap) => {
                let ok = entry.as_ref().is_some_and(|e| ct_eq(&e.secret, response));
                self.io.send_body(PppBody::Pap(PapPacket {
                    identifier: id,
                    body: if ok {
                        PapBody::AuthenticateAck {
                            message: b"Login ok".to_vec(),
                        }
                    } else {
                        PapBody::AuthenticateNak {
                            message: b"Authentication failed".to_vec(),
                        }
                    },
                }));
                ok
            }
            _ => return None,
        };
        Some(if ok {
            AuthResult::Success {
                user,
                ipv4: entry.and_then(|e| e.ipv4),
            }
        } else {
            AuthResult::Failure {
                user,
                reason: DownReason::AuthFailed,
            }
        })
    }
}
