//! Unit tests of [`DaemonConfig::check`] (every validation, with the line and field it names)
//! and of the documented defaults of `deploy/l2xdp.toml`.

use super::*;
use crate::l2tp::config::{HiddenAvps, Limits, PseudowireConfig, RetransmitConfig};
use crate::l2tp::FailoverConfig;

const BASE_DAEMON: &str = "[daemon]\nlisten = [\"127.0.0.1:1701\"]\n";
const BASE_POOL: &str = "[ppp.ipcp]\npool = [\"10.0.0.0/24\"]\n";

/// `case` with a listen address and a pool added unless it has its own.
fn text(case: &str) -> String {
    let mut t = String::new();
    if !case.contains("[daemon]") {
        t.push_str(BASE_DAEMON);
    }
    t.push_str(case);
    if !case.contains("[ppp.ipcp]") {
        t.push('\n');
        t.push_str(BASE_POOL);
    }
    t
}

fn parse(case: &str) -> Result<DaemonConfig, ConfigError> {
    DaemonConfig::parse(Path::new("l2xdp.toml"), &text(case))
}

/// The error of `case`: it must name `field` on the line where `needle` is.
fn refused(case: &str, field: &str, needle: &str) -> String {
    let t = text(case);
    let e = parse(case)
        .expect_err(&format!("accepted:\n{t}"))
        .to_string();
    let line = t
        .lines()
        .position(|l| l.contains(needle))
        .map(|i| i + 1)
        .unwrap_or_else(|| panic!("{needle:?} not in\n{t}"));
    assert!(
        e.starts_with(&format!("l2xdp.toml:{line}:")),
        "want line {line} ({needle:?}): {e}\n{t}"
    );
    assert!(
        e.contains(&format!(" {field}: ")),
        "want field {field}: {e}"
    );
    e
}

#[test]
fn a_minimal_file_passes() {
    parse("").expect("valid");
}

#[test]
fn daemon_section() {
    let e = refused(
        "[daemon]\nlisten = [\"127.0.0.1:0\"]\n",
        "daemon.listen[0]",
        "listen",
    );
    assert!(e.contains("port 0"), "{e}");
    refused(
        "[daemon]\nlisten = [\"127.0.0.1:1701\", \"127.0.0.1:1701\"]\n",
        "daemon.listen[1]",
        "listen",
    );
    refused(
        "[daemon]\nlisten = [\"0.0.0.0:1701\", \"127.0.0.1:1701\"]\n",
        "daemon.listen[1]",
        "listen",
    );
    refused(
        "[daemon]\nlisten = [\"224.0.0.1:1701\"]\n",
        "daemon.listen[0]",
        "listen",
    );
    refused(
        "[daemon]\nlisten = []\nlisten_ip = [\"192.0.2.1\", \"192.0.2.1\"]\n",
        "daemon.listen_ip[1]",
        "listen_ip",
    );
    refused("[daemon]\nlisten = []\n", "daemon.listen", "listen");
    refused(
        "[daemon]\nlisten = [\"127.0.0.1:1701\"]\ncontrol_socket = \"\"\n",
        "daemon.control_socket",
        "control_socket",
    );
    refused(
        "[daemon]\nlisten = [\"127.0.0.1:1701\"]\ncontrol_socket = \"l2xdpd.sock\"\n",
        "daemon.control_socket",
        "control_socket",
    );
    refused(
        "[daemon]\nlisten = [\"127.0.0.1:1701\"]\ncontrol_socket = \"/tmp\"\n",
        "daemon.control_socket",
        "control_socket",
    );
    let file = std::env::temp_dir().join(format!("l2xdp-i15-config-file-{}", std::process::id()));
    std::fs::write(&file, "precious").expect("write");
    let e = refused(
        &format!(
            "[daemon]\nlisten = [\"127.0.0.1:1701\"]\ncontrol_socket = \"{}\"\n",
            file.display()
        ),
        "daemon.control_socket",
        "control_socket",
    );
    assert!(e.contains("not a socket"), "{e}");
    assert_eq!(
        std::fs::read_to_string(&file).ok().as_deref(),
        Some("precious")
    );
    let _ = std::fs::remove_file(&file);
    refused(
        "[daemon]\nlisten = [\"127.0.0.1:1701\"]\nstate_dir = \"state\"\n",
        "daemon.state_dir",
        "state_dir",
    );
}

