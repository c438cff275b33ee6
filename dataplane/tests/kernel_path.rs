//! The kernel path (issue 14): what `bpf_fib_lookup` cannot forward goes to the kernel stack,
//! which resolves the next hop's neighbour — on the lab's `lac` — `lns` — `core` veths, the
//! fast path attached on the lns side, with the LNS's neighbour tables EMPTY
//! (`Topology::dynamic_neighbours`: no permanent entries, the peers answer ARP).
//!
//! - `first_packets_with_empty_neighbour_tables` (XDP mode) and `…_afxdp` (AF_XDP mode, the
//!   same lookups precede the hand-off): the first upstream packet (LAC → core host) arrives,
//!   decapsulated and handed to the kernel (`up_fib[no_neigh]`), routed by it (TTL 63 at the
//!   core: decremented once, by the kernel); the first downstream packet (core host →
//!   subscriber) arrives at the LAC encapsulated, through `tc_l2tp_core` and
//!   `bpf_redirect_neigh` (`down_fib[no_neigh]`, `neigh_redirect`). The kernel resolved both
//!   neighbours; every later packet goes through XDP (`decap`, `encap`) and nothing more
//!   through the kernel. Nothing dropped, the session counted every packet.
//! - `a_frame_from_the_wire_with_the_kernel_mark_is_dropped`: a frame arriving on the core
//!   side with the kernel mark as its destination (what `tc_l2tp_core` would send anywhere)
//!   is dropped by `xdp_l2tp_core` (`mark_spoofed`), and never reaches the LAC.
//!
//! Needs root (`l2xdp_lab::require_root`).

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::skip_unless_root;
use l2xdp_dataplane::aya::maps::{Array, Map, MapData};
use l2xdp_dataplane::{loader, DataPlane, XdpDataPlane};
use l2xdp_ebpf::maps::{self, fib_reason, name, verdict};
use l2xdp_lab::topology::{
    Mode, PeerPort, Pins, Topology, CORE0, CORE_HOST, LA, LAC0, LAC_IP, LNS_IP,
};
use l2xdp_lab::traffic::{
    classify_downstream, classify_upstream, downstream_frame, ip_socket, upstream_frame, Counter,
    Sub,
};
use l2xdp_wire::datapath::{DropReason, SessionKey, TxSeq};
use l2xdp_wire::net::ethernet::MacAddr;
use l2xdp_wire::net::frame::{udp_frame, Endpoints};

/// Packets per direction through XDP once the neighbours are resolved.
const LATER: usize = 20;

#[test]
fn first_packets_with_empty_neighbour_tables() {
    first_packets_in(Mode::Xdp, "first_packets_with_empty_neighbour_tables");
}

#[test]
fn first_packets_with_empty_neighbour_tables_afxdp() {
    first_packets_in(
        Mode::AfXdp,
        "first_packets_with_empty_neighbour_tables_afxdp",
    );
}

/// The same in a child process of this test binary with `L2XDP_FORCE_PROBE=tcx=off`: the tc
/// program as a netlink filter (what 5.10–6.5 get), removed by `detach` with the pins.
#[test]
fn first_packets_with_empty_neighbour_tables_netlink_filter() {
    forced_child(
        "first_packets_with_empty_neighbour_tables_netlink_filter",
        "tcx=off",
    );
}

/// The same with `L2XDP_FORCE_PROBE=redirect_neigh=off` (no tc program): the first downstream
/// packet is dropped and counted (`dropped_no_tc`); once the neighbour is resolved (here by
/// hand: `ip neigh replace … use`, the RTM_NEWNEIGH with NTF_USE) the rest goes through XDP.
#[test]
fn first_packets_with_empty_neighbour_tables_without_redirect_neigh() {
    forced_child(
        "first_packets_with_empty_neighbour_tables_without_redirect_neigh",
        "redirect_neigh=off",
    );
}

