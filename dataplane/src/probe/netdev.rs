//! What a network interface offers XDP: its driver (`ETHTOOL_GDRVINFO`) and, on kernels with
//! the `netdev` generic netlink family (6.3+), its `xdp-features` and `xsk-features` — the
//! same answer `ynl --family netdev --do dev-get` prints. Read-only: nothing is attached.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// `enum netdev_xdp_act` (include/uapi/linux/netdev.h).
pub mod xdp_act {
    pub const BASIC: u64 = 1;
    pub const REDIRECT: u64 = 2;
    pub const NDO_XMIT: u64 = 4;
    pub const XSK_ZEROCOPY: u64 = 8;
    pub const HW_OFFLOAD: u64 = 16;
    pub const RX_SG: u64 = 32;
    pub const NDO_XMIT_SG: u64 = 64;
}

/// What the `netdev` family reports of one interface.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct XdpFeatures {
    /// `NETDEV_A_DEV_XDP_FEATURES` ([`xdp_act`] bits).
    pub xdp: u64,
    /// `NETDEV_A_DEV_XDP_ZC_MAX_SEGS`.
    pub zc_max_segs: u32,
    /// `NETDEV_A_DEV_XDP_RX_METADATA_FEATURES` (hardware hints; 6.8+).
    pub rx_metadata: Option<u64>,
}

/// The driver name of `iface` (`ethtool -i`), if the kernel answers.
pub fn driver(iface: &str) -> Option<String> {
    const SIOCETHTOOL: libc::c_ulong = 0x8946;
    const ETHTOOL_GDRVINFO: u32 = 0x0000_0003;
    #[repr(C)]
    struct DrvInfo {
        cmd: u32,
        driver: [u8; 32],
        rest: [u8; 32 * 4 + 12 + 5 * 4],
    }
    #[repr(C)]
    struct IfReq {
        name: [u8; libc::IFNAMSIZ],
        data: *mut DrvInfo,
        _pad: [u8; 16],
    }
    let name = iface.as_bytes();
    if name.len() >= libc::IFNAMSIZ {
        return None;
    }
    let mut info = DrvInfo {
        cmd: ETHTOOL_GDRVINFO,
        driver: [0; 32],
        rest: [0; 32 * 4 + 12 + 5 * 4],
    };
    let mut req = IfReq {
        name: [0; libc::IFNAMSIZ],
        data: &mut info,
        _pad: [0; 16],
    };
    req.name[..name.len()].copy_from_slice(name);
    // SAFETY: a plain datagram socket; checked below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: we own the new descriptor.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: `req` and `info` live across the call and have the layouts the ioctl expects.
    let r = unsafe { libc::ioctl(sock.as_raw_fd(), SIOCETHTOOL, &mut req as *mut IfReq) };
    if r < 0 {
        return None;
    }
    let end = info.driver.iter().position(|b| *b == 0).unwrap_or(32);
    Some(String::from_utf8_lossy(&info.driver[..end]).into_owned())
}

