//! The Internet checksum (RFC 1071): the 16-bit ones-complement of the ones-complement sum.
//!
//! Sums are kept as folded 16-bit values (`u16`, not complemented) so that pieces can be combined
//! with [`combine`]; the checksum field receives `!sum`. RFC 1624 gives the incremental update
//! used when one 16-bit word of a covered region changes ([`update_word`]).

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Folds a 32-or-more-bit accumulator into 16 bits with end-around carry (RFC 1071 §4.1).
pub const fn fold(mut acc: u64) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// The ones-complement sum of `data` taken as big-endian 16-bit words; an odd last byte is padded
/// with a zero byte on the right (RFC 1071 §4.1). Returned folded, not complemented.
pub fn data(data: &[u8]) -> u16 {
    let mut acc: u64 = 0;
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc += u64::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        acc += u64::from(u16::from_be_bytes([*last, 0]));
    }
    fold(acc)
}

/// The ones-complement sum of several partial sums.
pub fn combine(sums: &[u16]) -> u16 {
    fold(sums.iter().map(|&s| u64::from(s)).sum())
}

/// The sum of the IPv4 pseudo-header (RFC 768): source, destination, zero, protocol, length.
pub fn pseudo_header_v4(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, length: u32) -> u16 {
    let mut acc = u64::from(data(&src.octets())) + u64::from(data(&dst.octets()));
    acc += u64::from(protocol);
    acc += u64::from(length >> 16) + u64::from(length & 0xffff);
    fold(acc)
}

/// The sum of the IPv6 pseudo-header (RFC 8200 §8.1): source, destination, 32-bit upper-layer
/// length, three zero bytes, next header.
pub fn pseudo_header_v6(src: Ipv6Addr, dst: Ipv6Addr, next_header: u8, length: u32) -> u16 {
    let mut acc = u64::from(data(&src.octets())) + u64::from(data(&dst.octets()));
    acc += u64::from(next_header);
    acc += u64::from(length >> 16) + u64::from(length & 0xffff);
    fold(acc)
}

/// The pseudo-header sum for either family; `None` when the two addresses differ in family.
pub fn pseudo_header(src: IpAddr, dst: IpAddr, protocol: u8, length: u32) -> Option<u16> {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => Some(pseudo_header_v4(s, d, protocol, length)),
        (IpAddr::V6(s), IpAddr::V6(d)) => Some(pseudo_header_v6(s, d, protocol, length)),
        _ => None,
    }
}

/// The checksum field value for a sum: its ones-complement.
pub const fn finish(sum: u16) -> u16 {
    !sum
}

/// RFC 1624 §3 eqn. 3: the new checksum field after a covered 16-bit word changes from `old` to
/// `new`: `HC' = ~(~HC + ~m + m')`. Unlike eqn. 2 this never produces the 0x0000/0xffff
/// ambiguity of RFC 1141 (for a header whose sum cannot be zero it stays correct).
pub const fn update_word(checksum: u16, old: u16, new: u16) -> u16 {
    let acc = (!checksum) as u64 + (!old) as u64 + new as u64;
    !fold(acc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// RFC 1071 §3: the bytes 00 01 f2 03 f4 f5 f6 f7 sum to ddf2.
    #[test]
    fn rfc1071_example() {
        assert_eq!(
            data(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            0xddf2
        );
    }

    #[test]
    fn odd_length_pads_right() {
        assert_eq!(data(&[0x12]), 0x1200);
        assert_eq!(data(&[0x12, 0x34, 0x56]), 0x6834);
    }

    #[test]
    fn fold_carries() {
        assert_eq!(fold(0x1_fffe), 0xffff);
        assert_eq!(fold(0xffff_ffff), 0xffff);
    }

    /// A captured IPv4 header (the well-known example 192.168.0.1 → 192.168.0.199, UDP,
    /// checksum b861): the sum over the whole header, checksum included, is 0xffff.
    #[test]
    fn captured_ipv4_header_sums_to_ffff() {
        let h = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(data(&h), 0xffff);
    }

    proptest! {
        #[test]
        fn incremental_matches_recompute(mut hdr in proptest::collection::vec(any::<u8>(), 20..=20),
                                         at in 0usize..10, new in any::<u16>()) {
            // Treat bytes 10..12 as the checksum field, change word `at` (not the checksum).
            let at = if at == 5 { 4 } else { at } * 2;
            hdr[10] = 0; hdr[11] = 0;
            let c = finish(data(&hdr));
            hdr[10..12].copy_from_slice(&c.to_be_bytes());
            let old = u16::from_be_bytes([hdr[at], hdr[at + 1]]);
            hdr[at..at + 2].copy_from_slice(&new.to_be_bytes());
            let inc = update_word(c, old, new);
            hdr[10] = 0; hdr[11] = 0;
            let full = finish(data(&hdr));
            // Equal as ones-complement numbers (0x0000 and 0xffff both mean zero).
            prop_assert!(inc == full || (inc ^ full == 0xffff && (inc == 0 || full == 0)));
        }

        #[test]
        fn split_sums_combine(d in proptest::collection::vec(any::<u8>(), 0..200), cut in 0usize..100) {
            let cut = (cut * 2).min(d.len() & !1);
            prop_assert_eq!(combine(&[data(&d[..cut]), data(&d[cut..])]), data(&d));
        }
    }
}
