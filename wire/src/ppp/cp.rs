//! The packet format shared by LCP and the Network Control Protocols (RFC 1661 §5):
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |     Code      |  Identifier   |            Length             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |    Data ...
//! +-+-+-+-+
//! ```
//! and, in Configure-* packets, the option format (RFC 1661 §6):
//! ```text
//! |     Type      |    Length     |    Data ...
//! ```
//! PAP (RFC 1334 §2.2) and CHAP (RFC 1994 §4) use the same four-byte header, so [`CpPacket`]
//! is their view too.

use crate::error::{check_len, check_room, Error, Result};

/// Byte ranges of the fixed fields, named once.
mod field {
    pub type Field = core::ops::Range<usize>;
    pub const CODE: usize = 0;
    pub const IDENTIFIER: usize = 1;
    pub const LENGTH: Field = 2..4;
    pub const DATA: usize = 4;
    /// Option Type and Length.
    pub const OPT_HEADER: usize = 2;
    /// Protocol-Reject: Rejected-Protocol.
    pub const REJECTED_PROTOCOL: usize = 2;
    /// Echo-Request, Echo-Reply, Discard-Request: Magic-Number.
    pub const MAGIC: usize = 4;
}

/// Length of the Code, Identifier and Length fields.
pub const HEADER_LEN: usize = field::DATA;

/// Codes (RFC 1661 §5). IPCP (RFC 1332 §2) and IPv6CP (RFC 5072 §3) use 1 to 7 only.
pub mod code {
    /// Configure-Request (RFC 1661 §5.1).
    pub const CONFIGURE_REQUEST: u8 = 1;
    /// Configure-Ack (RFC 1661 §5.2).
    pub const CONFIGURE_ACK: u8 = 2;
    /// Configure-Nak (RFC 1661 §5.3).
    pub const CONFIGURE_NAK: u8 = 3;
    /// Configure-Reject (RFC 1661 §5.4).
    pub const CONFIGURE_REJECT: u8 = 4;
    /// Terminate-Request (RFC 1661 §5.5).
    pub const TERMINATE_REQUEST: u8 = 5;
    /// Terminate-Ack (RFC 1661 §5.5).
    pub const TERMINATE_ACK: u8 = 6;
    /// Code-Reject (RFC 1661 §5.6).
    pub const CODE_REJECT: u8 = 7;
    /// Protocol-Reject (RFC 1661 §5.7; LCP only).
    pub const PROTOCOL_REJECT: u8 = 8;
    /// Echo-Request (RFC 1661 §5.8; LCP only).
    pub const ECHO_REQUEST: u8 = 9;
    /// Echo-Reply (RFC 1661 §5.8; LCP only).
    pub const ECHO_REPLY: u8 = 10;
    /// Discard-Request (RFC 1661 §5.9; LCP only).
    pub const DISCARD_REQUEST: u8 = 11;
}

/// A zero-copy view of a control-protocol packet (RFC 1661 §5).
#[derive(Debug, Clone, Copy)]
pub struct CpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> CpPacket<T> {
    /// Wraps a buffer without checking it.
    pub const fn new_unchecked(buffer: T) -> Self {
        CpPacket { buffer }
    }

    /// Wraps a buffer after [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks that the header is present and that the Length field is at least the header and
    /// at most the buffer. Octets beyond Length are padding (RFC 1661 §5: "treated as padding
    /// and are ignored on reception"); a Length beyond the buffer is a truncated packet.
    pub fn check_len(&self) -> Result<()> {
        let buf = self.buffer.as_ref();
        check_len("PPP control packet header", buf, HEADER_LEN)?;
        let len = usize::from(self.length());
        if len < HEADER_LEN {
            return Err(Error::Malformed {
                what: "PPP control packet",
                why: "Length is shorter than the header",
            });
        }
        check_len("PPP control packet (Length field)", buf, len)
    }

