//! Reading and writing packet captures: classic libpcap files (both byte orders, micro- and
//! nanosecond timestamps) and pcapng (Section Header, Interface Description, Enhanced and Simple
//! Packet Blocks). Enough for `l2xdp-decode` to read what tcpdump and Wireshark save, and for the
//! tests to write what tshark reads.

use std::io::{self, Read, Write};

/// Link-layer types this crate decodes (the `LINKTYPE_*` values of the pcap format).
pub mod linktype {
    /// Ethernet II.
    pub const ETHERNET: u32 = 1;
    /// Raw IPv4 or IPv6, no link header.
    pub const RAW: u32 = 101;
    /// Linux "cooked" capture v1 (`tcpdump -i any`).
    pub const LINUX_SLL: u32 = 113;
    /// Linux "cooked" capture v2.
    pub const LINUX_SLL2: u32 = 276;
}

/// Why a capture could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PcapError {
    /// Reading or writing the file failed.
    #[error("capture I/O: {0}")]
    Io(#[from] io::Error),
    /// The file is not a capture this reader knows.
    #[error("not a pcap or pcapng file (magic {0:#010x})")]
    BadMagic(u32),
    /// A record or block is cut short or inconsistent.
    #[error("corrupt capture at byte {offset}: {why}")]
    Corrupt { offset: u64, why: &'static str },
}

/// One captured packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Capture time in nanoseconds since the Unix epoch.
    pub timestamp_ns: u64,
    /// The link-layer type of the interface it was captured on.
    pub linktype: u32,
    /// The captured bytes (possibly fewer than were on the wire).
    pub data: Vec<u8>,
    /// The length the packet had on the wire.
    pub orig_len: u32,
}

const PCAP_MAGIC_US: u32 = 0xa1b2_c3d4;
const PCAP_MAGIC_NS: u32 = 0xa1b2_3c4d;
const PCAPNG_SHB: u32 = 0x0a0d_0d0a;
/// Largest record this reader accepts; larger ones mean a corrupt file, not a jumbo frame.
const MAX_RECORD: u32 = 256 * 1024;

/// Reads every record of a classic pcap or a pcapng capture.
pub fn read_all<R: Read>(mut input: R) -> Result<Vec<Record>, PcapError> {
    let mut bytes = Vec::new();
    input.read_to_end(&mut bytes)?;
    parse(&bytes)
}

/// Parses a capture held in memory.
pub fn parse(bytes: &[u8]) -> Result<Vec<Record>, PcapError> {
    let magic = bytes
        .get(..4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or(PcapError::Corrupt {
            offset: 0,
            why: "file shorter than a magic number",
        })?;
    if magic == PCAPNG_SHB {
        return parse_pcapng(bytes);
    }
    let (le, nanos) = match magic {
        PCAP_MAGIC_US => (true, false),
        PCAP_MAGIC_NS => (true, true),
        m if m.swap_bytes() == PCAP_MAGIC_US => (false, false),
        m if m.swap_bytes() == PCAP_MAGIC_NS => (false, true),
        m => return Err(PcapError::BadMagic(m)),
    };
    let cur = Cursor { bytes, le };
    let linktype = cur.u32(20).ok_or(PcapError::Corrupt {
        offset: 0,
        why: "truncated global header",
    })? & 0x0fff_ffff;
    let mut at = 24usize;
    let mut out = Vec::new();
    while at < bytes.len() {
        let corrupt = |why| PcapError::Corrupt {
            offset: at as u64,
            why,
        };
        let (sec, frac, incl, orig) = match (
            cur.u32(at),
            cur.u32(at + 4),
            cur.u32(at + 8),
            cur.u32(at + 12),
        ) {
            (Some(a), Some(b), Some(c), Some(d)) => (a, b, c, d),
            _ => return Err(corrupt("truncated record header")),
        };
        if incl > MAX_RECORD {
            return Err(corrupt("record length over 256 KiB"));
        }
        let start = at + 16;
        let data = bytes
            .get(start..start + incl as usize)
            .ok_or(corrupt("truncated record data"))?;
        let frac_ns = if nanos {
            u64::from(frac)
        } else {
            u64::from(frac) * 1000
        };
        out.push(Record {
            timestamp_ns: u64::from(sec) * 1_000_000_000 + frac_ns,
            linktype,
            data: data.to_vec(),
            orig_len: orig,
        });
        at = start + incl as usize;
    }
    Ok(out)
}

struct Cursor<'a> {
    bytes: &'a [u8],
    le: bool,
}

impl Cursor<'_> {
    fn u16(&self, at: usize) -> Option<u16> {
        let b = self.bytes.get(at..at + 2)?;
        let a = [b[0], b[1]];
        Some(if self.le {
            u16::from_le_bytes(a)
        } else {
            u16::from_be_bytes(a)
        })
    }
    fn u32(&self, at: usize) -> Option<u32> {
        let b = self.bytes.get(at..at + 4)?;
        let a = [b[0], b[1], b[2], b[3]];
        Some(if self.le {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        })
    }
}

