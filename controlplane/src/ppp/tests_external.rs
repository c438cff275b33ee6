//! External credentials (RADIUS): the link asks ([`Event::AuthRequest`]) instead of looking
//! up, waits without blocking, and answers the peer when [`Link::auth_answer`] comes.

use super::*;
use crate::aaa::{AccessAccept, AccessOutcome, Credential};
use l2xdp_wire::ppp::chap_md5_verify;

/// A pair whose server has external credentials.
fn external_pair(auth: AuthMethod) -> Pair {
    let mut p = Pair::new(server_config(auth), client_config(), "alice", "s3cret");
    p.s = Link::server(
        Arc::new(server_config(auth)),
        Arc::new(ExternalCredentials),
        Some(pool_of(&["10.0.0.0/29"])),
        Random::seeded(S_SEED),
        p.now,
    );
    p
}

/// Runs until the server asks; returns the request.
fn asked(p: &mut Pair) -> (String, Credential) {
    p.run(Duration::from_secs(30), |p| {
        p.s_events
            .iter()
            .any(|e| matches!(e, Event::AuthRequest { .. }))
    });
    let mut asks = p.s_events.iter().filter_map(|e| match e {
        Event::AuthRequest { user, credential } => Some((user.clone(), credential.clone())),
        _ => None,
    });
    let first = asks.next().expect("the server asked");
    assert!(asks.next().is_none(), "asked once");
    first
}

fn accept(ip: Ipv4Addr, session_timeout: Option<u32>) -> AccessOutcome {
    AccessOutcome::Accept(AccessAccept {
        framed_ip: Some(ip),
        session_timeout,
        ..AccessAccept::default()
    })
}

#[test]
fn pap_is_verified_externally_and_the_answer_applied() {
    let mut p = external_pair(AuthMethod::Pap);
    let (user, cred) = asked(&mut p);
    assert_eq!(user, "alice");
    assert_eq!(cred, Credential::Pap(b"s3cret".to_vec()));
    // Waiting: the client's retransmissions are discarded, nothing is answered, nothing is up.
    p.run(Duration::from_secs(5), |_| false);
    assert!(!p.s.is_up() && !p.c.is_up());
    assert_eq!(
        p.s_events
            .iter()
            .filter(|e| matches!(e, Event::AuthRequest { .. }))
            .count(),
        1
    );
    let now = p.now;
    p.s.auth_answer(Some(&accept(Ipv4Addr::new(10, 9, 8, 7), Some(60))), now);
    p.run_to_up();
    let up = up_of(&p.s_events);
    assert_eq!(
        up[0].peer_ipv4,
        Some(Ipv4Addr::new(10, 9, 8, 7)),
        "Framed-IP-Address"
    );
    assert_eq!(up[0].user.as_deref(), Some("alice"));
    // Session-Timeout: the link closes when it has passed (and not before).
    let start = p.now;
    p.run(Duration::from_secs(120), |p| !p.s.is_up());
    assert!(
        p.now >= start + Duration::from_secs(50),
        "not before the timeout"
    );
    p.run(Duration::from_secs(30), |p| {
        p.s_events.iter().any(|e| matches!(e, Event::Down { .. }))
    });
    assert!(p.s_events.contains(&Event::Down {
        reason: DownReason::SessionTimeout
    }));
}

#[test]
fn chap_is_verified_externally_and_a_reject_fails_with_its_message() {
    let mut p = external_pair(AuthMethod::Chap);
    let (user, cred) = asked(&mut p);
    assert_eq!(user, "alice");
    let Credential::Chap {
        identifier,
        challenge,
        response,
    } = cred
    else {
        panic!("CHAP credential: {cred:?}");
    };
    assert!(chap_md5_verify(
        identifier, b"s3cret", &challenge, &response
    ));
    let now = p.now;
    p.s.auth_answer(
        Some(&AccessOutcome::Reject {
            reply_message: Some("Account suspended".into()),
        }),
        now,
    );
    p.run(Duration::from_secs(60), |p| {
        p.s_events.iter().any(|e| matches!(e, Event::Down { .. }))
    });
    assert!(p.s_events.contains(&Event::AuthFailed {
        user: Some("alice".into())
    }));
    assert!(p.s_events.contains(&Event::Down {
        reason: DownReason::AuthFailed
    }));
    // The Failure carried the Reply-Message (CHAP Failure, code 4).
    assert!(
        p.log
            .iter()
            .any(|l| l.starts_with("S>C") && l.contains(&hex(b"Account suspended"))),
        "{:?}",
        p.log
    );
    assert!(!p.c.is_up());
}

#[test]
fn no_answer_fails_closed() {
    for outcome in [None, Some(AccessOutcome::Challenge)] {
        let mut p = external_pair(AuthMethod::Pap);
        asked(&mut p);
        let now = p.now;
        p.s.auth_answer(outcome.as_ref(), now);
        p.run(Duration::from_secs(60), |p| {
            p.s_events.iter().any(|e| matches!(e, Event::Down { .. }))
        });
        assert!(p.s_events.contains(&Event::Down {
            reason: DownReason::AuthFailed
        }));
    }
    // And an answer that never comes: auth_timeout.
    let mut p = external_pair(AuthMethod::Pap);
    asked(&mut p);
    p.run(Duration::from_secs(120), |p| {
        p.s_events.iter().any(|e| matches!(e, Event::Down { .. }))
    });
    assert!(p.s_events.contains(&Event::Down {
        reason: DownReason::AuthTimeout
    }));
}