    /// Unwraps the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Code.
    pub fn code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }
    /// Identifier.
    pub fn identifier(&self) -> u8 {
        self.buffer.as_ref()[field::IDENTIFIER]
    }
    /// Length: Code through Data.
    pub fn length(&self) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_be_bytes([b[field::LENGTH.start], b[field::LENGTH.start + 1]])
    }
    /// The Data field, up to Length (padding excluded).
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[field::DATA..usize::from(self.length())]
    }
    /// The packet up to Length (padding excluded): what a Code-Reject carries.
    pub fn packet(&self) -> &[u8] {
        &self.buffer.as_ref()[..usize::from(self.length())]
    }
    /// The Configuration Options of a Configure-* packet.
    pub fn options(&self) -> Options<'_> {
        Options::new(self.data())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> CpPacket<T> {
    /// Sets the Code.
    pub fn set_code(&mut self, v: u8) {
        self.buffer.as_mut()[field::CODE] = v;
    }
    /// Sets the Identifier.
    pub fn set_identifier(&mut self, v: u8) {
        self.buffer.as_mut()[field::IDENTIFIER] = v;
    }
    /// Sets the Length.
    pub fn set_length(&mut self, v: u16) {
        self.buffer.as_mut()[field::LENGTH].copy_from_slice(&v.to_be_bytes());
    }
    /// The Data field up to Length, mutable.
    pub fn data_mut(&mut self) -> &mut [u8] {
        let end = usize::from(self.length());
        &mut self.buffer.as_mut()[field::DATA..end]
    }
}

/// One Configuration Option, borrowed (RFC 1661 §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawOption<'a> {
    /// Type.
    pub kind: u8,
    /// Data (the option's Length minus 2).
    pub data: &'a [u8],
}

/// An iterator over the Configuration Options of a Configure-* packet's Data.
///
/// Yields `Err` once and then stops when an option's Length is below 2 or runs past the data.
#[derive(Debug, Clone)]
pub struct Options<'a> {
    rest: &'a [u8],
}

impl<'a> Options<'a> {
    /// Iterates over the options in `data`.
    pub const fn new(data: &'a [u8]) -> Self {
        Options { rest: data }
    }
}

impl<'a> Iterator for Options<'a> {
    type Item = Result<RawOption<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        let (kind, len, rest) = match self.rest {
            [] => return None,
            [kind, len, rest @ ..] => (*kind, usize::from(*len), rest),
            [_] => {
                self.rest = &[];
                return Some(Err(Error::Truncated {
                    what: "PPP configuration option header",
                    need: field::OPT_HEADER,
                    have: 1,
                }));
            }
        };
        if len < field::OPT_HEADER {
            self.rest = &[];
            return Some(Err(Error::Malformed {
                what: "PPP configuration option",
                why: "Length is below 2",
            }));
        }
        let data_len = len - field::OPT_HEADER;
        if rest.len() < data_len {
            let have = rest.len() + field::OPT_HEADER;
            self.rest = &[];
            return Some(Err(Error::Truncated {
                what: "PPP configuration option",
                need: len,
                have,
            }));
        }
        let (data, after) = rest.split_at(data_len);
        self.rest = after;
        Some(Ok(RawOption { kind, data }))
    }
}

/// A typed Configuration Option of one control protocol (LCP, IPCP, IPv6CP).
pub trait CpOption: Sized {
    /// The PPP protocol number of the control protocol.
    const PROTOCOL: u16;
    /// Its name, for errors.
    const NAME: &'static str;
    /// Whether codes 8 to 11 exist (LCP only, RFC 1661 §5.7-§5.9).
    const LCP_CODES: bool;

    /// Builds an option from its Type and Data; a known Type with the wrong length is
    /// [`Error::Malformed`].
    fn parse(raw: RawOption<'_>) -> Result<Self>;
    /// The option's Type.
    fn kind(&self) -> u8;
    /// The length of its Data.
    fn data_len(&self) -> usize;
    /// Writes its Data into `buf`, which is exactly [`data_len`](Self::data_len) long.
    fn emit_data(&self, buf: &mut [u8]);

    /// The length of the whole option (Type, Length, Data).
    fn emit_len(&self) -> usize {
        self.data_len().saturating_add(field::OPT_HEADER)
    }

    /// Emits Type, Length and Data into the front of `buf`; returns the length.
    fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let len = self.emit_len();
        let len8 = u8::try_from(len).map_err(|_| Error::Malformed {
            what: "PPP configuration option",
            why: "longer than 255 bytes",
        })?;
        check_room("PPP configuration option", buf, len)?;
        buf[0] = self.kind();
        buf[1] = len8;
        self.emit_data(&mut buf[field::OPT_HEADER..len]);
        Ok(len)
    }
}