/// pcapng: blocks of (type, total length, body, total length); byte order from each Section
/// Header Block's byte-order magic.
fn parse_pcapng(bytes: &[u8]) -> Result<Vec<Record>, PcapError> {
    const IDB: u32 = 1;
    const SPB: u32 = 3;
    const EPB: u32 = 6;
    let mut cur = Cursor { bytes, le: true };
    // Per section: (linktype, timestamp units per second) of each interface.
    let mut interfaces: Vec<(u32, u64)> = Vec::new();
    let mut out = Vec::new();
    let mut at = 0usize;
    while at < bytes.len() {
        let corrupt = |why| PcapError::Corrupt {
            offset: at as u64,
            why,
        };
        let block_type = bytes
            .get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or(corrupt("truncated block header"))?;
        if block_type == PCAPNG_SHB {
            let bom = bytes
                .get(at + 8..at + 12)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .ok_or(corrupt("truncated section header"))?;
            cur.le = match bom {
                0x1a2b_3c4d => true,
                0x4d3c_2b1a => false,
                _ => return Err(corrupt("bad byte-order magic")),
            };
            interfaces.clear();
        }
        let block_type = cur.u32(at).ok_or(corrupt("truncated block header"))?;
        let len = cur.u32(at + 4).ok_or(corrupt("truncated block header"))? as usize;
        if len < 12 || !len.is_multiple_of(4) || at + len > bytes.len() {
            return Err(corrupt("bad block length"));
        }
        let body = at + 8;
        match block_type {
            IDB => {
                let linktype = u32::from(cur.u16(body).ok_or(corrupt("truncated IDB"))?);
                let resolution = idb_resolution(&cur, body + 8, at + len - 4);
                interfaces.push((linktype, resolution));
            }
            EPB => {
                let iface = cur.u32(body).ok_or(corrupt("truncated EPB"))? as usize;
                let hi = u64::from(cur.u32(body + 4).ok_or(corrupt("truncated EPB"))?);
                let lo = u64::from(cur.u32(body + 8).ok_or(corrupt("truncated EPB"))?);
                let incl = cur.u32(body + 12).ok_or(corrupt("truncated EPB"))?;
                let orig = cur.u32(body + 16).ok_or(corrupt("truncated EPB"))?;
                let &(linktype, per_sec) = interfaces
                    .get(iface)
                    .ok_or(corrupt("packet on an undeclared interface"))?;
                let start = body + 20;
                let data = bytes
                    .get(start..start + incl as usize)
                    .filter(|_| start + incl as usize <= at + len - 4)
                    .ok_or(corrupt("truncated EPB data"))?;
                let ticks = (hi << 32) | lo;
                out.push(Record {
                    timestamp_ns: ticks_to_ns(ticks, per_sec),
                    linktype,
                    data: data.to_vec(),
                    orig_len: orig,
                });
            }
            SPB => {
                let &(linktype, _) = interfaces
                    .first()
                    .ok_or(corrupt("packet on an undeclared interface"))?;
                let orig = cur.u32(body).ok_or(corrupt("truncated SPB"))?;
                let avail = len - 16;
                let incl = (orig as usize).min(avail);
                let data = &bytes[body + 4..body + 4 + incl];
                out.push(Record {
                    timestamp_ns: 0,
                    linktype,
                    data: data.to_vec(),
                    orig_len: orig,
                });
            }
            _ => {}
        }
        at += len;
    }
    Ok(out)
}

/// The `if_tsresol` option of an Interface Description Block (default: microseconds).
fn idb_resolution(cur: &Cursor<'_>, mut at: usize, end: usize) -> u64 {
    const IF_TSRESOL: u16 = 9;
    while at + 4 <= end {
        let (Some(code), Some(len)) = (cur.u16(at), cur.u16(at + 2)) else {
            break;
        };
        if code == 0 {
            break;
        }
        if code == IF_TSRESOL && len >= 1 {
            if let Some(&v) = cur.bytes.get(at + 4) {
                let exp = u32::from(v & 0x7f);
                return if v & 0x80 != 0 {
                    2u64.checked_pow(exp).unwrap_or(1_000_000)
                } else {
                    10u64.checked_pow(exp).unwrap_or(1_000_000)
                };
            }
        }
        at += 4 + usize::from(len).div_ceil(4) * 4;
    }
    1_000_000
}

fn ticks_to_ns(ticks: u64, per_sec: u64) -> u64 {
    if per_sec == 0 {
        return 0;
    }
    let secs = ticks / per_sec;
    let rem = ticks % per_sec;
    secs.saturating_mul(1_000_000_000)
        .saturating_add((u128::from(rem) * 1_000_000_000 / u128::from(per_sec)) as u64)
}

/// Writes a classic pcap file (little-endian, nanosecond timestamps).
pub struct Writer<W: Write> {
    out: W,
}

