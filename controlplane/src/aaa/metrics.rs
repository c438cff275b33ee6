//! The RADIUS client's Prometheus series, appended to `/metrics` when `[radius]` is set:
//! per server (label `server`, its authentication address) its state, requests,
//! retransmissions, responses, timeouts, times marked dead, mean latency and dropped
//! responses by reason; and the requests that failed closed because no server answered
//! (`l2xdp_radius_outages_total`) or too many were outstanding.

use crate::metrics::{Exposition, Kind};

use super::client::RadiusClient;

/// One per-server family: name, type, help, and the value of a server.
type Family = (
    &'static str,
    Kind,
    &'static str,
    fn(&super::ServerStatus) -> f64,
);

/// The series, as exposition text.
pub fn render(client: &RadiusClient) -> String {
    let mut e = Exposition::default();
    let servers = client.servers();
    let per_server: [Family; 7] = [
        (
            "l2xdp_radius_server_up",
            Kind::Gauge,
            "1 while the server is live, 0 while it is marked dead",
            |s| f64::from(u8::from(s.state == super::ServerState::Live)),
        ),
        (
            "l2xdp_radius_requests_total",
            Kind::Counter,
            "Requests sent to the server (first transmissions)",
            |s| s.requests as f64,
        ),
        (
            "l2xdp_radius_retransmissions_total",
            Kind::Counter,
            "Requests sent again to the server",
            |s| s.retransmissions as f64,
        ),
        (
            "l2xdp_radius_responses_total",
            Kind::Counter,
            "Responses accepted from the server",
            |s| s.responses as f64,
        ),
        (
            "l2xdp_radius_timeouts_total",
            Kind::Counter,
            "Requests the server did not answer in all their transmissions",
            |s| s.timeouts as f64,
        ),
        (
            "l2xdp_radius_marked_dead_total",
            Kind::Counter,
            "Times the server was marked dead",
            |s| s.marked_dead as f64,
        ),
        (
            "l2xdp_radius_latency_seconds_mean",
            Kind::Gauge,
            "Mean time from a request's first transmission to its accepted response",
            |s| s.mean_latency_us as f64 / 1e6,
        ),
    ];
    for (name, kind, help, f) in per_server {
        e.family(name, kind, help);
        for s in &servers {
            e.sample(name, &[("server", &s.auth.to_string())], f(s));
        }
    }
    e.family(
        "l2xdp_radius_dropped_responses_total",
        Kind::Counter,
        "Responses dropped and never acted on, by reason (spoofed, malformed, unsigned)",
    );
    for s in &servers {
        let d = s.dropped;
        let server = s.auth.to_string();
        for (reason, v) in [
            ("wrong_source", d.wrong_source),
            ("malformed", d.malformed),
            ("unknown_identifier", d.unknown_identifier),
            ("unexpected_code", d.unexpected_code),
            ("bad_authenticator", d.bad_authenticator),
            (
                "missing_message_authenticator",
                d.missing_message_authenticator,
            ),
            ("bad_message_authenticator", d.bad_message_authenticator),
        ] {
            e.sample(
                "l2xdp_radius_dropped_responses_total",
                &[("server", &server), ("reason", reason)],
                v as f64,
            );
        }
    }
    e.single(
        "l2xdp_radius_outages_total",
        Kind::Counter,
        "Requests that failed closed because no RADIUS server answered",
        client.outages() as f64,
    );
    e.single(
        "l2xdp_radius_overloaded_total",
        Kind::Counter,
        "Requests refused at once because too many were outstanding",
        client.overloaded() as f64,
    );
    e.finish()
}
