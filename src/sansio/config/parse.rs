//! From config text to a validated `Config`: the JSON pre-pass, serde-json-core into raw
//! fixed-capacity types, then validation that names the offending field. `core` + `heapless` only.

use core::fmt::{self, Write};
use core::net::SocketAddr;
use heapless::Vec;

use super::json::{self, JsonError, PathText};
use super::model::*;
use super::raw::*;
use super::value::{parse_addr, parse_duration_ms, parse_ip_port};
use crate::sansio::limits::{MAX_BACKLOG, MAX_DRAINING, MAX_ESCAPED_STRING, MAX_FAIL_THRESHOLD, MAX_SINKS, MAX_WEIGHT};
use crate::sansio::route::{parse_ports, Cidr, MAX_CIDRS};

/// What is wrong with one field.
#[derive(Debug, Clone, PartialEq)]
pub enum Problem {
    Missing,
    BadAddress(RawPath),
    BadUnixPath(RawPath),
    /// A host written as a bare path: MOSN resolves a unix host only after `unix:`.
    BareUnixHost(RawPath),
    BadDuration(Raw),
    BadLogLevel(Raw),
    BadLbType(Raw),
    UnknownCluster(Raw),
    DuplicateAddress(PathText),
    DuplicateName(PathText),
    NoHosts,
    NoListeners,
    NoTcpProxy,
    UnsupportedFilter(Raw),
    TlsNotSupported,
    NotSupported(&'static str),
    BindPortFalse,
    BindPortAbsent,
    OutOfRange {
        min: u64,
        max: u64,
        found: u64,
    },
    TooLong {
        max: usize,
    },
    TooMany {
        limit: &'static str,
        max: usize,
    },
    RelativePath,
    /// A route key MOSN never reads (its snake_case spelling); the Go field name to use.
    UnreadRouteKey(&'static str),
    /// A route that can never match: one of its four matchers is missing or empty.
    RouteNeverMatches,
    BadCidr,
    BadPorts(Raw),
    BadFormat(crate::sansio::accesslog::FormatError),
}

const LOG_PATHS: &str = "give an absolute path, or stdout or stderr";
const PLAIN_PATH: &str = "give a plain absolute path (no trailing slash, no empty, . or .. component)";

#[derive(Debug, Clone, PartialEq)]
pub enum ConfigError {
    TooLarge {
        size: usize,
    },
    Json(JsonError),
    /// serde-json-core refused something the pre-pass let through (rare; no position known).
    Serde(serde_json_core::de::Error),
    Field {
        path: PathText,
        problem: Problem,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge { size } => {
                write!(f, "the config file is {size} bytes; the limit is MAX_CONFIG_BYTES = {MAX_CONFIG_BYTES}")
            }
            Self::Json(e) => write!(f, "{e}"),
            Self::Serde(e) => write!(f, "the config could not be read: {e}"),
            Self::Field { path, problem } => write!(f, "{path}: {problem}"),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing => f.write_str("is required"),
            Self::BadAddress(s) => write!(f, "\"{s}\" is not an address; write IP:PORT, e.g. \"127.0.0.1:8080\" or \"[::1]:8080\", or unix:/path for a unix socket host"),
            Self::BadUnixPath(s) => write!(f, "\"{s}\" is not a unix socket path; write an absolute path of at most 107 bytes"),
            Self::BareUnixHost(s) => write!(f, "\"{s}\" is a path, which MOSN does not resolve as a host (it reads a unix socket host only as \"unix:{s}\"); write \"unix:{s}\""),
            Self::BadDuration(s) => write!(f, "\"{s}\" is not a duration; write e.g. \"30s\", \"500ms\", \"1m\" (at most 168h)"),
            Self::BadLogLevel(s) => write!(f, "\"{s}\" is not a log level; use ERROR, WARN, INFO, DEBUG or TRACE"),
            Self::BadLbType(s) => write!(f, "\"{s}\" is not supported; use LB_ROUNDROBIN, LB_RANDOM or LB_LEAST_CONNECTION"),
            Self::UnknownCluster(s) => write!(f, "cluster \"{s}\" is not defined in cluster_manager.clusters"),
            Self::DuplicateAddress(p) => write!(f, "the same address is already used by {p}"),
            Self::DuplicateName(p) => write!(f, "the same name is already used by {p}"),
            Self::NoHosts => f.write_str("has no hosts; add at least one {\"address\": \"IP:PORT\"}"),
            Self::NoListeners => f.write_str("no listeners are configured; add one under servers[0].listeners"),
            Self::NoTcpProxy => f.write_str("has no tcp_proxy filter; baton needs one filter {\"type\": \"tcp_proxy\", \"config\": {\"cluster\": NAME}}"),
            Self::UnsupportedFilter(s) => write!(f, "filter \"{s}\" is not supported; baton is an L4 proxy and supports only \"tcp_proxy\""),
            Self::TlsNotSupported => f.write_str("TLS is not supported, and baton will not run plaintext where TLS was asked for; set \"status\": false (or remove tls_context) and terminate TLS in the service"),
            Self::NotSupported(what) => f.write_str(what),
            Self::BindPortFalse => f.write_str("bind_port false (a virtual listener, which does not bind) is not supported; set it to true"),
            Self::BindPortAbsent => f.write_str("bind_port is absent, which MOSN reads as false: a virtual listener that does not bind, which baton cannot serve; add \"bind_port\": true"),
            Self::OutOfRange { min, max, found } => write!(f, "{found} is out of range; use {min}..={max}"),
            Self::TooLong { max } => write!(f, "is longer than {max} bytes"),
            Self::TooMany { limit, max } => write!(f, "more than {limit} = {max} in total"),
            Self::RelativePath => f.write_str("must be an absolute path"),
            Self::BadFormat(e) => write!(f, "{e}"),
            Self::UnreadRouteKey(go) => write!(f, "MOSN does not read this key (its route keys are the Go field names), so in MOSN this route would match nothing; write \"{go}\""),
            Self::RouteNeverMatches => f.write_str("can never match: MOSN matches a route only when SourceAddrs, DestinationAddrs, SourcePort and DestinationPort are all given and match, so every connection would be closed; give all four, or set the tcp_proxy \"cluster\" to send every connection to one cluster"),
            Self::BadCidr => f.write_str("is not an address range; write {\"address\": \"10.0.0.0\", \"length\": 8} (length at most 32 for IPv4, 128 for IPv6)"),
            Self::BadPorts(s) => write!(f, "\"{s}\" is not a port list; write ports and ranges separated by commas, without spaces (MOSN misreads an entry with a space), e.g. \"80,443,8000-8999\" (at most 8 entries)"),
        }
    }
}

/// Parses and validates a config file's contents.
pub fn parse(text: &[u8]) -> Result<Config, ConfigError> {
    parse_noting(text).map(|(c, _)| c)
}

/// As `parse`, also returning the keys baton does not know (for the start-up warnings).
pub fn parse_noting(text: &[u8]) -> Result<(Config, json::UnknownKeys), ConfigError> {
    if text.len() > MAX_CONFIG_BYTES {
        return Err(ConfigError::TooLarge { size: text.len() });
    }
    let (unknown, caps) = json::check_capturing(text).map_err(ConfigError::Json)?;
    let mut scratch = [0u8; MAX_ESCAPED_STRING];
    let (raw, _) = serde_json_core::from_slice_escaped::<RawConfig>(text, &mut scratch).map_err(ConfigError::Serde)?;
    Ok((build(&raw, &Captured { text, caps })?, unknown))
}

fn field(path: fmt::Arguments<'_>, problem: Problem) -> ConfigError {
    let mut p = PathText::new();
    let _ = p.write_fmt(path);
    ConfigError::Field { path: p, problem }
}

fn build(raw: &RawConfig, cap: &Captured<'_>) -> Result<Config, ConfigError> {
    let clusters = build_clusters(raw, cap)?;
    let mut cfg = Config {
        listeners: Vec::new(),
        clusters,
        admin: build_admin(cap)?,
        metrics: build_metrics(cap)?,
        log_level: LogLevel::Info,
        settings: Settings::default(),
    };
    let servers = raw.servers.as_deref().unwrap_or(&[]);
    let mut graceful = None;
    for (si, s) in servers.iter().enumerate() {
        if let Some(l) = &s.default_log_level {
            cfg.log_level = LogLevel::parse(l).ok_or_else(|| {
                field(format_args!("servers[{si}].default_log_level"), Problem::BadLogLevel(l.clone()))
            })?;
        }
        if let Some(g) = &s.graceful_timeout {
            graceful = Some(duration(g, format_args!("servers[{si}].graceful_timeout"))?);
        }
        for (li, l) in s.listeners.as_deref().unwrap_or(&[]).iter().enumerate() {
            let listener = build_listener(&cfg, l, cap, si, li)?;
            cfg.listeners.push(listener).map_err(|_| {
                field(
                    format_args!("servers[{si}].listeners[{li}]"),
                    Problem::TooMany { limit: "MAX_LISTENERS", max: MAX_LISTENERS },
                )
            })?;
        }
    }
    if cfg.listeners.is_empty() {
        return Err(field(format_args!("servers"), Problem::NoListeners));
    }
    // MOSN: a zero graceful_timeout keeps its default (30 s, baton's drain_timeout default too)
    if let Some(g) = graceful.filter(|&g| g != 0) {
        cfg.settings.drain_timeout_ms = g;
    }
    if let Some(p) = cap.path(cap::PID, [0, 0]).filter(|p| !p.is_empty()) {
        cfg.settings.pid_file = Some(abs_path(&p, "pid").map_err(|e| match e {
            ConfigError::Field { problem, .. } => field(format_args!("pid"), problem),
            e => e,
        })?);
    }
    if cap.present(cap::BATON, [0, 0]) {
        let z = [0, 0];
        let b = RawBaton {
            runtime_dir: cap.path(cap::B_RUNTIME_DIR, z),
            pid_file: cap.path(cap::B_PID_FILE, z),
            max_connections: cap.u64(cap::B_MAX_CONNECTIONS, z),
            buffer_size: cap.u64(cap::B_BUFFER_SIZE, z),
            backlog: cap.u64(cap::B_BACKLOG, z),
            connect_timeout: cap.dur(cap::B_CONNECT_TIMEOUT, z),
            idle_timeout: cap.dur(cap::B_IDLE_TIMEOUT, z),
            drain_timeout: cap.dur(cap::B_DRAIN_TIMEOUT, z),
            handoff_timeout: cap.dur(cap::B_HANDOFF_TIMEOUT, z),
            connect_attempts: cap.u64(cap::B_CONNECT_ATTEMPTS, z),
            fail_threshold: cap.u64(cap::B_FAIL_THRESHOLD, z),
            down_time: cap.dur(cap::B_DOWN_TIME, z),
            max_draining: cap.u64(cap::B_MAX_DRAINING, z),
            transfer_connections: cap.bool(cap::B_TRANSFER, z),
            splice: cap.bool(cap::B_SPLICE, z),
            log: cap.str(cap::B_LOG, z),
        };
        apply_settings(&mut cfg.settings, &b)?;
    }
    check_admin_clash(&cfg)?;
    Ok(cfg)
}

fn build_listener(
    cfg: &Config,
    l: &RawListener,
    cap: &Captured<'_>,
    si: usize,
    li: usize,
) -> Result<Listener, ConfigError> {
    let mut name = Name::new();
    match &l.name {
        Some(n) if !n.is_empty() => name.push_str(n).map_err(|_| {
            field(format_args!("servers[{si}].listeners[{li}].name"), Problem::TooLong { max: NAME_LEN })
        })?,
        _ => write!(name, "listener-{}", cfg.listeners.len()).unwrap_or(()),
    }
    let at = |f: &str, p: Problem| field(format_args!("listener \"{name}\" (servers[{si}].listeners[{li}]{f})"), p);
    match l.bind_port {
        Some(true) => {}
        Some(false) => return Err(at(".bind_port", Problem::BindPortFalse)),
        None => return Err(at(".bind_port", Problem::BindPortAbsent)),
    }
    let unix = match l.network.as_deref().unwrap_or("") {
        "" | "tcp" => false,
        "unix" => true,
        _ => return Err(at(".network", Problem::NotSupported(NETWORK_TCP_OR_UNIX))),
    };
    match cap.on(cap::ORIGINAL_DST, [si as u16, li as u16]) {
        Ok(false) => {}
        Ok(true) => return Err(at(".use_original_dst", Problem::NotSupported(NO_ORIGINAL_DST))),
        Err(()) => return Err(at(".use_original_dst", Problem::NotSupported(ORIGINAL_DST_KIND))),
    }
    if l.listener_filters.as_ref().is_some_and(|f| f.0) {
        return Err(at(".listener_filters", Problem::NotSupported(NO_LISTENER_FILTERS)));
    }
    let text = l.address.as_ref().ok_or_else(|| at(".address", Problem::Missing))?;
    let addr = if unix {
        Addr::unix(text).ok_or_else(|| at(".address", Problem::BadUnixPath(text.clone())))?
    } else {
        parse_addr(text).map(Addr::Ip).ok_or_else(|| at(".address", Problem::BadAddress(text.clone())))?
    };
    let (fi, proxy) = first_tcp_proxy(l, &at)?;
    let here = |f: fmt::Arguments<'_>| path_fmt(format_args!(".filter_chains[0].filters[{fi}].config{f}"));
    let cluster_of = |name: &Raw, f: &str| {
        cfg.clusters
            .iter()
            .position(|c| c.name.as_str() == name.as_str())
            .ok_or_else(|| at(&here(format_args!("{f}")), Problem::UnknownCluster(name.clone())))
    };
    let mut listener = Listener {
        name: name.clone(),
        addr: addr.clone(),
        cluster: None,
        routes: Vec::new(),
        idle_timeout_ms: None,
        access_log: None,
    };
    match proxy.cluster.as_ref().filter(|c| !c.is_empty()) {
        // MOSN: a cluster given means its routes are never consulted
        Some(c) => listener.cluster = Some(cluster_of(c, ".cluster")?),
        None => {
            let routes = proxy.routes.as_deref().unwrap_or(&[]);
            if routes.is_empty() {
                return Err(at(&here(format_args!(".cluster")), Problem::Missing));
            }
            for (ri, r) in routes.iter().enumerate() {
                let rat = |f: &str, p: Problem| at(&here(format_args!(".routes[{ri}]{f}")), p);
                let name =
                    r.cluster.as_ref().filter(|c| !c.is_empty()).ok_or_else(|| rat(".cluster", Problem::Missing))?;
                let route = build_route(r, cluster_of(name, &path_fmt(format_args!(".routes[{ri}].cluster")))?, &rat)?;
                listener.routes.push(route).ok();
            }
        }
    }
    // MOSN's tcp_proxy `idle_timeout` and `max_connect_attempts` are read and never applied to
    // TCP (streamproxy.go uses the first for UDP only; retries are min(hosts, 3)): baton lists
    // them as ignored, like MOSN's other unused settings.
    if let Some(d) = &l.connection_idle_timeout {
        listener.idle_timeout_ms = Some(duration(
            d,
            format_args!("listener \"{name}\" (servers[{si}].listeners[{li}].connection_idle_timeout)"),
        )?);
    }
    listener.access_log = access_log(cap, [si as u16, li as u16], &at)?;
    let clash = |o: &Listener| match (o.addr.ip(), addr.ip()) {
        (Some(a), Some(b)) => collide(&a, &b),
        _ => o.addr == addr,
    };
    if let Some(other) = cfg.listeners.iter().find(|o| clash(o)) {
        let mut p = PathText::new();
        let _ = write!(p, "listener \"{}\"", other.name);
        return Err(at(".address", Problem::DuplicateAddress(p)));
    }
    if let Some(other) = cfg.listeners.iter().find(|o| o.name == name) {
        let mut p = PathText::new();
        let _ = write!(p, "the listener at {}", other.addr);
        return Err(at(".name", Problem::DuplicateName(p)));
    }
    Ok(listener)
}

/// One route: the keys MOSN never reads are refused, every matcher is checked, and a route that
/// could never match is refused (it would close every connection it was meant for).
fn build_route(r: &RawRoute, cluster: usize, at: &dyn Fn(&str, Problem) -> ConfigError) -> Result<Route, ConfigError> {
    let unread = [
        (r.snake_sources.is_some(), ".source_addrs", "SourceAddrs"),
        (r.snake_destinations.is_some(), ".destination_addrs", "DestinationAddrs"),
        (r.snake_source_port.is_some(), ".source_port", "SourcePort"),
        (r.snake_destination_port.is_some(), ".destination_port", "DestinationPort"),
    ];
    if let Some((_, key, go)) = unread.iter().find(|u| u.0) {
        return Err(at(key, Problem::UnreadRouteKey(go)));
    }
    let cidrs = |list: &Option<heapless::Vec<RawCidr, MAX_CIDRS>>, key: &str| {
        let mut out = heapless::Vec::new();
        for (i, c) in list.as_deref().unwrap_or(&[]).iter().enumerate() {
            let cidr = c
                .address
                .as_ref()
                .and_then(|a| a.parse().ok())
                .and_then(|ip| Cidr::new(ip, c.length.unwrap_or(u64::MAX)))
                .ok_or_else(|| at(&path_fmt(format_args!(".{key}[{i}]")), Problem::BadCidr))?;
            out.push(cidr).ok();
        }
        Ok::<_, ConfigError>(out)
    };
    let ports = |p: &Option<Raw>, key: &str| match p {
        None => Ok(heapless::Vec::new()),
        Some(t) => parse_ports(t).ok_or_else(|| at(&path_fmt(format_args!(".{key}")), Problem::BadPorts(t.clone()))),
    };
    let route = Route {
        cluster,
        sources: cidrs(&r.sources, "SourceAddrs")?,
        destinations: cidrs(&r.destinations, "DestinationAddrs")?,
        source_ports: ports(&r.source_port, "SourcePort")?,
        destination_ports: ports(&r.destination_port, "DestinationPort")?,
    };
    if !route.can_match() {
        return Err(at("", Problem::RouteNeverMatches));
    }
    Ok(route)
}

/// The listener's first `tcp_proxy` filter and its index; any other filter or TLS is refused.
fn first_tcp_proxy<'a>(
    l: &'a RawListener,
    at: &dyn Fn(&str, Problem) -> ConfigError,
) -> Result<(usize, &'a RawTcpProxy), ConfigError> {
    let mut found = None;
    for (ci, chain) in l.filter_chains.as_deref().unwrap_or(&[]).iter().enumerate() {
        if RawTls::on(&chain.tls_context) {
            return Err(at(&path_fmt(format_args!(".filter_chains[{ci}].tls_context")), Problem::TlsNotSupported));
        }
        if chain.tls_context_set.as_ref().is_some_and(|t| t.0) {
            return Err(at(
                &path_fmt(format_args!(".filter_chains[{ci}].tls_context_set")),
                Problem::NotSupported(NO_TLS_SET),
            ));
        }
        let Some(filters) = chain.filters.as_ref() else { continue };
        if let Some((fi, kind)) = &filters.other {
            let here = path_fmt(format_args!(".filter_chains[{ci}].filters[{fi}]"));
            return Err(at(&here, Problem::UnsupportedFilter(kind.clone())));
        }
        if let Some((fi, config)) = &filters.proxy {
            let Some(c) = config.as_ref() else {
                return Err(at(
                    &path_fmt(format_args!(".filter_chains[{ci}].filters[{fi}].config.cluster")),
                    Problem::Missing,
                ));
            };
            found.get_or_insert((*fi, c));
        }
    }
    found.ok_or_else(|| at(".filter_chains", Problem::NoTcpProxy))
}