#[test]
fn state_dir_must_be_creatable_when_failover_persists() {
    let bad = "[daemon]\nlisten = [\"127.0.0.1:1701\"]\nstate_dir = \"/dev/null/state\"\n";
    // Not used without failover: accepted.
    parse(bad).expect("unused state_dir");
    let e = refused(
        &format!("{bad}[l2tp.failover]\ncontrol = true\n"),
        "daemon.state_dir",
        "state_dir",
    );
    assert!(e.contains("not a directory"), "{e}");
    let dir = std::env::temp_dir().join(format!("l2xdp-i15-config-{}", std::process::id()));
    let ok = format!(
        "[daemon]\nlisten = [\"127.0.0.1:1701\"]\nstate_dir = \"{}\"\n[l2tp.failover]\n",
        dir.join("a/b").display()
    );
    parse(&ok).expect("creatable");
}

#[test]
fn dataplane_section() {
    refused(
        "[dataplane]\nmode = \"xdp\"\npin_dir = \"\"\n",
        "dataplane.pin_dir",
        "pin_dir",
    );
    parse("[dataplane]\nmode = \"memory\"\npin_dir = \"\"\n").expect("unused in memory mode");
}

#[test]
fn l2tp_section() {
    for (case, field, needle) in [
        ("[l2tp]\nhost_name = \"\"\n", "l2tp.host_name", "host_name"),
        ("[l2tp]\nrouter_id = 0\n", "l2tp.router_id", "router_id"),
        ("[l2tp]\nsecret = \"\"\n", "l2tp.secret", "secret"),
        ("[l2tp]\nhide_avps = true\n", "l2tp.hide_avps", "hide_avps"),
        (
            "[l2tp]\nreceive_window = 0\n",
            "l2tp.receive_window",
            "receive_window",
        ),
        (
            "[l2tp]\nreceive_window = 40000\n",
            "l2tp.receive_window",
            "receive_window",
        ),
        (
            "[l2tp]\nhello_interval_secs = 0\n",
            "l2tp.hello_interval_secs",
            "hello_interval_secs",
        ),
        (
            "[l2tp]\nhello_interval_secs = 86401\n",
            "l2tp.hello_interval_secs",
            "hello_interval_secs",
        ),
        (
            "[l2tp]\nrecovery_peers = [\"0.0.0.0\"]\n",
            "l2tp.recovery_peers[0]",
            "recovery_peers",
        ),
        (
            "[l2tp]\nrecovery_peers = [\"192.0.2.1\", \"192.0.2.1\"]\n",
            "l2tp.recovery_peers[1]",
            "recovery_peers",
        ),
        (
            "[l2tp.retransmit]\ninitial_timeout_ms = 0\n",
            "l2tp.retransmit.initial_timeout_ms",
            "initial_timeout_ms",
        ),
        (
            "[l2tp.retransmit]\nmax_timeout_ms = 4000\n",
            "l2tp.retransmit.max_timeout_ms",
            "max_timeout_ms",
        ),
        (
            "[l2tp.retransmit]\ninitial_timeout_ms = 9000\n",
            "l2tp.retransmit.initial_timeout_ms",
            "initial_timeout_ms",
        ),
        (
            "[l2tp.retransmit]\nmax_retries = 0\n",
            "l2tp.retransmit.max_retries",
            "max_retries",
        ),
        (
            "[l2tp.retransmit]\nack_delay_ms = 1000\n",
            "l2tp.retransmit.ack_delay_ms",
            "ack_delay_ms",
        ),
        (
            "[l2tp.failover]\ncontrol = false\ndata = false\n",
            "l2tp.failover",
            "[l2tp.failover]",
        ),
        (
            "[l2tp.failover]\nrecovery_time_ms = 3600001\n",
            "l2tp.failover.recovery_time_ms",
            "recovery_time_ms",
        ),
        (
            "[l2tp.limits]\nmax_tunnels = 0\n",
            "l2tp.limits.max_tunnels",
            "max_tunnels",
        ),
        (
            "[l2tp.limits]\nmax_sessions_per_tunnel = 0\n",
            "l2tp.limits.max_sessions_per_tunnel",
            "max_sessions_per_tunnel",
        ),
        (
            "[l2tp.pseudowire]\ncookie_len = 3\n",
            "l2tp.pseudowire.cookie_len",
            "cookie_len",
        ),
        (
            "[l2tp.pseudowire]\ndata_sequencing = 3\n",
            "l2tp.pseudowire.data_sequencing",
            "data_sequencing",
        ),
        (
            "[l2tp.pseudowire]\ncapabilities = []\n",
            "l2tp.pseudowire.capabilities",
            "capabilities",
        ),
        (
            "[l2tp.pseudowire]\ncapabilities = [5, 5]\n",
            "l2tp.pseudowire.capabilities[1]",
            "capabilities",
        ),
        (
            "[l2tp.pseudowire]\npw_type = 4\n",
            "l2tp.pseudowire.pw_type",
            "pw_type",
        ),
    ] {
        refused(case, field, needle);
    }
}

