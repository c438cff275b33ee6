//! The `lac` — `lns` — `core` topology: three namespaces joined by two veth pairs, the LNS's
//! fast path attached on the lns side, `xdp_pass` on the peers.
//!
//! ```text
//! lac: lac0 --veth-- lns: la [xdp_l2tp_access] ... lc [xdp_l2tp_core] --veth-- core: core0
//! ```
//!
//! Addresses: `la` 192.0.2.1/24 and `lac0` 192.0.2.2/24 (the L2TP endpoints), `lc`
//! 198.51.100.1/24 towards the core host 198.51.100.2, which has no address of its own: what
//! reaches it is only counted, never answered. Neighbours are permanent (no ARP on the wire),
//! IPv6 is off (no autoconfiguration chatter), forwarding is on in `lns` (`bpf_fib_lookup`
//! needs it on the ingress device).

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use aya::programs::{Xdp, XdpMode};
use aya::Ebpf;
use l2xdp_ebpf::prog;
use l2xdp_wire::net::ethernet::MacAddr;

use crate::bpf::{prog::PASS, UTIL_OBJ};
use crate::packet::PacketSocket;
use crate::Netns;
use l2xdp_dataplane::afxdp::{AfXdp, AfXdpConfig};
use l2xdp_dataplane::{loader, FastPathConfig, XdpDataPlane};
use l2xdp_wire::datapath::DropReason;

/// The LNS's access veth (in `lns`).
pub const LA: &str = "la";
/// The LAC's end of the access veth (in `lac`).
pub const LAC0: &str = "lac0";
/// The LNS's core veth (in `lns`).
pub const LC: &str = "lc";
/// The core host's end of the core veth (in `core`).
pub const CORE0: &str = "core0";

/// MAC of `la`.
pub const LA_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0x0a, 1]);
/// MAC of `lac0`.
pub const LAC_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0x0a, 2]);
/// MAC of `lc`.
pub const LC_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0x0c, 1]);
/// MAC of `core0`.
pub const CORE_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0x0c, 2]);
/// The LNS's access address (on `la`).
pub const LNS_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// The LAC's address (on `lac0`).
pub const LAC_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
/// The LNS's core address (on `lc`).
pub const LNS_CORE_IP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
/// The core host (behind `core0`, a permanent neighbour of `lc`; no address configured).
pub const CORE_HOST: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
/// The L2TP port on both ends.
pub const L2TP_PORT: u16 = 1701;
/// Frames each cpumap entry queues, as `l2xdp-dataplane attach --cpumap` sets it.
pub const CPUMAP_QUEUE: u32 = 2048;

/// The three namespaces, configured. Dropping it deletes them (their veths go with them); the
/// namespaces are shared (`Arc`) so that threads can enter them.
#[derive(Debug)]
pub struct Topology {
    /// The LAC's namespace (`lac0`).
    pub lac: Arc<Netns>,
    /// The LNS's namespace (`la`, `lc`).
    pub lns: Arc<Netns>,
    /// The core host's namespace (`core0`).
    pub core: Arc<Netns>,
}

impl Topology {
    /// Creates `<tag>-lac`, `<tag>-lns` and `<tag>-core` (see [`Netns::new`]) and configures
    /// them as the module documentation says.
    pub fn new(tag: &str) -> Topology {
        Self::with_queues(tag, 1)
    }

