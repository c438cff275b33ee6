//! The RADIUS packet (RFC 2865 §3) and its attributes (RFC 2865 §5): a zero-copy view for
//! checking and reading a received datagram, and an owned representation to build and parse.
//!
//! Reading rules (RFC 2865 §3): a datagram shorter than its Length field is silently
//! discarded ([`Error::Truncated`]); octets past Length are padding and ignored; a Length
//! below 20 or above 4096 is [`Error::Malformed`]. An attribute whose Length is below 2 or
//! runs past the packet makes the whole packet malformed (RFC 2865 §5: the receiver cannot
//! find the next attribute).

use crate::error::{check_len, check_room, Error, Result};

/// Byte ranges of the packet header, named once.
mod field {
    pub type Field = core::ops::Range<usize>;
    pub const CODE: usize = 0;
    pub const IDENTIFIER: usize = 1;
    pub const LENGTH: Field = 2..4;
    pub const AUTHENTICATOR: Field = 4..20;
    /// Attribute Type and Length, then Value (RFC 2865 §5).
    pub const ATTR_TYPE: usize = 0;
    pub const ATTR_LENGTH: usize = 1;
    pub const ATTR_VALUE: usize = 2;
    /// Vendor-Id in a Vendor-Specific value, then Vendor type, Vendor length (RFC 2865 §5.26).
    pub const VSA_VENDOR: Field = 0..4;
    pub const VSA_TYPE: usize = 4;
    pub const VSA_LENGTH: usize = 5;
    pub const VSA_VALUE: usize = 6;
}

/// Length of the header: Code, Identifier, Length, Authenticator.
pub const HEADER_LEN: usize = 20;
/// The largest packet (RFC 2865 §3: "The maximum length is 4096").
pub const MAX_LEN: usize = 4096;
/// The largest attribute Value (the 8-bit Length counts Type and itself).
pub const MAX_VALUE_LEN: usize = 253;

// ---------------------------------------------------------------------------------------------
// Zero-copy view

/// A zero-copy view of a RADIUS packet.
#[derive(Debug, Clone, Copy)]
pub struct RadiusPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> RadiusPacket<T> {
    /// Wraps a buffer without checking it.
    pub const fn new_unchecked(buffer: T) -> Self {
        RadiusPacket { buffer }
    }

    /// Wraps a buffer after [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks the header, the Length field and every attribute's framing.
    pub fn check_len(&self) -> Result<()> {
        let buf = self.buffer.as_ref();
        check_len("RADIUS header", buf, HEADER_LEN)?;
        let len = usize::from(self.length());
        if !(HEADER_LEN..=MAX_LEN).contains(&len) {
            return Err(Error::Malformed {
                what: "RADIUS packet",
                why: "Length outside 20..=4096",
            });
        }
        check_len("RADIUS packet", buf, len)?;
        for a in self.attributes() {
            a?;
        }
        Ok(())
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

    /// Length.
    pub fn length(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::LENGTH];
        u16::from_be_bytes([b[0], b[1]])
    }

    /// The Request or Response Authenticator.
    pub fn authenticator(&self) -> [u8; 16] {
        let mut a = [0u8; 16];
        a.copy_from_slice(&self.buffer.as_ref()[field::AUTHENTICATOR]);
        a
    }

    /// The packet within Length (padding cut off). Call after `check_len`.
    pub fn bytes(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        &b[..usize::from(self.length()).min(b.len())]
    }

    /// The attributes in order, each as `(type, value)`; an item is an error where the framing
    /// breaks (and the iteration stops there).
    pub fn attributes(&self) -> Attributes<'_> {
        let b = self.bytes();
        Attributes {
            rest: b.get(HEADER_LEN..).unwrap_or(&[]),
            offset: HEADER_LEN,
        }
    }

    /// The first attribute of `typ`, if any (and if the framing up to it is sound).
    pub fn find(&self, typ: u8) -> Option<&[u8]> {
        self.attributes()
            .map_while(|a| a.ok())
            .find(|a| a.1 == typ)
            .map(|a| a.2)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> RadiusPacket<T> {
    /// Sets Code.
    pub fn set_code(&mut self, v: u8) {
        self.buffer.as_mut()[field::CODE] = v;
    }

    /// Sets Identifier.
    pub fn set_identifier(&mut self, v: u8) {
        self.buffer.as_mut()[field::IDENTIFIER] = v;
    }

    /// Sets Length.
    pub fn set_length(&mut self, v: u16) {
        self.buffer.as_mut()[field::LENGTH].copy_from_slice(&v.to_be_bytes());
    }

    /// Sets the Authenticator.
    pub fn set_authenticator(&mut self, v: &[u8; 16]) {
        self.buffer.as_mut()[field::AUTHENTICATOR].copy_from_slice(v);
    }

    /// The Value of the first attribute of `typ`, writable (to sign a Message-Authenticator
    /// in place).
    pub fn find_mut(&mut self, typ: u8) -> Option<&mut [u8]> {
        let (offset, len) = self
            .attributes()
            .map_while(|a| a.ok())
            .find(|a| a.1 == typ)
            .map(|a| (a.0, a.2.len()))?;
        let start = offset + field::ATTR_VALUE;
        Some(&mut self.buffer.as_mut()[start..start + len])
    }
}

/// The attributes of a [`RadiusPacket`]: `(offset in the packet, type, value)`.
#[derive(Debug, Clone)]
pub struct Attributes<'a> {
    rest: &'a [u8],
    offset: usize,
}

