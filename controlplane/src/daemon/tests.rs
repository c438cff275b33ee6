//! Unit tests of the configuration file, `config reload`'s refusals and the failover store.

use l2xdp_dataplane_api::MemoryDataPlane;
use l2xdp_wire::l2tp::header::Version;

use super::*;
use crate::config_file::ConfigError;
use crate::l2tp::failover::RedbStore;

fn parse(text: &str) -> Result<DaemonConfig, ConfigError> {
    DaemonConfig::parse(Path::new("l2xdpd.toml"), text)
}

#[test]
fn the_documented_example_parses() {
    let c = parse(
        r#"
[daemon]
listen = ["127.0.0.1:1701"]
[dataplane]
mode = "memory"
[l2tp]
host_name = "lns1"
secret = "s3cret"
[ppp]
auth = ["chap"]
[ppp.ipcp]
local_address = "100.64.0.1"
pool = ["100.64.0.0/16"]
dns = ["192.0.2.53"]
"#,
    )
    .expect("valid");
    assert_eq!(c.l2tp.host_name, "lns1");
    assert_eq!(c.daemon.state_dir, PathBuf::from("/var/lib/l2xdp"));
    assert!(store(&c).expect("no store").is_none());
    let pool = c.pool().expect("pool").expect("some");
    assert!(!pool.contains("100.64.0.1".parse().expect("addr")) || pool.capacity() > 0);
}

#[test]
fn the_deploy_example_parses() {
    let c = parse(include_str!("../../../deploy/l2xdp.toml")).expect("deploy/l2xdp.toml");
    assert_eq!(c.dataplane.mode, DataplaneMode::Xdp);
    assert!(c.l2tp.persists());
    assert_eq!(
        c.metrics.as_ref().map(|m| m.listen.port()),
        Some(9725),
        "{c:?}"
    );
    assert_eq!(c.ppp.mru, 1460);
    assert!(c.pool().expect("pool").is_some());
}

#[test]
fn reload_refuses_what_cannot_change_live() {
    let a =
        parse("[daemon]\nlisten = [\"127.0.0.1:1701\"]\n[ppp.ipcp]\npool = [\"10.0.0.0/24\"]\n")
            .expect("valid");
    let mut b = a.clone();
    b.ppp.mru = 1400;
    b.l2tp.hello_interval_secs = 5;
    b.l2tp.limits.max_tunnels = 3;
    assert!(live_refusals(&a, &b).is_empty());
    b.daemon.listen = vec!["127.0.0.1:1702".parse().expect("addr")];
    b.dataplane.mode = DataplaneMode::Xdp;
    b.l2tp.failover = Some(crate::l2tp::FailoverConfig {
        control: true,
        data: true,
        recovery_time_ms: 1,
    });
    b.initiator = Some(InitiatorSection {
        peer: "127.0.0.1:1701".parse().expect("addr"),
        version: 2,
        tunnels: 1,
        sessions: 1,
    });
    let r: Vec<_> = live_refusals(&a, &b).iter().map(|r| r.field).collect();
    assert_eq!(
        r,
        [
            "daemon.listen",
            "dataplane.mode",
            "initiator",
            "l2tp.failover"
        ]
    );
}

#[test]
fn errors_name_line_and_field() {
    let e = parse("[daemon]\nlisten = [\"127.0.0.1:1701\"]\n[l2tp]\nhello_interval_secs = \"x\"\n")
        .expect_err("invalid")
        .to_string();
    assert!(e.starts_with("l2xdpd.toml:4:"), "{e}");
    assert!(e.contains("l2tp.hello_interval_secs"), "{e}");
    let e = parse("[daemon]\nlisen = []\n")
        .expect_err("invalid")
        .to_string();
    assert!(e.starts_with("l2xdpd.toml:2:"), "{e}");
    assert!(e.contains("lisen"), "{e}");
}

#[test]
fn semantic_errors_name_the_field() {
    let e = parse("[daemon]\nlisten = []\n")
        .expect_err("invalid")
        .to_string();
    assert!(e.contains("daemon.listen"), "{e}");
    let e = parse("[l2tp]\nhide_avps = true\n")
        .expect_err("invalid")
        .to_string();
    assert!(e.contains("l2tp.hide_avps"), "{e}");
    let e = parse("[l2tp.failover]\ncontrol = false\ndata = false\nrecovery_time_ms = 1\n")
        .expect_err("invalid")
        .to_string();
    assert!(e.contains("RFC 4951"), "{e}");
}

#[test]
fn initiator_section() {
    let c = parse(
        r#"
[initiator]
peer = "192.0.2.1:1701"
version = 3
tunnels = 2
sessions = 5
[ppp.ipcp]
pool = ["100.64.0.0/24"]
"#,
    )
    .expect("valid");
    let i = c.initiator.expect("initiator");
    assert_eq!(i.version(), Ok(Version::V3));
    assert_eq!((i.tunnels, i.sessions), (2, 5));
    let bad = parse(
        r#"
[initiator]
peer = "192.0.2.1:1701"
version = 4
tunnels = 1
sessions = 1
[ppp.ipcp]
pool = ["100.64.0.0/24"]
"#,
    );
    assert!(
        bad.as_ref()
            .is_err_and(|e| e.to_string().contains("initiator.version")),
        "{bad:?}"
    );
}

