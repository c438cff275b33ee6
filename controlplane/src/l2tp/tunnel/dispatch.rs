//! A tunnel's control messages in and out.
//!
//! In: [`Tunnel::handle_datagram`] takes one datagram, parses its header, checks the L2TPv3
//! Message Digest (RFC 3931 §4.3, §5.4.1), hands it to the reliable channel (RFC 2661 §5.8),
//! and each message the channel delivers in order is parsed and validated by
//! `l2xdp_wire::l2tp::validate` (RFC 2661 §4.2, the M bit and mandatory AVPs) and dispatched by
//! its Message Type: to the control connection state machine (`mod.rs`), to the sessions
//! (`session.rs`) or to RFC 4951 (`recovery.rs`).
//!
//! Out: `send` builds a message (Message Type, Message Digest, Random Vector before hidden
//! AVPs, RFC 2661 §4.3) and queues it on the reliable channel; [`Tunnel::poll_transmit`] signs
//! what the channel sends (ACK instead of ZLB in v3, RFC 3931 §6.15).

use std::time::Instant;

use l2xdp_wire::l2tp::avp::{self, Avp, AvpRepr, AvpType};
use l2xdp_wire::l2tp::digest::{self, Nonces};
use l2xdp_wire::l2tp::header::{ControlHeader, Transport};
use l2xdp_wire::l2tp::message::{ControlMessage, MessageType};
use l2xdp_wire::l2tp::validate::{self, Action};

use crate::l2tp::{Counters, ResultCode};
use crate::reliable;

use super::{Ctx, Role, Tunnel, TunnelState};

impl Tunnel {
    // -----------------------------------------------------------------------------------------
    // Sending

    pub(super) fn secret(&self) -> Option<&[u8]> {
        self.cfg.secret_bytes()
    }

    pub(super) fn hide(&self, a: Avp, on: bool) -> AvpRepr {
        let r = AvpRepr::new(a, self.version);
        if on && self.cfg.hide_avps && self.secret().is_some() {
            r.hide()
        } else {
            r
        }
    }

    pub(super) fn plain(&self, a: Avp) -> AvpRepr {
        AvpRepr::new(a, self.version)
    }

    /// Queues a message: Message Type, Message Digest (v3 with a secret), Random Vector (when
    /// something is hidden), then `avps`.
    pub(super) fn send(
        &mut self,
        ctx: &mut Ctx<'_>,
        session_hdr: u16,
        mt: MessageType,
        avps: Vec<AvpRepr>,
    ) {
        let v = self.version;
        let header = ControlHeader {
            version: v,
            tunnel_id: 0,
            session_id: 0,
            ns: 0,
            nr: 0,
        };
        let mut all = vec![AvpRepr::new(Avp::MessageType(mt), v)];
        if self.digest_key.is_some() {
            all.push(AvpRepr::new(
                Avp::MessageDigest {
                    digest_type: avp::digest::HMAC_MD5,
                    digest: vec![0; 16],
                },
                v,
            ));
        }
        if avps.iter().any(|a| a.hidden) {
            // RFC 2661 §4.3: an unpredictable Random Vector before the hidden AVPs.
            let rv: [u8; 16] = ctx.rng.array();
            all.push(AvpRepr::new(Avp::RandomVector(rv.to_vec()), v));
        }
        all.extend(avps);
        let msg = ControlMessage { header, avps: all };
        match msg.to_bytes(self.secret()) {
            Ok(b) => {
                let body = b.get(ControlHeader::LEN..).unwrap_or_default().to_vec();
                if let Err(e) = self.channel.send(session_hdr, body) {
                    tracing::warn!(tunnel = self.id, "cannot send {}: {e}", mt.short_name());
                    return;
                }
                *ctx.counters
                    .messages_out
                    .entry(mt.short_name())
                    .or_default() += 1;
            }
            Err(e) => tracing::error!(tunnel = self.id, "cannot encode {}: {e}", mt.short_name()),
        }
    }

    /// The next datagram to send (for IP transport, with the zero Session ID in front).
    pub fn poll_transmit(&mut self, now: Instant, counters: &mut Counters) -> Option<Vec<u8>> {
        if self.farewell.is_some() {
            return self.poll_farewell(counters);
        }
        let mut d = self.channel.poll_transmit(now)?;
        if d.len() == ControlHeader::LEN {
            *counters.messages_out.entry("ZLB").or_default() += 1;
            if let Some(key) = self.digest_key {
                // RFC 3931 §4.3: every message carries a digest, so acknowledge with an
                // explicit ACK (§6.15) instead of a ZLB.
                let (h, _) = ControlHeader::parse(&d).ok()?;
                let ack = ControlMessage::build(
                    h,
                    MessageType::Ack,
                    vec![Avp::MessageDigest {
                        digest_type: avp::digest::HMAC_MD5,
                        digest: vec![0; 16],
                    }],
                );
                d = ack.to_bytes(None).ok()?;
                let _ = key;
            }
        }
        if let Some(key) = self.digest_key {
            let is_sccrq = d.get(ControlHeader::LEN + 6..ControlHeader::LEN + 8) == Some(&[0, 1]);
            let remote = self.remote_nonce.clone().unwrap_or_default();
            let nonces = if is_sccrq {
                Nonces::Sccrq
            } else {
                Nonces::Pair(&self.local_nonce, &remote)
            };
            if let Err(e) = digest::sign(&mut d, &key, nonces) {
                tracing::error!(tunnel = self.id, "cannot sign: {e}");
            }
        }
        if self.peer.transport == Transport::Ip {
            let mut v = vec![0u8; 4];
            v.extend_from_slice(&d);
            d = v;
        }
        Some(d)
    }