#[test]
fn failover_fields_left_out_take_the_defaults() {
    let c = parse("[l2tp.failover]\ncontrol = true\n").expect("valid");
    assert_eq!(c.l2tp.failover, Some(FailoverConfig::default()));
    let c = parse("[l2tp.failover]\n").expect("valid");
    assert_eq!(c.l2tp.failover, Some(FailoverConfig::default()));
    let c = parse("[l2tp.failover]\ndata = false\nrecovery_time_ms = 0\n").expect("valid");
    assert_eq!(
        c.l2tp.failover,
        Some(FailoverConfig {
            control: true,
            data: false,
            recovery_time_ms: 0
        })
    );
}

#[test]
fn ppp_section() {
    for (case, field, needle) in [
        (
            "[ppp]\nauth = [\"chap\", \"chap\"]\n",
            "ppp.auth[1]",
            "auth",
        ),
        ("[ppp]\nhostname = \"\"\n", "ppp.hostname", "hostname"),
        (
            "[ppp]\nrestart_timer = 0\n",
            "ppp.restart_timer",
            "restart_timer",
        ),
        (
            "[ppp]\nmax_terminate = 0\n",
            "ppp.max_terminate",
            "max_terminate",
        ),
        (
            "[ppp]\nmax_configure = 0\n",
            "ppp.max_configure",
            "max_configure",
        ),
        (
            "[ppp]\nmax_failure = 256\n",
            "ppp.max_failure",
            "max_failure",
        ),
        ("[ppp]\nmin_mru = 2000\n", "ppp.min_mru", "min_mru"),
        ("[ppp]\nmru = 100\n", "ppp.mru", "mru"),
        ("[ppp]\nmin_mru = 40\n", "ppp.min_mru", "min_mru"),
        (
            "[ppp]\nmru = 1200\n[ppp.ipv6cp]\nenabled = true\n",
            "ppp.mru",
            "mru",
        ),
        (
            "[ppp]\necho_failures = 0\n",
            "ppp.echo_failures",
            "echo_failures",
        ),
        (
            "[ppp]\nauth_timeout = 0\n",
            "ppp.auth_timeout",
            "auth_timeout",
        ),
        (
            "[ppp.ipv6cp]\ninterface_id = 0\n",
            "ppp.ipv6cp.interface_id",
            "interface_id",
        ),
    ] {
        refused(case, field, needle);
    }
    // Echoes off: no failure count needed; no authentication: no timeout needed.
    parse("[ppp]\necho_interval = 0\necho_failures = 0\n").expect("valid");
    parse("[ppp]\nauth = []\nauth_timeout = 0\n").expect("valid");
}

#[test]
fn durations_above_a_day_are_refused_not_clamped() {
    let e = parse("[ppp]\nrestart_timer = 86401\n")
        .expect_err("invalid")
        .to_string();
    assert!(e.contains("ppp.restart_timer"), "{e}");
    assert!(e.starts_with("l2xdp.toml:4:"), "{e}");
}