/// Parses every option of a Configure-* packet's Data.
pub fn parse_options<O: CpOption>(data: &[u8]) -> Result<Vec<O>> {
    Options::new(data).map(|r| r.and_then(O::parse)).collect()
}

/// Reads a big-endian u16 from the first two bytes of `data` (the caller checked the length).
pub(crate) fn be16(data: &[u8]) -> Result<u16> {
    match data {
        [a, b, ..] => Ok(u16::from_be_bytes([*a, *b])),
        _ => Err(Error::Truncated {
            what: "PPP 16-bit field",
            need: 2,
            have: data.len(),
        }),
    }
}

/// Reads a big-endian u32 from the first four bytes of `data`.
pub(crate) fn be32(data: &[u8]) -> Result<u32> {
    match data {
        [a, b, c, d, ..] => Ok(u32::from_be_bytes([*a, *b, *c, *d])),
        _ => Err(Error::Truncated {
            what: "PPP 32-bit field",
            need: 4,
            have: data.len(),
        }),
    }
}

/// Checks that a fixed-size option's data is exactly `len` bytes.
pub(crate) fn fixed(what: &'static str, data: &[u8], len: usize) -> Result<()> {
    if data.len() == len {
        Ok(())
    } else {
        Err(Error::Malformed {
            what,
            why: "wrong option length",
        })
    }
}

/// Checks that an option's data is at least `len` bytes.
pub(crate) fn at_least(what: &'static str, data: &[u8], len: usize) -> Result<()> {
    if data.len() >= len {
        Ok(())
    } else {
        Err(Error::Malformed {
            what,
            why: "option too short",
        })
    }
}

/// The code-specific content of a control-protocol packet (RFC 1661 §5.1-§5.9).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "code", rename_all = "kebab-case")]
pub enum CpBody<O> {
    /// 1: the options the sender wants (RFC 1661 §5.1).
    ConfigureRequest { options: Vec<O> },
    /// 2: the options of the request, acknowledged as they were (RFC 1661 §5.2).
    ConfigureAck { options: Vec<O> },
    /// 3: acceptable values for options of the request (RFC 1661 §5.3).
    ConfigureNak { options: Vec<O> },
    /// 4: options of the request that are not acceptable (RFC 1661 §5.4).
    ConfigureReject { options: Vec<O> },
    /// 5 (RFC 1661 §5.5).
    TerminateRequest {
        #[serde(serialize_with = "super::ser_hex")]
        data: Vec<u8>,
    },
    /// 6 (RFC 1661 §5.5).
    TerminateAck {
        #[serde(serialize_with = "super::ser_hex")]
        data: Vec<u8>,
    },
    /// 7: the rejected packet, from its Code (RFC 1661 §5.6).
    CodeReject {
        #[serde(serialize_with = "super::ser_hex")]
        rejected: Vec<u8>,
    },
    /// 8: the rejected protocol and the start of the rejected Information (RFC 1661 §5.7).
    ProtocolReject {
        protocol: u16,
        #[serde(serialize_with = "super::ser_hex")]
        info: Vec<u8>,
    },
    /// 9 (RFC 1661 §5.8).
    EchoRequest {
        magic: u32,
        #[serde(serialize_with = "super::ser_hex")]
        data: Vec<u8>,
    },
    /// 10 (RFC 1661 §5.8).
    EchoReply {
        magic: u32,
        #[serde(serialize_with = "super::ser_hex")]
        data: Vec<u8>,
    },
    /// 11 (RFC 1661 §5.9).
    DiscardRequest {
        magic: u32,
        #[serde(serialize_with = "super::ser_hex")]
        data: Vec<u8>,
    },
    /// A Code this protocol does not define, kept so that the control plane can answer it with
    /// a Code-Reject (RFC 1661 §5.6). Never a defined code: [`CpRepr::emit`] refuses that.
    Unknown {
        #[serde(rename = "value")]
        code: u8,
        #[serde(serialize_with = "super::ser_hex")]
        data: Vec<u8>,
    },
}

/// An owned control-protocol packet: Identifier and the code-specific content.
/// [`LcpPacket`](super::lcp::LcpPacket), [`IpcpPacket`](super::ipcp::IpcpPacket) and
/// [`Ipv6cpPacket`](super::ipv6cp::Ipv6cpPacket) are this with their option types.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CpRepr<O> {
    /// Identifier: matches requests and replies (RFC 1661 §5).
    pub identifier: u8,
    /// Code and Data.
    pub body: CpBody<O>,
}

