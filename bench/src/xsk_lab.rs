//! The AF_XDP lab of the `afxdp`, `latency` and `throughput` scenarios: the LNS namespace with
//! the fast path's programs or the baselines' ([`LnsLab`], [`Programs`]), the fast path's
//! AF_XDP workers or the raw forwarder ([`Workers`], [`Running`]), and plain AF_XDP sockets for
//! generators and receivers ([`xsk_on`]).

use std::path::Path;
use std::time::Duration;

use aya::maps::{MapData, XskMap};
use aya::programs::xdp::XdpLink;
use aya::Ebpf;
use l2xdp_dataplane::afxdp::{AfXdp, AfXdpConfig};
use l2xdp_dataplane::api::DataPlane;
use l2xdp_dataplane::xsk::{XskConfig, XskSocket};
use l2xdp_dataplane::{loader, FastPathConfig, XdpDataPlane};
use l2xdp_ebpf::maps::xsk_stat;
use l2xdp_lab::raw::RawForwarder;
use l2xdp_lab::topology::{Pins, Topology, LA, LC};
use l2xdp_lab::Netns;

use crate::bpf::{attach, bench, load_bench, prog, set_fwd, take};
use crate::cases::session;
use crate::common::{io, Error};
#[cfg(feature = "xskrs")]
use crate::xskrs::XskrsForwarder;

/// Bounds a hung settle of the AF_XDP runtime.
const LIMIT: Duration = Duration::from_secs(30);

/// A running worker of either kind.
pub(crate) enum Running {
    Raw(RawForwarder),
    Fast(AfXdp),
    #[cfg(feature = "xskrs")]
    Xskrs(XskrsForwarder),
}

impl Running {
    /// (rx, sent, dropped).
    pub(crate) fn counts(&self) -> (u64, u64, u64) {
        let sum = |c: &[u64]| -> (u64, u64) {
            let sent = c[xsk_stat::DECAP as usize] + c[xsk_stat::ENCAP as usize];
            (sent, c.iter().sum::<u64>() - sent)
        };
        let raw = match self {
            Running::Raw(r) => Some(r.stats()),
            #[cfg(feature = "xskrs")]
            Running::Xskrs(x) => Some(x.stats()),
            Running::Fast(_) => None,
        };
        match (self, raw) {
            (_, Some(s)) => {
                let c: Vec<u64> = s
                    .counters
                    .iter()
                    .map(|c| c.load(std::sync::atomic::Ordering::Relaxed))
                    .collect();
                let (sent, dropped) = sum(&c);
                (
                    s.rx.load(std::sync::atomic::Ordering::Relaxed),
                    sent,
                    dropped,
                )
            }
            (Running::Fast(a), _) => {
                let (sent, dropped) = sum(&a.counters());
                (a.received(), sent, dropped)
            }
            _ => (0, 0, 0),
        }
    }
}

/// What runs on la and lc.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Programs {
    /// `xdp_redirect_plain` on la and lc (the XDP_REDIRECT baseline, `bench_fwd` set la ⇄ lc).
    Redirect,
    /// The fast path's `xdp_l2tp_access` on la and `xdp_l2tp_core` on lc (XDP or AF_XDP mode
    /// as [`LnsLab::set_afxdp`] configured).
    Fast,
    /// `xdp_to_xsk` on la and lc: the raw AF_XDP forwarder's classifier.
    ToXsk,
}

/// The LNS side of the AF_XDP-generator scenarios (`afxdp`, `latency`): the three-namespace
/// topology, the fast path loaded and pinned with `sessions` sessions installed, the bench
/// tools (XDP_REDIRECT baseline, `xdp_to_xsk` + its XSKMAP for the raw forwarder), the
/// programs on la and lc, and the worker (raw forwarder or AF_XDP mode) a case runs. Field
/// order is drop order: links and objects, pins, namespaces.
pub(crate) struct LnsLab {
    links: Vec<XdpLink>,
    programs: Option<Programs>,
    tools: Ebpf,
    pub(crate) workers: Workers,
    fast: Ebpf,
    dp: XdpDataPlane,
    pub(crate) pins: Pins,
    pub(crate) topo: Topology,
}