const NO_TLS_SET: &str =
    "TLS is not supported, and baton will not guess which of a tls_context_set would apply; remove tls_context_set or leave it empty ([]) and terminate TLS in the service";
const NETWORK_TCP_OR_UNIX: &str =
    "only \"tcp\" and \"unix\" are supported (baton is a stream proxy; UDP is not); remove the key or set it to \"tcp\"";
const NO_ORIGINAL_DST: &str =
    "use_original_dst (transparent proxying: tproxy or redirect) is not supported; remove it (or set it to \"\", or false before MOSN 1.2)";
const ORIGINAL_DST_KIND: &str =
    "must be false, true or a string (\"tproxy\", \"redirect\", or \"\" for none), as MOSN reads it";
const NO_MARK: &str =
    "mark (SO_MARK on upstream connections, for policy routing) is not supported; remove it or set it to 0";
const NO_CLUSTERS_CONFIGS: &str =
    "clusters_configs (clusters loaded from a directory) is not supported; list the clusters in cluster_manager.clusters";
const NO_LISTENER_FILTERS: &str =
    "listener filters (original_dst and the like) are not supported; remove them or leave the list empty";
const NO_ZERO_CONNECT_TIMEOUT: &str =
    "0 (in MOSN: no timeout but the kernel's, about two minutes) is not supported; give a duration such as \"3s\", or remove it for baton.connect_timeout";
