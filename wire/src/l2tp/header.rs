//! L2TP headers.
//!
//! RFC 2661 §3.1 (L2TPv2, control and data share one header):
//! ```text
//! |T|L|x|x|S|x|O|P|x|x|x|x|  Ver  |          Length (opt)         |
//! |           Tunnel ID           |           Session ID          |
//! |             Ns (opt)          |             Nr (opt)          |
//! |      Offset Size (opt)        |    Offset pad... (opt)
//! ```
//! RFC 3931 §3.2.1 (L2TPv3 control message header, over UDP; over IP it follows a zero Session ID):
//! ```text
//! |T|L|x|x|S|x|x|x|x|x|x|x|  Ver  |             Length            |
//! |                     Control Connection ID                     |
//! |               Ns              |               Nr              |
//! ```
//! RFC 3931 §4.1.2.1 (L2TPv3 data over UDP) and §4.1.1.2 (over IP, without the first word):
//! ```text
//! |T|x|x|x|x|x|x|x|x|x|x|x|  Ver  |             Reserved          |
//! |                 Session ID                                    |
//! |               Cookie (optional, maximum 64 bits)...
//! ```

use crate::error::{check_len, check_room, Error, Result};

/// Byte ranges of the fixed fields, named once.
mod field {
    pub type Field = core::ops::Range<usize>;
    /// Flags and version, both versions, both transports over UDP.
    pub const FLAGS: Field = 0..2;
    /// RFC 3931 §4.1.1: the Session ID that starts every L2TPv3-over-IP packet (0 = control).
    pub const IP_SESSION_ID: Field = 0..4;
}

/// Flag bits of the first 16-bit word (RFC 2661 §3.1, RFC 3931 §3.2.1).
pub mod flags {
    /// Type: 1 for a control message, 0 for data.
    pub const T: u16 = 0x8000;
    /// Length field present.
    pub const L: u16 = 0x4000;
    /// Sequence numbers (Ns, Nr) present.
    pub const S: u16 = 0x0800;
    /// Offset Size present (L2TPv2 only).
    pub const O: u16 = 0x0200;
    /// Priority (L2TPv2 data only).
    pub const P: u16 = 0x0100;
    /// The version nibble.
    pub const VER_MASK: u16 = 0x000f;
}

/// The L2TP version a header carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub enum Version {
    /// RFC 2661.
    V2,
    /// RFC 3931.
    V3,
}

impl Version {
    /// The value of the version nibble.
    pub const fn number(self) -> u16 {
        match self {
            Version::V2 => 2,
            Version::V3 => 3,
        }
    }

    /// The version a nibble names; 1 (L2F) and anything else is unsupported.
    pub fn from_number(n: u16) -> Result<Self> {
        match n {
            2 => Ok(Version::V2),
            3 => Ok(Version::V3),
            v => Err(Error::Unsupported {
                what: "L2TP version",
                value: u32::from(v),
            }),
        }
    }
}

/// How L2TP is carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Transport {
    /// Over UDP (RFC 2661, RFC 3931 §4.1.2).
    Udp,
    /// Directly over IP protocol 115 (RFC 3931 §4.1.1; L2TPv3 only).
    Ip,
}

/// Reads the flags word of an L2TP packet carried over UDP: whether it is a control message and
/// which version it is.
pub fn peek(buf: &[u8]) -> Result<(bool, Version)> {
    check_len("L2TP header", buf, 2)?;
    let word = u16::from_be_bytes([buf[0], buf[1]]);
    Ok((
        word & flags::T != 0,
        Version::from_number(word & flags::VER_MASK)?,
    ))
}

/// What an L2TPv3-over-IP packet is (RFC 3931 §4.1.1): a control message (Session ID 0,
/// followed by the control header) or data for a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpPayload<'a> {
    /// The control message that follows the zero Session ID.
    Control(&'a [u8]),
    /// Data: the session and what follows the Session ID (cookie, sublayer, payload).
    Data { session_id: u32, rest: &'a [u8] },
}

/// Splits the payload of an IP protocol 115 packet (RFC 3931 §4.1.1).
pub fn split_ip(buf: &[u8]) -> Result<IpPayload<'_>> {
    check_len("L2TPv3-over-IP session ID", buf, field::IP_SESSION_ID.end)?;
    let session_id = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    let rest = &buf[field::IP_SESSION_ID.end..];
    Ok(if session_id == 0 {
        IpPayload::Control(rest)
    } else {
        IpPayload::Data { session_id, rest }
    })
}

