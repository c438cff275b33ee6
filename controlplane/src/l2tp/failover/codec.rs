//! How a persisted record is written: one byte of format version, then the record in
//! [postcard] (a compact, stable binary serde format: varint integers, length-prefixed bytes,
//! no field names). Generic over the record type: any `Serialize + Deserialize` record of the
//! store uses it as it is.
//!
//! | first byte | format | read as |
//! |------------|--------|---------|
//! | `0x02` ([`FORMAT`]) | 2: binary (this module) | the record |
//! | `{` (`0x7B`) | 1: a JSON document `{"format":1,"record":…}` (l2xdpd before format 2) | the record, **migrated**: [`super::RedbStore::open_checked`] rewrites the store in format 2 |
//! | anything else | another l2xdpd's format | refused ([`super::StoreError::Format`]), naming the remedy |
//!
//! Migrating rather than refusing format 1: an upgrade of l2xdpd is a restart, and a restart
//! is what the store is for (the sessions of the old process must survive it).
//!
//! [postcard]: https://docs.rs/postcard

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The format written: the first byte of every record.
pub const FORMAT: u8 = 2;
/// The JSON format of l2xdpd before [`FORMAT`] (read and migrated).
pub const FORMAT_JSON: u32 = 1;

/// Why a record does not decode.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// An empty value.
    #[error("empty record")]
    Empty,
    /// A record of a format this l2xdpd does not read.
    #[error("format {0}")]
    Format(u32),
    /// The binary record is damaged.
    #[error("binary record (format {FORMAT}): {0}")]
    Binary(#[from] postcard::Error),
    /// The JSON record (format 1) is damaged.
    #[error("JSON record (format {FORMAT_JSON}): {0}")]
    Json(#[from] serde_json::Error),
}

/// What [`decode`] read.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded<T> {
    /// The record.
    pub record: T,
    /// It was in the JSON format ([`FORMAT_JSON`]): to be rewritten.
    pub legacy: bool,
}

/// `record` as a store value: [`FORMAT`], then postcard.
pub fn encode<T: Serialize + ?Sized>(record: &T) -> Result<Vec<u8>, CodecError> {
    Ok(postcard::to_extend(record, vec![FORMAT])?)
}

/// A store value as a record (see the module documentation for the formats read).
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<Decoded<T>, CodecError> {
    match bytes.first() {
        None => Err(CodecError::Empty),
        Some(&FORMAT) => Ok(Decoded {
            record: postcard::from_bytes(&bytes[1..])?,
            legacy: false,
        }),
        Some(b'{') => {
            #[derive(Deserialize)]
            struct FormatOnly {
                format: u32,
            }
            #[derive(Deserialize)]
            struct FileRecord<T> {
                record: T,
            }
            let f: FormatOnly = serde_json::from_slice(bytes)?;
            if f.format != FORMAT_JSON {
                return Err(CodecError::Format(f.format));
            }
            let r: FileRecord<T> = serde_json::from_slice(bytes)?;
            Ok(Decoded {
                record: r.record,
                legacy: true,
            })
        }
        Some(&b) => Err(CodecError::Format(u32::from(b))),
    }
}

/// A value encoded without the format byte (for data nested in a record, which carries it):
/// postcard.
pub fn to_bytes<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
    Ok(postcard::to_allocvec(value)?)
}

