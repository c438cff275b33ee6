//! The client against servers on loopback sockets: well-behaved ones (answering as RFC 2865
//! says, signed), silent ones (down), and hostile ones that send spoofed or broken responses
//! before the real one.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use l2xdp_wire::radius::auth::{
    sign_authenticator, sign_message_authenticator, unhide_password, verify_accounting_request,
    verify_message_authenticator,
};
use l2xdp_wire::radius::{attr, code, Attribute, Packet};
use tokio::net::UdpSocket;

use super::*;
use crate::random::Random;

const SECRET: &[u8] = b"s3cret-of-server";

/// A signed response to `req` with `attrs` (and a Message-Authenticator when `ma`).
fn response(req: &Packet, code: u8, mut attrs: Vec<Attribute>, ma: bool, secret: &[u8]) -> Vec<u8> {
    if ma {
        attrs.push(Attribute::new(attr::MESSAGE_AUTHENTICATOR, [0; 16]));
    }
    let p = Packet {
        code,
        identifier: req.identifier,
        authenticator: [0; 16],
        attributes: attrs,
    };
    let mut b = p.to_vec().expect("emit");
    if ma {
        sign_message_authenticator(&mut b, Some(&req.authenticator), secret).expect("ma");
    }
    sign_authenticator(&mut b, &req.authenticator, secret);
    b
}

/// What a test server does with each request before answering it properly.
type Spoofs = fn(&Packet) -> Vec<Vec<u8>>;

/// A server on loopback: answers PAP "alice"/"pw" with an Accept, anything else with a Reject,
/// Accounting-Requests with a Response; first sends whatever `spoofs` makes. Returns its
/// address.
async fn server(spoofs: Spoofs) -> SocketAddr {
    server_on((Ipv4Addr::LOCALHOST, 0).into(), spoofs).await
}

/// [`server`] bound to `at`.
async fn server_on(at: SocketAddr, spoofs: Spoofs) -> SocketAddr {
    let sock = UdpSocket::bind(at).await.expect("bind");
    let addr = sock.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut buf = [0u8; 4096];
        loop {
            let Ok((n, from)) = sock.recv_from(&mut buf).await else {
                return;
            };
            let b = &buf[..n];
            let req = Packet::parse(b).expect("the client sends well-formed requests");
            for s in spoofs(&req) {
                sock.send_to(&s, from).await.expect("send");
            }
            let resp = match req.code {
                code::ACCESS_REQUEST => {
                    assert_eq!(
                        verify_message_authenticator(b, None, SECRET),
                        Ok(()),
                        "every Access-Request carries a valid Message-Authenticator"
                    );
                    assert_eq!(req.get(attr::NAS_IDENTIFIER), Some(&b"lns-test"[..]));
                    let pw = req
                        .get(attr::USER_PASSWORD)
                        .map(|h| unhide_password(h, SECRET, &req.authenticator).expect("pw"));
                    if req.get(attr::USER_NAME) == Some(b"alice") && pw.as_deref() == Some(b"pw") {
                        response(
                            &req,
                            code::ACCESS_ACCEPT,
                            vec![
                                Attribute::ipv4(
                                    attr::FRAMED_IP_ADDRESS,
                                    Ipv4Addr::new(10, 1, 2, 3),
                                ),
                                Attribute::integer(attr::SESSION_TIMEOUT, 3600),
                                Attribute::integer(attr::IDLE_TIMEOUT, 300),
                                Attribute::integer(attr::FRAMED_MTU, 1400),
                                Attribute::new(attr::CLASS, b"gold".to_vec()),
                            ],
                            true,
                            SECRET,
                        )
                    } else {
                        response(
                            &req,
                            code::ACCESS_REJECT,
                            vec![Attribute::new(attr::REPLY_MESSAGE, b"Go away".to_vec())],
                            true,
                            SECRET,
                        )
                    }
                }
                code::ACCOUNTING_REQUEST => {
                    assert!(
                        verify_accounting_request(b, SECRET),
                        "RFC 2866 §3 authenticator"
                    );
                    response(&req, code::ACCOUNTING_RESPONSE, vec![], false, SECRET)
                }
                c => panic!("unexpected request code {c}"),
            };
            sock.send_to(&resp, from).await.expect("send");
        }
    });
    addr
}

fn no_spoofs(_: &Packet) -> Vec<Vec<u8>> {
    Vec::new()
}

/// A bound socket that never answers (a server that is down but whose port does not send
/// ICMP errors).
async fn silent() -> (UdpSocket, SocketAddr) {
    let s = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind");
    let a = s.local_addr().expect("addr");
    (s, a)
}

fn cfg(addrs: &[SocketAddr]) -> RadiusConfig {
    let mut c = RadiusConfig::new(
        addrs
            .iter()
            .enumerate()
            .map(|(i, a)| ServerConfig {
                auth: *a,
                acct: *a,
                secret: SECRET.to_vec(),
                priority: i as u32,
            })
            .collect(),
    );
    c.timeout = Duration::from_millis(150);
    c.tries = 2;
    c.nas_identifier = Some("lns-test".into());
    c.nas_ip = Some(Ipv4Addr::new(192, 0, 2, 1).into());
    c
}

