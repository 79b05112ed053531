//! Counters and their two renderings: `/stats` (JSON) and `/metrics` (Prometheus text).
//! Sans-io: the server fills a `Snapshot`; rendering is `core::fmt` into a caller's buffer.

use core::fmt::{self, Write};

use crate::sansio::config::{render::Esc, render::EscAddr, Config, MAX_HOSTS};
use crate::sansio::lb::HostState;

/// Cumulative counters; they carry over a hot restart (the successor adds them to its own).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// Client connections accepted.
    pub accepted: u64,
    /// Clients closed because no upstream could be connected.
    pub refused: u64,
    /// Bytes received from clients / sent to clients, of closed connections.
    pub rx: u64,
    pub tx: u64,
    /// Upstream connect attempts that failed or timed out.
    pub upstream_failures: u64,
    /// Connections closed by the idle timeout.
    pub idle_timeouts: u64,
    /// Hot restarts survived (0 at cold start).
    pub generation: u64,
}

/// Live connection transfer on hot restarts, as seen by this process (not carried over).
/// `/stats` shows the receiving side; the sending side's counters are for the old process's
/// log, since its admin listener has moved to the successor by then.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TransferCounters {
    /// Connections received from the predecessor at start-up.
    pub received: u64,
    /// Buffered bytes (read, not yet written) that came with them (DATA records or pipes).
    pub received_bytes: u64,
    /// Connections the predecessor offered that this process declined (no slot, config).
    pub declined: u64,
    /// Connections the predecessor reported keeping (not offered or declined): they drain there.
    pub predecessor_kept: u64,
    /// Connections handed to the successor.
    pub sent: u64,
    /// Connections still here when the transfer ended (connecting, declined, or not moved
    /// because it failed): they drain.
    pub kept: u64,
    /// Connections that ended while this process drained.
    pub drained: u64,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct ListenerCounters {
    pub accepted: u64,
    pub active: u32,
    /// Clients closed because no route matched them (a listener with routes only).
    pub no_route: u64,
    /// Clients closed because their cluster was at its `circuit_breakers` ceiling.
    pub overflow: u64,
}

/// Everything `/stats` and `/metrics` show, borrowed from the server for one rendering.
pub struct Snapshot<'a> {
    pub pid: u32,
    pub version: &'a str,
    pub state: &'a str,
    pub uptime_s: u64,
    pub now_ms: u64,
    pub active: u32,
    pub max_connections: u32,
    /// Live bytes of open connections, added to the totals.
    pub live_rx: u64,
    pub live_tx: u64,
    pub totals: &'a Totals,
    pub transfer: &'a TransferCounters,
    pub cfg: &'a Config,
    pub listeners: &'a [ListenerCounters],
    pub hosts: &'a [heapless::Vec<HostState, MAX_HOSTS>],
    /// Older generations still draining (known to the restart layer; 0 when not told).
    pub draining: usize,
    /// Access log lines written, and dropped (a file that did not take them in time, a full
    /// disk), since this process started.
    pub access_log_lines: u64,
    /// The last hot restarts and their results, oldest first.
    pub history: &'a [crate::sansio::codec::RestartEvent],
    pub access_log_dropped: u64,
    /// When this process image started, in seconds since the Unix epoch.
    pub started_unix_s: Option<u64>,
    /// Read from the system only for `/metrics` (the admin fills it in); empty otherwise.
    pub process: ProcessStats,
}