const NO_HTTP_CHECKS: &str =
    "HTTP health checks are not supported; remove \"protocol\" for TCP connect checks (MOSN's default)";
const LOG_SINKS: &str = "use \"stderr\" (the default) or \"syslog\" (/dev/log)";
const ONLY_SIMPLE: &str =
    "only \"SIMPLE\" clusters (a fixed host list) are supported; list the hosts and set \"type\": \"SIMPLE\"";

fn path_fmt(a: fmt::Arguments<'_>) -> PathText {
    let mut p = PathText::new();
    let _ = p.write_fmt(a);
    p
}

fn build_clusters(raw: &RawConfig, cap: &Captured<'_>) -> Result<Vec<Cluster, MAX_CLUSTERS>, ConfigError> {
    let mut out: Vec<Cluster, MAX_CLUSTERS> = Vec::new();
    if raw.cluster_manager.as_ref().and_then(|m| m.clusters_configs.as_ref()).is_some_and(|d| !d.is_empty()) {
        return Err(field(
            format_args!("cluster_manager.clusters_configs"),
            Problem::NotSupported(NO_CLUSTERS_CONFIGS),
        ));
    }
    let list = raw.cluster_manager.as_ref().and_then(|m| m.clusters.as_deref()).unwrap_or(&[]);
    for (ci, c) in list.iter().enumerate() {
        let name = c.name_upper.as_ref().or(c.name.as_ref()).filter(|n| !n.is_empty());
        let name = name.ok_or_else(|| field(format_args!("cluster_manager.clusters[{ci}].name"), Problem::Missing))?;
        let at = |f: &str, p: Problem| field(format_args!("cluster \"{name}\" (cluster_manager.clusters[{ci}]{f})"), p);
        if c.kind.as_deref().is_some_and(|k| k != "SIMPLE") {
            return Err(at(".type", Problem::NotSupported(ONLY_SIMPLE)));
        }
        if RawTls::on(&c.tls_context) {
            return Err(at(".tls_context", Problem::TlsNotSupported));
        }
        // MOSN uses cluster_manager.tls_context for such a cluster, and only when it is on
        if c.cluster_manager_tls == Some(true) && RawTls::on(&raw.cluster_manager.as_ref().and_then(|m| m.tls_context))
        {
            return Err(at(".cluster_manager_tls", Problem::TlsNotSupported));
        }
        let lb_text = c.lb_type.clone().unwrap_or_default();
        let lb = LbPolicy::parse(&lb_text).ok_or_else(|| at(".lb_type", Problem::BadLbType(lb_text.clone())))?;
        if c.mark.is_some_and(|m| m != 0) {
            return Err(at(".mark", Problem::NotSupported(NO_MARK)));
        }
        let mut hosts = Vec::new();
        for (hi, h) in c.hosts.as_deref().unwrap_or(&[]).iter().enumerate() {
            hosts.push(build_host(h, &|p| at(&path_fmt(format_args!(".hosts[{hi}]")), p))?).ok();
        }
        if hosts.is_empty() {
            return Err(at(".hosts", Problem::NoHosts));
        }
        if out.iter().any(|o| o.name.as_str() == name.as_str()) {
            return Err(at(".name", Problem::DuplicateName(PathText::new())));
        }
        let mut n = Name::new();
        n.push_str(name).map_err(|_| at(".name", Problem::TooLong { max: NAME_LEN }))?;
        let connect_timeout_ms = match &c.connect_timeout {
            None => None,
            Some(d) => {
                match duration(d, format_args!("cluster \"{name}\" (cluster_manager.clusters[{ci}].connect_timeout)"))?
                {
                    0 => return Err(at(".connect_timeout", Problem::NotSupported(NO_ZERO_CONNECT_TIMEOUT))),
                    ms => Some(ms),
                }
            }
        };
        // MOSN builds its limits from the first thresholds entry; 0 is Go's unset
        let ix = [ci as u16, 0];
        let max_connections = cap.u64(cap::CB_MAX_CONNECTIONS, ix).unwrap_or(0).min(u32::MAX as u64) as u32;
        let hc = cap.present(cap::HEALTH, ix).then(|| RawHealthCheck {
            protocol: cap.str(cap::HC_PROTOCOL, ix),
            service_name: cap.str(cap::HC_SERVICE, ix),
            timeout: cap.dur(cap::HC_TIMEOUT, ix),
            interval: cap.dur(cap::HC_INTERVAL, ix),
            healthy_threshold: cap.u64(cap::HC_HEALTHY, ix),
            unhealthy_threshold: cap.u64(cap::HC_UNHEALTHY, ix),
        });
        let health = match &hc {
            Some(h) => {
                build_health(h, &at, format_args!("cluster \"{name}\" (cluster_manager.clusters[{ci}].health_check"))?
            }
            None => None,
        };
        out.push(Cluster { name: n, lb, hosts, connect_timeout_ms, max_connections, health }).ok();
    }
    Ok(out)
}

