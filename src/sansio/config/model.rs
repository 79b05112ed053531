//! The validated configuration: fixed-capacity types built from `core` and `heapless` only.
//!
//! Invariants: every `Listener::cluster` indexes `Config::clusters`; every cluster has at least one
//! host; listener addresses are unique. These hold for any `Config` returned by `config::parse`.

use core::net::SocketAddr;
use heapless::{String, Vec};

pub use crate::sansio::addr::Addr;
pub use crate::sansio::route::{Route, MAX_ROUTES};

pub use crate::sansio::limits::ACCESS_FORMAT_LEN;
pub use crate::sansio::limits::MAX_BUFFER;
pub use crate::sansio::limits::MAX_CLUSTERS;
pub use crate::sansio::limits::MAX_CONFIG_BYTES;
pub use crate::sansio::limits::MAX_CONNECTIONS_LIMIT;
pub use crate::sansio::limits::MAX_HOSTS;
pub use crate::sansio::limits::MAX_LISTENERS;
pub use crate::sansio::limits::MIN_BUFFER;
pub use crate::sansio::limits::NAME_LEN;
pub use crate::sansio::limits::PATH_LEN;

pub type Name = String<NAME_LEN>;
pub type Path = String<PATH_LEN>;

/// Load-balancing policy of a cluster, with MOSN's meaning of each name for a TCP proxy
/// (mosn/mosn pkg/upstream/cluster/loadbalancer.go, read at 707d635).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LbPolicy {
    /// `LB_ROUNDROBIN`: every healthy host in turn; weights are not used (MOSN's
    /// `roundRobinLoadBalancer` ignores them).
    RoundRobin,
    /// `LB_WEIGHTED_ROUNDROBIN`: in proportion to the weights (smooth, as nginx; MOSN uses an
    /// EDF scheduler with the same proportions).
    WeightedRoundRobin,
    /// `LB_RANDOM`: uniform among the healthy hosts; weights are not used.
    Random,
    /// `LB_REQUEST_ROUNDROBIN`: MOSN starts at the first host for every new downstream
    /// connection and moves on only when a connect fails, so each connection goes to the first
    /// healthy host in list order.
    RequestRoundRobin,
    /// `LB_LEAST_CONNECTION` (alias `LB_LEASTCONNECTION`): fewest active connections per unit
    /// of weight (MOSN: weight / (active + 1) for unequal weights, two random choices otherwise;
    /// baton looks at every host).
    LeastConn,
    /// `LB_LEAST_REQUEST`: MOSN counts active requests, which its TCP proxy never opens, so
    /// every count is 0: weighted round robin when the weights differ, random when they do not.
    LeastRequest,
}

impl LbPolicy {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "LB_ROUNDROBIN" | "" => Some(Self::RoundRobin),
            "LB_WEIGHTED_ROUNDROBIN" => Some(Self::WeightedRoundRobin),
            "LB_RANDOM" => Some(Self::Random),
            "LB_REQUEST_ROUNDROBIN" => Some(Self::RequestRoundRobin),
            "LB_LEAST_CONNECTION" | "LB_LEASTCONNECTION" => Some(Self::LeastConn),
            "LB_LEAST_REQUEST" => Some(Self::LeastRequest),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::RoundRobin => "LB_ROUNDROBIN",
            Self::WeightedRoundRobin => "LB_WEIGHTED_ROUNDROBIN",
            Self::Random => "LB_RANDOM",
            Self::RequestRoundRobin => "LB_REQUEST_ROUNDROBIN",
            Self::LeastConn => "LB_LEAST_CONNECTION",
            Self::LeastRequest => "LB_LEAST_REQUEST",
        }
    }
}

