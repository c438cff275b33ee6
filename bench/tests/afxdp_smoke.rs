//! Smoke run of `l2xdp-bench afxdp`: a few thousand frames per case (the generator stays a
//! window ahead of the sink, so nothing overflows), no timing assertions. Checks the JSON report is
//! well-formed and complete, that every frame reached the far sink through the worker — the
//! raw AF_XDP forwarder and AF_XDP mode's decap and encap (frame sizes as the fast path makes
//! them) — that every case has a same-round ratio to its raw baseline, and that namespaces and
//! pins are cleaned up. Needs root (`l2xdp_lab::require_root`).

use std::time::Duration;

use l2xdp_bench::afxdp::{self, Case};
use l2xdp_lab::require_root;

const PACKETS: u64 = 3000;
const ROUNDS: usize = 2;

#[test]
fn afxdp_smoke() {
    if !require_root("afxdp_smoke") {
        return;
    }
    let json = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("afxdp-smoke.json");
    let _ = std::fs::remove_file(&json);
    let cores = l2xdp_bench::machine::online_cpus();
    let opts = afxdp::Options {
        rounds: ROUNDS,
        duration: Duration::ZERO,
        packets: Some(PACKETS),
        sessions: 8,
        gen_cpu: 0,
        worker_cpu: cores - 1,
        batch: 64,
        cases: Case::ALL.to_vec(),
        json: json.clone(),
        command: "afxdp_smoke".into(),
    };
    afxdp::run(&opts).expect("scenario");

    let text = std::fs::read_to_string(&json).expect("JSON written");
    let v: serde_json::Value = serde_json::from_str(&text).expect("well-formed JSON");
    assert_eq!(v["scenario"], "afxdp");
    assert_eq!(v["mode"], "afxdp");
    assert_eq!(v["window"], afxdp::WINDOW);
    assert!(v["topology"].as_str().is_some_and(|s| s.contains("lns")));
    let cases = v["cases"].as_array().expect("cases");
    assert_eq!(cases.len(), Case::ALL.len());
    for (c, want) in cases.iter().zip(Case::ALL) {
        let name = want.name();
        assert_eq!(c["name"], name);
        let n = |k: &str| c[k].as_u64().unwrap_or_else(|| panic!("{name}.{k}"));
        assert_eq!(n("generated"), PACKETS * ROUNDS as u64, "{name}: generated");
        assert_eq!(
            n("received"),
            n("generated"),
            "{name}: every frame at the sink"
        );
        assert_eq!(
            n("worker_sent"),
            n("generated"),
            "{name}: sent by the worker"
        );
        assert_eq!(n("worker_dropped"), 0, "{name}: worker drops");
        let samples = c["samples"].as_array().expect("samples");
        assert_eq!(samples.len(), ROUNDS, "{name}");
        for s in samples {
            assert_eq!(s["worker_rx"].as_u64(), Some(PACKETS), "{name}: worker rx");
        }
        let (fin, fout) = (n("frame_in_bytes"), c["frame_out_bytes"].as_f64());
        match want {
            Case::AfxdpDecapV2 => assert_eq!((fin, fout), (102, Some(64.0)), "{name}: sizes"),
            Case::AfxdpEncapV2 => assert_eq!((fin, fout), (64, Some(102.0)), "{name}: sizes"),
            _ => assert_eq!((fin, fout), (64, Some(64.0)), "{name}: sizes"),
        }
        assert_eq!(c["baseline"], want.baseline().name());
        assert_eq!(c["ratio"]["n"], ROUNDS, "{name}: a ratio per round");
        assert!(
            c["mpps"]["median"].as_f64().is_some_and(|m| m > 0.0),
            "{name}.mpps"
        );
    }

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
    assert!(!std::path::Path::new(&format!("/sys/fs/bpf/l2xdp-bench-afxdp-{pid}")).exists());
}
