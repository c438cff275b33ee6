//! Every input a fuzzer ever found failing, kept under `tests/fuzz-regressions/<target>/` and
//! run through the same property as the fuzz target (`l2xdp_wire::selfcheck`).

use std::path::Path;

fn run(target: &str, check: fn(&[u8])) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz-regressions")
        .join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("regression directory") {
        let path = entry.expect("directory entry").path();
        if path.is_file() {
            let data = std::fs::read(&path).expect("regression input");
            eprintln!("{target}: {}", path.display());
            check(&data);
            n += 1;
        }
    }
    n
}

#[test]
fn control_message_regressions() {
    assert!(run("control_message", l2xdp_wire::selfcheck::control_message) > 0);
}

#[test]
fn data_header_regressions() {
    run("data_header", l2xdp_wire::selfcheck::data_header);
}

#[test]
fn ppp_frame_regressions() {
    run("ppp_frame", l2xdp_wire::selfcheck::ppp_frame);
}

#[test]
fn radius_packet_regressions() {
    assert!(run("radius_packet", l2xdp_wire::selfcheck::radius_packet) > 0);
}
