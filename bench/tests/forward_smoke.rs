//! Smoke run of `l2xdp-bench forward`: a few thousand frames per case, no timing assertions.
//! Checks the JSON report is well-formed and complete, that every frame the generator offered
//! reached the far sink when the fast path dropped nothing (swapmac: came back to lac0, whose
//! counter does not see the generator's own frames), that the fast path forwarded every
//! decap/encap frame — in particular every frame of the bpf_stats pass, so the cost is the
//! forwarding path's — that every case has a cost ratio to swapmac, and that namespaces, pins
//! and the bpf_stats sysctl are cleaned up. Needs root (`l2xdp_lab::require_root`).
//!
//! The generator is the probe's choice: live-frame test runs where the kernel allows them,
//! else AF_PACKET; `L2XDP_FORCE_PROBE=live_frames=off` runs the AF_PACKET one on any kernel.
//! Either way the report must name it and carry its ceiling, measured every round into a drop
//! sink that counted every frame offered.

use std::time::Duration;

use l2xdp_bench::cases::Case;
use l2xdp_bench::forward;
use l2xdp_bench::pktgen::Kind;
use l2xdp_lab::require_root;

const PACKETS: u64 = 3000;
const ROUNDS: usize = 2;

#[test]
fn forward_smoke() {
    if !require_root("forward_smoke") {
        return;
    }
    let stats_before =
        std::fs::read_to_string("/proc/sys/kernel/bpf_stats_enabled").expect("sysctl");
    let json = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("forward-smoke.json");
    let _ = std::fs::remove_file(&json);
    let opts = forward::Options {
        rounds: ROUNDS,
        duration: Duration::ZERO,
        packets: Some(PACKETS),
        sessions: 8,
        cpu: 0,
        cases: Case::ALL.to_vec(),
        json: json.clone(),
        command: "forward_smoke".into(),
        generator: Kind::for_this_kernel(),
    };
    eprintln!("forward_smoke: generator {}", opts.generator.describe());
    forward::run(&opts).expect("scenario");

    let text = std::fs::read_to_string(&json).expect("JSON written");
    let v: serde_json::Value = serde_json::from_str(&text).expect("well-formed JSON");
    assert_eq!(v["scenario"], "forward");
    assert_eq!(v["mode"], "xdp");
    assert_eq!(v["generator_cpu"], 0);
    for k in ["kernel", "cpu_model"] {
        assert!(
            v["machine"][k].as_str().is_some_and(|s| !s.is_empty()),
            "machine.{k}"
        );
    }
    assert!(v["machine"]["cores"].as_u64().is_some_and(|n| n >= 1));
    assert!(v["topology"].as_str().is_some_and(|s| s.contains("lns")));
    assert_eq!(v["generator"], opts.generator.name(), "generator named");
    let live = opts.generator == Kind::LiveFrames;
    let ceiling = v["generator_ceiling"].as_array().expect("ceiling samples");
    assert_eq!(ceiling.len(), ROUNDS, "a ceiling pass per round");
    for c in ceiling {
        assert_eq!(
            c["offered"].as_u64(),
            Some(PACKETS),
            "ceiling: frames offered"
        );
        assert_eq!(
            c["received"].as_u64(),
            Some(PACKETS),
            "ceiling: the drop sink counted every frame"
        );
        assert!(c["mpps"].as_f64().is_some_and(|m| m > 0.0), "ceiling Mpps");
    }
    assert!(
        v["generator_ceiling_mpps"]["median"]
            .as_f64()
            .is_some_and(|m| m > 0.0),
        "ceiling summary"
    );
    let cases = v["cases"].as_array().expect("cases");
    assert_eq!(cases.len(), Case::ALL.len());
    for (c, want) in cases.iter().zip(Case::ALL) {
        let name = want.name();
        assert_eq!(c["name"], name);
        let n = |k: &str| c[k].as_u64().unwrap_or_else(|| panic!("{name}.{k}"));
        // A timed pass and a bpf_stats pass of PACKETS each per round.
        assert_eq!(
            n("generated"),
            2 * PACKETS * ROUNDS as u64,
            "{name}: generated"
        );
        assert_eq!(
            c["samples"].as_array().map(Vec::len),
            Some(ROUNDS),
            "{name}"
        );
        let fastpath = matches!(want, Case::DecapV2 | Case::EncapV2);
        assert_eq!(
            n("verified_rounds"),
            ROUNDS as u64,
            "{name}: verified rounds"
        );
        assert_eq!(n("stats_generated"), PACKETS * ROUNDS as u64, "{name}");
        for s in c["samples"].as_array().expect("samples") {
            let m = |k: &str| {
                s[k].as_u64()
                    .unwrap_or_else(|| panic!("{name}: sample.{k}"))
            };
            assert_eq!(s["path_verified"], true, "{name}: sample verified");
            assert_eq!(m("stats_generated"), PACKETS, "{name}: stats pass frames");
            assert_eq!(m("prog_runs"), PACKETS, "{name}: LNS program runs");
            if live {
                assert_eq!(m("gen_runs"), PACKETS, "{name}: generator runs");
            }
            assert!(
                s["mpps"].as_f64().is_some_and(|x| x > 0.0),
                "{name}: a rate was measured"
            );
            assert_eq!(m("stats_received"), PACKETS, "{name}: stats pass at sink");
            assert_eq!(m("other_sink_received"), 0, "{name}: other sink");
            // Not asserted 0: another process may switch the statistics on (shared machine).
            assert!(
                s["timed_stats_runs"].as_u64().is_some(),
                "{name}: timed_stats_runs"
            );
            assert_eq!(m("stats_fastpath_other"), 0, "{name}: stats pass verdicts");
            assert_eq!(m("stats_fastpath_drops"), 0, "{name}: stats pass drops");
            let want_fwd = if fastpath { PACKETS } else { 0 };
            assert_eq!(
                m("stats_fastpath_forwarded"),
                want_fwd,
                "{name}: stats pass forwarded"
            );
        }
        if fastpath {
            // Nothing dropped or passed to the kernel by the fast path ...
            assert_eq!(
                n("fastpath_other"),
                0,
                "{name}: fast path verdicts other than forward"
            );
            assert_eq!(n("fastpath_forwarded"), n("generated"), "{name}: forwarded");
            assert_eq!(n("fastpath_drops"), 0, "{name}: drops");
        }
        // ... so every generated frame reaches the far sink.
        assert_eq!(n("received"), n("generated"), "{name}: sink count");
        assert_eq!(n("lost"), 0, "{name}: lost");
        let (fin, fout) = (n("frame_in_bytes"), c["frame_out_bytes"].as_f64());
        match want {
            Case::DecapV2 => assert_eq!((fin, fout), (102, Some(64.0)), "{name}: sizes"),
            Case::EncapV2 => assert_eq!((fin, fout), (64, Some(102.0)), "{name}: sizes"),
            _ => assert_eq!((fin, fout), (64, Some(64.0)), "{name}: sizes"),
        }
        for k in ["mpps", "ratio", "prog_ns", "cost_ratio"] {
            assert!(c[k]["median"].as_f64().is_some(), "{name}.{k}");
        }
        assert_eq!(c["cost_ratio"]["n"], ROUNDS, "{name}: cost ratio per round");
        if want == Case::SwapMac {
            assert_eq!(
                c["cost_ratio"]["median"], 1.0,
                "swapmac is its own cost baseline"
            );
            assert_eq!(c["direction"], "back");
        }
    }

    // Cleaned up: namespaces, pins, sysctl.
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
    assert!(!std::path::Path::new(&format!("/sys/fs/bpf/l2xdp-bench-{pid}")).exists());
    let stats_after =
        std::fs::read_to_string("/proc/sys/kernel/bpf_stats_enabled").expect("sysctl");
    assert_eq!(
        stats_after, stats_before,
        "kernel.bpf_stats_enabled restored"
    );
}
