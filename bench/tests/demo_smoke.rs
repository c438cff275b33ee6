//! `make run`'s demo at a tiny scale, as a process (`l2xdp-bench demo --tunnels 1 --sessions 4
//! --seconds 1 --json FILE`): it exits 0, its report shows the sessions up, traffic counted on
//! both sides with nothing lost, the failover recovered with every session kept, a new session
//! after it, what the operator's tool `l2xdpctl` showed (its tunnels, its live `show stats`
//! reports, its `failover status`, its tables in the output) — and nothing is left behind (namespaces, l2xdpd processes, the scratch directory
//! with its bpffs mount and pins). Needs root (`l2xdp_lab::require_root`). No timing is asserted.

use std::path::Path;
use std::process::Command;

use l2xdp_lab::require_root;
use serde_json::Value;

#[test]
fn demo_runs_and_leaves_nothing_behind() {
    if !require_root("demo_runs_and_leaves_nothing_behind") {
        return;
    }
    let bench = Path::new(env!("CARGO_BIN_EXE_l2xdp-bench"));
    let dir = bench.parent().expect("target directory");
    for b in ["l2xdpd", "l2xdp-dataplane", "l2xdpctl"] {
        assert!(
            dir.join(b).exists(),
            "{b} is not built next to l2xdp-bench (cargo build --workspace --bins)"
        );
    }
    let json = std::env::temp_dir().join(format!("l2xdp-demo-smoke-{}.json", std::process::id()));
    let out = Command::new(bench)
        .args([
            "demo",
            "--tunnels",
            "1",
            "--sessions",
            "4",
            "--seconds",
            "1",
        ])
        .arg("--json")
        .arg(&json)
        .output()
        .expect("run l2xdp-bench demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "exit status {}", out.status);
    assert!(stdout.contains("\nPASS: "), "the verdict is printed");
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&json).expect("the JSON report"))
        .expect("JSON");
    let _ = std::fs::remove_file(&json);

    assert_eq!(r["scenario"], "demo");
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["failures"], serde_json::json!([]));
    assert_eq!((&r["tunnels"], &r["sessions"]), (&1.into(), &4.into()));
    // Sessions up and installed at l2xdpd.
    let b = &r["bringup"];
    assert_eq!(
        (&b["tunnels"], &b["sessions_up"], &b["installed"]),
        (&1.into(), &4.into(), &4.into())
    );
    // Traffic counted on both sides, every packet sent arrived.
    let t = &r["traffic"];
    let n = |v: &Value| v.as_u64().expect("a count");
    assert!(n(&t["up_sent"]) > 0 && n(&t["down_sent"]) > 0, "{t}");
    assert_eq!(t["up_received"], t["up_sent"], "{t}");
    assert_eq!(t["down_received"], t["down_sent"], "{t}");
    assert_eq!(t["lost"], 0, "{t}");
    // The drill: recovered, every session kept on both sides, nothing lost or dropped.
    let f = &r["failover"];
    assert_eq!(f["tunnels_recovered"], 1, "{f}");
    assert_eq!(f["sessions_kept"], 4, "{f}");
    assert_eq!(f["fast_path_kept"], 4, "{f}");
    assert_eq!(f["data_lost"], 0, "{f}");
    assert_eq!(f["xdp_drops"], 0, "{f}");
    assert_eq!(f["lac_down_events"], 0, "{f}");
    // A new session afterwards carried its packets.
    let s = &r["new_session"];
    assert_eq!(s["user"], "user4");
    assert_eq!(
        (&s["up_received"], &s["down_received"]),
        (&10.into(), &10.into()),
        "{s}"
    );
    // l2xdpctl: show tunnels after the bring-up, show stats live (the fast path forwarded the
    // traffic both ways), failover status after the drill; and its tables were printed.
    let o = &r["l2xdpctl"];
    assert_eq!(
        (&o["tunnels"], &o["tunnel_sessions"]),
        (&1.into(), &4.into()),
        "{o}"
    );
    assert!(n(&o["stats_reports"]) >= 1, "{o}");
    assert!(
        n(&o["fast_path_upstream"]) > 0 && n(&o["fast_path_downstream"]) > 0,
        "{o}"
    );
    assert_eq!(o["fast_path_dropped"], 0, "{o}");
    let rec = o["recoveries"].as_array().expect("recoveries");
    assert_eq!(rec.len(), 1, "{o}");
    assert_eq!(rec[0]["outcome"], "recovered", "{o}");
    assert_eq!(rec[0]["sessions"], 4, "{o}");
    for table in [
        "$ l2xdpctl show tunnels",
        "PEER-FAILOVER",
        "$ l2xdpctl show stats",
        "DROP-REASON",
        "$ l2xdpctl failover status",
        "LAST-RECOVERY",
    ] {
        assert!(stdout.contains(table), "{table:?} is printed");
    }

    // Nothing left behind: the demo says so, and we look for ourselves.
    let lab = &r["lab"];
    assert_eq!(lab["cleaned_up"], true, "{lab}");
    let names: Vec<&str> = lab["namespaces"]
        .as_array()
        .expect("namespaces")
        .iter()
        .map(|v| v.as_str().expect("a name"))
        .collect();
    assert_eq!(names.len(), 3);
    let netns = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns");
    let netns = String::from_utf8_lossy(&netns.stdout);
    for name in &names {
        assert!(
            !netns.split_whitespace().any(|w| w == *name),
            "{name} is left"
        );
    }
    let pids = lab["l2xdpd_pids"].as_array().expect("pids");
    assert_eq!(pids.len(), 2, "the first l2xdpd and the restarted one");
    for p in pids {
        let comm = std::fs::read_to_string(format!("/proc/{}/comm", n(p))).unwrap_or_default();
        assert_ne!(comm.trim(), "l2xdpd", "l2xdpd {p} is still running");
    }
    let scratch = lab["scratch"].as_str().expect("scratch");
    assert!(!Path::new(scratch).exists(), "{scratch} is left");
    let mounts = std::fs::read_to_string("/proc/mounts").expect("mounts");
    assert!(
        !mounts.contains(scratch),
        "the bpffs in {scratch} is still mounted"
    );
}
