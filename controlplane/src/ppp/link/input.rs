//! Received PPP frames: [`Link::handle_frame`] dispatches them by protocol to LCP, PAP
//! (RFC 1334 §2), CHAP (RFC 1994) and the NCPs (IPCP, RFC 1332; IPv6CP, RFC 5072), discards
//! what the phase does not allow (RFC 1661 §3.4, §3.5) and Protocol-Rejects unknown protocols
//! (RFC 1661 §5.7). LCP's codes beyond negotiation (Echo, RFC 1661 §5.8; Protocol-Reject;
//! Code-Reject, RFC 1661 §5.6) are handled here too.

use std::time::Instant;

use l2xdp_wire::ppp::frame::{self, protocol};
use l2xdp_wire::ppp::{ChapPacket, CpBody, IpcpPacket, Ipv6cpPacket, LcpPacket, PapPacket};

use super::{Link, Ncp};
use crate::ppp::auth::AuthResult;
use crate::ppp::fsm::{FsmEvent, State};
use crate::ppp::{DownReason, Phase, Role};

impl Link {
    /// Handles one received PPP frame: optional `ff 03`, Protocol, Information. Never panics;
    /// malformed frames are counted and dropped.
    pub fn handle_frame(&mut self, buf: &[u8], now: Instant) {
        self.io.counters.frames_in += 1;
        if self.phase == Phase::Dead {
            self.io.counters.discarded += 1;
            return;
        }
        let Ok((framing, info)) = frame::parse(buf) else {
            self.io.counters.malformed += 1;
            return;
        };
        let lcp_open = self.lcp.state() == State::Opened;
        match framing.protocol {
            protocol::LCP => match LcpPacket::parse(info) {
                Ok(p) => self.lcp_input(p, cp_bytes(info), now),
                Err(_) => self.io.counters.malformed += 1,
            },
            protocol::PAP => {
                if !self.auth_open() {
                    self.io.counters.discarded += 1;
                    return;
                }
                match PapPacket::parse(info) {
                    Ok(p) => {
                        let r = match self.role {
                            Role::Server => match self.creds.clone() {
                                Some(c) => self.server_auth.pap(p, c.as_ref(), &mut self.io),
                                None => AuthResult::Pending,
                            },
                            Role::Client => {
                                let user = self
                                    .secret
                                    .as_ref()
                                    .map(|s| s.user.clone())
                                    .unwrap_or_default();
                                self.client_auth
                                    .get_or_insert_with(Box::default)
                                    .pap(p, &user)
                            }
                        };
                        self.on_auth(r, now);
                    }
                    Err(_) => self.io.counters.malformed += 1,
                }
            }
            protocol::CHAP => {
                if !self.auth_open() {
                    self.io.counters.discarded += 1;
                    return;
                }
                match ChapPacket::parse(info) {
                    Ok(p) => {
                        let r = match self.role {
                            Role::Server => match self.creds.clone() {
                                Some(c) => self.server_auth.chap(p, c.as_ref(), &mut self.io),
                                None => AuthResult::Pending,
                            },
                            Role::Client => match &self.secret {
                                Some(s) => self.client_auth.get_or_insert_with(Box::default).chap(
                                    p,
                                    now,
                                    &self.config,
                                    &s.user,
                                    &s.password,
                                    &mut self.io,
                                ),
                                None => AuthResult::Pending,
                            },
                        };
                        self.on_auth(r, now);
                    }
                    Err(_) => self.io.counters.malformed += 1,
                }
            }
            protocol::IPCP | protocol::IPV6CP
                if self.role == Role::Client
                    && self.phase == Phase::Authenticate
                    && lcp_open
                    && info.first() == Some(&1) =>
            {
                // An NCP Configure-Request while we wait for PAP Ack / CHAP Success.
                let user = self
                    .secret
                    .as_ref()
                    .map(|s| s.user.clone())
                    .unwrap_or_default();
                let r = self
                    .client_auth
                    .get_or_insert_with(Box::default)
                    .implied_success(&user);
                let implied = matches!(r, AuthResult::Success { .. });
                self.on_auth(r, now);
                if implied && self.phase == Phase::Network {
                    self.handle_ncp(framing.protocol, info, now);
                } else {
                    self.io.counters.discarded += 1;
                }
            }
            protocol::IPCP | protocol::IPV6CP
                if (framing.protocol == protocol::IPCP && self.ipcp.is_some())
                    || (framing.protocol == protocol::IPV6CP && self.ipv6cp.is_some()) =>
            {
                if self.phase != Phase::Network {
                    // RFC 1661 §3.4, §3.5: NCP packets before the Network phase are discarded.
                    self.io.counters.discarded += 1;
                    return;
                }
                self.handle_ncp(framing.protocol, info, now);
            }
            protocol::IPV4 if self.ipcp.is_some() => self.io.counters.discarded += 1,
            protocol::IPV6 if self.ipv6cp.is_some() => self.ipv6_input(info),
            p if lcp_open => self.protocol_reject(p, info),
            // RFC 1661 §3.4: non-LCP packets before LCP is open are discarded.
            _ => self.io.counters.discarded += 1,
        }
    }