impl LnsLab {
    /// Topology `tag`, pins `/sys/fs/bpf/l2xdp-<pins_tag>-<pid>`, fast path in AF_XDP mode.
    pub(crate) fn new(tag: &str, pins_tag: &str, sessions: u32) -> Result<LnsLab, Error> {
        let topo = Topology::new(tag);
        let pins = Pins::under_sys_fs_bpf(pins_tag);
        let (fast, la, lc) = {
            let _g = topo.lns.enter();
            let fast = loader::load(Some(pins.path()))?;
            (fast, loader::ifindex(LA)?, loader::ifindex(LC)?)
        };
        let mut dp = XdpDataPlane::open(pins.path())?;
        for i in 0..sessions {
            dp.install(&session(i).1)?;
        }
        let mut tools = load_bench(&[prog::TO_XSK, prog::REDIRECT_PLAIN])?;
        set_fwd(&mut tools, la, lc)?;
        let workers = Workers::new(&mut tools)?;
        let mut lab = LnsLab {
            links: vec![],
            programs: None,
            tools,
            workers,
            fast,
            dp,
            pins,
            topo,
        };
        lab.set_afxdp(true)?;
        Ok(lab)
    }

    /// The fast path's mode: AF_XDP (the programs hand forwarded frames to the workers) or
    /// XDP (the programs forward).
    pub(crate) fn set_afxdp(&mut self, afxdp: bool) -> Result<(), Error> {
        self.dp.set_config(&FastPathConfig {
            afxdp,
            ..FastPathConfig::default()
        })?;
        Ok(())
    }

    /// Puts `p` on la and lc (detaching what ran there).
    pub(crate) fn select(&mut self, p: Programs) -> Result<(), Error> {
        if self.programs == Some(p) {
            return Ok(());
        }
        self.links.clear();
        self.programs = None;
        let lns = self.topo.lns.clone();
        let (obj, la, lc) = match p {
            Programs::Redirect => (&mut self.tools, prog::REDIRECT_PLAIN, prog::REDIRECT_PLAIN),
            Programs::ToXsk => (&mut self.tools, prog::TO_XSK, prog::TO_XSK),
            Programs::Fast => (&mut self.fast, prog::ACCESS, prog::CORE),
        };
        self.links.push(attach(obj, la, &lns, LA)?);
        self.links.push(attach(obj, lc, &lns, LC)?);
        self.programs = Some(p);
        Ok(())
    }

    /// Starts the raw forwarder la → lc (`up`) or lc → la on `cpu` (needs [`Programs::ToXsk`]).
    pub(crate) fn start_raw(&mut self, up: bool, cpu: usize, batch: u32) -> Result<Running, Error> {
        self.workers.start_raw(&self.topo.lns, up, cpu, batch)
    }

    /// As [`start_raw`](Self::start_raw), the forwarder on xsk-rs (`crate::xskrs`).
    pub(crate) fn start_raw_xskrs(
        &mut self,
        up: bool,
        cpu: usize,
        batch: u32,
    ) -> Result<Running, Error> {
        self.workers.start_raw_xskrs(&self.topo.lns, up, cpu, batch)
    }

    /// Starts one AF_XDP-mode worker on `cpu` with sockets on la and lc and waits until it
    /// holds every session (needs [`Programs::Fast`] and [`set_afxdp`](Self::set_afxdp)).
    pub(crate) fn start_afxdp(&mut self, cpu: usize, batch: u32) -> Result<Running, Error> {
        self.workers
            .start_afxdp(&self.topo.lns, self.pins.path(), &[LA, LC], cpu, batch)
    }

