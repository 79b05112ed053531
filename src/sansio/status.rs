//! `baton status`'s table for people: the same figures as `/stats`, aligned in columns, with
//! the draining generations' PIDs. Sans-io: `core::fmt` into the caller's writer.

use core::fmt::{self, Display, Write};

use crate::sansio::accesslog::UtcSecs;
use crate::sansio::stats::Snapshot;

/// Writes the status table for `s`; `draining` are the PIDs of older generations still
/// draining, oldest first.
pub fn write_table(w: &mut dyn Write, s: &Snapshot<'_>, draining: &[u32]) -> fmt::Result {
    let t = s.totals;
    writeln!(
        w,
        "baton {}, pid {}, generation {}, {}, up {}",
        s.version,
        s.pid,
        t.generation,
        s.state,
        Uptime(s.uptime_s)
    )?;
    writeln!(
        w,
        "connections: {} active of {}, {} total, {} refused, {} idle timeouts, {} upstream failures",
        s.active, s.max_connections, t.accepted, t.refused, t.idle_timeouts, t.upstream_failures
    )?;
    writeln!(w, "bytes: {} from clients, {} to clients", t.rx + s.live_rx, t.tx + s.live_tx)?;
    writeln!(
        w,
        "last restart: {} connections received ({} bytes buffered), {} declined, {} kept by the previous process",
        s.transfer.received, s.transfer.received_bytes, s.transfer.declined, s.transfer.predecessor_kept
    )?;
    if s.cfg.listeners.iter().any(|l| l.access_log.is_some()) {
        writeln!(w, "access log: {} lines written, {} dropped", s.access_log_lines, s.access_log_dropped)?;
    }
    w.write_str("draining generations:")?;
    if draining.is_empty() {
        w.write_str(" none")?;
    }
    for p in draining {
        write!(w, " pid {p}")?;
    }
    w.write_str("\n\n")?;

    let cfg = s.cfg;
    let cluster_name = |c: Option<usize>| c.map_or("(routes)", |c| cfg.clusters[c].name.as_str());
    let mut lw = [8, 7, 7]; // "listener", "address", "cluster"
    for l in &cfg.listeners {
        lw[0] = lw[0].max(width(&Plain(&l.name)));
        lw[1] = lw[1].max(width(&l.addr));
        lw[2] = lw[2].max(width(&Plain(cluster_name(l.cluster))));
    }
    row(w, &[(&"listener", lw[0]), (&"address", lw[1]), (&"cluster", lw[2])])?;
    writeln!(w, "  active     total  no route  overflow")?;
    for (l, c) in cfg.listeners.iter().zip(s.listeners) {
        row(w, &[(&Plain(&l.name), lw[0]), (&l.addr, lw[1]), (&Plain(cluster_name(l.cluster)), lw[2])])?;
        writeln!(w, "  {:>6} {:>9} {:>9} {:>9}", c.active, c.accepted, c.no_route, c.overflow)?;
    }
    w.write_str("\n")?;

    let mut hw = [7, 4]; // "cluster", "host"
    for c in &cfg.clusters {
        hw[0] = hw[0].max(width(&Plain(&c.name)));
        for h in &c.hosts {
            hw[1] = hw[1].max(width(&h.addr));
        }
    }
    row(w, &[(&"cluster", hw[0]), (&"host", hw[1])])?;
    writeln!(w, "  weight  health          active     total  failures")?;
    for (c, hs) in cfg.clusters.iter().zip(s.hosts) {
        for (h, st) in c.hosts.iter().zip(hs) {
            row(w, &[(&Plain(&c.name), hw[0]), (&h.addr, hw[1])])?;
            let health = Health(st.down_reason(s.now_ms));
            write!(w, "  {:>6}  ", h.weight)?;
            cell(w, &health, 14)?;
            writeln!(w, "  {:>6} {:>9} {:>9}", st.active, st.total, st.failures)?;
        }
    }
    if !s.history.is_empty() {
        w.write_str("\nhot restarts (newest first, UTC)\n")?;
        for e in s.history.iter().rev() {
            let result = if e.ok { "ok    " } else { "failed" };
            writeln!(w, "{}  {result}  {}", UtcSecs(e.unix_s), Plain(&e.text))?;
        }
    }
    Ok(())
}

/// Cells padded to their widths, two spaces apart (no trailing space: the next column follows).
fn row(w: &mut dyn Write, cells: &[(&dyn Display, usize)]) -> fmt::Result {
    for (i, (d, wd)) in cells.iter().enumerate() {
        if i > 0 {
            w.write_str("  ")?;
        }
        cell(w, *d, *wd)?;
    }
    Ok(())
}

fn cell(w: &mut dyn Write, d: &dyn Display, wd: usize) -> fmt::Result {
    write!(w, "{d}")?;
    for _ in width(d)..wd {
        w.write_char(' ')?;
    }
    Ok(())
}

/// Characters `d` displays as.
fn width(d: &dyn Display) -> usize {
    struct Count(usize);
    impl Write for Count {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            self.0 += s.chars().count();
            Ok(())
        }
    }
    let mut c = Count(0);
    let _ = write!(c, "{d}");
    c.0
}

/// A name from the config, with control characters shown as `?` (a newline in a name must not
/// start a line of its own in the table).
struct Plain<'a>(&'a str);

impl Display for Plain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for ch in self.0.chars() {
            f.write_char(if ch.is_control() { '?' } else { ch })?;
        }
        Ok(())
    }
}

/// `up`, or `down` with its reason (`active` checks, `passive`: failed connects).
struct Health(&'static str);

impl Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            "" => f.write_str("up"),
            why => write!(f, "down ({why})"),
        }
    }
}

/// `3d4h`, `2h5m`, `4m10s`, `12s`.
pub struct Uptime(pub u64);

impl Display for Uptime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (d, h, m, s) = (self.0 / 86_400, self.0 / 3600 % 24, self.0 / 60 % 60, self.0 % 60);
        match (d, h, m) {
            (0, 0, 0) => write!(f, "{s}s"),
            (0, 0, _) => write!(f, "{m}m{s}s"),
            (0, _, _) => write!(f, "{h}h{m}m"),
            _ => write!(f, "{d}d{h}h"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uptime_health_and_names_read_as_people_expect() {
        let s = |d: &dyn Display| {
            let mut o = heapless::String::<64>::new();
            let _ = write!(o, "{d}");
            o
        };
        assert_eq!(s(&Uptime(12)), "12s");
        assert_eq!(s(&Uptime(250)), "4m10s");
        assert_eq!(s(&Uptime(7500)), "2h5m");
        assert_eq!(s(&Uptime(3 * 86_400 + 4 * 3600 + 59)), "3d4h");
        assert_eq!(s(&Health("")), "up");
        assert_eq!(s(&Health("active")), "down (active)");
        assert_eq!(s(&Plain("a\nb\tc")), "a?b?c");
        assert_eq!(width(&Plain("héllo")), 5);
    }
}
