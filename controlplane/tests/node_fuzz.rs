//! The state-machine fuzzer's interpreter (`controlplane/fuzz/src/lib.rs`) in the normal test
//! suite: random inputs (a fixed number of cases), the kept cargo-fuzz corpus, and hand-made
//! inputs that reach deep states. Each input drives a `Node` in both roles (memory fast path,
//! synthetic clock) and checks after every operation that tunnels, sessions, queues and the
//! node's tables stay bounded, and at the end that nothing is left once the peers fall silent.

#[path = "../fuzz/src/lib.rs"]
#[allow(dead_code)]
mod harness;

use harness::{run, Checks};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    /// Random operation sequences: no panic, every bound holds.
    #[test]
    fn random_inputs_keep_the_node_bounded(data in proptest::collection::vec(any::<u8>(), 0..1024)) {
        run(&data, Checks { flood: false });
    }
}

/// Every input of the kept corpus (`controlplane/fuzz/corpus/node`) still passes: the corpus
/// is the fuzzer's memory of the states it reached, and a regression test for whatever it
/// found.
#[test]
fn kept_corpus_passes() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/node");
    let mut n = 0;
    let mut deep = 0;
    for e in std::fs::read_dir(&dir).expect("the kept corpus") {
        let path = e.expect("corpus entry").path();
        let data = std::fs::read(&path).expect("corpus file");
        let s = run(&data, Checks::default());
        n += 1;
        if s.ppp_up > 0 {
            deep += 1;
        }
    }
    assert!(n >= 10, "{n} corpus inputs in {}", dir.display());
    assert!(deep > 0, "no corpus input brings PPP up");
}

#[test]
fn debug_one() {
    let Ok(path) = std::env::var("L2XDP_FUZZ_INPUT") else {
        return;
    };
    let text = std::fs::read_to_string(path).expect("input");
    let data: Vec<u8> = text
        .trim()
        .trim_matches(|c| c == '[' || c == ']')
        .split(',')
        .filter(|x| !x.is_empty())
        .map(|x| x.trim().parse().expect("byte"))
        .collect();
    run(&data, Checks { flood: false });
}
