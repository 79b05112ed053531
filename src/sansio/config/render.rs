//! Renders the effective config as JSON (for `GET /config`), with every default filled in.
//! Pure `core::fmt`, no allocation.

use core::fmt::{self, Write};

use super::model::Config;

/// Writes `cfg` as MOSN-shaped JSON plus the complete `"baton"` object.
pub fn write_json(w: &mut dyn Write, cfg: &Config) -> fmt::Result {
    write!(w, "{{\"servers\":[{{\"default_log_level\":\"{}\",\"listeners\":[", cfg.log_level.as_mosn_str())?;
    for (i, l) in cfg.listeners.iter().enumerate() {
        let sep = if i == 0 { "" } else { "," };
        let cluster = &cfg.clusters[l.cluster].name;
        write!(
            w,
            "{sep}{{\"name\":\"{}\",\"address\":\"{}\",\"bind_port\":true,\"filter_chains\":[{{\"filters\":[{{\"type\":\"tcp_proxy\",\"config\":{{\"cluster\":\"{}\"}}}}]}}]}}",
            Esc(&l.name), l.addr, Esc(cluster)
        )?;
    }
    w.write_str("]}],\"cluster_manager\":{\"clusters\":[")?;
    for (i, c) in cfg.clusters.iter().enumerate() {
        let sep = if i == 0 { "" } else { "," };
        write!(
            w,
            "{sep}{{\"name\":\"{}\",\"type\":\"SIMPLE\",\"lb_type\":\"{}\",\"hosts\":[",
            Esc(&c.name),
            c.lb.as_str()
        )?;
        for (j, h) in c.hosts.iter().enumerate() {
            let sep = if j == 0 { "" } else { "," };
            write!(w, "{sep}{{\"address\":\"{}\",\"weight\":{}}}", h.addr, h.weight)?;
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
        "\"max_connections\":{},\"buffer_size\":{},\"backlog\":{},\"connect_timeout\":\"{}ms\",\"idle_timeout\":\"{}ms\",\"drain_timeout\":\"{}ms\",\"handoff_timeout\":\"{}ms\",\"connect_attempts\":{},\"fail_threshold\":{},\"down_time\":\"{}ms\",\"max_draining\":{},\"transfer_connections\":{},\"splice\":{}}}}}",
        s.max_connections, s.buffer_size, s.backlog, s.connect_timeout_ms, s.idle_timeout_ms, s.drain_timeout_ms,
        s.handoff_timeout_ms, s.connect_attempts, s.fail_threshold, s.down_time_ms, s.max_draining, s.transfer_connections, s.splice
    )
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