    // -----------------------------------------------------------------------------------------
    // Receiving

    /// Handles one control datagram (over IP without the zero Session ID) for this tunnel.
    pub fn handle_datagram(&mut self, ctx: &mut Ctx<'_>, bytes: &[u8]) {
        if self.recovering {
            // RFC 4951 §3.2.1: silently discarded before the control channel reset.
            ctx.counters
                .count_failover("discarded before control channel reset");
            return;
        }
        let Ok((header, body)) = ControlHeader::parse(bytes) else {
            ctx.counters.count_invalid("malformed header");
            return;
        };
        if header.session_id != 0 && matches!(message_type_of(body), Some(1..=3)) {
            // RFC 2661 §3.1 (p. 43): until the peer assigned one, the Session ID MUST be 0,
            // and an SCCRQ, SCCRP or SCCCN belongs to no session. A header with an invalid
            // value is malformed and MUST be discarded (RFC 3931 §7.1): not acknowledged, not
            // answered (a spoofed one draws nothing).
            ctx.counters
                .count_invalid("non-zero Session ID in a tunnel setup message");
            return;
        }
        if self.farewell.is_some() {
            // The peer's header names the sequence numbers our StopCCN must carry.
            self.farewell_answer(ctx, &header, body.is_empty());
            return;
        }
        if let Some(key) = self.digest_key {
            if !self.digest_ok(bytes, body, &key) {
                ctx.counters.count_invalid("bad or missing message digest");
                return;
            }
        }
        let before = self.channel.stats();
        let evs = self.channel.handle_incoming(&header, body, ctx.now);
        let ack_only = body.is_empty()
            || (self.version == l2xdp_wire::l2tp::header::Version::V3
                && message_type_of(body) == Some(MessageType::Ack.value()));
        if self.check_resume(ctx, before, &header, ack_only, &evs) {
            return;
        }
        if body.is_empty() {
            *ctx.counters.messages_in.entry("ZLB").or_default() += 1;
        }
        for e in evs {
            match e {
                reliable::Event::Deliver {
                    ns,
                    session_id,
                    avps,
                } => self.deliver(ctx, ns, session_id, &avps),
                reliable::Event::Failed => {
                    self.channel_failed(ctx);
                    return;
                }
                reliable::Event::Acked { .. } | reliable::Event::Holding { .. } => {}
            }
        }
        self.check_closing(ctx.now);
    }

    fn digest_ok(&mut self, bytes: &[u8], body: &[u8], key: &[u8; 16]) -> bool {
        if body.is_empty() {
            return false;
        }
        let mt = body.get(6..8).map(|b| u16::from_be_bytes([b[0], b[1]]));
        let has_digest = body
            .get(8 + 4..8 + 6)
            .is_some_and(|t| t == AvpType::MessageDigest.value().to_be_bytes());
        let setup = matches!(mt, Some(1 | 2));
        if !has_digest {
            // Setup messages without authentication get a StopCCN (result 4) from the FSM.
            return setup;
        }
        if mt == Some(1) {
            return digest::verify(bytes, key, Nonces::Sccrq);
        }
        let remote = match &self.remote_nonce {
            Some(n) => n.clone(),
            None if mt == Some(2) => ControlMessage::parse(bytes, &Default::default())
                .ok()
                .and_then(|m| match m.get(AvpType::ControlMessageAuthNonce) {
                    Some(Avp::ControlMessageAuthNonce(n)) => Some(n.clone()),
                    _ => None,
                })
                .unwrap_or_default(),
            None => return false,
        };
        digest::verify(bytes, key, Nonces::Pair(&remote, &self.local_nonce))
    }