impl<O: CpOption> CpRepr<O> {
    /// Whether `code` is defined for this protocol.
    pub fn is_known_code(code: u8) -> bool {
        match code {
            1..=7 => true,
            8..=11 => O::LCP_CODES,
            _ => false,
        }
    }

    /// Parses a packet that starts at the Code field (the PPP Information field). Bytes past
    /// Length are ignored as padding. Codes the protocol does not define become
    /// [`CpBody::Unknown`]; malformed option lists and short Protocol-Reject/Echo/Discard
    /// packets are errors.
    pub fn parse(buf: &[u8]) -> Result<Self> {
        Self::parse_packet(&CpPacket::new_checked(buf)?)
    }

    /// Parses a packet from a view (which is checked again).
    pub fn parse_packet<T: AsRef<[u8]>>(packet: &CpPacket<T>) -> Result<Self> {
        packet.check_len()?;
        let data = packet.data();
        let code = packet.code();
        let magic = |data: &[u8]| -> Result<(u32, Vec<u8>)> {
            check_len(O::NAME, data, field::MAGIC)?;
            Ok((be32(data)?, data[field::MAGIC..].to_vec()))
        };
        let body = match code {
            _ if !Self::is_known_code(code) => CpBody::Unknown {
                code,
                data: data.to_vec(),
            },
            code::CONFIGURE_REQUEST => CpBody::ConfigureRequest {
                options: parse_options(data)?,
            },
            code::CONFIGURE_ACK => CpBody::ConfigureAck {
                options: parse_options(data)?,
            },
            code::CONFIGURE_NAK => CpBody::ConfigureNak {
                options: parse_options(data)?,
            },
            code::CONFIGURE_REJECT => CpBody::ConfigureReject {
                options: parse_options(data)?,
            },
            code::TERMINATE_REQUEST => CpBody::TerminateRequest {
                data: data.to_vec(),
            },
            code::TERMINATE_ACK => CpBody::TerminateAck {
                data: data.to_vec(),
            },
            code::CODE_REJECT => CpBody::CodeReject {
                rejected: data.to_vec(),
            },
            code::PROTOCOL_REJECT => {
                check_len(O::NAME, data, field::REJECTED_PROTOCOL)?;
                CpBody::ProtocolReject {
                    protocol: be16(data)?,
                    info: data[field::REJECTED_PROTOCOL..].to_vec(),
                }
            }
            code::ECHO_REQUEST => {
                let (magic, data) = magic(data)?;
                CpBody::EchoRequest { magic, data }
            }
            code::ECHO_REPLY => {
                let (magic, data) = magic(data)?;
                CpBody::EchoReply { magic, data }
            }
            // code::DISCARD_REQUEST is the only one left.
            _ => {
                let (magic, data) = magic(data)?;
                CpBody::DiscardRequest { magic, data }
            }
        };
        Ok(CpRepr {
            identifier: packet.identifier(),
            body,
        })
    }

    /// The Code this packet is sent with.
    pub fn code(&self) -> u8 {
        match &self.body {
            CpBody::ConfigureRequest { .. } => code::CONFIGURE_REQUEST,
            CpBody::ConfigureAck { .. } => code::CONFIGURE_ACK,
            CpBody::ConfigureNak { .. } => code::CONFIGURE_NAK,
            CpBody::ConfigureReject { .. } => code::CONFIGURE_REJECT,
            CpBody::TerminateRequest { .. } => code::TERMINATE_REQUEST,
            CpBody::TerminateAck { .. } => code::TERMINATE_ACK,
            CpBody::CodeReject { .. } => code::CODE_REJECT,
            CpBody::ProtocolReject { .. } => code::PROTOCOL_REJECT,
            CpBody::EchoRequest { .. } => code::ECHO_REQUEST,
            CpBody::EchoReply { .. } => code::ECHO_REPLY,
            CpBody::DiscardRequest { .. } => code::DISCARD_REQUEST,
            CpBody::Unknown { code, .. } => *code,
        }
    }