// ---------------------------------------------------------------------------------------------
// L2TPv2

/// A zero-copy view of an L2TPv2 header and what follows it (RFC 2661 §3.1).
#[derive(Debug, Clone, Copy)]
pub struct V2Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> V2Packet<T> {
    /// Wraps a buffer without checking it.
    pub const fn new_unchecked(buffer: T) -> Self {
        V2Packet { buffer }
    }

    /// Wraps a buffer after [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks that every accessor will stay inside the buffer: the version is 2, the optional
    /// fields the flags announce are present, the offset pad fits, and a Length field is neither
    /// shorter than the header nor longer than the buffer.
    pub fn check_len(&self) -> Result<()> {
        let buf = self.buffer.as_ref();
        check_len("L2TPv2 header", buf, 2)?;
        if self.flags() & flags::VER_MASK != 2 {
            return Err(Error::Unsupported {
                what: "L2TP version",
                value: u32::from(self.flags() & flags::VER_MASK),
            });
        }
        let fixed = self.fixed_len();
        check_len("L2TPv2 header", buf, fixed)?;
        let hlen = self.header_len();
        check_len("L2TPv2 offset padding", buf, hlen)?;
        if let Some(len) = self.length() {
            let len = usize::from(len);
            if len < hlen {
                return Err(Error::Malformed {
                    what: "L2TPv2 header",
                    why: "Length is shorter than the header",
                });
            }
            check_len("L2TPv2 message (Length field)", buf, len)?;
        }
        Ok(())
    }

    /// Unwraps the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn word(&self, at: usize) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_be_bytes([b[at], b[at + 1]])
    }

    /// The flags and version word.
    pub fn flags(&self) -> u16 {
        self.word(field::FLAGS.start)
    }
    /// T bit: a control message.
    pub fn is_control(&self) -> bool {
        self.flags() & flags::T != 0
    }
    /// L bit.
    pub fn has_length(&self) -> bool {
        self.flags() & flags::L != 0
    }
    /// S bit.
    pub fn has_sequence(&self) -> bool {
        self.flags() & flags::S != 0
    }
    /// O bit.
    pub fn has_offset(&self) -> bool {
        self.flags() & flags::O != 0
    }
    /// P bit.
    pub fn priority(&self) -> bool {
        self.flags() & flags::P != 0
    }

    fn length_at(&self) -> Option<usize> {
        self.has_length().then_some(2)
    }
    fn ids_at(&self) -> usize {
        if self.has_length() {
            4
        } else {
            2
        }
    }
    fn seq_at(&self) -> Option<usize> {
        self.has_sequence().then_some(self.ids_at() + 4)
    }
    fn offset_at(&self) -> Option<usize> {
        self.has_offset()
            .then_some(self.ids_at() + 4 + if self.has_sequence() { 4 } else { 0 })
    }

    /// The length of the fixed part: everything before the offset pad.
    fn fixed_len(&self) -> usize {
        self.ids_at()
            + 4
            + if self.has_sequence() { 4 } else { 0 }
            + if self.has_offset() { 2 } else { 0 }
    }

    /// The Length field, when the L bit is set.
    pub fn length(&self) -> Option<u16> {
        self.length_at().map(|at| self.word(at))
    }
    /// Tunnel ID.
    pub fn tunnel_id(&self) -> u16 {
        self.word(self.ids_at())
    }
    /// Session ID.
    pub fn session_id(&self) -> u16 {
        self.word(self.ids_at() + 2)
    }
    /// Ns, when the S bit is set.
    pub fn ns(&self) -> Option<u16> {
        self.seq_at().map(|at| self.word(at))
    }
    /// Nr, when the S bit is set.
    pub fn nr(&self) -> Option<u16> {
        self.seq_at().map(|at| self.word(at + 2))
    }
    /// Offset Size, when the O bit is set.
    pub fn offset_size(&self) -> Option<u16> {
        self.offset_at().map(|at| self.word(at))
    }

    /// Header length including the offset pad: where the payload starts.
    pub fn header_len(&self) -> usize {
        self.fixed_len() + usize::from(self.offset_size().unwrap_or(0))
    }

    /// What follows the header, up to the Length field when there is one.
    pub fn payload(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        let end = self.length().map_or(b.len(), usize::from);
        &b[self.header_len()..end]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> V2Packet<T> {
    fn set_word(&mut self, at: usize, v: u16) {
        self.buffer.as_mut()[at..at + 2].copy_from_slice(&v.to_be_bytes());
    }
    /// Sets the flags and version word; the layout of the rest follows it.
    pub fn set_flags(&mut self, v: u16) {
        self.set_word(field::FLAGS.start, v);
    }
    /// Sets the Length field (the L bit must be set).
    pub fn set_length(&mut self, v: u16) {
        if let Some(at) = self.length_at() {
            self.set_word(at, v);
        }
    }
    /// Sets the Tunnel ID.
    pub fn set_tunnel_id(&mut self, v: u16) {
        let at = self.ids_at();
        self.set_word(at, v);
    }
    /// Sets the Session ID.
    pub fn set_session_id(&mut self, v: u16) {
        let at = self.ids_at() + 2;
        self.set_word(at, v);
    }
    /// Sets Ns and Nr (the S bit must be set).
    pub fn set_sequence(&mut self, ns: u16, nr: u16) {
        if let Some(at) = self.seq_at() {
            self.set_word(at, ns);
            self.set_word(at + 2, nr);
        }
    }
    /// Sets the Offset Size and zeroes the pad (the O bit must be set).
    pub fn set_offset_size(&mut self, v: u16) {
        if let Some(at) = self.offset_at() {
            self.set_word(at, v);
            let pad = at + 2..at + 2 + usize::from(v);
            self.buffer.as_mut()[pad].fill(0);
        }
    }
    /// The payload, mutable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let start = self.header_len();
        let end = self
            .length()
            .map_or(self.buffer.as_ref().len(), usize::from);
        &mut self.buffer.as_mut()[start..end]
    }
}

