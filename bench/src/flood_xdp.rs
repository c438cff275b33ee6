//! `flood --xdp-budget N`: the SCCRQ flood of [`crate::flood`] against l2xdpd over the XDP
//! fast path, to measure what the fast path's SCCRQ budget (`[l2tp.limits]
//! xdp_sccrq_per_sec`, issue 15) saves l2xdpd.
//!
//! The lab of `l2xdp_lab::topology` (namespaces `lac` — `lns` — `core`, named for this
//! bench), the fast path attached in `lns` (XDP mode) with its maps pinned in a bpffs of its
//! own, l2xdpd in `lns` on the access address (192.0.2.1:1701) over those pins with the
//! budget. The flood comes from a raw socket in `lac`, its sources spoofed in 198.18.0.0/15
//! (RFC 2544's benchmarking range), which `lns` routes back through the LAC so that reverse
//! path filtering keeps them and l2xdpd's answers leave (the LAC's namespace drops them).
//! No LAC brings tunnels up here (the memory mode does that). Reported as the memory mode
//! does, plus the budget and the SCCRQs XDP dropped over it.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

use l2xdp_dataplane::XdpDataPlane;
use l2xdp_ebpf::maps::verdict;
use l2xdp_lab::cp::l2xdpd::{self, L2xdpd, Placement};
use l2xdp_lab::scratch::Scratch;
use l2xdp_lab::topology::{Mode, Topology, LAC_IP, LNS_IP};

use crate::common::Header;
use crate::flood::{flood, rss_parts_kib, sccrq, Flooded, Flooding, Options, Report};
use crate::lns::rss_kib;

/// The spoofed sources: 198.18.0.0/15 upwards.
const SOURCES: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 0);

/// l2xdpd's configuration: the lab's LNS with `budget`.
fn config(s: &Scratch, budget: u32) -> Result<l2xdpd::Files, String> {
    let base = format!(
        r#"[l2tp]
host_name = "lns-flood-xdp"

[l2tp.limits]
xdp_sccrq_per_sec = {budget}

[ppp]
auth = ["chap"]

[ppp.ipcp]
local_address = "100.64.0.1"
pool = ["100.64.0.0/24"]
"#
    );
    l2xdpd::write_config(
        &s.dir,
        Path::new("base.toml"),
        &base,
        Placement::lab(&s.pins),
        1,
    )
    .map_err(|e| e.to_string())
}

/// Runs the scenario (see the module documentation).
pub async fn run(opts: &Options, budget: u32) -> Result<Report, String> {
    if opts.junk {
        return Err("--junk is the memory mode's (leave out --xdp-budget)".into());
    }
    if opts.sources > 1 << 17 {
        return Err("at most 131,072 sources (198.18.0.0/15)".into());
    }
    let tag = "harden-flood";
    let topo = Topology::new(tag);
    let scratch = Scratch::new(tag);
    let _fp = topo.start_fast_path(&scratch.pins, Mode::Xdp);
    topo.lns
        .ip(&["route", "add", "198.18.0.0/15", "via", &LAC_IP.to_string()]);
    let files = config(&scratch, budget)?;
    if let Some(d) = opts.log.parent() {
        std::fs::create_dir_all(d).map_err(|e| e.to_string())?;
    }
    let mut lns = L2xdpd::spawn(Some(&topo.lns), &opts.l2xdpd, &files, Some(&opts.log))
        .map_err(|e| e.to_string())?;
    lns.wait_ready().map_err(|e| e.to_string())?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pid = lns.pid();
    let rss0 = rss_kib(pid);
    let parts0 = rss_parts_kib(pid);
    let over = || -> Result<u64, String> {
        XdpDataPlane::open(&scratch.pins)
            .and_then(|d| d.verdict_counters())
            .map(|v| v[verdict::SCCRQ_OVER_BUDGET as usize])
            .map_err(|e| e.to_string())
    };
    let over0 = over()?;

    let to = SocketAddr::from((LNS_IP, 1701));
    let payload = sccrq(to)?;
    let flooding = Flooding::start(pid, rss0, {
        let (opts, lac) = (opts.clone(), topo.lac.clone());
        move |stop, sent| {
            let _in = lac.enter();
            flood(&opts, SOURCES, to, &payload, stop, sent)
        }
    });
    let sent = flooding.sent.clone();
    let Flooded {
        secs,
        cpu,
        rss_end,
        peak,
        rss_after,
        parts_after,
    } = flooding.finish(opts.settle).await?;
    let dropped = over()? - over0;
    if let Some(st) = lns.exited() {
        return Err(format!("l2xdpd exited: {st}"));
    }
    let tunnels_after = {
        let sock = lns.socket().to_path_buf();
        let v = tokio::task::spawn_blocking(move || {
            l2xdp_lab::cp::l2xdpd::try_ask(&sock, r#"{"cmd":"tunnels"}"#)
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
        let mut m = std::collections::BTreeMap::new();
        for t in v["data"].as_array().into_iter().flatten() {
            *m.entry(t["state"].as_str().unwrap_or("?").to_string())
                .or_default() += 1;
        }
        m
    };
    drop(lns);
    let log_lines = std::fs::read_to_string(&opts.log)
        .map(|s| s.lines().count())
        .unwrap_or(0);
    Ok(Report {
        header: Header {
            scenario: "flood",
            mode: "XDP fast path (lab namespaces), spoofed sources from the LAC's namespace",
            date: crate::machine::utc_now(),
            command: std::env::args().collect::<Vec<_>>().join(" "),
            machine: crate::machine::Machine::probe(),
        },
        kind: "sccrq",
        sent: sent.load(Ordering::Relaxed),
        rate: opts.rate,
        sources: u64::from(opts.sources),
        secs,
        lac: [0, 0, 0],
        rss_kib: [rss0, peak, rss_end, rss_after],
        rss_parts_kib: [parts0, parts_after],
        log_lines,
        cpu_secs: [cpu, cpu / secs.max(1e-9)],
        tunnels_after,
        lac_error: None,
        xdp_budget: Some([u64::from(budget), dropped]),
    })
}
