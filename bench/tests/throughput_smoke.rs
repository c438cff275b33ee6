//! Smoke run of the rate harness (`l2xdp-bench throughput`, `scale`, `cost`) on a tiny
//! configuration, `throughput` in XDP and AF_XDP modes: it runs, writes well-formed JSON with the environment and every case, SVG
//! files that are well-formed XML with an `<svg>` root, and — at a rate far below what the
//! path forwards, so that nothing is dropped — the generator's counts equal the receivers'
//! (sinks) and the fast path's, frame for frame and byte for byte (the L2TP overhead apart).
//! `throughput` runs with live L2TPv2 sessions (the LAC emulator through an `l2xdpd` process,
//! which must have been built: `cargo build -p l2xdp-controlplane --bin l2xdpd`).
//! No timing assertions: the rates themselves are not checked. Needs root
//! (`l2xdp_lab::require_root`).
//!
//! The generator is the probe's choice: live-frame test runs where the kernel allows them,
//! else AF_PACKET (`L2XDP_FORCE_PROBE=live_frames=off` forces the latter on any kernel); the
//! reports must name it, and with AF_PACKET carry its ceiling per case. `cost` runs its
//! default method (plain test runs, every output checked against the reference).

use std::path::Path;
use std::time::Duration;

use l2xdp_bench::live::SessionsFrom;
use l2xdp_bench::pktgen::Kind;
use l2xdp_bench::throughput::{self, Direction, Dut, Mode, Size};
use l2xdp_bench::{cost, lns, scale};
use l2xdp_lab::require_root;

/// Far below any rate this path forwards at: nothing is dropped (the DUT's NAPI kthreads run
/// SCHED_FIFO, [`RT_PRIO`], so that other jobs on the machine cannot hold them off for the
/// 25 ms the 256-frame veth ring lasts at this rate).
const RATE: f64 = 10_000.0;
const RT_PRIO: i32 = 50;

/// A minimal XML well-formedness check: tags balance, the root is `<svg>`.
fn assert_svg(path: &Path) {
    let text = std::fs::read_to_string(path).expect("SVG written");
    let body = text.trim_start();
    let body = body
        .strip_prefix("<?xml")
        .map(|r| &r[r.find("?>").expect("XML declaration ends") + 2..])
        .unwrap_or(body)
        .trim_start();
    assert!(
        body.starts_with("<svg"),
        "{}: root is not <svg>",
        path.display()
    );
    let mut stack: Vec<String> = Vec::new();
    let mut rest = body;
    while let Some(i) = rest.find('<') {
        rest = &rest[i + 1..];
        let j = rest.find('>').expect("tag closed");
        let tag = &rest[..j];
        rest = &rest[j + 1..];
        if tag.starts_with('!') || tag.starts_with('?') {
            continue;
        }
        if let Some(name) = tag.strip_prefix('/') {
            let open = stack.pop().expect("closing tag without opening");
            assert_eq!(open, name.trim(), "{}: tags balance", path.display());
        } else if !tag.ends_with('/') {
            let name = tag.split_whitespace().next().expect("tag name");
            stack.push(name.to_owned());
        }
    }
    assert!(stack.is_empty(), "{}: unclosed {stack:?}", path.display());
    assert!(text.contains("<rect") || text.contains("<path") || text.contains("<polyline"));
}

fn json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).expect("JSON written");
    serde_json::from_str(&text).expect("well-formed JSON")
}

fn assert_environment(v: &serde_json::Value, scenario: &str, mode: &str) {
    assert_eq!(v["scenario"], scenario);
    assert_eq!(v["mode"], mode);
    for k in ["kernel", "cpu_model"] {
        assert!(
            v["machine"][k].as_str().is_some_and(|s| !s.is_empty()),
            "machine.{k}"
        );
    }
    for k in [
        "topology",
        "receivers_napi",
        "sink",
        "pacing",
        "date",
        "command",
    ] {
        assert!(
            v[k].as_str().is_some_and(|s| !s.is_empty()),
            "{scenario}.{k}"
        );
    }
    assert!(v["generator_cpu"].as_u64().is_some());
    assert!(v["dut_cpu"].as_u64().is_some());
    assert_eq!(
        v["generator"],
        Kind::for_this_kernel().name(),
        "{scenario}: the generator the probe chose is named"
    );
    assert!(
        v["receivers_napi"]
            .as_str()
            .is_some_and(|s| s.contains("napi/la-")),
        "the DUT's NAPI kthreads are named: {}",
        v["receivers_napi"]
    );
}