/// An owned L2TPv2 header (RFC 2661 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub struct V2Repr {
    /// T bit.
    pub control: bool,
    /// L bit: emit a Length field (always for control messages).
    pub with_length: bool,
    /// Tunnel ID (the receiver's).
    pub tunnel_id: u16,
    /// Session ID (the receiver's; 0 for tunnel-level control messages).
    pub session_id: u16,
    /// (Ns, Nr) when the S bit is set (always for control messages).
    pub sequence: Option<(u16, u16)>,
    /// Offset Size when the O bit is set; the pad is emitted as zeros.
    pub offset: Option<u16>,
    /// P bit (data messages only).
    pub priority: bool,
}

impl V2Repr {
    /// Parses a checked view. Control messages must have L and S set and O and P clear
    /// (RFC 2661 §3.1).
    pub fn parse<T: AsRef<[u8]>>(packet: &V2Packet<T>) -> Result<Self> {
        packet.check_len()?;
        let control = packet.is_control();
        if control {
            if !packet.has_length() || !packet.has_sequence() {
                return Err(Error::Malformed {
                    what: "L2TPv2 control header",
                    why: "L and S bits must be set on control messages",
                });
            }
            if packet.has_offset() || packet.priority() {
                return Err(Error::Malformed {
                    what: "L2TPv2 control header",
                    why: "O and P bits must be clear on control messages",
                });
            }
        }
        Ok(V2Repr {
            control,
            with_length: packet.has_length(),
            tunnel_id: packet.tunnel_id(),
            session_id: packet.session_id(),
            sequence: packet.ns().zip(packet.nr()),
            offset: packet.offset_size(),
            priority: packet.priority(),
        })
    }

    /// The flags word this header emits.
    pub fn flags(&self) -> u16 {
        let mut f = 2;
        if self.control {
            f |= flags::T;
        }
        if self.with_length {
            f |= flags::L;
        }
        if self.sequence.is_some() {
            f |= flags::S;
        }
        if self.offset.is_some() {
            f |= flags::O;
        }
        if self.priority {
            f |= flags::P;
        }
        f
    }

