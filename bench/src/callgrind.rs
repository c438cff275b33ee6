//! The AF_XDP half of `l2xdp-bench cost`: instructions per packet of the AF_XDP worker loop
//! under `valgrind --tool=callgrind` (hardware counters are not available on this VM; an
//! instruction count is stable where pps is not).
//!
//! What runs: the real worker ([`Worker::pass`] — table updates, ring handling, decap/encap
//! through `wire::datapath`, the replica lookup, counters, flush) on two
//! [`XskSocket::in_memory`] sockets, the kernel's part (fill → rx, tx → completion) played by
//! the driver between passes. Only `Worker::pass` is counted (`--toggle-collect`), for two
//! packet counts N and 2N in separate valgrind runs; (Ir(2N) − Ir(N)) / N cancels what does
//! not scale with packets. Every frame must come out of the egress socket and be counted by
//! the worker as forwarded, else the run fails (a drop path is cheaper and would flatter).
//! The baseline: the raw forwarder's work ([`Work::Raw`], a copy rx → tx, no L2TP) on the
//! same sockets and frames. What is not counted: the kernel (copy-mode XDP, the `sendto`
//! kick real sockets need on veth — in-memory rings never ask for one).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicU32;
use std::sync::Arc;

use l2xdp_dataplane::afxdp::table::{apply, table, Update};
use l2xdp_dataplane::afxdp::{Work, Worker, WorkerStats};
use l2xdp_dataplane::session_map::map_key;
use l2xdp_dataplane::xsk::XskSocket;
use l2xdp_ebpf::maps::{self, xsk_stat};
use l2xdp_lab::topology::{LAC_MAC, LA_MAC, LC_MAC};
use l2xdp_wire::datapath::{DecapConfig, RxSeq, Session};
use serde::{Deserialize, Serialize};

use crate::cases::{self, v3_session, Case};
use crate::common::{self, Error};

/// The function callgrind counts (a pattern on its demangled name).
pub const TOGGLE: &str = "*afxdp::worker::Worker::pass";

/// Frames per socket and pass (the AF_XDP data plane's default batch).
pub const BATCH: u32 = 64;

/// The in-memory interfaces: access (toward the LAC) and core.
const ACCESS_IFINDEX: u32 = 1;
const CORE_IFINDEX: u32 = 2;

/// A worker case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerCase {
    /// The raw forwarder's copy (the baseline), on the decap-v2 frames.
    Raw,
    /// L2TPv2 decapsulation (PPP/IPv4 inside), access → core.
    DecapV2,
    /// L2TPv2 encapsulation, core → access.
    EncapV2,
    /// L2TPv3 decapsulation (Ethernet inside, IP transport), access → core.
    DecapV3,
    /// L2TPv3 encapsulation, core → access.
    EncapV3,
}

impl WorkerCase {
    /// Every case, the baseline first.
    pub const ALL: [WorkerCase; 5] = [
        WorkerCase::Raw,
        WorkerCase::DecapV2,
        WorkerCase::EncapV2,
        WorkerCase::DecapV3,
        WorkerCase::EncapV3,
    ];

    /// The name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            WorkerCase::Raw => "raw",
            WorkerCase::DecapV2 => "decap-v2",
            WorkerCase::EncapV2 => "encap-v2",
            WorkerCase::DecapV3 => "decap-v3",
            WorkerCase::EncapV3 => "encap-v3",
        }
    }

    /// Parses a name.
    pub fn parse(s: &str) -> Option<WorkerCase> {
        WorkerCase::ALL.into_iter().find(|c| c.name() == s)
    }

    /// The frames (the forward scenario's) and the worker counter that must count them.
    fn frames(self, sessions: u32) -> Result<(Vec<Vec<u8>>, u32), Error> {
        let (case, counter) = match self {
            WorkerCase::Raw => (Case::DecapV2, xsk_stat::DECAP),
            WorkerCase::DecapV2 => (Case::DecapV2, xsk_stat::DECAP),
            WorkerCase::EncapV2 => (Case::EncapV2, xsk_stat::ENCAP),
            WorkerCase::DecapV3 => (Case::DecapV3, xsk_stat::DECAP),
            WorkerCase::EncapV3 => (Case::EncapV3, xsk_stat::ENCAP),
        };
        let n = if self.v3() { 1 } else { sessions.max(1) };
        Ok((cases::frames(case, n)?, counter))
    }

    fn v3(self) -> bool {
        matches!(self, WorkerCase::DecapV3 | WorkerCase::EncapV3)
    }

    fn decap(self) -> bool {
        matches!(
            self,
            WorkerCase::Raw | WorkerCase::DecapV2 | WorkerCase::DecapV3
        )
    }
}

/// What one driver run did (printed as JSON by `l2xdp-bench cost-worker`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DriveResult {
    /// Case name.
    pub case: String,
    /// Frames handed to the worker.
    pub packets: u64,
    /// Frames that came out of the egress socket.
    pub delivered: u64,
    /// Frames the worker counted as forwarded (decap/encap; raw: decap).
    pub forwarded: u64,
    /// Worker passes.
    pub passes: u64,
}

