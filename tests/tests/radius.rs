//! The RADIUS client against a real FreeRADIUS (Debian's `freeradius`, installed by
//! `scripts/setup.sh` when missing): its own configuration in a scratch directory, loopback
//! ports, started and stopped here.
//!
//! - PAP, CHAP-MD5 and MS-CHAPv2 (the RFC 2759 §9.2 vector: FreeRADIUS answers with the
//!   MS-CHAP2-Success the RFC prints) accepted and rejected, and the Access-Accept's
//!   Framed-IP-Address, Session-Timeout, Idle-Timeout, Framed-MTU and Class read;
//! - failover with one of two servers down (dead, then skipped);
//! - a FreeRADIUS configured as Debian ships it (no Message-Authenticator in its answers) is
//!   not trusted: every answer dropped and counted, the request fails closed (CVE-2024-3596);
//! - a tampering relay in front of FreeRADIUS (wrong authenticator, wrong identifier,
//!   truncated, Message-Authenticator removed): each of FreeRADIUS's real answers, altered, is
//!   dropped and counted, never accepted, and the unaltered one after them is;
//! - accounting Start and Stop recorded in FreeRADIUS's detail file;
//! - end to end, `l2xdpd` with `[radius]` and the LAC emulator's subscribers: PAP and CHAP
//!   accepted (the Framed-IP-Address is the subscriber's address, Session-Timeout ends the
//!   session) and rejected (the LAC sees the authentication fail), MS-CHAP-V2 the same way
//!   (the LAC checks FreeRADIUS's Authenticator Response) and against the users file, and
//!   with the only server down a login fails closed.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use l2xdp_controlplane::aaa::{
    AaaError, AccessOutcome, AccessRequest, Credential, DropCounters, RadiusClient, RadiusConfig,
    ServerConfig, ServerState,
};
use l2xdp_controlplane::random::Random;
use l2xdp_lab::scratch::Scratch;
use l2xdp_tests::freeradius::{FreeRadius, SECRET};
use l2xdp_wire::ppp::chap_md5_response;
use l2xdp_wire::radius::{attr, code, value, Attribute, Packet};
use tokio::net::UdpSocket;

/// The users FreeRADIUS knows: PAP/CHAP "alice"/"wonderland" with reply attributes, and the
/// RFC 2759 §9.2 user "User"/"clientPass" for MS-CHAPv2.
const USERS: &str = r#"alice	Cleartext-Password := "wonderland"
	Framed-IP-Address = 100.64.7.9,
	Session-Timeout = 3600,
	Idle-Timeout = 600,
	Framed-MTU = 1400,
	Class = "plan-gold",
	Reply-Message = "Welcome alice"

User	Cleartext-Password := "clientPass"
	Framed-IP-Address = 100.64.7.10
"#;

fn config(servers: Vec<ServerConfig>) -> RadiusConfig {
    let mut c = RadiusConfig::new(servers);
    c.timeout = Duration::from_millis(500);
    c.tries = 2;
    c.nas_identifier = Some("l2xdp-radius-test".into());
    c.nas_ip = Some(Ipv4Addr::LOCALHOST.into());
    c
}

fn request(user: &str, credential: Credential) -> AccessRequest {
    let mut attributes = AccessRequest::ppp_attributes();
    attributes.push(Attribute::new(
        attr::CALLING_STATION_ID,
        b"lac-7/42".to_vec(),
    ));
    AccessRequest {
        user: user.as_bytes().to_vec(),
        credential,
        attributes,
    }
}

fn pap(user: &str, pw: &str) -> AccessRequest {
    request(user, Credential::Pap(pw.as_bytes().to_vec()))
}