#[test]
fn failover_opens_the_state_dir() {
    let dir = std::env::temp_dir().join(format!("l2xdpd-state-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let c = parse(&format!(
        r#"
[daemon]
listen = ["127.0.0.1:1701"]
state_dir = "{}"
[l2tp]
recovery_peers = ["192.0.2.9"]
[l2tp.failover]
control = true
data = true
recovery_time_ms = 5000
[ppp.ipcp]
pool = ["100.64.0.0/16"]
"#,
        dir.display()
    ))
    .expect("valid");
    assert_eq!(c.l2tp.recovery_peers.len(), 1);
    let s = store(&c).expect("opens").expect("a store");
    assert_eq!(s.path(), dir.join(RedbStore::FILE).as_path());
    assert!(dir.is_dir());
    // One process holds the database at a time.
    drop(s);
    let n = node(&c, Box::new(MemoryDataPlane::new())).expect("node");
    assert!(n.has_store());
    let _ = std::fs::remove_dir_all(&dir);
}

/// No entropy, no start: a failing entropy source (injected) stops start-up with
/// `StartError::Entropy`; nothing predictable stands in. The OS source starts it.
#[test]
fn start_up_fails_without_entropy() {
    let c = parse("[ppp.ipcp]\npool = [\"100.64.0.0/24\"]\n").expect("valid");
    let e = node_with_entropy(&c, Box::new(MemoryDataPlane::new()), |_| {
        Err("injected: getrandom returned ENOSYS".into())
    })
    .err()
    .expect("start-up refused");
    assert!(matches!(e, StartError::Entropy(_)), "{e:?}");
    assert!(e.to_string().contains("injected: getrandom"), "{e}");
    // A source that claims success but writes nothing is refused too.
    let z = node_with_entropy(&c, Box::new(MemoryDataPlane::new()), |_| Ok(()))
        .err()
        .expect("start-up refused");
    assert!(matches!(z, StartError::Entropy(_)), "{z:?}");
    assert!(node(&c, Box::new(MemoryDataPlane::new())).is_ok());
}

/// A fast-path entry as a previous l2xdpd (or `l2xdp-dataplane static`) left it.
fn leftover(
    our: l2xdp_wire::datapath::SessionKey,
    binding: l2xdp_dataplane_api::Binding,
) -> l2xdp_dataplane_api::SessionEntry {
    use l2xdp_wire::datapath::{PppTx, Session, SessionKey};
    use l2xdp_wire::l2tp::header::{Cookie, Transport};
    use l2xdp_wire::net::ethernet::{MacAddr, Vlans};
    let peer = match our {
        SessionKey::V2 { .. } => SessionKey::V2 {
            tunnel_id: 2,
            session_id: 7,
        },
        SessionKey::V3 { .. } => SessionKey::V3 { session_id: 77 },
    };
    l2xdp_dataplane_api::SessionEntry {
        session: Session {
            transport: Transport::Udp,
            local_addr: "192.0.2.1".parse().expect("addr"),
            peer_addr: "192.0.2.2".parse().expect("addr"),
            local_port: 1701,
            peer_port: 1701,
            local_mac: MacAddr([0; 6]),
            next_hop_mac: MacAddr([0; 6]),
            vlans: Vlans::NONE,
            our_ids: our,
            peer_ids: peer,
            cookie_rx: Cookie::NONE,
            cookie_tx: Cookie::NONE,
            l2ss: matches!(our, SessionKey::V3 { .. }),
            sequencing: false,
            ppp: PppTx::default(),
            ttl: 64,
            dscp: 0,
            udp_checksum_v4: false,
        },
        binding,
    }
}

/// Issue 16: started without failover state, l2xdpd owns no session from before, so the
/// entries a previous l2xdpd left in the fast path are removed at start-up — every L2TPv2
/// session and the L2TPv3 sessions on its own `[[pseudowire]]` interfaces — while an L2TPv3
/// entry on another interface (a static pseudowire) stays.
#[test]
fn start_up_without_failover_state_removes_the_previous_sessions() {
    use l2xdp_dataplane_api::{Binding, DataPlane};
    use l2xdp_wire::datapath::SessionKey;
    let c = parse(
        "[ppp.ipcp]\npool = [\"100.64.0.0/24\"]\n\
         [[pseudowire]]\nremote_end_id = \"pw0\"\ninterface = \"lo\"\n",
    )
    .expect("valid");
    let lo: u32 = std::fs::read_to_string("/sys/class/net/lo/ifindex")
        .expect("lo")
        .trim()
        .parse()
        .expect("ifindex");
    let mut dp = MemoryDataPlane::new();
    let v2 = SessionKey::V2 {
        tunnel_id: 1,
        session_id: 10,
    };
    let ours_v3 = SessionKey::V3 { session_id: 1000 };
    let static_v3 = SessionKey::V3 { session_id: 2000 };
    for (k, b) in [
        (
            v2,
            Binding::Subscriber {
                ipv4: Some("100.64.0.9".parse().expect("addr")),
                ipv6: vec![],
            },
        ),
        (ours_v3, Binding::AttachmentCircuit { ifindex: lo }),
        (static_v3, Binding::AttachmentCircuit { ifindex: 999_999 }),
    ] {
        dp.install(&leftover(k, b)).expect("install");
    }
    let n = node(&c, Box::new(dp)).expect("node");
    assert!(!n.has_store());
    let left: Vec<SessionKey> = n
        .dataplane()
        .sessions()
        .expect("sessions")
        .iter()
        .map(|e| e.key())
        .collect();
    assert_eq!(left, vec![static_v3], "only the static pseudowire stays");
}