    fn data_len(&self) -> usize {
        let opts = |o: &[O]| {
            o.iter()
                .map(O::emit_len)
                .fold(0usize, usize::saturating_add)
        };
        match &self.body {
            CpBody::ConfigureRequest { options }
            | CpBody::ConfigureAck { options }
            | CpBody::ConfigureNak { options }
            | CpBody::ConfigureReject { options } => opts(options),
            CpBody::TerminateRequest { data }
            | CpBody::TerminateAck { data }
            | CpBody::Unknown { data, .. } => data.len(),
            CpBody::CodeReject { rejected } => rejected.len(),
            CpBody::ProtocolReject { info, .. } => info.len() + field::REJECTED_PROTOCOL,
            CpBody::EchoRequest { data, .. }
            | CpBody::EchoReply { data, .. }
            | CpBody::DiscardRequest { data, .. } => data.len() + field::MAGIC,
        }
    }

    /// The length of the emitted packet (its Length field).
    pub fn emit_len(&self) -> usize {
        self.data_len().saturating_add(HEADER_LEN)
    }

    /// Emits the packet into the front of `buf`; returns its length. Refuses codes 8-11 for
    /// protocols other than LCP, an `Unknown` body with a defined code, and packets longer than
    /// the 16-bit Length field.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let code = self.code();
        let is_unknown = matches!(self.body, CpBody::Unknown { .. });
        if is_unknown == Self::is_known_code(code) {
            return Err(Error::Malformed {
                what: O::NAME,
                why: "code not defined for this protocol (or Unknown with a defined code)",
            });
        }
        let len = self.emit_len();
        let len16 = u16::try_from(len).map_err(|_| Error::Malformed {
            what: O::NAME,
            why: "longer than the 16-bit Length field",
        })?;
        check_room(O::NAME, buf, len)?;
        let mut p = CpPacket::new_unchecked(&mut buf[..len]);
        p.set_code(code);
        p.set_identifier(self.identifier);
        p.set_length(len16);
        let out = p.data_mut();
        match &self.body {
            CpBody::ConfigureRequest { options }
            | CpBody::ConfigureAck { options }
            | CpBody::ConfigureNak { options }
            | CpBody::ConfigureReject { options } => {
                let mut at = 0;
                for o in options {
                    at += o.emit(&mut out[at..])?;
                }
            }
            CpBody::TerminateRequest { data }
            | CpBody::TerminateAck { data }
            | CpBody::Unknown { data, .. } => out.copy_from_slice(data),
            CpBody::CodeReject { rejected } => out.copy_from_slice(rejected),
            CpBody::ProtocolReject { protocol, info } => {
                out[..field::REJECTED_PROTOCOL].copy_from_slice(&protocol.to_be_bytes());
                out[field::REJECTED_PROTOCOL..].copy_from_slice(info);
            }
            CpBody::EchoRequest { magic, data }
            | CpBody::EchoReply { magic, data }
            | CpBody::DiscardRequest { magic, data } => {
                out[..field::MAGIC].copy_from_slice(&magic.to_be_bytes());
                out[field::MAGIC..].copy_from_slice(data);
            }
        }
        Ok(len)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn view_and_padding() {
        // Terminate-Ack, id 7, Length 6, data "ok", then two bytes of padding.
        let b = [6, 7, 0, 6, b'o', b'k', 0xee, 0xee];
        let p = CpPacket::new_checked(&b[..]).expect("valid");
        assert_eq!((p.code(), p.identifier(), p.length()), (6, 7, 6));
        assert_eq!(p.data(), b"ok");
        assert_eq!(p.packet(), &b[..6]);
    }

    #[test]
    fn view_length_checks() {
        assert!(matches!(
            CpPacket::new_checked(&[1, 2, 0][..]),
            Err(Error::Truncated { .. })
        ));
        assert!(matches!(
            CpPacket::new_checked(&[1, 2, 0, 3][..]),
            Err(Error::Malformed { .. })
        ));
        assert!(matches!(
            CpPacket::new_checked(&[1, 2, 0, 9, 0][..]),
            Err(Error::Truncated { .. })
        ));
    }

    #[test]
    fn option_iterator() {
        let data = [1, 4, 5, 0xd4, 7, 2, 8, 2];
        let opts: Vec<_> = Options::new(&data).collect::<Result<_>>().expect("valid");
        assert_eq!(
            opts,
            vec![
                RawOption {
                    kind: 1,
                    data: &[5, 0xd4]
                },
                RawOption { kind: 7, data: &[] },
                RawOption { kind: 8, data: &[] },
            ]
        );
    }

