//! The config as serde-json-core reads it: fixed-capacity raw types, every field optional, no
//! validation (that is `parse`'s).

use heapless::{String, Vec};
use serde::de::{Deserializer, IgnoredAny, Visitor};
use serde::Deserialize;

use super::json::{MAX_CHAINS, MAX_SERVERS, PATH_STR_LEN, RAW_STR_LEN};
use super::model::{MAX_CLUSTERS, MAX_HOSTS, MAX_LISTENERS};
use crate::sansio::limits::{CIDR_ADDR_LEN, MAX_CIDRS, MAX_ROUTES};
use core::fmt;

pub(super) type Raw = String<RAW_STR_LEN>;
pub(super) type RawPath = String<PATH_STR_LEN>;

#[derive(Deserialize)]
pub(super) struct RawConfig {
    pub(super) servers: Option<Vec<RawServer, MAX_SERVERS>>,
    pub(super) cluster_manager: Option<RawClusterManager>,
}

#[derive(Deserialize)]
pub(super) struct RawServer {
    pub(super) default_log_level: Option<Raw>,
    pub(super) graceful_timeout: Option<RawDur>,
    pub(super) listeners: Option<Vec<RawListener, MAX_LISTENERS>>,
}

#[derive(Deserialize)]
pub(super) struct RawListener {
    pub(super) name: Option<Raw>,
    pub(super) address: Option<RawPath>,
    pub(super) bind_port: Option<bool>,
    pub(super) network: Option<Raw>,
    pub(super) listener_filters: Option<NonEmpty>,
    pub(super) connection_idle_timeout: Option<RawDur>,
    pub(super) filter_chains: Option<Vec<RawChain, MAX_CHAINS>>,
}

#[derive(Deserialize)]
pub(super) struct RawChain {
    pub(super) tls_context: Option<RawTls>,
    pub(super) tls_context_set: Option<NonEmpty>,
    pub(super) filters: Option<RawFilters>,
}

/// MOSN's TLS config: only `status: true` turns TLS on; `{}` and `status: false` are plaintext.
#[derive(Deserialize, Clone, Copy)]
pub(super) struct RawTls {
    pub(super) status: Option<bool>,
}

impl RawTls {
    pub(super) fn on(t: &Option<RawTls>) -> bool {
        t.as_ref().and_then(|t| t.status).unwrap_or(false)
    }
}

#[derive(Deserialize)]
pub(super) struct RawFilter {
    #[serde(rename = "type")]
    pub(super) kind: Option<Raw>,
    pub(super) config: Option<RawTcpProxy>,
}

#[derive(Deserialize)]
pub(super) struct RawTcpProxy {
    /// MOSN's own marshalling writes `Cluster` (the Go field name; Go's JSON reading ignores case).
    #[serde(alias = "Cluster")]
    pub(super) cluster: Option<Raw>,
    #[serde(alias = "Routes")]
    pub(super) routes: Option<Vec<RawRoute, MAX_ROUTES>>,
}

/// A route as MOSN reads it: its Go type (`StreamRoute`) has no JSON tags, so the keys are the
/// Go field names (`SourceAddrs`, ...), which MOSN's marshalling writes. The snake_case
/// spellings some MOSN samples show are never read by MOSN; they are kept to refuse them.
#[derive(Deserialize)]
pub(super) struct RawRoute {
    #[serde(alias = "Cluster")]
    pub(super) cluster: Option<Raw>,
    #[serde(rename = "SourceAddrs")]
    pub(super) sources: Option<Vec<RawCidr, MAX_CIDRS>>,
    #[serde(rename = "DestinationAddrs")]
    pub(super) destinations: Option<Vec<RawCidr, MAX_CIDRS>>,
    #[serde(rename = "SourcePort")]
    pub(super) source_port: Option<Raw>,
    #[serde(rename = "DestinationPort")]
    pub(super) destination_port: Option<Raw>,
    #[serde(rename = "source_addrs")]
    pub(super) snake_sources: Option<IgnoredAny>,
    #[serde(rename = "destination_addrs")]
    pub(super) snake_destinations: Option<IgnoredAny>,
    #[serde(rename = "source_port")]
    pub(super) snake_source_port: Option<IgnoredAny>,
    #[serde(rename = "destination_port")]
    pub(super) snake_destination_port: Option<IgnoredAny>,
}

