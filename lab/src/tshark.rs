//! Wireshark's `tshark` as an independent judge of what l2xdp emits: one row per frame with the
//! L2TP fields the tests look at, and the check that nothing is malformed.
//!
//! When tshark is missing a check skips loudly, unless `L2XDP_REQUIRE_TSHARK=1` (set by
//! `make test`, so CI always runs it), which makes it a failure.

use std::path::Path;
use std::process::Command;

/// Severity of Wireshark's expert "Error" level (`PI_ERROR`).
pub const PI_ERROR: u32 = 0x0080_0000;

/// The fields read for each frame, in [`Row`] order.
const FIELDS: [&str; 13] = [
    "frame.number",
    "l2tp.version",
    "l2tp.type",
    "l2tp.avp.message_type",
    "l2tp.avp.type",
    "_ws.malformed",
    "_ws.expert.severity",
    "_ws.expert.message",
    "frame.protocols",
    "l2tp.avp.hidden",
    "l2tp.sid",
    "l2tp.cookie",
    "l2tp.l2_spec_sequence",
];

/// What tshark says about one frame. Repeated fields are comma-joined.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Row {
    /// Frame number, from 1.
    pub frame: String,
    /// `l2tp.version` (empty for L2TPv3 data over IP, which has no version field).
    pub version: String,
    /// `l2tp.type`: the T bit, "1" for control.
    pub t_bit: String,
    /// `l2tp.avp.message_type`.
    pub message_type: String,
    /// `l2tp.avp.type`, comma-separated (hidden AVPs are not listed).
    pub avp_types: String,
    /// `_ws.malformed` (empty when well-formed).
    pub malformed: String,
    /// `_ws.expert.severity`, comma-separated.
    pub expert_severity: String,
    /// `_ws.expert.message`, comma-separated.
    pub expert_message: String,
    /// `frame.protocols`.
    pub protocols: String,
    /// `l2tp.avp.hidden`, comma-separated.
    pub hidden: String,
    /// `l2tp.sid`.
    pub session_id: String,
    /// `l2tp.cookie`.
    pub cookie: String,
    /// `l2tp.l2_spec_sequence`.
    pub l2ss_sequence: String,
}

impl Row {
    fn from_fields(f: &[&str]) -> Row {
        let g = |i: usize| f.get(i).copied().unwrap_or("").to_string();
        Row {
            frame: g(0),
            version: g(1),
            t_bit: g(2),
            message_type: g(3),
            avp_types: g(4),
            malformed: g(5),
            expert_severity: g(6),
            expert_message: g(7),
            protocols: g(8),
            hidden: g(9),
            session_id: g(10),
            cookie: g(11),
            l2ss_sequence: g(12),
        }
    }

    /// Whether Wireshark dissected L2TP in this frame.
    pub fn is_l2tp(&self) -> bool {
        self.protocols.split(':').any(|p| p == "l2tp")
    }

    /// The AVP types as numbers.
    pub fn avp_type_list(&self) -> Vec<u16> {
        self.avp_types
            .split(',')
            .filter_map(|s| s.parse().ok())
            .collect()
    }

    /// How many AVPs carry the H bit.
    pub fn hidden_count(&self) -> usize {
        self.hidden
            .split(',')
            .filter(|h| *h == "1" || h.eq_ignore_ascii_case("true"))
            .count()
    }

    /// Why this frame is not clean: a malformed mark or an expert error.
    pub fn problems(&self) -> Option<String> {
        let mut why = Vec::new();
        if !self.malformed.is_empty() {
            why.push("malformed".to_string());
        }
        if self
            .expert_severity
            .split(',')
            .filter_map(|s| s.parse::<u32>().ok())
            .any(|s| s >= PI_ERROR)
        {
            why.push(format!("expert error: {}", self.expert_message));
        }
        (!why.is_empty()).then(|| why.join("; "))
    }
}

/// Whether tshark may be skipped here.
fn required() -> bool {
    std::env::var("L2XDP_REQUIRE_TSHARK").as_deref() == Ok("1")
}

/// Reads a capture with tshark (`-o` preferences as given; L2TP also decoded on `udp_ports`
/// besides 1701). `None` when tshark is not installed and not required (after saying so
/// loudly); a panic when it is required.
pub fn rows(path: &Path, prefs: &[&str], udp_ports: &[u16]) -> Option<Vec<Row>> {
    let mut cmd = Command::new("tshark");
    cmd.arg("-n").arg("-r").arg(path);
    for p in prefs {
        cmd.arg("-o").arg(p);
    }
    for port in udp_ports.iter().filter(|&&p| p != 1701) {
        cmd.arg("-d").arg(format!("udp.port=={port},l2tp"));
    }
    cmd.args([
        "-T",
        "fields",
        "-E",
        "separator=|",
        "-E",
        "occurrence=a",
        "-E",
        "aggregator=,",
    ]);
    for f in FIELDS {
        cmd.arg("-e").arg(f);
    }
    let out = match cmd.output() {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            assert!(
                !required(),
                "tshark is required (L2XDP_REQUIRE_TSHARK=1) but was not found; run scripts/setup.sh"
            );
            eprintln!(
                "\n*** SKIPPING the tshark check: tshark is not installed (scripts/setup.sh installs it) ***\n"
            );
            return None;
        }
        Err(e) => panic!("running tshark: {e}"),
    };
    assert!(
        out.status.success(),
        "tshark failed on {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    Some(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| Row::from_fields(&l.split('|').collect::<Vec<_>>()))
            .collect(),
    )
}