impl<'a> Iterator for Attributes<'a> {
    type Item = Result<(usize, u8, &'a [u8])>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let r = self.rest;
        if r.len() < field::ATTR_VALUE {
            self.rest = &[];
            return Some(Err(Error::Truncated {
                what: "RADIUS attribute header",
                need: 2,
                have: r.len(),
            }));
        }
        let len = usize::from(r[field::ATTR_LENGTH]);
        if len < field::ATTR_VALUE || len > r.len() {
            self.rest = &[];
            return Some(Err(Error::Malformed {
                what: "RADIUS attribute",
                why: "Length below 2 or past the end of the packet",
            }));
        }
        let item = (self.offset, r[field::ATTR_TYPE], &r[field::ATTR_VALUE..len]);
        self.rest = &r[len..];
        self.offset += len;
        Some(Ok(item))
    }
}

// ---------------------------------------------------------------------------------------------
// Owned representation

/// One attribute (RFC 2865 §5): Type and Value. Values are raw; the helpers build and read the
/// data types of RFC 2865 §5 (text/string, address, integer).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Attribute {
    /// Type.
    pub typ: u8,
    /// Value (at most [`MAX_VALUE_LEN`] octets).
    #[serde(serialize_with = "crate::ser::ser_hex")]
    pub value: Vec<u8>,
}

impl Attribute {
    /// An attribute with a raw value.
    pub fn new(typ: u8, value: impl Into<Vec<u8>>) -> Self {
        Attribute {
            typ,
            value: value.into(),
        }
    }

    /// An `integer` attribute (32 bits, network order).
    pub fn integer(typ: u8, v: u32) -> Self {
        Self::new(typ, v.to_be_bytes())
    }

    /// An `address` attribute.
    pub fn ipv4(typ: u8, v: core::net::Ipv4Addr) -> Self {
        Self::new(typ, v.octets())
    }

    /// A Vendor-Specific attribute (RFC 2865 §5.26) holding one vendor attribute.
    pub fn vsa(vendor: u32, vtype: u8, value: &[u8]) -> Self {
        let mut v = Vec::with_capacity(field::VSA_VALUE + value.len());
        v.extend_from_slice(&vendor.to_be_bytes());
        v.push(vtype);
        // A value too long for the vendor Length is caught by `Packet::emit` (the whole VSA
        // is then longer than 253).
        v.push(u8::try_from(value.len() + 2).unwrap_or(u8::MAX));
        v.extend_from_slice(value);
        Self::new(super::attr::VENDOR_SPECIFIC, v)
    }

    /// The value as an `integer`, if it is 4 octets.
    pub fn as_integer(&self) -> Option<u32> {
        as_integer(&self.value)
    }
}

/// A 4-octet `integer` value.
pub fn as_integer(v: &[u8]) -> Option<u32> {
    <[u8; 4]>::try_from(v).ok().map(u32::from_be_bytes)
}

/// A 4-octet `address` value.
pub fn as_ipv4(v: &[u8]) -> Option<core::net::Ipv4Addr> {
    <[u8; 4]>::try_from(v).ok().map(core::net::Ipv4Addr::from)
}

/// One vendor attribute inside a Vendor-Specific attribute (RFC 2865 §5.26: Vendor-Id, then
/// Vendor type, Vendor length, value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vsa<'a> {
    /// The vendor's SMI Private Enterprise Code.
    pub vendor: u32,
    /// Vendor type.
    pub vtype: u8,
    /// Value.
    pub value: &'a [u8],
}

impl<'a> Vsa<'a> {
    /// Reads the Value of a Vendor-Specific attribute holding one vendor attribute; `None`
    /// when it does not have that layout.
    pub fn parse(v: &'a [u8]) -> Option<Self> {
        let vendor = u32::from_be_bytes(v.get(field::VSA_VENDOR)?.try_into().ok()?);
        let vtype = *v.get(field::VSA_TYPE)?;
        let vlen = usize::from(*v.get(field::VSA_LENGTH)?);
        if vlen < 2 || field::VSA_LENGTH - 1 + vlen != v.len() {
            return None;
        }
        Some(Vsa {
            vendor,
            vtype,
            value: &v[field::VSA_VALUE..],
        })
    }
}

