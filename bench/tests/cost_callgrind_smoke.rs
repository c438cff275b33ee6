//! The callgrind half of `l2xdp-bench cost` on a tiny configuration: every worker case
//! forwards and delivers every frame on in-memory AF_XDP sockets (the driver fails otherwise),
//! and `l2xdp-bench cost --callgrind-only` runs each case under valgrind, writes well-formed
//! JSON with a positive instruction count per packet for every case, and the raw forwarder's
//! count below each L2TP path's (instruction counts are deterministic: not a timing
//! assertion). Needs valgrind (scripts/setup.sh installs it); no root.

use l2xdp_bench::callgrind::{drive, WorkerCase};

#[test]
fn every_worker_case_forwards_every_frame() {
    for case in WorkerCase::ALL {
        // 3 passes, the last one partial; 5 sessions so frames cycle through the table.
        let r = drive(case, 150, 5).expect("every frame forwarded and delivered");
        assert_eq!(r.case, case.name());
        assert_eq!((r.delivered, r.forwarded, r.passes), (150, 150, 3));
    }
}

#[test]
fn cost_callgrind_only_reports_instructions_per_packet() {
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("cost-callgrind-smoke");
    let _ = std::fs::remove_dir_all(&out);
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_l2xdp-bench"))
        .args(["cost", "--callgrind-only", "--callgrind-packets", "256"])
        .args(["--sessions", "16", "--out"])
        .arg(&out)
        .output()
        .expect("l2xdp-bench runs");
    assert!(
        o.status.success(),
        "l2xdp-bench cost --callgrind-only failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let text = std::fs::read_to_string(out.join("cost.json")).expect("cost.json written");
    let v: serde_json::Value = serde_json::from_str(&text).expect("well-formed JSON");
    assert_eq!(v["scenario"], "cost");
    assert!(v["forward"].is_null(), "--callgrind-only runs no XDP");
    let cg = &v["afxdp_callgrind"];
    assert!(cg["valgrind"]
        .as_str()
        .is_some_and(|s| s.starts_with("valgrind")));
    assert_eq!(cg["packets"], 256);
    let cases = cg["cases"].as_array().expect("cases");
    let names: Vec<&str> = cases.iter().filter_map(|c| c["case"].as_str()).collect();
    assert_eq!(
        names,
        WorkerCase::ALL.map(WorkerCase::name).to_vec(),
        "every case, raw first"
    );
    let ipp = |c: &serde_json::Value| c["instructions_per_packet"].as_f64().expect("Ir/packet");
    let raw = ipp(&cases[0]);
    assert!(raw > 0.0, "raw forwarder: {raw} Ir/packet");
    for c in &cases[1..] {
        let ir = c["ir"].as_array().expect("ir");
        assert!(ir[1].as_u64() > ir[0].as_u64(), "{c}: Ir(2N) > Ir(N)");
        assert!(
            ipp(c) > raw,
            "{c}: the L2TP path costs more than the raw copy"
        );
        assert!(c["ratio_to_raw"].as_f64().is_some_and(|r| r > 1.0), "{c}");
    }
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(table.contains("Ir/packet"), "{table}");
}