/// MOSN's `CidrRange` (`IpNet`, which its marshalling also writes, is derived and skipped).
#[derive(Deserialize)]
pub(super) struct RawCidr {
    #[serde(alias = "Address")]
    pub(super) address: Option<String<CIDR_ADDR_LEN>>,
    #[serde(alias = "Length")]
    pub(super) length: Option<u64>,
}

#[derive(Deserialize)]
pub(super) struct RawClusterManager {
    pub(super) clusters: Option<Vec<RawCluster, MAX_CLUSTERS>>,
    /// MOSN loads more clusters from the files of this directory.
    pub(super) clusters_configs: Option<Raw>,
    /// Used towards the hosts of clusters with `cluster_manager_tls`.
    pub(super) tls_context: Option<RawTls>,
}

#[derive(Deserialize)]
pub(super) struct RawCluster {
    #[serde(rename = "Name")]
    pub(super) name_upper: Option<Raw>,
    pub(super) name: Option<Raw>,
    #[serde(rename = "type")]
    pub(super) kind: Option<Raw>,
    pub(super) lb_type: Option<Raw>,
    pub(super) tls_context: Option<RawTls>,
    pub(super) hosts: Option<Vec<RawHost, MAX_HOSTS>>,
    pub(super) connect_timeout: Option<RawDur>,
    /// SO_MARK on upstream connections (policy routing).
    pub(super) mark: Option<u64>,
    /// Connect upstream with `cluster_manager.tls_context`.
    pub(super) cluster_manager_tls: Option<bool>,
}

/// MOSN's `health_check` (`HealthCheckConfig`); the fields baton uses. Read from the captured
/// text (`json::CAPTURED`), not by serde.
#[derive(Default)]
pub(super) struct RawHealthCheck {
    pub(super) protocol: Option<Raw>,
    pub(super) service_name: Option<Raw>,
    pub(super) timeout: Option<RawDur>,
    pub(super) interval: Option<RawDur>,
    pub(super) healthy_threshold: Option<u64>,
    pub(super) unhealthy_threshold: Option<u64>,
}

#[derive(Deserialize)]
pub(super) struct RawHost {
    pub(super) address: Option<RawPath>,
    pub(super) weight: Option<u64>,
}

/// The admin's `socket_address`, read from the captured text.
pub(super) struct RawSocketAddress {
    pub(super) address: Option<Raw>,
    pub(super) port_value: Option<u64>,
}

/// baton's own settings, read from the captured text.
#[derive(Default)]
pub(super) struct RawBaton {
    pub(super) runtime_dir: Option<RawPath>,
    pub(super) pid_file: Option<RawPath>,
    pub(super) max_connections: Option<u64>,
    pub(super) buffer_size: Option<u64>,
    pub(super) backlog: Option<u64>,
    pub(super) connect_timeout: Option<RawDur>,
    pub(super) idle_timeout: Option<RawDur>,
    pub(super) drain_timeout: Option<RawDur>,
    pub(super) handoff_timeout: Option<RawDur>,
    pub(super) connect_attempts: Option<u64>,
    pub(super) fail_threshold: Option<u64>,
    pub(super) down_time: Option<RawDur>,
    pub(super) max_draining: Option<u64>,
    pub(super) transfer_connections: Option<bool>,
    pub(super) splice: Option<bool>,
    pub(super) log: Option<Raw>,
}

/// A duration as MOSN's `DurationConfig` takes it: a string, or the bare number `0`. The JSON
/// pre-pass (`Kind::Dur`) has already refused any other number; serde-json-core cannot read "a
/// string or a number" (no `deserialize_any`), but its `deserialize_ignored_any` hands a string to
/// `visit_str` and skips a number with `visit_unit`, which is all this needs.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum RawDur {
    Text(Raw),
    Zero,
}

impl<'de> Deserialize<'de> for RawDur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawDur;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<RawDur, E> {
                Raw::try_from(s).map(RawDur::Text).map_err(|_| E::custom("duration too long"))
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<RawDur, E> {
                Ok(RawDur::Zero)
            }
        }
        d.deserialize_ignored_any(V)
    }
}

/// A chain's filters, read one at a time and kept only as far as `parse` needs them: the first
/// filter that is not a `tcp_proxy` (refused by name), else the first `tcp_proxy` (the one
/// that takes the stream, as in MOSN). Keeping every filter at full capacity would multiply the
/// raw config (it is built on the stack) by `MAX_FILTERS`; the JSON pre-pass bounds the count.
#[derive(Default)]
pub(super) struct RawFilters {
    /// Index and `type` of the first filter that is not a `tcp_proxy`.
    pub(super) other: Option<(usize, Raw)>,
    /// Index and config of the first `tcp_proxy`.
    pub(super) proxy: Option<(usize, Option<RawTcpProxy>)>,
}