pub fn write_json(w: &mut dyn Write, s: &Snapshot<'_>) -> fmt::Result {
    let t = s.totals;
    write!(
        w,
        "{{\"pid\":{},\"version\":\"{}\",\"state\":\"{}\",\"generation\":{},\"uptime_s\":{},\
         \"connections\":{{\"active\":{},\"max\":{},\"total\":{},\"refused\":{},\"idle_timeouts\":{}}},\
         \"bytes\":{{\"rx\":{},\"tx\":{}}},\"upstream_failures\":{},\
         \"transfer\":{{\"received\":{},\"received_bytes\":{},\"declined\":{},\"predecessor_kept\":{}}},\
         \"access_log\":{{\"lines\":{},\"dropped\":{}}},\"listeners\":[",
        s.pid,
        s.version,
        s.state,
        t.generation,
        s.uptime_s,
        s.active,
        s.max_connections,
        t.accepted,
        t.refused,
        t.idle_timeouts,
        t.rx + s.live_rx,
        t.tx + s.live_tx,
        t.upstream_failures,
        s.transfer.received,
        s.transfer.received_bytes,
        s.transfer.declined,
        s.transfer.predecessor_kept,
        s.access_log_lines,
        s.access_log_dropped
    )?;
    for (i, (l, c)) in s.cfg.listeners.iter().zip(s.listeners).enumerate() {
        let sep = if i == 0 { "" } else { "," };
        write!(
            w,
            "{sep}{{\"name\":\"{}\",\"address\":\"{}\",\"cluster\":\"{}\",\"routes\":{},\"active\":{},\"total\":{},\"no_route\":{},\"overflow\":{}}}",
            Esc(&l.name),
            EscAddr(&l.addr),
            Esc(l.cluster.map_or("", |c| &s.cfg.clusters[c].name)),
            l.routes.len(),
            c.active,
            c.accepted,
            c.no_route,
            c.overflow
        )?;
    }
    w.write_str("],\"clusters\":[")?;
    for (i, (c, hs)) in s.cfg.clusters.iter().zip(s.hosts).enumerate() {
        let sep = if i == 0 { "" } else { "," };
        write!(w, "{sep}{{\"name\":\"{}\",\"lb_type\":\"{}\",\"hosts\":[", Esc(&c.name), c.lb.as_str())?;
        for (j, (h, st)) in c.hosts.iter().zip(hs).enumerate() {
            let sep = if j == 0 { "" } else { "," };
            write!(
                w,
                "{sep}{{\"address\":\"{}\",\"weight\":{},\"healthy\":{},\"down_reason\":\"{}\",\"active\":{},\"total\":{},\"failures\":{}}}",
                EscAddr(&h.addr),
                h.weight,
                !st.is_down(s.now_ms),
                st.down_reason(s.now_ms),
                st.active,
                st.total,
                st.failures
            )?;
        }
        w.write_str("]}")?;
    }
    w.write_str("]}\n")
}

/// The process metrics a scraper expects (Prometheus' client conventions), read by the caller
/// from the system; `None` when it could not read one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProcessStats {
    pub start_time_s: Option<u64>,
    pub open_fds: Option<u64>,
    pub max_fds: Option<u64>,
    pub resident_bytes: Option<u64>,
}

/// A label value escaped as the text exposition format wants it: `\\`, `\"` and `\n`.
pub struct PromEsc<'a>(pub &'a str);

impl fmt::Display for PromEsc<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            match c {
                '\\' => f.write_str("\\\\")?,
                '"' => f.write_str("\\\"")?,
                '\n' => f.write_str("\\n")?,
                c => f.write_char(c)?,
            }
        }
        Ok(())
    }
}

