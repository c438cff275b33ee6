//! A session's PPP link, as the node drives it: PPP frames from the fast path to the link
//! (L2TPv2 data messages, RFC 2661 §3.1) and from the link to the peer, the PPP client's start
//! in the LAC role ([`super::CLIENT_START`]), and what the node does on the link's events —
//! bind the fast-path entry to the subscriber's address when PPP is up, unbind it while the
//! network layer renegotiates, and close the session with a CDN carrying the RFC 3145 PPP
//! Disconnect Cause when the link goes down.

use std::time::Instant;

use l2xdp_dataplane_api::Binding;
use l2xdp_wire::l2tp::header::{V2Packet, V2Repr};
use l2xdp_wire::ppp::protocol;

use crate::aaa::{AccessOutcome, AccessRequest, Credential};
use crate::l2tp::{PppDisconnectCause, ResultCode, SessionUp};
use crate::ppp::{DownReason, Event as LinkEvent};
use crate::ppp::{Link, Proxy};
use l2xdp_wire::radius::{attr, Attribute};

use super::fastpath::unbound;
use super::AppData;
use super::{Node, NodeEvent, SessionRef};

impl Node {
    /// An L2TPv2 data message the fast path passed up: PPP for a session's link.
    pub(super) fn handle_data(&mut self, bytes: &[u8], now: Instant) {
        let parsed = V2Packet::new_checked(bytes).and_then(|p| {
            let r = V2Repr::parse(&p)?;
            let end = p.length().map_or(bytes.len(), usize::from);
            Ok((r, p.header_len()..end))
        });
        let Ok((hdr, payload)) = parsed else {
            self.counters.data_malformed += 1;
            return;
        };
        let key = (u32::from(hdr.tunnel_id), u32::from(hdr.session_id));
        self.start_client(key, now);
        match self.sessions.get_mut(&key).and_then(|s| s.link.as_mut()) {
            Some(link) => {
                self.counters.ppp_frames_in += 1;
                link.handle_frame(&bytes[payload], now);
                self.dirty.push(key);
            }
            None => self.counters.data_unknown_session += 1,
        }
    }

    pub(super) fn drain_link(&mut self, key: SessionRef, now: Instant) {
        let Some(st) = self.sessions.get_mut(&key) else {
            self.forget_deadline(key);
            return;
        };
        let Some(link) = st.link.as_mut() else {
            return;
        };
        let (peer, peer_tunnel, peer_session) = (st.up.peer, st.up.peer_tunnel, st.up.peer_session);
        while let Some(frame) = link.poll_transmit() {
            if let Some(d) = wrap_ppp(peer_tunnel, peer_session, &frame) {
                self.counters.ppp_frames_out += 1;
                self.outbox.push_back((peer, d));
            }
        }
        let mut events = Vec::new();
        while let Some(e) = link.poll_event() {
            events.push(e);
        }
        let deadline = [link.poll_timeout(), self.acct_deadline(key)]
            .into_iter()
            .flatten()
            .min();
        self.set_deadline(key, deadline);
        for e in events {
            self.on_link_event(key, e, now);
        }
    }

    /// Starts a session's pending PPP client; whether one was started.
    pub(super) fn start_client(&mut self, key: SessionRef, now: Instant) -> bool {
        let Some(st) = self.sessions.get_mut(&key) else {
            return false;
        };
        let Some((auth, rng)) = st.pending_client.take().map(|b| *b) else {
            return false;
        };
        st.link = Some(Box::new(Link::client(
            self.cfg.ppp.clone(),
            &auth.user,
            &auth.password,
            rng,
            now,
        )));
        st.client_user = Some(auth.user);
        self.dirty.push(key);
        true
    }

    /// The answer to a [`NodeEvent::AuthRequest`] (`None`: no RADIUS server answered, the
    /// authentication fails closed).
    pub fn auth_answer(
        &mut self,
        s: SessionRef,
        ticket: u64,
        outcome: Option<&AccessOutcome>,
        now: Instant,
    ) {
        let link = self.sessions.get_mut(&s).and_then(|st| st.link.as_mut());
        if let Some(link) = link.filter(|l| l.auth_ticket() == Some(ticket)) {
            link.auth_answer(outcome, now);
            let user = link.user().map(str::to_string);
            self.dirty.push(s);
            if let (Some(AccessOutcome::Accept(a)), Some(user)) = (outcome, user) {
                self.acct_accepted(s, user, a, now);
            }
        }
        self.pump(now);
    }

