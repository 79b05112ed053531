//! What baton knows of a config's shape: every key it reads, by path pattern, with its kind
//! (checked by the JSON pre-pass in `json`), and how to describe a key it does not know (a MOSN
//! setting it ignores knowingly, or a near miss of a known key).

use super::json::{Kind, PathText, MAX_CHAINS, MAX_FILTERS, MAX_SERVERS, PATH_STR_LEN, RAW_STR_LEN};
use super::model::{MAX_CLUSTERS, MAX_HOSTS, MAX_LISTENERS};
use crate::sansio::limits::{ACCESS_FORMAT_LEN, MAX_ACCESS_LOGS, MAX_SINKS, MAX_THRESHOLDS};
use crate::sansio::limits::{CIDR_ADDR_LEN, MAX_CIDRS, MAX_ROUTES};

/// Known keys by path pattern (`[]` stands for any array index) and their kinds.
pub(super) const SCHEMA: &[(&str, Kind)] = &[
    ("servers", Kind::Arr(MAX_SERVERS, "MAX_SERVERS")),
    ("servers[]", Kind::Obj),
    ("servers[].default_log_path", Kind::Any),
    ("servers[].default_log_level", Kind::Str(RAW_STR_LEN)),
    ("servers[].graceful_timeout", Kind::Dur),
    ("servers[].listeners", Kind::Arr(MAX_LISTENERS, "MAX_LISTENERS")),
    ("servers[].listeners[]", Kind::Obj),
    ("servers[].listeners[].name", Kind::Str(RAW_STR_LEN)),
    ("servers[].listeners[].address", Kind::Str(PATH_STR_LEN)),
    ("servers[].listeners[].bind_port", Kind::Bool),
    ("servers[].listeners[].log_path", Kind::Any),
    ("servers[].listeners[].log_level", Kind::Any),
    ("servers[].listeners[].filter_chains", Kind::Arr(MAX_CHAINS, "MAX_CHAINS")),
    ("servers[].listeners[].filter_chains[]", Kind::Obj),
    ("servers[].listeners[].network", Kind::Str(RAW_STR_LEN)),
    ("servers[].listeners[].use_original_dst", Kind::Any),
    ("servers[].listeners[].listener_filters", Kind::Any),
    ("servers[].listeners[].connection_idle_timeout", Kind::Dur),
    ("servers[].listeners[].access_logs", Kind::Arr(MAX_ACCESS_LOGS, "MAX_ACCESS_LOGS")),
    ("servers[].listeners[].access_logs[]", Kind::Obj),
    ("servers[].listeners[].access_logs[].log_path", Kind::Str(PATH_STR_LEN)),
    ("servers[].listeners[].access_logs[].log_format", Kind::Str(ACCESS_FORMAT_LEN)),
    ("servers[].listeners[].filter_chains[].tls_context", Kind::Obj),
    ("servers[].listeners[].filter_chains[].tls_context.status", Kind::Bool),
    ("servers[].listeners[].filter_chains[].tls_context_set", Kind::Any),
    ("servers[].listeners[].filter_chains[].filters", Kind::Arr(MAX_FILTERS, "MAX_FILTERS")),
    ("servers[].listeners[].filter_chains[].filters[]", Kind::Obj),
    ("servers[].listeners[].filter_chains[].filters[].type", Kind::Str(RAW_STR_LEN)),
    ("servers[].listeners[].filter_chains[].filters[].config", Kind::Obj),
    ("servers[].listeners[].filter_chains[].filters[].config.cluster", Kind::Str(RAW_STR_LEN)),
    ("servers[].listeners[].filter_chains[].filters[].config.Cluster", Kind::Str(RAW_STR_LEN)),
    ("servers[].listeners[].filter_chains[].filters[].config.Routes", Kind::Arr(MAX_ROUTES, "MAX_ROUTES")),
    ("servers[].listeners[].filter_chains[].filters[].config.Routes[]", Kind::Obj),
    ("servers[].listeners[].filter_chains[].filters[].config.Routes[].Cluster", Kind::Str(RAW_STR_LEN)),
    ("servers[].listeners[].filter_chains[].filters[].config.Routes[].cluster", Kind::Str(RAW_STR_LEN)),
    ("servers[].listeners[].filter_chains[].filters[].config.routes", Kind::Arr(MAX_ROUTES, "MAX_ROUTES")),
    ("servers[].listeners[].filter_chains[].filters[].config.routes[]", Kind::Obj),
    ("servers[].listeners[].filter_chains[].filters[].config.routes[].cluster", Kind::Str(RAW_STR_LEN)),
    ("servers[].listeners[].filter_chains[].filters[].config.routes[].Cluster", Kind::Str(RAW_STR_LEN)),
    ("servers[].listeners[].filter_chains[].filters[].config.routes[].SourceAddrs", Kind::Arr(MAX_CIDRS, "MAX_CIDRS")),
    ("servers[].listeners[].filter_chains[].filters[].config.routes[].SourceAddrs[]", Kind::Obj),
    ("servers[].listeners[].filter_chains[].filters[].config.routes[].SourceAddrs[].address", Kind::Str(CIDR_ADDR_LEN)),
    ("servers[].listeners[].filter_chains[].filters[].config.routes[].SourceAddrs[].Address", Kind::Str(CIDR_ADDR_LEN)),
    ("servers[].listeners[].filter_chains[].filters[].config.routes[].SourceAddrs[].length", Kind::UInt),
    ("servers[].listeners[].filter_chains[].filters[].config.routes[].SourceAddrs[].Length", Kind::UInt),
    ("servers[].listeners[].filter_chains[].filters[].config.routes[].SourceAddrs[].IpNet", Kind::Any),
    (
        "servers[].listeners[].filter_chains[].filters[].config.routes[].DestinationAddrs",
        Kind::Arr(MAX_CIDRS, "MAX_CIDRS"),
    ),
    ("servers[].listeners[].filter_chains[].filters[].config.routes[].DestinationAddrs[]", Kind::Obj),
    (
        "servers[].listeners[].filter_chains[].filters[].config.routes[].DestinationAddrs[].address",
        Kind::Str(CIDR_ADDR_LEN),
    ),
    (
        "servers[].listeners[].filter_chains[].filters[].config.routes[].DestinationAddrs[].Address",
        Kind::Str(CIDR_ADDR_LEN),
    ),
    ("servers[].listeners[].filter_chains[].filters[].config.routes[].DestinationAddrs[].length", Kind::UInt),
    ("servers[].listeners[].filter_chains[].filters[].config.routes[].DestinationAddrs[].Length", Kind::UInt),
    ("servers[].listeners[].filter_chains[].filters[].config.routes[].DestinationAddrs[].IpNet", Kind::Any),
    ("servers[].listeners[].filter_chains[].filters[].config.routes[].SourcePort", Kind::Str(RAW_STR_LEN)),
    ("servers[].listeners[].filter_chains[].filters[].config.routes[].DestinationPort", Kind::Str(RAW_STR_LEN)),
    ("servers[].listeners[].filter_chains[].filters[].config.routes[].source_addrs", Kind::Any),
    ("servers[].listeners[].filter_chains[].filters[].config.routes[].destination_addrs", Kind::Any),
    ("servers[].listeners[].filter_chains[].filters[].config.routes[].source_port", Kind::Any),
    ("servers[].listeners[].filter_chains[].filters[].config.routes[].destination_port", Kind::Any),
    ("servers[].listeners[].filter_chains[].filters[].config.Routes[].SourceAddrs", Kind::Arr(MAX_CIDRS, "MAX_CIDRS")),
    ("servers[].listeners[].filter_chains[].filters[].config.Routes[].SourceAddrs[]", Kind::Obj),
    ("servers[].listeners[].filter_chains[].filters[].config.Routes[].SourceAddrs[].address", Kind::Str(CIDR_ADDR_LEN)),
    ("servers[].listeners[].filter_chains[].filters[].config.Routes[].SourceAddrs[].Address", Kind::Str(CIDR_ADDR_LEN)),
    ("servers[].listeners[].filter_chains[].filters[].config.Routes[].SourceAddrs[].length", Kind::UInt),
    ("servers[].listeners[].filter_chains[].filters[].config.Routes[].SourceAddrs[].Length", Kind::UInt),
    ("servers[].listeners[].filter_chains[].filters[].config.Routes[].SourceAddrs[].IpNet", Kind::Any),
    (
        "servers[].listeners[].filter_chains[].filters[].config.Routes[].DestinationAddrs",
        Kind::Arr(MAX_CIDRS, "MAX_CIDRS"),
    ),
    ("servers[].listeners[].filter_chains[].filters[].config.Routes[].DestinationAddrs[]", Kind::Obj),
    (
        "servers[].listeners[].filter_chains[].filters[].config.Routes[].DestinationAddrs[].address",
        Kind::Str(CIDR_ADDR_LEN),
    ),
    (
        "servers[].listeners[].filter_chains[].filters[].config.Routes[].DestinationAddrs[].Address",
        Kind::Str(CIDR_ADDR_LEN),
    ),
    ("servers[].listeners[].filter_chains[].filters[].config.Routes[].DestinationAddrs[].length", Kind::UInt),
    ("servers[].listeners[].filter_chains[].filters[].config.Routes[].DestinationAddrs[].Length", Kind::UInt),
    ("servers[].listeners[].filter_chains[].filters[].config.Routes[].DestinationAddrs[].IpNet", Kind::Any),
    ("servers[].listeners[].filter_chains[].filters[].config.Routes[].SourcePort", Kind::Str(RAW_STR_LEN)),
    ("servers[].listeners[].filter_chains[].filters[].config.Routes[].DestinationPort", Kind::Str(RAW_STR_LEN)),
    ("servers[].listeners[].filter_chains[].filters[].config.Routes[].source_addrs", Kind::Any),
    ("servers[].listeners[].filter_chains[].filters[].config.Routes[].destination_addrs", Kind::Any),
    ("servers[].listeners[].filter_chains[].filters[].config.Routes[].source_port", Kind::Any),
    ("servers[].listeners[].filter_chains[].filters[].config.Routes[].destination_port", Kind::Any),
    ("cluster_manager", Kind::Obj),
    ("cluster_manager.clusters", Kind::Arr(MAX_CLUSTERS, "MAX_CLUSTERS")),
    ("cluster_manager.clusters[]", Kind::Obj),
    ("cluster_manager.clusters[].Name", Kind::Str(RAW_STR_LEN)),
    ("cluster_manager.clusters[].name", Kind::Str(RAW_STR_LEN)),
    ("cluster_manager.clusters[].type", Kind::Str(RAW_STR_LEN)),
    ("cluster_manager.clusters[].lb_type", Kind::Str(RAW_STR_LEN)),
    ("cluster_manager.clusters[].tls_context", Kind::Obj),
    ("cluster_manager.clusters[].tls_context.status", Kind::Bool),
    ("cluster_manager.clusters[].max_request_per_conn", Kind::UInt),
    ("cluster_manager.clusters[].conn_buffer_limit_bytes", Kind::UInt),
    ("cluster_manager.clusters[].hosts", Kind::Arr(MAX_HOSTS, "MAX_HOSTS")),
    ("cluster_manager.clusters[].connect_timeout", Kind::Dur),
    ("cluster_manager.clusters[].mark", Kind::UInt),
    ("cluster_manager.clusters[].cluster_manager_tls", Kind::Bool),
    ("cluster_manager.clusters_configs", Kind::Str(RAW_STR_LEN)),
    ("cluster_manager.tls_context", Kind::Obj),
    ("cluster_manager.tls_context.status", Kind::Bool),
    ("cluster_manager.clusters[].health_check", Kind::Obj),
    ("cluster_manager.clusters[].health_check.protocol", Kind::Str(RAW_STR_LEN)),
    ("cluster_manager.clusters[].health_check.service_name", Kind::Str(RAW_STR_LEN)),
    ("cluster_manager.clusters[].health_check.timeout", Kind::Dur),
    ("cluster_manager.clusters[].health_check.interval", Kind::Dur),
    ("cluster_manager.clusters[].health_check.healthy_threshold", Kind::UInt),
    ("cluster_manager.clusters[].health_check.unhealthy_threshold", Kind::UInt),
    ("cluster_manager.clusters[].circuit_breakers", Kind::Arr(MAX_THRESHOLDS, "MAX_THRESHOLDS")),
    ("cluster_manager.clusters[].circuit_breakers[]", Kind::Obj),
    ("cluster_manager.clusters[].circuit_breakers[].max_connections", Kind::UInt),
    ("cluster_manager.clusters[].hosts[]", Kind::Obj),
    ("cluster_manager.clusters[].hosts[].address", Kind::Str(PATH_STR_LEN)),
    ("cluster_manager.clusters[].hosts[].hostname", Kind::Any),
    ("cluster_manager.clusters[].hosts[].weight", Kind::UInt),
    ("admin", Kind::Obj),
    ("admin.address", Kind::Obj),
    ("admin.address.socket_address", Kind::Obj),
    ("admin.address.socket_address.address", Kind::Str(RAW_STR_LEN)),
    ("admin.address.socket_address.port_value", Kind::UInt),
    ("metrics", Kind::Obj),
    ("metrics.sinks", Kind::Arr(MAX_SINKS, "MAX_SINKS")),
    ("metrics.sinks[]", Kind::Obj),
    ("metrics.sinks[].type", Kind::Str(RAW_STR_LEN)),
    ("metrics.sinks[].config", Kind::Obj),
    ("metrics.sinks[].config.port", Kind::UInt),
    ("metrics.sinks[].config.endpoint", Kind::Str(RAW_STR_LEN)),
    ("metrics.sinks[].config.export_url", Kind::Str(RAW_STR_LEN)),
    ("pid", Kind::Str(PATH_STR_LEN)),
    ("baton", Kind::Obj),
    ("baton.runtime_dir", Kind::Str(PATH_STR_LEN)),
    ("baton.pid_file", Kind::Str(PATH_STR_LEN)),
    ("baton.max_connections", Kind::UInt),
    ("baton.buffer_size", Kind::UInt),
    ("baton.backlog", Kind::UInt),
    ("baton.connect_timeout", Kind::Dur),
    ("baton.idle_timeout", Kind::Dur),
    ("baton.drain_timeout", Kind::Dur),
    ("baton.handoff_timeout", Kind::Dur),
    ("baton.connect_attempts", Kind::UInt),
    ("baton.fail_threshold", Kind::UInt),
    ("baton.down_time", Kind::Dur),
    ("baton.max_draining", Kind::UInt),
    ("baton.transfer_connections", Kind::Bool),
    ("baton.splice", Kind::Bool),
    ("baton.log", Kind::Str(RAW_STR_LEN)),
];