/// MOSN's `health_check`: it runs only with a `service_name` (MOSN creates no checker
/// otherwise); HTTP checks are refused, any other protocol is a TCP connect (MOSN's default
/// session); zeros are MOSN's defaults.
fn build_health(
    h: &RawHealthCheck,
    at: &dyn Fn(&str, Problem) -> ConfigError,
    path: fmt::Arguments<'_>,
) -> Result<Option<HealthCheck>, ConfigError> {
    if h.service_name.as_ref().is_none_or(|s| s.is_empty()) {
        return Ok(None);
    }
    if h.protocol.as_deref().is_some_and(|p| p.eq_ignore_ascii_case("http1") || p.eq_ignore_ascii_case("http2")) {
        return Err(at(".health_check.protocol", Problem::NotSupported(NO_HTTP_CHECKS)));
    }
    let dur = |d: &Option<RawDur>, key: &str, dflt: u64| match d {
        None => Ok(dflt),
        Some(d) => duration(d, format_args!("{path}.{key})")).map(|ms| if ms == 0 { dflt } else { ms }),
    };
    let threshold = |v: Option<u64>| v.filter(|&v| v > 0).unwrap_or(1).min(u8::MAX as u64) as u8;
    Ok(Some(HealthCheck {
        interval_ms: dur(&h.interval, "interval", HealthCheck::DEFAULT_INTERVAL_MS)?,
        timeout_ms: dur(&h.timeout, "timeout", HealthCheck::DEFAULT_TIMEOUT_MS)?,
        healthy_threshold: threshold(h.healthy_threshold),
        unhealthy_threshold: threshold(h.unhealthy_threshold),
    }))
}

