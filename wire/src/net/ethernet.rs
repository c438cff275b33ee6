//! Ethernet II frames with 0, 1 or 2 VLAN tags (IEEE 802.1Q TPID 0x8100, 802.1ad TPID 0x88a8).
//!
//! ```text
//! | dst (6) | src (6) | [TPID (2) | TCI (2)]{0,2} | EtherType (2) | payload ...
//! ```
//! A frame whose EtherType after two tags is still a TPID (three or more tags) is unsupported.
//! The frame check sequence is not part of the buffer (NICs strip it).

use crate::error::{check_len, check_room, Error, Result};

mod field {
    pub type Field = core::ops::Range<usize>;
    pub const DST: Field = 0..6;
    pub const SRC: Field = 6..12;
    /// The first EtherType/TPID word.
    pub const TYPE: usize = 12;
    /// Length of the untagged header.
    pub const HEADER_LEN: usize = 14;
    /// Length of one VLAN tag (TPID + TCI).
    pub const TAG_LEN: usize = 4;
}

/// EtherType and TPID values.
pub mod ethertype {
    /// IPv4 (RFC 894).
    pub const IPV4: u16 = 0x0800;
    /// IPv6 (RFC 2464).
    pub const IPV6: u16 = 0x86dd;
    /// IEEE 802.1Q customer VLAN tag.
    pub const VLAN: u16 = 0x8100;
    /// IEEE 802.1ad service VLAN tag (QinQ outer tag).
    pub const QINQ: u16 = 0x88a8;

    /// Whether a value is a VLAN tag protocol identifier.
    pub const fn is_tpid(v: u16) -> bool {
        v == VLAN || v == QINQ
    }
}

/// The untagged Ethernet header length.
pub const HEADER_LEN: usize = field::HEADER_LEN;
/// The length of one VLAN tag.
pub const TAG_LEN: usize = field::TAG_LEN;
/// The most VLAN tags this implementation parses or emits.
pub const MAX_TAGS: usize = 2;

/// A 48-bit MAC address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// The broadcast address.
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);
}

impl core::fmt::Display for MacAddr {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl serde::Serialize for MacAddr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// One VLAN tag: its TPID (0x8100 or 0x88a8) and TCI (PCP 3 bits, DEI 1 bit, VID 12 bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize)]
pub struct VlanTag {
    /// Tag protocol identifier.
    pub tpid: u16,
    /// Tag control information.
    pub tci: u16,
}

impl VlanTag {
    /// An 802.1Q tag with priority 0 for a VLAN ID.
    pub const fn dot1q(vid: u16) -> Self {
        VlanTag {
            tpid: ethertype::VLAN,
            tci: vid & 0x0fff,
        }
    }
    /// An 802.1ad (service) tag with priority 0 for a VLAN ID.
    pub const fn dot1ad(vid: u16) -> Self {
        VlanTag {
            tpid: ethertype::QINQ,
            tci: vid & 0x0fff,
        }
    }
    /// The 12-bit VLAN identifier.
    pub const fn vid(&self) -> u16 {
        self.tci & 0x0fff
    }
}

/// Zero, one or two VLAN tags, outermost first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Vlans {
    tags: [VlanTag; MAX_TAGS],
    len: u8,
}

impl Vlans {
    /// No tags.
    pub const NONE: Vlans = Vlans {
        tags: [VlanTag { tpid: 0, tci: 0 }; MAX_TAGS],
        len: 0,
    };

    /// Tags from a slice, outermost first: at most two, each with a VLAN TPID.
    pub fn new(tags: &[VlanTag]) -> Result<Self> {
        if tags.len() > MAX_TAGS {
            return Err(Error::Unsupported {
                what: "number of VLAN tags",
                value: u32::try_from(tags.len()).unwrap_or(u32::MAX),
            });
        }
        let mut v = Vlans::NONE;
        for (i, t) in tags.iter().enumerate() {
            if !ethertype::is_tpid(t.tpid) {
                return Err(Error::Malformed {
                    what: "VLAN tag",
                    why: "TPID is neither 0x8100 nor 0x88a8",
                });
            }
            v.tags[i] = *t;
        }
        v.len = tags.len() as u8;
        Ok(v)
    }

