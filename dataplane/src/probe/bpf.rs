//! The smallest `bpf(2)` calls the probes need: create a map, load a three-instruction XDP
//! program, test-run it. Each probe is one of these and is closed at once; nothing is attached.

use std::os::fd::{FromRawFd, OwnedFd, RawFd};

const BPF_MAP_CREATE: libc::c_long = 0;
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_TEST_RUN: libc::c_long = 10;
const BPF_PROG_TYPE_XDP: u32 = 6;
/// `BPF_PROG_TYPE_SCHED_CLS` (tc).
pub const BPF_PROG_TYPE_SCHED_CLS: u32 = 3;
/// `BPF_F_TEST_XDP_LIVE_FRAMES`.
pub const F_TEST_XDP_LIVE_FRAMES: u32 = 1 << 1;

/// One eBPF instruction (`struct bpf_insn`).
#[repr(C)]
#[derive(Clone, Copy)]
struct Insn {
    code: u8,
    regs: u8,
    off: i16,
    imm: i32,
}

/// `r0 = imm` (BPF_ALU64 | BPF_MOV | BPF_K).
const fn mov_r0(imm: i32) -> Insn {
    Insn {
        code: 0xb7,
        regs: 0,
        off: 0,
        imm,
    }
}

/// `call helper` (BPF_JMP | BPF_CALL).
const fn call(helper: i32) -> Insn {
    Insn {
        code: 0x85,
        regs: 0,
        off: 0,
        imm: helper,
    }
}

/// `exit`.
const EXIT: Insn = Insn {
    code: 0x95,
    regs: 0,
    off: 0,
    imm: 0,
};

fn sys_bpf<T>(cmd: libc::c_long, attr: &mut T) -> std::io::Result<i64> {
    // SAFETY: `attr` is a live, initialised attribute struct of the size given; the kernel
    // reads and writes only within it (and within the buffers it points at, which the callers
    // keep alive for the call).
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T,
            core::mem::size_of::<T>(),
        )
    };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn owned(fd: i64) -> OwnedFd {
    // SAFETY: the kernel just returned this descriptor to us; nothing else owns it.
    unsafe { OwnedFd::from_raw_fd(fd as RawFd) }
}

/// The map-create part of `union bpf_attr`.
#[repr(C)]
#[derive(Default)]
struct MapAttr {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
}

/// Creates (and closes) a map of the given type.
pub fn map_create(
    map_type: u32,
    key_size: u32,
    value_size: u32,
    flags: u32,
) -> std::io::Result<()> {
    let mut attr = MapAttr {
        map_type,
        key_size,
        value_size,
        max_entries: 4,
        map_flags: flags,
    };
    sys_bpf(BPF_MAP_CREATE, &mut attr).map(|fd| drop(owned(fd)))
}

/// The prog-load part of `union bpf_attr` (up to `expected_attach_type`).
#[repr(C)]
#[derive(Default)]
struct ProgAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// Why a program did not load: the error and the verifier's last line.
#[derive(Debug)]
pub struct Refused {
    pub error: std::io::Error,
    pub log: String,
}

fn load(insns: &[Insn]) -> Result<OwnedFd, Refused> {
    load_typed(BPF_PROG_TYPE_XDP, insns)
}

fn load_typed(prog_type: u32, insns: &[Insn]) -> Result<OwnedFd, Refused> {
    let license = b"GPL\0";
    let mut log = vec![0u8; 16 * 1024];
    let mut name = [0u8; 16];
    name[..11].copy_from_slice(b"l2xdp_probe");
    let mut attr = ProgAttr {
        prog_type,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: 1,
        log_size: log.len() as u32,
        log_buf: log.as_mut_ptr() as u64,
        prog_name: name,
        ..ProgAttr::default()
    };
    match sys_bpf(BPF_PROG_LOAD, &mut attr) {
        Ok(fd) => Ok(owned(fd)),
        Err(error) => {
            let end = log.iter().position(|b| *b == 0).unwrap_or(log.len());
            let text = String::from_utf8_lossy(&log[..end]);
            Err(Refused {
                error,
                log: text
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .collect::<Vec<_>>()
                    .join("\n"),
            })
        }
    }
}

