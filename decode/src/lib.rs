//! l2xdp-decode: describing the L2TP packets of a capture — what the `l2xdp-decode` tool prints
//! and what tests use to check what the product emits. A tool beside the product: l2xdpd,
//! l2xdpctl and l2xdp-dataplane do not link it (it brings clap and serde_json), and it holds
//! no codec of its own — every layout is `l2xdp-wire`'s.
//!
//! Each record is unwrapped (Ethernet with up to two VLAN tags, raw IP, Linux cooked v1/v2),
//! then IPv4/IPv6, then UDP on a configured port or IP protocol 115, then L2TP:
//! - control messages are parsed and run through the validator, so an invalid one is reported
//!   with the StopCCN/CDN result and error code a receiver would answer with;
//! - L2TPv2 data is parsed down to PPP (LCP, PAP, CHAP, IPCP, IPv6CP decoded; IP sized);
//! - L2TPv3 data needs the session's cookie length and sublayer, which only the control
//!   connection tells: the decoder learns them from the Assigned Cookie and L2-Specific
//!   Sublayer AVPs it sees (RFC 3931 §5.4.4), or takes them from [`DecodeOptions`].

use std::collections::HashMap;
use std::net::IpAddr;

use serde::Serialize;

use l2xdp_wire::l2tp::avp::{Avp, AvpRepr};
use l2xdp_wire::l2tp::header::{
    self, ControlHeader, IpPayload, L2ssRepr, Transport, V2Packet, V2Repr,
};
use l2xdp_wire::l2tp::header::{Cookie, V3DataRepr, Version};
use l2xdp_wire::l2tp::message::{ControlMessage, ParseContext};
use l2xdp_wire::l2tp::validate::{self, Action};
use l2xdp_wire::l2tp::{IP_PROTOCOL, UDP_PORT};
use l2xdp_wire::net::ethernet::{self, EthernetFrame};
use l2xdp_wire::net::ip_proto;
use l2xdp_wire::net::ipv4::Ipv4Packet;
use l2xdp_wire::net::ipv6::Ipv6Packet;
use l2xdp_wire::net::udp::{self, UdpPacket};
use l2xdp_wire::pcap::{linktype, Record};
use l2xdp_wire::ppp::PppPacket;

/// What the decoder is told besides the capture.
#[derive(Debug, Clone)]
pub struct DecodeOptions {
    /// UDP ports that carry L2TP (either end); 1701 by default.
    pub udp_ports: Vec<u16>,
    /// The tunnel secret, to reveal hidden AVPs.
    pub secret: Option<Vec<u8>>,
    /// The L2TPv3 cookie length (0, 4 or 8) for sessions whose control messages are not in
    /// the capture; learned per session otherwise.
    pub cookie_len: Option<usize>,
    /// Whether L2TPv3 data carries the default L2-Specific Sublayer, for sessions whose control
    /// messages are not in the capture.
    pub l2ss: Option<bool>,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions {
            udp_ports: vec![UDP_PORT],
            secret: None,
            cookie_len: None,
            l2ss: None,
        }
    }
}

/// One decoded L2TP packet.
#[derive(Debug, Clone, Serialize)]
pub struct PacketReport {
    /// 1-based index of the record in the capture.
    pub index: usize,
    /// Capture time, nanoseconds since the epoch.
    pub time_ns: u64,
    /// Outer source address (and port over UDP).
    pub src: String,
    /// Outer destination address (and port over UDP).
    pub dst: String,
    /// UDP or IP protocol 115.
    pub transport: Transport,
    /// What the L2TP part holds.
    pub l2tp: L2tpReport,
    /// Whether a receiver would accept it.
    pub valid: bool,
    /// Why not, or a note on an accepted packet that a receiver ignores.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What a receiver would do about an invalid control message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
    /// The Result Code it would answer with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result_code: Option<u16>,
    /// The Error Code it would answer with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<u16>,
}