    /// Stops a worker (the raw forwarder gives the XSKMAP back).
    pub(crate) fn stop(&mut self, r: Running) {
        self.workers.stop(r);
    }
}

/// The workers a case runs on the LNS's la and lc — the raw forwarder or AF_XDP mode —
/// started and stopped per case (one socket per interface and queue); shared by [`LnsLab`]
/// and the throughput scenario's lab.
pub(crate) struct Workers {
    /// The XSKMAPs of `xdp_to_xsk`, lent to the running raw forwarder: `[0]` the one of the
    /// program on la (and on lc when there is no `[1]`), `[1]` the one of a separately loaded
    /// `xdp_to_xsk` on lc (`xdp_to_xsk` keys by queue: both ways at once need two maps).
    xsks: [Option<XskMap<MapData>>; 2],
    /// Whether lc's program has its own XSKMAP (`xsks[1]`).
    separate: bool,
    /// The `xsks` slots lent to the running raw forwarder, in the order it got them.
    lent: Vec<usize>,
    /// Whether the last AF_XDP-mode worker's sockets ran zero-copy (veth: copy mode).
    pub(crate) zero_copy: bool,
}

impl Workers {
    /// Takes the XSKMAP of `tools` (a bench object with `xdp_to_xsk` loaded, on la and lc).
    pub(crate) fn new(tools: &mut Ebpf) -> Result<Workers, Error> {
        Ok(Workers {
            xsks: [Some(take(tools, bench::XSKS)?), None],
            separate: false,
            lent: vec![],
            zero_copy: false,
        })
    }

    /// Takes the XSKMAPs of `la_tools` (its `xdp_to_xsk` runs on la) and `lc_tools` (a
    /// second bench object, its `xdp_to_xsk` on lc): the raw forwarder can then forward both
    /// ways at once ([`start_raw_both`](Self::start_raw_both)).
    pub(crate) fn new_separate(la_tools: &mut Ebpf, lc_tools: &mut Ebpf) -> Result<Workers, Error> {
        Ok(Workers {
            xsks: [
                Some(take(la_tools, bench::XSKS)?),
                Some(take(lc_tools, bench::XSKS)?),
            ],
            separate: true,
            lent: vec![],
            zero_copy: false,
        })
    }

    /// The `xsks` slot of the program on lc (`true`) or la.
    fn slot(&self, lc: bool) -> usize {
        usize::from(lc && self.separate)
    }

    /// Lends the XSKMAP of slot `k` to a raw forwarder.
    fn lend(&mut self, k: usize) -> Result<XskMap<MapData>, Error> {
        let m = self.xsks[k]
            .take()
            .ok_or_else(|| Error::Options("XSKMAP in use".into()))?;
        self.lent.push(k);
        Ok(m)
    }

    /// Starts the raw forwarder la → lc (`up`) or lc → la on `cpu`, in `lns` (needs
    /// `xdp_to_xsk` on la and lc).
    pub(crate) fn start_raw(
        &mut self,
        lns: &Netns,
        up: bool,
        cpu: usize,
        batch: u32,
    ) -> Result<Running, Error> {
        let _g = lns.enter();
        let (from, to) = if up { (LA, LC) } else { (LC, LA) };
        let k = self.slot(!up);
        let map = self.lend(k)?;
        match RawForwarder::start(from, to, map, Some(cpu), batch, &XskConfig::default()) {
            Ok(r) => Ok(Running::Raw(r)),
            Err(e) => {
                // The map went with the failed start: this slot stays empty (an error ends the run).
                self.lent.clear();
                Err(sys(e))
            }
        }
    }