/// Runs `first_packets_with_empty_neighbour_tables` in a child process (the probe's answers
/// are per process) with `L2XDP_FORCE_PROBE=force`.
fn forced_child(test: &str, force: &str) {
    if skip_unless_root(test) {
        return;
    }
    let exe = std::env::current_exe().expect("this test binary");
    let out = std::process::Command::new(exe)
        .args([
            "--exact",
            "first_packets_with_empty_neighbour_tables",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(l2xdp_dataplane::probe::FORCE_ENV, force)
        .output()
        .expect("run the child");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{text}");
    assert!(out.status.success(), "the child failed under {force}");
    assert!(
        text.contains("1 passed"),
        "the child ran the test under {force}"
    );
}

/// `redirect_neigh` forced off in this process: the degraded kernel path.
fn without_redirect_neigh() -> bool {
    !l2xdp_dataplane::probe::features().has(l2xdp_dataplane::probe::Feature::RedirectNeigh)
}

fn verdicts(pins: &Pins) -> Vec<u64> {
    XdpDataPlane::open(pins.path())
        .expect("open pins")
        .verdict_counters()
        .expect("verdicts")
        .to_vec()
}

fn up(reason: u32) -> usize {
    verdict::fib(true, reason) as usize
}

fn down(reason: u32) -> usize {
    verdict::fib(false, reason) as usize
}

fn first_packets_in(mode: Mode, test: &str) {
    if skip_unless_root(test) {
        return;
    }
    let tag = format!("kpath-{mode:?}");
    let topo = Topology::new(&tag);
    topo.dynamic_neighbours();
    let pins = Pins::under_sys_fs_bpf(&tag);
    let fp = topo.start_fast_path(pins.path(), mode);
    let subs = Sub::numbered(1);
    let sub = subs.values().next().expect("one subscriber").clone();
    {
        let _g = topo.lns.enter();
        XdpDataPlane::open(pins.path())
            .expect("open pins")
            .install(&sub.lns_entry())
            .expect("install");
    }
    fp.settle();
    let core_port = PeerPort::new(&topo.core, CORE0);
    let lac_port = PeerPort::new(&topo.lac, LAC0);
    let (core_tx, lac_tx) = (ip_socket(&core_port), ip_socket(&lac_port));
    let core_rx = Counter::start(ip_socket(&core_port), classify_upstream);
    let subs_rx: BTreeMap<SessionKey, Sub> = subs.clone();
    let lac_rx = Counter::start(ip_socket(&lac_port), move |f| {
        classify_downstream(&subs_rx, f)
    });
    let neigh = topo.lns_neighbours();
    assert!(
        neigh.trim().is_empty(),
        "the LNS starts with no neighbour: {neigh}"
    );

    // The first packet upstream: no neighbour for the core host.
    let mut tx = TxSeq::default();
    lac_tx.send(&upstream_frame(&sub, &mut tx, 0));
    core_rx.wait(1, "the first upstream packet, through the kernel");
    let v = verdicts(&pins);
    eprintln!("after the first upstream packet: {v:?}");
    assert_eq!(v[up(fib_reason::NO_NEIGH)], 1, "{v:?}");
    assert_eq!(v[verdict::FIB_MISS as usize], 1, "{v:?}");
    assert_eq!(v[verdict::DECAP as usize], 0, "{v:?}");

    // The first packet downstream: no neighbour for the LAC.
    let degraded = without_redirect_neigh();
    core_tx.send(&downstream_frame(&sub, 0));
    let down_first = if degraded {
        // Dropped, counted; then the neighbour is resolved by other traffic of the LNS.
        let end = std::time::Instant::now() + l2xdp_lab::traffic::LIMIT;
        while verdicts(&pins)[verdict::DOWN_NO_TC as usize] == 0 && std::time::Instant::now() < end
        {
            std::thread::sleep(Duration::from_millis(5));
        }
        // What user space would do for the dropped frame's next hop: RTM_NEWNEIGH with
        // NTF_USE (net/core/neighbour.c neigh_add → neigh_event_send starts resolution).
        topo.lns
            .ip(&["neigh", "replace", &LAC_IP.to_string(), "dev", LA, "use"]);
        let end = std::time::Instant::now() + l2xdp_lab::traffic::LIMIT;
        while !topo
            .lns_neighbours()
            .lines()
            .any(|l| l.starts_with(&format!("{LAC_IP} dev {LA} lladdr")))
            && std::time::Instant::now() < end
        {
            std::thread::sleep(Duration::from_millis(5));
        }
        0
    } else {
        lac_rx.wait(1, "the first downstream packet, through tc_l2tp_core");
        1
    };
    let v = verdicts(&pins);
    eprintln!("after the first downstream packet: {v:?}");
    assert_eq!(v[down(fib_reason::NO_NEIGH)], 1, "{v:?}");
    assert_eq!(v[verdict::NEIGH_REDIRECT as usize], down_first, "{v:?}");
    assert_eq!(v[verdict::DOWN_NO_TC as usize], 1 - down_first, "{v:?}");
    assert_eq!(v[verdict::FIB_MISS as usize], 2, "{v:?}");
    assert_eq!(v[verdict::ENCAP as usize], 0, "{v:?}");

    // The kernel resolved both next hops.
    let neigh = topo.lns_neighbours();
    for (a, dev) in [(CORE_HOST, "lc"), (LAC_IP, LA)] {
        assert!(
            neigh
                .lines()
                .any(|l| l.starts_with(&format!("{a} dev {dev} lladdr"))),
            "{a} resolved on {dev}: {neigh}"
        );
    }

    // Everything later goes through XDP.
    for i in 1..=LATER as u32 {
        lac_tx.send(&upstream_frame(&sub, &mut tx, i));
        core_tx.send(&downstream_frame(&sub, i));
    }
    core_rx.wait(1 + LATER, "upstream through XDP");
    lac_rx.wait(down_first as usize + LATER, "downstream through XDP");
    let v = verdicts(&pins);
    eprintln!("after {LATER} more each way: {v:?}");
    assert_eq!(v[verdict::DECAP as usize], LATER as u64, "{v:?}");
    assert_eq!(v[verdict::ENCAP as usize], LATER as u64, "{v:?}");
    assert_eq!(
        v[verdict::FIB_MISS as usize],
        2,
        "nothing more to the kernel"
    );
    let k = u32::from(sub.addr);
    assert_eq!(core_rx.counts()[&k].0, 1 + LATER, "upstream");
    assert_eq!(
        lac_rx.counts()[&k].0,
        down_first as usize + LATER,
        "downstream"
    );
    assert_eq!(
        fp.drop_counters(),
        [0; DropReason::COUNT],
        "nothing dropped"
    );
    let c = XdpDataPlane::open(pins.path())
        .expect("open pins")
        .counters(&sub.lns_key)
        .expect("counters");
    assert_eq!(
        (c.rx_packets, c.tx_packets),
        (1 + LATER as u64, down_first + LATER as u64),
        "the session counts the packets of the kernel path too: {c:?}"
    );
    if let Some(a) = &fp.afxdp {
        assert_eq!(
            a.received(),
            2 * LATER as u64,
            "the workers got every packet XDP forwarded, not the first ones"
        );
    }
    // Detach removes the tc program with the XDP programs and every pin.
    let tc_filters = || {
        let out = std::process::Command::new("tc")
            .args([
                "-n",
                &topo.lns.name,
                "filter",
                "show",
                "dev",
                "lc",
                "ingress",
            ])
            .output()
            .expect("tc filter show");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    if std::env::var(l2xdp_dataplane::probe::FORCE_ENV).is_ok_and(|f| f.contains("tcx=off")) {
        assert!(tc_filters().contains("tc_l2tp_core"), "{}", tc_filters());
    }
    drop(fp);
    {
        let _g = topo.lns.enter();
        loader::detach(pins.path()).expect("detach");
    }
    assert!(!pins.path().exists(), "pins left behind");
    assert!(!tc_filters().contains("tc_l2tp_core"), "{}", tc_filters());
}

/// The kernel mark from the pinned configuration.
fn kernel_mark(pins: &Pins) -> [u8; 6] {
    let path = pins.path().join(name::CONFIG);
    let map = Map::from_map_data(MapData::from_pin(&path).expect("config pin")).expect("map");
    let cfg: Array<MapData, maps::Config> = map.try_into().expect("array");
    cfg.get(&0, 0).expect("config").kernel_mark
}

#[test]
fn a_frame_from_the_wire_with_the_kernel_mark_is_dropped() {
    let test = "a_frame_from_the_wire_with_the_kernel_mark_is_dropped";
    if skip_unless_root(test) {
        return;
    }
    let topo = Topology::new("kmark");
    let pins = Pins::under_sys_fs_bpf("kmark");
    let fp = topo.start_fast_path(pins.path(), Mode::Xdp);
    let subs = Sub::numbered(1);
    let sub = subs.values().next().expect("one subscriber").clone();
    let la = {
        let _g = topo.lns.enter();
        XdpDataPlane::open(pins.path())
            .expect("open pins")
            .install(&sub.lns_entry())
            .expect("install");
        loader::ifindex(LA).expect("la")
    };
    let mark = kernel_mark(&pins);
    assert_eq!(
        mark[0] & 3,
        2,
        "a locally administered unicast mark: {mark:?}"
    );
    let core_port = PeerPort::new(&topo.core, CORE0);
    let lac_port = PeerPort::new(&topo.lac, LAC0);
    let core_tx = ip_socket(&core_port);
    // The forged frame: an "encapsulated" datagram from the LNS to the LAC's L2TP port, as
    // encap_fib_miss marks it (destination: the mark; source: 02:00 + the egress ifindex).
    let payload = b"forged by a core host".to_vec();
    let mut forged = udp_frame(
        &Endpoints {
            src_mac: MacAddr([0; 6]),
            dst_mac: MacAddr(mark),
            src: LNS_IP.into(),
            dst: LAC_IP.into(),
        },
        1701,
        1701,
        &payload,
    )
    .expect("frame");
    forged[6..8].copy_from_slice(&[2, 0]);
    forged[8..12].copy_from_slice(&la.to_be_bytes());
    let subs_rx = subs.clone();
    let lac_rx = Counter::start(ip_socket(&lac_port), move |f| {
        if f.windows(payload.len()).any(|w| w == payload.as_slice()) {
            Some(0)
        } else {
            classify_downstream(&subs_rx, f)
        }
    });
    core_tx.send(&forged);
    // Then a real packet for the subscriber, through XDP (permanent neighbours here): once it
    // is at the LAC, a forged frame let through would be too.
    core_tx.send(&downstream_frame(&sub, 0));
    lac_rx.wait(1, "the subscriber's packet");
    std::thread::sleep(Duration::from_millis(200));
    let got = lac_rx.counts();
    assert_eq!(got.get(&0), None, "the forged frame reached the LAC");
    assert_eq!(got[&u32::from(sub.addr)].0, 1);
    let v = verdicts(&pins);
    assert_eq!(v[verdict::MARK_SPOOFED as usize], 1, "{v:?}");
    assert_eq!(v[verdict::NEIGH_REDIRECT as usize], 0, "{v:?}");
    assert_eq!(v[verdict::ENCAP as usize], 1, "{v:?}");
    // A frame whose destination differs from the mark in one bit is not the mark's: the
    // core program encapsulates it like any packet to the subscriber (it does not look at
    // the destination MAC).
    let mut other = mark;
    other[5] ^= 1;
    let mut near = downstream_frame(&sub, 1);
    near[..6].copy_from_slice(&other);
    core_tx.send(&near);
    lac_rx.wait(2, "a frame to a MAC one bit from the mark");
    let v = verdicts(&pins);
    assert_eq!(v[verdict::MARK_SPOOFED as usize], 1, "{v:?}");
    assert_eq!(v[verdict::ENCAP as usize], 2, "{v:?}");
    drop(fp);
}

/// `l2xdp-dataplane` in the calling thread's namespace (entered with `Netns::enter`: a child
/// starts in the namespace of the thread that spawns it, in the same mount namespace, so
/// `/sys/fs/bpf` is the test's).
fn dataplane_cli(args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_l2xdp-dataplane"))
        .args(args)
        .output()
        .expect("run l2xdp-dataplane");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "l2xdp-dataplane {args:?}: {text}");
    text
}

/// Issue 16: with forwarding off in the LNS's namespace (`net.ipv4.conf.all.forwarding = 0`,
/// as `net.ipv4.ip_forward = 0`) `bpf_fib_lookup` answers FWD_DISABLED both ways. `attach`
/// says so, one line per interface; every packet is counted by direction as `fwd_disabled`
/// (before: lumped into `other`, and `show` printed no kernel path at all) and `show --json`
/// has the rows; nothing reaches the core host. With forwarding on, no such warning.
#[test]
fn forwarding_off_is_warned_at_attach_and_counted_by_reason() {
    let test = "forwarding_off_is_warned_at_attach_and_counted_by_reason";
    if skip_unless_root(test) {
        return;
    }
    const N: u64 = 5;
    let tag = "i16-dpdefects-fwd";
    let topo = Topology::new(tag);
    topo.lns
        .exec(&["sysctl", "-qw", "net.ipv4.conf.all.forwarding=0"]);
    let pins = Pins::under_sys_fs_bpf(tag);
    let pin_dir = pins.path().display().to_string();
    let out = {
        let _g = topo.lns.enter();
        dataplane_cli(&[
            "--pin-dir",
            &pin_dir,
            "attach",
            "--access",
            LA,
            "--core",
            "lc",
        ])
    };
    eprintln!("{out}");
    for iface in [LA, "lc"] {
        let lines: Vec<&str> = out
            .lines()
            .filter(|l| {
                l.starts_with("warning: ")
                    && l.contains(&format!("net.ipv4.conf.{iface}.forwarding is 0"))
            })
            .collect();
        assert_eq!(lines.len(), 1, "one forwarding warning for {iface}:\n{out}");
    }
    assert!(
        !out.contains("net.ipv6.conf"),
        "IPv6 is disabled in the lab: no IPv6 warning\n{out}"
    );
    let subs = Sub::numbered(1);
    let sub = subs.values().next().expect("one subscriber").clone();
    {
        let _g = topo.lns.enter();
        XdpDataPlane::open(pins.path())
            .expect("open pins")
            .install(&sub.lns_entry())
            .expect("install");
    }
    let core_port = PeerPort::new(&topo.core, CORE0);
    let lac_port = PeerPort::new(&topo.lac, LAC0);
    let (core_tx, lac_tx) = (ip_socket(&core_port), ip_socket(&lac_port));
    let core_rx = Counter::start(ip_socket(&core_port), classify_upstream);
    let mut tx = TxSeq::default();
    for i in 0..N as u32 {
        lac_tx.send(&upstream_frame(&sub, &mut tx, i));
        core_tx.send(&downstream_frame(&sub, i));
    }
    let (up_i, down_i) = (
        verdict::UP_FWD_DISABLED as usize,
        verdict::DOWN_FWD_DISABLED as usize,
    );
    let end = std::time::Instant::now() + l2xdp_lab::traffic::LIMIT;
    let mut v = verdicts(&pins);
    while (v[up_i] < N || v[down_i] < N) && std::time::Instant::now() < end {
        std::thread::sleep(Duration::from_millis(5));
        v = verdicts(&pins);
    }
    eprintln!("verdicts: {v:?}");
    assert_eq!(
        (v[up_i], v[down_i]),
        (N, N),
        "fwd_disabled both ways: {v:?}"
    );
    assert_eq!(v[up(fib_reason::OTHER)], 0, "{v:?}");
    assert_eq!(v[down(fib_reason::OTHER)], 0, "{v:?}");
    assert_eq!(v[verdict::FIB_MISS as usize], 2 * N, "{v:?}");
    assert_eq!(v[verdict::DECAP as usize], 0, "{v:?}");
    assert_eq!(v[verdict::ENCAP as usize], 0, "{v:?}");
    assert_eq!(core_rx.total(), 0, "the kernel forwarded nothing either");
    let json: serde_json::Value =
        serde_json::from_str(&dataplane_cli(&["--pin-dir", &pin_dir, "show", "--json"]))
            .expect("show --json");
    for dir in ["upstream", "downstream"] {
        let row = json["snapshot"]["kernel_path"]
            .as_array()
            .expect("kernel_path")
            .iter()
            .find(|k| k["direction"] == dir && k["reason"] == "fwd_disabled")
            .unwrap_or_else(|| panic!("no {dir} fwd_disabled row: {json}"))
            .clone();
        assert_eq!(row["packets"], N, "{dir}: {row}");
    }
    // Forwarding on: the same check finds nothing to say.
    topo.lns
        .exec(&["sysctl", "-qw", "net.ipv4.conf.all.forwarding=1"]);
    {
        let _g = topo.lns.enter();
        for iface in [LA, "lc"] {
            let w = l2xdp_dataplane::sysctl::forwarding_warnings(iface);
            assert!(w.is_empty(), "{iface}: {w:?}");
        }
    }
    let out = dataplane_cli(&["--pin-dir", &pin_dir, "detach"]);
    assert!(out.contains("detached"), "{out}");
}