/// The Prometheus text format (version 0.0.4): everything `/stats` has, with Prometheus'
/// naming (units in the name, `_total` on counters), plus `baton_build_info` and the process
/// metrics.
pub fn write_prometheus(w: &mut dyn Write, s: &Snapshot<'_>) -> fmt::Result {
    let t = s.totals;
    let x = s.transfer;
    let single: [(&str, &str, &str, u64); 17] = [
        ("baton_connections_active", "gauge", "Open proxied connections.", s.active as u64),
        ("baton_connections_max", "gauge", "The max_connections setting.", s.max_connections as u64),
        ("baton_connections_total", "counter", "Client connections accepted.", t.accepted),
        ("baton_connections_refused_total", "counter", "Clients closed because no upstream was reachable.", t.refused),
        ("baton_idle_timeouts_total", "counter", "Connections closed by the idle timeout.", t.idle_timeouts),
        ("baton_upstream_failures_total", "counter", "Failed or timed-out upstream connects.", t.upstream_failures),
        ("baton_client_received_bytes_total", "counter", "Bytes received from clients.", t.rx + s.live_rx),
        ("baton_client_sent_bytes_total", "counter", "Bytes sent to clients.", t.tx + s.live_tx),
        ("baton_generation", "gauge", "Hot restarts since the cold start.", t.generation),
        ("baton_uptime_seconds", "gauge", "Seconds since this process started.", s.uptime_s),
        ("baton_transfer_received_total", "counter", "Connections received from the predecessor.", x.received),
        ("baton_transfer_received_bytes_total", "counter", "Buffered bytes that came with them.", x.received_bytes),
        ("baton_transfer_declined_total", "counter", "Offered connections declined (no slot, config).", x.declined),
        ("baton_transfer_predecessor_kept", "gauge", "Connections the predecessor kept to drain.", x.predecessor_kept),
        (
            "baton_draining_generations",
            "gauge",
            "Older generations still draining after hot restarts.",
            s.draining as u64,
        ),
        ("baton_access_log_lines_total", "counter", "Access log lines written by this process.", s.access_log_lines),
        (
            "baton_access_log_dropped_total",
            "counter",
            "Access log lines dropped by this process (a file that did not take them, a full disk).",
            s.access_log_dropped,
        ),
    ];
    for (name, kind, help, v) in single {
        write!(w, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}\n")?;
    }
    write!(w, "# HELP baton_build_info The running baton's version.\n# TYPE baton_build_info gauge\nbaton_build_info{{version=\"{}\"}} 1\n", PromEsc(s.version))?;
    let p = s.process;
    let process: [(&str, &str, &str, Option<u64>); 4] = [
        (
            "process_start_time_seconds",
            "gauge",
            "Start time of the process since the Unix epoch in seconds.",
            p.start_time_s,
        ),
        ("process_open_fds", "gauge", "Number of open file descriptors.", p.open_fds),
        ("process_max_fds", "gauge", "Maximum number of open file descriptors.", p.max_fds),
        ("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", p.resident_bytes),
    ];
    for (name, kind, help, v) in process {
        if let Some(v) = v {
            write!(w, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}\n")?;
        }
    }
    type ListenerMetric = (&'static str, &'static str, &'static str, fn(&ListenerCounters) -> u64);
    let per_listener: [ListenerMetric; 4] = [
        ("baton_listener_connections_active", "gauge", "Open connections per listener.", |c| c.active as u64),
        ("baton_listener_connections_total", "counter", "Client connections accepted per listener.", |c| c.accepted),
        ("baton_listener_no_route_total", "counter", "Clients closed because no route matched them.", |c| c.no_route),
        ("baton_listener_overflow_total", "counter", "Clients closed at their cluster's circuit breaker.", |c| {
            c.overflow
        }),
    ];
    for (name, kind, help, value) in per_listener {
        write!(w, "# HELP {name} {help}\n# TYPE {name} {kind}\n")?;
        for (l, c) in s.cfg.listeners.iter().zip(s.listeners) {
            writeln!(w, "{name}{{listener=\"{}\"}} {}", PromEsc(&l.name), value(c))?;
        }
    }
    type HostMetric = (&'static str, &'static str, &'static str, fn(&HostState, u64) -> u64);
    let per_host: [HostMetric; 5] = [
        ("baton_host_healthy", "gauge", "1 when the host is not marked down.", |st, now| !st.is_down(now) as u64),
        ("baton_host_check_down", "gauge", "1 when active health checks mark the host down.", |st, _| {
            st.check_down as u64
        }),
        ("baton_host_connections_active", "gauge", "Open connections per host.", |st, _| st.active as u64),
        ("baton_host_connections_total", "counter", "Connections opened to the host.", |st, _| st.total),
        ("baton_host_connect_failures_total", "counter", "Failed or timed-out connects to the host.", |st, _| {
            st.failures
        }),
    ];
    for (name, kind, help, value) in per_host {
        write!(w, "# HELP {name} {help}\n# TYPE {name} {kind}\n")?;
        for (c, hs) in s.cfg.clusters.iter().zip(s.hosts) {
            for (h, st) in c.hosts.iter().zip(hs) {
                writeln!(
                    w,
                    "{name}{{cluster=\"{}\",host=\"{}\"}} {}",
                    PromEsc(&c.name),
                    HostLabel(&h.addr),
                    value(st, s.now_ms)
                )?;
            }
        }
    }
    Ok(())
}

/// A host's address as a label value (a unix path escaped like any label).
struct HostLabel<'a>(&'a crate::sansio::addr::Addr);

impl fmt::Display for HostLabel<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            crate::sansio::addr::Addr::Ip(a) => write!(f, "{a}"),
            crate::sansio::addr::Addr::Unix(p) => write!(f, "unix:{}", PromEsc(p)),
        }
    }
}
