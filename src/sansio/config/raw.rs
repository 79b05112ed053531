//! The config as serde-json-core reads it: fixed-capacity raw types, every field optional, no
//! validation (that is `parse`'s).

use heapless::{String, Vec};
use serde::de::{Deserializer, IgnoredAny, Visitor};
use serde::Deserialize;

use super::json::{MAX_CHAINS, MAX_FILTERS, MAX_SERVERS, PATH_STR_LEN, RAW_STR_LEN};
use super::model::{MAX_CLUSTERS, MAX_HOSTS, MAX_LISTENERS};
use core::fmt;

pub(super) type Raw = String<RAW_STR_LEN>;
pub(super) type RawPath = String<PATH_STR_LEN>;

#[derive(Deserialize)]
pub(super) struct RawConfig {
    pub(super) servers: Option<Vec<RawServer, MAX_SERVERS>>,
    pub(super) cluster_manager: Option<RawClusterManager>,
    pub(super) admin: Option<RawAdmin>,
    pub(super) baton: Option<RawBaton>,
}

#[derive(Deserialize)]
pub(super) struct RawServer {
    pub(super) default_log_level: Option<Raw>,
    pub(super) graceful_timeout: Option<Raw>,
    pub(super) listeners: Option<Vec<RawListener, MAX_LISTENERS>>,
}

#[derive(Deserialize)]
pub(super) struct RawListener {
    pub(super) name: Option<Raw>,
    pub(super) address: Option<Raw>,
    pub(super) bind_port: Option<bool>,
    pub(super) network: Option<Raw>,
    pub(super) use_original_dst: Option<bool>,
    pub(super) listener_filters: Option<NonEmpty>,
    pub(super) filter_chains: Option<Vec<RawChain, MAX_CHAINS>>,
}

#[derive(Deserialize)]
pub(super) struct RawChain {
    pub(super) tls_context: Option<RawTls>,
    pub(super) tls_context_set: Option<NonEmpty>,
    pub(super) filters: Option<Vec<RawFilter, MAX_FILTERS>>,
}

/// MOSN's TLS config: only `status: true` turns TLS on; `{}` and `status: false` are plaintext.
#[derive(Deserialize)]
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
    pub(super) routes: Option<Vec<RawRoute, MAX_FILTERS>>,
}

#[derive(Deserialize)]
pub(super) struct RawRoute {
    #[serde(alias = "Cluster")]
    pub(super) cluster: Option<Raw>,
}

#[derive(Deserialize)]
pub(super) struct RawClusterManager {
    pub(super) clusters: Option<Vec<RawCluster, MAX_CLUSTERS>>,
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
}

#[derive(Deserialize)]
pub(super) struct RawHost {
    pub(super) address: Option<Raw>,
    pub(super) weight: Option<u64>,
}

#[derive(Deserialize)]
pub(super) struct RawAdmin {
    pub(super) address: Option<RawAdminAddress>,
}

#[derive(Deserialize)]
pub(super) struct RawAdminAddress {
    pub(super) socket_address: Option<RawSocketAddress>,
}

#[derive(Deserialize)]
pub(super) struct RawSocketAddress {
    pub(super) address: Option<Raw>,
    pub(super) port_value: Option<u64>,
}

#[derive(Deserialize)]
pub(super) struct RawBaton {
    pub(super) runtime_dir: Option<RawPath>,
    pub(super) pid_file: Option<RawPath>,
    pub(super) max_connections: Option<u64>,
    pub(super) buffer_size: Option<u64>,
    pub(super) backlog: Option<u64>,
    pub(super) connect_timeout: Option<Raw>,
    pub(super) idle_timeout: Option<Raw>,
    pub(super) drain_timeout: Option<Raw>,
    pub(super) handoff_timeout: Option<Raw>,
    pub(super) connect_attempts: Option<u64>,
    pub(super) fail_threshold: Option<u64>,
    pub(super) down_time: Option<Raw>,
    pub(super) max_draining: Option<u64>,
    pub(super) transfer_connections: Option<bool>,
    pub(super) splice: Option<bool>,
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
