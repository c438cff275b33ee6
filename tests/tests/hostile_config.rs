//! Issue 15 item 5: broken configuration files run through the real `l2xdpd --check`. Each
//! case asserts exit status 1 and that the message names the file, the line and the field
//! (and says what is wrong); `deploy/l2xdp.toml` and a file with a partial `[l2tp.failover]`
//! pass.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use l2xdp_lab::scratch::Scratch;

/// A listen address and a pool, prepended/appended unless the case has its own.
const DAEMON: &str = "[daemon]\nlisten = [\"127.0.0.1:1701\"]\n";
const POOL: &str = "[ppp.ipcp]\npool = [\"100.64.0.0/24\"]\n";

/// One broken file: its name, its text (see [`full_text`]), the field the message must
/// name, a piece of the line it must point at, and a piece of the explanation.
struct Case {
    name: &'static str,
    text: &'static str,
    field: &'static str,
    line_has: &'static str,
    says: &'static str,
}

const fn case(
    name: &'static str,
    text: &'static str,
    field: &'static str,
    line_has: &'static str,
    says: &'static str,
) -> Case {
    Case {
        name,
        text,
        field,
        line_has,
        says,
    }
}

const CASES: &[Case] = &[
    // The findings of issue 15.
    case(
        "port-zero",
        "[daemon]\nlisten = [\"192.0.2.1:1701\", \"127.0.0.1:0\"]\n",
        "daemon.listen[1]",
        "listen",
        "port 0",
    ),
    case(
        "pool-is-local-address",
        "[ppp.ipcp]\nlocal_address = \"100.64.0.1\"\npool = [\"100.64.0.1/32\"]\n",
        "ppp.ipcp.pool[0]",
        "pool",
        "gives no subscriber an address",
    ),
    case(
        "pool-range-is-local-address",
        "[ppp.ipcp]\nlocal_address = \"100.64.0.1\"\npool = [\"100.64.1.0/24\", \"100.64.0.1-100.64.0.1\"]\n",
        "ppp.ipcp.pool[1]",
        "pool",
        "local_address",
    ),
    case(
        "all-timers-zero",
        "[l2tp]\nhello_interval_secs = 0\n[l2tp.retransmit]\ninitial_timeout_ms = 0\nmax_timeout_ms = 0\nack_delay_ms = 0\n[ppp]\nrestart_timer = 0\necho_interval = 0\nauth_timeout = 0\n",
        "l2tp.retransmit.initial_timeout_ms",
        "initial_timeout_ms",
        "must be 1 to",
    ),
    case(
        "hello-zero",
        "[l2tp]\nhello_interval_secs = 0\n",
        "l2tp.hello_interval_secs",
        "hello_interval_secs",
        "RFC 2661 §6.5",
    ),
    case(
        "restart-timer-zero",
        "[ppp]\nrestart_timer = 0\n",
        "ppp.restart_timer",
        "restart_timer",
        "at least 0.01 s",
    ),
    case(
        "max-timeout-below-8s",
        "[l2tp.retransmit]\nmax_timeout_ms = 4000\n",
        "l2tp.retransmit.max_timeout_ms",
        "max_timeout_ms",
        "no less than 8 seconds",
    ),
    case(
        "ack-delay-not-below-rto",
        "[l2tp.retransmit]\nack_delay_ms = 1000\n",
        "l2tp.retransmit.ack_delay_ms",
        "ack_delay_ms",
        "retransmit before we acknowledge",
    ),
    case(
        "min-mru-above-mru",
        "[ppp]\nmru = 1400\nmin_mru = 1450\n",
        "ppp.min_mru",
        "min_mru",
        "min_mru must not exceed mru",
    ),
    case(
        "cookie-len-3",
        "[l2tp.pseudowire]\ncookie_len = 3\n",
        "l2tp.pseudowire.cookie_len",
        "cookie_len",
        "0 (none), 4 or 8",
    ),
    case(
        "three-dns",
        "[ppp.ipcp]\npool = [\"100.64.0.0/24\"]\ndns = [\"192.0.2.53\", \"192.0.2.54\", \"192.0.2.55\"]\n",
        "ppp.ipcp.dns[2]",
        "dns",
        "at most 2",
    ),
    case(
        "uncreatable-state-dir",
        "[daemon]\nlisten = [\"127.0.0.1:1701\"]\nstate_dir = \"/dev/null/l2xdp\"\n[l2tp.failover]\ncontrol = true\n",
        "daemon.state_dir",
        "state_dir",
        "/dev/null is not a directory",
    ),
    case(
        "state-dir-in-proc",
        "[daemon]\nlisten = [\"127.0.0.1:1701\"]\nstate_dir = \"/proc/l2xdp\"\n[l2tp.failover]\n",
        "daemon.state_dir",
        "state_dir",
        "/proc/l2xdp cannot be created: /proc is not writable",
    ),
    case(
        "empty-secret",
        "[l2tp]\nhost_name = \"lns1\"\nsecret = \"\"\n",
        "l2tp.secret",
        "secret",
        "remove the line for none",
    ),
    case(
        "duplicate-key",
        "[l2tp]\nhost_name = \"lns1\"\nrouter_id = 7\nhost_name = \"lns2\"\n",
        "l2tp.host_name",
        "host_name = \"lns2\"",
        "duplicate key (first set at line 4)",
    ),
    case(
        "duplicate-table",
        "[ppp]\nmru = 1400\n[l2tp]\nrouter_id = 7\n[ppp]\nmin_mru = 128\n",
        "ppp",
        "[ppp]\nmin_mru",
        "table ppp is defined twice (first at line 3)",
    ),
    case(
        "duplicate-key-in-second-pseudowire",
        "[[pseudowire]]\nremote_end_id = \"pw1\"\ninterface = \"eth2\"\n[[pseudowire]]\nremote_end_id = \"pw2\"\ninterface = \"eth3\"\ninterface = \"eth4\"\n",
        "pseudowire.interface",
        "interface = \"eth4\"",
        "duplicate key (first set at line 8)",
    ),
    case(
        "table-made-by-dotted-keys-then-a-header",
        "daemon.listen = [\"127.0.0.1:1701\"]\nppp.mru = 1400\n[ppp]\nmin_mru = 128\n",
        "ppp",
        "[ppp]",
        "table ppp is defined twice (first at line 2)",
    ),
    // More from reading every field.
    case(
        "failover-c-and-d-off",
        "[l2tp.failover]\ncontrol = false\ndata = false\n",
        "l2tp.failover",
        "[l2tp.failover]",
        "RFC 4951 §5.1",
    ),
    case(
        "receive-window-zero",
        "[l2tp]\nreceive_window = 0\n",
        "l2tp.receive_window",
        "receive_window",
        "0 is invalid",
    ),
    case(
        "max-tunnels-zero",
        "[l2tp.limits]\nmax_tunnels = 0\n",
        "l2tp.limits.max_tunnels",
        "max_tunnels",
        "must be 1 to",
    ),
    case(
        "empty-host-name",
        "[l2tp]\nhost_name = \"\"\n",
        "l2tp.host_name",
        "host_name",
        "at least 1 octet",
    ),
    case(
        "router-id-zero",
        "[l2tp]\nrouter_id = 0\n",
        "l2tp.router_id",
        "router_id",
        "non-zero",
    ),
    case(
        "hide-avps-without-secret",
        "[l2tp]\nhide_avps = true\n",
        "l2tp.hide_avps",
        "hide_avps",
        "needs l2tp.secret",
    ),
    case(
        "pw-type-not-accepted",
        "[l2tp.pseudowire]\ncapabilities = [5]\npw_type = 4\n",
        "l2tp.pseudowire.pw_type",
        "pw_type",
        "not in capabilities",
    ),
    case(
        "data-sequencing-3",
        "[l2tp.pseudowire]\ndata_sequencing = 3\n",
        "l2tp.pseudowire.data_sequencing",
        "data_sequencing",
        "2 (all)",
    ),
    case(
        "pools-overlap",
        "[ppp.ipcp]\npool = [\"100.64.0.0/24\", \"100.64.0.100-100.64.1.10\"]\n",
        "ppp.ipcp.pool",
        "pool",
        "overlap",
    ),
    case(
        "pool-of-loopback",
        "[ppp.ipcp]\npool = [\"100.64.0.0/24\", \"127.0.0.0/8\"]\n",
        "ppp.ipcp.pool[1]",
        "pool",
        "loopback",
    ),
    case(
        "dns-unspecified",
        "[ppp.ipcp]\npool = [\"100.64.0.0/24\"]\ndns = [\"0.0.0.0\"]\n",
        "ppp.ipcp.dns[0]",
        "dns",
        "unspecified",
    ),
    case(
        "local-address-multicast",
        "[ppp.ipcp]\nlocal_address = \"224.0.0.5\"\npool = [\"100.64.0.0/24\"]\n",
        "ppp.ipcp.local_address",
        "local_address",
        "multicast",
    ),
    case(
        "interface-id-zero",
        "[ppp.ipv6cp]\nenabled = true\ninterface_id = 0\n",
        "ppp.ipv6cp.interface_id",
        "interface_id",
        "MUST NOT be zero",
    ),
    case(
        "ipv6-on-a-small-mru",
        "[ppp]\nmru = 1200\n[ppp.ipv6cp]\nenabled = true\n",
        "ppp.mru",
        "mru",
        "RFC 8200",
    ),
    case(
        "echo-failures-zero",
        "[ppp]\necho_interval = 10\necho_failures = 0\n",
        "ppp.echo_failures",
        "echo_failures",
        "echo_interval = 0",
    ),
    case(
        "max-configure-zero",
        "[ppp]\nmax_configure = 0\n",
        "ppp.max_configure",
        "max_configure",
        "1 to 255",
    ),
    case(
        "restart-timer-above-a-day",
        "[ppp]\nrestart_timer = 90000\n",
        "ppp.restart_timer",
        "restart_timer",
        "24 hours",
    ),
    case(
        "duplicate-remote-end-id",
        "[[pseudowire]]\nremote_end_id = \"pw1\"\ninterface = \"eth2\"\n[[pseudowire]]\nremote_end_id = \"pw1\"\ninterface = \"eth3\"\n",
        "pseudowire[1].remote_end_id",
        "remote_end_id = \"pw1\"\ninterface = \"eth3\"",
        "also pseudowire[0]'s",
    ),
    case(
        "interface-name-too-long",
        "[[pseudowire]]\nremote_end_id = \"pw1\"\ninterface = \"a-very-long-interface\"\n",
        "pseudowire[0].interface",
        "interface",
        "1 to 15 bytes",
    ),
    case(
        "initiator-peer-port-zero",
        "[initiator]\npeer = \"192.0.2.1:0\"\nversion = 2\ntunnels = 1\nsessions = 1\n",
        "initiator.peer",
        "peer",
        "UDP port",
    ),
    case(
        "initiator-peer-of-the-wrong-family",
        "[initiator]\npeer = \"[2001:db8::1]:1701\"\nversion = 2\ntunnels = 1\nsessions = 1\n",
        "initiator.peer",
        "peer",
        "no IPv6 address to send from",
    ),
    case(
        "recovery-peer-of-the-wrong-family",
        "[l2tp]\nrecovery_peers = [\"192.0.2.7\", \"2001:db8::7\"]\n",
        "l2tp.recovery_peers[1]",
        "recovery_peers",
        "no IPv6 address",
    ),
    case(
        "metrics-port-zero",
        "[metrics]\nlisten = \"127.0.0.1:0\"\n",
        "metrics.listen",
        "listen = \"127.0.0.1:0\"",
        "port 0",
    ),
    case(
        "relative-control-socket",
        "[daemon]\nlisten = [\"127.0.0.1:1701\"]\ncontrol_socket = \"l2xdpd.sock\"\n",
        "daemon.control_socket",
        "control_socket",
        "absolute path",
    ),
    case(
        "empty-users-file",
        "[users]\nfile = \"\"\n",
        "users.file",
        "file",
        "empty path",
    ),
    case(
        "wrong-type",
        "[l2tp]\nhello_interval_secs = \"sixty\"\n",
        "l2tp.hello_interval_secs",
        "hello_interval_secs",
        "invalid type",
    ),
    case(
        "unknown-field",
        "[ppp]\nmur = 1400\n",
        "ppp.mur",
        "mur",
        "unknown field `mur`",
    ),
];