impl<'de> Deserialize<'de> for RawFilters {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawFilters;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array of filters")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut s: A) -> Result<RawFilters, A::Error> {
                let mut out = RawFilters::default();
                let mut i = 0;
                while let Some(f) = s.next_element::<RawFilter>()? {
                    match f.kind {
                        Some(k) if k == "tcp_proxy" => {
                            out.proxy.get_or_insert((i, f.config));
                        }
                        k => {
                            out.other.get_or_insert((i, k.unwrap_or_default()));
                        }
                    }
                    i += 1;
                }
                Ok(out)
            }
        }
        d.deserialize_seq(V)
    }
}

/// A prometheus sink (`metrics.sinks[]`), read from the captured text.
#[derive(Default)]
pub(super) struct RawSink {
    pub(super) kind: Option<Raw>,
    pub(super) port: Option<u64>,
    pub(super) endpoint: Option<Raw>,
    pub(super) export_url: Option<Raw>,
}

/// The values `json::check_capturing` kept, with the text they point into; decoded here
/// (the pre-pass has checked each one's JSON type against the schema).
pub(super) struct Captured<'t> {
    pub(super) text: &'t [u8],
    pub(super) caps: super::json::Captures,
}

/// Capture ids (positions in `json::CAPTURED`).
pub(super) mod cap {
    pub const HEALTH: usize = 0;
    pub const HC_PROTOCOL: usize = 1;
    pub const HC_SERVICE: usize = 2;
    pub const HC_TIMEOUT: usize = 3;
    pub const HC_INTERVAL: usize = 4;
    pub const HC_HEALTHY: usize = 5;
    pub const HC_UNHEALTHY: usize = 6;
    pub const CB_MAX_CONNECTIONS: usize = 7;
    pub const SINK: usize = 8;
    pub const SINK_TYPE: usize = 9;
    pub const SINK_PORT: usize = 10;
    pub const SINK_ENDPOINT: usize = 11;
    pub const SINK_EXPORT_URL: usize = 12;
    pub const ADMIN: usize = 13;
    pub const ADMIN_ADDRESS: usize = 14;
    pub const ADMIN_PORT: usize = 15;
    pub const PID: usize = 16;
    pub const BATON: usize = 17;
    /// `baton.*` in `json::CAPTURED` order, from `runtime_dir` (18) to `splice` (32).
    pub const B_RUNTIME_DIR: usize = 18;
    pub const B_PID_FILE: usize = 19;
    pub const B_MAX_CONNECTIONS: usize = 20;
    pub const B_BUFFER_SIZE: usize = 21;
    pub const B_BACKLOG: usize = 22;
    pub const B_CONNECT_TIMEOUT: usize = 23;
    pub const B_IDLE_TIMEOUT: usize = 24;
    pub const B_DRAIN_TIMEOUT: usize = 25;
    pub const B_HANDOFF_TIMEOUT: usize = 26;
    pub const B_CONNECT_ATTEMPTS: usize = 27;
    pub const B_FAIL_THRESHOLD: usize = 28;
    pub const B_DOWN_TIME: usize = 29;
    pub const B_MAX_DRAINING: usize = 30;
    pub const B_TRANSFER: usize = 31;
    pub const B_SPLICE: usize = 32;
    pub const B_LOG: usize = 33;
    pub const ACCESS_LOG: usize = 34;
    pub const AL_PATH: usize = 35;
    pub const AL_FORMAT: usize = 36;
    pub const ORIGINAL_DST: usize = 37;
}