    /// The Access-Request for a session's subscriber, with the attributes from the L2TP side:
    /// Service-Type, Framed-Protocol, NAS-Port-Type, Tunnel-Type/Medium-Type (RFC 2865,
    /// RFC 2868), Calling-/Called-Station-Id from the Calling/Called Number AVPs (RFC 2661
    /// §4.4.5), Tunnel-Client-Endpoint (the LAC) and Tunnel-Server-Endpoint (us) (RFC 2868
    /// §3.3, §3.4), Acct-Tunnel-Connection (our tunnel ID, RFC 2867 §4.1), NAS-Port (our
    /// session ID).
    fn access_request(
        &self,
        key: SessionRef,
        up: &SessionUp,
        user: String,
        credential: Credential,
    ) -> AccessRequest {
        let mut a = AccessRequest::ppp_attributes();
        if !up.calling_number.is_empty() {
            a.push(Attribute::new(
                attr::CALLING_STATION_ID,
                up.calling_number.clone(),
            ));
        }
        if !up.called_number.is_empty() {
            a.push(Attribute::new(
                attr::CALLED_STATION_ID,
                up.called_number.clone(),
            ));
        }
        // RFC 2868 §3.3: a tag octet (0) is optional for these; the address as text.
        a.push(Attribute::new(
            attr::TUNNEL_CLIENT_ENDPOINT,
            up.peer.addr.ip().to_string().into_bytes(),
        ));
        if let Some(local) = self.local_for(&up.peer) {
            a.push(Attribute::new(
                attr::TUNNEL_SERVER_ENDPOINT,
                local.ip().to_string().into_bytes(),
            ));
        }
        a.push(Attribute::new(
            attr::ACCT_TUNNEL_CONNECTION,
            key.0.to_string().into_bytes(),
        ));
        a.push(Attribute::integer(attr::NAS_PORT, key.1));
        AccessRequest {
            user: user.into_bytes(),
            credential,
            attributes: a,
        }
    }

    fn on_link_event(&mut self, key: SessionRef, e: LinkEvent, now: Instant) {
        let Some(st) = self.sessions.get(&key) else {
            return;
        };
        let server = !st.up.initiator;
        let installed = st.installed;
        let up = st.up.clone();
        match e {
            LinkEvent::Up(u) => {
                let addr = if server { u.peer_ipv4 } else { u.local_ipv4 };
                if server {
                    self.acct_start(key, u.peer_ipv4, now);
                }
                self.events.push_back(NodeEvent::PppUp {
                    tunnel: key.0,
                    session: key.1,
                    user: u.user.clone(),
                    peer_ipv4: u.peer_ipv4,
                    local_ipv4: u.local_ipv4,
                });
                let ok = server && {
                    let binding = Binding::Subscriber {
                        ipv4: u.peer_ipv4,
                        ipv6: Vec::new(),
                    };
                    self.install(&up, Some(&u), binding)
                };
                // Both roles persist the link (RFC 4951: a restarted LNS or LAC takes its
                // sessions back without renegotiating PPP).
                let saved = self.sessions.get_mut(&key).and_then(|st| {
                    st.ipv4 = addr;
                    st.installed |= ok;
                    st.link
                        .as_ref()
                        .and_then(|l| l.state())
                        .map(|l| (l, st.client_user.clone()))
                });
                if let Some((ppp, client_user)) = saved {
                    let app = AppData {
                        ppp: Some(ppp),
                        client_user,
                    };
                    self.set_app_data(key, &app, now);
                }
            }
            LinkEvent::NetworkDown => {
                if server && installed {
                    // Unbound, not removed: renegotiation must still reach us.
                    self.install(&up, None, unbound());
                }
                if let Some(st) = self.sessions.get_mut(&key) {
                    st.ipv4 = None;
                }
                // A restart now renegotiates rather than restoring what is going away.
                self.set_app_data(key, &AppData::default(), now);
            }
            LinkEvent::AuthRequest { user, credential } => {
                let request = self.access_request(key, &up, user, credential);
                let ticket = self
                    .sessions
                    .get(&key)
                    .and_then(|s| s.link.as_ref())
                    .and_then(|l| l.auth_ticket())
                    .unwrap_or_default();
                self.events.push_back(NodeEvent::AuthRequest {
                    tunnel: key.0,
                    session: key.1,
                    ticket,
                    request: Box::new(request),
                });
            }
            LinkEvent::AuthFailed { user } => {
                self.events.push_back(NodeEvent::AuthFailed {
                    tunnel: key.0,
                    session: key.1,
                    user,
                });
            }
            LinkEvent::Down { reason } => {
                // Before the fast-path entry goes: its counters are the session's.
                self.acct_stop(key, &up, reason, now);
                if installed {
                    self.uninstall(&up);
                }
                if let Some(st) = self.sessions.get_mut(&key) {
                    st.installed = false;
                    st.ipv4 = None;
                }
                // PPP is gone: the call goes too (RFC 2661 §5.4.2), saying why (RFC 3145).
                let (result, cause) = cdn_for(reason);
                if let Err(e) = self
                    .registry
                    .close_session(key.0, key.1, result, Some(cause), now)
                {
                    tracing::debug!(tunnel = key.0, session = key.1, %e, "CDN after PPP down");
                }
            }
        }
    }
}

