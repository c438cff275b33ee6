//! RADIUS accounting of PPP sessions authenticated by RADIUS (RFC 2866): an
//! Accounting-Request Start when the session's network layer comes up and a Stop when it goes
//! down, with the session's time and the fast path's per-session counters (read through the
//! `DataPlane` interface, octets split into the 32-bit count and Gigawords, RFC 2869 §5.1),
//! the Class of the Access-Accept echoed (RFC 2865 §5.25) and Acct-Terminate-Cause mapped from
//! what ended the session (RFC 2866 §5.10); Interim-Updates every Acct-Interim-Interval
//! (RFC 2869 §2.1, §5.16) and the Idle-Timeout (RFC 2865 §5.28: no packet from the
//! subscriber for that long, checked against the fast path's counters each Idle-Timeout
//! period, so it fires between one and two periods after the last packet). The node emits
//! them as
//! [`NodeEvent::Accounting`]; the driver sends them with the RADIUS client.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use l2xdp_dataplane_api::SessionCounters;
use l2xdp_wire::radius::{attr, value, Attribute};

use crate::aaa::AccessAccept;
use crate::l2tp::SessionUp;
use crate::ppp::DownReason;

use super::{Node, NodeEvent, SessionRef};

/// What accounting keeps of one session (from its Access-Accept on).
#[derive(Debug, Clone)]
pub(super) struct AcctState {
    /// Acct-Session-Id (RFC 2866 §5.5): unique, from the node's CSPRNG.
    id: String,
    user: String,
    class: Vec<Vec<u8>>,
    /// When the Start was sent (None: not yet).
    started: Option<Instant>,
    ipv4: Option<Ipv4Addr>,
    /// Acct-Interim-Interval and the next Interim-Update.
    interim: Option<(Duration, Instant)>,
    /// Idle-Timeout, the next check and the subscriber's packet count at the last one.
    idle: Option<(Duration, Instant, u64)>,
}

/// Acct-Terminate-Cause (RFC 2866 §5.10) for what ended the link.
fn terminate_cause(r: DownReason) -> u32 {
    match r {
        DownReason::PeerTerminated => 1, // User-Request
        DownReason::LowerLayerDown => 2, // Lost-Carrier
        DownReason::DeadPeer => 3,       // Lost-Service
        DownReason::IdleTimeout => 4,    // Idle-Timeout
        DownReason::SessionTimeout => 5, // Session-Timeout
        DownReason::Administrative => 6, // Admin-Reset
        DownReason::LoopedBack => 8,     // Port-Error
        DownReason::PoolExhausted | DownReason::AddressInUse => 9, // NAS-Error
        DownReason::LcpFailed
        | DownReason::AuthNotAgreed
        | DownReason::AuthFailed
        | DownReason::AuthTimeout
        | DownReason::NoNetworkProtocols => 17, // User-Error
    }
}

/// The 32-bit count and the Gigawords (RFC 2869 §5.1, §5.2) of a 64-bit octet count.
fn split(octets: u64) -> (u32, u32) {
    ((octets & 0xffff_ffff) as u32, (octets >> 32) as u32)
}

impl Node {
    /// An Access-Accept for session `key`'s user `user`: accounting starts with its Up.
    pub(super) fn acct_accepted(
        &mut self,
        key: SessionRef,
        user: String,
        accept: &AccessAccept,
        now: Instant,
    ) {
        let id = format!("{:016x}", self.cfg.random.next_u64());
        self.acct.insert(
            key,
            AcctState {
                id,
                user,
                class: accept.class.clone(),
                started: None,
                ipv4: None,
                interim: accept
                    .acct_interim_interval
                    .filter(|s| *s > 0)
                    .map(|s| (Duration::from_secs(u64::from(s)), now)),
                idle: accept
                    .idle_timeout
                    .filter(|s| *s > 0)
                    .map(|s| (Duration::from_secs(u64::from(s)), now, 0)),
            },
        );
    }

    fn acct_record(&self, st: &AcctState, status: u32) -> Vec<Attribute> {
        let mut a = vec![
            Attribute::integer(attr::ACCT_STATUS_TYPE, status),
            Attribute::new(attr::ACCT_SESSION_ID, st.id.as_bytes().to_vec()),
            Attribute::new(attr::USER_NAME, st.user.as_bytes().to_vec()),
            Attribute::integer(attr::SERVICE_TYPE, value::SERVICE_TYPE_FRAMED),
            Attribute::integer(attr::FRAMED_PROTOCOL, value::FRAMED_PROTOCOL_PPP),
            Attribute::integer(attr::NAS_PORT_TYPE, value::NAS_PORT_TYPE_VIRTUAL),
        ];
        if let Some(ip) = st.ipv4 {
            a.push(Attribute::ipv4(attr::FRAMED_IP_ADDRESS, ip));
        }
        for c in &st.class {
            a.push(Attribute::new(attr::CLASS, c.clone()));
        }
        a
    }

    /// The session's network layer is up: Start (once).
    pub(super) fn acct_start(&mut self, key: SessionRef, ipv4: Option<Ipv4Addr>, now: Instant) {
        let Some(st) = self.acct.get_mut(&key) else {
            return;
        };
        if st.started.is_some() {
            return;
        }
        st.started = Some(now);
        st.ipv4 = ipv4;
        if let Some((every, next)) = st.interim.as_mut() {
            *next = now + *every;
        }
        if let Some((every, next, _)) = st.idle.as_mut() {
            *next = now + *every;
        }
        let st = st.clone();
        // Its deadlines (Interim-Update, idle check) join the link's.
        self.dirty.push(key);
        let attributes = self.acct_record(&st, value::ACCT_START);
        self.events.push_back(NodeEvent::Accounting {
            tunnel: key.0,
            session: key.1,
            attributes,
        });
    }