    #[test]
    fn option_iterator_errors_stop() {
        let mut it = Options::new(&[1, 1, 7, 2]);
        assert!(matches!(it.next(), Some(Err(Error::Malformed { .. }))));
        assert!(it.next().is_none());
        let mut it = Options::new(&[7, 2, 1, 6, 0]);
        assert!(matches!(it.next(), Some(Ok(_))));
        assert!(matches!(it.next(), Some(Err(Error::Truncated { .. }))));
        assert!(it.next().is_none());
        let mut it = Options::new(&[7]);
        assert!(matches!(it.next(), Some(Err(Error::Truncated { .. }))));
        assert!(it.next().is_none());
        let mut it = Options::new(&[7, 0]);
        assert!(matches!(it.next(), Some(Err(Error::Malformed { .. }))));
    }

    proptest! {
        #[test]
        fn options_never_panic_and_account_for_every_byte(d in bytes(64)) {
            let mut used = 0usize;
            for o in Options::new(&d) {
                match o {
                    Ok(o) => used += o.data.len() + 2,
                    Err(_) => return Ok(()),
                }
            }
            prop_assert_eq!(used, d.len());
        }

        #[test]
        fn view_never_panics(d in bytes(32)) {
            if let Ok(p) = CpPacket::new_checked(&d[..]) {
                prop_assert_eq!(p.data().len() + HEADER_LEN, usize::from(p.length()));
                prop_assert!(p.packet().len() <= d.len());
                let _ = p.options().count();
            }
        }
    }

    /// Byte vectors for the generic proptests.
    pub(crate) fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(any::<u8>(), 0..max)
    }

    /// A strategy for every body kind with options from `opt`.
    pub(crate) fn body<O: CpOption + core::fmt::Debug + Clone + 'static>(
        opt: impl Strategy<Value = O> + Clone + 'static,
    ) -> BoxedStrategy<CpBody<O>> {
        let opts = || proptest::collection::vec(opt.clone(), 0..6);
        let mut cases = vec![
            opts()
                .prop_map(|options| CpBody::ConfigureRequest { options })
                .boxed(),
            opts()
                .prop_map(|options| CpBody::ConfigureAck { options })
                .boxed(),
            opts()
                .prop_map(|options| CpBody::ConfigureNak { options })
                .boxed(),
            opts()
                .prop_map(|options| CpBody::ConfigureReject { options })
                .boxed(),
            bytes(16)
                .prop_map(|data| CpBody::TerminateRequest { data })
                .boxed(),
            bytes(16)
                .prop_map(|data| CpBody::TerminateAck { data })
                .boxed(),
            bytes(16)
                .prop_map(|rejected| CpBody::CodeReject { rejected })
                .boxed(),
        ];
        if O::LCP_CODES {
            cases.extend([
                (any::<u16>(), bytes(16))
                    .prop_map(|(protocol, info)| CpBody::ProtocolReject { protocol, info })
                    .boxed(),
                (any::<u32>(), bytes(16))
                    .prop_map(|(magic, data)| CpBody::EchoRequest { magic, data })
                    .boxed(),
                (any::<u32>(), bytes(16))
                    .prop_map(|(magic, data)| CpBody::EchoReply { magic, data })
                    .boxed(),
                (any::<u32>(), bytes(16))
                    .prop_map(|(magic, data)| CpBody::DiscardRequest { magic, data })
                    .boxed(),
            ]);
        }
        let first_unknown = if O::LCP_CODES { 12u8 } else { 8 };
        cases.push(
            (first_unknown..=255u8, bytes(16))
                .prop_map(|(code, data)| CpBody::Unknown { code, data })
                .boxed(),
        );
        proptest::strategy::Union::new(cases).boxed()
    }

    /// Checks parse(emit(x)) == x and that emit_len is what emit writes.
    pub(crate) fn round_trip<O: CpOption + core::fmt::Debug + PartialEq>(
        r: &CpRepr<O>,
    ) -> core::result::Result<(), TestCaseError> {
        let mut buf = vec![0u8; r.emit_len() + 3];
        let n = r.emit(&mut buf).expect("valid repr");
        prop_assert_eq!(n, r.emit_len());
        let back = CpRepr::<O>::parse(&buf).expect("parses");
        prop_assert_eq!(&back, r);
        Ok(())
    }
}