    /// As [`start_raw`](Self::start_raw), the forwarder on xsk-rs sockets
    /// (`xskrs::XskrsForwarder`); the XSKMAP comes back on error.
    pub(crate) fn start_raw_xskrs(
        &mut self,
        lns: &Netns,
        up: bool,
        cpu: usize,
        batch: u32,
    ) -> Result<Running, Error> {
        #[cfg(not(feature = "xskrs"))]
        {
            let _ = (lns, up, cpu, batch);
            Err(Error::Options(
                "the raw-xskrs cases need l2xdp-bench built with --features xskrs".into(),
            ))
        }
        #[cfg(feature = "xskrs")]
        {
            let _g = lns.enter();
            let (from, to) = if up { (LA, LC) } else { (LC, LA) };
            let k = self.slot(!up);
            let map = self.lend(k)?;
            match XskrsForwarder::start(from, to, map, Some(cpu), batch) {
                Ok(x) => Ok(Running::Xskrs(x)),
                Err(b) => {
                    let (e, map) = *b;
                    self.lent.clear();
                    self.xsks[k] = Some(map);
                    Err(Error::Options(e))
                }
            }
        }
    }

    /// Starts one raw forwarder for both ways (la → lc and lc → la, one worker thread on
    /// `cpu`, sockets on queue 0 of both), in `lns` (needs the lab's two `xdp_to_xsk`
    /// programs: [`new_separate`](Self::new_separate)).
    pub(crate) fn start_raw_both(
        &mut self,
        lns: &Netns,
        cpu: usize,
        batch: u32,
    ) -> Result<Running, Error> {
        if !self.separate {
            return Err(Error::Options(
                "the raw forwarder both ways needs an XSKMAP per interface".into(),
            ));
        }
        let _g = lns.enter();
        let a = self.lend(0)?;
        let b = self.lend(1)?;
        match RawForwarder::start_both(LA, LC, a, b, Some(cpu), batch, &XskConfig::default()) {
            Ok(r) => Ok(Running::Raw(r)),
            Err(e) => {
                self.lent.clear();
                Err(sys(e))
            }
        }
    }

    /// Starts one AF_XDP-mode worker on `cpu` with sockets on `interfaces` (in `lns`) and
    /// waits until it holds every session of the fast path pinned at `pins` (needs the fast
    /// path's programs in AF_XDP mode).
    pub(crate) fn start_afxdp(
        &mut self,
        lns: &Netns,
        pins: &Path,
        interfaces: &[&str],
        cpu: usize,
        batch: u32,
    ) -> Result<Running, Error> {
        let _g = lns.enter();
        let a = AfXdp::start(
            pins,
            &AfXdpConfig {
                interfaces: interfaces.iter().map(|i| (*i).to_owned()).collect(),
                cores: vec![cpu],
                batch,
                xsk: XskConfig::default(),
            },
        )
        .map_err(sys)?;
        self.zero_copy = a.zero_copy.iter().all(|z| *z);
        a.settle(pins, LIMIT).map_err(sys)?;
        Ok(Running::Fast(a))
    }

    /// Stops a worker (the raw forwarder gives the XSKMAP back).
    pub(crate) fn stop(&mut self, r: Running) {
        match r {
            Running::Raw(r) => {
                let lent = std::mem::take(&mut self.lent);
                for (k, m) in lent.into_iter().zip(r.stop_all()) {
                    self.xsks[k] = Some(m);
                }
            }
            #[cfg(feature = "xskrs")]
            Running::Xskrs(x) => {
                let lent = std::mem::take(&mut self.lent);
                if let (Some(k), Some(m)) = (lent.first(), x.stop()) {
                    self.xsks[*k] = Some(m);
                }
            }
            Running::Fast(a) => drop(a),
        }
    }
}

fn sys(e: l2xdp_dataplane::afxdp::AfXdpError) -> Error {
    Error::Options(e.to_string())
}

/// An AF_XDP socket on queue 0 of `iface` in `ns` (a generator or receiver; copy mode on veth).
pub(crate) fn xsk_on(ns: &Netns, iface: &str) -> Result<XskSocket, Error> {
    let _g = ns.enter();
    XskSocket::open(loader::ifindex(iface)?, 0, &XskConfig::default())
        .map_err(io(format!("AF_XDP socket on {iface}")))
}