/// Log verbosity, from `default_log_level` or `--log-level`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    /// Accepts MOSN's upper-case names and the lower-case command-line ones.
    pub fn parse(s: &str) -> Option<Self> {
        let mut buf = [0u8; 8];
        if s.len() > buf.len() {
            return None;
        }
        for (d, c) in buf.iter_mut().zip(s.bytes()) {
            *d = c.to_ascii_lowercase();
        }
        match &buf[..s.len()] {
            b"error" | b"fatal" => Some(Self::Error),
            b"warn" | b"warning" => Some(Self::Warn),
            b"info" => Some(Self::Info),
            b"debug" => Some(Self::Debug),
            b"trace" => Some(Self::Trace),
            _ => None,
        }
    }

    /// MOSN's spelling, as in `default_log_level`.
    pub fn as_mosn_str(self) -> &'static str {
        match self {
            Self::Error => "ERROR",
            Self::Warn => "WARN",
            Self::Info => "INFO",
            Self::Debug => "DEBUG",
            Self::Trace => "TRACE",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Warn => "warn",
            Self::Info => "info",
            Self::Debug => "debug",
            Self::Trace => "trace",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Host {
    pub addr: Addr,
    /// Relative share for round-robin and random, divisor for least-connections. 1..=128.
    pub weight: u16,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Cluster {
    pub name: Name,
    pub lb: LbPolicy,
    pub hosts: Vec<Host, MAX_HOSTS>,
    /// MOSN's cluster `connect_timeout`; `None`: `baton.connect_timeout`.
    pub connect_timeout_ms: Option<u64>,
    /// MOSN's `circuit_breakers[0].max_connections`: upstream connections open at once to this
    /// cluster; a client beyond it is closed. 0: no ceiling but `max_connections`.
    pub max_connections: u32,
    /// Active TCP connect checks (MOSN's `health_check`, which runs only with a `service_name`).
    pub health: Option<HealthCheck>,
}

/// Active health checking of a cluster's hosts: a TCP connect every `interval_ms`, failed when
/// refused or not complete within `timeout_ms`. Defaults and thresholds as MOSN's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HealthCheck {
    pub interval_ms: u64,
    pub timeout_ms: u64,
    pub healthy_threshold: u8,
    pub unhealthy_threshold: u8,
}

impl HealthCheck {
    /// MOSN's defaults (`pkg/upstream/healthcheck`): every 15 s, 1 s timeout, thresholds 1.
    pub const DEFAULT_INTERVAL_MS: u64 = 15_000;
    pub const DEFAULT_TIMEOUT_MS: u64 = 1_000;
}

#[derive(Clone, Debug, PartialEq)]
pub struct Listener {
    /// MOSN allows unnamed listeners; they get `listener-N` here.
    pub name: Name,
    pub addr: Addr,
    /// The tcp_proxy `cluster` (an index into `Config::clusters`); when it is `None`, `routes`
    /// choose per connection (`sansio::route`, MOSN's rules).
    pub cluster: Option<usize>,
    pub routes: Vec<Route, MAX_ROUTES>,
    /// `connection_idle_timeout`; `None`: `baton.idle_timeout`. 0 disables.
    pub idle_timeout_ms: Option<u64>,
    /// MOSN's `access_logs` (one): a line per closed connection.
    pub access_log: Option<AccessLog>,
}

impl Listener {
    /// Whether a listening socket bound to `a` is this listener's (`addr::same_listen_addr`).
    pub fn listens_on(&self, a: &Addr) -> bool {
        match (&self.addr, a) {
            (Addr::Ip(me), Addr::Ip(a)) => crate::sansio::addr::same_listen_addr(a, me),
            (me, a) => me == a,
        }
    }
}

/// Where a listener's access log goes, and its format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessLog {
    /// An absolute path, or `stdout` / `stderr`.
    pub path: Path,
    /// `None`: MOSN's default (`sansio::accesslog::DEFAULT_FORMAT`).
    pub format: Option<String<ACCESS_FORMAT_LEN>>,
}

impl AccessLog {
    pub fn format(&self) -> &str {
        self.format.as_deref().unwrap_or(crate::sansio::accesslog::DEFAULT_FORMAT)
    }
}

impl Listener {
    /// Every cluster this listener can send a connection to (its `cluster`, or its routes').
    pub fn clusters(&self) -> impl Iterator<Item = usize> + '_ {
        self.cluster.into_iter().chain(self.routes.iter().map(|r| r.cluster))
    }
}