/// MOSN settings baton knows about and does not implement: reported once at info level as
/// "not supported, ignored" rather than as unknown (patterns as in `SCHEMA`).
const IGNORED_MOSN: &[&str] = &[
    "pprof",
    "disable_upgrade",
    "close_graceful",
    "inherit_old_mosnconfig",
    "node",
    "uds_dir",
    "tracing",
    "metrics.stats_matcher",
    "metrics.shm_zone",
    "metrics.shm_size",
    "metrics.flush_mosn",
    "metrics.lazy_flush",
    "metrics.sample",
    "metrics.ewma",
    "metrics.sinks[].config.disable_collect_process",
    "metrics.sinks[].config.disable_collect_go",
    "metrics.sinks[].config.percentiles",
    "plugin",
    "third_part_codec",
    "extends",
    "wasm_global_plugins",
    "dynamic_resources",
    "static_resources",
    "servers[].routers",
    "servers[].processor",
    "servers[].global_log_roller",
    "servers[].mosn_server_name",
    "servers[].listeners[].type",
    "servers[].listeners[].stream_filters",
    "servers[].listeners[].inspector",
    "cluster_manager.clusters[].sub_type",
    "cluster_manager.clusters[].health_check.interval_jitter",
    "cluster_manager.clusters[].health_check.initial_delay_seconds",
    "cluster_manager.clusters[].health_check.check_config",
    "cluster_manager.clusters[].health_check.event_log_path",
    "cluster_manager.clusters[].health_check.common_callbacks",
    "cluster_manager.clusters[].circuit_breakers[].max_pending_requests",
    "cluster_manager.clusters[].circuit_breakers[].max_requests",
    "cluster_manager.clusters[].circuit_breakers[].max_retries",
    "servers[].listeners[].filter_chains[].filters[].config.stat_prefix",
    // read by MOSN's tcp_proxy and never applied to TCP
    "servers[].listeners[].filter_chains[].filters[].config.idle_timeout",
    "servers[].listeners[].filter_chains[].filters[].config.max_connect_attempts",
    // Go's runtime, socket options and buffers of no meaning for baton's data path
    "servers[].use_netpoll_mode",
    "servers[].listeners[].reuseport",
    "servers[].listeners[].default_read_buffer_size",
    // LB tuning (two random choices, bias, weight ramp) and what only other cluster kinds use
    "cluster_manager.clusters[].lbconfig",
    "cluster_manager.clusters[].slow_start",
    "cluster_manager.clusters[].keepalive",
    "cluster_manager.clusters[].cluster_pool_enable",
    "cluster_manager.clusters[].original_dst_lb_config",
    "cluster_manager.clusters[].dns_refresh_rate",
    "cluster_manager.clusters[].respect_dns_ttl",
    "cluster_manager.clusters[].dns_lookup_family",
    "cluster_manager.clusters[].dns_resolvers",
    "cluster_manager.clusters[].dns_resolver_file",
    "cluster_manager.clusters[].dns_resolver_port",
    "cluster_manager.cluster_pool_enable",
    "cluster_manager.clusters[].idle_timeout",
    "cluster_manager.clusters[].spec",
    "cluster_manager.clusters[].lb_subset_config",
    "cluster_manager.clusters[].hosts[].metadata",
    "cluster_manager.clusters[].hosts[].tls_disable",
];