fn mschap_client() -> PppConfig {
    let mut c = client_config();
    c.auth = vec![AuthMethod::MsChapV2];
    c
}

#[test]
fn mschapv2_against_the_users_file() {
    // alice/s3cret: up; the client checked the server's Authenticator Response.
    let mut p = Pair::new(
        server_config(AuthMethod::MsChapV2),
        mschap_client(),
        "alice",
        "s3cret",
    );
    p.run_to_up();
    assert_eq!(up_of(&p.s_events)[0].user.as_deref(), Some("alice"));
    // A wrong password: Failure with E=691, both sides fail.
    let mut p = Pair::new(
        server_config(AuthMethod::MsChapV2),
        mschap_client(),
        "alice",
        "wrong",
    );
    p.run(Duration::from_secs(60), |p| {
        p.c_events
            .iter()
            .any(|e| matches!(e, Event::AuthFailed { .. }))
    });
    assert!(p.s_events.contains(&Event::AuthFailed {
        user: Some("alice".into())
    }));
    assert!(
        p.log
            .iter()
            .any(|l| l.starts_with("S>C") && l.contains(&hex(b"E=691 R=0 C="))),
        "{:?}",
        p.log
    );
    assert!(!p.c.is_up());
}

/// What a RADIUS server (FreeRADIUS) answers to an MS-CHAP-V2 Access-Request for
/// `password`: MS-CHAP2-Success, the Ident then the Authenticator Response.
fn radius_mschap_accept(cred: &Credential, user: &str, password: &str) -> AccessOutcome {
    let Credential::MsChapV2 {
        identifier,
        challenge,
        peer_challenge,
        nt_response,
    } = cred
    else {
        panic!("an MS-CHAP-V2 credential: {cred:?}");
    };
    assert!(l2xdp_wire::ppp::mschapv2::verify_nt_response(
        challenge,
        peer_challenge,
        user.as_bytes(),
        password.as_bytes(),
        nt_response
    ));
    let s = l2xdp_wire::ppp::mschapv2::authenticator_response(
        password.as_bytes(),
        nt_response,
        peer_challenge,
        challenge,
        user.as_bytes(),
    );
    let mut success = vec![*identifier];
    success.extend_from_slice(s.as_bytes());
    AccessOutcome::Accept(AccessAccept {
        ms_chap2_success: Some(success),
        ..AccessAccept::default()
    })
}

#[test]
fn mschapv2_through_radius_and_the_authenticator_response_checked() {
    let mut p = external_pair(AuthMethod::MsChapV2);
    p.c = Link::client(
        Arc::new(mschap_client()),
        "alice",
        b"s3cret",
        Random::seeded(C_SEED),
        p.now,
    );
    let (_, cred) = asked(&mut p);
    let now = p.now;
    p.s.auth_answer(Some(&radius_mschap_accept(&cred, "alice", "s3cret")), now);
    p.run_to_up();
    // A server that does not know the password (its Authenticator Response is for another):
    // the client refuses it (RFC 2759 §5).
    let mut p = external_pair(AuthMethod::MsChapV2);
    p.c = Link::client(
        Arc::new(mschap_client()),
        "alice",
        b"s3cret",
        Random::seeded(C_SEED),
        p.now,
    );
    let (_, cred) = asked(&mut p);
    let Credential::MsChapV2 {
        identifier,
        challenge,
        peer_challenge,
        ..
    } = cred.clone()
    else {
        panic!("{cred:?}");
    };
    let forged_nt =
        l2xdp_wire::ppp::mschapv2::nt_response(&challenge, &peer_challenge, b"alice", b"guess");
    let forged = radius_mschap_accept(
        &Credential::MsChapV2 {
            identifier,
            challenge,
            peer_challenge,
            nt_response: forged_nt,
        },
        "alice",
        "guess",
    );
    let now = p.now;
    p.s.auth_answer(Some(&forged), now);
    p.run(Duration::from_secs(60), |p| {
        p.c_events
            .iter()
            .any(|e| matches!(e, Event::AuthFailed { .. }))
    });
    assert!(!p.c.is_up(), "the client refused the forged Success");
    // An Accept without MS-CHAP2-Success is refused by the LNS.
    let mut p = external_pair(AuthMethod::MsChapV2);
    p.c = Link::client(
        Arc::new(mschap_client()),
        "alice",
        b"s3cret",
        Random::seeded(C_SEED),
        p.now,
    );
    asked(&mut p);
    let now = p.now;
    p.s.auth_answer(Some(&AccessOutcome::Accept(AccessAccept::default())), now);
    p.run(Duration::from_secs(60), |p| {
        p.s_events.iter().any(|e| matches!(e, Event::Down { .. }))
    });
    assert!(p.s_events.contains(&Event::Down {
        reason: DownReason::AuthFailed
    }));
}

#[test]
fn a_verification_has_a_ticket_while_awaited() {
    let mut p = external_pair(AuthMethod::Pap);
    assert_eq!(p.s.auth_ticket(), None);
    asked(&mut p);
    assert!(p.s.auth_ticket().is_some(), "awaited");
    let now = p.now;
    p.s.auth_answer(Some(&accept(Ipv4Addr::new(10, 0, 0, 2), None)), now);
    assert_eq!(p.s.auth_ticket(), None, "answered");
}
