//! A channel's sequence state for transparent resume after a restart (RFC 2661 §5.8): what
//! the peer has not acknowledged ([`Channel::unacked`], persisted with Ns and Nr) and taking it
//! back ([`Channel::resume`]).

use std::time::Instant;

use super::{Channel, ChannelError, InFlight, Queued, MAX_AVP_LEN, MAX_WINDOW};

/// A message the peer has not acknowledged, as [`Channel::unacked`] lists it and
/// [`Channel::resume`] takes it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unacked {
    /// Its Ns; `None`: queued, never sent.
    pub ns: Option<u16>,
    /// The L2TPv2 header's Session ID.
    pub session_id: u16,
    /// Everything after the header.
    pub avps: Vec<u8>,
}

impl Channel {
    /// What the peer has not acknowledged: the messages in flight (in Ns order), then those
    /// queued and never sent.
    pub fn unacked(&self) -> Vec<Unacked> {
        self.in_flight
            .iter()
            .map(|m| Unacked {
                ns: Some(m.ns),
                session_id: m.session_id,
                avps: m.avps.clone(),
            })
            .chain(self.queued.iter().map(|q| Unacked {
                ns: None,
                session_id: q.session_id,
                avps: q.avps.clone(),
            }))
            .collect()
    }

    /// Transparent resume after a restart (RFC 2661 §5.8): the channel goes on at Ns `ns`
    /// and Nr `nr`, with `unacked` (as [`Channel::unacked`] listed it) still to deliver. The
    /// messages that were in flight are sent again at the next
    /// [`poll_transmit`](Self::poll_transmit), carrying the current Nr; congestion state
    /// restarts. Refused (the channel unchanged) when the in-flight messages are not the
    /// `k` numbers just before `ns`, in order, or a queued one comes before one in flight.
    pub fn resume(
        &mut self,
        ns: u16,
        nr: u16,
        unacked: Vec<Unacked>,
        now: Instant,
    ) -> Result<(), ChannelError> {
        let sent = unacked.iter().take_while(|m| m.ns.is_some()).count();
        let consistent = unacked.iter().skip(sent).all(|m| m.ns.is_none())
            && unacked
                .iter()
                .take(sent)
                .enumerate()
                .all(|(i, m)| m.ns == Some(ns.wrapping_sub((sent - i) as u16)))
            && sent <= usize::from(MAX_WINDOW)
            && unacked.iter().all(|m| m.avps.len() <= MAX_AVP_LEN);
        if !consistent {
            return Err(ChannelError::Inconsistent);
        }
        self.reset_sequence(ns, nr);
        self.queued.clear();
        for m in unacked {
            match m.ns {
                Some(ns) => self.in_flight.push_back(InFlight {
                    ns,
                    session_id: m.session_id,
                    avps: m.avps,
                    retries: 0,
                    rto: self.config.initial_timeout,
                    deadline: now,
                    due: true,
                }),
                None => self.queued.push_back(Queued {
                    session_id: m.session_id,
                    avps: m.avps,
                }),
            }
        }
        self.recover = ns;
        Ok(())
    }
}
