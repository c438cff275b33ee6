//! Smoke run of `l2xdp-bench latency`: a few hundred stamped frames per case at two slow
//! rates (fewer than a receive ring holds, so nothing can overflow), no timing assertions.
//! Checks the JSON report is well-formed and complete, that every frame the generator sent
//! reached the AF_XDP receiver through each case (XDP_REDIRECT, XDP mode decap, raw AF_XDP
//! forwarder, AF_XDP mode decap) with its stamp intact, that the histogram holds one latency
//! per received frame, that the SVG was written, and that namespaces and pins are cleaned up.
//! Needs root (`l2xdp_lab::require_root`).

use std::time::Duration;

use l2xdp_bench::latency::{self, Case};
use l2xdp_lab::require_root;

const PACKETS: u64 = 400;
const ROUNDS: usize = 2;
const RATES: [u64; 2] = [5_000, 20_000];

#[test]
fn latency_smoke() {
    if !require_root("latency_smoke") {
        return;
    }
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    let json = dir.join("latency-smoke.json");
    let svg = dir.join("latency-smoke.svg");
    let _ = std::fs::remove_file(&json);
    let _ = std::fs::remove_file(&svg);
    let cores = l2xdp_bench::machine::online_cpus();
    let opts = latency::Options {
        rates: RATES.to_vec(),
        rounds: ROUNDS,
        duration: Duration::ZERO,
        packets: Some(PACKETS),
        sessions: 8,
        gen_cpu: 0,
        worker_cpu: cores - 1,
        batch: 4,
        worker_batch: 64,
        cases: Case::ALL.to_vec(),
        json: json.clone(),
        svg: Some(svg.clone()),
        command: "latency_smoke".into(),
    };
    latency::run(&opts).expect("scenario");

    let text = std::fs::read_to_string(&json).expect("JSON written");
    let v: serde_json::Value = serde_json::from_str(&text).expect("well-formed JSON");
    assert_eq!(v["scenario"], "latency");
    assert_eq!(v["clock"], "CLOCK_MONOTONIC");
    assert!(v["machine"]["kernel"]
        .as_str()
        .is_some_and(|k| !k.is_empty()));
    assert!(v["topology"].as_str().is_some_and(|s| s.contains("core0")));
    let points = v["points"].as_array().expect("points");
    assert_eq!(points.len(), RATES.len());
    for (p, rate) in points.iter().zip(RATES) {
        assert_eq!(p["rate_pps"], rate);
        let cases = p["cases"].as_array().expect("cases");
        assert_eq!(cases.len(), Case::ALL.len());
        for (c, want) in cases.iter().zip(Case::ALL) {
            let name = format!("{}@{rate}", want.name());
            assert_eq!(c["name"], want.name());
            assert_eq!(c["baseline"], want.baseline().name());
            let n = |k: &str| c[k].as_u64().unwrap_or_else(|| panic!("{name}.{k}"));
            assert_eq!(n("sent"), PACKETS * ROUNDS as u64, "{name}: sent");
            assert_eq!(n("worker_dropped"), 0, "{name}: worker drops");
            assert_eq!(n("foreign"), 0, "{name}: unstamped frames");
            assert_eq!(n("received"), n("sent"), "{name}: every frame received");
            assert_eq!(n("lost"), 0, "{name}: lost");
            let lat = &c["latency"];
            assert_eq!(
                lat["count"].as_u64(),
                Some(n("received")),
                "{name}: one latency per frame"
            );
            let q = |k: &str| {
                lat[k]
                    .as_u64()
                    .unwrap_or_else(|| panic!("{name}.latency.{k}"))
            };
            assert!(
                q("min_ns") <= q("p50_ns")
                    && q("p50_ns") <= q("p99_ns")
                    && q("p99_ns") <= q("p999_ns")
                    && q("p999_ns") <= q("max_ns"),
                "{name}: percentiles ordered: {lat}"
            );
            let frame = n("frame_bytes");
            match want {
                Case::Xdp | Case::Afxdp => assert_eq!(frame, 102, "{name}: L2TPv2 frames"),
                _ => assert_eq!(frame, 64, "{name}: plain frames"),
            }
            if want != want.baseline() {
                assert!(
                    c["p50_ratio"].as_f64().is_some(),
                    "{name}: ratio to baseline"
                );
            }
            let samples = c["samples"].as_array().expect("samples");
            assert_eq!(samples.len(), ROUNDS, "{name}");
            for s in samples {
                assert_eq!(s["sent"].as_u64(), Some(PACKETS), "{name}: per round");
                assert_eq!(s["latency"]["count"], s["received"], "{name}: per round");
            }
        }
    }
    let plot = std::fs::read_to_string(&svg).expect("SVG written");
    assert!(plot.starts_with("<svg") && plot.contains("afxdp"), "SVG");

    // Cleaned up: namespaces and pins.
    let pid = std::process::id();
    let netns = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    let netns = String::from_utf8_lossy(&netns.stdout);
    assert!(
        !netns.contains(&format!("-{pid}-")),
        "namespaces left: {netns}"
    );
    assert!(!std::path::Path::new(&format!("/sys/fs/bpf/l2xdp-bench-latency-{pid}")).exists());
}
