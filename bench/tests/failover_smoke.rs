//! The failover scenario on a tiny configuration: against a real `l2xdpd`, kill -9 and restart
//! with RFC 4951 failover; every tunnel is recovered, no tunnel or session is lost on either
//! side, and the JSON report is well formed. No timing is asserted.

use std::time::Duration;

use l2xdp_bench::failover::{self, Options};
use l2xdp_bench::setup_rate;

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn failover_smoke() {
    let l2xdpd = setup_rate::default_l2xdpd();
    if !l2xdpd.exists() {
        eprintln!(
            "*** SKIPPING failover_smoke: no l2xdpd binary next to the tests \
             (cargo build -p l2xdp-controlplane --bin l2xdpd, or run `make test`) ***"
        );
        return;
    }
    let opts = Options {
        tunnels: 3,
        sessions: 4,
        in_flight: 5,
        l2xdpd,
        limit: Duration::from_secs(120),
    };
    let r = failover::run(&opts).await.expect("the scenario runs");
    eprintln!("{}", failover::table(&r));
    assert_eq!((r.tunnels, r.sessions), (3, 12));
    // l2xdpd: every tunnel recovered, every session restored with PPP up, nothing lost.
    let s = &r.lns_after;
    assert_eq!(s.tunnels_recovered, 3);
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