/// The L2TP part of a packet.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum L2tpReport {
    /// A control message (or a ZLB acknowledgement).
    Control {
        /// The header.
        header: ControlHeader,
        /// The message type's short name ("SCCRQ", "ZLB", ...).
        message_type: String,
        /// The AVPs in wire order.
        avps: Vec<AvpReport>,
    },
    /// L2TPv2 data: header and the PPP frame inside.
    DataV2 {
        /// The header.
        header: V2Repr,
        /// The PPP frame, when it parses.
        #[serde(skip_serializing_if = "Option::is_none")]
        ppp: Option<PppPacket>,
        /// Bytes after the L2TP header.
        payload_len: usize,
    },
    /// L2TPv3 data.
    DataV3 {
        /// The receiver's session ID.
        session_id: u32,
        /// The cookie (as long as configured or learned).
        cookie: Cookie,
        /// The default L2-Specific Sublayer, when in use.
        #[serde(skip_serializing_if = "Option::is_none")]
        l2ss: Option<L2ssRepr>,
        /// The pseudowire payload (an Ethernet frame for RFC 4719 pseudowires).
        payload_len: usize,
        /// A one-line description of an Ethernet payload.
        #[serde(skip_serializing_if = "Option::is_none")]
        inner: Option<String>,
    },
    /// Bytes that did not parse as L2TP at all.
    Undecodable {
        /// Bytes from the L2TP header on.
        len: usize,
    },
}

/// One AVP, by name.
#[derive(Debug, Clone, Serialize)]
pub struct AvpReport {
    /// The attribute's name ("Host Name"), or "Vendor 9 attribute 1" for unknown ones.
    pub name: String,
    /// Vendor ID (0 for IETF).
    pub vendor_id: u16,
    /// Attribute Type.
    pub attr_type: u16,
    /// M bit.
    pub mandatory: bool,
    /// H bit.
    pub hidden: bool,
    /// The typed value.
    pub value: Avp,
}

/// The state a decoder keeps across packets: what it learned of L2TPv3 sessions.
#[derive(Debug, Default)]
pub struct Decoder {
    opts: DecodeOptions,
    /// Receiver's session ID → (cookie length, sublayer on).
    v3_sessions: HashMap<u32, (usize, bool)>,
}

/// The outer layers of a packet, down to the L2TP bytes.
struct Outer<'a> {
    src: IpAddr,
    dst: IpAddr,
    ports: Option<(u16, u16)>,
    l2tp: &'a [u8],
}

impl Decoder {
    /// A decoder with these options.
    pub fn new(opts: DecodeOptions) -> Self {
        Decoder {
            opts,
            v3_sessions: HashMap::new(),
        }
    }

    /// Decodes one record; `None` when it is not L2TP (or not a link type this decoder knows).
    pub fn decode(&mut self, index: usize, rec: &Record) -> Option<PacketReport> {
        let ip = link_payload(rec.linktype, &rec.data)?;
        let outer = self.outer(ip)?;
        let (transport, fmt) = match outer.ports {
            Some((s, d)) => (
                Transport::Udp,
                (fmt_addr(outer.src, Some(s)), fmt_addr(outer.dst, Some(d))),
            ),
            None => (
                Transport::Ip,
                (fmt_addr(outer.src, None), fmt_addr(outer.dst, None)),
            ),
        };
        let mut report = PacketReport {
            index,
            time_ns: rec.timestamp_ns,
            src: fmt.0,
            dst: fmt.1,
            transport,
            l2tp: L2tpReport::Undecodable {
                len: outer.l2tp.len(),
            },
            valid: true,
            reason: None,
            action: None,
            result_code: None,
            error_code: None,
        };
        self.decode_l2tp(transport, outer.l2tp, &mut report);
        Some(report)
    }

