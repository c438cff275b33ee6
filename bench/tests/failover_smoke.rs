//! The failover scenario on a tiny configuration: against a real `l2xdpd`, kill -9 and restart,
//! the LAC emulator without RFC 4951; every tunnel is resumed, no tunnel or session is lost on either
//! side, and the JSON report is well formed. No timing is asserted.

use std::time::Duration;

use l2xdp_bench::failover::{self, Options};
use l2xdp_bench::setup_rate;

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn failover_smoke() {
    let l2xdpd = setup_rate::default_l2xdpd();
    // A failure under `make test` (L2XDP_REQUIRE_ROOT=1), else a recorded skip.
    if !l2xdp_lab::skip::require_binary("failover_smoke", &l2xdpd) {
        return;
    }
    let opts = Options {
        tunnels: 3,
        sessions: 4,
        in_flight: 5,
        l2xdpd,
        limit: Duration::from_secs(120),
        // A LAC without RFC 4951 (as xl2tpd): only transparent resume keeps its tunnels.
        lac_failover: false,
    };
    let r = failover::run(&opts).await.expect("the scenario runs");
    eprintln!("{}", failover::table(&r));
    assert_eq!((r.tunnels, r.sessions), (3, 12));
    // l2xdpd: every tunnel recovered, every session restored with PPP up, nothing lost.
    let s = &r.lns_after;
    assert_eq!(s.tunnels_recovered, 3);
    assert_eq!(
        s.tunnels_resumed, 3,
        "resumed: the same control connections"
    );
    assert_eq!(
        (s.sessions, s.ppp_up, s.installed, s.restored),
        (12, 12, 12, 12)
    );
    assert_eq!(s.store_errors, 0);
    // The store held every tunnel and session.
    assert_eq!((r.state_tunnels, r.state_sessions), (3, 12));
    assert!(
        r.state_files >= 1 && r.state_bytes > 0,
        "{} state files",
        r.state_files
    );
    // The emulator: nothing went down, no recovery tunnel looked like a new tunnel.
    let l = &r.lac_after;
    assert_eq!((l.tunnels, l.sessions, l.ppp_up), (3, 12, 12));
    assert_eq!(
        (
            l.tunnels_down,
            l.sessions_down,
            l.recovery_failed,
            l.tunnels_up
        ),
        (0, 0, 0, 0)
    );
    assert!(r.rss_kib.iter().all(|&k| k > 0), "{:?}", r.rss_kib);
    let path = std::env::temp_dir().join(format!("l2xdp-failover-{}.json", std::process::id()));
    setup_rate::write_json(&path, &r).expect("write");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("JSON");
    assert_eq!(v["scenario"], "failover");
    assert_eq!(v["sessions"], 12);
    assert_eq!(v["mode"], "control plane (in-memory fast path)");
    assert_eq!(v["lns_after"]["tunnels_recovered"], 3);
    assert_eq!(v["lac_after"]["sessions_down"], 0);
    assert!(v["date"].as_str().is_some_and(|d| d.len() == 20));
    assert!(v["machine"]["kernel"]
        .as_str()
        .is_some_and(|k| !k.is_empty()));
    let _ = std::fs::remove_file(&path);
}

/// `failover --fast-path xdp` at 2 × 3 sessions (root: network namespaces, XDP): the demo's
/// lab, traffic through XDP while l2xdpd is killed and restarted; every tunnel recovered,
/// every session kept at l2xdpd and in the pinned maps, traffic counted on both sides with
/// none lost and no fast-path drop, nothing down at the LAC, a new session afterwards,
/// nothing left behind, the JSON well formed. No timing is asserted.
#[test]
fn failover_xdp_smoke() {
    if !l2xdp_lab::require_root("failover_xdp_smoke") {
        return;
    }
    let bin = |name: &str| {
        let p = l2xdp_bench::lns::sibling_binary(name);
        assert!(
            p.exists(),
            "{name} is not built next to the tests (cargo build --workspace --bins)"
        );
        p
    };
    let opts = l2xdp_bench::failover_xdp::Options {
        tunnels: 2,
        sessions: 3,
        in_flight: 4,
        pps: 2000,
        seconds: 1,
        l2xdpd: bin("l2xdpd"),
        dataplane: bin("l2xdp-dataplane"),
        l2xdpctl: bin("l2xdpctl"),
        limit: Duration::from_secs(120),
    };
    let r = l2xdp_bench::failover_xdp::run(&opts).expect("the scenario runs");
    eprintln!("{}", l2xdp_bench::failover_xdp::table(&r));
    assert!(r.ok, "{:?}", r.failures);
    assert_eq!((r.tunnels, r.sessions), (2, 6));
    let d = &r.run.failover;
    assert_eq!(d.tunnels_recovered, 2);
    assert_eq!((d.sessions_before, d.sessions_kept), (6, 6));
    assert_eq!((d.fast_path_before, d.fast_path_kept), (6, 6));
    assert_eq!((d.data_lost, d.xdp_drops, d.lac_down_events), (0, 0, 0));
    assert!(d.l2xdpd_rss_kib.iter().all(|&k| k > 0), "{d:?}");
    let t = &r.run.traffic;
    assert!(t.up_sent > 0 && t.down_sent > 0, "{t:?}");
    assert_eq!((t.up_received, t.down_received), (t.up_sent, t.down_sent));
    assert_eq!(
        r.run.new_session.up_received,
        r.run.new_session.down_received
    );
    assert!(r.run.lab.cleaned_up);
    let path = std::env::temp_dir().join(format!("l2xdp-failover-xdp-{}.json", std::process::id()));
    setup_rate::write_json(&path, &r).expect("write");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("JSON");
    let _ = std::fs::remove_file(&path);
    assert_eq!(v["scenario"], "failover");
    assert_eq!(v["fast_path"], "xdp");
    assert_eq!(v["sessions"], 6);
    assert_eq!(v["ok"], true);
    assert_eq!(v["run"]["failover"]["data_lost"], 0);
    assert_eq!(v["run"]["traffic"]["lost"], 0);
    assert!(v["date"].as_str().is_some_and(|d| d.len() == 20));
    assert!(v["machine"]["kernel"]
        .as_str()
        .is_some_and(|k| !k.is_empty()));
}
