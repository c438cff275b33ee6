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