fn build_host(h: &RawHost, at: &dyn Fn(Problem) -> ConfigError) -> Result<Host, ConfigError> {
    let text = h.address.as_ref().ok_or_else(|| at(Problem::Missing))?;
    let addr = match text.strip_prefix("unix:") {
        Some(path) => Addr::unix(path).ok_or_else(|| at(Problem::BadUnixPath(text.clone())))?,
        None if text.starts_with('/') => return Err(at(Problem::BareUnixHost(text.clone()))),
        None => parse_addr(text).map(Addr::Ip).ok_or_else(|| at(Problem::BadAddress(text.clone())))?,
    };
    // MOSN clamps weights into its range instead of refusing them
    let weight = h.weight.unwrap_or(1).clamp(1, MAX_WEIGHT);
    Ok(Host { addr, weight: weight as u16 })
}

fn build_admin(cap: &Captured<'_>) -> Result<Option<SocketAddr>, ConfigError> {
    let z = [0, 0];
    if !cap.present(cap::ADMIN, z) {
        return Ok(None);
    }
    let sa = RawSocketAddress { address: cap.str(cap::ADMIN_ADDRESS, z), port_value: cap.u64(cap::ADMIN_PORT, z) };
    let p = "admin.address.socket_address";
    let ip = sa.address.as_ref().ok_or_else(|| field(format_args!("{p}.address"), Problem::Missing))?;
    let port = sa.port_value.ok_or_else(|| field(format_args!("{p}.port_value"), Problem::Missing))?;
    let port = range(port, 1, u16::MAX as u64).map_err(|e| field(format_args!("{p}.port_value"), e))?;
    parse_ip_port(ip, port as u16).map(Some).ok_or_else(|| {
        field(format_args!("{p}.address"), Problem::BadAddress(RawPath::try_from(ip.as_str()).unwrap_or_default()))
    })
}