    /// The emitted header length, offset pad included.
    pub fn header_len(&self) -> usize {
        (if self.with_length { 8 } else { 6 })
            + if self.sequence.is_some() { 4 } else { 0 }
            + self.offset.map_or(0, |o| 2 + usize::from(o))
    }

    /// Emits the header into the front of `buf`, with a Length of `header_len() + payload_len`
    /// when the L bit is set. Returns the header length.
    pub fn emit(&self, buf: &mut [u8], payload_len: usize) -> Result<usize> {
        let hlen = self.header_len();
        check_room("L2TPv2 header", buf, hlen)?;
        let total = u16::try_from(hlen + payload_len).map_err(|_| Error::Malformed {
            what: "L2TPv2 message",
            why: "longer than the 16-bit Length field",
        })?;
        let mut p = V2Packet::new_unchecked(&mut buf[..]);
        p.set_flags(self.flags());
        p.set_length(total);
        p.set_tunnel_id(self.tunnel_id);
        p.set_session_id(self.session_id);
        if let Some((ns, nr)) = self.sequence {
            p.set_sequence(ns, nr);
        }
        if let Some(o) = self.offset {
            p.set_offset_size(o);
        }
        Ok(hlen)
    }
}

// ---------------------------------------------------------------------------------------------
// Control header, both versions

/// The header of a control message of either version, as the control plane sees it.
///
/// Both headers are 12 bytes (RFC 2661 §3.1 with L and S set; RFC 3931 §3.2.1). Over IP, an
/// L2TPv3 control header follows a zero Session ID that [`split_ip`] strips.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub struct ControlHeader {
    /// L2TP version.
    pub version: Version,
    /// The receiver's Tunnel ID (v2) or Control Connection ID (v3); 0 before it is known.
    pub tunnel_id: u32,
    /// The receiver's Session ID (v2 only; L2TPv3 carries session IDs in AVPs).
    pub session_id: u16,
    /// Ns: sequence number of this message.
    pub ns: u16,
    /// Nr: next sequence number expected from the peer.
    pub nr: u16,
}

impl ControlHeader {
    /// Length of the control header of either version.
    pub const LEN: usize = 12;