fn meta_bytes(m: &maps::XskMeta) -> Vec<u8> {
    // SAFETY: XskMeta is repr(C) plain data without padding (32 bytes, asserted in maps.rs);
    // the slice covers exactly the value.
    unsafe {
        std::slice::from_raw_parts(
            (m as *const maps::XskMeta).cast::<u8>(),
            std::mem::size_of::<maps::XskMeta>(),
        )
    }
    .to_vec()
}

fn sessions_of(case: WorkerCase, n: u32) -> Vec<Session> {
    if case.v3() {
        vec![v3_session(0, CORE_IFINDEX).1.session]
    } else {
        (0..n.max(1)).map(|i| cases::session(i).1.session).collect()
    }
}

/// Runs `packets` frames of `case` through a worker on in-memory sockets, `BATCH` per pass,
/// spread over `sessions` v2 sessions (v3: one pseudowire). Fails unless every frame was
/// forwarded and delivered.
pub fn drive(case: WorkerCase, packets: u64, sessions: u32) -> Result<DriveResult, Error> {
    let (frames, counter) = case.frames(sessions)?;
    let ours = sessions_of(case, sessions);
    let (ingress, egress) = if case.decap() { (0, 1) } else { (1, 0) };
    let metas: Vec<Vec<u8>> = frames
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let s = &ours[i % ours.len()];
            let key = map_key(&s.our_ids);
            let m = if case.decap() {
                maps::XskMeta {
                    egress_ifindex: CORE_IFINDEX,
                    dmac: LC_MAC.0,
                    smac: LA_MAC.0,
                    key,
                    inner_off: 0,
                    inner_len: 0,
                    dir: maps::dir::DECAP,
                }
            } else {
                // v2 carries the IP packet (after Ethernet), v3 the whole frame.
                let off: u16 = if case.v3() { 0 } else { 14 };
                maps::XskMeta {
                    egress_ifindex: ACCESS_IFINDEX,
                    dmac: LAC_MAC.0,
                    smac: LA_MAC.0,
                    key,
                    inner_off: off,
                    inner_len: (f.len() as u16).saturating_sub(off),
                    dir: maps::dir::ENCAP,
                }
            };
            meta_bytes(&m)
        })
        .collect();
    let open = |ifindex| {
        XskSocket::in_memory(ifindex, 0, 2048).map_err(common::io("in-memory AF_XDP socket"))
    };
    let sockets = vec![open(ACCESS_IFINDEX)?, open(CORE_IFINDEX)?];
    let work = match case {
        WorkerCase::Raw => Work::Raw { to: vec![1, 0] },
        _ => {
            let mut t = table(ours.len());
            for s in &ours {
                apply(
                    &mut t,
                    Update::Upsert {
                        key: map_key(&s.our_ids),
                        session: *s,
                        tx: Arc::new(AtomicU32::new(0)),
                        rx: RxSeq::default(),
                    },
                );
            }
            // No updates arrive during the run (the channel's other end is dropped).
            let (_, updates) = crossbeam_channel::unbounded();
            Work::L2tp {
                cfg: DecapConfig::default(),
                table: t,
                updates,
                // The in-memory peer puts the metadata where bpf_xdp_adjust_meta would.
                handoff: l2xdp_dataplane::probe::XskHandoff::Meta,
            }
        }
    };
    let stats = Arc::new(WorkerStats::default());
    let mut w = Worker {
        sockets,
        batch: BATCH,
        stats: stats.clone(),
        stop: Arc::default(),
        work,
        core: None,
    };
    let mut st = w.pass_state();
    let (mut sent, mut delivered, mut passes) = (0u64, 0u64, 0u64);
    let mut k = 0usize;
    while sent < packets {
        let b = (packets - sent).min(u64::from(BATCH));
        for _ in 0..b {
            if !w.sockets[ingress].peer_receive(&metas[k], &frames[k]) {
                return Err(Error::Callgrind(
                    "the in-memory receive ring refused a frame".into(),
                ));
            }
            k = (k + 1) % frames.len();
        }
        sent += b;
        w.pass(&mut st);
        passes += 1;
        delivered += u64::from(w.sockets[egress].peer_transmit(|_| {}));
    }
    let forwarded = stats.counters[counter as usize].load(std::sync::atomic::Ordering::Acquire);
    let r = DriveResult {
        case: case.name().into(),
        packets,
        delivered,
        forwarded,
        passes,
    };
    if delivered != packets || forwarded != packets {
        return Err(Error::Callgrind(format!(
            "{}: {packets} frames in, {delivered} delivered, {forwarded} forwarded",
            case.name()
        )));
    }
    Ok(r)
}

