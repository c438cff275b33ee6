//! Tests that cannot run, said where it counts: every test crate of the workspace decides here
//! whether a test that needs root, a kernel feature, a machine resource or a workspace binary
//! runs, fails or is skipped — and a skip is recorded, never counted as a pass in silence.
//!
//! - [`REQUIRE_ENV`] (`L2XDP_REQUIRE_ROOT=1`, set by `scripts/test.sh`, so by `make test`):
//!   what `make test` provides — root, the workspace's binaries built next to the tests — is
//!   required; a test without it **fails** ([`require_root`], [`require_binary`]).
//! - Without it (a plain `cargo test` as a user), such a test is skipped and recorded.
//! - A kernel feature the probe (`l2xdp_dataplane::probe`) reports absent ([`require_feature`],
//!   [`skip_for_feature`]) or a machine resource that is not there ([`skip_for_resource`], e.g.
//!   "2 CPUs") is a skip in both cases: the test cannot run on this machine.
//! - Recording a skip: `SKIPPED <test>: <reason>` on stderr, and one line `<test>\t<reason>`
//!   appended to the file named by [`SKIP_LOG_ENV`] when set (one `write` of an `O_APPEND`
//!   file per line: parallel tests and test processes do not interleave). `scripts/test.sh`
//!   turns those lines into the skipped count of its closing totals line and lists each one
//!   (`skipped: <test> (<reason>)`); the reason names what was missing.
//!
//! A test that records a skip returns at once (one record per test: the totals subtract one
//! pass per line).

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use l2xdp_dataplane::probe::{self, Feature};

/// `=1`: a root-only test without root, or a test without the workspace binary it drives,
/// fails instead of being skipped (`make test`).
pub const REQUIRE_ENV: &str = "L2XDP_REQUIRE_ROOT";

/// The file a skip is appended to, one `<test>\t<reason>` line each (`scripts/test.sh`).
pub const SKIP_LOG_ENV: &str = "L2XDP_SKIP_LOG";

/// What to do with a test whose requirement is met or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The requirement is met.
    Run,
    /// Not met, and not required: record a skip and return.
    Skip,
    /// Not met, and required ([`REQUIRE_ENV`]): the test fails.
    Fail,
}

/// The decision for a requirement that is `met` or not, when [`REQUIRE_ENV`] is `required`.
pub fn decide(met: bool, required: bool) -> Decision {
    match (met, required) {
        (true, _) => Decision::Run,
        (false, false) => Decision::Skip,
        (false, true) => Decision::Fail,
    }
}

/// Whether [`REQUIRE_ENV`] is `1` in this process.
pub fn required() -> bool {
    std::env::var(REQUIRE_ENV).is_ok_and(|v| v.trim() == "1")
}

/// The [`SKIP_LOG_ENV`] file of this process, if set.
pub fn skip_log() -> Option<PathBuf> {
    std::env::var_os(SKIP_LOG_ENV)
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
}

/// For a test that needs root (namespaces, XDP, bpffs, raw sockets): `true` to run it. Without
/// root: a panic under [`REQUIRE_ENV`]`=1`, else a recorded skip and `false` (the test returns).
pub fn require_root(test: &str) -> bool {
    root_gate(test, crate::is_root(), required(), skip_log().as_deref())
}

/// [`require_root`] with its inputs given: whether we are `root`, whether [`REQUIRE_ENV`] is
/// set (`required`), the skip `log`.
pub fn root_gate(test: &str, root: bool, required: bool, log: Option<&Path>) -> bool {
    match decide(root, required) {
        Decision::Run => true,
        Decision::Skip => {
            record_in(log, test, "root");
            false
        }
        Decision::Fail => panic!(
            "{test} needs root (network namespaces, XDP, bpffs, raw sockets) and \
             {REQUIRE_ENV}=1 (make test) makes that a failure, not a skip: run the tests as root"
        ),
    }
}

/// For a test that drives the workspace binary `path` (e.g. `l2xdpd`, found next to the test
/// executable): `true` when it exists. Missing: a panic under [`REQUIRE_ENV`]`=1`, else a
/// recorded skip naming it and `false`.
pub fn require_binary(test: &str, path: &Path) -> bool {
    binary_gate(test, path, required(), skip_log().as_deref())
}

/// [`require_binary`] with [`REQUIRE_ENV`] (`required`) and the skip `log` given.
pub fn binary_gate(test: &str, path: &Path, required: bool, log: Option<&Path>) -> bool {
    let name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into(),
    );
    match decide(path.exists(), required) {
        Decision::Run => true,
        Decision::Skip => {
            record_in(log, test, &format!("{name} binary"));
            false
        }
        Decision::Fail => panic!(
            "{test} needs the {name} binary (not found: {}) and {REQUIRE_ENV}=1 (make test) \
             makes that a failure: cargo build --workspace --bins",
            path.display()
        ),
    }
}

/// For a test that needs the kernel feature `feature`: `true` when the probe reports it
/// present, else a recorded skip naming it ([`skip_for_feature`]) and `false`.
pub fn require_feature(test: &str, feature: Feature) -> bool {
    if probe::features().has(feature) {
        return true;
    }
    skip_for_feature(test, feature.name());
    false
}