    fn outer<'a>(&self, ip: &'a [u8]) -> Option<Outer<'a>> {
        let (src, dst, proto, payload) = match ip.first()? >> 4 {
            4 => {
                let p = Ipv4Packet::new_checked(ip).ok()?;
                // Only first fragments carry the UDP header; reassembly is out of scope.
                if p.frag_offset() != 0 {
                    return None;
                }
                let hl = p.header_len();
                let end = usize::from(p.total_len());
                (
                    IpAddr::V4(p.src()),
                    IpAddr::V4(p.dst()),
                    p.protocol(),
                    ip.get(hl..end)?,
                )
            }
            6 => {
                let p = Ipv6Packet::new_checked(ip).ok()?;
                let end = 40 + usize::from(p.payload_len());
                (
                    IpAddr::V6(p.src()),
                    IpAddr::V6(p.dst()),
                    p.next_header(),
                    ip.get(40..end)?,
                )
            }
            _ => return None,
        };
        match proto {
            ip_proto::UDP => {
                let u = UdpPacket::new_checked(payload).ok()?;
                let (sp, dp) = (u.src_port(), u.dst_port());
                let body = payload.get(udp::HEADER_LEN..usize::from(u.len()))?;
                if !self.opts.udp_ports.contains(&sp) && !self.opts.udp_ports.contains(&dp) {
                    return None;
                }
                Some(Outer {
                    src,
                    dst,
                    ports: Some((sp, dp)),
                    l2tp: body,
                })
            }
            IP_PROTOCOL => Some(Outer {
                src,
                dst,
                ports: None,
                l2tp: payload,
            }),
            _ => None,
        }
    }

    fn decode_l2tp(&mut self, transport: Transport, buf: &[u8], report: &mut PacketReport) {
        let invalid = |report: &mut PacketReport, why: String| {
            report.valid = false;
            report.reason = Some(why);
        };
        // Over IP, control messages follow a zero Session ID (RFC 3931 §4.1.1).
        let (control, version, l2tp) = match transport {
            Transport::Ip => match header::split_ip(buf) {
                Ok(IpPayload::Control(rest)) => (true, Version::V3, rest),
                Ok(IpPayload::Data { .. }) => (false, Version::V3, buf),
                Err(e) => return invalid(report, e.to_string()),
            },
            Transport::Udp => match header::peek(buf) {
                Ok((c, v)) => (c, v, buf),
                Err(e) => return invalid(report, e.to_string()),
            },
        };
        if control {
            self.decode_control(l2tp, report);
            return;
        }
        match version {
            Version::V2 => {
                let parsed = V2Packet::new_checked(l2tp).and_then(|p| {
                    let r = V2Repr::parse(&p)?;
                    let end = p.length().map_or(l2tp.len(), usize::from);
                    Ok((r, &l2tp[p.header_len()..end]))
                });
                match parsed {
                    Ok((header, payload)) => {
                        let ppp = PppPacket::parse(payload);
                        if let Err(e) = &ppp {
                            invalid(report, format!("PPP: {e}"));
                        }
                        report.l2tp = L2tpReport::DataV2 {
                            header,
                            ppp: ppp.ok(),
                            payload_len: payload.len(),
                        };
                    }
                    Err(e) => invalid(report, e.to_string()),
                }
            }
            Version::V3 => self.decode_v3_data(transport, l2tp, report),
        }
    }

    fn decode_control(&mut self, buf: &[u8], report: &mut PacketReport) {
        let secret = self.opts.secret.clone();
        let secret = secret.as_deref();
        // Whatever parses is shown, valid or not.
        let parsed = ControlMessage::parse(buf, &ParseContext { secret });
        if let Ok(msg) = &parsed {
            self.learn(msg);
            report.l2tp = L2tpReport::Control {
                header: msg.header,
                message_type: if msg.is_zlb() {
                    "ZLB".to_string()
                } else {
                    msg.message_type()
                        .map_or_else(|| "?".to_string(), |t| t.name().to_string())
                },
                avps: msg
                    .avps
                    .iter()
                    .map(|a| avp_report(a, msg.header.version))
                    .collect(),
            };
        }
        if let Err(v) = validate::validate_bytes(buf, secret) {
            report.action = Some(v.action);
            if v.action == Action::Ignore {
                report.reason = Some(format!("ignored by a receiver: {}", v.message));
            } else {
                report.valid = false;
                report.reason = Some(v.message);
                report.result_code = Some(v.result_code);
                report.error_code = Some(v.error_code);
            }
        }
    }

    /// Learns an L2TPv3 session's cookie and sublayer from ICRQ/ICRP/ICCN/OCRQ/OCRP/OCCN: the
    /// sender's Local Session ID receives data with the cookie it assigned (RFC 3931 §5.4.4).
    fn learn(&mut self, msg: &ControlMessage) {
        if msg.header.version != Version::V3 {
            return;
        }
        let mut local = None;
        let mut remote = None;
        let mut cookie = None;
        let mut l2ss = None;
        for a in &msg.avps {
            match &a.avp {
                Avp::LocalSessionId(id) => local = Some(*id),
                Avp::RemoteSessionId(id) => remote = Some(*id),
                Avp::AssignedCookie(c) => cookie = Some(c.len()),
                Avp::L2SpecificSublayer(t) => l2ss = Some(*t == 1),
                _ => {}
            }
        }
        let Some(local) = local.filter(|&id| id != 0) else {
            return;
        };
        let entry = self.v3_sessions.entry(local).or_insert((0, false));
        if let Some(c) = cookie {
            entry.0 = c;
        }
        if let Some(s) = l2ss {
            entry.1 = s;
            // The sublayer applies to both directions of the pseudowire.
            if let Some(r) = remote.filter(|&id| id != 0) {
                self.v3_sessions.entry(r).or_insert((0, false)).1 = s;
            }
        }
    }

    fn decode_v3_data(&mut self, transport: Transport, buf: &[u8], report: &mut PacketReport) {
        let session_hint = match transport {
            Transport::Udp => buf.get(4..8),
            Transport::Ip => buf.get(0..4),
        }
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
        let learned = session_hint.and_then(|id| self.v3_sessions.get(&id).copied());
        let cookie_len = self.opts.cookie_len.or(learned.map(|l| l.0)).unwrap_or(0);
        let with_l2ss = self.opts.l2ss.or(learned.map(|l| l.1)).unwrap_or(false);
        let (data, rest) = match V3DataRepr::parse(buf, transport, cookie_len) {
            Ok(x) => x,
            Err(e) => {
                report.valid = false;
                report.reason = Some(e.to_string());
                return;
            }
        };
        let (l2ss, payload) = if with_l2ss {
            match L2ssRepr::parse(rest) {
                Ok((s, p)) => (Some(s), p),
                Err(e) => {
                    report.valid = false;
                    report.reason = Some(e.to_string());
                    return;
                }
            }
        } else {
            (None, rest)
        };
        let inner = EthernetFrame::new_checked(payload).ok().map(|f| {
            format!(
                "Ethernet {} > {} type {:#06x}",
                f.src(),
                f.dst(),
                f.ethertype()
            )
        });
        report.l2tp = L2tpReport::DataV3 {
            session_id: data.session_id,
            cookie: data.cookie,
            l2ss,
            payload_len: payload.len(),
            inner,
        };
    }
}