    fn deliver(&mut self, ctx: &mut Ctx<'_>, ns: u16, session_id: u16, avps: &[u8]) {
        let header = ControlHeader {
            version: self.version,
            tunnel_id: self.id,
            session_id,
            ns,
            nr: 0,
        };
        let mut buf = vec![0u8; ControlHeader::LEN + avps.len()];
        if header.emit(&mut buf, avps.len()).is_err() {
            return;
        }
        buf[ControlHeader::LEN..].copy_from_slice(avps);
        match validate::validate_bytes(&buf, self.secret()) {
            Ok(msg) => {
                let mt = msg.message_type().unwrap_or(MessageType::Unknown(0));
                *ctx.counters.messages_in.entry(mt.short_name()).or_default() += 1;
                self.on_message(ctx, session_id, &msg);
            }
            Err(v) if message_type_of(avps) == Some(MessageType::StopCcn.value()) => {
                // RFC 2661 §5.7, RFC 3931 §6.4: the peer is tearing the tunnel down. A StopCCN
                // that lacks a mandatory AVP (its Result Code) or carries a bad one still ends
                // it: acknowledged by the transport and cleaned up, never answered with a
                // StopCCN of ours (the peer keeps only enough state to ack retransmissions).
                ctx.counters
                    .count_invalid("invalid StopCCN (tunnel closed, not answered)");
                tracing::info!(tunnel = self.id, "invalid StopCCN, closing: {v}");
                let loose = ControlMessage::parse(&buf, &parse_ctx(self.secret())).unwrap_or(
                    ControlMessage {
                        header,
                        avps: Vec::new(),
                    },
                );
                self.on_stopccn(ctx, &loose);
            }
            Err(v)
                if message_type_of(avps) == Some(MessageType::Cdn.value())
                    && self.state == TunnelState::Established =>
            {
                // RFC 2661 §5.6, RFC 3931 §6.12: likewise a CDN lacking its Result Code (or
                // with a bad AVP) still clears the session it names; the ZLB ACK is all the
                // answer, a CDN back would be for a session the peer already cleaned up.
                ctx.counters
                    .count_invalid("invalid CDN (session cleared, not answered)");
                tracing::info!(tunnel = self.id, "invalid CDN, clearing the session: {v}");
                if let Ok(loose) = ControlMessage::parse(&buf, &parse_ctx(self.secret())) {
                    self.on_session_message(ctx, session_id, &loose, MessageType::Cdn);
                }
            }
            Err(v) => {
                ctx.counters.count_invalid(format!(
                    "{:?} result {} error {}",
                    v.action, v.result_code, v.error_code
                ));
                tracing::info!(tunnel = self.id, "invalid control message: {v}");
                let rc = ResultCode::new(v.result_code, v.error_code, v.message.clone());
                match v.action {
                    Action::Ignore => {}
                    Action::StopCcn => {
                        if self.peer_tunnel_id == 0 {
                            // Answer to the sender's Assigned Tunnel ID if it can be read.
                            if let Ok(m) = ControlMessage::parse(&buf, &Default::default()) {
                                let id = m.assigned_tunnel_id().unwrap_or(0);
                                let _ = self.channel.set_peer_tunnel_id(id);
                                self.peer_tunnel_id = id;
                            }
                        }
                        self.stop(ctx, rc);
                    }
                    Action::Cdn => {
                        let loose = ControlMessage::parse(&buf, &parse_ctx(self.secret()));
                        self.cdn_for_invalid(ctx, session_id, loose.ok(), rc);
                    }
                }
            }
        }
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_>, hdr_session: u16, msg: &ControlMessage) {
        let Some(mt) = msg.message_type() else {
            return;
        };
        if self.state == TunnelState::Closing && mt != MessageType::StopCcn {
            return;
        }
        use MessageType as M;
        match mt {
            M::Sccrq => self.on_sccrq(ctx, msg),
            M::Sccrp => self.on_sccrp(ctx, msg),
            M::Scccn => self.on_scccn(ctx, msg),
            M::StopCcn => self.on_stopccn(ctx, msg),
            M::Hello | M::Ack | M::Unknown(_) => {}
            // RFC 4951 §3.2.1: nothing but setup, StopCCN, HELLO and ACK on a recovery tunnel.
            M::Fsq | M::Fsr if self.role != Role::Normal => {
                ctx.counters
                    .count_invalid(format!("{} on a recovery tunnel", mt.short_name()));
            }
            M::Fsq | M::Fsr if self.state != TunnelState::Established => self.fsm_error(ctx, mt),
            M::Fsq => self.on_fsq(ctx, msg),
            M::Fsr => self.on_fsr(ctx, msg),
            M::Icrq | M::Ocrq => {
                if self.state != TunnelState::Established {
                    return self.fsm_error(ctx, mt);
                }
                self.on_call_request(ctx, msg, mt);
            }
            M::Icrp | M::Iccn | M::Ocrp | M::Occn | M::Cdn | M::Wen | M::Sli => {
                if self.state != TunnelState::Established {
                    return self.fsm_error(ctx, mt);
                }
                self.on_session_message(ctx, hdr_session, msg, mt);
            }
        }
    }
}

/// The Message Type of a control message body (its first AVP, when that is an IETF Message
/// Type AVP), read without parsing the rest.
fn message_type_of(body: &[u8]) -> Option<u16> {
    let attr = body.get(2..6)?;
    (attr == [0, 0, 0, 0])
        .then(|| body.get(6..8).map(|t| u16::from_be_bytes([t[0], t[1]])))
        .flatten()
}

/// The parse context of a message to this node.
fn parse_ctx(secret: Option<&[u8]>) -> l2xdp_wire::l2tp::message::ParseContext<'_> {
    l2xdp_wire::l2tp::message::ParseContext { secret }
}