    /// As [`new`](Self::new), with `queues` transmit and receive queues on every veth (a
    /// veth's peer receives on the queue the frame was sent on: the sender's flow hash picks
    /// it, as RSS would).
    pub fn with_queues(tag: &str, queues: u32) -> Topology {
        let t = Topology {
            lac: Arc::new(Netns::new(&format!("{tag}-lac"))),
            lns: Arc::new(Netns::new(&format!("{tag}-lns"))),
            core: Arc::new(Netns::new(&format!("{tag}-core"))),
        };
        let (lac, lns, core) = (&*t.lac, &*t.lns, &*t.core);
        for ns in [lac, lns, core] {
            ns.exec(&["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"]);
            ns.exec(&["sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1"]);
        }
        veth(lns, LA, LA_MAC, LAC0, lac, queues);
        veth(lns, LC, LC_MAC, CORE0, core, queues);
        lac.ip(&["link", "set", LAC0, "address", &LAC_MAC.to_string()]);
        core.ip(&["link", "set", CORE0, "address", &CORE_MAC.to_string()]);
        for (ns, l) in [(lns, LA), (lns, LC), (lac, LAC0), (core, CORE0)] {
            ns.ip(&["link", "set", l, "up"]);
        }
        lns.ip(&["addr", "add", &format!("{LNS_IP}/24"), "dev", LA]);
        lns.ip(&["addr", "add", &format!("{LNS_CORE_IP}/24"), "dev", LC]);
        lac.ip(&["addr", "add", &format!("{LAC_IP}/24"), "dev", LAC0]);
        // The LAC's kernel sends its UDP (control messages, PPP control frames) with checksum
        // offload: over a veth the frame reaches the access program with the checksum
        // unfinished (CHECKSUM_PARTIAL, only the pseudo-header sum), which the fast path drops
        // as bad_udp_checksum. A real wire carries finished checksums: compute them in
        // software.
        lac.exec(&["ethtool", "-K", LAC0, "tx", "off"]);
        neigh(lns, LAC_IP, LAC_MAC, LA);
        neigh(lns, CORE_HOST, CORE_MAC, LC);
        neigh(lac, LNS_IP, LA_MAC, LAC0);
        // bpf_fib_lookup needs forwarding on the ingress device.
        lns.exec(&["sysctl", "-qw", "net.ipv4.conf.all.forwarding=1"]);
        t
    }

    /// Empties the LNS's neighbour tables and lets them fill the usual way: the permanent
    /// entries [`new`](Self::new) installs in `lns` are deleted (everything else flushed),
    /// and the core host gets its address on `core0` ([`CORE_HOST`]/24) so that it answers
    /// ARP (the LAC answers already: `lac0` has [`LAC_IP`]). The LAC keeps its permanent
    /// entry for the LNS: it never ARPs, so nothing the LAC sends teaches the LNS its MAC
    /// (an ARP request would leave a STALE entry, which `bpf_fib_lookup` takes as valid).
    ///
    /// Reverse-path filtering is turned off in `lns` (`all`, `default`, `la`, `lc`): the
    /// kernel path hands decapsulated subscriber packets to the stack as received on `la`,
    /// and the LNS has no route to the subscribers (the fast path validates their sources
    /// itself, RFC 1661 §3.2), so `rp_filter` 1 or 2 would drop them as martians
    /// (net/ipv4/fib_frontend.c fib_validate_source). A new namespace copies these sysctls
    /// from the initial one (net.core.devconf_inherit_init_net 0), where distributions often
    /// set 2.
    pub fn dynamic_neighbours(&self) {
        let (lns, core) = (&*self.lns, &*self.core);
        lns.ip(&["neigh", "del", &LAC_IP.to_string(), "dev", LA]);
        lns.ip(&["neigh", "del", &CORE_HOST.to_string(), "dev", LC]);
        lns.ip(&["neigh", "flush", "all"]);
        core.ip(&["addr", "add", &format!("{CORE_HOST}/24"), "dev", CORE0]);
        for c in ["all", "default", LA, LC] {
            lns.exec(&["sysctl", "-qw", &format!("net.ipv4.conf.{c}.rp_filter=0")]);
        }
    }