const NETLINK_GENERIC: i32 = 16;
const GENL_ID_CTRL: u16 = 0x10;
const CTRL_CMD_GETFAMILY: u8 = 3;
const CTRL_ATTR_FAMILY_ID: u16 = 1;
const CTRL_ATTR_FAMILY_NAME: u16 = 2;
const NETDEV_CMD_DEV_GET: u8 = 1;
const NETDEV_A_DEV_IFINDEX: u16 = 1;
const NETDEV_A_DEV_XDP_FEATURES: u16 = 3;
const NETDEV_A_DEV_XDP_ZC_MAX_SEGS: u16 = 4;
const NETDEV_A_DEV_XDP_RX_METADATA_FEATURES: u16 = 5;
const NLM_F_REQUEST: u16 = 1;
const NLMSG_ERROR: u16 = 2;

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// One generic netlink request: header, genl header, attributes; returns the attributes of
/// the answer.
fn genl(
    sock: &OwnedFd,
    family: u16,
    cmd: u8,
    attrs: &[(u16, &[u8])],
) -> Option<Vec<(u16, Vec<u8>)>> {
    let mut msg = vec![0u8; 20];
    for (t, v) in attrs {
        let len = 4 + v.len();
        msg.extend_from_slice(&(len as u16).to_ne_bytes());
        msg.extend_from_slice(&t.to_ne_bytes());
        msg.extend_from_slice(v);
        msg.resize(align4(msg.len()), 0);
    }
    let total = msg.len() as u32;
    msg[0..4].copy_from_slice(&total.to_ne_bytes());
    msg[4..6].copy_from_slice(&family.to_ne_bytes());
    msg[6..8].copy_from_slice(&NLM_F_REQUEST.to_ne_bytes());
    msg[8..12].copy_from_slice(&1u32.to_ne_bytes());
    msg[16] = cmd;
    msg[17] = 1;
    // SAFETY: `msg` is a live buffer of the length given.
    let n = unsafe { libc::send(sock.as_raw_fd(), msg.as_ptr().cast(), msg.len(), 0) };
    if n < 0 {
        return None;
    }
    let mut buf = vec![0u8; 8192];
    // SAFETY: `buf` is a live, writable buffer of the length given.
    let n = unsafe { libc::recv(sock.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n < 20 {
        return None;
    }
    let buf = &buf[..n as usize];
    let ty = u16::from_ne_bytes([buf[4], buf[5]]);
    if ty == NLMSG_ERROR {
        return None;
    }
    let len = (u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize).min(buf.len());
    let mut out = vec![];
    let mut at = 20;
    while at + 4 <= len {
        let alen = u16::from_ne_bytes([buf[at], buf[at + 1]]) as usize;
        let atype = u16::from_ne_bytes([buf[at + 2], buf[at + 3]]) & 0x3fff;
        if alen < 4 || at + alen > len {
            break;
        }
        out.push((atype, buf[at + 4..at + alen].to_vec()));
        at += align4(alen);
    }
    Some(out)
}

fn u64_of(v: &[u8]) -> Option<u64> {
    match v.len() {
        8 => Some(u64::from_ne_bytes(v.try_into().ok()?)),
        4 => Some(u64::from(u32::from_ne_bytes(v.try_into().ok()?))),
        _ => None,
    }
}

/// The `netdev` family's view of `ifindex`: `None` when the kernel has no such family (before
/// 6.3) or does not answer.
pub fn xdp_features(ifindex: u32) -> Option<XdpFeatures> {
    // SAFETY: a netlink socket; checked below.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            NETLINK_GENERIC,
        )
    };
    if fd < 0 {
        return None;
    }
    // SAFETY: we own the new descriptor.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    let name = CString::new("netdev").ok()?;
    let fam = genl(
        &sock,
        GENL_ID_CTRL,
        CTRL_CMD_GETFAMILY,
        &[(CTRL_ATTR_FAMILY_NAME, name.as_bytes_with_nul())],
    )?;
    let id = fam
        .iter()
        .find(|(t, v)| *t == CTRL_ATTR_FAMILY_ID && v.len() >= 2)
        .map(|(_, v)| u16::from_ne_bytes([v[0], v[1]]))?;
    let dev = genl(
        &sock,
        id,
        NETDEV_CMD_DEV_GET,
        &[(NETDEV_A_DEV_IFINDEX, &ifindex.to_ne_bytes())],
    )?;
    let mut f = XdpFeatures::default();
    let mut seen = false;
    for (t, v) in &dev {
        match *t {
            NETDEV_A_DEV_XDP_FEATURES => {
                f.xdp = u64_of(v)?;
                seen = true;
            }
            NETDEV_A_DEV_XDP_ZC_MAX_SEGS => f.zc_max_segs = u64_of(v)? as u32,
            NETDEV_A_DEV_XDP_RX_METADATA_FEATURES => f.rx_metadata = u64_of(v),
            _ => {}
        }
    }
    seen.then_some(f)
}
