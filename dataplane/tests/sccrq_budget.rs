//! Issue 15: the SCCRQ budget in XDP. On the lab's `lac` — `lns` — `core` veths with the
//! fast path attached, the LAC sends control messages to tunnel 0 (SCCRQs: L2TPv2 and L2TPv3
//! over UDP, L2TPv3 over IP) with the budget set as l2xdpd sets it
//! (`DataPlane::set_sccrq_budget`). Without a budget every one goes to the control plane;
//! with one, at most the budget per second passes (`L2XDP_V_WHY_BASE + l2tp_control`) and the
//! rest is dropped in XDP and counted (`SCCRQ_OVER_BUDGET`), each message exactly once. The
//! seconds are the kernel's CLOCK_MONOTONIC ones (`bpf_ktime_get_ns`), read here around the
//! sending, so the bound holds whatever the machine's speed. Control messages to a tunnel
//! that exists (non-zero ID) are never held by the budget. `show --json` reports both.
//!
//! Needs root (`l2xdp_lab::require_root`).

mod common;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use common::skip_unless_root;
use l2xdp_dataplane::{DataPlane, XdpDataPlane};
use l2xdp_ebpf::maps::verdict;
use l2xdp_lab::topology::{Mode, PeerPort, Pins, Topology, LAC0, LAC_IP, LAC_MAC, LA_MAC, LNS_IP};
use l2xdp_lab::traffic::{ip_socket, LIMIT};
use l2xdp_wire::datapath::Why;
use l2xdp_wire::net::frame::{ip_frame, udp_frame, Endpoints};

const PASSED: usize = (verdict::WHY_BASE + Why::L2tpControl as u32) as usize;
const OVER: usize = verdict::SCCRQ_OVER_BUDGET as usize;

/// An L2TPv2 control header (T, L, S; RFC 2661 §3.1) to `tunnel`, and nothing after it.
fn v2_control(tunnel: u16) -> Vec<u8> {
    let mut m = vec![0xc8, 0x02, 0, 12];
    m.extend_from_slice(&tunnel.to_be_bytes());
    m.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    m
}

/// An L2TPv3 control header (T, L, S; RFC 3931 §3.2.1) to control connection `ccid`.
fn v3_control(ccid: u32) -> Vec<u8> {
    let mut m = vec![0xc8, 0x03, 0, 12];
    m.extend_from_slice(&ccid.to_be_bytes());
    m.extend_from_slice(&[0, 0, 0, 0]);
    m
}

fn endpoints() -> Endpoints {
    Endpoints {
        src_mac: LAC_MAC,
        dst_mac: LA_MAC,
        src: IpAddr::V4(LAC_IP),
        dst: IpAddr::V4(LNS_IP),
    }
}

/// The three encodings of a control message to `id`, in turn (`n` = 0, 1, 2, ...).
fn frame(n: usize, id: u16) -> Vec<u8> {
    let e = endpoints();
    match n % 3 {
        0 => udp_frame(&e, 1701, 1701, &v2_control(id)),
        1 => udp_frame(&e, 1701, 1701, &v3_control(u32::from(id))),
        _ => {
            // Over IP (protocol 115): Session ID 0, then the control header (RFC 3931 §4.1.1.1).
            let mut p = vec![0, 0, 0, 0];
            p.extend_from_slice(&v3_control(u32::from(id)));
            ip_frame(&e, 115, &p)
        }
    }
    .expect("frame")
}

fn verdicts(pins: &Pins) -> Vec<u64> {
    XdpDataPlane::open(pins.path())
        .expect("open pins")
        .verdict_counters()
        .expect("verdicts")
        .to_vec()
}

