//! Issue 16 item 4: the subscribers' gateway the fast path answers ping for follows
//! `[ppp.ipcp] local_address` through `config reload`.
//!
//! The lab topology of `xdp_e2e.rs` (`lac` — `lns` — `core`, the XDP programs attached in
//! `lns`, the maps pinned in a bpffs of this test's own), the real `l2xdpd` process in `lns`
//! over the pinned maps. l2xdpd sets the gateway at start-up (the IPCP local address); the
//! configuration file is rewritten with another local address and `reload` is asked on the
//! control socket: the pinned `l2xdp_config` holds the new address, and the reload report
//! names the change. With IPCP turned off by a second reload, the gateway is unset (0). The
//! echo itself is `dataplane/tests/gateway_echo.rs`. The SCCRQ budget (`[l2tp.limits]
//! xdp_sccrq_per_sec`, issue 15) is set the same way: at start-up (its default) and by a
//! reload that changes it (`dataplane/tests/sccrq_budget.rs` drops SCCRQs with it). Needs root
//! (`l2xdp_lab::require_root`).

use std::net::Ipv4Addr;
use std::path::Path;

use l2xdp_dataplane::XdpDataPlane;
use l2xdp_lab::cp::l2xdpd::{self, ask, Files, L2xdpd, Placement};
use l2xdp_lab::require_root;
use l2xdp_lab::scratch::Scratch;
use l2xdp_lab::topology::{Mode, Topology};

/// l2xdpd's configuration with `local_address`, IPCP `enabled` and, when given, the SCCRQ
/// budget.
fn write(s: &Scratch, local_address: Ipv4Addr, enabled: bool, budget: Option<u32>) -> Files {
    let limits = budget.map_or(String::new(), |b| {
        format!("\n[l2tp.limits]\nxdp_sccrq_per_sec = {b}\n")
    });
    let base = format!(
        r#"[l2tp]
host_name = "lns-gateway-reload"
{limits}
[ppp]
auth = ["chap"]

[ppp.ipcp]
enabled = {enabled}
local_address = "{local_address}"
pool = ["100.64.0.0/24"]
"#
    );
    l2xdpd::write_config(
        &s.dir,
        Path::new("base.toml"),
        &base,
        Placement::lab(&s.pins),
        1,
    )
    .expect("l2xdpd configuration")
}

/// The SCCRQ budget in the pinned configuration.
fn budget(pins: &Path) -> u32 {
    XdpDataPlane::open(pins)
        .expect("open pins")
        .config()
        .expect("config")
        .sccrq_budget
}

/// The gateway in the pinned configuration (`None`: unset).
fn gateway(pins: &Path) -> Option<Ipv4Addr> {
    let g = XdpDataPlane::open(pins)
        .expect("open pins")
        .config()
        .expect("config")
        .gateway4;
    (g != 0).then(|| Ipv4Addr::from(g.to_ne_bytes()))
}

#[test]
fn reload_moves_the_fast_paths_gateway() {
    if !require_root("reload_moves_the_fast_paths_gateway") {
        return;
    }
    let tag = "harden-gwreload";
    let topo = Topology::new(tag);
    let scratch = Scratch::new(tag);
    let _fp = topo.start_fast_path(&scratch.pins, Mode::Xdp);
    let first = Ipv4Addr::new(100, 64, 0, 1);
    let files = write(&scratch, first, true, None);
    let mut daemon = L2xdpd::start(
        Some(&topo.lns),
        l2xdp_lab::workspace_binary("l2xdpd").as_path(),
        &files,
        None,
    );
    assert_eq!(gateway(&scratch.pins), Some(first), "set at start-up");
    assert_eq!(
        budget(&scratch.pins),
        l2xdp_controlplane::l2tp::L2tpConfig::default()
            .limits
            .xdp_sccrq_per_sec,
        "the default budget"
    );

    // Another local address: the fast path's gateway follows.
    let second = Ipv4Addr::new(100, 64, 1, 1);
    write(&scratch, second, true, Some(500));
    let r = ask(&files.control_socket, r#"{"cmd":"reload"}"#);
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(budget(&scratch.pins), 500, "{r}");
    let changed = r["data"]["changed"].as_array().expect("changed").clone();
    assert!(changed.contains(&"gateway".into()), "{r}");
    assert_eq!(gateway(&scratch.pins), Some(second), "{r}");

    // The same file again: nothing to change.
    let r = ask(&files.control_socket, r#"{"cmd":"reload"}"#);
    assert_eq!(r["ok"], true, "{r}");
    assert!(
        !r["data"]["changed"]
            .as_array()
            .expect("changed")
            .contains(&"gateway".into()),
        "{r}"
    );
    assert_eq!(gateway(&scratch.pins), Some(second));

    // IPCP off: no gateway to answer for.
    write(&scratch, second, false, Some(500));
    let r = ask(&files.control_socket, r#"{"cmd":"reload"}"#);
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(gateway(&scratch.pins), None, "{r}");
    assert_eq!(daemon.stop().code(), Some(0));
}
