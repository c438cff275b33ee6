//! `l2xdp-decode` as operators run it: exit status 0 when every L2TP packet is valid, 1 when
//! any is invalid, 2 when the capture cannot be read; `--json` prints one JSON object a line.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use l2xdp_wire::l2tp::header::Version;
use l2xdp_wire::l2tp::message::examples::{examples, TEST_SECRET};
use l2xdp_wire::net::ethernet::MacAddr;
use l2xdp_wire::net::frame::{udp_frame, Endpoints};
use l2xdp_wire::pcap::{linktype, Writer};

fn tmp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("l2xdp-cli-{name}-{}", std::process::id()))
}

fn write_examples(path: &Path) -> usize {
    let ends = Endpoints {
        src_mac: MacAddr([2, 0, 0, 0, 0, 1]),
        dst_mac: MacAddr([2, 0, 0, 0, 0, 2]),
        src: "192.0.2.1".parse().expect("addr"),
        dst: "192.0.2.2".parse().expect("addr"),
    };
    let mut w = Writer::new(
        std::fs::File::create(path).expect("create"),
        linktype::ETHERNET,
    )
    .expect("header");
    let mut n = 0;
    for v in [Version::V2, Version::V3] {
        for m in examples(v) {
            let b = m.to_bytes(Some(TEST_SECRET)).expect("emit");
            w.write(n as u64, &udp_frame(&ends, 1701, 1701, &b).expect("frame"))
                .expect("write");
            n += 1;
        }
    }
    // Something that is not L2TP: UDP to another port, skipped by the decoder.
    w.write(n as u64, &udp_frame(&ends, 53, 53, b"dns?").expect("frame"))
        .expect("write");
    w.finish().expect("flush");
    n
}

fn decode(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_l2xdp-decode"))
        .args(args)
        .output()
        .expect("run l2xdp-decode")
}

#[test]
fn exit_status_and_json() {
    let path = tmp("examples.pcap");
    let n = write_examples(&path);
    let p = path.to_str().expect("utf-8 path");

    // With the secret every example is valid.
    let out = decode(&[p, "--secret", "l2xdp-test-secret", "--json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert_eq!(
        lines.len(),
        n,
        "one line per L2TP packet, the DNS packet skipped"
    );
    assert!(lines.iter().all(|l| l["valid"] == true));
    assert!(lines
        .iter()
        .any(|l| l["l2tp"]["message_type"] == "Failover-Session-Query"));

    // Without it, the hidden mandatory Assigned Cookie cannot be read: invalid, exit 1, and the
    // text says which result and error code a receiver would answer with.
    let out = decode(&[p, "--invalid-only"]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("INVALID result=2 error=8"), "{text}");
    assert!(text.contains(&format!("{} records", n + 1)), "{text}");

    // Unreadable captures: exit 2 with the reason on stderr.
    let bad = tmp("garbage.pcap");
    std::fs::write(&bad, b"not a capture").expect("write");
    let out = decode(&[bad.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a pcap"));
    let _ = std::fs::remove_file(&bad);

    // The same capture as pcapng, written by Wireshark's editcap when it is installed.
    let ng = tmp("examples.pcapng");
    if let Ok(s) = Command::new("editcap")
        .args(["-F", "pcapng", p, ng.to_str().expect("utf-8")])
        .status()
    {
        assert!(s.success(), "editcap failed");
        let a = decode(&[p, "--secret", "l2xdp-test-secret"]);
        let b = decode(&[ng.to_str().expect("utf-8"), "--secret", "l2xdp-test-secret"]);
        assert_eq!(b.status.code(), Some(0));
        assert_eq!(a.stdout, b.stdout, "pcap and pcapng decode alike");
        let _ = std::fs::remove_file(&ng);
    }
    let _ = std::fs::remove_file(&path);
}
