//! The Link Establishment phase (RFC 1661 §3.4): what LCP's This-Layer-Up, This-Layer-Down
//! and This-Layer-Finished actions (RFC 1661 §4.4) do to the link: start keepalives and the
//! Authenticate phase (RFC 1661 §3.5) or go straight to the Network phase, and take the
//! authentication and the NCPs down again.

use std::time::Instant;

use super::Link;
use crate::ppp::config::MAX_DURATION;
use crate::ppp::fsm::{Actions, FsmEvent};
use crate::ppp::negotiate::Outcome;
use crate::ppp::{DownReason, Phase, Role};

impl Link {
    pub(super) fn on_lcp(&mut self, o: Outcome, now: Instant) {
        if let Some(r) = o.fail {
            self.close(r, now);
            return;
        }
        if o.layer.contains(Actions::TLD) {
            self.lcp_down(now);
        }
        if o.layer.contains(Actions::TLU) {
            self.lcp_up(now);
        }
        if o.layer.contains(Actions::TLF) {
            self.finish(self.reason.unwrap_or(DownReason::LcpFailed));
        }
    }

    fn lcp_down(&mut self, now: Instant) {
        self.server_auth.reset();
        if let Some(a) = self.client_auth.as_mut() {
            a.reset();
        }
        self.echo_next = None;
        if let Some(cp) = self.ipcp.as_mut() {
            let _ = cp.event(FsmEvent::Down, now, &mut self.io);
        }
        if let Some(cp) = self.ipv6cp.as_mut() {
            let _ = cp.event(FsmEvent::Down, now, &mut self.io);
        }
        self.network_down();
        if !matches!(self.phase, Phase::Terminate | Phase::Dead) {
            self.phase = Phase::Establish;
        }
    }

    fn lcp_up(&mut self, now: Instant) {
        self.io.peer_mru = self.lcp.neg.peer_mru;
        self.echo_outstanding = 0;
        self.echo_next = (!self.config.echo_interval.is_zero() && !self.echo_rejected)
            .then(|| now + self.config.echo_interval.min(MAX_DURATION));
        let Some(m) = self.lcp.neg.auth else {
            self.network(now);
            return;
        };
        self.phase = Phase::Authenticate;
        match self.role {
            Role::Server => {
                self.server_auth
                    .start(m, now, &self.config, &mut self.rng, &mut self.io)
            }
            Role::Client => {
                if let Some(s) = &self.secret {
                    self.client_auth.get_or_insert_with(Box::default).start(
                        m,
                        now,
                        &self.config,
                        (&s.user, &s.password),
                        &mut self.rng,
                        &mut self.io,
                    );
                }
            }
        }
    }
}