/// MOSN's prometheus sink: `0.0.0.0:port` (as MOSN binds it), `/metrics` only. MOSN itself
/// refuses a sink without a port and the push-gateway mode.
fn build_metrics(cap: &Captured<'_>) -> Result<Option<SocketAddr>, ConfigError> {
    let mut found = None;
    let sinks = (0..MAX_SINKS as u16).take_while(|&i| cap.present(cap::SINK, [i, 0]));
    for i in sinks {
        let ix = [i, 0];
        let s = RawSink {
            kind: cap.str(cap::SINK_TYPE, ix),
            port: cap.u64(cap::SINK_PORT, ix),
            endpoint: cap.str(cap::SINK_ENDPOINT, ix),
            export_url: cap.str(cap::SINK_EXPORT_URL, ix),
        };
        let at = |f: &str, p: Problem| field(format_args!("metrics.sinks[{i}]{f}"), p);
        if s.kind.as_deref() != Some("prometheus") {
            return Err(at(".type", Problem::NotSupported(ONLY_PROMETHEUS)));
        }
        if s.export_url.as_ref().is_some_and(|u| !u.is_empty()) {
            return Err(at(".config.export_url", Problem::NotSupported(NO_PUSH)));
        }
        if s.endpoint.as_ref().is_some_and(|e| !e.is_empty() && e != "/metrics") {
            return Err(at(".config.endpoint", Problem::NotSupported(ONLY_METRICS_PATH)));
        }
        let port = s.port.ok_or_else(|| at(".config.port", Problem::Missing))?;
        let port = range(port, 1, u16::MAX as u64).map_err(|p| at(".config.port", p))?;
        if found.is_some() {
            return Err(at("", Problem::NotSupported(ONE_SINK)));
        }
        found = Some(SocketAddr::from(([0, 0, 0, 0], port as u16)));
    }
    Ok(found)
}

