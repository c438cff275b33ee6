//! The benchmark's XDP programs (C in `bench/bpf/l2xdp_bench.bpf.c`, built by `bench/build.rs`
//! with the fast path's clang flags, embedded here): the live-frame generators `xdp_gen` and
//! `xdp_gen_paced`, the baseline forwarder `xdp_redirect_plain`, the routed baseline
//! `xdp_router`, the counting sink `xdp_count` and the raw AF_XDP forwarder's classifier
//! `xdp_to_xsk`; their maps: [`bench`].
//!
//! [`prog`] names every program a scenario attaches: these, the fast path's
//! (`l2xdp_ebpf::prog`) and the lab's (`l2xdp_lab::bpf::prog`). And what every scenario does
//! with them: load ([`load_bench`]), attach ([`attach`]), take a map ([`take`]), read
//! bpf_stats ([`stats_of`]), point the baseline forwarder ([`set_fwd`]), count at a sink
//! ([`Sink`]).

use std::os::fd::AsFd;

use aya::maps::{HashMap, MapData, PerCpuArray};
use aya::programs::xdp::XdpLink;
use aya::programs::{Xdp, XdpMode};
use aya::Ebpf;
use l2xdp_lab::topology::{CORE_MAC, LAC_MAC, LA_MAC, LC_MAC};
use l2xdp_lab::Netns;

use crate::bpf_stats::{prog_stats, ProgStats};
use crate::common::{bpf, io, Error};

/// The forwarding benchmark's object (generators, baseline forwarder, counting sink; ELF,
/// 8-byte aligned for aya).
pub static BENCH_OBJ: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/l2xdp_bench.o"));

/// Program names: the fast path's, the lab's and the benchmark's.
pub mod prog {
    pub use l2xdp_ebpf::prog::*;
    pub use l2xdp_lab::bpf::prog::*;

    /// Live-frame generator: next prepared frame, `XDP_TX` (in [`super::BENCH_OBJ`]).
    pub const GEN: &str = "xdp_gen";
    /// Baseline forwarder: rewrite MACs, `bpf_redirect` (in [`super::BENCH_OBJ`]).
    pub const REDIRECT_PLAIN: &str = "xdp_redirect_plain";
    /// Counting sink, `XDP_DROP` (in [`super::BENCH_OBJ`]).
    pub const COUNT: &str = "xdp_count";
    /// Every frame to the AF_XDP socket of its queue (`bench_xsks`; in [`super::BENCH_OBJ`]).
    pub const TO_XSK: &str = "xdp_to_xsk";
    /// Paced generator: next prepared frame of any length, to its own egress, at a rate (in
    /// [`super::BENCH_OBJ`]).
    pub const GEN_PACED: &str = "xdp_gen_paced";
    /// The routed baseline: parse, `bpf_fib_lookup`, TTL/hop limit − 1, MACs from the FIB,
    /// `bpf_redirect` — the kernel's xdp_fwd sample (in [`super::BENCH_OBJ`]).
    pub const ROUTER: &str = "xdp_router";
}

// Loading, attaching and reading the benchmark's programs and maps (every scenario's).

pub(crate) fn xdp<'a>(e: &'a mut Ebpf, name: &'static str) -> Result<&'a mut Xdp, Error> {
    e.program_mut(name)
        .ok_or_else(|| bpf(name)("not in the object".into()))?
        .try_into()
        .map_err(|e: aya::programs::ProgramError| bpf(name)(e.to_string()))
}

