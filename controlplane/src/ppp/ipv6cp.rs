//! IPv6CP option negotiation (RFC 5072) for both roles: Interface-Identifiers both ways.
//!
//! We request our own (random, non-zero) Interface-Identifier. RFC 5072 §4.1: the peer's is
//! acknowledged unless it is zero or equal to ours, in which case it is Nak'ed with a new
//! non-zero value that differs from ours; a Nak of ours makes us take the suggested value
//! (or a new random one if the suggestion is unusable). IPv6-Compression-Protocol and unknown
//! options are Rejected.

use l2xdp_wire::ppp::Ipv6cpOption;

use super::negotiate::{Negotiator, Verdict};
use super::{DownReason, Rng};

const ZERO: [u8; 8] = [0; 8];

#[derive(Debug, Clone)]
pub(crate) struct Ipv6cpNeg {
    /// Our Interface-Identifier.
    pub ours: [u8; 8],
    send: bool,
    /// The peer's, from its acknowledged request.
    pub peer: Option<[u8; 8]>,
    rng: Rng,
}

impl Ipv6cpNeg {
    pub fn new(fixed: Option<u64>, mut rng: Rng) -> Self {
        let ours = match fixed {
            Some(v) if v != 0 => v.to_be_bytes(),
            _ => rng.nonzero_u64().to_be_bytes(),
        };
        Ipv6cpNeg {
            ours,
            send: true,
            peer: None,
            rng,
        }
    }

    fn fresh(&mut self, not: [u8; 8]) -> [u8; 8] {
        loop {
            let v = self.rng.nonzero_u64().to_be_bytes();
            if v != not && v != self.ours {
                return v;
            }
        }
    }
}

impl Negotiator for Ipv6cpNeg {
    type Opt = Ipv6cpOption;

    fn request(&mut self) -> Vec<Ipv6cpOption> {
        if self.send {
            vec![Ipv6cpOption::InterfaceIdentifier(self.ours)]
        } else {
            Vec::new()
        }
    }

    fn check(
        &mut self,
        req: &[Ipv6cpOption],
        nak_allowed: bool,
    ) -> Result<Verdict<Ipv6cpOption>, DownReason> {
        let (mut nak, mut rej) = (Vec::new(), Vec::new());
        for o in req {
            match o {
                Ipv6cpOption::InterfaceIdentifier(id) if *id == ZERO || *id == self.ours => {
                    if nak_allowed {
                        let v = self.fresh(*id);
                        nak.push(Ipv6cpOption::InterfaceIdentifier(v));
                    } else {
                        rej.push(o.clone());
                    }
                }
                Ipv6cpOption::InterfaceIdentifier(_) => {}
                _ => rej.push(o.clone()),
            }
        }
        Ok(if !rej.is_empty() {
            Verdict::Reject(rej)
        } else if !nak.is_empty() {
            Verdict::Nak(nak)
        } else {
            Verdict::Ack
        })
    }

    fn peer_acked(&mut self, req: &[Ipv6cpOption]) {
        self.peer = req.iter().find_map(|o| match o {
            Ipv6cpOption::InterfaceIdentifier(id) => Some(*id),
            _ => None,
        });
    }

    fn acked(&mut self, _opts: &[Ipv6cpOption]) {}

    fn naked(&mut self, opts: &[Ipv6cpOption]) -> Result<(), DownReason> {
        for o in opts {
            if let Ipv6cpOption::InterfaceIdentifier(id) = o {
                self.ours = if *id != ZERO && Some(*id) != self.peer {
                    *id
                } else {
                    let old = self.ours;
                    self.fresh(old)
                };
            }
        }
        Ok(())
    }

    fn rejected(&mut self, opts: &[Ipv6cpOption]) -> Result<(), DownReason> {
        if opts
            .iter()
            .any(|o| matches!(o, Ipv6cpOption::InterfaceIdentifier(_)))
        {
            self.send = false;
        }
        Ok(())
    }
}