const ONLY_PROMETHEUS: &str = "only the \"prometheus\" sink is supported";
const NO_PUSH: &str = "the push-gateway mode is not supported (MOSN refuses it too); remove export_url and give a port";
const ONLY_METRICS_PATH: &str =
    "baton serves the prometheus sink at /metrics only; remove endpoint or set it to \"/metrics\"";
const ONE_SINK: &str = "only one prometheus sink is supported";

/// Whether two listening addresses would collide in `bind`: the same port, and the same IP or
/// either one a wildcard (a wildcard takes both families, `addr::same_listen_addr`).
fn collide(a: &SocketAddr, b: &SocketAddr) -> bool {
    a.port() == b.port() && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}

fn check_admin_clash(cfg: &Config) -> Result<(), ConfigError> {
    let listener_at = |a: &SocketAddr| cfg.listeners.iter().find(|l| l.addr.ip().is_some_and(|la| collide(&la, a)));
    let used_by = |what: fmt::Arguments<'_>| path_fmt(what);
    if let Some(a) = cfg.admin {
        if let Some(l) = listener_at(&a) {
            return Err(field(
                format_args!("admin.address"),
                Problem::DuplicateAddress(used_by(format_args!("listener \"{}\"", l.name))),
            ));
        }
    }
    if let Some(m) = cfg.metrics {
        if let Some(l) = listener_at(&m) {
            return Err(field(
                format_args!("metrics.sinks"),
                Problem::DuplicateAddress(used_by(format_args!("listener \"{}\"", l.name))),
            ));
        }
        if cfg.admin.is_some_and(|a| collide(&a, &m)) {
            return Err(field(
                format_args!("metrics.sinks"),
                Problem::DuplicateAddress(used_by(format_args!("the admin API"))),
            ));
        }
    }
    Ok(())
}

fn range(v: u64, min: u64, max: u64) -> Result<u64, Problem> {
    if (min..=max).contains(&v) {
        Ok(v)
    } else {
        Err(Problem::OutOfRange { min, max, found: v })
    }
}

fn duration(d: &RawDur, path: fmt::Arguments<'_>) -> Result<u64, ConfigError> {
    match d {
        RawDur::Zero => Ok(0),
        RawDur::Text(s) => parse_duration_ms(s).ok_or_else(|| field(path, Problem::BadDuration(s.clone()))),
    }
}