    fn handle_ncp(&mut self, proto: u16, info: &[u8], now: Instant) {
        if proto == protocol::IPCP {
            match IpcpPacket::parse(info) {
                Ok(p) => {
                    if let Some(cp) = self.ipcp.as_mut() {
                        let o = cp.input(p, cp_bytes(info), now, &mut self.io);
                        self.on_ncp(Ncp::Ipcp, o, now);
                    }
                }
                Err(_) => self.io.counters.malformed += 1,
            }
        } else {
            match Ipv6cpPacket::parse(info) {
                Ok(p) => {
                    if let Some(cp) = self.ipv6cp.as_mut() {
                        let o = cp.input(p, cp_bytes(info), now, &mut self.io);
                        self.on_ncp(Ncp::Ipv6cp, o, now);
                    }
                }
                Err(_) => self.io.counters.malformed += 1,
            }
        }
    }

    fn protocol_reject(&mut self, proto: u16, info: &[u8]) {
        // RFC 1661 §5.7: the rejected protocol and as much of the Information as fits the
        // peer's MRU.
        let room = self.io.reject_room(6);
        self.aux_id = self.aux_id.wrapping_add(1);
        self.io.send(&LcpPacket {
            identifier: self.aux_id,
            body: CpBody::ProtocolReject {
                protocol: proto,
                info: info[..info.len().min(room)].to_vec(),
            },
        });
        self.io.counters.protocol_rejects_sent += 1;
    }

    fn lcp_input(&mut self, p: LcpPacket, raw: &[u8], now: Instant) {
        let open = self.lcp.state() == State::Opened;
        match &p.body {
            CpBody::EchoRequest { magic, data } => {
                let ours = self.lcp.neg.our_magic;
                if !open || (ours != 0 && *magic == ours) {
                    // Not open, or our own request looped back (RFC 1661 §5.8).
                    self.io.counters.discarded += 1;
                    return;
                }
                self.io.send(&LcpPacket {
                    identifier: p.identifier,
                    body: CpBody::EchoReply {
                        magic: ours,
                        data: data.clone(),
                    },
                });
            }
            CpBody::EchoReply { magic, .. } => {
                let ours = self.lcp.neg.our_magic;
                if open && !(ours != 0 && *magic == ours) {
                    self.echo_outstanding = 0;
                    self.io.counters.echo_replies_received += 1;
                } else {
                    self.io.counters.discarded += 1;
                }
            }
            CpBody::DiscardRequest { .. } => {}
            CpBody::ProtocolReject {
                protocol: proto, ..
            } => {
                if !open {
                    self.io.counters.discarded += 1;
                    return;
                }
                match *proto {
                    protocol::IPCP => self.ncp_rejected(Ncp::Ipcp, now),
                    protocol::IPV6CP => self.ncp_rejected(Ncp::Ipv6cp, now),
                    protocol::LCP => {
                        let o = self.lcp.event(FsmEvent::RxjMinus, now, &mut self.io);
                        self.reason.get_or_insert(DownReason::LcpFailed);
                        self.on_lcp(o, now);
                    }
                    protocol::PAP | protocol::CHAP if self.phase == Phase::Authenticate => {
                        self.close(DownReason::AuthNotAgreed, now)
                    }
                    _ => {}
                }
            }
            _ => {
                if let CpBody::CodeReject { rejected } = &p.body {
                    if matches!(rejected.first(), Some(9..=11)) {
                        // The peer does not do Echo: no keepalives (RXJ+).
                        self.echo_rejected = true;
                        self.echo_next = None;
                    }
                }
                if matches!(p.body, CpBody::TerminateRequest { .. })
                    && matches!(
                        self.lcp.state(),
                        State::Opened | State::Closing | State::Stopping
                    )
                {
                    self.reason.get_or_insert(DownReason::PeerTerminated);
                }
                if let CpBody::CodeReject { rejected } = &p.body {
                    // RFC 1661 §5.6: rejecting codes 1-7 is catastrophic (RXJ-).
                    if matches!(rejected.first(), Some(1..=7)) {
                        self.reason.get_or_insert(DownReason::LcpFailed);
                    }
                }
                let o = self.lcp.input(p, raw, now, &mut self.io);
                self.on_lcp(o, now);
            }
        }
    }
}

/// The control packet from its Code field, without padding beyond its Length.
fn cp_bytes(info: &[u8]) -> &[u8] {
    match info {
        [_, _, hi, lo, ..] => {
            let len = usize::from(u16::from_be_bytes([*hi, *lo]));
            &info[..len.min(info.len())]
        }
        _ => info,
    }
}