fn chap(user: &str, secret: &str) -> AccessRequest {
    let challenge: Vec<u8> = (0..16).map(|i| i * 7 + 1).collect();
    let response = chap_md5_response(42, secret.as_bytes(), &challenge);
    request(
        user,
        Credential::Chap {
            identifier: 42,
            challenge,
            response,
        },
    )
}

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// RFC 2759 §9.2: user "User", the Authenticator and Peer challenges and the NT-Response for
/// "clientPass" (`wrong`: one bit of the NT-Response flipped).
fn mschapv2(wrong: bool) -> AccessRequest {
    let mut nt: [u8; 24] = hex("82309ECD8D708B5EA08FAA3981CD83544233114A3D85D6DF")
        .try_into()
        .expect("24");
    if wrong {
        nt[0] ^= 1;
    }
    request(
        "User",
        Credential::MsChapV2 {
            identifier: 1,
            challenge: hex("5B5D7C7D7B3F2F3E3C2C602132262628")
                .try_into()
                .expect("16"),
            peer_challenge: hex("21402324255E262A28295F2B3A337C7E")
                .try_into()
                .expect("16"),
            nt_response: nt,
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pap_chap_and_mschapv2_accept_and_reject() {
    let fr = FreeRadius::start("auth", true, USERS);
    let c = RadiusClient::new(
        config(vec![fr.server(0)]),
        Random::from_os().expect("entropy"),
    )
    .await
    .expect("client");
    for (what, req) in [
        ("PAP", pap("alice", "wonderland")),
        ("CHAP", chap("alice", "wonderland")),
    ] {
        let AccessOutcome::Accept(a) = c.authenticate(&req).await.expect(what) else {
            panic!("{what} accepted");
        };
        assert_eq!(a.framed_ip, Some(Ipv4Addr::new(100, 64, 7, 9)), "{what}");
        assert_eq!(a.session_timeout, Some(3600), "{what}");
        assert_eq!(a.idle_timeout, Some(600), "{what}");
        assert_eq!(a.framed_mtu, Some(1400), "{what}");
        assert_eq!(a.class, vec![b"plan-gold".to_vec()], "{what}");
        assert_eq!(a.reply_message.as_deref(), Some("Welcome alice"), "{what}");
    }
    for (what, req) in [
        ("PAP", pap("alice", "wonderlanD")),
        ("CHAP", chap("alice", "looking-glass")),
        ("unknown user", pap("mallory", "wonderland")),
        ("MS-CHAPv2", mschapv2(true)),
    ] {
        assert_eq!(
            c.authenticate(&req).await.expect(what),
            AccessOutcome::Reject {
                reply_message: Some("Access denied".into())
            },
            "{what} rejected"
        );
    }
    let AccessOutcome::Accept(a) = c.authenticate(&mschapv2(false)).await.expect("MS-CHAPv2")
    else {
        panic!("MS-CHAPv2 accepted");
    };
    assert_eq!(a.framed_ip, Some(Ipv4Addr::new(100, 64, 7, 10)));
    // RFC 2548 §2.3.3: the Ident, then the RFC 2759 §9.2 AuthenticatorResponse.
    let success = a.ms_chap2_success.expect("MS-CHAP2-Success");
    assert_eq!(success[0], 1);
    assert_eq!(&success[1..], b"S=407A5589115FD0D6209F510FE9C04566932CDA56");
    assert_eq!(c.dropped(), DropCounters::default());
    let s = &c.servers()[0];
    assert_eq!((s.requests, s.responses, s.timeouts), (7, 7, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_with_one_of_two_servers_down() {
    let up = FreeRadius::start("failover-up", true, USERS);
    let down = FreeRadius::start("failover-down", true, USERS);
    let down_cfg = down.server(0);
    drop(down);
    let c = RadiusClient::new(
        config(vec![down_cfg, up.server(1)]),
        Random::from_os().expect("entropy"),
    )
    .await
    .expect("client");
    for _ in 0..3 {
        assert!(matches!(
            c.authenticate(&pap("alice", "wonderland"))
                .await
                .expect("answered"),
            AccessOutcome::Accept(_)
        ));
    }
    let s = c.servers();
    assert_eq!(s[0].state, ServerState::Dead, "{s:?}");
    assert_eq!(
        (s[0].requests, s[0].responses, s[0].timeouts),
        (1, 0, 1),
        "tried once, then skipped"
    );
    assert_eq!((s[1].requests, s[1].responses), (3, 3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_without_message_authenticator_are_not_trusted() {
    // FreeRADIUS 3.2.1 as configured out of the box: no Message-Authenticator in its answers.
    let fr = FreeRadius::start("no-ma", false, USERS);
    let c = RadiusClient::new(
        config(vec![fr.server(0)]),
        Random::from_os().expect("entropy"),
    )
    .await
    .expect("client");
    assert!(matches!(
        c.authenticate(&pap("alice", "wonderland")).await,
        Err(AaaError::NoServer { tried: 1 })
    ));
    // Each of the two transmissions was answered, and each answer dropped.
    assert_eq!(
        c.dropped().missing_message_authenticator,
        2,
        "{:?}",
        c.dropped()
    );
    assert_eq!(c.outages(), 1);
}

/// A relay between the client and FreeRADIUS that passes requests on and sends back, for
/// each of FreeRADIUS's answers, the altered copies `tamper` makes and then (`genuine`) the
/// answer itself.
async fn relay(to: SocketAddr, tamper: fn(&[u8]) -> Vec<Vec<u8>>, genuine: bool) -> SocketAddr {
    let front = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let back = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let addr = front.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut buf = [0u8; 4096];
        let mut rbuf = [0u8; 4096];
        loop {
            let Ok((n, client)) = front.recv_from(&mut buf).await else {
                return;
            };
            back.send_to(&buf[..n], to).await.expect("forward");
            let Ok(Ok((m, _))) =
                tokio::time::timeout(Duration::from_secs(5), back.recv_from(&mut rbuf)).await
            else {
                continue;
            };
            for t in tamper(&rbuf[..m]) {
                front.send_to(&t, client).await.expect("send");
            }
            if genuine {
                front.send_to(&rbuf[..m], client).await.expect("send");
            }
        }
    });
    addr
}

fn tampered(real: &[u8]) -> Vec<Vec<u8>> {
    let mut wrong_auth = real.to_vec();
    wrong_auth[10] ^= 0x40;
    let mut wrong_id = real.to_vec();
    wrong_id[1] = wrong_id[1].wrapping_add(1);
    let truncated = real[..real.len() - 3].to_vec();
    // Message-Authenticator removed, Length fixed (the Response Authenticator no longer
    // matches: what an attacker without the secret can do).
    let mut p = Packet::parse(real).expect("FreeRADIUS's answer parses");
    p.attributes
        .retain(|a| a.typ != attr::MESSAGE_AUTHENTICATOR);
    let stripped = p.to_vec().expect("emit");
    // A Reject turned into an Accept, or an Accept into a Reject (code changed).
    let mut flipped = real.to_vec();
    flipped[0] = if real[0] == code::ACCESS_ACCEPT {
        code::ACCESS_REJECT
    } else {
        code::ACCESS_ACCEPT
    };
    vec![wrong_auth, wrong_id, truncated, stripped, flipped]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_answers_are_dropped_and_counted() {
    let fr = FreeRadius::start("tamper", true, USERS);
    let mut s = fr.server(0);
    s.auth = relay(fr.auth, tampered, true).await;
    let c = RadiusClient::new(config(vec![s]), Random::from_os().expect("entropy"))
        .await
        .expect("client");
    // A wrong password: every forged Accept is dropped, FreeRADIUS's Reject stands.
    assert_eq!(
        c.authenticate(&pap("alice", "wrong"))
            .await
            .expect("answer"),
        AccessOutcome::Reject {
            reply_message: Some("Access denied".into())
        }
    );
    assert_eq!(
        c.dropped(),
        DropCounters {
            unknown_identifier: 1,
            malformed: 1,
            bad_authenticator: 3,
            ..DropCounters::default()
        }
    );
    // Tampered answers only: the request fails closed.
    let mut s = fr.server(0);
    s.auth = relay(fr.auth, tampered, false).await;
    let c = RadiusClient::new(config(vec![s]), Random::from_os().expect("entropy"))
        .await
        .expect("client");
    assert!(matches!(
        c.authenticate(&pap("alice", "wonderland")).await,
        Err(AaaError::NoServer { .. })
    ));
    assert_eq!(
        c.dropped().total(),
        10,
        "5 forgeries for each of 2 transmissions"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounting_start_and_stop_reach_the_detail_file() {
    let fr = FreeRadius::start("acct", true, USERS);
    let c = RadiusClient::new(
        config(vec![fr.server(0)]),
        Random::from_os().expect("entropy"),
    )
    .await
    .expect("client");
    let common = |status| {
        vec![
            Attribute::integer(attr::ACCT_STATUS_TYPE, status),
            Attribute::new(attr::ACCT_SESSION_ID, b"l2xdp-0001".to_vec()),
            Attribute::new(attr::USER_NAME, b"alice".to_vec()),
            Attribute::new(attr::CLASS, b"plan-gold".to_vec()),
        ]
    };
    c.account(&common(value::ACCT_START)).await.expect("start");
    let mut stop = common(value::ACCT_STOP);
    stop.push(Attribute::integer(attr::ACCT_INPUT_OCTETS, 123_456));
    stop.push(Attribute::integer(attr::ACCT_OUTPUT_OCTETS, 654_321));
    stop.push(Attribute::integer(attr::ACCT_SESSION_TIME, 77));
    c.account(&stop).await.expect("stop");
    let detail = fr.detail();
    assert_eq!(
        detail.matches("Acct-Status-Type = Start").count(),
        1,
        "{detail}"
    );
    assert_eq!(
        detail.matches("Acct-Status-Type = Stop").count(),
        1,
        "{detail}"
    );
    assert!(detail.contains("Acct-Input-Octets = 123456"), "{detail}");
    assert!(detail.contains("Acct-Output-Octets = 654321"), "{detail}");
    assert!(
        detail.contains("Acct-Session-Id = \"l2xdp-0001\""),
        "{detail}"
    );
    assert!(
        detail.contains("NAS-Identifier = \"l2xdp-radius-test\""),
        "{detail}"
    );
}

// ---------------------------------------------------------------------------------------------
// l2xdpd with [radius], the LAC emulator's subscribers (user<n>/pw<n>).

use l2xdp_controlplane::l2tp::Peer;
use l2xdp_controlplane::node::{Node, NodeEvent};
use l2xdp_controlplane::ppp::{AuthMethod, PppConfig};
use l2xdp_dataplane::MemoryDataPlane;
use l2xdp_lab::cp::l2xdpd::{self, free_udp_port, L2xdpd, Placement};
use l2xdp_tests::cp::{is_down, lac_config, open_user_session, spawn_lac, wait_for};
use l2xdp_wire::l2tp::header::Version;

/// Bounds a hung run only.
const LIMIT: Duration = Duration::from_secs(60);

/// user0 is accepted with a fixed address and a 3 s Session-Timeout; user1's password at
/// FreeRADIUS is not the LAC's (rejected); user2 is accepted without an address (the pool),
/// with Interim-Updates every second and a 2 s Idle-Timeout (the in-memory fast path counts
/// no packet: it goes idle).
const LAC_USERS: &str = r#"user0	Cleartext-Password := "pw0"
	Framed-IP-Address = 100.64.9.50,
	Session-Timeout = 3,
	Class = "plan-x"

user1	Cleartext-Password := "not-pw1"

user2	Cleartext-Password := "pw2"
	Acct-Interim-Interval = 1,
	Idle-Timeout = 2
"#;

/// l2xdpd asking for `auth`, with `[radius]` on `servers`, or (none) the users file of 3
/// users (user<n>/pw<n>).
fn start_l2xdpd(dir: &Path, port: u16, auth: &str, servers: &[(SocketAddr, SocketAddr)]) -> L2xdpd {
    start_l2xdpd_with(dir, port, auth, servers, "")
}

/// [`start_l2xdpd`] with `extra` configuration text (other sections) added.
fn start_l2xdpd_with(
    dir: &Path,
    port: u16,
    auth: &str,
    servers: &[(SocketAddr, SocketAddr)],
    extra: &str,
) -> L2xdpd {
    let mut base = format!(
        r#"[ppp]
auth = ["{auth}"]

[ppp.ipcp]
local_address = "100.64.0.1"
pool = ["100.64.0.0/24"]
{extra}
"#
    );
    if !servers.is_empty() {
        base.push_str(
            "\n[radius]\ntimeout_ms = 300\ntries = 2\nnas_identifier = \"l2xdpd-under-test\"\nmin_interim_secs = 1\n",
        );
    }
    for (auth, acct) in servers {
        base.push_str(&format!(
            "\n[[radius.server]]\naddress = \"{}\"\nauth_port = {}\nacct_port = {}\nsecret = \"{SECRET}\"\n",
            auth.ip(),
            auth.port(),
            acct.port()
        ));
    }
    let files = l2xdpd::write_config(
        dir,
        Path::new("radius.toml"),
        &base,
        Placement::memory(SocketAddr::from(([127, 0, 0, 1], port))),
        if servers.is_empty() { 3 } else { 0 },
    )
    .expect("config");
    L2xdpd::start(
        None,
        l2xdp_lab::workspace_binary("l2xdpd").as_path(),
        &files,
        Some(&dir.join("l2xdpd.log")),
    )
}

/// A LAC with one tunnel up to `port`.
async fn lac_tunnel(
    port: u16,
) -> (
    l2xdp_controlplane::driver::Handle,
    tokio::sync::mpsc::UnboundedReceiver<NodeEvent>,
    l2xdp_controlplane::l2tp::TunnelId,
) {
    // The subscribers agree to MS-CHAP-V2 as well as CHAP and PAP.
    let mut cfg = lac_config(false);
    cfg.ppp = std::sync::Arc::new(PppConfig {
        auth: vec![AuthMethod::MsChapV2, AuthMethod::Chap, AuthMethod::Pap],
        ..PppConfig::default()
    });
    let node = Node::new(cfg, Box::new(MemoryDataPlane::new()));
    let (handle, mut events, _task) = spawn_lac(node);
    let peer = Peer::udp(SocketAddr::from(([127, 0, 0, 1], port)));
    let t = handle
        .open_tunnel(peer, Version::V2)
        .await
        .expect("running")
        .expect("open tunnel");
    wait_for(
        LIMIT,
        &mut events,
        1,
        "tunnel up",
        |e| matches!(e, NodeEvent::TunnelUp { .. }),
        is_down,
    )
    .await;
    (handle, events, t)
}

async fn through_l2xdpd(auth: &str) {
    let fr = FreeRadius::start(&format!("l2xdpd-{auth}"), true, LAC_USERS);
    let dir = Scratch::plain(&format!("radius-l2xdpd-{auth}"));
    let port = free_udp_port().expect("port");
    let _daemon = start_l2xdpd(&dir.dir, port, auth, &[(fr.auth, fr.acct)]);
    let (handle, mut events, t) = lac_tunnel(port).await;

    // user0: accepted, the address from Framed-IP-Address.
    open_user_session(&handle, t, 0).await;
    let up = wait_for(
        LIMIT,
        &mut events,
        1,
        "user0 up",
        |e| matches!(e, NodeEvent::PppUp { .. }),
        is_down,
    )
    .await;
    let NodeEvent::PppUp {
        local_ipv4, user, ..
    } = &up[0]
    else {
        unreachable!()
    };
    assert_eq!(
        *local_ipv4,
        Some(Ipv4Addr::new(100, 64, 9, 50)),
        "{auth}: Framed-IP-Address"
    );
    assert_eq!(user.as_deref(), Some("user0"));
    // user2: accepted, an address from the pool.
    open_user_session(&handle, t, 2).await;
    let up = wait_for(
        LIMIT,
        &mut events,
        1,
        "user2 up",
        |e| matches!(e, NodeEvent::PppUp { .. }),
        |e| matches!(e, NodeEvent::AuthFailed { .. }),
    )
    .await;
    let NodeEvent::PppUp { local_ipv4, .. } = &up[0] else {
        unreachable!()
    };
    let ip = local_ipv4.expect("an address");
    assert!(
        ip.octets()[..3] == [100, 64, 0],
        "{auth}: {ip} from the pool"
    );
    // user0's Session-Timeout (3 s) ends its session, from the LNS.
    wait_for(
        LIMIT,
        &mut events,
        2,
        "user0's session timed out, user2's idle",
        |e| matches!(e, NodeEvent::SessionDown { .. }),
        |e| matches!(e, NodeEvent::AuthFailed { .. }),
    )
    .await;
    // Their accounting: one Start and one Stop each (Session-Timeout, Idle-Timeout),
    // Interim-Updates for user2, the Class echoed, at FreeRADIUS (bounded wait: the Stops are
    // sent as the sessions go).
    let limit = Instant::now() + LIMIT;
    while fr.detail().matches("Acct-Status-Type = Stop").count() < 2 {
        assert!(
            Instant::now() < limit,
            "no Stops at FreeRADIUS:\n{}",
            fr.detail()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let detail = fr.detail();
    let count = |s: &str| detail.matches(s).count();
    assert_eq!(
        count("Acct-Status-Type = Start"),
        2,
        "user0, user2:\n{detail}"
    );
    assert_eq!(
        count("Acct-Status-Type = Stop"),
        2,
        "user0, user2:\n{detail}"
    );
    assert!(count("Acct-Status-Type = Interim-Update") >= 1, "{detail}");
    assert_eq!(
        count("Acct-Terminate-Cause = Session-Timeout"),
        1,
        "{detail}"
    );
    assert_eq!(count("Acct-Terminate-Cause = Idle-Timeout"), 1, "{detail}");
    assert_eq!(
        count("User-Name = \"user0\""),
        2,
        "Start and Stop:\n{detail}"
    );
    assert_eq!(
        count("Class = 0x706c616e2d78"),
        2,
        "Class echoed:\n{detail}"
    );
    assert!(
        detail.contains("Framed-IP-Address = 100.64.9.50"),
        "{detail}"
    );
    assert!(
        detail.contains("NAS-Identifier = \"l2xdpd-under-test\""),
        "{detail}"
    );
    // One Acct-Session-Id per session, in all its records.
    let ids: std::collections::HashSet<&str> = detail
        .lines()
        .filter(|l| l.contains("Acct-Session-Id"))
        .collect();
    assert_eq!(ids.len(), 2, "user0's and user2's:\n{detail}");
    // user1: rejected by FreeRADIUS; the LAC's PPP sees the authentication fail.
    open_user_session(&handle, t, 1).await;
    let failed = wait_for(
        LIMIT,
        &mut events,
        1,
        "user1 rejected",
        |e| matches!(e, NodeEvent::AuthFailed { .. }),
        |e| matches!(e, NodeEvent::PppUp { .. }),
    )
    .await;
    assert!(
        matches!(&failed[0], NodeEvent::AuthFailed { user: Some(u), .. } if u == "user1"),
        "{failed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn l2xdpd_pap_through_freeradius() {
    through_l2xdpd("pap").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn l2xdpd_chap_through_freeradius() {
    through_l2xdpd("chap").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn l2xdpd_mschapv2_through_freeradius() {
    through_l2xdpd("mschapv2").await;
}

/// MS-CHAP-V2 without RADIUS: the users file (user<n>/pw<n>); user0 up, a wrong password
/// (the LAC's user1 with user0's password is not possible here: a user the file lacks) fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn l2xdpd_mschapv2_against_the_users_file() {
    let dir = Scratch::plain("radius-l2xdpd-mschap-local");
    let port = free_udp_port().expect("port");
    let _daemon = start_l2xdpd(&dir.dir, port, "mschapv2", &[]);
    let (handle, mut events, t) = lac_tunnel(port).await;
    open_user_session(&handle, t, 0).await;
    let up = wait_for(
        LIMIT,
        &mut events,
        1,
        "user0 up",
        |e| matches!(e, NodeEvent::PppUp { .. }),
        is_down,
    )
    .await;
    let NodeEvent::PppUp { user, .. } = &up[0] else {
        unreachable!()
    };
    assert_eq!(user.as_deref(), Some("user0"));
    // user5 is not in the file (3 users): refused.
    open_user_session(&handle, t, 5).await;
    wait_for(
        LIMIT,
        &mut events,
        1,
        "user5 refused",
        |e| matches!(e, NodeEvent::AuthFailed { .. }),
        |e| matches!(e, NodeEvent::PppUp { .. }),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn l2xdpd_fails_closed_when_no_server_answers() {
    let fr = FreeRadius::start("l2xdpd-down", true, LAC_USERS);
    let (down, down_acct) = (fr.auth, fr.acct);
    drop(fr);
    let dir = Scratch::plain("radius-l2xdpd-down");
    let port = free_udp_port().expect("port");
    let metrics = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free TCP port");
    let _daemon = start_l2xdpd_with(
        &dir.dir,
        port,
        "pap",
        &[(down, down_acct)],
        &format!("\n[metrics]\nlisten = \"{metrics}\"\n"),
    );
    let (handle, mut events, t) = lac_tunnel(port).await;
    open_user_session(&handle, t, 0).await;
    wait_for(
        LIMIT,
        &mut events,
        1,
        "user0 refused",
        |e| matches!(e, NodeEvent::AuthFailed { .. }),
        |e| matches!(e, NodeEvent::PppUp { .. }),
    )
    .await;
    let log = std::fs::read_to_string(dir.dir.join("l2xdpd.log")).unwrap_or_default();
    assert!(log.contains("no RADIUS server answered"), "{log}");
    // The metric says so too, and the server is marked dead.
    let text = scrape(metrics);
    assert!(text.contains("\nl2xdp_radius_outages_total 1\n"), "{text}");
    assert!(
        text.contains(&format!("l2xdp_radius_server_up{{server=\"{down}\"}} 0\n")),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "l2xdp_radius_timeouts_total{{server=\"{down}\"}} 1\n"
        )),
        "{text}"
    );
}

/// `GET /metrics` from l2xdpd's endpoint.
fn scrape(at: SocketAddr) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(at).expect("metrics endpoint");
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("request");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("reply");
    out
}