fn pap(user: &str, pw: &str) -> AccessRequest {
    AccessRequest {
        user: user.as_bytes().to_vec(),
        credential: Credential::Pap(pw.as_bytes().to_vec()),
        attributes: AccessRequest::ppp_attributes(),
    }
}

#[tokio::test]
async fn accept_carries_its_attributes_and_reject_its_message() {
    let a = server(no_spoofs).await;
    let c = RadiusClient::new(cfg(&[a]), Random::seeded(1))
        .await
        .expect("client");
    let AccessOutcome::Accept(acc) = c.authenticate(&pap("alice", "pw")).await.expect("answer")
    else {
        panic!("accepted")
    };
    assert_eq!(acc.framed_ip, Some(Ipv4Addr::new(10, 1, 2, 3)));
    assert_eq!(acc.session_timeout, Some(3600));
    assert_eq!(acc.idle_timeout, Some(300));
    assert_eq!(acc.framed_mtu, Some(1400));
    assert_eq!(acc.class, vec![b"gold".to_vec()]);
    assert_eq!(
        c.authenticate(&pap("alice", "wrong"))
            .await
            .expect("answer"),
        AccessOutcome::Reject {
            reply_message: Some("Go away".into())
        }
    );
    c.account(&[Attribute::integer(attr::ACCT_STATUS_TYPE, 1)])
        .await
        .expect("accounting answered");
    let s = &c.servers()[0];
    assert_eq!((s.requests, s.responses, s.timeouts), (3, 3, 0));
    assert_eq!(c.dropped(), DropCounters::default());
}

#[tokio::test]
async fn a_silent_server_fails_over_is_marked_dead_and_revived() {
    let (_down, d) = silent().await;
    let up = server(no_spoofs).await;
    let mut conf = cfg(&[d, up]);
    conf.dead_time = Duration::from_millis(400);
    let c = RadiusClient::new(conf, Random::seeded(2))
        .await
        .expect("client");
    assert!(matches!(
        c.authenticate(&pap("alice", "pw")).await.expect("answer"),
        AccessOutcome::Accept(_)
    ));
    let s = c.servers();
    assert_eq!(s[0].state, ServerState::Dead);
    assert_eq!(
        (s[0].requests, s[0].retransmissions, s[0].timeouts),
        (1, 1, 1)
    );
    assert_eq!((s[1].requests, s[1].responses), (1, 1));
    // While dead it is not tried.
    c.authenticate(&pap("alice", "pw")).await.expect("answer");
    assert_eq!(c.servers()[0].requests, 1, "a dead server is skipped");
    // After its dead time it is tried again (and, still silent, marked dead again).
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_eq!(c.servers()[0].state, ServerState::Live);
    c.authenticate(&pap("alice", "pw")).await.expect("answer");
    let s = c.servers();
    assert_eq!(
        (s[0].requests, s[0].marked_dead),
        (2, 2),
        "revived, tried, dead again"
    );
    assert_eq!(s[1].responses, 3);
}

#[tokio::test]
async fn an_outage_fails_closed() {
    let (_a, a) = silent().await;
    let (_b, b) = silent().await;
    let c = RadiusClient::new(cfg(&[a, b]), Random::seeded(3))
        .await
        .expect("client");
    assert!(matches!(
        c.authenticate(&pap("alice", "pw")).await,
        Err(AaaError::NoServer { tried: 2 })
    ));
    // Both now dead: the next request fails at once without sending.
    assert!(matches!(
        c.authenticate(&pap("alice", "pw")).await,
        Err(AaaError::NoServer { tried: 0 })
    ));
    assert_eq!(c.outages(), 2);
}

#[tokio::test]
async fn outstanding_requests_are_bounded() {
    let (_a, a) = silent().await;
    let mut conf = cfg(&[a]);
    conf.max_outstanding = 1;
    let c = RadiusClient::new(conf, Random::seeded(4))
        .await
        .expect("client");
    let c2 = c.clone();
    let first = tokio::spawn(async move { c2.authenticate(&pap("alice", "pw")).await });
    // Let the first take the one slot.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(matches!(
        c.authenticate(&pap("alice", "pw")).await,
        Err(AaaError::Overloaded(1))
    ));
    assert!(first.await.expect("join").is_err());
    assert_eq!(c.overloaded(), 1);
}