    /// Parses a control header and returns it with the AVP bytes it covers (its Length field
    /// bounds them; trailing bytes in the buffer are ignored).
    pub fn parse(buf: &[u8]) -> Result<(ControlHeader, &[u8])> {
        let (control, version) = peek(buf)?;
        if !control {
            return Err(Error::Malformed {
                what: "L2TP control header",
                why: "T bit clear (a data message)",
            });
        }
        match version {
            Version::V2 => {
                let p = V2Packet::new_checked(buf)?;
                let r = V2Repr::parse(&p)?;
                let (ns, nr) = r.sequence.unwrap_or((0, 0));
                let end = p.length().map_or(buf.len(), usize::from);
                let avps = &buf[p.header_len()..end];
                Ok((
                    ControlHeader {
                        version,
                        tunnel_id: u32::from(r.tunnel_id),
                        session_id: r.session_id,
                        ns,
                        nr,
                    },
                    avps,
                ))
            }
            Version::V3 => {
                check_len("L2TPv3 control header", buf, Self::LEN)?;
                let word = u16::from_be_bytes([buf[0], buf[1]]);
                if word & (flags::L | flags::S) != flags::L | flags::S {
                    return Err(Error::Malformed {
                        what: "L2TPv3 control header",
                        why: "L and S bits must be set on control messages",
                    });
                }
                let len = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
                if len < Self::LEN {
                    return Err(Error::Malformed {
                        what: "L2TPv3 control header",
                        why: "Length is shorter than the header",
                    });
                }
                check_len("L2TPv3 control message (Length field)", buf, len)?;
                Ok((
                    ControlHeader {
                        version,
                        tunnel_id: u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]),
                        session_id: 0,
                        ns: u16::from_be_bytes([buf[8], buf[9]]),
                        nr: u16::from_be_bytes([buf[10], buf[11]]),
                    },
                    &buf[Self::LEN..len],
                ))
            }
        }
    }

    /// Emits the header for a message of `avp_len` bytes of AVPs into the front of `buf`.
    /// An L2TPv2 Tunnel ID above 65535 is refused.
    pub fn emit(&self, buf: &mut [u8], avp_len: usize) -> Result<usize> {
        let total = u16::try_from(Self::LEN + avp_len).map_err(|_| Error::Malformed {
            what: "L2TP control message",
            why: "longer than the 16-bit Length field",
        })?;
        check_room("L2TP control header", buf, Self::LEN)?;
        match self.version {
            Version::V2 => {
                let tunnel_id = u16::try_from(self.tunnel_id).map_err(|_| Error::Malformed {
                    what: "L2TPv2 control header",
                    why: "Tunnel ID does not fit in 16 bits",
                })?;
                V2Repr {
                    control: true,
                    with_length: true,
                    tunnel_id,
                    session_id: self.session_id,
                    sequence: Some((self.ns, self.nr)),
                    offset: None,
                    priority: false,
                }
                .emit(buf, avp_len)
            }
            Version::V3 => {
                let f = flags::T | flags::L | flags::S | 3;
                buf[0..2].copy_from_slice(&f.to_be_bytes());
                buf[2..4].copy_from_slice(&total.to_be_bytes());
                buf[4..8].copy_from_slice(&self.tunnel_id.to_be_bytes());
                buf[8..10].copy_from_slice(&self.ns.to_be_bytes());
                buf[10..12].copy_from_slice(&self.nr.to_be_bytes());
                Ok(Self::LEN)
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// L2TPv3 data

/// An L2TPv3 cookie: 0, 4 or 8 bytes (RFC 3931 §4.1). Its length is configured per session,
/// never read off the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Cookie {
    len: u8,
    bytes: [u8; 8],
}

impl Cookie {
    /// No cookie.
    pub const NONE: Cookie = Cookie {
        len: 0,
        bytes: [0; 8],
    };

    /// A cookie from its bytes; only lengths 0, 4 and 8 exist.
    pub fn new(bytes: &[u8]) -> Result<Self> {
        match bytes.len() {
            0 | 4 | 8 => {
                let mut b = [0; 8];
                b[..bytes.len()].copy_from_slice(bytes);
                Ok(Cookie {
                    len: bytes.len() as u8,
                    bytes: b,
                })
            }
            n => Err(Error::Unsupported {
                what: "L2TPv3 cookie length",
                value: n as u32,
            }),
        }
    }

    /// The cookie's length in bytes (0, 4 or 8).
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }
    /// Whether there is no cookie.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// The cookie's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len()]
    }
}

impl serde::Serialize for Cookie {
    fn serialize<S: serde::Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        s.serialize_str(&crate::ser::hex(self.as_bytes()))
    }
}

/// An owned L2TPv3 data header: Session ID and cookie (RFC 3931 §4.1.1.2, §4.1.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub struct V3DataRepr {
    /// The receiver's Session ID (never 0).
    pub session_id: u32,
    /// The cookie the receiver assigned.
    pub cookie: Cookie,
}

impl V3DataRepr {
    /// Header length for a transport: over UDP a flags/reserved word precedes the Session ID.
    pub fn header_len(&self, transport: Transport) -> usize {
        (match transport {
            Transport::Udp => 8,
            Transport::Ip => 4,
        }) + self.cookie.len()
    }

