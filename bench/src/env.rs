//! The environment a result was measured in, recorded with every result: this machine is
//! shared and noisy, so a figure without its kernel, CPU and date means little.

use serde::Serialize;

/// Where and when a scenario ran.
#[derive(Debug, Clone, Serialize)]
pub struct Environment {
    /// `uname -r`.
    pub kernel: String,
    /// The CPU model (from /proc/cpuinfo).
    pub cpu: String,
    /// Online CPUs.
    pub cores: usize,
    /// The fast-path mode measured (`xdp`, `afxdp`, or what else was measured).
    pub mode: String,
    /// Seconds since the Unix epoch when the report was made.
    pub unix_time: u64,
}

impl Environment {
    /// Reads the environment now.
    pub fn read(mode: &str) -> Self {
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split(':').nth(1))
                    .map(|m| m.trim().to_string())
            })
            .unwrap_or_default();
        Environment {
            kernel,
            cpu,
            cores: std::thread::available_parallelism().map_or(1, usize::from),
            mode: mode.to_string(),
            unix_time: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        }
    }
}