/// An L2TPv2 data message carrying a PPP frame (RFC 2661 §3.1): with a Length field, and the
/// P bit on LCP so keepalives get preferential treatment as the RFC suggests.
fn wrap_ppp(peer_tunnel: u32, peer_session: u32, frame: &[u8]) -> Option<Vec<u8>> {
    let lcp = l2xdp_wire::ppp::frame::peek_protocol(frame).ok() == Some(protocol::LCP);
    let hdr = V2Repr {
        control: false,
        with_length: true,
        tunnel_id: u16::try_from(peer_tunnel).ok()?,
        session_id: u16::try_from(peer_session).ok()?,
        sequence: None,
        offset: None,
        priority: lcp,
    };
    let mut out = vec![0u8; hdr.header_len() + frame.len()];
    let n = hdr.emit(&mut out, frame.len()).ok()?;
    out[n..].copy_from_slice(frame);
    Some(out)
}

/// The proxy values a LAC sent, in the PPP link's terms; `None` when there are none.
pub(super) fn proxy_of(up: &SessionUp) -> Option<Proxy> {
    let p = up.proxy.as_deref().filter(|p| !p.is_empty())?;
    Some(Proxy {
        initial_received_lcp: p.initial_received_confreq.clone(),
        last_sent_lcp: p.last_sent_confreq.clone(),
        last_received_lcp: p.last_received_confreq.clone(),
        authen_type: p.authen_type,
        authen_name: p.authen_name.clone(),
        authen_challenge: p.authen_challenge.clone(),
        authen_id: p.authen_id.map(u16::from),
        authen_response: p.authen_response.clone(),
    })
}

/// The CDN for a PPP link that went down: Result Code (RFC 2661 §4.4.2) and the RFC 3145 §2
/// PPP Disconnect Cause (code, the control protocol concerned, direction).
fn cdn_for(reason: DownReason) -> (ResultCode, PppDisconnectCause) {
    use l2xdp_wire::l2tp::codes::{direction as dir, PppDisconnectCode as C};
    let (result, code, proto, direction, text) = match reason {
        DownReason::Administrative => (3, C::ADMINISTRATIVE, 0, dir::AT_LOCAL, "administrative"),
        DownReason::LowerLayerDown => (1, C::NO_INFORMATION, 0, dir::GLOBAL, "lower layer down"),
        DownReason::PeerTerminated => {
            (3, C::NORMAL, protocol::LCP, dir::AT_PEER, "peer terminated")
        }
        DownReason::LcpFailed => (
            2,
            C::LCP_FSM_TIMEOUT,
            protocol::LCP,
            dir::AT_LOCAL,
            "LCP failed",
        ),
        DownReason::AuthNotAgreed => (
            2,
            C::AUTH_PROTOCOL_UNACCEPTABLE,
            protocol::LCP,
            dir::AT_PEER,
            "no authentication protocol agreed",
        ),
        DownReason::AuthFailed => (2, C::AUTH_FAILED, 0, dir::AT_LOCAL, "authentication failed"),
        DownReason::AuthTimeout => (
            2,
            C::AUTH_FSM_TIMEOUT,
            0,
            dir::AT_LOCAL,
            "authentication timeout",
        ),
        DownReason::PoolExhausted => (
            4,
            C::NCP_NO_ADDRESS_CONVERGENCE,
            protocol::IPCP,
            dir::AT_LOCAL,
            "address pool exhausted",
        ),
        DownReason::AddressInUse => (
            2,
            C::NCP_ADDRESS_NOT_PERMITTED,
            protocol::IPCP,
            dir::AT_LOCAL,
            "address in use",
        ),
        DownReason::NoNetworkProtocols => (2, C::NO_NCPS, 0, dir::GLOBAL, "no network protocol"),
        DownReason::DeadPeer => (
            1,
            C::LCP_ECHO_TIMEOUT,
            protocol::LCP,
            dir::AT_PEER,
            "keepalive timeout",
        ),
        DownReason::SessionTimeout => (3, C::ADMINISTRATIVE, 0, dir::AT_LOCAL, "session timeout"),
        DownReason::IdleTimeout => (3, C::ADMINISTRATIVE, 0, dir::AT_LOCAL, "idle timeout"),
        DownReason::LoopedBack => (
            2,
            C::LCP_LOOPED_BACK,
            protocol::LCP,
            dir::GLOBAL,
            "looped back",
        ),
    };
    (
        ResultCode::new(result, 0, text),
        PppDisconnectCause {
            code: code.0,
            protocol: proto,
            direction,
            message: text.to_string(),
        },
    )
}
