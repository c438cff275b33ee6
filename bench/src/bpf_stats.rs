//! Per-program statistics of the kernel (`kernel.bpf_stats_enabled`): cumulative run time and
//! run count from `BPF_OBJ_GET_INFO_BY_FD`, a guard that switches the sysctl and restores the
//! previous setting on drop (unwinding included), and [`StatsHold`] (`BPF_ENABLE_STATS`), which
//! keeps them on whatever other processes write to the sysctl.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// `BPF_OBJ_GET_INFO_BY_FD`.
const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;
/// `BPF_ENABLE_STATS`.
const BPF_ENABLE_STATS: libc::c_long = 32;
/// `BPF_STATS_RUN_TIME`.
const BPF_STATS_RUN_TIME: u32 = 0;
/// Offsets in `struct bpf_prog_info` (uapi linux/bpf.h).
const RUN_TIME_NS_AT: usize = 192;
const RUN_CNT_AT: usize = 200;

const SYSCTL: &str = "/proc/sys/kernel/bpf_stats_enabled";

/// A program's cumulative statistics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProgStats {
    /// Nanoseconds spent in the program.
    pub run_time_ns: u64,
    /// Runs.
    pub run_cnt: u64,
}

impl ProgStats {
    /// Nanoseconds per run between `before` and `self` (None: no runs).
    pub fn ns_per_run_since(&self, before: &ProgStats) -> Option<f64> {
        let runs = self.run_cnt.checked_sub(before.run_cnt)?;
        let ns = self.run_time_ns.checked_sub(before.run_time_ns)?;
        (runs > 0).then(|| ns as f64 / runs as f64)
    }

    /// Runs between `before` and `self`.
    pub fn runs_since(&self, before: &ProgStats) -> u64 {
        self.run_cnt.saturating_sub(before.run_cnt)
    }
}

/// Reads a program's statistics.
pub fn prog_stats(fd: BorrowedFd<'_>) -> std::io::Result<ProgStats> {
    let mut info = [0u8; 512];
    #[repr(C)]
    struct InfoAttr {
        fd: u32,
        len: u32,
        info: u64,
    }
    let mut a = InfoAttr {
        fd: fd.as_raw_fd() as u32,
        len: info.len() as u32,
        info: info.as_mut_ptr() as u64,
    };
    // SAFETY: BPF_OBJ_GET_INFO_BY_FD with a live buffer of the size given.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_OBJ_GET_INFO_BY_FD,
            &mut a as *mut InfoAttr,
            std::mem::size_of::<InfoAttr>(),
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let rd = |at: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&info[at..at + 8]);
        u64::from_ne_bytes(b)
    };
    Ok(ProgStats {
        run_time_ns: rd(RUN_TIME_NS_AT),
        run_cnt: rd(RUN_CNT_AT),
    })
}

/// Switches `kernel.bpf_stats_enabled` on and off; restores the value it found on drop
/// (unwinding included).
#[derive(Debug)]
pub struct StatsSwitch {
    previous: String,
}

impl StatsSwitch {
    /// Records the current value (nothing changes yet).
    pub fn new() -> std::io::Result<StatsSwitch> {
        let previous = std::fs::read_to_string(SYSCTL)?.trim().to_owned();
        Ok(StatsSwitch { previous })
    }

    /// Statistics on (they cost a clock read or two per program run) or off.
    pub fn set(&self, on: bool) -> std::io::Result<()> {
        std::fs::write(SYSCTL, if on { "1" } else { "0" })
    }
}

impl Drop for StatsSwitch {
    fn drop(&mut self) {
        if let Err(e) = std::fs::write(SYSCTL, &self.previous) {
            eprintln!(
                "l2xdp-bench: cannot restore kernel.bpf_stats_enabled={}: {e}",
                self.previous
            );
        }
    }
}

/// Statistics on for as long as this lives (`BPF_ENABLE_STATS`, `BPF_STATS_RUN_TIME`). The
/// kernel counts this as one more reference on the statistics switch, beside the sysctl's:
/// another process writing `kernel.bpf_stats_enabled=0` (the machine is shared) cannot switch
/// them off under a measurement, as it can a sysctl setting.
#[derive(Debug)]
pub struct StatsHold(#[allow(dead_code)] OwnedFd);

impl StatsHold {
    /// Switches the statistics on (needs CAP_SYS_ADMIN).
    pub fn new() -> std::io::Result<StatsHold> {
        #[repr(C)]
        struct EnableStatsAttr {
            kind: u32,
        }
        let a = EnableStatsAttr {
            kind: BPF_STATS_RUN_TIME,
        };
        // SAFETY: BPF_ENABLE_STATS reads a u32 from a live attribute of the size given.
        let r = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                BPF_ENABLE_STATS,
                &a as *const EnableStatsAttr,
                std::mem::size_of::<EnableStatsAttr>(),
            )
        };
        if r < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: a new file descriptor the kernel just returned, owned by nobody else.
        Ok(StatsHold(unsafe { OwnedFd::from_raw_fd(r as i32) }))
    }
}