    /// The link went down: Stop with the session's time and counters (before its fast-path
    /// entry is removed), and accounting of the session ends.
    pub(super) fn acct_stop(
        &mut self,
        key: SessionRef,
        up: &SessionUp,
        reason: DownReason,
        now: Instant,
    ) {
        let Some(st) = self.acct.remove(&key) else {
            return;
        };
        let Some(started) = st.started else {
            return;
        };
        let mut a = self.acct_record(&st, value::ACCT_STOP);
        a.extend(self.usage(key, up, started, now));
        a.push(Attribute::integer(
            attr::ACCT_TERMINATE_CAUSE,
            terminate_cause(reason),
        ));
        self.events.push_back(NodeEvent::Accounting {
            tunnel: key.0,
            session: key.1,
            attributes: a,
        });
    }

    /// Session time, octets (and Gigawords) and packets so far (RFC 2866 §5.3-§5.7, RFC 2869
    /// §5.1, §5.2), from the fast path's per-session counters.
    fn usage(
        &self,
        key: SessionRef,
        up: &SessionUp,
        started: Instant,
        now: Instant,
    ) -> Vec<Attribute> {
        let c = self.counters_of(key, up);
        // Input is what the subscriber sent (decapsulated), output what it was sent.
        let (in_octets, in_giga) = split(c.rx_bytes);
        let (out_octets, out_giga) = split(c.tx_bytes);
        let secs =
            u32::try_from(now.saturating_duration_since(started).as_secs()).unwrap_or(u32::MAX);
        vec![
            Attribute::integer(attr::ACCT_SESSION_TIME, secs),
            Attribute::integer(attr::ACCT_INPUT_OCTETS, in_octets),
            Attribute::integer(attr::ACCT_INPUT_GIGAWORDS, in_giga),
            Attribute::integer(attr::ACCT_OUTPUT_OCTETS, out_octets),
            Attribute::integer(attr::ACCT_OUTPUT_GIGAWORDS, out_giga),
            Attribute::integer(attr::ACCT_INPUT_PACKETS, c.rx_packets as u32),
            Attribute::integer(attr::ACCT_OUTPUT_PACKETS, c.tx_packets as u32),
        ]
    }

    fn counters_of(&self, key: SessionRef, up: &SessionUp) -> SessionCounters {
        match self.dataplane.counters(&up.our_ids) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(tunnel = key.0, session = key.1, %e, "accounting: no fast-path counters; zero used");
                SessionCounters::default()
            }
        }
    }

    /// The next accounting deadline of a session (Interim-Update, idle check).
    pub(super) fn acct_deadline(&self, key: SessionRef) -> Option<Instant> {
        let st = self.acct.get(&key)?;
        st.started?;
        [st.interim.map(|i| i.1), st.idle.map(|i| i.1)]
            .into_iter()
            .flatten()
            .min()
    }

    /// Due accounting work of a session: an Interim-Update; the Idle-Timeout (the link is
    /// closed, its Down then sends the Stop).
    pub(super) fn acct_timeout(&mut self, key: SessionRef, now: Instant) {
        let Some(up) = self.sessions.get(&key).map(|s| s.up.clone()) else {
            return;
        };
        let Some(st) = self.acct.get(&key).cloned() else {
            return;
        };
        let Some(started) = st.started else {
            return;
        };
        if let Some((every, next, seen)) = st.idle {
            if next <= now {
                let packets = self.counters_of(key, &up).rx_packets;
                if packets == seen {
                    tracing::info!(tunnel = key.0, session = key.1, user = %st.user, "Idle-Timeout: closing the session");
                    if let Some(link) = self.sessions.get_mut(&key).and_then(|s| s.link.as_mut()) {
                        link.close(DownReason::IdleTimeout, now);
                    }
                    self.dirty.push(key);
                    return;
                }
                if let Some(s) = self.acct.get_mut(&key) {
                    s.idle = Some((every, now + every, packets));
                }
            }
        }
        if let Some((every, next)) = st.interim {
            if next <= now {
                let mut a = self.acct_record(&st, value::ACCT_INTERIM_UPDATE);
                a.extend(self.usage(key, &up, started, now));
                self.events.push_back(NodeEvent::Accounting {
                    tunnel: key.0,
                    session: key.1,
                    attributes: a,
                });
                if let Some(s) = self.acct.get_mut(&key) {
                    s.interim = Some((every, now + every));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn octets_split_into_gigawords() {
        assert_eq!(split(0), (0, 0));
        assert_eq!(split(0xffff_ffff), (0xffff_ffff, 0));
        assert_eq!(split(0x1_0000_0000), (0, 1));
        assert_eq!(split(5 * (1 << 32) + 7), (7, 5));
    }

    #[test]
    fn terminate_causes() {
        assert_eq!(terminate_cause(DownReason::SessionTimeout), 5);
        assert_eq!(terminate_cause(DownReason::Administrative), 6);
        assert_eq!(terminate_cause(DownReason::PeerTerminated), 1);
        assert_eq!(terminate_cause(DownReason::DeadPeer), 3);
    }
}