/// What an unknown key is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnknownKey {
    /// A MOSN setting baton knowingly does not implement.
    IgnoredMosn,
    /// Close to this known key at the same place (`weigth` -> `weight`).
    NearMiss(&'static str),
    Unknown,
}

/// How an unknown key at `path` (as reported, with indices) should be described.
pub fn describe_unknown(path: &str) -> UnknownKey {
    let mut pat = PathText::new();
    let mut skipping = false;
    for c in path.chars() {
        match c {
            '[' => {
                skipping = true;
                let _ = pat.push_str("[]");
            }
            ']' => skipping = false,
            c if !skipping => {
                let _ = pat.push(c);
            }
            _ => {}
        }
    }
    if IGNORED_MOSN.contains(&pat.as_str()) {
        return UnknownKey::IgnoredMosn;
    }
    let (parent, key) = pat.rsplit_once('.').unwrap_or(("", pat.as_str()));
    SCHEMA
        .iter()
        .filter_map(|(p, _)| {
            let (pp, k) = p.rsplit_once('.').unwrap_or(("", p));
            (pp == parent).then_some(k)
        })
        .find(|k| !k.ends_with("[]") && edit_distance(k, key) <= 2)
        .map_or(UnknownKey::Unknown, UnknownKey::NearMiss)
}

/// Levenshtein distance, for names up to `RAW_STR_LEN` bytes (longer: treated as far).
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() > RAW_STR_LEN || b.len() > RAW_STR_LEN {
        return usize::MAX;
    }
    let mut prev = [0usize; RAW_STR_LEN + 1];
    let mut cur = [0usize; RAW_STR_LEN + 1];
    for (j, p) in prev.iter_mut().enumerate().take(b.len() + 1) {
        *p = j;
    }
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let sub = prev[j - 1] + usize::from(a[i - 1] != b[j - 1]);
            cur[j] = sub.min(prev[j] + 1).min(cur[j - 1] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}