/// Every trial: generator count = sink count (frames), bytes as the case changes them, and
/// for the fast-path cases every frame forwarded with no other verdict.
fn assert_delivered(c: &serde_json::Value) {
    let name = c["name"].as_str().expect("name").to_owned();
    let dut = c["dut"].as_str().expect("dut");
    let dir = c["direction"].as_str().expect("direction");
    let samples = c["samples"].as_array().expect("samples");
    assert!(!samples.is_empty(), "{name}: samples");
    for s in samples {
        // The AF_PACKET generator's ceiling, measured before the case: it sent into the drop
        // sink and the sink counted.
        if Kind::for_this_kernel() == Kind::AfPacket {
            assert!(
                s["generator_ceiling_mpps"]
                    .as_f64()
                    .is_some_and(|m| m > 0.0),
                "{name}: generator ceiling measured"
            );
        }
        let trials = s["trials"].as_array().expect("trials");
        assert!(!trials.is_empty(), "{name}: trials");
        for t in trials {
            let n = |k: &str| t[k].as_u64().unwrap_or_else(|| panic!("{name}: trial.{k}"));
            assert!(n("sent") > 0, "{name}: the generator sent");
            assert_eq!(
                n("received"),
                n("sent"),
                "{name}: sinks counted every frame sent"
            );
            assert_eq!(n("lost"), 0, "{name}: lost");
            assert_eq!(t["pass"], true, "{name}: pass");
            assert_eq!(
                n("received_up") + n("received_down"),
                n("received"),
                "{name}"
            );
            match dir {
                "up" => assert_eq!(n("received_down"), 0, "{name}: nothing downstream"),
                "down" => assert_eq!(n("received_up"), 0, "{name}: nothing upstream"),
                _ => assert!(
                    n("received_up").abs_diff(n("received_down")) <= 1,
                    "{name}: both ways alike"
                ),
            }
            if dut == "baseline" {
                assert_eq!(
                    n("received_bytes"),
                    n("sent_bytes"),
                    "{name}: bytes unchanged"
                );
                assert_eq!(n("fastpath_forwarded"), 0, "{name}: fast path idle");
            } else {
                assert_eq!(
                    n("fastpath_forwarded"),
                    n("sent"),
                    "{name}: every frame forwarded"
                );
                assert_eq!(n("fastpath_other"), 0, "{name}: no other verdict");
                // L2TP overhead, taken off upstream and put on downstream: 38 bytes per frame
                // for v2 (UDP, PPP) and installed v3 (over IP, no cookie); 54 for live v3
                // (the initiator's pseudowires: over UDP, RFC 3931 §4.1.2.2, no cookie, the
                // Default L2-Specific Sublayer, §4.6).
                let o = if dut == "v3" && c["sessions_from"] == "live" {
                    54
                } else {
                    38
                };
                let (sb, rb, sent) = (n("sent_bytes"), n("received_bytes"), n("sent"));
                match dir {
                    "up" => assert_eq!(sb - rb, o * sent, "{name}: decap removes {o} B"),
                    "down" => assert_eq!(rb - sb, o * sent, "{name}: encap adds {o} B"),
                    _ => assert_eq!(
                        rb + o * n("received_up"),
                        sb + o * n("received_down"),
                        "{name}: {o} B off each frame up, on each frame down"
                    ),
                }
            }
        }
    }
}