/// What the verifier said of a call to `helper` in an XDP program.
pub enum HelperAnswer {
    /// Allowed (the program loaded, or only the call's arguments were refused).
    Allowed,
    /// The verifier's line refusing the helper itself.
    Refused(String),
    /// The load failed before the verifier could say (no permission, no bpf(2)).
    Unknown(String),
}

/// Whether XDP programs may call `helper` — libbpf's method (`libbpf_probe_bpf_helper`): a
/// program that only calls it, with no arguments set up. A kernel without the helper, or one
/// that does not give it to XDP programs, refuses the call itself ("invalid func", "unknown
/// func", "program of this type cannot use helper"); a kernel that has it refuses at most the
/// arguments.
pub fn helper(helper: i32) -> HelperAnswer {
    helper_in(BPF_PROG_TYPE_XDP, helper)
}

/// [`helper`] in a program of type `prog_type` (`BPF_PROG_TYPE_*`).
pub fn helper_in(prog_type: u32, helper: i32) -> HelperAnswer {
    match load_typed(prog_type, &[call(helper), mov_r0(2), EXIT]) {
        Ok(_) => HelperAnswer::Allowed,
        Err(r) => {
            let refusal = r.log.lines().find(|l| {
                l.contains("invalid func")
                    || l.contains("unknown func")
                    || l.contains("cannot use helper")
            });
            match refusal {
                Some(line) => HelperAnswer::Refused(line.to_string()),
                None if r.log.is_empty() => HelperAnswer::Unknown(r.error.to_string()),
                None => HelperAnswer::Allowed,
            }
        }
    }
}

/// The test-run part of `union bpf_attr` (also the lab's, through [`crate::bpf_sys`]).
#[repr(C)]
#[derive(Default)]
pub struct TestRunAttr {
    pub prog_fd: u32,
    pub retval: u32,
    pub data_size_in: u32,
    pub data_size_out: u32,
    pub data_in: u64,
    pub data_out: u64,
    pub repeat: u32,
    pub duration: u32,
    pub ctx_size_in: u32,
    pub ctx_size_out: u32,
    pub ctx_in: u64,
    pub ctx_out: u64,
    pub flags: u32,
    pub cpu: u32,
    pub batch_size: u32,
    pub _pad: u32,
}

/// `struct xdp_md` as test-run input.
#[repr(C)]
#[derive(Default, Clone, Copy)]
pub struct XdpMd {
    pub data: u32,
    pub data_end: u32,
    pub data_meta: u32,
    pub ingress_ifindex: u32,
    pub rx_queue_index: u32,
    pub egress_ifindex: u32,
}

/// `BPF_PROG_TEST_RUN` with `attr`.
pub(crate) fn prog_test_run(attr: &mut TestRunAttr) -> std::io::Result<()> {
    sys_bpf(BPF_PROG_TEST_RUN, attr).map(|_| ())
}

/// How to test-run.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Run {
    /// Plain, no context.
    Plain,
    /// With an `xdp_md` naming the ingress interface (what `bpf_fib_lookup` needs; 5.15+).
    WithCtx,
    /// Live frames (5.18+; refused by some builds).
    Live,
}

/// Runs `XDP_DROP` once with `BPF_PROG_TEST_RUN` as `run` says (live frames are received on
/// the loopback interface of this namespace and dropped, so nothing leaves).
pub fn test_run(run: Run) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let prog = load(&[mov_r0(1), EXIT])
        .map_err(|r| std::io::Error::new(r.error.kind(), format!("{}: {}", r.error, r.log)))?;
    let frame = [0u8; 64];
    let mut out = [0u8; 128];
    let ctx = XdpMd {
        data_end: frame.len() as u32,
        ingress_ifindex: 1,
        ..XdpMd::default()
    };
    let mut attr = TestRunAttr {
        prog_fd: prog.as_raw_fd() as u32,
        data_size_in: frame.len() as u32,
        data_in: frame.as_ptr() as u64,
        repeat: 1,
        ..TestRunAttr::default()
    };
    if run != Run::Plain {
        attr.ctx_size_in = core::mem::size_of::<XdpMd>() as u32;
        attr.ctx_in = &ctx as *const XdpMd as u64;
    }
    if run == Run::Live {
        attr.flags = F_TEST_XDP_LIVE_FRAMES;
    } else {
        attr.data_size_out = out.len() as u32;
        attr.data_out = out.as_mut_ptr() as u64;
    }
    prog_test_run(&mut attr)
}