#[test]
fn ipcp_section() {
    for (case, field, needle) in [
        (
            "[ppp.ipcp]\nlocal_address = \"10.0.0.1\"\npool = [\"10.0.0.1/32\"]\n",
            "ppp.ipcp.pool[0]",
            "pool",
        ),
        (
            "[ppp.ipcp]\nlocal_address = \"10.0.0.1\"\npool = [\"10.0.0.1\"]\n",
            "ppp.ipcp.pool[0]",
            "pool",
        ),
        (
            "[ppp.ipcp]\npool = [\"10.0.0.0/24\", \"10.0.0.128/25\"]\n",
            "ppp.ipcp.pool",
            "pool",
        ),
        (
            "[ppp.ipcp]\npool = [\"10.0.0.0/24\", \"127.0.0.0/8\"]\n",
            "ppp.ipcp.pool[1]",
            "pool",
        ),
        (
            "[ppp.ipcp]\npool = [\"239.0.0.0/24\"]\n",
            "ppp.ipcp.pool[0]",
            "pool",
        ),
        (
            "[ppp.ipcp]\nlocal_address = \"255.255.255.255\"\npool = [\"10.0.0.0/24\"]\n",
            "ppp.ipcp.local_address",
            "local_address",
        ),
        (
            "[ppp.ipcp]\npool = [\"10.0.0.0/24\"]\ndns = [\"192.0.2.1\", \"192.0.2.2\", \"192.0.2.3\"]\n",
            "ppp.ipcp.dns[2]",
            "dns",
        ),
        (
            "[ppp.ipcp]\npool = [\"10.0.0.0/24\"]\ndns = [\"0.0.0.0\"]\n",
            "ppp.ipcp.dns[0]",
            "dns",
        ),
        (
            "[ppp.ipcp]\npool = [\"10.0.0.0/24\"]\ndns = [\"192.0.2.1\", \"192.0.2.1\"]\n",
            "ppp.ipcp.dns[1]",
            "dns",
        ),
    ] {
        refused(case, field, needle);
    }
    // The LNS's address inside a larger pool is excluded from it, not refused.
    parse("[ppp.ipcp]\nlocal_address = \"10.0.0.1\"\npool = [\"10.0.0.0/24\"]\n").expect("valid");
}

#[test]
fn users_pseudowire_initiator_metrics() {
    for (case, field, needle) in [
        ("[users]\nfile = \"\"\n", "users.file", "file"),
        (
            "[[pseudowire]]\nremote_end_id = \"\"\ninterface = \"eth0\"\n",
            "pseudowire[0].remote_end_id",
            "remote_end_id",
        ),
        (
            "[[pseudowire]]\nremote_end_id = \"a\"\ninterface = \"eth0\"\n[[pseudowire]]\nremote_end_id = \"a\"\ninterface = \"eth1\"\n",
            "pseudowire[1].remote_end_id",
            "remote_end_id = \"a\"\ninterface = \"eth1\"",
        ),
        (
            "[[pseudowire]]\nremote_end_id = \"a\"\ninterface = \"an-interface-name-too-long\"\n",
            "pseudowire[0].interface",
            "interface",
        ),
        (
            "[initiator]\npeer = \"192.0.2.1:0\"\nversion = 2\ntunnels = 1\nsessions = 1\n",
            "initiator.peer",
            "peer",
        ),
        (
            "[initiator]\npeer = \"192.0.2.1:1701\"\nversion = 2\ntunnels = 20000\nsessions = 1\n",
            "initiator.tunnels",
            "tunnels",
        ),
        (
            "[initiator]\npeer = \"[2001:db8::1]:1701\"\nversion = 2\ntunnels = 1\nsessions = 1\n",
            "initiator.peer",
            "peer",
        ),
        (
            "[l2tp]\nrecovery_peers = [\"2001:db8::1\"]\n",
            "l2tp.recovery_peers[0]",
            "recovery_peers",
        ),
        (
            "[metrics]\nlisten = \"127.0.0.1:0\"\n",
            "metrics.listen",
            "listen = \"127",
        ),
    ] {
        // The duplicated Remote End ID: the needle spans two lines; find the second one.
        if needle.contains('\n') {
            let t = text(case);
            let e = parse(case).expect_err("invalid").to_string();
            let at = t.find(needle).expect("needle");
            let line = t[..at].matches('\n').count() + 1;
            assert!(e.starts_with(&format!("l2xdp.toml:{line}:")), "{e}");
            assert!(e.contains(field), "{e}");
            continue;
        }
        refused(case, field, needle);
    }
}