/// Records that `test` does not run because the kernel lacks `feature` (as the probe reports
/// it: [`Feature::name`]). The caller returns.
pub fn skip_for_feature(test: &str, feature: &str) {
    record(test, feature);
}

/// Records that `test` does not run because this machine lacks `resource` (e.g. "2 CPUs").
/// Not a root matter: a skip under [`REQUIRE_ENV`]`=1` too. The caller returns.
pub fn skip_for_resource(test: &str, resource: &str) {
    record(test, resource);
}

/// The line recorded for a skip: `<test>\t<reason>\n` (tabs and line breaks inside either
/// become spaces, so one skip is one line of two fields).
pub fn skip_line(test: &str, reason: &str) -> String {
    let clean = |s: &str| s.replace(['\t', '\n', '\r'], " ");
    format!("{}\t{}\n", clean(test), clean(reason))
}

/// Appends the skip line of `test` to `log` in one write.
pub fn record_to(log: &Path, test: &str, reason: &str) -> std::io::Result<()> {
    let line = skip_line(test, reason);
    let mut f = OpenOptions::new().create(true).append(true).open(log)?;
    let n = f.write(line.as_bytes())?;
    if n != line.len() {
        return Err(std::io::Error::other(format!(
            "short write ({n} of {} bytes)",
            line.len()
        )));
    }
    Ok(())
}

/// Records a skip: stderr, and the [`SKIP_LOG_ENV`] file when set.
pub fn record(test: &str, reason: &str) {
    record_in(skip_log().as_deref(), test, reason);
}

/// Records a skip on stderr and in `log`. A skip that cannot be recorded panics (it would
/// otherwise count as a pass).
pub fn record_in(log: Option<&Path>, test: &str, reason: &str) {
    eprintln!("SKIPPED {test}: {reason}");
    if let Some(log) = log {
        if let Err(e) = record_to(log, test, reason) {
            panic!(
                "{test}: cannot record the skip ({reason}) in {}: {e}",
                log.display()
            );
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A fresh file name in the temporary directory.
    fn temp(tag: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("l2xdp-skip-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_file(&p);
        p
    }

    #[test]
    fn a_missing_requirement_fails_when_required_and_skips_otherwise() {
        assert_eq!(decide(true, false), Decision::Run);
        assert_eq!(decide(true, true), Decision::Run);
        assert_eq!(decide(false, false), Decision::Skip);
        assert_eq!(decide(false, true), Decision::Fail);
    }

    #[test]
    fn without_root_a_test_fails_under_require_root_and_is_recorded_otherwise() {
        let log = temp("root");
        // Root: runs, nothing recorded, required or not.
        assert!(root_gate("t_root", true, true, Some(&log)));
        assert!(root_gate("t_root", true, false, Some(&log)));
        assert!(!log.exists());
        // Not root, L2XDP_REQUIRE_ROOT=1: the test panics, naming itself and the switch.
        let r = std::panic::catch_unwind(|| root_gate("t_user", false, true, Some(&log)));
        let msg = *r.unwrap_err().downcast::<String>().unwrap();
        assert!(msg.starts_with("t_user needs root"), "{msg}");
        assert!(msg.contains("L2XDP_REQUIRE_ROOT=1"), "{msg}");
        assert!(!log.exists(), "a failure is not a skip");
        // Not root, not required: a recorded skip, and the test returns.
        assert!(!root_gate("t_user", false, false, Some(&log)));
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "t_user\troot\n");
        let _ = std::fs::remove_file(&log);
    }

    #[test]
    fn a_missing_binary_fails_under_require_root_and_is_recorded_otherwise() {
        let log = temp("bin");
        let missing = Path::new("/nonexistent/l2xdp/l2xdpd");
        let r = std::panic::catch_unwind(|| binary_gate("smoke", missing, true, Some(&log)));
        let msg = *r.unwrap_err().downcast::<String>().unwrap();
        assert!(msg.contains("l2xdpd binary"), "{msg}");
        assert!(!binary_gate("smoke", missing, false, Some(&log)));
        assert_eq!(
            std::fs::read_to_string(&log).unwrap(),
            "smoke\tl2xdpd binary\n"
        );
        let here = std::env::current_exe().unwrap();
        assert!(binary_gate("smoke", &here, true, Some(&log)));
        let _ = std::fs::remove_file(&log);
    }

    #[test]
    fn a_skip_is_one_line_of_two_tab_separated_fields() {
        assert_eq!(
            skip_line("cpumap_spreads_sessions_of_one_tunnel", "2 CPUs"),
            "cpumap_spreads_sessions_of_one_tunnel\t2 CPUs\n"
        );
        assert_eq!(skip_line("a\tb", "x\ny"), "a b\tx y\n");
    }

    #[test]
    fn skips_are_appended_whole_from_parallel_threads() {
        let log = temp("parallel");
        std::thread::scope(|s| {
            for t in 0..8 {
                let log = &log;
                s.spawn(move || {
                    for i in 0..50 {
                        record_to(log, &format!("test_{t}_{i}"), "live_frames").unwrap();
                    }
                });
            }
        });
        let text = std::fs::read_to_string(&log).unwrap();
        let _ = std::fs::remove_file(&log);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 8 * 50);
        for l in lines {
            let (test, reason) = l.split_once('\t').unwrap();
            assert!(test.starts_with("test_"), "{l:?}");
            assert_eq!(reason, "live_frames");
        }
    }
}