/// baton's own settings (the `"baton"` object). Durations are in milliseconds.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// `None`: the per-user default, chosen at start-up (`DEFAULT_RUNTIME_DIR` for root).
    pub runtime_dir: Option<Path>,
    pub pid_file: Option<Path>,
    pub max_connections: u32,
    pub buffer_size: u32,
    pub backlog: u32,
    pub connect_timeout_ms: u64,
    /// 0 disables the idle timeout.
    pub idle_timeout_ms: u64,
    pub drain_timeout_ms: u64,
    pub handoff_timeout_ms: u64,
    /// Hosts tried per client before it is closed.
    pub connect_attempts: u8,
    /// Consecutive failures that mark a host down.
    pub fail_threshold: u8,
    pub down_time_ms: u64,
    /// Old processes allowed to drain at once; the oldest is told to close when exceeded.
    pub max_draining: u8,
    /// Ask the predecessor, at a hot restart, for its established connections instead of
    /// letting it drain them (the new process's setting decides; see `transfer`). On by
    /// default: tests/transfer.rs and tests/zero_loss.rs show no byte lost either way.
    pub transfer_connections: bool,
    /// Relay bytes with splice(2) through a pipe per direction instead of user-space buffers
    /// (docs/benchmarks.md compares both).
    pub splice: bool,
    /// Where log lines go.
    pub log: LogSink,
}

/// Where log lines go (`"baton": {"log": ...}`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogSink {
    /// One line per record on stderr (the init system's log, or a pipe to `logger`).
    #[default]
    Stderr,
    /// Datagrams to `/dev/log` in the form BusyBox syslogd and systemd-journald read; stderr
    /// when `/dev/log` is not there.
    Syslog,
}

impl LogSink {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stderr => "stderr",
            Self::Syslog => "syslog",
        }
    }
}

impl Settings {
    /// Root's runtime directory when the config names none (others: `$XDG_RUNTIME_DIR/baton`,
    /// else `/tmp/baton-UID`, which another user can only squat on, never subvert: baton refuses
    /// a directory it does not own).
    pub const DEFAULT_RUNTIME_DIR: &'static str = "/run/baton";
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            runtime_dir: None,
            pid_file: None,
            max_connections: 1024,
            buffer_size: 16 * 1024,
            backlog: 1024,
            connect_timeout_ms: 3_000,
            // MOSN's DefaultIdleTimeout for a listener without connection_idle_timeout
            idle_timeout_ms: 90_000,
            drain_timeout_ms: 30_000,
            handoff_timeout_ms: 5_000,
            connect_attempts: 3,
            fail_threshold: 3,
            down_time_ms: 10_000,
            max_draining: 2,
            transfer_connections: true,
            splice: false,
            log: LogSink::Stderr,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub listeners: Vec<Listener, MAX_LISTENERS>,
    pub clusters: Vec<Cluster, MAX_CLUSTERS>,
    pub admin: Option<SocketAddr>,
    /// MOSN's prometheus sink (`metrics.sinks[]`): a second service listener serving
    /// `/metrics` on `0.0.0.0:port`, handed over on a hot restart like the admin one.
    pub metrics: Option<SocketAddr>,
    pub log_level: LogLevel,
    pub settings: Settings,
}

impl Config {
    pub fn listener_by_addr(&self, addr: &Addr) -> Option<usize> {
        self.listeners.iter().position(|l| l.listens_on(addr))
    }

    /// The idle timeout of a listener's connections (ms, 0 = none).
    pub fn idle_timeout_ms(&self, listener: usize) -> u64 {
        self.listeners[listener].idle_timeout_ms.unwrap_or(self.settings.idle_timeout_ms)
    }

    /// The connect timeout towards a cluster's hosts (ms).
    pub fn connect_timeout_ms(&self, cluster: usize) -> u64 {
        self.clusters[cluster].connect_timeout_ms.unwrap_or(self.settings.connect_timeout_ms)
    }

    pub fn cluster_by_name(&self, name: &str) -> Option<usize> {
        self.clusters.iter().position(|c| c.name.as_str() == name)
    }
}