fn apply_settings(st: &mut Settings, b: &RawBaton) -> Result<(), ConfigError> {
    let num = |v: Option<u64>, name: &str, min: u64, max: u64, dflt: u64| -> Result<u64, ConfigError> {
        v.map_or(Ok(dflt), |v| range(v, min, max)).map_err(|p| field(format_args!("baton.{name}"), p))
    };
    let dur = |v: &Option<RawDur>, name: &str, dflt: u64| -> Result<u64, ConfigError> {
        v.as_ref().map_or(Ok(dflt), |s| duration(s, format_args!("baton.{name}")))
    };
    if let Some(d) = &b.runtime_dir {
        st.runtime_dir = Some(abs_path(d, "runtime_dir")?);
    }
    if let Some(p) = &b.pid_file {
        st.pid_file = Some(abs_path(p, "pid_file")?);
    }
    st.max_connections =
        num(b.max_connections, "max_connections", 1, MAX_CONNECTIONS_LIMIT as u64, st.max_connections as u64)? as u32;
    st.buffer_size =
        num(b.buffer_size, "buffer_size", MIN_BUFFER as u64, MAX_BUFFER as u64, st.buffer_size as u64)? as u32;
    st.backlog = num(b.backlog, "backlog", 1, MAX_BACKLOG, st.backlog as u64)? as u32;
    st.connect_attempts =
        num(b.connect_attempts, "connect_attempts", 1, MAX_HOSTS as u64, st.connect_attempts as u64)? as u8;
    st.fail_threshold = num(b.fail_threshold, "fail_threshold", 1, MAX_FAIL_THRESHOLD, st.fail_threshold as u64)? as u8;
    st.max_draining = num(b.max_draining, "max_draining", 1, MAX_DRAINING, st.max_draining as u64)? as u8;
    st.connect_timeout_ms = dur(&b.connect_timeout, "connect_timeout", st.connect_timeout_ms)?;
    st.idle_timeout_ms = dur(&b.idle_timeout, "idle_timeout", st.idle_timeout_ms)?;
    st.drain_timeout_ms = dur(&b.drain_timeout, "drain_timeout", st.drain_timeout_ms)?;
    st.handoff_timeout_ms = dur(&b.handoff_timeout, "handoff_timeout", st.handoff_timeout_ms)?;
    st.down_time_ms = dur(&b.down_time, "down_time", st.down_time_ms)?;
    if st.connect_timeout_ms == 0 {
        return Err(field(
            format_args!("baton.connect_timeout"),
            Problem::OutOfRange { min: 1, max: u64::MAX, found: 0 },
        ));
    }
    if st.handoff_timeout_ms == 0 {
        return Err(field(
            format_args!("baton.handoff_timeout"),
            Problem::OutOfRange { min: 1, max: u64::MAX, found: 0 },
        ));
    }
    st.transfer_connections = b.transfer_connections.unwrap_or(st.transfer_connections);
    st.splice = b.splice.unwrap_or(st.splice);
    st.log = match b.log.as_deref() {
        None | Some("stderr") => LogSink::Stderr,
        Some("syslog") => LogSink::Syslog,
        Some(_) => return Err(field(format_args!("baton.log"), Problem::NotSupported(LOG_SINKS))),
    };
    Ok(())
}

/// A listener's `access_logs[0]`: `log_path` (absolute, or `stdout` / `stderr`) and an optional
/// `log_format`, checked as MOSN checks it.
fn access_log(
    cap: &Captured<'_>,
    ix: [u16; 2],
    at: &dyn Fn(&str, Problem) -> ConfigError,
) -> Result<Option<AccessLog>, ConfigError> {
    if !cap.present(cap::ACCESS_LOG, ix) {
        return Ok(None);
    }
    let p = cap.path(cap::AL_PATH, ix).filter(|p| !p.is_empty());
    let p = p.ok_or_else(|| at(".access_logs[0].log_path", Problem::Missing))?;
    if !matches!(p.as_str(), "stdout" | "stderr") {
        if !p.starts_with('/') {
            return Err(at(".access_logs[0].log_path", Problem::NotSupported(LOG_PATHS)));
        }
        if !super::value::is_plain_abs_path(&p) {
            return Err(at(".access_logs[0].log_path", Problem::NotSupported(PLAIN_PATH)));
        }
    }
    let mut path = Path::new();
    path.push_str(&p).map_err(|_| at(".access_logs[0].log_path", Problem::TooLong { max: PATH_LEN }))?;
    // MOSN's default given word for word is the default (`/config` writes it out)
    let format =
        cap.format(cap::AL_FORMAT, ix).filter(|f| !f.is_empty() && f != crate::sansio::accesslog::DEFAULT_FORMAT);
    if let Some(f) = &format {
        crate::sansio::accesslog::check(f).map_err(|e| at(".access_logs[0].log_format", Problem::BadFormat(e)))?;
    }
    Ok(Some(AccessLog { path, format }))
}

fn abs_path(p: &RawPath, name: &str) -> Result<Path, ConfigError> {
    if !p.starts_with('/') {
        return Err(field(format_args!("baton.{name}"), Problem::RelativePath));
    }
    if !super::value::is_plain_abs_path(p) {
        return Err(field(format_args!("baton.{name}"), Problem::NotSupported(PLAIN_PATH)));
    }
    let mut out = Path::new();
    out.push_str(p).map_err(|_| field(format_args!("baton.{name}"), Problem::TooLong { max: PATH_LEN }))?;
    Ok(out)
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
