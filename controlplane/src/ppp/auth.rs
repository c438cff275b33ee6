//! The Authenticate phase (RFC 1661 §3.5) in both roles: PAP (RFC 1334 §2) and CHAP with MD5
//! (RFC 1994).
//!
//! Server: PAP waits (up to `auth_timeout`) for an Authenticate-Request and answers Ack or Nak;
//! CHAP sends a Challenge and retransmits it with the same Identifier and Value every Restart
//! period, Max-Configure times in all (RFC 1994 §4.1). Repeated Requests/Responses after a
//! success are answered again (the Ack/Success was lost, RFC 1334 §2.2.1, RFC 1994 §4.2).
//!
//! With external credentials ([`Credentials::external`], RADIUS) the server does not verify
//! itself: a Request/Response becomes [`AuthResult::Verify`] (the link reports it as
//! [`super::Event::AuthRequest`]), repeats are discarded while the answer is awaited, and
//! [`ServerAuth::answer`] sends the Ack/Nak or Success/Failure when it comes (with the
//! server's Reply-Message as the message, RFC 1334 §2.2.2, RFC 1994 §4.2).
//!
//! Client: PAP sends the Authenticate-Request and retransmits it every Restart period until an
//! Ack or Nak, Max-Configure times (RFC 1334 §2.2.1); CHAP answers every Challenge and, while
//! no Success or Failure arrives, repeats its Response (the authenticator answers a repeat).

use std::net::Ipv4Addr;
use std::time::Instant;

use l2xdp_wire::crypto::ct_eq;
use l2xdp_wire::ppp::mschapv2::{
    authenticator_response, failure_message, nt_response, success_matches, success_message,
    verify_nt_response, MsChapV2Response,
};
use l2xdp_wire::ppp::{
    chap_md5_response, chap_md5_verify, ChapBody, ChapPacket, PapBody, PapPacket, PppBody,
};

use super::config::{AuthMethod, PppConfig};
use super::negotiate::Io;
use super::users::Credentials;
use super::{DownReason, Rng};
use crate::aaa::{AccessOutcome, Credential};

/// What an authentication step decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AuthResult {
    Pending,
    Success {
        user: Option<String>,
        ipv4: Option<Ipv4Addr>,
    },
    Failure {
        user: Option<String>,
        reason: DownReason,
    },
    /// External credentials: the proof to have verified (the answer goes to
    /// [`ServerAuth::answer`]).
    Verify {
        user: Vec<u8>,
        credential: Credential,
    },
}