/// Checks that every frame of a capture is dissected as L2TP with no malformed mark and no
/// expert error; returns the rows (for further checks), or `None` when tshark was skipped.
pub fn assert_clean(path: &Path, prefs: &[&str], udp_ports: &[u16]) -> Option<Vec<Row>> {
    let rows = rows(path, prefs, udp_ports)?;
    let bad: Vec<String> = rows
        .iter()
        .filter_map(|r| {
            let mut why = r.problems().unwrap_or_default();
            if !r.is_l2tp() {
                why.push_str(&format!(" not L2TP ({})", r.protocols));
            }
            (!why.is_empty()).then(|| format!("frame {}: {why}", r.frame))
        })
        .collect();
    assert!(
        bad.is_empty(),
        "tshark disagrees with {}:\n{}",
        path.display(),
        bad.join("\n")
    );
    Some(rows)
}

/// How long [`Dumpcap::stop`] waits before interrupting dumpcap: more than its 250 ms read
/// timeout.
const DUMPCAP_FLUSH: std::time::Duration = std::time::Duration::from_millis(600);

/// A `dumpcap` capture on an interface of a namespace, to a pcap file, for [`assert_clean`]:
/// started (and waited for until it captures) by [`start`](Self::start), stopped by
/// [`stop`](Self::stop) or on drop.
#[derive(Debug)]
pub struct Dumpcap {
    child: std::process::Child,
    /// The capture file.
    pub path: std::path::PathBuf,
}

impl Dumpcap {
    /// `ip netns exec <ns> dumpcap -i <iface> -f <filter> -P -w <path>`; `None` when dumpcap
    /// is not installed and tshark is not required (said loudly), a panic when it is.
    pub fn start(ns: &str, iface: &str, filter: &str, path: &Path) -> Option<Dumpcap> {
        use std::io::BufRead;
        let spawned = Command::new("ip")
            .args([
                "netns", "exec", ns, "dumpcap", "-i", iface, "-f", filter, "-P", "-w",
            ])
            .arg(path)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn();
        let mut child = spawned.expect("ip netns exec dumpcap");
        let stderr = child.stderr.take().expect("dumpcap's stderr");
        let mut lines = std::io::BufReader::new(stderr).lines();
        // "Capturing on 'lac0'" once it captures; an exit before is a failure to start.
        let mut said = Vec::new();
        for l in lines.by_ref() {
            let l = l.unwrap_or_default();
            if l.starts_with("Capturing on") {
                // Keep draining its stderr so that it never blocks on a full pipe.
                std::thread::spawn(move || lines.for_each(drop));
                let capture = Dumpcap {
                    child,
                    path: path.to_path_buf(),
                };
                // dumpcap says "Capturing on" before it opens the interface: on a loaded
                // machine the first packets can pass before it does. Wait for its packet
                // socket instead.
                capture.wait_for_packet_socket(std::time::Duration::from_secs(20));
                return Some(capture);
            }
            said.push(l);
        }
        let _ = child.wait();
        let missing = said.iter().any(|l| l.contains("No such file"));
        if missing && !required() {
            eprintln!("\n*** SKIPPING the capture: dumpcap is not installed ***\n");
            return None;
        }
        panic!("dumpcap did not start: {}", said.join("\n"));
    }

    /// Waits until dumpcap holds a packet socket in its namespace (`/proc/<pid>/net/packet`
    /// lists one whose inode is among its open files): from then on it captures. Panics after
    /// `limit`.
    fn wait_for_packet_socket(&self, limit: std::time::Duration) {
        let pid = self.child.id();
        let end = std::time::Instant::now() + limit;
        loop {
            let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
                .map(|d| {
                    d.flatten()
                        .filter_map(|e| std::fs::read_link(e.path()).ok())
                        .filter_map(|t| {
                            let t = t.to_string_lossy().into_owned();
                            t.strip_prefix("socket:[")
                                .and_then(|t| t.strip_suffix(']'))
                                .map(str::to_owned)
                        })
                        .collect()
                })
                .unwrap_or_default();
            let packet =
                std::fs::read_to_string(format!("/proc/{pid}/net/packet")).unwrap_or_default();
            let open = packet
                .lines()
                .skip(1)
                .filter_map(|l| l.split_whitespace().last())
                .any(|inode| inodes.iter().any(|i| i == inode));
            if open {
                return;
            }
            assert!(
                std::time::Instant::now() < end,
                "dumpcap (pid {pid}) opened no packet socket within {limit:?}"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    /// Stops the capture (SIGINT: dumpcap finishes the file) and waits for it. First it lets
    /// one read timeout of dumpcap pass: packets sit in the kernel's TPACKET_V3 block until the
    /// block is retired (dumpcap's read timeout, 250 ms), and a block not yet retired at the
    /// interrupt is never written — a loaded run lost its last control messages that way.
    pub fn stop(mut self) -> std::path::PathBuf {
        std::thread::sleep(DUMPCAP_FLUSH);
        self.interrupt();
        std::mem::take(&mut self.path)
    }

    fn interrupt(&mut self) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            // SAFETY: a signal to our own child, not yet reaped. `ip netns exec` execs
            // dumpcap, so the pid is dumpcap's.
            unsafe { libc::kill(pid, libc::SIGINT) };
        }
        let _ = self.child.wait();
    }
}

impl Drop for Dumpcap {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            self.interrupt();
        }
    }
}