#[test]
fn a_default_value_is_located_at_its_table_and_said_to_be_the_default() {
    let e = parse("[l2tp]\nhost_name = \"x\"\n[l2tp.retransmit]\nmax_timeout_ms = 8000\ninitial_timeout_ms = 7000\nack_delay_ms = 7000\n")
        .expect_err("invalid")
        .to_string();
    assert!(e.contains("l2tp.retransmit.ack_delay_ms"), "{e}");
    let e = parse("[ppp]\nmin_mru = 1501\n")
        .expect_err("invalid")
        .to_string();
    assert!(e.contains("ppp.min_mru"), "{e}");
    // A field the file does not set: the section's line, and the message says so.
    let e = DaemonConfig::parse(
        Path::new("l2xdp.toml"),
        "[daemon]\nlisten = [\"127.0.0.1:1701\"]\n[ppp.ipcp]\nenabled = true\n",
    )
    .expect_err("no pool")
    .to_string();
    assert!(e.starts_with("l2xdp.toml:3:"), "{e}");
    assert!(e.contains("this is the default"), "{e}");
}

#[test]
fn duplicate_keys_name_the_key_and_both_lines() {
    let e = DaemonConfig::parse(
        Path::new("l2xdp.toml"),
        "[daemon]\nlisten = [\"127.0.0.1:1701\"]\n[l2tp]\nhost_name = \"a\"\n\nhost_name = \"b\"\n",
    )
    .expect_err("duplicate")
    .to_string();
    assert!(e.starts_with("l2xdp.toml:6:"), "{e}");
    assert!(e.contains("l2tp.host_name: duplicate key"), "{e}");
    assert!(e.contains("first set at line 4"), "{e}");
    let e = DaemonConfig::parse(
        Path::new("l2xdp.toml"),
        "[l2tp]\nrouter_id = 2\n[ppp]\nmru = 1400\n[l2tp]\nhost_name = \"b\"\n",
    )
    .expect_err("duplicate")
    .to_string();
    assert!(e.starts_with("l2xdp.toml:5:"), "{e}");
    assert!(
        e.contains("l2tp: table l2tp is defined twice (first at line 1)"),
        "{e}"
    );
}

#[test]
fn ppp_defaults_ipv6cp_and_request_dns_are_off() {
    // Issue 16: the documented defaults; an xl2tpd/pppd peer rejects both.
    let p = crate::ppp::PppConfig::default();
    assert!(!p.ipv6cp.enabled);
    assert!(!p.ipcp.request_dns);
}

/// The value of a `(default: X)` annotation on `comment`, if any: `None` for "none" (the
/// field is absent), else the TOML value text.
fn annotation(comment: &str) -> Option<Option<String>> {
    let at = comment.find("(default: ")?;
    let rest = &comment[at + "(default: ".len()..];
    let end = rest.find([')', ',']).unwrap_or(rest.len());
    let v = rest[..end].trim();
    Some(if v.starts_with("none") {
        None
    } else {
        Some(v.to_string())
    })
}

