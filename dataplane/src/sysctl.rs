//! The kernel settings the fast path depends on, read from `/proc/sys` of the calling
//! thread's network namespace, and the one-line warnings `l2xdp-dataplane attach` and
//! `static` print when they are off (Documentation/networking/ip-sysctl.rst).
//!
//! - **Forwarding** on every interface a program looks routes up for: `bpf_fib_lookup`
//!   answers `FWD_DISABLED` when forwarding is off on the *ingress* interface
//!   (net/core/filter.c bpf_ipv4_fib_lookup: `IN_DEV_FORWARD`; bpf_ipv6_fib_lookup:
//!   `idev->cnf.forwarding`). XDP mode looks up the inner packet's route on the access
//!   interfaces (upstream) and the peer's route on the core interfaces and a static
//!   pseudowire's attachment interface (downstream). Off, nothing is forwarded: every packet
//!   goes to the kernel (which does not forward it either), counted as `fwd_disabled`.
//!   `net.ipv4.ip_forward = 1` (= `net.ipv4.conf.all.forwarding`) sets every interface's.
//!   IPv6 is checked only on interfaces where it is enabled.
//! - **Reverse-path filtering** on the access interfaces: see [`rp_filter_warning`].

/// A sysctl under `/proc/sys/net/` as a number (`None`: absent or unreadable).
fn read(path: &str) -> Option<u32> {
    std::fs::read_to_string(format!("/proc/sys/net/{path}"))
        .ok()
        .and_then(|v| v.trim().parse().ok())
}

/// One line per family whose forwarding is off on `iface` (IPv6 only where it is enabled).
pub fn forwarding_warnings(iface: &str) -> Vec<String> {
    let mut out = vec![];
    if read(&format!("ipv4/conf/{iface}/forwarding")) == Some(0) {
        out.push(format!(
            "{iface}: net.ipv4.conf.{iface}.forwarding is 0: bpf_fib_lookup refuses to route IPv4 arriving here, so the fast path forwards none of it (counted as fwd_disabled, handed to the kernel, which does not forward it either); set net.ipv4.ip_forward=1"
        ));
    }
    let v6_on = read(&format!("ipv6/conf/{iface}/disable_ipv6")) == Some(0);
    if v6_on && read(&format!("ipv6/conf/{iface}/forwarding")) == Some(0) {
        out.push(format!(
            "{iface}: net.ipv6.conf.{iface}.forwarding is 0: bpf_fib_lookup refuses to route IPv6 arriving here, so the fast path forwards none of it (counted as fwd_disabled); set net.ipv6.conf.all.forwarding=1"
        ));
    }
    out
}

/// The kernel path hands decapsulated subscriber packets to the stack as received on the
/// access interface; reverse-path filtering there (the larger of `all` and the interface's
/// value: Documentation/networking/ip-sysctl.rst) drops them unless the subscribers' prefixes
/// are routed back through it (net/ipv4/fib_frontend.c fib_validate_source).
pub fn rp_filter_warning(iface: &str) -> Option<String> {
    let get = |c: &str| read(&format!("ipv4/conf/{c}/rp_filter")).unwrap_or(0);
    let v = get("all").max(get(iface));
    (v > 0).then(|| {
        format!(
            "{iface}: rp_filter {v}: subscriber packets the fast path hands to the kernel (next hop not resolved yet, local destination) are dropped as martians unless the subscribers' prefixes are routed via {iface}; the fast path validates their sources itself (sysctl net.ipv4.conf.{{all,{iface}}}.rp_filter=0)"
        )
    })
}

/// Every warning for an attachment: forwarding on each interface, reverse-path filtering on
/// the access ones.
pub fn attach_warnings(access: &[String], other: &[String]) -> Vec<String> {
    let mut out = vec![];
    for i in access.iter().chain(other) {
        out.extend(forwarding_warnings(i));
    }
    for i in access {
        out.extend(rp_filter_warning(i));
    }
    out
}