impl<W: Write> Writer<W> {
    /// Writes the global header for `linktype` (see [`linktype`]).
    pub fn new(mut out: W, linktype: u32) -> io::Result<Self> {
        let mut h = [0u8; 24];
        h[0..4].copy_from_slice(&PCAP_MAGIC_NS.to_le_bytes());
        h[4..6].copy_from_slice(&2u16.to_le_bytes());
        h[6..8].copy_from_slice(&4u16.to_le_bytes());
        h[16..20].copy_from_slice(&65535u32.to_le_bytes());
        h[20..24].copy_from_slice(&linktype.to_le_bytes());
        out.write_all(&h)?;
        Ok(Writer { out })
    }

    /// Appends one packet captured whole.
    pub fn write(&mut self, timestamp_ns: u64, data: &[u8]) -> io::Result<()> {
        let len = u32::try_from(data.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "packet over 4 GiB"))?;
        let sec = u32::try_from(timestamp_ns / 1_000_000_000).unwrap_or(u32::MAX);
        let ns = (timestamp_ns % 1_000_000_000) as u32;
        let mut h = [0u8; 16];
        h[0..4].copy_from_slice(&sec.to_le_bytes());
        h[4..8].copy_from_slice(&ns.to_le_bytes());
        h[8..12].copy_from_slice(&len.to_le_bytes());
        h[12..16].copy_from_slice(&len.to_le_bytes());
        self.out.write_all(&h)?;
        self.out.write_all(data)
    }

    /// Flushes and returns the underlying writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classic_round_trip() {
        let mut w = Writer::new(Vec::new(), linktype::ETHERNET).expect("vec");
        w.write(1_500_000_123, &[1, 2, 3]).expect("vec");
        w.write(2_000_000_000, &[4; 60]).expect("vec");
        let bytes = w.finish().expect("vec");
        let recs = parse(&bytes).expect("valid");
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].timestamp_ns, 1_500_000_123);
        assert_eq!(recs[0].data, vec![1, 2, 3]);
        assert_eq!(recs[1].data.len(), 60);
        assert_eq!(recs[1].linktype, linktype::ETHERNET);
    }

    /// A big-endian microsecond pcap header and one 4-byte record, as old tcpdump wrote them.
    #[test]
    fn classic_big_endian_microseconds() {
        let mut b = vec![
            0xa1, 0xb2, 0xc3, 0xd4, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0,
            101,
        ];
        b.extend_from_slice(&[
            0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 4, 0, 0, 0, 4, 0x45, 0, 0, 4,
        ]);
        let recs = parse(&b).expect("valid");
        assert_eq!(recs[0].linktype, linktype::RAW);
        assert_eq!(recs[0].timestamp_ns, 1_000_002_000);
        assert_eq!(recs[0].data, vec![0x45, 0, 0, 4]);
    }

    /// A minimal little-endian pcapng: SHB, IDB (Ethernet, nanosecond resolution), one EPB.
    #[test]
    fn pcapng_enhanced_packet() {
        let mut b = Vec::new();
        // SHB: type, len 28, BOM, v1.0, section length -1, len.
        b.extend_from_slice(&0x0a0d_0d0au32.to_le_bytes());
        b.extend_from_slice(&28u32.to_le_bytes());
        b.extend_from_slice(&0x1a2b_3c4du32.to_le_bytes());
        b.extend_from_slice(&[1, 0, 0, 0]);
        b.extend_from_slice(&u64::MAX.to_le_bytes());
        b.extend_from_slice(&28u32.to_le_bytes());
        // IDB with if_tsresol = 9 and opt_endofopt: 20 + 8 + 4 = 32 bytes.
        b.extend_from_slice(&1u32.to_le_bytes());
        b.extend_from_slice(&32u32.to_le_bytes());
        b.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 0]);
        b.extend_from_slice(&[9, 0, 1, 0, 9, 0, 0, 0]);
        b.extend_from_slice(&[0, 0, 0, 0]);
        b.extend_from_slice(&32u32.to_le_bytes());
        // EPB with 3 bytes of data padded to 4: 32 + 4 = 36 bytes.
        b.extend_from_slice(&6u32.to_le_bytes());
        b.extend_from_slice(&36u32.to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
        b.extend_from_slice(&1_000_000_007u32.to_le_bytes());
        b.extend_from_slice(&3u32.to_le_bytes());
        b.extend_from_slice(&3u32.to_le_bytes());
        b.extend_from_slice(&[7, 8, 9, 0]);
        b.extend_from_slice(&36u32.to_le_bytes());
        let recs = parse(&b).expect("valid");
        assert_eq!(recs.len(), 1);
        assert_eq!(recs[0].linktype, linktype::ETHERNET);
        assert_eq!(recs[0].timestamp_ns, 1_000_000_007);
        assert_eq!(recs[0].data, vec![7, 8, 9]);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(matches!(parse(b"hello world"), Err(PcapError::BadMagic(_))));
        assert!(parse(&[0xd4, 0xc3, 0xb2, 0xa1, 0, 0]).is_err());
        let mut w = Writer::new(Vec::new(), 1).expect("vec");
        w.write(0, &[1; 10]).expect("vec");
        let mut bytes = w.finish().expect("vec");
        bytes.truncate(bytes.len() - 3);
        assert!(matches!(parse(&bytes), Err(PcapError::Corrupt { .. })));
    }
}