    /// Parses a data header whose cookie is `cookie_len` bytes long and returns the rest.
    /// Over UDP the T bit must be clear and the version 3; the reserved bits are ignored
    /// (RFC 3931 §4.1.2.1: "MUST be ignored on receipt").
    pub fn parse(buf: &[u8], transport: Transport, cookie_len: usize) -> Result<(Self, &[u8])> {
        let at = match transport {
            Transport::Udp => {
                check_len("L2TPv3 data header", buf, 8)?;
                let word = u16::from_be_bytes([buf[0], buf[1]]);
                if word & flags::T != 0 {
                    return Err(Error::Malformed {
                        what: "L2TPv3 data header",
                        why: "T bit set (a control message)",
                    });
                }
                if word & flags::VER_MASK != 3 {
                    return Err(Error::Unsupported {
                        what: "L2TP version",
                        value: u32::from(word & flags::VER_MASK),
                    });
                }
                4
            }
            Transport::Ip => 0,
        };
        check_len("L2TPv3 data header", buf, at + 4 + cookie_len)?;
        let session_id = u32::from_be_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]]);
        if session_id == 0 {
            return Err(Error::Malformed {
                what: "L2TPv3 data header",
                why: "Session ID 0 is reserved for control messages",
            });
        }
        let cookie = Cookie::new(&buf[at + 4..at + 4 + cookie_len])?;
        Ok((
            V3DataRepr { session_id, cookie },
            &buf[at + 4 + cookie_len..],
        ))
    }

    /// Emits the header into the front of `buf` and returns its length.
    pub fn emit(&self, buf: &mut [u8], transport: Transport) -> Result<usize> {
        let hlen = self.header_len(transport);
        check_room("L2TPv3 data header", buf, hlen)?;
        let at = match transport {
            Transport::Udp => {
                buf[0..4].copy_from_slice(&[0, 3, 0, 0]);
                4
            }
            Transport::Ip => 0,
        };
        buf[at..at + 4].copy_from_slice(&self.session_id.to_be_bytes());
        buf[at + 4..hlen].copy_from_slice(self.cookie.as_bytes());
        Ok(hlen)
    }
}

/// The default L2-Specific Sublayer (RFC 3931 §4.6):
/// ```text
/// |x|S|x|x|x|x|x|x|              Sequence Number                  |
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub struct L2ssRepr {
    /// The 24-bit sequence number when the S bit is set.
    pub sequence: Option<u32>,
}

impl L2ssRepr {
    /// Length of the default sublayer.
    pub const LEN: usize = 4;
    /// The S bit in the first byte.
    const S: u8 = 0x40;
    /// Sequence numbers wrap at 2^24.
    pub const SEQ_MASK: u32 = 0x00ff_ffff;

    /// Parses the sublayer; the reserved bits are ignored.
    pub fn parse(buf: &[u8]) -> Result<(Self, &[u8])> {
        check_len("L2TPv3 L2-Specific Sublayer", buf, Self::LEN)?;
        let seq = u32::from_be_bytes([0, buf[1], buf[2], buf[3]]);
        let sequence = (buf[0] & Self::S != 0).then_some(seq);
        Ok((L2ssRepr { sequence }, &buf[Self::LEN..]))
    }