/// An owned RADIUS packet.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Packet {
    /// Code.
    pub code: u8,
    /// Identifier.
    pub identifier: u8,
    /// Authenticator as carried (the caller computes it, see [`super::auth`]).
    #[serde(serialize_with = "crate::ser::ser_hex")]
    pub authenticator: [u8; 16],
    /// Attributes in order.
    pub attributes: Vec<Attribute>,
}

impl Packet {
    /// Parses a datagram (checks as [`RadiusPacket::check_len`]).
    pub fn parse(buf: &[u8]) -> Result<Self> {
        let p = RadiusPacket::new_checked(buf)?;
        let mut attributes = Vec::new();
        for a in p.attributes() {
            let (_, typ, value) = a?;
            attributes.push(Attribute::new(typ, value));
        }
        Ok(Packet {
            code: p.code(),
            identifier: p.identifier(),
            authenticator: p.authenticator(),
            attributes,
        })
    }

    /// The length of the emitted packet.
    pub fn emit_len(&self) -> usize {
        HEADER_LEN
            + self
                .attributes
                .iter()
                .map(|a| field::ATTR_VALUE + a.value.len())
                .sum::<usize>()
    }

    /// Emits into the front of `buf`; returns the length. A value longer than 253 octets or a
    /// packet longer than 4096 is refused.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let len = self.emit_len();
        if len > MAX_LEN {
            return Err(Error::Malformed {
                what: "RADIUS packet",
                why: "longer than 4096 octets",
            });
        }
        check_room("RADIUS packet", buf, len)?;
        let mut at = HEADER_LEN;
        for a in &self.attributes {
            let alen =
                u8::try_from(field::ATTR_VALUE + a.value.len()).map_err(|_| Error::Malformed {
                    what: "RADIUS attribute",
                    why: "value longer than 253 octets",
                })?;
            buf[at + field::ATTR_TYPE] = a.typ;
            buf[at + field::ATTR_LENGTH] = alen;
            buf[at + field::ATTR_VALUE..at + usize::from(alen)].copy_from_slice(&a.value);
            at += usize::from(alen);
        }
        let mut p = RadiusPacket::new_unchecked(&mut buf[..len]);
        p.set_code(self.code);
        p.set_identifier(self.identifier);
        p.set_length(len as u16);
        p.set_authenticator(&self.authenticator);
        Ok(len)
    }

    /// The emitted packet as a new vector.
    pub fn to_vec(&self) -> Result<Vec<u8>> {
        let mut v = vec![0u8; self.emit_len().min(MAX_LEN)];
        let n = self.emit(&mut v)?;
        v.truncate(n);
        Ok(v)
    }

    /// The first attribute of `typ`.
    pub fn get(&self, typ: u8) -> Option<&[u8]> {
        self.attributes
            .iter()
            .find(|a| a.typ == typ)
            .map(|a| a.value.as_slice())
    }

    /// Every attribute of `typ`, in order.
    pub fn all(&self, typ: u8) -> impl Iterator<Item = &[u8]> {
        self.attributes
            .iter()
            .filter(move |a| a.typ == typ)
            .map(|a| a.value.as_slice())
    }

    /// The first `integer` attribute of `typ` (a value not 4 octets long is ignored).
    pub fn integer(&self, typ: u8) -> Option<u32> {
        self.all(typ).find_map(as_integer)
    }

    /// The first vendor attribute `vtype` of `vendor`.
    pub fn vendor(&self, vendor: u32, vtype: u8) -> Option<&[u8]> {
        self.all(super::attr::VENDOR_SPECIFIC)
            .filter_map(Vsa::parse)
            .find(|v| v.vendor == vendor && v.vtype == vtype)
            .map(|v| v.value)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::radius::attr;
    use proptest::prelude::*;

    /// RFC 2865 §7.1: the Access-Request and Access-Accept of the example, byte for byte.
    pub(crate) const RFC2865_7_1_REQUEST: [u8; 56] = [
        0x01, 0x00, 0x00, 0x38, 0x0f, 0x40, 0x3f, 0x94, 0x73, 0x97, 0x80, 0x57, 0xbd, 0x83, 0xd5,
        0xcb, 0x98, 0xf4, 0x22, 0x7a, 0x01, 0x06, 0x6e, 0x65, 0x6d, 0x6f, 0x02, 0x12, 0x0d, 0xbe,
        0x70, 0x8d, 0x93, 0xd4, 0x13, 0xce, 0x31, 0x96, 0xe4, 0x3f, 0x78, 0x2a, 0x0a, 0xee, 0x04,
        0x06, 0xc0, 0xa8, 0x01, 0x10, 0x05, 0x06, 0x00, 0x00, 0x00, 0x03,
    ];

    #[test]
    fn rfc2865_example_parses_and_emits_byte_for_byte() {
        let p = Packet::parse(&RFC2865_7_1_REQUEST).expect("parse");
        assert_eq!(p.code, crate::radius::code::ACCESS_REQUEST);
        assert_eq!(p.identifier, 0);
        assert_eq!(p.get(attr::USER_NAME), Some(&b"nemo"[..]));
        assert_eq!(p.get(attr::USER_PASSWORD).map(<[u8]>::len), Some(16));
        assert_eq!(
            p.get(attr::NAS_IP_ADDRESS).and_then(as_ipv4),
            Some(core::net::Ipv4Addr::new(192, 168, 1, 16))
        );
        assert_eq!(p.integer(attr::NAS_PORT), Some(3));
        assert_eq!(p.to_vec().expect("emit"), RFC2865_7_1_REQUEST);
        let v = RadiusPacket::new_checked(&RFC2865_7_1_REQUEST[..]).expect("view");
        assert_eq!(v.find(attr::USER_NAME), Some(&b"nemo"[..]));
    }

    #[test]
    fn padding_is_ignored_and_truncation_refused() {
        let mut padded = RFC2865_7_1_REQUEST.to_vec();
        padded.extend_from_slice(&[0xff; 7]);
        assert_eq!(
            Packet::parse(&padded).expect("padded"),
            Packet::parse(&RFC2865_7_1_REQUEST).expect("plain")
        );
        assert!(matches!(
            Packet::parse(&RFC2865_7_1_REQUEST[..55]),
            Err(Error::Truncated { .. })
        ));
        assert!(Packet::parse(&RFC2865_7_1_REQUEST[..19]).is_err());
        // An attribute Length of 1, and one past the end.
        let mut bad = RFC2865_7_1_REQUEST;
        bad[21] = 1;
        assert!(matches!(Packet::parse(&bad), Err(Error::Malformed { .. })));
        bad[21] = 60;
        assert!(matches!(Packet::parse(&bad), Err(Error::Malformed { .. })));
        // Length below the header.
        let mut short = RFC2865_7_1_REQUEST;
        short[3] = 19;
        assert!(matches!(
            Packet::parse(&short),
            Err(Error::Malformed { .. })
        ));
    }

    #[test]
    fn vendor_attributes_round_trip() {
        let p = Packet {
            code: 1,
            identifier: 9,
            authenticator: [7; 16],
            attributes: vec![
                Attribute::vsa(311, 11, &[1; 16]),
                Attribute::new(attr::VENDOR_SPECIFIC, vec![0, 0, 1, 55, 1]),
            ],
        };
        let back = Packet::parse(&p.to_vec().expect("emit")).expect("parse");
        assert_eq!(back, p);
        assert_eq!(back.vendor(311, 11), Some(&[1u8; 16][..]));
        assert_eq!(back.vendor(311, 12), None);
        // The malformed VSA is kept raw but not read as a vendor attribute.
        assert_eq!(back.all(attr::VENDOR_SPECIFIC).count(), 2);
    }

    #[test]
    fn emit_refuses_oversized_values() {
        let p = Packet {
            code: 1,
            identifier: 0,
            authenticator: [0; 16],
            attributes: vec![Attribute::new(attr::CLASS, vec![0; 254])],
        };
        assert!(p.to_vec().is_err());
        let p = Packet {
            attributes: vec![Attribute::new(attr::CLASS, vec![0; 253]); 17],
            ..p
        };
        assert!(p.to_vec().is_err(), "past 4096 octets");
    }

    fn arb_packet() -> impl Strategy<Value = Packet> {
        (
            any::<u8>(),
            any::<u8>(),
            any::<[u8; 16]>(),
            proptest::collection::vec(
                (
                    any::<u8>(),
                    proptest::collection::vec(any::<u8>(), 0..=MAX_VALUE_LEN),
                ),
                0..12,
            ),
        )
            .prop_map(|(code, identifier, authenticator, attrs)| Packet {
                code,
                identifier,
                authenticator,
                attributes: attrs
                    .into_iter()
                    .map(|(t, v)| Attribute::new(t, v))
                    .collect(),
            })
    }

    proptest! {
        #[test]
        fn emit_then_parse_is_identity(p in arb_packet()) {
            let bytes = p.to_vec().expect("fits: at most 12 * 255 + 20 octets");
            prop_assert_eq!(bytes.len(), p.emit_len());
            prop_assert_eq!(Packet::parse(&bytes).expect("parse"), p);
        }

        #[test]
        fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..300)) {
            crate::selfcheck::radius_packet(&b);
            let _ = Packet::parse(&b);
            if let Ok(v) = RadiusPacket::new_checked(&b[..]) {
                prop_assert!(usize::from(v.length()) <= b.len());
                let _ = v.attributes().count();
            }
        }
    }
}
