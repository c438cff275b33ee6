//! `l2xdp-dataplane show` (issue 16 item 4): tables by default and one JSON document with
//! `--json` — no Rust `Debug` output — and the counters an operator reads there survive a
//! session's removal: on the lab's `lac` — `lns` — `core` veths (XDP mode), two subscribers
//! send traffic both ways, one is removed, and the totals' packets AND bytes stay what they
//! were (before 29c608a the bytes were the sum of the live sessions' counters and dropped at
//! a removal while the packets, per-verdict counters, stayed). The session's row goes with it.
//!
//! Needs root (`l2xdp_lab::require_root`).

mod common;

use std::collections::BTreeMap;

use common::skip_unless_root;
use l2xdp_dataplane::{DataPlane, XdpDataPlane};
use l2xdp_lab::topology::{Mode, PeerPort, Pins, Topology, CORE0, LAC0};
use l2xdp_lab::traffic::{
    classify_downstream, classify_upstream, downstream_frame, ip_socket, upstream_frame, Counter,
    Sub,
};
use l2xdp_wire::datapath::{SessionKey, TxSeq};
use serde_json::Value;

/// Packets per subscriber and direction.
const N: usize = 10;

fn show(pins: &Pins, json: bool) -> String {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_l2xdp-dataplane"));
    cmd.arg("--pin-dir").arg(pins.path()).arg("show");
    if json {
        cmd.arg("--json");
    }
    let out = cmd.output().expect("run l2xdp-dataplane show");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "show failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

fn show_json(pins: &Pins) -> Value {
    let text = show(pins, true);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("show --json is not JSON ({e}): {text}"))
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[test]
fn show_is_a_table_or_json_and_keeps_the_bytes_of_removed_sessions() {
    let test = "show_is_a_table_or_json_and_keeps_the_bytes_of_removed_sessions";
    if skip_unless_root(test) {
        return;
    }
    let tag = "i16-dpdefects-show";
    let topo = Topology::new(tag);
    let pins = Pins::under_sys_fs_bpf(tag);
    let fp = topo.start_fast_path(pins.path(), Mode::Xdp);
    let subs = Sub::numbered(2);
    {
        let _g = topo.lns.enter();
        let mut dp = XdpDataPlane::open(pins.path()).expect("open pins");
        for s in subs.values() {
            dp.install(&s.lns_entry()).expect("install");
        }
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
    for sub in subs.values() {
        let mut tx = TxSeq::default();
        for i in 0..N as u32 {
            lac_tx.send(&upstream_frame(sub, &mut tx, i));
            core_tx.send(&downstream_frame(sub, i));
        }
    }
    core_rx.wait(2 * N, "upstream");
    lac_rx.wait(2 * N, "downstream");

    // The table: no Debug structs, the columns l2xdpctl uses.
    let table = show(&pins, false);
    eprintln!("{table}");
    for bad in ["CoreCounters", "Traffic {", "SessionKey", "Subscriber {"] {
        assert!(!table.contains(bad), "Debug output ({bad}) in:\n{table}");
    }
    for header in [
        "SESSION",
        "UP-BYTES",
        "DOWN-BYTES",
        "DROP-REASON",
        "KERNEL-PATH",
    ] {
        assert!(table.contains(header), "no {header} column in:\n{table}");
    }
    assert!(
        table.lines().any(|l| l.starts_with("v2 9/200 ")
            && l.contains("100.64.0.10")
            && l.split_whitespace().nth(3) == Some(&N.to_string())),
        "the first session's row:\n{table}"
    );

    // JSON: per-session rows whose bytes add up to the totals.
    let before = show_json(&pins);
    let sessions = before["sessions"].as_array().expect("sessions");
    assert_eq!(sessions.len(), 2, "{before}");
    let total = &before["snapshot"]["total"];
    for dir in ["upstream", "downstream"] {
        assert_eq!(u(&total[dir]["packets"]), 2 * N as u64, "{dir}: {before}");
        let per: u64 = sessions.iter().map(|s| u(&s[dir]["bytes"])).sum();
        assert!(per > 0, "{dir} bytes counted: {before}");
        assert_eq!(
            u(&total[dir]["bytes"]),
            per,
            "{dir}: totals are the sessions' sum"
        );
        for s in sessions {
            assert_eq!(u(&s[dir]["packets"]), N as u64, "{dir}: {s}");
        }
    }

    // Remove the first session: its row goes, the totals stay.
    let first = subs.values().next().expect("a subscriber").lns_key;
    {
        let _g = topo.lns.enter();
        XdpDataPlane::open(pins.path())
            .expect("open pins")
            .remove(&first)
            .expect("remove");
    }
    let after = show_json(&pins);
    let rows = after["sessions"].as_array().expect("sessions");
    assert_eq!(rows.len(), 1, "{after}");
    assert_eq!(u(&rows[0]["session"]), 201, "{after}");
    for dir in ["upstream", "downstream"] {
        for what in ["packets", "bytes"] {
            assert_eq!(
                u(&after["snapshot"]["total"][dir][what]),
                u(&total[dir][what]),
                "total {dir} {what} after the removal: before {total}, after {}",
                after["snapshot"]["total"]
            );
        }
    }
    drop(fp);
}
