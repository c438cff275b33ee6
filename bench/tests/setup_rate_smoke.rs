//! The setup-rate scenario on a tiny configuration: it runs against a real `l2xdpd`, every
//! session it opens reaches IPCP, and the JSON report is well formed. No timing is asserted.

use std::time::Duration;

use l2xdp_bench::setup_rate::{self, Options};

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn setup_rate_smoke() {
    let l2xdpd = setup_rate::default_l2xdpd();
    // A failure under `make test` (L2XDP_REQUIRE_ROOT=1), else a recorded skip.
    if !l2xdp_lab::skip::require_binary("setup_rate_smoke", &l2xdpd) {
        return;
    }
    let opts = Options {
        tunnels: 3,
        sessions: 4,
        in_flight: 5,
        l2xdpd,
        limit: Duration::from_secs(120),
        failover: false,
    };
    let r = setup_rate::run(&opts).await.expect("the scenario runs");
    assert_eq!(r.tunnels, 3);
    assert_eq!(r.sessions, 12);
    assert!(r.iccn_per_sec > 0.0 && r.ipcp_per_sec > 0.0);
    assert!(r.latency_us[0] <= r.latency_us[1] && r.latency_us[1] <= r.latency_us[3]);
    let path = std::env::temp_dir().join(format!("l2xdp-setup-rate-{}.json", std::process::id()));
    setup_rate::write_json(&path, &r).expect("write");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("JSON");
    assert_eq!(v["scenario"], "setup-rate");
    assert_eq!(v["sessions"], 12);
    assert!(v["machine"]["kernel"]
        .as_str()
        .is_some_and(|k| !k.is_empty()));
    let _ = std::fs::remove_file(&path);
}
