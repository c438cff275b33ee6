//! The state-machine fuzzer: a `Node` in both roles, driven by sequences of datagrams (raw,
//! structured control messages, PPP frames), timer events, commands and a second node over a
//! lossy wire (see `src/lib.rs`). A panic, or a violated bound on tunnels, sessions, queues or
//! the node's tables, is a crash.
//!
//! `L2XDP_FUZZ_FLOOD_BOUNDS=0` turns off the sender-map and closing-tunnel bounds of issue 15
//! item 2 (to look for other failures while those are known to fail).
#![no_main]

use std::sync::OnceLock;

use l2xdp_controlplane_fuzz::{run, Checks};
use libfuzzer_sys::fuzz_target;

fn checks() -> Checks {
    static C: OnceLock<Checks> = OnceLock::new();
    *C.get_or_init(|| Checks {
        flood: std::env::var("L2XDP_FUZZ_FLOOD_BOUNDS").map_or(true, |v| v != "0"),
    })
}

fuzz_target!(|data: &[u8]| {
    run(data, checks());
});