/// Polls until the programs have counted `n` control messages (passed or over budget).
fn counted(pins: &Pins, n: u64) -> Vec<u64> {
    let end = Instant::now() + LIMIT;
    loop {
        let v = verdicts(pins);
        if v[PASSED] + v[OVER] >= n {
            return v;
        }
        assert!(
            Instant::now() < end,
            "{n} control messages not counted: {v:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// CLOCK_MONOTONIC in whole seconds (what `bpf_ktime_get_ns() / 1e9` gives).
fn monotonic_second() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec we own.
    let r = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    assert_eq!(r, 0, "clock_gettime");
    u64::try_from(ts.tv_sec).expect("seconds")
}

fn budget_in(mode: Mode, test: &str) {
    if skip_unless_root(test) {
        return;
    }
    let tag = format!("harden-sccrq-{mode:?}");
    let topo = Topology::new(&tag);
    let pins = Pins::under_sys_fs_bpf(&tag);
    let fp = topo.start_fast_path(pins.path(), mode);
    fp.settle();
    let lac = ip_socket(&PeerPort::new(&topo.lac, LAC0));
    let set = |per_sec: u32| {
        let _g = topo.lns.enter();
        let mut dp = XdpDataPlane::open(pins.path()).expect("open pins");
        dp.set_sccrq_budget(per_sec).expect("budget");
        assert_eq!(dp.config().expect("config").sccrq_budget, per_sec);
    };

    // No budget (l2xdp-dataplane's own default): every SCCRQ to the control plane.
    const N: usize = 60;
    for n in 0..N {
        lac.send(&frame(n, 0));
    }
    let v = counted(&pins, N as u64);
    assert_eq!((v[PASSED], v[OVER]), (N as u64, 0), "{v:?}");

    // A budget of 2 a second: N more, back to back.
    const BUDGET: u32 = 2;
    set(BUDGET);
    let first = monotonic_second();
    for n in 0..N {
        lac.send(&frame(n, 0));
    }
    let v = counted(&pins, 2 * N as u64);
    let last = monotonic_second();
    let passed = v[PASSED] - N as u64;
    let over = v[OVER];
    // Each exactly once; at most the budget in each second the sending spanned, and at least
    // one second's budget.
    assert_eq!(passed + over, N as u64, "{v:?}");
    let seconds = last - first + 1;
    assert!(
        passed <= u64::from(BUDGET) * seconds && passed >= u64::from(BUDGET),
        "{passed} passed in {seconds} s: {v:?}"
    );
    assert!(over > 0, "{v:?}");

    // Control messages of existing tunnels are never held back (the budget is spent now).
    for n in 0..N {
        lac.send(&frame(n, 7));
    }
    let v = counted(&pins, 3 * N as u64);
    assert_eq!(v[PASSED], N as u64 + passed + N as u64, "{v:?}");
    assert_eq!(v[OVER], over, "{v:?}");

    // What the operator sees.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_l2xdp-dataplane"))
        .arg("--pin-dir")
        .arg(pins.path())
        .args(["show", "--json"])
        .output()
        .expect("show");
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).expect("show --json");
    assert_eq!(shown["sccrq_budget"], BUDGET, "{shown}");
    assert_eq!(shown["snapshot"]["sccrq_over_budget"], over, "{shown}");

    // Off again: all pass.
    set(0);
    for n in 0..N {
        lac.send(&frame(n, 0));
    }
    let v = counted(&pins, 4 * N as u64);
    assert_eq!(v[OVER], over, "{v:?}");
    assert_eq!(
        fp.drop_counters().iter().sum::<u64>(),
        0,
        "no drop of another kind"
    );
    drop(fp);
}

#[test]
fn sccrqs_beyond_the_budget_are_dropped_in_xdp() {
    budget_in(Mode::Xdp, "sccrqs_beyond_the_budget_are_dropped_in_xdp");
}

#[test]
fn sccrqs_beyond_the_budget_are_dropped_in_xdp_afxdp() {
    budget_in(
        Mode::AfXdp,
        "sccrqs_beyond_the_budget_are_dropped_in_xdp_afxdp",
    );
}