    /// `ip -n lns neigh show` of the IPv4 neighbours (one entry a line; FAILED and
    /// INCOMPLETE entries included).
    pub fn lns_neighbours(&self) -> String {
        let out = std::process::Command::new("ip")
            .args(["-4", "-n", &self.lns.name, "neigh", "show"])
            .output()
            .expect("ip neigh show");
        assert!(out.status.success(), "ip neigh show failed");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Adds an L2TPv3 attachment circuit: a veth pair `lns_end` (in `lns`) — `core_end` (in
    /// `core`), both up, no addresses (it carries a pseudowire's Ethernet frames as they are).
    /// The fast path must be attached to `lns_end` too (`xdp_l2tp_core`: what arrives there
    /// is encapsulated), and `xdp_pass` to `core_end` ([`PeerPort`]) for redirected frames.
    pub fn add_circuit(&self, lns_end: &str, core_end: &str) {
        let mac = MacAddr([2, 0, 0, 0, 0x0d, 0]);
        veth(&self.lns, lns_end, mac, core_end, &self.core, 1);
        // Distinct MACs are not needed: nothing on a circuit is addressed to its ends.
        self.lns.ip(&["link", "set", lns_end, "up"]);
        self.core.ip(&["link", "set", core_end, "up"]);
    }

    /// Loads the fast path with its maps pinned under `pins` (see [`Pins`]), attaches
    /// `xdp_l2tp_access` on `la` and `xdp_l2tp_core` on `lc` (native mode, links pinned too),
    /// and sets the default [`FastPathConfig`] through the pins, as the control plane would.
    /// The returned object must be kept while the programs are wanted.
    pub fn attach_fast_path(&self, pins: &Path) -> Ebpf {
        self.attach_fast_path_with(pins, &FastPathConfig::default())
    }

    /// As [`attach_fast_path`](Self::attach_fast_path), setting `config` instead of the
    /// default. With `config.cpumap_cpus` above 0 the cpumap is filled first, as
    /// `l2xdp-dataplane attach --cpumap` does: entries for CPUs `0..cpumap_cpus` running the
    /// second pass `xdp_l2tp_access_cpu`, queues of [`CPUMAP_QUEUE`] frames (the CPUs must be
    /// online: see [`loader::cpumap_cpus`]).
    pub fn attach_fast_path_with(&self, pins: &Path, config: &FastPathConfig) -> Ebpf {
        let _g = self.lns.enter();
        let mut ebpf = loader::load(Some(pins)).expect("load with pins");
        if config.cpumap_cpus > 0 {
            loader::setup_cpumap(&mut ebpf, config.cpumap_cpus, CPUMAP_QUEUE)
                .expect("cpumap entries");
        }
        loader::attach_pinned(&mut ebpf, prog::ACCESS, LA, pins).expect("attach access");
        loader::attach_pinned(&mut ebpf, prog::CORE, LC, pins).expect("attach core");
        XdpDataPlane::open(pins)
            .expect("open pins")
            .set_config(config)
            .expect("config");
        ebpf
    }
}

/// Which fast path the lab runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The XDP programs forward.
    Xdp,
    /// AF_XDP mode: the programs hand forwarded packets to the workers
    /// (`l2xdp_dataplane::afxdp`), one worker on CPU 0 with sockets on `la` and `lc`.
    AfXdp,
}

/// The fast path a [`Topology`] runs (see [`Topology::start_fast_path`]): the object and, in
/// AF_XDP mode, the workers (in this process, in `lns`, independent of any control plane).
pub struct FastPath {
    /// The workers (AF_XDP mode); dropped first.
    pub afxdp: Option<AfXdp>,
    /// The loaded object.
    pub ebpf: Ebpf,
    pins: PathBuf,
}

impl FastPath {
    /// The programs' nonzero verdict counters, drops and (AF_XDP mode) the workers' counters,
    /// for a failing assertion's message.
    pub fn diagnostics(&self) -> String {
        let dp = match XdpDataPlane::open(&self.pins) {
            Ok(dp) => dp,
            Err(e) => return format!("(pins unreadable: {e})"),
        };
        let nonzero = |v: &[u64]| -> String {
            v.iter()
                .enumerate()
                .filter(|(_, n)| **n > 0)
                .map(|(i, n)| format!("{i}:{n}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let verdicts = dp
            .verdict_counters()
            .map(|v| nonzero(&v))
            .unwrap_or_default();
        let drops = dp.drop_counters().map(|v| nonzero(&v)).unwrap_or_default();
        let workers = self
            .afxdp
            .as_ref()
            .map(|a| nonzero(&a.counters()))
            .unwrap_or_default();
        format!("verdicts [{verdicts}] drops [{drops}] workers [{workers}]")
    }

    /// Drops by `DropReason` index: the programs' (`l2xdp_drops`) plus, in AF_XDP mode, the
    /// workers' (per core, merged).
    pub fn drop_counters(&self) -> [u64; DropReason::COUNT] {
        let mut d = XdpDataPlane::open(&self.pins)
            .expect("open pins")
            .drop_counters()
            .expect("drops");
        if let Some(a) = &self.afxdp {
            for (d, w) in d.iter_mut().zip(a.counters().iter()) {
                *d += w;
            }
        }
        d
    }

    /// AF_XDP mode: waits until every session change made so far is in the workers'
    /// tables (nothing to wait for in XDP mode).
    pub fn settle(&self) {
        if let Some(a) = &self.afxdp {
            a.settle(&self.pins, crate::traffic::LIMIT)
                .expect("AF_XDP workers settle");
        }
    }
}

impl Topology {
    /// [`attach_fast_path`](Self::attach_fast_path) in `mode`: in AF_XDP mode the config says
    /// so and one worker starts on CPU 0 (in `lns`).
    pub fn start_fast_path(&self, pins: &Path, mode: Mode) -> FastPath {
        self.start_fast_path_on(pins, mode, &[0])
    }

    /// As [`start_fast_path`](Self::start_fast_path), AF_XDP mode with a worker per core of
    /// `cores`.
    pub fn start_fast_path_on(&self, pins: &Path, mode: Mode, cores: &[usize]) -> FastPath {
        self.start_fast_path_with_circuits(pins, mode, cores, &[])
    }

    /// As [`start_fast_path_on`](Self::start_fast_path_on), with the L2TPv3 attachment
    /// circuits `circuits` (their LNS ends, made with [`add_circuit`](Self::add_circuit)
    /// beforehand): `xdp_l2tp_core` attached to each, and in AF_XDP mode a socket of every
    /// worker on each (a frame a worker must send on an interface it has no socket on is
    /// dropped, `xsk_stat::NO_EGRESS`).
    pub fn start_fast_path_with_circuits(
        &self,
        pins: &Path,
        mode: Mode,
        cores: &[usize],
        circuits: &[String],
    ) -> FastPath {
        let config = FastPathConfig {
            afxdp: mode == Mode::AfXdp,
            ..FastPathConfig::default()
        };
        let mut ebpf = self.attach_fast_path_with(pins, &config);
        let _g = self.lns.enter();
        for c in circuits {
            loader::attach_pinned(&mut ebpf, prog::CORE, c, pins)
                .expect("attach the core program to an attachment circuit");
        }
        let afxdp = (mode == Mode::AfXdp).then(|| {
            let mut interfaces = vec![LA.to_string(), LC.to_string()];
            interfaces.extend(circuits.iter().cloned());
            AfXdp::start(
                pins,
                &AfXdpConfig {
                    interfaces,
                    cores: cores.to_vec(),
                    ..AfXdpConfig::default()
                },
            )
            .expect("AF_XDP workers")
        });
        FastPath {
            afxdp,
            ebpf,
            pins: pins.into(),
        }
    }
}

impl Topology {
    /// Adds `n` attachment-circuit veth pairs for L2TPv3 Ethernet pseudowires (RFC 4719):
    /// `ac<k>` in `lns` (MAC 02:00:00:00:ac:k), its peer `acp<k>` in `core` (02:00:00:01:ac:k),
    /// both up, no addresses. Returns the names, `(ac<k>, acp<k>)`.
    pub fn add_attachment_circuits(&self, n: u8) -> Vec<(String, String)> {
        (0..n)
            .map(|k| {
                let (ac, acp) = (format!("ac{k}"), format!("acp{k}"));
                veth(
                    &self.lns,
                    &ac,
                    MacAddr([2, 0, 0, 0, 0xac, k]),
                    &acp,
                    &self.core,
                    1,
                );
                self.core.ip(&[
                    "link",
                    "set",
                    &acp,
                    "address",
                    &MacAddr([2, 0, 0, 1, 0xac, k]).to_string(),
                ]);
                self.lns.ip(&["link", "set", &ac, "up"]);
                self.core.ip(&["link", "set", &acp, "up"]);
                (ac, acp)
            })
            .collect()
    }
}

/// `ip -n <ns> link add <name> address <mac> type veth peer name <peer> netns <peer_ns>`.
fn veth(ns: &Netns, name: &str, mac: MacAddr, peer: &str, peer_ns: &Netns, queues: u32) {
    let q = queues.max(1).to_string();
    ns.ip(&[
        "link",
        "add",
        name,
        "address",
        &mac.to_string(),
        "numtxqueues",
        &q,
        "numrxqueues",
        &q,
        "type",
        "veth",
        "peer",
        "name",
        peer,
        "numtxqueues",
        &q,
        "numrxqueues",
        &q,
        "netns",
        &peer_ns.name,
    ]);
}

/// A permanent neighbour: `addr` is at `mac` on `dev`.
fn neigh(ns: &Netns, addr: Ipv4Addr, mac: MacAddr, dev: &str) {
    ns.ip(&[
        "neigh",
        "replace",
        &addr.to_string(),
        "lladdr",
        &mac.to_string(),
        "nud",
        "permanent",
        "dev",
        dev,
    ]);
}

/// A pin directory: on drop (on failure too) the pinned links are removed, detaching the
/// programs, and so are the pinned maps.
#[derive(Debug)]
pub struct Pins(pub PathBuf);

impl Pins {
    /// `/sys/fs/bpf/l2xdp-<tag>-<pid>`.
    pub fn under_sys_fs_bpf(tag: &str) -> Pins {
        Pins(PathBuf::from(format!(
            "/sys/fs/bpf/l2xdp-{tag}-{}",
            std::process::id()
        )))
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Pins {
    fn drop(&mut self) {
        if let Err(e) = loader::detach(&self.0) {
            eprintln!("cleanup of {}: {e}", self.0.display());
        }
    }
}

/// A peer's end of a veth (`lac0`, `core0`): `xdp_pass` attached in native mode, so that
/// frames the fast path redirects to the veth are delivered (a veth drops redirected frames
/// unless its peer runs XDP). The program is detached on drop.
#[derive(Debug)]
pub struct PeerPort {
    ns: Arc<Netns>,
    /// The interface's index in its namespace.
    pub ifindex: u32,
    _pass: Ebpf,
}

impl PeerPort {
    /// Attaches `xdp_pass` to `iface` in `ns`.
    pub fn new(ns: &Arc<Netns>, iface: &str) -> PeerPort {
        let _g = ns.enter();
        let mut pass = Ebpf::load(UTIL_OBJ).expect("util object");
        let p: &mut Xdp = pass
            .program_mut(PASS)
            .expect("xdp_pass")
            .try_into()
            .expect("xdp");
        p.load().expect("load");
        p.attach(iface, XdpMode::Driver).expect("attach xdp_pass");
        PeerPort {
            ns: ns.clone(),
            ifindex: loader::ifindex(iface).expect("ifindex"),
            _pass: pass,
        }
    }

    /// A packet socket on the interface for EtherType `proto` (see [`PacketSocket::open`]),
    /// created inside the namespace (a socket belongs to its creator's namespace).
    /// With a 4 MiB receive buffer: a frame a veth built from an XDP buffer is charged a whole
    /// page or more (its truesize; 5.10 and 6.1 kernels), so the default `rmem_default` of
    /// 208 KiB holds only ~49 of them and a burst of 50 lost its last frame at the socket
    /// (kernel-matrix runs of `e2e` before this: frame 49 of 50 missing, the fast path's
    /// DECAP counter at 50, later frames arriving).
    pub fn socket(&self, proto: u16, recv_timeout: std::time::Duration) -> PacketSocket {
        let _g = self.ns.enter();
        PacketSocket::open(self.ifindex, proto, recv_timeout).force_recv_buffer(4 << 20)
    }
}