    /// Emits the sublayer (sequence numbers are taken modulo 2^24).
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        check_room("L2TPv3 L2-Specific Sublayer", buf, Self::LEN)?;
        match self.sequence {
            Some(s) => {
                let b = (s & Self::SEQ_MASK).to_be_bytes();
                buf[..4].copy_from_slice(&[Self::S, b[1], b[2], b[3]]);
            }
            None => buf[..4].fill(0),
        }
        Ok(Self::LEN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An L2TPv2 SCCRQ header as xl2tpd sends it: T, L, S set, length 0x0068, tunnel 0,
    /// session 0, Ns 0, Nr 0.
    const V2_CONTROL: [u8; 12] = [
        0xc8, 0x02, 0x00, 0x0c, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    ];

    #[test]
    fn v2_control_header_parses() {
        let (h, avps) = ControlHeader::parse(&V2_CONTROL).expect("valid header");
        assert_eq!(h.version, Version::V2);
        assert_eq!((h.tunnel_id, h.session_id, h.ns, h.nr), (0, 0, 0, 0));
        assert!(avps.is_empty());
    }

    #[test]
    fn v2_data_minimal_header() {
        // T=0, L=0, S=0: flags, tunnel 0x1234, session 0x5678, then PPP.
        let b = [0x00, 0x02, 0x12, 0x34, 0x56, 0x78, 0xff, 0x03, 0x00, 0x21];
        let p = V2Packet::new_checked(&b[..]).expect("valid");
        let r = V2Repr::parse(&p).expect("valid");
        assert_eq!((r.tunnel_id, r.session_id), (0x1234, 0x5678));
        assert_eq!(r.header_len(), 6);
        assert_eq!(p.payload(), &[0xff, 0x03, 0x00, 0x21]);
    }

    #[test]
    fn v2_offset_pad_is_skipped() {
        // L, S, O set; offset size 2, pad 2 bytes.
        let b = [
            0x4a, 0x02, 0x00, 0x12, 0x00, 0x01, 0x00, 0x02, 0x00, 0x05, 0x00, 0x06, 0x00, 0x02,
            0xee, 0xee, 0xaa, 0xbb,
        ];
        let p = V2Packet::new_checked(&b[..]).expect("valid");
        assert_eq!(p.payload(), &[0xaa, 0xbb]);
        let r = V2Repr::parse(&p).expect("valid");
        assert_eq!(r.sequence, Some((5, 6)));
        let mut out = [0u8; 18];
        let n = r.emit(&mut out, 2).expect("fits");
        out[n..].copy_from_slice(&[0xaa, 0xbb]);
        // The pad is emitted as zeros, everything else identical.
        assert_eq!(&out[..14], &b[..14]);
        assert_eq!(&out[14..16], &[0, 0]);
    }

    #[test]
    fn v2_length_shorter_than_header_is_malformed() {
        let b = [0xc8, 0x02, 0x00, 0x04, 0, 0, 0, 0, 0, 0, 0, 0];
        assert!(matches!(
            V2Packet::new_checked(&b[..]),
            Err(Error::Malformed { .. })
        ));
    }

    #[test]
    fn v2_control_with_offset_is_malformed() {
        let b = [0xca, 0x02, 0x00, 0x0e, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        assert!(ControlHeader::parse(&b).is_err());
    }

    #[test]
    fn v3_control_round_trip() {
        let h = ControlHeader {
            version: Version::V3,
            tunnel_id: 0xdead_beef,
            session_id: 0,
            ns: 7,
            nr: 9,
        };
        let mut buf = [0u8; 20];
        h.emit(&mut buf, 8).expect("fits");
        assert_eq!(&buf[..4], &[0xc8, 0x03, 0x00, 0x14]);
        let (back, avps) = ControlHeader::parse(&buf).expect("valid");
        assert_eq!(back, h);
        assert_eq!(avps.len(), 8);
    }

    #[test]
    fn v2_tunnel_id_over_16_bits_is_refused() {
        let h = ControlHeader {
            version: Version::V2,
            tunnel_id: 0x1_0000,
            session_id: 0,
            ns: 0,
            nr: 0,
        };
        assert!(h.emit(&mut [0u8; 12], 0).is_err());
    }

    #[test]
    fn v3_data_over_ip_and_udp() {
        let r = V3DataRepr {
            session_id: 0x0102_0304,
            cookie: Cookie::new(&[9, 8, 7, 6]).expect("4 bytes"),
        };
        let mut buf = [0u8; 16];
        let n = r.emit(&mut buf, Transport::Ip).expect("fits");
        assert_eq!(&buf[..n], &[1, 2, 3, 4, 9, 8, 7, 6]);
        assert!(matches!(
            split_ip(&buf[..n]),
            Ok(IpPayload::Data {
                session_id: 0x0102_0304,
                ..
            })
        ));
        let n = r.emit(&mut buf, Transport::Udp).expect("fits");
        assert_eq!(&buf[..n], &[0, 3, 0, 0, 1, 2, 3, 4, 9, 8, 7, 6]);
        let (back, rest) = V3DataRepr::parse(&buf[..n], Transport::Udp, 4).expect("valid");
        assert_eq!(back, r);
        assert!(rest.is_empty());
    }

    #[test]
    fn cookie_lengths() {
        assert!(Cookie::new(&[1, 2, 3]).is_err());
        assert_eq!(Cookie::new(&[1; 8]).expect("8").len(), 8);
    }

    #[test]
    fn l2ss_sequence_wraps_at_24_bits() {
        let mut b = [0u8; 4];
        L2ssRepr {
            sequence: Some(0x0100_0002),
        }
        .emit(&mut b)
        .expect("fits");
        assert_eq!(b, [0x40, 0, 0, 2]);
        let (r, _) = L2ssRepr::parse(&b).expect("valid");
        assert_eq!(r.sequence, Some(2));
    }
}
