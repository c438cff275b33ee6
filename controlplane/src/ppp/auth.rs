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
        match method {
            AuthMethod::Pap => {
                self.deadline = Some(now + cfg.auth_timeout.min(super::config::MAX_DURATION))
            }
            AuthMethod::Chap => {
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
    }

    /// Whether an external answer is awaited.
    pub fn awaiting(&self) -> bool {
        self.awaiting.is_some()
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
                        message: b"Welcome".to_vec(),
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
        let (ok, message, ipv4) = match outcome {
            Some(AccessOutcome::Accept(a)) => (
                true,
                match (&a.ms_chap2_success, &a.reply_message) {
                    (_, Some(m)) => m.clone().into_bytes(),
                    _ => b"Welcome".to_vec(),
                },
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
        if self.method == Some(AuthMethod::Chap) && self.tries_left > 0 {
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
        if self.method != Some(AuthMethod::Chap) || pkt.identifier != self.id {
            // RFC 1994 §4.1: a Response must answer the current Challenge.
            io.counters.discarded += 1;
            return AuthResult::Pending;
        }
        if creds.external() {
            let Ok(response) = <[u8; 16]>::try_from(value.as_slice()) else {
                io.counters.discarded += 1;
                return AuthResult::Pending;
            };
            let credential = Credential::Chap {
                identifier: self.id,
                challenge: self.challenge.to_vec(),
                response,
            };
            return self.verify(self.id, user, credential, io);
        }
        let entry = creds
            .lookup(&user)
            .filter(|e| chap_md5_verify(self.id, &e.secret, &self.challenge, &value));
        let (body, result) = match entry {
            Some(e) => (
                ChapBody::Success {
                    message: b"Welcome".to_vec(),
                },
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
                ChapBody::Failure {
                    message: b"Authentication failed".to_vec(),
                },
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
            AuthMethod::Chap => {
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
        if self.method != Some(AuthMethod::Chap) {
            return AuthResult::Pending;
        }
        match pkt.body {
            ChapBody::Challenge { value, .. } => {
                self.id = pkt.identifier;
                let digest = chap_md5_response(self.id, password, &value);
                let body = PppBody::Chap(ChapPacket {
                    identifier: self.id,
                    body: ChapBody::Response {
                        value: digest.to_vec(),
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
            ChapBody::Success { .. }
                if !self.done && pkt.identifier == self.id && self.last.is_some() =>
            {
                self.finish(true, user)
            }
            ChapBody::Failure { .. } if !self.done && pkt.identifier == self.id => {
                self.finish(false, user)
            }
            _ => AuthResult::Pending,
        }
    }
}