/// Every forgery of the answer: the real response comes after them, and only it is taken.
fn forgeries(req: &Packet) -> Vec<Vec<u8>> {
    let accept = |attrs| response(req, code::ACCESS_ACCEPT, attrs, true, SECRET);
    let mut wrong_auth = accept(vec![]);
    wrong_auth[4] ^= 0xff;
    let mut wrong_id = accept(vec![]);
    wrong_id[1] = req.identifier.wrapping_add(1);
    let truncated = accept(vec![])[..30].to_vec();
    let no_ma = response(req, code::ACCESS_ACCEPT, vec![], false, SECRET);
    // Signed with the wrong secret (an attacker without it).
    let wrong_secret = response(req, code::ACCESS_ACCEPT, vec![], true, b"guess");
    // Right Response Authenticator, wrong Message-Authenticator: sign MA with another
    // secret, then the authenticator with the right one.
    let mut bad_ma = Packet {
        code: code::ACCESS_ACCEPT,
        identifier: req.identifier,
        authenticator: [0; 16],
        attributes: vec![Attribute::new(attr::MESSAGE_AUTHENTICATOR, [0; 16])],
    }
    .to_vec()
    .expect("emit");
    sign_message_authenticator(&mut bad_ma, Some(&req.authenticator), b"guess").expect("ma");
    sign_authenticator(&mut bad_ma, &req.authenticator, SECRET);
    let wrong_code = response(req, code::ACCOUNTING_RESPONSE, vec![], true, SECRET);
    vec![
        wrong_auth,
        wrong_id,
        truncated,
        no_ma,
        wrong_secret,
        bad_ma,
        wrong_code,
    ]
}

#[tokio::test]
async fn spoofed_and_broken_responses_are_dropped_and_counted() {
    let a = server(forgeries).await;
    let c = RadiusClient::new(cfg(&[a]), Random::seeded(5))
        .await
        .expect("client");
    // A reject for a wrong password: a forged Accept must not turn it into an accept.
    assert_eq!(
        c.authenticate(&pap("alice", "wrong"))
            .await
            .expect("answer"),
        AccessOutcome::Reject {
            reply_message: Some("Go away".into())
        }
    );
    let d = c.dropped();
    assert_eq!(
        d,
        DropCounters {
            wrong_source: 0,
            malformed: 1,
            unknown_identifier: 1,
            unexpected_code: 1,
            bad_authenticator: 2,
            missing_message_authenticator: 1,
            bad_message_authenticator: 1,
        }
    );
    // A response from another address is dropped too.
    let other = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind");
    let (_down, d) = silent().await;
    let c2 = RadiusClient::new(cfg(&[d]), Random::seeded(6))
        .await
        .expect("client");
    let c3 = c2.clone();
    let pending = tokio::spawn(async move { c3.authenticate(&pap("alice", "pw")).await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    // The client's socket: learn it from the silent server's view.
    let mut buf = [0u8; 4096];
    let (n, client) = _down.recv_from(&mut buf).await.expect("request");
    let req = Packet::parse(&buf[..n]).expect("parse");
    let forged = response(&req, code::ACCESS_ACCEPT, vec![], true, SECRET);
    other.send_to(&forged, client).await.expect("send");
    assert!(pending.await.expect("join").is_err(), "never accepted");
    assert_eq!(c2.dropped().wrong_source, 1);
}

#[tokio::test]
async fn chap_and_mschapv2_requests_carry_their_attributes() {
    let req = AccessRequest {
        user: b"bob".to_vec(),
        credential: Credential::Chap {
            identifier: 9,
            challenge: vec![1; 16],
            response: [2; 16],
        },
        attributes: vec![],
    };
    let p = req.packet(1, [0; 16], SECRET, &[]).expect("packet");
    let mut want = vec![9];
    want.extend_from_slice(&[2; 16]);
    assert_eq!(p.get(attr::CHAP_PASSWORD), Some(&want[..]));
    assert_eq!(p.get(attr::CHAP_CHALLENGE), Some(&[1u8; 16][..]));
    assert_eq!(p.get(attr::USER_PASSWORD), None);
    let req = AccessRequest {
        credential: Credential::MsChapV2 {
            identifier: 7,
            challenge: [3; 16],
            peer_challenge: [4; 16],
            nt_response: [5; 24],
        },
        ..req
    };
    let p = req.packet(1, [0; 16], SECRET, &[]).expect("packet");
    let r = p
        .vendor(l2xdp_wire::radius::microsoft::VENDOR_ID, 25)
        .expect("MS-CHAP2-Response");
    assert_eq!(r.len(), 50);
    assert_eq!((r[0], r[1]), (7, 0));
    assert_eq!(&r[2..18], &[4; 16]);
    assert_eq!(&r[18..26], &[0; 8]);
    assert_eq!(&r[26..], &[5; 24]);
    assert_eq!(
        p.vendor(l2xdp_wire::radius::microsoft::VENDOR_ID, 11),
        Some(&[3u8; 16][..])
    );
}

#[tokio::test]
async fn ipv6_transport() {
    let a = server_on((std::net::Ipv6Addr::LOCALHOST, 0).into(), no_spoofs).await;
    let mut conf = cfg(&[a]);
    conf.nas_ip = Some(std::net::Ipv6Addr::LOCALHOST.into());
    let c = RadiusClient::new(conf, Random::seeded(7))
        .await
        .expect("client");
    assert!(matches!(
        c.authenticate(&pap("alice", "pw")).await.expect("answer"),
        AccessOutcome::Accept(_)
    ));
    assert_eq!(c.servers()[0].responses, 1);
}
