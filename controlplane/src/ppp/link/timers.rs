//! Expired deadlines: [`Link::handle_timeout`] drives the restart timers of LCP and the NCPs
//! (RFC 1661 §4.6) and of authentication (PAP, RFC 1334 §2; CHAP, RFC 1994), and sends the
//! LCP Echo-Request keepalives (RFC 1661 §5.8), closing the link when the peer stops answering.

use std::time::Instant;

use l2xdp_wire::ppp::{CpBody, LcpPacket};

use super::{Link, Ncp};
use crate::ppp::config::MAX_DURATION;
use crate::ppp::fsm::State;
use crate::ppp::{DownReason, Phase, Role};

impl Link {
    /// Handles every deadline due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.phase == Phase::Dead {
            return;
        }
        let o = self.lcp.timeout(now, &mut self.io);
        self.on_lcp(o, now);
        if let Some(cp) = self.ipcp.as_mut() {
            let o = cp.timeout(now, &mut self.io);
            self.on_ncp(Ncp::Ipcp, o, now);
        }
        if let Some(cp) = self.ipv6cp.as_mut() {
            let o = cp.timeout(now, &mut self.io);
            self.on_ncp(Ncp::Ipv6cp, o, now);
        }
        if self.phase == Phase::Dead {
            return;
        }
        if self.session_end.is_some_and(|t| t <= now) {
            self.session_end = None;
            self.close(DownReason::SessionTimeout, now);
            return;
        }
        let r = match self.role {
            Role::Server => self.server_auth.timeout(now, &self.config, &mut self.io),
            Role::Client => self.client_auth.get_or_insert_with(Box::default).timeout(
                now,
                &self.config,
                &mut self.io,
            ),
        };
        self.on_auth(r, now);
        if let Some(t) = self.echo_next {
            if t <= now {
                if self.lcp.state() == State::Opened {
                    self.echo(now);
                } else {
                    self.echo_next = None;
                }
            }
        }
    }

    fn echo(&mut self, now: Instant) {
        if self.echo_outstanding >= self.config.echo_failures.max(1) {
            self.echo_next = None;
            self.close(DownReason::DeadPeer, now);
            return;
        }
        self.echo_id = self.echo_id.wrapping_add(1);
        self.io.send(&LcpPacket {
            identifier: self.echo_id,
            body: CpBody::EchoRequest {
                magic: self.lcp.neg.our_magic,
                data: Vec::new(),
            },
        });
        self.io.counters.echo_requests_sent += 1;
        self.echo_outstanding += 1;
        self.echo_next = Some(now + self.config.echo_interval.min(MAX_DURATION));
    }
}
