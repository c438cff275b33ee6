//! Smoke run of the xsk-rs comparison cases of `l2xdp-bench afxdp` (`--features xskrs`): the
//! hand-written raw forwarder and the one on xsk-rs, both ways, a few thousand frames each, no
//! timing assertions. Checks that every frame reached the far sink through the xsk-rs worker
//! (so libxdp's program load was inhibited and its socket sat in aya's XSKMAP), that the
//! hand-written forwarder still runs after it on the same queue (the XSKMAP came back), and that
//! each xsk-rs case has a same-round ratio to its hand-written baseline. Needs root.
#![cfg(feature = "xskrs")]

use std::time::Duration;

use l2xdp_bench::afxdp::{self, Case};
use l2xdp_lab::require_root;

const PACKETS: u64 = 3000;
const ROUNDS: usize = 2;

#[test]
fn xskrs_smoke() {
    if !require_root("xskrs_smoke") {
        return;
    }
    let json = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("xskrs-smoke.json");
    let _ = std::fs::remove_file(&json);
    let cores = l2xdp_bench::machine::online_cpus();
    let cases = vec![
        Case::RawUp,
        Case::RawXskrsUp,
        Case::RawDown,
        Case::RawXskrsDown,
    ];
    let opts = afxdp::Options {
        rounds: ROUNDS,
        duration: Duration::ZERO,
        packets: Some(PACKETS),
        sessions: 8,
        gen_cpu: 0,
        worker_cpu: cores - 1,
        batch: 64,
        cases: cases.clone(),
        json: json.clone(),
        command: "xskrs_smoke".into(),
    };
    afxdp::run(&opts).expect("scenario");

    let text = std::fs::read_to_string(&json).expect("JSON written");
    let v: serde_json::Value = serde_json::from_str(&text).expect("well-formed JSON");
    let got = v["cases"].as_array().expect("cases");
    assert_eq!(got.len(), cases.len());
    for (c, want) in got.iter().zip(&cases) {
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
        assert_eq!(c["frame_out_bytes"].as_f64(), Some(64.0), "{name}: sizes");
        assert_eq!(c["baseline"], want.baseline().name());
        assert_eq!(c["ratio"]["n"], ROUNDS, "{name}: a ratio per round");
    }
}