#[test]
fn throughput_scale_cost_smoke() {
    if !require_root("throughput_scale_cost_smoke") {
        return;
    }
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("rate-smoke");
    let _ = std::fs::remove_dir_all(&out);
    let cpus = l2xdp_bench::machine::online_cpus();
    let (cpu, dut_cpu) = (cpus - 1, 0);

    // Live v2 sessions need l2xdpd next to the tests; without it, installed ones (loudly), and
    // a failure under `make test` (L2XDP_REQUIRE_ROOT=1).
    let l2xdpd = lns::default_l2xdpd();
    let sessions_from = if l2xdpd.exists() {
        SessionsFrom::Live
    } else {
        assert!(
            !l2xdp_lab::skip::required(),
            "throughput_scale_cost_smoke: no l2xdpd next to the tests ({}) and \
             L2XDP_REQUIRE_ROOT=1: cargo build --workspace --bins",
            l2xdpd.display()
        );
        eprintln!(
            "*** throughput_smoke: no l2xdpd next to the tests (cargo build -p \
             l2xdp-controlplane --bin l2xdpd, or `make test`): SKIPPING live sessions, \
             running with installed ones ***"
        );
        SessionsFrom::Installed
    };

    // throughput: every direction, two sizes, both versions, at a fixed low rate.
    let opts = throughput::Options {
        mode: Mode::Xdp,
        directions: Direction::ALL.to_vec(),
        sizes: vec![Size::B64, Size::Imix],
        versions: vec![Dut::V2, Dut::V3],
        sessions: 24,
        sessions_from,
        l2xdpd,
        v3_sessions: 2,
        rounds: 1,
        trial: Duration::from_millis(100),
        steps: 0,
        retries: 0,
        loss: 1e-5,
        fixed_rate: Some(RATE),
        cpu,
        dut_cpu,
        rt_prio: RT_PRIO,
        out: out.clone(),
        command: "throughput_smoke".into(),
        batch: 64,
        generator: Kind::for_this_kernel(),
    };
    eprintln!("throughput_smoke: generator {}", opts.generator.describe());
    throughput::run(&opts).expect("throughput");
    let v = json(&out.join("throughput.json"));
    assert_environment(&v, "throughput", "xdp");
    let cases = v["cases"].as_array().expect("cases");
    assert_eq!(
        cases.len(),
        3 * 2 * 3,
        "directions × sizes × (baseline, v2, v3)"
    );
    let mut v3_cases = 0;
    for c in cases {
        assert_delivered(c);
        // The v2 sessions (and the baseline's addresses) came from the LAC emulator through
        // l2xdpd, the v3 pseudowires from the LCCE l2xdpd (its initiator role) through it.
        assert_eq!(c["sessions_from"], sessions_from.name(), "{}", c["name"]);
        if c["dut"] == "v3" {
            v3_cases += 1;
        }
        for k in [
            "no_drop_mpps",
            "no_drop_gbps",
            "overload_mpps",
            "generator_mpps",
        ] {
            assert!(c[k]["median"].as_f64().is_some(), "{}.{k}", c["name"]);
        }
        assert!(
            c["ratio"]["median"].as_f64().is_some(),
            "{}: ratio",
            c["name"]
        );
        let imix = c["size"] == "imix";
        let fb = c["frame_bytes"].as_f64().expect("frame_bytes");
        if c["dut"] == "baseline" && imix {
            // 7:4:1 of 64/570/1514 over the 24 templates: (7·64 + 4·570 + 1514) / 12.
            assert!((fb - 353.5).abs() < 0.01, "{}: IMIX mean {fb}", c["name"]);
        }
    }
    // Every v3 case (its generator's count = its sinks' in each trial, above) ran.
    assert_eq!(v3_cases, 3 * 2, "v3: directions × sizes");
    assert_svg(&out.join("throughput.svg"));

    // A search, tiny: it runs and records its trials (no figure is checked).
    let search = throughput::Options {
        directions: vec![Direction::Up],
        sizes: vec![Size::B64],
        versions: vec![Dut::V2],
        trial: Duration::from_millis(50),
        steps: 1,
        fixed_rate: None,
        out: out.join("search"),
        ..opts.clone()
    };
    let r = throughput::run(&search).expect("search");
    for c in &r.cases {
        let s = &c.samples[0];
        assert!(
            s.trials.len() >= 2 || s.generator_bound,
            "{}: overload + search trials",
            c.name
        );
        assert!(s.no_drop_mpps.is_none_or(|m| m > 0.0));
    }

    // scale: two session counts, fixed low rate.
    let sopts = scale::Options {
        mode: Mode::Xdp,
        sessions: vec![16, 200],
        directions: vec![Direction::Up, Direction::Down],
        sessions_from,
        l2xdpd: lns::default_l2xdpd(),
        rounds: 1,
        trial: Duration::from_millis(100),
        steps: 0,
        retries: 0,
        loss: 1e-5,
        fixed_rate: Some(RATE),
        cpu,
        dut_cpu,
        rt_prio: RT_PRIO,
        out: out.clone(),
        command: "scale_smoke".into(),
    };
    scale::run(&sopts).expect("scale");
    let v = json(&out.join("scale.json"));
    assert_environment(&v, "scale", "xdp");
    let points = v["points"].as_array().expect("points");
    assert_eq!(points.len(), 2);
    for (p, want) in points.iter().zip([16u64, 200]) {
        assert_eq!(p["sessions"], want);
        assert_eq!(p["sessions_from"], sessions_from.name());
        assert!(p["bytes_per_session"].as_f64().is_some_and(|b| b > 0.0));
        // Each per-session map as the loader sizes it for that many sessions.
        let sizes = l2xdp_dataplane::loader::MapSizes::for_sessions(want as u32);
        for m in p["maps"].as_array().expect("maps") {
            let expect = match m["map"].as_str().expect("name") {
                "l2xdp_sessions" => sizes.slots,
                "l2xdp_slots" | "l2xdp_sub6" => sizes.sessions,
                "l2xdp_profiles" | "l2xdp_ac" => sizes.profiles,
                "l2xdp_circuits" => sizes.circuits,
                "l2xdp_seq" => sizes.sequenced,
                "l2xdp_dst4" => sizes.dst4_buckets,
                "l2xdp_sub4" => sizes.overflow4,
                other => panic!("unexpected map {other}"),
            };
            assert_eq!(
                m["max_entries"],
                u64::from(expect),
                "{}: sized for {want} sessions",
                m["map"]
            );
        }
        let cases = p["cases"].as_array().expect("cases");
        assert_eq!(cases.len(), 4, "up and down, baseline and v2");
        cases.iter().for_each(assert_delivered);
    }
    assert_svg(&out.join("scale.svg"));

    // cost, default method: plain test runs, every output checked, v3 included.
    let copts = cost::Options {
        method: cost::Method::Testrun,
        runs: Some(4096),
        v3_circuits: 5,
        seed: 7,
        rounds: 1,
        duration: Duration::ZERO,
        packets: Some(3000),
        sessions: 8,
        cpu,
        out: out.clone(),
        command: "cost_smoke".into(),
        callgrind_packets: 128,
        exe: env!("CARGO_BIN_EXE_l2xdp-bench").into(),
        callgrind_only: false,
    };
    cost::run(&copts).expect("cost");
    let v = json(&out.join("cost.json"));
    assert_eq!(v["scenario"], "cost");
    let progs = v["programs"].as_array().expect("programs");
    assert_eq!(progs.len(), l2xdp_bench::cost_testrun::TrCase::ALL.len());
    for p in progs {
        assert_eq!(
            p["verified_rounds"], 1,
            "{}: stats pass verified",
            p["case"]
        );
        assert!(
            p["ns_per_packet"]["median"].as_f64().is_some(),
            "{}",
            p["case"]
        );
    }
    // The callgrind half (cost_callgrind_smoke checks its figures).
    let cg = v["afxdp_callgrind"]["cases"]
        .as_array()
        .expect("callgrind cases");
    assert_eq!(cg.len(), 5, "{}", v["afxdp_callgrind"]["note"]);
    assert_eq!(v["method"], "testrun");
    for c in v["testrun"]["cases"].as_array().expect("testrun cases") {
        for s in c["samples"].as_array().expect("samples") {
            assert_eq!(s["runs"], 4096, "{}: runs", c["case"]);
            assert_eq!(s["mismatches"], 0, "{}: outputs = reference", c["case"]);
            assert_eq!(s["verified"], true, "{}", c["case"]);
            assert!(
                s["ns_per_packet"].as_f64().is_some_and(|x| x > 0.0),
                "{}: timed",
                c["case"]
            );
        }
        assert!(
            c["ratio_to_swapmac"]["median"].as_f64().is_some(),
            "{}: ratio",
            c["case"]
        );
        assert!(
            c["ratio_to_router"]["median"].as_f64().is_some(),
            "{}: ratio to the routed baseline",
            c["case"]
        );
        // One frame per session: 8 v2 (and the baselines), 5 v3 circuits.
        let v3 = c["case"].as_str().is_some_and(|n| n.ends_with("-v3"));
        assert_eq!(c["frames"], if v3 { 5 } else { 8 }, "{}", c["case"]);
    }
    assert_eq!(v["testrun"]["seed"], 7);
    assert_eq!(v["testrun"]["v3_sessions"], 5);
    assert!(v["testrun"]["udp_checksum_share"]["median"]
        .as_f64()
        .is_some());

    // afxdp mode: every direction (both: one raw forwarder serving la⇄lc), 64 B and IMIX, v2
    // and v3 (worker sockets on the attachment circuits too), each beside the raw AF_XDP
    // forwarder, at the same low rate: the sinks count every frame the generator sent, the
    // fast path handed every v2/v3 frame to the worker, the bytes change by the L2TP overhead.
    let aopts = throughput::Options {
        mode: Mode::Afxdp,
        directions: Direction::ALL.to_vec(),
        sizes: vec![Size::B64, Size::Imix],
        versions: vec![Dut::V2, Dut::V3],
        out: out.clone(),
        command: "throughput_smoke afxdp".into(),
        ..opts.clone()
    };
    throughput::run(&aopts).expect("throughput --mode afxdp");
    let v = json(&out.join("throughput-afxdp.json"));
    assert_svg(&out.join("throughput-afxdp.svg"));
    assert_environment(&v, "throughput", "afxdp");
    assert_eq!(
        v["worker_cpu"], dut_cpu as u64,
        "the worker runs on the DUT core"
    );
    assert_eq!(v["batch"], 64);
    let cases = v["cases"].as_array().expect("cases");
    let names: Vec<&str> = cases.iter().filter_map(|c| c["name"].as_str()).collect();
    let mut expected = vec![];
    for d in ["up", "down", "both"] {
        for z in ["64", "imix"] {
            for v in ["raw", "v2", "v3"] {
                expected.push(format!("{d}-{z}-{v}"));
            }
        }
    }
    assert_eq!(names, expected);
    for c in cases {
        assert_eq!(c["mode"], "afxdp");
        assert_delivered(c);
        assert!(
            c["ratio"]["median"].as_f64().is_some(),
            "{}: ratio",
            c["name"]
        );
    }

    // Cleaned up.
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
}
