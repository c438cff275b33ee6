//! A qemu guest with Debian's `xl2tpd` and `ppp` for the interop tests
//! (`tests/tests/interop_xl2tpd.rs`): its pieces ([`prepare`]: `scripts/vm/interop-prepare.sh`
//! over `scripts/vm/lib.sh`, cached), the guest itself ([`Vm`]: qemu through `vm_boot`, its NIC
//! a tap in a namespace of the test's, powered off on drop) and the commands run in it
//! ([`Vm::run`]: `scripts/vm/interop-agent.sh` in the guest runs what the test drops in the
//! shared folder, one at a time). Fixtures: a failure panics with what failed (the guest's
//! console tail included).

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use l2xdp_lab::Netns;
use l2xdp_wire::net::ethernet::MacAddr;

/// The repository (scripts/vm).
const REPO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
/// Bounds a hung boot (TCG: a stock kernel boots in about 20 s here).
const BOOT_LIMIT: Duration = Duration::from_secs(300);
/// Bounds one command in the guest.
const CMD_LIMIT: Duration = Duration::from_secs(120);

/// The guest's network: its NIC on a tap `tap` in `ns`, put in the bridge `bridge` there; eth0
/// with `addr`/`prefix`, MAC `mac`, and a permanent neighbour entry for `gateway`.
#[derive(Debug, Clone, Copy)]
pub struct GuestNet<'a> {
    pub ns: &'a Netns,
    pub tap: &'a str,
    pub bridge: &'a str,
    pub mac: MacAddr,
    pub addr: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Ipv4Addr,
    pub gateway_mac: MacAddr,
}

/// What `scripts/vm/interop-prepare.sh` printed.
pub struct Pieces {
    /// The kernel's directory (`vmlinuz`, `initrd.img`, modules).
    pub kdir: String,
    /// The root file system image.
    pub img: String,
    /// `kvm` or `tcg`.
    pub accel: String,
}

/// Fetches or builds (cached) the kernel, initramfs and root file system.
pub fn prepare() -> Pieces {
    let out = Command::new("bash")
        .arg(format!("{REPO}/scripts/vm/interop-prepare.sh"))
        .stderr(Stdio::inherit())
        .output()
        .expect("run scripts/vm/interop-prepare.sh");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "scripts/vm/interop-prepare.sh failed ({}): {text}",
        out.status
    );
    let get = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .unwrap_or_else(|| panic!("interop-prepare.sh printed no {k}: {text}"))
            .to_string()
    };
    Pieces {
        kdir: get("VM_KDIR"),
        img: get("VM_IMG"),
        accel: get("VM_ACCEL"),
    }
}

/// The guest: qemu (through `vm_boot`, in the `lac` namespace, its tap there), the shared
/// folder, and the commands run in it. Powered off (or killed) on drop.
pub struct Vm {
    child: Child,
    /// The shared folder (the same path in the guest).
    pub share: PathBuf,
    next: u32,
}