fn avp_report(a: &AvpRepr, version: Version) -> AvpReport {
    let (vendor_id, attr_type) = a.avp.attr();
    AvpReport {
        name: a.avp.name(version),
        vendor_id,
        attr_type,
        mandatory: a.mandatory,
        hidden: a.hidden,
        value: a.avp.clone(),
    }
}

/// The IP packet inside a record of a link type this decoder knows.
fn link_payload(lt: u32, data: &[u8]) -> Option<&[u8]> {
    match lt {
        linktype::ETHERNET => {
            let f = EthernetFrame::new_checked(data).ok()?;
            match f.ethertype() {
                ethernet::ethertype::IPV4 | ethernet::ethertype::IPV6 => data.get(f.header_len()..),
                _ => None,
            }
        }
        linktype::RAW => Some(data),
        linktype::LINUX_SLL => {
            let proto = u16::from_be_bytes([*data.get(14)?, *data.get(15)?]);
            matches!(proto, 0x0800 | 0x86dd).then(|| data.get(16..))?
        }
        linktype::LINUX_SLL2 => {
            let proto = u16::from_be_bytes([*data.first()?, *data.get(1)?]);
            matches!(proto, 0x0800 | 0x86dd).then(|| data.get(20..))?
        }
        _ => None,
    }
}

fn fmt_addr(a: IpAddr, port: Option<u16>) -> String {
    match (a, port) {
        (IpAddr::V4(a), Some(p)) => format!("{a}:{p}"),
        (IpAddr::V6(a), Some(p)) => format!("[{a}]:{p}"),
        (a, None) => a.to_string(),
    }
}