fn name(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The authenticator.
#[derive(Debug, Clone, Default)]
pub(crate) struct ServerAuth {
    pub method: Option<AuthMethod>,
    id: u8,
    challenge: [u8; 16],
    tries_left: u32,
    pub deadline: Option<Instant>,
    verified: bool,
    /// External credentials: the request whose answer is awaited (PAP: the Request's
    /// Identifier; CHAP: the Challenge's) and the user.
    awaiting: Option<(u8, Vec<u8>)>,
    /// Names the awaited verification (random, set by the link): an answer meant for an
    /// earlier one of a session with the same IDs is told apart.
    pub ticket: u64,
    /// The CHAP Success message sent (repeated for a repeated Response; for MS-CHAP-V2 it
    /// carries the Authenticator Response).
    success: Option<Vec<u8>>,
}

/// Whether `m` is one of the CHAP algorithms (MD5, MS-CHAP-V2).
fn is_chap(m: Option<AuthMethod>) -> bool {
    matches!(m, Some(AuthMethod::Chap | AuthMethod::MsChapV2))
}

impl ServerAuth {
    pub fn start(
        &mut self,
        method: AuthMethod,
        now: Instant,
        cfg: &PppConfig,
        rng: &mut Rng,
        io: &mut Io,
    ) {
        self.method = Some(method);
        self.verified = false;
        self.success = None;
        match method {
            AuthMethod::Pap => {
                self.deadline = Some(now + cfg.auth_timeout.min(super::config::MAX_DURATION))
            }
            // RFC 2759 §3: the MS-CHAP-V2 Challenge is 16 octets, as ours always are.
            AuthMethod::Chap | AuthMethod::MsChapV2 => {
                self.id = self.id.wrapping_add(1 + (rng.next_u64() % 200) as u8);
                self.challenge = rng.array();
                self.tries_left = cfg.max_configure.max(1) - 1;
                self.deadline = Some(now + cfg.restart());
                self.send_challenge(cfg, io);
            }
        }
    }

    /// Forgets the state (LCP went down).
    pub fn reset(&mut self) {
        self.method = None;
        self.deadline = None;
        self.verified = false;
        self.awaiting = None;
        self.success = None;
    }

    /// Whether an external answer is awaited.
    pub fn awaiting(&self) -> bool {
        self.awaiting.is_some()
    }

    /// The ticket of the awaited verification.
    pub fn awaited_ticket(&self) -> Option<u64> {
        self.awaiting.as_ref().map(|_| self.ticket)
    }

    /// External credentials: a PAP Request or CHAP Response to have verified, unless one is
    /// already (a repeat is discarded) or the peer was verified (PAP: the Ack is repeated,
    /// RFC 1334 §2.2.1; CHAP: Success repeated, RFC 1994 §4.2).
    fn verify(
        &mut self,
        identifier: u8,
        user: Vec<u8>,
        credential: Credential,
        io: &mut Io,
    ) -> AuthResult {
        if self.verified {
            let body = match self.method {
                Some(AuthMethod::Pap) => PppBody::Pap(PapPacket {
                    identifier,
                    body: PapBody::AuthenticateAck {
                        message: b"Login ok".to_vec(),
                    },
                }),
                _ => PppBody::Chap(ChapPacket {
                    identifier,
                    body: ChapBody::Success {
                        message: self.success.clone().unwrap_or_else(|| b"Welcome".to_vec()),
                    },
                }),
            };
            io.send_body(body);
            return AuthResult::Pending;
        }
        if self.awaiting.is_some() {
            io.counters.discarded += 1;
            return AuthResult::Pending;
        }
        self.awaiting = Some((identifier, user.clone()));
        AuthResult::Verify { user, credential }
    }

    /// The external answer (`None`: no server answered, the authentication fails closed):
    /// answers the peer and reports the result.
    pub fn answer(&mut self, outcome: Option<&AccessOutcome>, io: &mut Io) -> AuthResult {
        let Some((identifier, user)) = self.awaiting.take() else {
            return AuthResult::Pending;
        };
        let ms = self.method == Some(AuthMethod::MsChapV2);
        let (ok, message, ipv4) = match outcome {
            // RFC 2759 §5: the Success message carries the server's Authenticator Response
            // (MS-CHAP2-Success, RFC 2548 §2.3.3: Ident then "S=..."); without it the peer
            // could not check the server, and the login fails.
            Some(AccessOutcome::Accept(a)) if ms => match a.ms_chap2_success.as_deref() {
                Some([_, s @ ..]) if s.len() >= 42 => (
                    true,
                    format!(
                        "{} M={}",
                        String::from_utf8_lossy(&s[..42]),
                        a.reply_message.as_deref().unwrap_or("Welcome")
                    )
                    .into_bytes(),
                    a.framed_ip,
                ),
                _ => {
                    tracing::warn!("MS-CHAP-V2 Access-Accept without MS-CHAP2-Success: refused");
                    (false, b"Authentication failed".to_vec(), None)
                }
            },
            Some(AccessOutcome::Accept(a)) => (
                true,
                a.reply_message
                    .clone()
                    .unwrap_or_else(|| "Welcome".into())
                    .into_bytes(),
                a.framed_ip,
            ),
            Some(AccessOutcome::Reject { reply_message }) => (
                false,
                reply_message
                    .clone()
                    .unwrap_or_else(|| "Authentication failed".into())
                    .into_bytes(),
                None,
            ),
            Some(AccessOutcome::Challenge) => (false, b"Authentication failed".to_vec(), None),
            None => (false, b"Authentication service unavailable".to_vec(), None),
        };
        let message = if ms && !ok {
            // RFC 2759 §6: "E=691 R=0 C=... V=3 M=<text>".
            failure_message(&self.challenge, &String::from_utf8_lossy(&message))
        } else {
            message
        };
        if ok && ms {
            self.success = Some(message.clone());
        }
        let body = match self.method {
            Some(AuthMethod::Pap) => PppBody::Pap(PapPacket {
                identifier,
                body: if ok {
                    PapBody::AuthenticateAck { message }
                } else {
                    PapBody::AuthenticateNak { message }
                },
            }),
            _ => PppBody::Chap(ChapPacket {
                identifier,
                body: if ok {
                    ChapBody::Success { message }
                } else {
                    ChapBody::Failure { message }
                },
            }),
        };
        io.send_body(body);
        self.deadline = None;
        if ok {
            self.verified = true;
            AuthResult::Success {
                user: Some(name(&user)),
                ipv4,
            }
        } else {
            AuthResult::Failure {
                user: Some(name(&user)),
                reason: DownReason::AuthFailed,
            }
        }
    }

    fn send_challenge(&self, cfg: &PppConfig, io: &mut Io) {
        io.send_body(PppBody::Chap(ChapPacket {
            identifier: self.id,
            body: ChapBody::Challenge {
                value: self.challenge.to_vec(),
                name: cfg.hostname.as_bytes().to_vec(),
            },
        }));
    }

    pub fn timeout(&mut self, now: Instant, cfg: &PppConfig, io: &mut Io) -> AuthResult {
        match self.deadline {
            Some(d) if d <= now => {}
            _ => return AuthResult::Pending,
        }
        self.deadline = None;
        if self.awaiting.is_some() {
            // The external answer did not come within `auth_timeout`.
            self.awaiting = None;
            return AuthResult::Failure {
                user: None,
                reason: DownReason::AuthTimeout,
            };
        }
        if is_chap(self.method) && self.tries_left > 0 {
            self.tries_left -= 1;
            self.deadline = Some(now + cfg.restart());
            io.counters.retransmissions += 1;
            self.send_challenge(cfg, io);
            return AuthResult::Pending;
        }
        AuthResult::Failure {
            user: None,
            reason: DownReason::AuthTimeout,
        }
    }

    pub fn pap(&mut self, pkt: PapPacket, creds: &dyn Credentials, io: &mut Io) -> AuthResult {
        let PapBody::AuthenticateRequest { peer_id, password } = pkt.body else {
            return AuthResult::Pending;
        };
        if self.method != Some(AuthMethod::Pap) {
            io.counters.discarded += 1;
            return AuthResult::Pending;
        }
        if creds.external() {
            return self.verify(pkt.identifier, peer_id, Credential::Pap(password), io);
        }
        let entry = creds
            .lookup(&peer_id)
            .filter(|e| ct_eq(&e.secret, &password));
        let (body, result) = match entry {
            Some(e) => (
                PapBody::AuthenticateAck {
                    message: b"Login ok".to_vec(),
                },
                if self.verified {
                    AuthResult::Pending
                } else {
                    AuthResult::Success {
                        user: Some(name(&peer_id)),
                        ipv4: e.ipv4,
                    }
                },
            ),
            None if self.verified => return AuthResult::Pending,
            None => (
                PapBody::AuthenticateNak {
                    message: b"Authentication failed".to_vec(),
                },
                AuthResult::Failure {
                    user: Some(name(&peer_id)),
                    reason: DownReason::AuthFailed,
                },
            ),
        };
        if matches!(result, AuthResult::Success { .. }) {
            self.verified = true;
            self.deadline = None;
        }
        io.send_body(PppBody::Pap(PapPacket {
            identifier: pkt.identifier,
            body,
        }));
        result
    }

    pub fn chap(&mut self, pkt: ChapPacket, creds: &dyn Credentials, io: &mut Io) -> AuthResult {
        let ChapBody::Response { value, name: user } = pkt.body else {
            return AuthResult::Pending;
        };
        if !is_chap(self.method) || pkt.identifier != self.id {
            // RFC 1994 §4.1: a Response must answer the current Challenge.
            io.counters.discarded += 1;
            return AuthResult::Pending;
        }
        // RFC 2759 §4: a 49-octet Response Value; anything else is not an MS-CHAP-V2 one.
        let ms = match self.method {
            Some(AuthMethod::MsChapV2) => match MsChapV2Response::parse(&value) {
                Some(r) => Some(r),
                None => {
                    io.counters.discarded += 1;
                    return AuthResult::Pending;
                }
            },
            _ => None,
        };
        if creds.external() {
            let credential = match ms {
                Some(r) => Credential::MsChapV2 {
                    identifier: self.id,
                    challenge: self.challenge,
                    peer_challenge: r.peer_challenge,
                    nt_response: r.nt_response,
                },
                None => {
                    let Ok(response) = <[u8; 16]>::try_from(value.as_slice()) else {
                        io.counters.discarded += 1;
                        return AuthResult::Pending;
                    };
                    Credential::Chap {
                        identifier: self.id,
                        challenge: self.challenge.to_vec(),
                        response,
                    }
                }
            };
            return self.verify(self.id, user, credential, io);
        }
        let entry = creds.lookup(&user).filter(|e| match &ms {
            Some(r) => verify_nt_response(
                &self.challenge,
                &r.peer_challenge,
                &user,
                &e.secret,
                &r.nt_response,
            ),
            None => chap_md5_verify(self.id, &e.secret, &self.challenge, &value),
        });
        let success = match (&ms, &entry) {
            // RFC 2759 §5: the Authenticator Response proves we know the password too.
            (Some(r), Some(e)) => success_message(
                &authenticator_response(
                    &e.secret,
                    &r.nt_response,
                    &r.peer_challenge,
                    &self.challenge,
                    &user,
                ),
                "Welcome",
            ),
            _ => b"Welcome".to_vec(),
        };
        let failure = match ms {
            Some(_) => failure_message(&self.challenge, "Authentication failed"),
            None => b"Authentication failed".to_vec(),
        };
        let (body, result) = match entry {
            Some(e) => (
                ChapBody::Success { message: success },
                if self.verified {
                    AuthResult::Pending
                } else {
                    AuthResult::Success {
                        user: Some(name(&user)),
                        ipv4: e.ipv4,
                    }
                },
            ),
            None if self.verified => return AuthResult::Pending,
            None => (
                ChapBody::Failure { message: failure },
                AuthResult::Failure {
                    user: Some(name(&user)),
                    reason: DownReason::AuthFailed,
                },
            ),
        };
        if matches!(result, AuthResult::Success { .. }) {
            self.verified = true;
            self.deadline = None;
        }
        io.send_body(PppBody::Chap(ChapPacket {
            identifier: self.id,
            body,
        }));
        result
    }
}

/// The peer being authenticated (the client emulator).
#[derive(Debug, Clone, Default)]
pub(crate) struct ClientAuth {
    pub method: Option<AuthMethod>,
    id: u8,
    tries_left: u32,
    /// The last Authenticate-Request or Response, for retransmission.
    last: Option<PppBody>,
    pub deadline: Option<Instant>,
    done: bool,
    /// MS-CHAP-V2: our Peer-Challenge (RFC 2759 §4) and the Authenticator Response the
    /// server's Success must carry (§5).
    peer_challenge: [u8; 16],
    expect_success: Option<String>,
}

impl ClientAuth {
    pub fn start(
        &mut self,
        method: AuthMethod,
        now: Instant,
        cfg: &PppConfig,
        (user, password): (&[u8], &[u8]),
        rng: &mut Rng,
        io: &mut Io,
    ) {
        self.method = Some(method);
        self.done = false;
        self.last = None;
        match method {
            AuthMethod::Pap => {
                self.id = self.id.wrapping_add(1 + (rng.next_u64() % 200) as u8);
                let body = PppBody::Pap(PapPacket {
                    identifier: self.id,
                    body: PapBody::AuthenticateRequest {
                        peer_id: user.to_vec(),
                        password: password.to_vec(),
                    },
                });
                io.send_body(body.clone());
                self.last = Some(body);
                self.tries_left = cfg.max_configure.max(1) - 1;
                self.deadline = Some(now + cfg.restart());
            }
            AuthMethod::Chap | AuthMethod::MsChapV2 => {
                self.peer_challenge = rng.array();
                self.expect_success = None;
                self.deadline = Some(now + cfg.auth_timeout.min(super::config::MAX_DURATION));
            }
        }
    }

    pub fn reset(&mut self) {
        self.method = None;
        self.deadline = None;
        self.last = None;
        self.done = false;
    }

    pub fn timeout(&mut self, now: Instant, cfg: &PppConfig, io: &mut Io) -> AuthResult {
        match self.deadline {
            Some(d) if d <= now => {}
            _ => return AuthResult::Pending,
        }
        self.deadline = None;
        if let (Some(last), true) = (&self.last, self.tries_left > 0) {
            self.tries_left -= 1;
            self.deadline = Some(now + cfg.restart());
            io.counters.retransmissions += 1;
            io.send_body(last.clone());
            return AuthResult::Pending;
        }
        AuthResult::Failure {
            user: None,
            reason: DownReason::AuthTimeout,
        }
    }

    /// The authenticator started an NCP after our credentials went out: it can only have
    /// accepted them (RFC 1661 §3.5: no Network phase before authentication completes), and
    /// its Ack/Success was lost. Success, if we are waiting for one.
    pub fn implied_success(&mut self, user: &[u8]) -> AuthResult {
        if self.method.is_some() && !self.done && self.last.is_some() {
            self.finish(true, user)
        } else {
            AuthResult::Pending
        }
    }

    fn finish(&mut self, ok: bool, user: &[u8]) -> AuthResult {
        self.deadline = None;
        self.last = None;
        if ok {
            self.done = true;
            AuthResult::Success {
                user: Some(name(user)),
                ipv4: None,
            }
        } else {
            AuthResult::Failure {
                user: Some(name(user)),
                reason: DownReason::AuthFailed,
            }
        }
    }

    pub fn pap(&mut self, pkt: PapPacket, user: &[u8]) -> AuthResult {
        if self.method != Some(AuthMethod::Pap) || self.done || pkt.identifier != self.id {
            return AuthResult::Pending;
        }
        match pkt.body {
            PapBody::AuthenticateAck { .. } => self.finish(true, user),
            PapBody::AuthenticateNak { .. } => self.finish(false, user),
            PapBody::AuthenticateRequest { .. } => AuthResult::Pending,
        }
    }

    pub fn chap(
        &mut self,
        pkt: ChapPacket,
        now: Instant,
        cfg: &PppConfig,
        user: &[u8],
        password: &[u8],
        io: &mut Io,
    ) -> AuthResult {
        if !is_chap(self.method) {
            return AuthResult::Pending;
        }
        match pkt.body {
            ChapBody::Challenge { value, .. } => {
                self.id = pkt.identifier;
                let value = if self.method == Some(AuthMethod::MsChapV2) {
                    // RFC 2759 §4: a 16-octet challenge; another is not answered.
                    let Ok(auth) = <[u8; 16]>::try_from(value.as_slice()) else {
                        io.counters.discarded += 1;
                        return AuthResult::Pending;
                    };
                    let nt = nt_response(&auth, &self.peer_challenge, user, password);
                    self.expect_success = Some(authenticator_response(
                        password,
                        &nt,
                        &self.peer_challenge,
                        &auth,
                        user,
                    ));
                    MsChapV2Response {
                        peer_challenge: self.peer_challenge,
                        nt_response: nt,
                    }
                    .value()
                    .to_vec()
                } else {
                    chap_md5_response(self.id, password, &value).to_vec()
                };
                let body = PppBody::Chap(ChapPacket {
                    identifier: self.id,
                    body: ChapBody::Response {
                        value,
                        name: user.to_vec(),
                    },
                });
                io.send_body(body.clone());
                if !self.done {
                    self.last = Some(body);
                    self.tries_left = cfg.max_configure.max(1) - 1;
                    self.deadline = Some(now + cfg.restart());
                }
                AuthResult::Pending
            }
            ChapBody::Success { message }
                if !self.done && pkt.identifier == self.id && self.last.is_some() =>
            {
                // RFC 2759 §5: a Success whose Authenticator Response is wrong comes from
                // someone who does not know the password: the peer ends the link.
                let ok = match (&self.method, &self.expect_success) {
                    (Some(AuthMethod::MsChapV2), Some(s)) => success_matches(&message, s),
                    (Some(AuthMethod::MsChapV2), None) => false,
                    _ => true,
                };
                self.finish(ok, user)
            }
            ChapBody::Failure { .. } if !self.done && pkt.identifier == self.id => {
                self.finish(false, user)
            }
            _ => AuthResult::Pending,
        }
    }
}
