//! The Authentication phase (RFC 1661 §3.5): when PAP (RFC 1334 §2) and CHAP (RFC 1994)
//! packets are accepted, and what a success (on to the Network phase) or a failure (the link
//! closes) does. The exchanges themselves are in the `ppp::auth` module.

use std::time::Instant;

use super::Link;
use crate::ppp::auth::AuthResult;
use crate::ppp::fsm::State;
use crate::ppp::{DownReason, Event, Phase, Role};

impl Link {
    /// The answer to an [`Event::AuthRequest`] (`None`: no server answered; the
    /// authentication fails closed). An Access-Accept's Framed-IP-Address is the subscriber's
    /// address and its Session-Timeout ends the link when it passes (RFC 2865 §5.8, §5.27).
    pub fn auth_answer(&mut self, outcome: Option<&crate::aaa::AccessOutcome>, now: Instant) {
        if self.role != Role::Server || !self.server_auth.awaiting() {
            return;
        }
        if let Some(crate::aaa::AccessOutcome::Accept(a)) = outcome {
            self.session_end = a.session_timeout.filter(|t| *t > 0).map(|t| {
                now + std::time::Duration::from_secs(u64::from(t))
                    .min(crate::ppp::config::MAX_DURATION)
            });
        }
        let r = self.server_auth.answer(outcome, &mut self.io);
        self.on_auth(r, now);
    }

    /// The ticket of the verification awaited (see [`Event::AuthRequest`]), if one is.
    pub fn auth_ticket(&self) -> Option<u64> {
        self.server_auth.awaited_ticket()
    }

    pub(super) fn auth_open(&self) -> bool {
        self.lcp.state() == State::Opened
            && matches!(self.phase, Phase::Authenticate | Phase::Network)
    }

    pub(super) fn on_auth(&mut self, r: AuthResult, now: Instant) {
        match r {
            AuthResult::Pending => {}
            AuthResult::Success { user, ipv4 } => {
                self.user = user;
                if self.role == Role::Server {
                    self.fixed_ipv4 = ipv4;
                }
                if self.phase == Phase::Authenticate {
                    self.network(now);
                }
            }
            AuthResult::Verify { user, credential } => {
                self.server_auth.ticket = self.rng.next_u64();
                // The answer must come within `auth_timeout` (ServerAuth::timeout).
                self.server_auth.deadline = Some(
                    now + self
                        .config
                        .auth_timeout
                        .min(crate::ppp::config::MAX_DURATION),
                );
                self.events.push_back(Event::AuthRequest {
                    user: String::from_utf8_lossy(&user).into_owned(),
                    credential,
                });
            }
            AuthResult::Failure { user, reason } => {
                if reason == DownReason::AuthFailed {
                    self.io.counters.auth_failures += 1;
                    self.events.push_back(Event::AuthFailed {
                        user: user.or_else(|| self.user.clone()),
                    });
                }
                self.close(reason, now);
            }
        }
    }
}