/// The case's text with a listen address and a pool added unless it has its own.
fn full_text(c: &Case) -> String {
    let mut t = String::new();
    if !c.text.contains("[daemon]") && !c.text.starts_with("daemon.") {
        t.push_str(DAEMON);
    }
    t.push_str(c.text);
    if !c.text.contains("[ppp.ipcp]") {
        t.push_str(POOL);
    }
    t
}

fn l2xdpd() -> PathBuf {
    let bin = l2xdp_lab::workspace_binary("l2xdpd");
    assert!(
        bin.exists(),
        "{} not built: cargo build -p l2xdp-controlplane --bin l2xdpd",
        bin.display()
    );
    bin
}

fn check(file: &Path) -> Output {
    Command::new(l2xdpd())
        .args(["--check", "--config"])
        .arg(file)
        .output()
        .expect("run l2xdpd --check")
}

#[test]
fn check_refuses_every_broken_file_naming_file_line_and_field() {
    let dir = Scratch::plain("i15-config-hostile");
    assert!(CASES.len() >= 20, "{} cases", CASES.len());
    let mut failures = Vec::new();
    for c in CASES {
        let text = full_text(c);
        let file = dir.dir.join(format!("{}.toml", c.name));
        std::fs::write(&file, &text).expect("write");
        let out = check(&file);
        let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
        let line = text
            .find(c.line_has)
            .map(|at| text[..at].matches('\n').count() + 1)
            .unwrap_or_else(|| panic!("{}: {:?} not in its text", c.name, c.line_has));
        let want = format!("l2xdpd: {}:{line}:", file.display());
        let ok = out.status.code() == Some(1)
            && out.stdout.is_empty()
            && err.starts_with(&want)
            && err.contains(&format!(" {}: ", c.field))
            && err.contains(c.says)
            && err.lines().count() == 1;
        if !ok {
            failures.push(format!(
                "{}: status {:?}, want {want}… {}: …{}…; got {err:?}",
                c.name, out.status, c.field, c.says
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
}

#[test]
fn the_deploy_example_passes_check() {
    let dir = Scratch::plain("i15-config-deploy");
    let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/l2xdp.toml");
    let text = std::fs::read_to_string(&deploy).expect("deploy/l2xdp.toml");
    // The example's users file is /etc/l2xdp/users, which --check reads: point it at one here
    // (the only change; every other field is checked as shipped).
    let users = dir.dir.join("users");
    std::fs::write(&users, "alice s3cret\nbob s3cret 100.64.0.9\n").expect("users");
    let from = "file = \"/etc/l2xdp/users\"";
    assert_eq!(text.matches(from).count(), 1, "the users line");
    let file = dir.dir.join("l2xdp.toml");
    std::fs::write(
        &file,
        text.replace(from, &format!("file = \"{}\"", users.display())),
    )
    .expect("write");
    let out = check(&file);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("{}: ok", file.display())
    );
}

#[test]
fn a_partial_failover_section_takes_the_defaults_and_passes() {
    let dir = Scratch::plain("i15-config-failover");
    let file = dir.dir.join("failover.toml");
    let state = dir.dir.join("state");
    std::fs::write(
        &file,
        format!(
            "{DAEMON}state_dir = \"{}\"\n[l2tp.failover]\ncontrol = true\n{POOL}",
            state.display()
        ),
    )
    .expect("write");
    let out = check(&file);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A users file that gives two subscribers one fixed address, or one the LNS's own address:
/// `--check` names the users file, the line and the field.
#[test]
fn a_users_file_with_a_shared_or_gateway_address_is_refused() {
    let dir = Scratch::plain("i15-config-users");
    for (name, users, line, why) in [
        (
            "shared",
            "alice a 100.64.0.9\nbob b 100.64.0.9\n",
            2,
            "100.64.0.9 is already \"alice\"'s fixed address (line 1)",
        ),
        (
            "gateway",
            "# the gateway\ncarol c 100.64.0.1\n",
            2,
            "100.64.0.1 is the LNS's own address ([ppp.ipcp] local_address)",
        ),
    ] {
        let users_file = dir.dir.join(format!("users-{name}"));
        std::fs::write(&users_file, users).expect("users");
        let file = dir.dir.join(format!("{name}.toml"));
        std::fs::write(
            &file,
            format!(
                "{DAEMON}[users]\nfile = \"{}\"\n[ppp.ipcp]\nlocal_address = \"100.64.0.1\"\npool = [\"100.64.0.0/24\"]\n",
                users_file.display()
            ),
        )
        .expect("write");
        let out = check(&file);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {err}");
        assert!(
            err.contains(&format!(
                "{}:{line}:1: ipv4-address: {why}",
                users_file.display()
            )),
            "{name}: {err}"
        );
    }
}
