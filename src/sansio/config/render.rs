//! Renders the effective config as JSON (for `GET /config`), with every default filled in.
//! Pure `core::fmt`, no allocation.

use core::fmt::{self, Write};

use super::model::{Addr, Config};
use crate::sansio::route::{Cidr, PortRange, Route};

/// Writes `cfg` as MOSN-shaped JSON plus the complete `"baton"` object.
pub fn write_json(w: &mut dyn Write, cfg: &Config) -> fmt::Result {
    write!(w, "{{\"servers\":[{{\"default_log_level\":\"{}\",\"listeners\":[", cfg.log_level.as_mosn_str())?;
    for (i, l) in cfg.listeners.iter().enumerate() {
        let sep = if i == 0 { "" } else { "," };
        match &l.addr {
            Addr::Ip(a) => write!(w, "{sep}{{\"name\":\"{}\",\"address\":\"{a}\",", Esc(&l.name))?,
            Addr::Unix(p) => {
                write!(w, "{sep}{{\"name\":\"{}\",\"address\":\"{}\",\"network\":\"unix\",", Esc(&l.name), Esc(p))?
            }
        }
        w.write_str("\"bind_port\":true,")?;
        if let Some(a) = &l.access_log {
            write!(
                w,
                "\"access_logs\":[{{\"log_path\":\"{}\",\"log_format\":\"{}\"}}],",
                Esc(&a.path),
                Esc(a.format())
            )?;
        }
        if let Some(ms) = l.idle_timeout_ms {
            write!(w, "\"connection_idle_timeout\":\"{ms}ms\",")?;
        }
        w.write_str("\"filter_chains\":[{\"filters\":[{\"type\":\"tcp_proxy\",\"config\":{")?;
        match l.cluster {
            Some(c) => write!(w, "\"cluster\":\"{}\"", Esc(&cfg.clusters[c].name))?,
            None => write_routes(w, cfg, &l.routes)?,
        }
        w.write_str("}}]}]}")?;
    }
    w.write_str("]}],\"cluster_manager\":{\"clusters\":[")?;
    for (i, c) in cfg.clusters.iter().enumerate() {
        let sep = if i == 0 { "" } else { "," };
        write!(w, "{sep}{{\"name\":\"{}\",\"type\":\"SIMPLE\",\"lb_type\":\"{}\",", Esc(&c.name), c.lb.as_str())?;
        if let Some(ms) = c.connect_timeout_ms {
            write!(w, "\"connect_timeout\":\"{ms}ms\",")?;
        }
        if let Some(h) = &c.health {
            write!(
                w,
                "\"health_check\":{{\"service_name\":\"{}\",\"interval\":\"{}ms\",\"timeout\":\"{}ms\",\"healthy_threshold\":{},\"unhealthy_threshold\":{}}},",
                Esc(&c.name), h.interval_ms, h.timeout_ms, h.healthy_threshold, h.unhealthy_threshold
            )?;
        }
        if c.max_connections != 0 {
            write!(w, "\"circuit_breakers\":[{{\"max_connections\":{}}}],", c.max_connections)?;
        }
        w.write_str("\"hosts\":[")?;
        for (j, h) in c.hosts.iter().enumerate() {
            let sep = if j == 0 { "" } else { "," };
            write!(w, "{sep}{{\"address\":\"{}\",\"weight\":{}}}", EscAddr(&h.addr), h.weight)?;
        }
        w.write_str("]}")?;
    }
    w.write_str("]}")?;
    if let Some(a) = cfg.admin {
        write!(
            w,
            ",\"admin\":{{\"address\":{{\"socket_address\":{{\"address\":\"{}\",\"port_value\":{}}}}}}}",
            a.ip(),
            a.port()
        )?;
    }
    if let Some(m) = cfg.metrics {
        write!(w, ",\"metrics\":{{\"sinks\":[{{\"type\":\"prometheus\",\"config\":{{\"port\":{}}}}}]}}", m.port())?;
    }
    let s = &cfg.settings;
    w.write_str(",\"baton\":{")?;
    if let Some(d) = &s.runtime_dir {
        write!(w, "\"runtime_dir\":\"{}\",", Esc(d))?;
    }
    if let Some(p) = &s.pid_file {
        write!(w, "\"pid_file\":\"{}\",", Esc(p))?;
    }
    write!(
        w,
        "\"max_connections\":{},\"buffer_size\":{},\"backlog\":{},\"connect_timeout\":\"{}ms\",\"idle_timeout\":\"{}ms\",\"drain_timeout\":\"{}ms\",\"handoff_timeout\":\"{}ms\",\"connect_attempts\":{},\"fail_threshold\":{},\"down_time\":\"{}ms\",\"max_draining\":{},\"transfer_connections\":{},\"splice\":{},\"log\":\"{}\"}}}}",
        s.max_connections, s.buffer_size, s.backlog, s.connect_timeout_ms, s.idle_timeout_ms, s.drain_timeout_ms,
        s.handoff_timeout_ms, s.connect_attempts, s.fail_threshold, s.down_time_ms, s.max_draining, s.transfer_connections, s.splice, s.log.as_str()
    )
}

/// A tcp_proxy's routes, in MOSN's marshalled spelling (the Go field names).
fn write_routes(w: &mut dyn Write, cfg: &Config, routes: &[Route]) -> fmt::Result {
    w.write_str("\"routes\":[")?;
    for (i, r) in routes.iter().enumerate() {
        let sep = if i == 0 { "" } else { "," };
        write!(w, "{sep}{{\"cluster\":\"{}\",\"SourceAddrs\":", Esc(&cfg.clusters[r.cluster].name))?;
        write_cidrs(w, &r.sources)?;
        w.write_str(",\"DestinationAddrs\":")?;
        write_cidrs(w, &r.destinations)?;
        w.write_str(",\"SourcePort\":\"")?;
        write_ports(w, &r.source_ports)?;
        w.write_str("\",\"DestinationPort\":\"")?;
        write_ports(w, &r.destination_ports)?;
        w.write_str("\"}")?;
    }
    w.write_str("]")
}

fn write_cidrs(w: &mut dyn Write, list: &[Cidr]) -> fmt::Result {
    w.write_str("[")?;
    for (i, c) in list.iter().enumerate() {
        let sep = if i == 0 { "" } else { "," };
        write!(w, "{sep}{{\"address\":\"{}\",\"length\":{}}}", c.addr, c.len)?;
    }
    w.write_str("]")
}

fn write_ports(w: &mut dyn Write, list: &[PortRange]) -> fmt::Result {
    for (i, p) in list.iter().enumerate() {
        let sep = if i == 0 { "" } else { "," };
        match p.min == p.max {
            true => write!(w, "{sep}{}", p.min)?,
            false => write!(w, "{sep}{}-{}", p.min, p.max)?,
        }
    }
    Ok(())
}

/// An address in a JSON string: a unix path may hold any character.
pub struct EscAddr<'a>(pub &'a Addr);

impl fmt::Display for EscAddr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Addr::Ip(a) => write!(f, "{a}"),
            Addr::Unix(p) => write!(f, "unix:{}", Esc(p)),
        }
    }
}

/// A string escaped for a JSON string literal.
pub struct Esc<'a>(pub &'a str);

impl fmt::Display for Esc<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            match c {
                '"' => f.write_str("\\\"")?,
                '\\' => f.write_str("\\\\")?,
                c if (c as u32) < 0x20 => write!(f, "\\u{:04x}", c as u32)?,
                c => f.write_char(c)?,
            }
        }
        Ok(())
    }
}