    /// The tags, outermost first.
    pub fn as_slice(&self) -> &[VlanTag] {
        &self.tags[..usize::from(self.len).min(MAX_TAGS)]
    }
    /// How many tags.
    pub fn len(&self) -> usize {
        self.as_slice().len()
    }
    /// Whether there is no tag.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl serde::Serialize for Vlans {
    fn serialize<S: serde::Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        s.collect_seq(self.as_slice())
    }
}

/// A zero-copy view of an Ethernet frame.
#[derive(Debug, Clone, Copy)]
pub struct EthernetFrame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    /// Wraps a buffer without checking it.
    pub const fn new_unchecked(buffer: T) -> Self {
        EthernetFrame { buffer }
    }

    /// Wraps a buffer after [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Self> {
        let f = Self::new_unchecked(buffer);
        f.check_len()?;
        Ok(f)
    }

    /// Checks that the header and every tag fit, and that there are at most two tags.
    pub fn check_len(&self) -> Result<()> {
        let buf = self.buffer.as_ref();
        check_len("Ethernet header", buf, field::HEADER_LEN)?;
        let mut at = field::TYPE;
        for _ in 0..MAX_TAGS {
            if !ethertype::is_tpid(u16::from_be_bytes([buf[at], buf[at + 1]])) {
                return Ok(());
            }
            at += field::TAG_LEN;
            check_len("Ethernet VLAN tag", buf, at + 2)?;
        }
        let t = u16::from_be_bytes([buf[at], buf[at + 1]]);
        if ethertype::is_tpid(t) {
            return Err(Error::Unsupported {
                what: "number of VLAN tags",
                value: 3,
            });
        }
        Ok(())
    }

    /// Unwraps the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Destination address.
    pub fn dst(&self) -> MacAddr {
        let mut a = [0; 6];
        a.copy_from_slice(&self.buffer.as_ref()[field::DST]);
        MacAddr(a)
    }
    /// Source address.
    pub fn src(&self) -> MacAddr {
        let mut a = [0; 6];
        a.copy_from_slice(&self.buffer.as_ref()[field::SRC]);
        MacAddr(a)
    }

    fn word(&self, at: usize) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_be_bytes([b[at], b[at + 1]])
    }

    /// The number of VLAN tags (0..=2).
    pub fn tag_count(&self) -> usize {
        let mut n = 0;
        while n < MAX_TAGS && ethertype::is_tpid(self.word(field::TYPE + n * field::TAG_LEN)) {
            n += 1;
        }
        n
    }

    /// The VLAN tags, outermost first.
    pub fn vlans(&self) -> Vlans {
        let mut v = Vlans::NONE;
        let n = self.tag_count();
        for i in 0..n {
            let at = field::TYPE + i * field::TAG_LEN;
            v.tags[i] = VlanTag {
                tpid: self.word(at),
                tci: self.word(at + 2),
            };
        }
        v.len = n as u8;
        v
    }

    /// The EtherType after the tags.
    pub fn ethertype(&self) -> u16 {
        self.word(field::TYPE + self.tag_count() * field::TAG_LEN)
    }

    /// Header length including tags: where the payload starts.
    pub fn header_len(&self) -> usize {
        field::HEADER_LEN + self.tag_count() * field::TAG_LEN
    }

    /// The payload.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EthernetFrame<T> {
    /// Sets the destination address.
    pub fn set_dst(&mut self, a: MacAddr) {
        self.buffer.as_mut()[field::DST].copy_from_slice(&a.0);
    }
    /// Sets the source address.
    pub fn set_src(&mut self, a: MacAddr) {
        self.buffer.as_mut()[field::SRC].copy_from_slice(&a.0);
    }
    /// The payload, mutable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let at = self.header_len();
        &mut self.buffer.as_mut()[at..]
    }
}

/// An owned Ethernet header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub struct EthernetRepr {
    /// Destination address.
    pub dst: MacAddr,
    /// Source address.
    pub src: MacAddr,
    /// VLAN tags, outermost first.
    pub vlans: Vlans,
    /// The EtherType after the tags.
    pub ethertype: u16,
}