/// `deploy/l2xdp.toml` with every site-specific value replaced by the default its comment
/// gives (the comment lines right above a key, or the key's own inline comment).
fn with_documented_defaults(text: &str) -> (String, usize) {
    let mut out = String::new();
    let mut comments: Vec<&str> = Vec::new();
    let mut substituted = 0;
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('#') {
            comments.push(t);
            out.push_str(line);
            out.push('\n');
            continue;
        }
        if t.is_empty() || t.starts_with('[') {
            comments.clear();
            out.push_str(line);
            out.push('\n');
            continue;
        }
        let (key, _) = t.split_once('=').expect("key = value");
        let inline = t.find('#').map(|i| &t[i..]);
        let note = inline
            .and_then(annotation)
            .or_else(|| comments.iter().find_map(|c| annotation(c)));
        comments.clear();
        match note {
            Some(Some(v)) => {
                substituted += 1;
                out.push_str(&format!("{} = {v}\n", key.trim()));
            }
            Some(None) => substituted += 1,
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    (out, substituted)
}

#[test]
fn documented_defaults_are_the_code_defaults() {
    let text = include_str!("../../../deploy/l2xdp.toml");
    let (defaults, substituted) = with_documented_defaults(text);
    assert!(substituted >= 10, "{substituted} annotations\n{defaults}");
    let mut c: DaemonConfig =
        config_file::parse(Path::new("deploy/l2xdp.toml"), &defaults).expect("parses");
    // Sections that are absent by default: the fields shown are the section's defaults.
    assert!(
        text.contains("(default: none: no section"),
        "[l2tp.failover]"
    );
    assert_eq!(c.l2tp.failover.take(), Some(FailoverConfig::default()));
    assert!(text.contains("no endpoint;\n# default: none)"), "[metrics]");
    let m = c.metrics.take().expect("[metrics]");
    assert!(!m.per_session);
    let d = DaemonConfig::default();
    assert_eq!(c.daemon, d.daemon, "[daemon]");
    assert_eq!(c.dataplane, d.dataplane, "[dataplane]");
    assert_eq!(c.l2tp.hidden, HiddenAvps::default(), "[l2tp.hidden]");
    assert_eq!(
        c.l2tp.retransmit,
        RetransmitConfig::default(),
        "[l2tp.retransmit]"
    );
    assert_eq!(c.l2tp.limits, Limits::default(), "[l2tp.limits]");
    assert_eq!(
        c.l2tp.pseudowire,
        PseudowireConfig::default(),
        "[l2tp.pseudowire]"
    );
    assert_eq!(c.l2tp, d.l2tp, "[l2tp]");
    assert_eq!(c.ppp.ipcp, d.ppp.ipcp, "[ppp.ipcp]");
    assert_eq!(c.ppp.ipv6cp, d.ppp.ipv6cp, "[ppp.ipv6cp]");
    assert_eq!(c.ppp, d.ppp, "[ppp]");
    assert_eq!(c.users, d.users, "[users]");
    assert_eq!(c.pseudowire, d.pseudowire, "[[pseudowire]]");
    assert_eq!(c.initiator, d.initiator, "[initiator]");
}

#[test]
fn the_deploy_example_passes_the_checks() {
    DaemonConfig::parse(
        Path::new("deploy/l2xdp.toml"),
        include_str!("../../../deploy/l2xdp.toml"),
    )
    .expect("deploy/l2xdp.toml");
}

/// The fields of the table at `header` (`[ppp.ipcp]`, `[[pseudowire]]`, or "" for the top
/// level), as the deserializer lists them when refusing an unknown one: no second list to
/// keep in step with the structs.
fn fields_of(header: &str) -> Vec<String> {
    let probe = format!("{header}\nzz_probe = 1\n");
    let e = config_file::parse::<DaemonConfig>(Path::new("probe.toml"), &probe)
        .expect_err("unknown field")
        .to_string();
    // "expected `a`", "expected `a` or `b`", "expected one of `a`, `b`, ...".
    let list = e
        .split("`zz_probe`, expected ")
        .nth(1)
        .unwrap_or_else(|| panic!("{header}: {e}"));
    list.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

#[test]
fn the_deploy_example_documents_every_field() {
    let text = include_str!("../../../deploy/l2xdp.toml");
    let documented = |table: &str, key: &str| {
        let header = format!("[{table}.{key}]");
        text.lines().any(|l| {
            let l = l.trim().trim_start_matches('#').trim();
            l.split('=').next().map(str::trim) == Some(key) && l.contains('=')
                || l.starts_with(&header)
                || l.starts_with(&format!("[{header}]"))
                || table.is_empty() && (l == format!("[{key}]") || l == format!("[[{key}]]"))
        })
    };
    let mut missing = Vec::new();
    for (header, table) in [
        ("", ""),
        ("[daemon]", "daemon"),
        ("[dataplane]", "dataplane"),
        ("[l2tp]", "l2tp"),
        ("[l2tp.hidden]", "l2tp.hidden"),
        ("[l2tp.retransmit]", "l2tp.retransmit"),
        ("[l2tp.failover]", "l2tp.failover"),
        ("[l2tp.limits]", "l2tp.limits"),
        ("[l2tp.pseudowire]", "l2tp.pseudowire"),
        ("[ppp]", "ppp"),
        ("[ppp.ipcp]", "ppp.ipcp"),
        ("[ppp.ipv6cp]", "ppp.ipv6cp"),
        ("[users]", "users"),
        ("[metrics]\nlisten = \"127.0.0.1:9725\"", "metrics"),
        ("[radius]", "radius"),
        (
            "[[radius.server]]\naddress = \"192.0.2.10\"\nsecret = \"s\"",
            "radius.server",
        ),
        (
            "[[pseudowire]]\nremote_end_id = \"a\"\ninterface = \"b\"",
            "pseudowire",
        ),
    ] {
        let fields = fields_of(header);
        assert!(!fields.is_empty(), "{header}");
        for f in fields {
            // [initiator] is the lab's and the bench's LAC role, documented in this module;
            // a production LNS has none.
            if table.is_empty() && f == "initiator" {
                continue;
            }
            if !documented(table, &f) {
                missing.push(format!("{table}.{f}"));
            }
        }
    }
    assert!(missing.is_empty(), "not in deploy/l2xdp.toml: {missing:?}");
}

/// The commented `[radius]` block of `deploy/l2xdp.toml`, uncommented (with its comments).
fn deploy_radius_block() -> String {
    let text = include_str!("../../../deploy/l2xdp.toml");
    let start = text
        .find("# [radius]")
        .expect("# [radius] in deploy/l2xdp.toml");
    let end = start + text[start..].find("\n\n").expect("block ends");
    // Only the TOML lines are uncommented: a table header or `key = value`.
    text[start..end]
        .lines()
        .map(|l| match l.strip_prefix("# ") {
            Some(t)
                if t.starts_with('[')
                    || t.split_once(" = ").is_some_and(|(k, _)| !k.contains(' ')) =>
            {
                t
            }
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_deploy_radius_block_shows_the_defaults_and_passes_the_checks() {
    let block = deploy_radius_block();
    let c = DaemonConfig::parse(Path::new("deploy/l2xdp.toml"), &block).expect("parses");
    let r = c.radius.expect("[radius]");
    assert_eq!(r.server.len(), 1);
    assert_eq!(
        (
            r.server[0].auth_port,
            r.server[0].acct_port,
            r.server[0].priority
        ),
        (1812, 1813, 0)
    );
    let (defaults, substituted) = with_documented_defaults(&block);
    assert_eq!(substituted, 2, "nas_identifier and nas_ip\n{defaults}");
    let c: DaemonConfig =
        config_file::parse(Path::new("deploy/l2xdp.toml"), &defaults).expect("parses");
    let mut r = c.radius.expect("[radius]");
    r.server.clear();
    assert_eq!(r, crate::aaa::config::RadiusSection::default());
}

#[test]
fn radius_mistakes_name_the_field() {
    let base = "[radius]\n[[radius.server]]\naddress = \"192.0.2.10\"\nsecret = \"s3cret\"\n";
    let cases = [
        ("[radius]\n", "radius.server", 1),
        (
            "[radius]\n[[radius.server]]\naddress = \"192.0.2.10\"\nsecret = \"\"\n",
            "radius.server[0].secret",
            4,
        ),
        (
            "[radius]\ntries = 0\n[[radius.server]]\naddress = \"192.0.2.10\"\nsecret = \"s\"\n",
            "radius.tries",
            2,
        ),
        (
            "[radius]\ntimeout_ms = 5\n[[radius.server]]\naddress = \"192.0.2.10\"\nsecret = \"s\"\n",
            "radius.timeout_ms",
            2,
        ),
        (
            "[radius]\n[[radius.server]]\naddress = \"0.0.0.0\"\nsecret = \"s\"\n",
            "radius.server[0].address",
            3,
        ),
        (
            "[radius]\n[[radius.server]]\naddress = \"192.0.2.10\"\nsecret = \"a\"\n[[radius.server]]\naddress = \"192.0.2.10\"\nsecret = \"b\"\n",
            "radius.server[1].address",
            6,
        ),
        (
            "[radius]\nnas_identifier = \"\"\n[[radius.server]]\naddress = \"192.0.2.10\"\nsecret = \"s\"\n",
            "radius.nas_identifier",
            2,
        ),
    ];
    for (text, field, line) in cases {
        match DaemonConfig::parse(Path::new("r.toml"), text) {
            Err(ConfigError::Invalid {
                path,
                line: l,
                field: f,
                ..
            }) => {
                assert_eq!(path, Path::new("r.toml"));
                assert_eq!(f, format!("{field}: "), "{text}");
                assert_eq!(l, line, "{text}");
            }
            other => panic!("{text}: {other:?}"),
        }
    }
    let c = DaemonConfig::parse(Path::new("r.toml"), base).expect("a minimal [radius]");
    let rc = c.radius.expect("radius").client_config();
    assert_eq!(rc.servers[0].auth, "192.0.2.10:1812".parse().expect("addr"));
    assert_eq!(rc.nas_identifier.as_deref(), Some("l2xdp"));
}