/// A readable rendering: one line per packet, then one indented line per AVP.
pub fn to_text(r: &PacketReport) -> String {
    let mut s = format!("#{} {} > {} ", r.index, r.src, r.dst);
    match &r.l2tp {
        L2tpReport::Control {
            header,
            message_type,
            avps,
        } => {
            let v = if header.version == Version::V2 { 2 } else { 3 };
            s.push_str(&format!(
                "L2TPv{v} control {message_type} tunnel={} ",
                header.tunnel_id
            ));
            if header.version == Version::V2 {
                s.push_str(&format!("session={} ", header.session_id));
            }
            s.push_str(&format!("Ns={} Nr={}", header.ns, header.nr));
            push_verdict(&mut s, r);
            for a in avps {
                let flags = match (a.mandatory, a.hidden) {
                    (true, true) => "MH",
                    (true, false) => "M ",
                    (false, true) => " H",
                    (false, false) => "  ",
                };
                let value = value_text(&a.value);
                s.push_str(&format!(
                    "\n    [{flags}] {} ({}): {value}",
                    a.name, a.attr_type
                ));
            }
        }
        L2tpReport::DataV2 {
            header,
            ppp,
            payload_len,
        } => {
            s.push_str(&format!(
                "L2TPv2 data tunnel={} session={}",
                header.tunnel_id, header.session_id
            ));
            if let Some((ns, _)) = header.sequence {
                s.push_str(&format!(" Ns={ns}"));
            }
            match ppp {
                Some(p) => s.push_str(&format!(" {}", describe_ppp(p))),
                None => s.push_str(&format!(" {payload_len} bytes")),
            }
            push_verdict(&mut s, r);
        }
        L2tpReport::DataV3 {
            session_id,
            cookie,
            l2ss,
            payload_len,
            inner,
        } => {
            s.push_str(&format!("L2TPv3 data session={session_id}"));
            if !cookie.is_empty() {
                s.push_str(&format!(
                    " cookie={}",
                    serde_json::to_string(cookie).unwrap_or_default()
                ));
            }
            if let Some(L2ssRepr { sequence: Some(n) }) = l2ss {
                s.push_str(&format!(" seq={n}"));
            }
            match inner {
                Some(i) => s.push_str(&format!(" {i}")),
                None => s.push_str(&format!(" {payload_len} bytes")),
            }
            push_verdict(&mut s, r);
        }
        L2tpReport::Undecodable { len } => {
            s.push_str(&format!("L2TP? {len} bytes"));
            push_verdict(&mut s, r);
        }
    }
    s
}

/// An AVP's value without its variant name: `"lac.example.net"`, `4`, `{"control":true,...}`.
fn value_text(v: &Avp) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::Object(o)) if o.len() == 1 => o
            .values()
            .next()
            .map(ToString::to_string)
            .unwrap_or_default(),
        Ok(other) => other.to_string(),
        Err(e) => format!("<{e}>"),
    }
}

fn describe_ppp(p: &PppPacket) -> String {
    let proto = l2xdp_wire::ppp::protocol_name(p.body.protocol())
        .map_or_else(|| format!("{:#06x}", p.body.protocol()), str::to_string);
    let body = serde_json::to_value(&p.body)
        .ok()
        .and_then(|v| v.as_object().and_then(|o| o.values().next().cloned()))
        .map(|v| v.to_string())
        .unwrap_or_default();
    format!("PPP {proto} {body}")
}

fn push_verdict(s: &mut String, r: &PacketReport) {
    if r.valid {
        s.push_str("  [valid]");
        if let Some(note) = &r.reason {
            s.push_str(&format!(" ({note})"));
        }
    } else {
        s.push_str("  [INVALID");
        if let (Some(rc), Some(ec)) = (r.result_code, r.error_code) {
            s.push_str(&format!(" result={rc} error={ec}"));
        }
        if let Some(why) = &r.reason {
            s.push_str(&format!(": {why}"));
        }
        s.push(']');
    }
}
