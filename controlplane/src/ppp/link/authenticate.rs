//! The Authentication phase (RFC 1661 §3.5): when PAP (RFC 1334 §2) and CHAP (RFC 1994)
//! packets are accepted, and what a success (on to the Network phase) or a failure (the link
//! closes) does. The exchanges themselves are in the `ppp::auth` module.

use std::time::Instant;

use super::Link;
use crate::ppp::auth::AuthResult;
use crate::ppp::fsm::State;
use crate::ppp::{DownReason, Event, Phase, Role};

impl Link {
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