impl Vm {
    /// Boots the guest with its NIC on a tap in `net.ns`, the tap put in `net.bridge`, and
    /// waits until its agent is up (eth0 configured as `net` says).
    pub fn boot(p: &Pieces, share: &Path, net: &GuestNet) -> Vm {
        let lac = net.ns;
        std::fs::create_dir_all(share.join("scripts/vm")).expect("share");
        for f in ["guest-init.sh", "interop-agent.sh"] {
            let dst = share.join("scripts/vm").join(f);
            std::fs::copy(format!("{REPO}/scripts/vm/{f}"), &dst).expect("copy a guest script");
        }
        std::fs::write(
            share.join("scripts/net.conf"),
            format!(
                "{} {} {} {}\n",
                net.addr, net.prefix, net.gateway, net.gateway_mac
            ),
        )
        .expect("net.conf");
        let job = share.join("scripts/vm/interop-agent.sh");
        let out = share.join("out");
        let nic = format!(
            "-netdev tap,id=n0,ifname={},script=no,downscript=no \
             -device virtio-net-pci,netdev=n0,mac={}",
            net.tap, net.mac
        );
        let started = Instant::now();
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &lac.name, "bash", "-c"])
            .arg(format!("source {REPO}/scripts/vm/lib.sh && vm_boot \"$@\"",))
            .arg("vm_boot")
            .args([&p.kdir, &p.img, &p.accel])
            .arg(share)
            .arg(&job)
            .arg(&out)
            .arg(BOOT_LIMIT.as_secs().saturating_add(3600).to_string())
            .args(["1024", "1"])
            .env("VM_NET", nic)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child = cmd.spawn().expect("start qemu");
        let mut vm = Vm {
            child,
            share: share.to_path_buf(),
            next: 0,
        };
        // The tap appears once qemu runs: into the bridge with it.
        vm.wait(BOOT_LIMIT, "the tap", || {
            Command::new("ip")
                .args(["-n", &lac.name, "link", "show", net.tap])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        });
        lac.ip(&["link", "set", net.tap, "master", net.bridge]);
        lac.ip(&["link", "set", net.tap, "up"]);
        // The agent signals once eth0 is up.
        let ready = share.join("scripts/agent.ready");
        vm.wait(BOOT_LIMIT, "the guest's agent", || ready.exists());
        eprintln!(
            "interop: guest up in {:.1} s ({})",
            started.elapsed().as_secs_f64(),
            p.accel
        );
        vm
    }

    /// Polls `done` every 100 ms for at most `limit`; panics (with the console's tail) when
    /// qemu exits or time runs out.
    pub fn wait(&mut self, limit: Duration, what: &str, done: impl Fn() -> bool) {
        let end = Instant::now() + limit;
        while !done() {
            if let Ok(Some(st)) = self.child.try_wait() {
                panic!(
                    "qemu exited ({st}) while waiting for {what}; console:\n{}",
                    self.console_tail()
                );
            }
            assert!(
                Instant::now() < end,
                "no {what} within {limit:?}; console:\n{}",
                self.console_tail()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn console_tail(&self) -> String {
        tail(&self.share.join("out/console.log"), 30)
    }

    /// Runs `script` (bash) in the guest: its exit status and output (stdout and stderr).
    pub fn run(&mut self, script: &str) -> (i32, String) {
        let dir = self.share.join("scripts/cmd");
        std::fs::create_dir_all(&dir).expect("cmd dir");
        self.next += 1;
        let n = self.next;
        let tmp = dir.join(format!("{n}.tmp"));
        std::fs::write(&tmp, script).expect("write a command");
        std::fs::rename(&tmp, dir.join(format!("{n}.sh"))).expect("queue a command");
        let rc = dir.join(format!("{n}.rc"));
        self.wait(CMD_LIMIT, &format!("an answer to `{script}`"), || {
            rc.exists()
        });
        let code = std::fs::read_to_string(&rc)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(-1);
        let out = std::fs::read_to_string(dir.join(format!("{n}.out"))).unwrap_or_default();
        (code, out)
    }

    /// [`run`](Self::run), which must succeed; its output.
    pub fn sh(&mut self, script: &str) -> String {
        let (code, out) = self.run(script);
        assert_eq!(code, 0, "guest: `{script}` failed ({code}): {out}");
        out
    }

    /// The guest's file `name` in the share (a log the guest writes there).
    pub fn file(&self, name: &str) -> String {
        std::fs::read_to_string(self.share.join(name)).unwrap_or_default()
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        let _ = std::fs::write(self.share.join("scripts/cmd/poweroff"), "");
        let end = Instant::now() + Duration::from_secs(30);
        while Instant::now() < end {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        // The process group of our child (it leads it): bash, timeout, qemu.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.wait();
    }
}

/// The last `n` lines of a file.
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Lines of `text` after the first `skip`.
pub fn after(text: &str, skip: usize) -> String {
    text.lines().skip(skip).collect::<Vec<_>>().join("\n")
}

/// The folder shared with the guest, mounted at the same path there: not under /tmp or /run
/// (the guest mounts a tmpfs on both, which would hide it). Removed on drop.
pub struct Share(pub PathBuf);

impl Share {
    /// `/var/tmp/l2xdp-<tag>-<pid>`, empty.
    pub fn new(tag: &str) -> Share {
        let p = PathBuf::from(format!("/var/tmp/l2xdp-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("the shared folder");
        Share(p)
    }
}

impl Drop for Share {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
