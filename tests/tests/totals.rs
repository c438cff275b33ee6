//! `scripts/totals.sh`, the closing lines of `scripts/test.sh` (and of `make test`, which CI
//! parses): on a captured cargo log and a skip log as `l2xdp_lab::skip` writes it,
//! a recorded skip moves one test from passed to skipped and is listed with its reason; the
//! totals line stays the last line, in its format.

use std::path::{Path, PathBuf};
use std::process::Command;

use l2xdp_lab::skip;

/// Two test binaries and a doc-test run, as `cargo test` prints them: 5 + 3 + 2 passed, 1
/// failed, 1 ignored.
const CARGO_LOG: &str = "\
running 6 tests
test a ... ok
test cpumap_spreads_sessions_of_one_tunnel ... ok
test b ... ignored, needs a NIC
test result: ok. 5 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s

running 4 tests
test c ... FAILED
test result: FAILED. 3 passed; 1 failed; 0 ignored; 0 measured; 2 filtered out; finished in 1.00s

   Doc-tests l2xdp_wire
test result: ok. 2 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.10s
";

struct Temp(PathBuf);

impl Temp {
    fn new(tag: &str, text: Option<&str>) -> Temp {
        let p = std::env::temp_dir().join(format!("l2xdp-totals-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_file(&p);
        if let Some(t) = text {
            std::fs::write(&p, t).expect("write");
        }
        Temp(p)
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn totals(log: &Path, skips: Option<&Path>) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/totals.sh");
    let mut cmd = Command::new("bash");
    cmd.arg(script).arg(log);
    if let Some(s) = skips {
        cmd.arg(s);
    }
    let out = cmd.output().expect("bash runs");
    assert!(
        out.status.success(),
        "totals.sh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8")
}

#[test]
fn recorded_skips_move_from_passed_to_skipped_and_are_listed() {
    let log = Temp::new("log", Some(CARGO_LOG));
    // Written the way the tests write it.
    let skips = Temp::new("skips", None);
    skip::record_to(&skips.0, "cpumap_spreads_sessions_of_one_tunnel", "2 CPUs").expect("rec");
    skip::record_to(&skips.0, "forward_smoke", "live_frames").expect("rec");
    let out = totals(&log.0, Some(&skips.0));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "",
            "skipped: b (ignored)",
            "skipped: cpumap_spreads_sessions_of_one_tunnel (2 CPUs)",
            "skipped: forward_smoke (live_frames)",
            "tests: 8 passed, 1 failed, 3 skipped",
        ],
        "{out}"
    );
}

#[test]
fn without_skips_the_totals_are_libtests() {
    let log = Temp::new("log0", Some(CARGO_LOG));
    let expected = "\nskipped: b (ignored)\ntests: 10 passed, 1 failed, 1 skipped\n";
    // No skip log given, a missing one, an empty one (scripts/test.sh's mktemp file).
    assert_eq!(totals(&log.0, None), expected);
    let missing = Temp::new("missing", None);
    assert_eq!(totals(&log.0, Some(&missing.0)), expected);
    let empty = Temp::new("empty", Some(""));
    assert_eq!(totals(&log.0, Some(&empty.0)), expected);
}