/// The inverse of [`to_bytes`].
pub fn from_bytes<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    Ok(postcard::from_bytes(bytes)?)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::{
        RecordTransport, SequenceRecord, SessionRecord, TunnelRecord, UnackedMessage,
    };
    use super::*;
    use crate::l2tp::{CallKind, FailoverCapability, ProxyValues};

    fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(any::<u8>(), 0..max)
    }

    fn failover() -> impl Strategy<Value = Option<FailoverCapability>> {
        proptest::option::of((any::<bool>(), any::<bool>(), any::<u32>()).prop_map(
            |(control, data, recovery_time_ms)| FailoverCapability {
                control,
                data,
                recovery_time_ms,
            },
        ))
    }

    prop_compose! {
        fn tunnel()(
            ids in (any::<u32>(), any::<u32>()),
            // serde writes an IPv6 address and port, not its flow label or scope ID (a peer
            // is never addressed by a link-local address with a scope).
            addr in any::<std::net::SocketAddr>().prop_map(|a| match a {
                std::net::SocketAddr::V6(v6) => std::net::SocketAddr::new((*v6.ip()).into(), v6.port()),
                v4 => v4,
            }),
            ip in any::<bool>(),
            version in any::<u8>(),
            initiator in any::<bool>(),
            ours in failover(),
            theirs in failover(),
            host_name in ".{0,20}",
            router_id in any::<u32>(),
            peer_host_name in bytes(40),
            peer_router_id in any::<Option<u32>>(),
            secret_ref in proptest::option::of("[0-9a-f]{32}"),
            seq in (any::<u16>(), any::<u16>(), any::<u16>()),
        ) -> TunnelRecord {
            TunnelRecord {
                id: ids.0,
                peer_tunnel_id: ids.1,
                peer_addr: addr,
                transport: if ip { RecordTransport::Ip } else { RecordTransport::Udp },
                version,
                initiator,
                our_failover: ours,
                peer_failover: theirs,
                host_name,
                router_id,
                peer_host_name,
                peer_router_id,
                secret_ref,
                peer_window: seq.0,
                ns: seq.1,
                nr: seq.2,
            }
        }
    }

    prop_compose! {
        fn proxy()(
            confreqs in (proptest::option::of(bytes(30)), proptest::option::of(bytes(30)), proptest::option::of(bytes(30))),
            authen_type in any::<Option<u16>>(),
            authen in (proptest::option::of(bytes(20)), proptest::option::of(bytes(20)), proptest::option::of(bytes(20))),
            authen_id in any::<Option<u8>>(),
        ) -> ProxyValues {
            ProxyValues {
                initial_received_confreq: confreqs.0,
                last_sent_confreq: confreqs.1,
                last_received_confreq: confreqs.2,
                authen_type,
                authen_name: authen.0,
                authen_challenge: authen.1,
                authen_id,
                authen_response: authen.2,
            }
        }
    }

    prop_compose! {
        fn session()(
            ids in (any::<u32>(), any::<u32>(), any::<u32>()),
            outgoing in any::<bool>(),
            initiator in any::<bool>(),
            cookies in (bytes(9), bytes(9)),
            l2ss in (any::<u16>(), any::<u16>(), any::<u16>(), any::<u16>()),
            pw_type in any::<Option<u16>>(),
            numbers in (bytes(20), bytes(20), bytes(20), bytes(20), bytes(20)),
            proxy in proxy(),
            speeds in (any::<Option<u64>>(), any::<Option<u64>>()),
            app in bytes(80),
        ) -> SessionRecord {
            SessionRecord {
                tunnel: ids.0,
                id: ids.1,
                peer_id: ids.2,
                call: if outgoing { CallKind::Outgoing } else { CallKind::Incoming },
                initiator,
                cookie_rx: cookies.0,
                cookie_tx: cookies.1,
                our_l2ss: l2ss.0,
                peer_l2ss: l2ss.1,
                our_seq: l2ss.2,
                peer_seq: l2ss.3,
                pw_type,
                calling_number: numbers.0,
                called_number: numbers.1,
                sub_address: numbers.2,
                remote_end_id: numbers.3,
                private_group_id: numbers.4,
                proxy,
                tx_speed: speeds.0,
                rx_speed: speeds.1,
                app: app.into_boxed_slice(),
            }
        }
    }

    proptest! {
        #[test]
        fn tunnel_records_round_trip(t in tunnel()) {
            let v = encode(&t).expect("encode");
            prop_assert_eq!(v[0], FORMAT);
            let d = decode::<TunnelRecord>(&v).expect("decode");
            prop_assert!(!d.legacy);
            prop_assert_eq!(d.record, t);
        }

        #[test]
        fn session_records_round_trip(s in session()) {
            let v = encode(&s).expect("encode");
            let d = decode::<SessionRecord>(&v).expect("decode");
            prop_assert!(!d.legacy);
            prop_assert_eq!(d.record, s);
        }

        /// The transparent-resume record, with and without v3 nonces (an optional field
        /// skipped when empty would not decode: postcard is not self-describing).
        #[test]
        fn sequence_records_round_trip(
            tunnel in any::<u32>(), ns in any::<u16>(), nr in any::<u16>(),
            unacked in proptest::collection::vec(
                (proptest::option::of(any::<u16>()), any::<u16>(), bytes(64)), 0..4),
            nonces in proptest::option::of((bytes(16), bytes(16))),
        ) {
            let q = SequenceRecord {
                tunnel,
                ns,
                nr,
                unacked: unacked
                    .into_iter()
                    .map(|(ns, session_id, avps)| UnackedMessage { ns, session_id, avps })
                    .collect(),
                nonces,
            };
            let d = decode::<SequenceRecord>(&encode(&q).expect("encode")).expect("decode");
            prop_assert_eq!(d.record, q);
        }

        /// Whatever the bytes (a damaged file), decoding is an error or a record: never a
        /// panic, and never a huge allocation.
        #[test]
        fn any_bytes_decode_without_a_panic(mut v in bytes(200), first in 0u8..4) {
            if let Some(b) = v.first_mut() {
                *b = first;
            }
            let _ = decode::<SessionRecord>(&v);
            let _ = decode::<TunnelRecord>(&v);
        }
    }

    /// A typical LNS session (v2, incoming call, no cookies, PPP state of about 40 bytes):
    /// the record is about 60 bytes (format 1's JSON: about 1 KB).
    #[test]
    fn a_typical_session_record_is_small() {
        let s = SessionRecord {
            tunnel: 40_000,
            id: 30_000,
            peer_id: 12_345,
            call: CallKind::Incoming,
            initiator: false,
            cookie_rx: Vec::new(),
            cookie_tx: Vec::new(),
            our_l2ss: 0,
            peer_l2ss: 0,
            our_seq: 0,
            peer_seq: 0,
            pw_type: None,
            calling_number: b"0123456789".to_vec(),
            called_number: Vec::new(),
            sub_address: Vec::new(),
            remote_end_id: Vec::new(),
            private_group_id: Vec::new(),
            proxy: ProxyValues::default(),
            tx_speed: Some(100_000_000),
            rx_speed: None,
            app: vec![7; 40].into_boxed_slice(),
        };
        let v = encode(&s).expect("encode");
        assert!(v.len() < 90, "{} bytes", v.len());
    }

    #[test]
    fn json_format_1_is_read_as_legacy_and_other_formats_refused() {
        let t = super::super::tests::tunnel(3);
        let json =
            serde_json::to_vec(&serde_json::json!({"format": 1, "record": t})).expect("json");
        let d = decode::<TunnelRecord>(&json).expect("format 1");
        assert!(d.legacy);
        assert_eq!(d.record, t);
        let other =
            serde_json::to_vec(&serde_json::json!({"format": 7, "record": t})).expect("json");
        assert!(matches!(
            decode::<TunnelRecord>(&other),
            Err(CodecError::Format(7))
        ));
        let mut v = encode(&t).expect("encode");
        v[0] = 3;
        assert!(matches!(
            decode::<TunnelRecord>(&v),
            Err(CodecError::Format(3))
        ));
        assert!(matches!(
            decode::<TunnelRecord>(&[]),
            Err(CodecError::Empty)
        ));
    }
}