impl Captured<'_> {
    fn raw(&self, id: usize, idx: [u16; 2]) -> Option<&[u8]> {
        self.caps.get(self.text, id, idx).filter(|t| *t != b"null")
    }

    pub(super) fn present(&self, id: usize, idx: [u16; 2]) -> bool {
        self.raw(id, idx).is_some()
    }

    /// A switch MOSN has written both as a bool and as a string (`use_original_dst`: a bool
    /// before MOSN 1.2, `"tproxy"`, `"redirect"` or `""` since): on for `true` or a non-empty
    /// string, off for `false`, `""` or absent; `Err` for anything else (a number, an object),
    /// which neither MOSN version loads.
    pub(super) fn on(&self, id: usize, idx: [u16; 2]) -> Result<bool, ()> {
        match self.raw(id, idx) {
            None | Some(b"false") => Ok(false),
            Some(b"true") => Ok(true),
            Some(t) if t.first() == Some(&b'"') => Ok(t.len() > 2),
            Some(_) => Err(()),
        }
    }

    /// A string, with JSON's short escapes decoded (a `\uXXXX` one loses its backslash).
    pub(super) fn str(&self, id: usize, idx: [u16; 2]) -> Option<Raw> {
        self.string(id, idx)
    }

    /// A path-length string (`runtime_dir`, `pid_file`, `pid`).
    pub(super) fn path(&self, id: usize, idx: [u16; 2]) -> Option<RawPath> {
        self.string(id, idx)
    }

    /// An access log format (up to `ACCESS_FORMAT_LEN` bytes).
    pub(super) fn format(
        &self,
        id: usize,
        idx: [u16; 2],
    ) -> Option<String<{ crate::sansio::limits::ACCESS_FORMAT_LEN }>> {
        self.string(id, idx)
    }

    /// `true` or `false`.
    pub(super) fn bool(&self, id: usize, idx: [u16; 2]) -> Option<bool> {
        self.raw(id, idx).map(|t| t == b"true")
    }

    fn string<const N: usize>(&self, id: usize, idx: [u16; 2]) -> Option<String<N>> {
        let t = self.raw(id, idx)?;
        let inner = t.strip_prefix(b"\"")?.strip_suffix(b"\"")?;
        let mut out = String::<N>::new();
        let mut i = 0;
        while i < inner.len() {
            let c = match inner[i] {
                b'\\' => {
                    i += 2;
                    match *inner.get(i - 1)? {
                        b'n' => '\n',
                        b't' => '\t',
                        b'r' => '\r',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'u' => {
                            let (c, used) = unicode_escape(&inner[i..]);
                            i += used;
                            c
                        }
                        other => other as char,
                    }
                }
                _ => {
                    // one UTF-8 character (the text is UTF-8: the pre-pass read it as str)
                    let len = utf8_len(inner[i]);
                    let ch = core::str::from_utf8(inner.get(i..i + len)?).ok()?.chars().next()?;
                    i += len;
                    ch
                }
            };
            out.push(c).ok()?;
        }
        Some(out)
    }

    /// A non-negative integer (the pre-pass allows nothing else here); saturates.
    pub(super) fn u64(&self, id: usize, idx: [u16; 2]) -> Option<u64> {
        let t = self.raw(id, idx)?;
        Some(t.iter().fold(0u64, |n, d| n.saturating_mul(10).saturating_add((d - b'0') as u64)))
    }

    /// A duration: a string, or the bare number 0 (`Kind::Dur`).
    pub(super) fn dur(&self, id: usize, idx: [u16; 2]) -> Option<RawDur> {
        match self.raw(id, idx)? {
            b"0" | b"-0" => Some(RawDur::Zero),
            _ => self.str(id, idx).map(RawDur::Text),
        }
    }
}

/// The character of a `\\uXXXX` escape (`rest` starts at the hex digits) and the bytes it used
/// past the `u`, joining a surrogate pair; a lone surrogate or bad hex reads as U+FFFD.
fn unicode_escape(rest: &[u8]) -> (char, usize) {
    let hex = |b: &[u8]| core::str::from_utf8(b.get(..4)?).ok().and_then(|h| u32::from_str_radix(h, 16).ok());
    let Some(hi) = hex(rest) else { return ('\u{fffd}', 0) };
    if (0xD800..0xDC00).contains(&hi) && rest.get(4..6) == Some(b"\\u") {
        if let Some(lo) = hex(&rest[6..]).filter(|lo| (0xDC00..0xE000).contains(lo)) {
            let c = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
            return (char::from_u32(c).unwrap_or('\u{fffd}'), 10);
        }
    }
    (char::from_u32(hi).unwrap_or('\u{fffd}'), 4)
}

fn utf8_len(first: u8) -> usize {
    match first {
        0xF0.. => 4,
        0xE0.. => 3,
        0xC0.. => 2,
        _ => 1,
    }
}

/// Whether an array has any element (`listener_filters: []` is "none").
pub(super) struct NonEmpty(pub(super) bool);

impl<'de> Deserialize<'de> for NonEmpty {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = NonEmpty;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut s: A) -> Result<NonEmpty, A::Error> {
                let mut any = false;
                while s.next_element::<IgnoredAny>()?.is_some() {
                    any = true;
                }
                Ok(NonEmpty(any))
            }
        }
        d.deserialize_seq(V)
    }
}