impl EthernetRepr {
    /// Parses a checked frame.
    pub fn parse<T: AsRef<[u8]>>(frame: &EthernetFrame<T>) -> Result<Self> {
        frame.check_len()?;
        Ok(EthernetRepr {
            dst: frame.dst(),
            src: frame.src(),
            vlans: frame.vlans(),
            ethertype: frame.ethertype(),
        })
    }

    /// The emitted header length.
    pub fn header_len(&self) -> usize {
        field::HEADER_LEN + self.vlans.len() * field::TAG_LEN
    }

    /// Emits the header into the front of `buf` and returns its length. An EtherType that is a
    /// TPID is refused (it would read back as one more tag).
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let hlen = self.header_len();
        check_room("Ethernet header", buf, hlen)?;
        if ethertype::is_tpid(self.ethertype) {
            return Err(Error::Malformed {
                what: "Ethernet header",
                why: "EtherType is a VLAN TPID",
            });
        }
        buf[field::DST].copy_from_slice(&self.dst.0);
        buf[field::SRC].copy_from_slice(&self.src.0);
        let mut at = field::TYPE;
        for t in self.vlans.as_slice() {
            buf[at..at + 2].copy_from_slice(&t.tpid.to_be_bytes());
            buf[at + 2..at + 4].copy_from_slice(&t.tci.to_be_bytes());
            at += field::TAG_LEN;
        }
        buf[at..at + 2].copy_from_slice(&self.ethertype.to_be_bytes());
        Ok(hlen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn untagged() {
        let f = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0x08, 0x00, 0x45, 0x00];
        let f = EthernetFrame::new_checked(&f[..]).expect("valid");
        assert_eq!(f.ethertype(), ethertype::IPV4);
        assert_eq!(f.header_len(), 14);
        assert_eq!(f.payload(), &[0x45, 0x00]);
        assert_eq!(f.dst().to_string(), "00:01:02:03:04:05");
    }

    #[test]
    fn qinq() {
        let f = [
            0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0x88, 0xa8, 0x00, 0x64, 0x81, 0x00, 0x20, 0x0a,
            0x86, 0xdd, 0x60,
        ];
        let r = EthernetRepr::parse(&EthernetFrame::new_checked(&f[..]).expect("valid"))
            .expect("valid");
        assert_eq!(
            r.vlans.as_slice(),
            &[
                VlanTag::dot1ad(100),
                VlanTag {
                    tpid: 0x8100,
                    tci: 0x200a
                }
            ]
        );
        assert_eq!(r.ethertype, ethertype::IPV6);
        let mut out = [0u8; 22];
        assert_eq!(r.emit(&mut out).expect("fits"), 22);
        assert_eq!(&out[..], &f[..22]);
    }

    #[test]
    fn three_tags_unsupported() {
        let mut f = vec![0u8; 12];
        for _ in 0..3 {
            f.extend_from_slice(&[0x81, 0x00, 0, 1]);
        }
        f.extend_from_slice(&[0x08, 0x00]);
        assert!(matches!(
            EthernetFrame::new_checked(&f[..]),
            Err(Error::Unsupported { .. })
        ));
    }

    fn arb_tag() -> impl Strategy<Value = VlanTag> {
        (prop_oneof![Just(0x8100u16), Just(0x88a8u16)], any::<u16>())
            .prop_map(|(tpid, tci)| VlanTag { tpid, tci })
    }

    proptest! {
        #[test]
        fn round_trip(dst in any::<[u8; 6]>(), src in any::<[u8; 6]>(),
                      tags in proptest::collection::vec(arb_tag(), 0..=2),
                      et in any::<u16>().prop_filter("not a TPID", |t| !ethertype::is_tpid(*t))) {
            let r = EthernetRepr { dst: MacAddr(dst), src: MacAddr(src),
                                   vlans: Vlans::new(&tags).expect("<=2"), ethertype: et };
            let mut buf = [0u8; 22];
            let n = r.emit(&mut buf).expect("fits");
            let f = EthernetFrame::new_checked(&buf[..n]).expect("valid");
            prop_assert_eq!(EthernetRepr::parse(&f).expect("valid"), r);
        }

        #[test]
        fn never_panics(b in proptest::collection::vec(any::<u8>(), 0..40)) {
            if let Ok(f) = EthernetFrame::new_checked(&b[..]) {
                let _ = EthernetRepr::parse(&f);
                let _ = f.payload();
            }
        }
    }
}