/// Instructions per packet of one case.
#[derive(Debug, Clone, Serialize)]
pub struct WorkerCost {
    /// Case.
    pub case: &'static str,
    /// Frame into the worker, bytes.
    pub frame_in_bytes: usize,
    /// Ir in `Worker::pass` for N and 2N packets.
    pub ir: [u64; 2],
    /// (Ir(2N) − Ir(N)) / N.
    pub instructions_per_packet: f64,
    /// Ratio to the raw forwarder's instructions per packet.
    pub ratio_to_raw: Option<f64>,
}

/// The AF_XDP worker's instructions per packet under callgrind.
#[derive(Debug, Clone, Serialize)]
pub struct AfxdpCallgrind {
    /// Per case (empty: not measured, see `note`).
    pub cases: Vec<WorkerCost>,
    /// N (runs of N and 2N packets).
    pub packets: u64,
    /// v2 sessions the frames are spread over.
    pub sessions: u32,
    /// Frames per pass.
    pub batch: u32,
    /// `valgrind --version`.
    pub valgrind: Option<String>,
    /// The command, per run (with N).
    pub command: String,
    /// How, or why not.
    pub note: String,
}

/// Ir counted by the callgrind run of `exe cost-worker --case … --packets n`.
fn callgrind_ir(
    exe: &Path,
    case: WorkerCase,
    n: u64,
    sessions: u32,
    dir: &Path,
) -> Result<u64, Error> {
    let out = dir.join(format!("callgrind.{}.{n}.out", case.name()));
    let o = Command::new("valgrind")
        .arg("--tool=callgrind")
        .arg(format!("--toggle-collect={TOGGLE}"))
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg(exe)
        .args(["cost-worker", "--case", case.name()])
        .args(["--packets", &n.to_string()])
        .args(["--sessions", &sessions.to_string()])
        .output()
        .map_err(common::io("valgrind"))?;
    if !o.status.success() {
        return Err(Error::Callgrind(format!(
            "{} {n}: {}",
            case.name(),
            String::from_utf8_lossy(&o.stderr)
                .lines()
                .rev()
                .take(5)
                .collect::<Vec<_>>()
                .join(" / ")
        )));
    }
    let r: DriveResult = serde_json::from_slice(&o.stdout)
        .map_err(|e| Error::Callgrind(format!("{} {n}: driver output: {e}", case.name())))?;
    if r.forwarded != n || r.delivered != n {
        return Err(Error::Callgrind(format!("{} {n}: {r:?}", case.name())));
    }
    let text = std::fs::read_to_string(&out).map_err(common::io(out.display().to_string()))?;
    let _ = std::fs::remove_file(&out);
    text.lines()
        .find_map(|l| {
            l.strip_prefix("totals:")
                .or_else(|| l.strip_prefix("summary:"))
        })
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| Error::Callgrind(format!("no totals in {}", out.display())))
}

/// Measures every [`WorkerCase`] with `exe` (an `l2xdp-bench` binary) as the driver; callgrind
/// files go to `dir` (removed after reading).
pub fn measure(exe: &Path, packets: u64, sessions: u32, dir: &Path) -> AfxdpCallgrind {
    let valgrind = Command::new("valgrind")
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    let n = packets.max(1);
    let mut r = AfxdpCallgrind {
        cases: vec![],
        packets: n,
        sessions,
        batch: BATCH,
        valgrind: valgrind.clone(),
        command: format!(
            "valgrind --tool=callgrind --toggle-collect='{TOGGLE}' {} cost-worker --case CASE --packets N --sessions {sessions}",
            exe.display()
        ),
        note: String::new(),
    };
    if valgrind.is_none() {
        r.note = "not available: valgrind not found (scripts/setup.sh installs it)".into();
        return r;
    }
    let run = || -> Result<Vec<WorkerCost>, Error> {
        let mut out: Vec<WorkerCost> = vec![];
        for case in WorkerCase::ALL {
            let a = callgrind_ir(exe, case, n, sessions, dir)?;
            let b = callgrind_ir(exe, case, 2 * n, sessions, dir)?;
            let ipp = b.saturating_sub(a) as f64 / n as f64;
            let raw = out.first().map(|c| c.instructions_per_packet);
            out.push(WorkerCost {
                case: case.name(),
                frame_in_bytes: case.frames(1)?.0.first().map_or(0, Vec::len),
                ir: [a, b],
                instructions_per_packet: ipp,
                ratio_to_raw: raw.filter(|r| *r > 0.0).map(|r| ipp / r),
            });
        }
        Ok(out)
    };
    match run() {
        Ok(c) => {
            r.cases = c;
            r.note = format!(
                "Ir in Worker::pass on in-memory AF_XDP sockets, (Ir(2N) - Ir(N)) / N, N = {n}, batch {BATCH}; kernel work not counted"
            );
        }
        Err(e) => r.note = format!("failed: {e}"),
    }
    r
}

/// The driver binary for [`measure`] when run from a test: the `l2xdp-bench` next to this
/// executable.
pub fn default_exe() -> PathBuf {
    crate::lns::sibling_binary("l2xdp-bench")
}