pub(crate) fn load_bench(progs: &[&'static str]) -> Result<Ebpf, Error> {
    let mut e = Ebpf::load(BENCH_OBJ).map_err(|x| bpf("bench object")(x.to_string()))?;
    for p in progs {
        xdp(&mut e, p)?
            .load()
            .map_err(|x| bpf(*p)(format!("{x:?}")))?;
    }
    Ok(e)
}

pub(crate) fn attach(
    e: &mut Ebpf,
    p: &'static str,
    ns: &Netns,
    iface: &str,
) -> Result<XdpLink, Error> {
    let _g = ns.enter();
    let x = xdp(e, p)?;
    let id = x
        .attach(iface, XdpMode::Driver)
        .map_err(|x| bpf(format!("attach {p} to {iface}"))(format!("{x:?}")))?;
    x.take_link(id)
        .map_err(|x| bpf(format!("link of {p}"))(x.to_string()))
}

pub(crate) fn stats_of(e: &mut Ebpf, p: &'static str) -> Result<ProgStats, Error> {
    let x = xdp(e, p)?;
    let fd = x.fd().map_err(|x| bpf(p)(x.to_string()))?;
    prog_stats(fd.as_fd()).map_err(io(format!("bpf_stats of {p}")))
}

pub(crate) fn take<T>(e: &mut Ebpf, name: &'static str) -> Result<T, Error>
where
    T: TryFrom<aya::maps::Map, Error = aya::maps::MapError>,
{
    let m = e
        .take_map(name)
        .ok_or_else(|| bpf(name)("map missing".into()))?;
    T::try_from(m).map_err(|x| bpf(name)(x.to_string()))
}

/// Points `xdp_redirect_plain` (in `tools`) la ⇄ lc, rewriting the MACs to the next hop's: a
/// frame entering la leaves lc towards core0 and the other way round.
pub(crate) fn set_fwd(tools: &mut Ebpf, la: u32, lc: u32) -> Result<(), Error> {
    let mut fwd: HashMap<&mut MapData, u32, bench::Fwd> = HashMap::try_from(
        tools
            .map_mut(bench::FWD)
            .ok_or_else(|| bpf(bench::FWD)("not in the object".into()))?,
    )
    .map_err(|x| bpf(bench::FWD)(x.to_string()))?;
    for (from, to, dst, src) in [(la, lc, CORE_MAC, LC_MAC), (lc, la, LAC_MAC, LA_MAC)] {
        let v = bench::Fwd {
            ifindex: to,
            dst: dst.0,
            src: src.0,
        };
        fwd.insert(from, v, 0)
            .map_err(|x| bpf(bench::FWD)(x.to_string()))?;
    }
    Ok(())
}

/// A counting sink: `xdp_count` attached to one interface or more (one counter for all).
pub(crate) struct Sink {
    pub(crate) ebpf: Ebpf,
    rx: PerCpuArray<MapData, u64>,
    _links: Vec<XdpLink>,
}

impl Sink {
    pub(crate) fn new(ns: &Netns, iface: &str) -> Result<Sink, Error> {
        let mut ebpf = load_bench(&[prog::COUNT])?;
        let rx = take(&mut ebpf, bench::RX)?;
        let link = attach(&mut ebpf, prog::COUNT, ns, iface)?;
        Ok(Sink {
            ebpf,
            rx,
            _links: vec![link],
        })
    }

    /// Counts what `iface` (in `ns`) receives too.
    pub(crate) fn also(&mut self, ns: &Netns, iface: &str) -> Result<(), Error> {
        let link = attach(&mut self.ebpf, prog::COUNT, ns, iface)?;
        self._links.push(link);
        Ok(())
    }

    /// (packets, bytes) counted so far.
    pub(crate) fn read(&self) -> Result<(u64, u64), Error> {
        let get = |k: u32| -> Result<u64, Error> {
            let v = self
                .rx
                .get(&k, 0)
                .map_err(|x| bpf(bench::RX)(x.to_string()))?;
            Ok(v.iter().sum())
        };
        Ok((get(0)?, get(1)?))
    }
}

/// The maps of [`BENCH_OBJ`]: names and value layouts (the twins of `bench/bpf/l2xdp_bench.bpf.c`'s).
pub mod bench {
    /// Largest prepared frame.
    pub const FRAME_MAX: usize = 128;
    /// Template slots in [`TEMPLATES`].
    pub const TEMPLATE_SLOTS: u32 = 16384;
    /// ARRAY of [`Template`].
    pub const TEMPLATES: &str = "bench_templates";
    /// ARRAY of one [`GenConfig`].
    pub const GEN_CFG: &str = "bench_gen_cfg";
    /// PERCPU_ARRAY of one u32: the generator's round-robin cursor.
    pub const GEN_CURSOR: &str = "bench_gen_cursor";
    /// HASH ingress ifindex → [`Fwd`].
    pub const FWD: &str = "bench_fwd";
    /// PERCPU_ARRAY of two u64: received packets (0) and bytes (1).
    pub const RX: &str = "bench_rx";
    /// XSKMAP of [`super::prog::TO_XSK`], key = receive queue.
    pub const XSKS: &str = "bench_xsks";

    /// `struct bench_template`.
    #[repr(C)]
    #[derive(Clone, Copy, Debug)]
    pub struct Template {
        /// Frame length.
        pub len: u32,
        /// The frame (first `len` bytes).
        pub data: [u8; FRAME_MAX],
    }
    // SAFETY: repr(C), plain bytes, no padding (4 + 128).
    unsafe impl aya::Pod for Template {}

    /// `struct bench_gen_cfg`.
    #[repr(C)]
    #[derive(Clone, Copy, Debug, Default)]
    pub struct GenConfig {
        /// First template of the current case.
        pub base: u32,
        /// Number of templates.
        pub n: u32,
    }
    // SAFETY: repr(C), two u32.
    unsafe impl aya::Pod for GenConfig {}

    /// `struct bench_fwd`.
    #[repr(C)]
    #[derive(Clone, Copy, Debug, Default)]
    pub struct Fwd {
        /// Egress ifindex.
        pub ifindex: u32,
        /// Destination MAC written.
        pub dst: [u8; 6],
        /// Source MAC written.
        pub src: [u8; 6],
    }
    // SAFETY: repr(C), u32 + 12 bytes, no padding.
    unsafe impl aya::Pod for Fwd {}

    /// Largest frame of [`PTemplate`] (its first [`FRAME_MAX`] bytes given, then zeros).
    pub const PFRAME_MAX: usize = 2048;
    /// ARRAY of [`PTemplate`] (16,384 in the object; resizable at load).
    pub const PTEMPLATES: &str = "bench_ptemplates";
    /// ARRAY of one [`Pace`].
    pub const PACE: &str = "bench_pace";
    /// PERCPU_ARRAY of one [`PaceState`].
    pub const PACE_STATE: &str = "bench_pace_state";
    /// DEVMAP of 64: the paced generator's egress devices.
    pub const EGRESS: &str = "bench_egress";

    /// `struct bench_ptemplate`.
    #[repr(C)]
    #[derive(Clone, Copy, Debug)]
    pub struct PTemplate {
        /// Frame length (up to [`PFRAME_MAX`]).
        pub len: u32,
        /// Key of the egress device in [`EGRESS`].
        pub egress: u32,
        /// The frame's first bytes (the rest is zeros).
        pub data: [u8; FRAME_MAX],
    }
    // SAFETY: repr(C), plain bytes, no padding (4 + 4 + 128).
    unsafe impl aya::Pod for PTemplate {}

    /// `struct bench_pace`.
    #[repr(C)]
    #[derive(Clone, Copy, Debug, Default)]
    pub struct Pace {
        /// Picoseconds between frames (0: unpaced).
        pub interval_ps: u64,
        /// Credit kept at most, picoseconds.
        pub burst_ps: u64,
        /// First template of the case.
        pub base: u32,
        /// Templates.
        pub n: u32,
    }
    // SAFETY: repr(C), 2 × u64 + 2 × u32, no padding.
    unsafe impl aya::Pod for Pace {}

    /// `struct bench_pace_state` (per CPU).
    #[repr(C)]
    #[derive(Clone, Copy, Debug, Default)]
    pub struct PaceState {
        /// When the next frame is due, picoseconds of CLOCK_MONOTONIC.
        pub next_ps: u64,
        /// Next template.
        pub cursor: u64,
        /// Frames sent.
        pub sent: u64,
        /// Bytes sent.
        pub sent_bytes: u64,
        /// Runs that were not due.
        pub skipped: u64,
        /// First send, picoseconds of CLOCK_MONOTONIC (0: none yet).
        pub first_ps: u64,
        /// Last send.
        pub last_ps: u64,
    }
    // SAFETY: repr(C), seven u64.
    unsafe impl aya::Pod for PaceState {}
}
