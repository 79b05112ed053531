//! The status page at `GET /` on the admin port: one HTML page, no scripts, readable on a phone
//! (it reflows; wide tables scroll sideways) and printable. Sans-io: `core::fmt` into the
//! admin's response buffer, like `/stats`, from the same `Snapshot`.

use core::fmt::{self, Display, Write};

use crate::sansio::accesslog::UtcSecs;
use crate::sansio::stats::Snapshot;

const STYLE: &str = "\
:root{color-scheme:light dark;--ok:#1a7f37;--bad:#cf222e;--mute:#6e7781;--line:#d0d7de}\
body{font:14px/1.45 system-ui,-apple-system,\"Segoe UI\",Roboto,sans-serif;margin:0 auto;max-width:64rem;padding:1rem}\
h1{font-size:1.3rem;margin:0}h2{font-size:1rem;margin:1.5rem 0 .4rem}\
.sub{color:var(--mute);margin:.2rem 0}\
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(9rem,1fr));gap:.5rem;margin:1rem 0}\
.card{border:1px solid var(--line);border-radius:.5rem;padding:.45rem .7rem}\
.card b{display:block;font-size:1.2rem;font-variant-numeric:tabular-nums}.card span{color:var(--mute);font-size:.8rem}\
.t{overflow-x:auto}table{border-collapse:collapse;width:100%}\
th,td{padding:.3rem .5rem;border-bottom:1px solid var(--line);text-align:left;white-space:nowrap}\
th{font-size:.8rem;color:var(--mute);font-weight:600}.n{text-align:right;font-variant-numeric:tabular-nums}\
.up{color:var(--ok)}.down{color:var(--bad);font-weight:600}\
footer{margin-top:1.5rem}a{color:inherit}\
@media print{body{max-width:none;font-size:11px}.card,tr{break-inside:avoid}}";

/// Writes the page for `s`; `refresh`: seconds between reloads (`GET /?refresh=N`), 0 for none.
pub fn write_html(w: &mut dyn Write, s: &Snapshot<'_>, refresh: u16, now_unix_ms: u64) -> fmt::Result {
    let t = s.totals;
    w.write_str("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">")?;
    w.write_str("<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">")?;
    if refresh > 0 {
        write!(w, "<meta http-equiv=\"refresh\" content=\"{refresh}\">")?;
    }
    write!(w, "<title>baton · pid {}</title><style>{STYLE}</style></head><body>", s.pid)?;
    write!(w, "<h1>baton {}</h1>", Html(s.version))?;
    write!(
        w,
        "<p class=\"sub\">pid {} · generation {} · {} · up {} · {} UTC</p>",
        s.pid,
        t.generation,
        s.state,
        crate::sansio::status::Uptime(s.uptime_s),
        UtcSecs(now_unix_ms / 1000)
    )?;

    w.write_str("<div class=\"cards\">")?;
    card(w, &format_args!("{} / {}", s.active, s.max_connections), "connections open")?;
    card(w, &t.accepted, "accepted")?;
    card(w, &t.refused, "refused (no upstream)")?;
    card(w, &t.upstream_failures, "upstream failures")?;
    card(w, &t.idle_timeouts, "idle timeouts")?;
    card(w, &Bytes(t.rx + s.live_rx), "from clients")?;
    card(w, &Bytes(t.tx + s.live_tx), "to clients")?;
    card(w, &s.draining, "draining generations")?;
    w.write_str("</div>")?;

    w.write_str("<h2>Listeners</h2><div class=\"t\"><table><tr><th>name<th>address<th>cluster")?;
    w.write_str("<th class=\"n\">open<th class=\"n\">accepted<th class=\"n\">no route<th class=\"n\">overflow")?;
    let cfg = s.cfg;
    for (l, c) in cfg.listeners.iter().zip(s.listeners) {
        let cluster = l.cluster.map_or("(routes)", |c| cfg.clusters[c].name.as_str());
        write!(w, "<tr><td>{}<td>{}<td>{}", Html(&l.name), Html(&l.addr), Html(cluster))?;
        write!(w, "<td class=\"n\">{}<td class=\"n\">{}", c.active, c.accepted)?;
        write!(w, "<td class=\"n\">{}<td class=\"n\">{}", c.no_route, c.overflow)?;
    }
    w.write_str("</table></div>")?;

    w.write_str("<h2>Clusters and hosts</h2><div class=\"t\"><table><tr><th>cluster<th>host<th class=\"n\">weight")?;
    w.write_str("<th>health<th class=\"n\">open<th class=\"n\">total<th class=\"n\">failures")?;
    for (c, hs) in cfg.clusters.iter().zip(s.hosts) {
        for (h, st) in c.hosts.iter().zip(hs) {
            write!(w, "<tr><td>{}<td>{}<td class=\"n\">{}", Html(&c.name), Html(&h.addr), h.weight)?;
            match st.down_reason(s.now_ms) {
                "" => w.write_str("<td class=\"up\">up")?,
                why => write!(w, "<td class=\"down\">down ({why})")?,
            }
            write!(w, "<td class=\"n\">{}<td class=\"n\">{}<td class=\"n\">{}", st.active, st.total, st.failures)?;
        }
    }
    w.write_str("</table></div>")?;

    w.write_str("<h2>Hot restarts</h2>")?;
    let x = s.transfer;
    write!(
        w,
        "<p class=\"sub\">This generation received {} connections ({}) at its start, declined {}; \
         the previous one kept {} to drain.</p>",
        x.received,
        Bytes(x.received_bytes),
        x.declined,
        x.predecessor_kept
    )?;
    w.write_str("<div class=\"t\"><table><tr><th>when (UTC)<th>result<th>what")?;
    for e in s.history.iter().rev() {
        let (class, result) = if e.ok { ("up", "ok") } else { ("down", "failed") };
        write!(w, "<tr><td>{}<td class=\"{class}\">{result}<td>{}", UtcSecs(e.unix_s), Html(&e.text))?;
    }
    w.write_str("</table></div>")?;
    if cfg.listeners.iter().any(|l| l.access_log.is_some()) {
        write!(
            w,
            "<p class=\"sub\">Access log: {} lines written, {} dropped.</p>",
            s.access_log_lines, s.access_log_dropped
        )?;
    }
    w.write_str(
        "<footer class=\"sub\"><a href=\"/stats\">/stats</a> · <a href=\"/metrics\">/metrics</a> · \
         <a href=\"/config\">/config</a> · <a href=\"/?refresh=5\">refresh every 5 s</a></footer></body></html>\n",
    )
}

fn card(w: &mut dyn Write, value: &dyn Display, label: &str) -> fmt::Result {
    write!(w, "<div class=\"card\"><b>{value}</b><span>{label}</span></div>")
}

/// Text with HTML's special characters escaped.
struct Html<'a, T: Display + ?Sized>(&'a T);

impl<T: Display + ?Sized> Display for Html<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Esc<'a, 'b>(&'a mut fmt::Formatter<'b>);
        impl Write for Esc<'_, '_> {
            fn write_str(&mut self, s: &str) -> fmt::Result {
                for c in s.chars() {
                    match c {
                        '&' => self.0.write_str("&amp;")?,
                        '<' => self.0.write_str("&lt;")?,
                        '>' => self.0.write_str("&gt;")?,
                        '"' => self.0.write_str("&quot;")?,
                        '\'' => self.0.write_str("&#39;")?,
                        c => self.0.write_char(c)?,
                    }
                }
                Ok(())
            }
        }
        write!(Esc(f), "{}", self.0)
    }
}

/// A byte count for people: `512 B`, `1.5 KiB`, `3.2 MiB`, `1.1 GiB`.
struct Bytes(u64);

impl Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.0;
        let units = [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
        for (name, size) in units {
            if v >= size {
                let tenths = v * 10 / size;
                return write!(f, "{}.{} {name}", tenths / 10, tenths % 10);
            }
        }
        write!(f, "{v} B")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_escaped_and_sizes_read_for_people() {
        let mut o = heapless::String::<64>::new();
        let _ = write!(o, "{}", Html("<a href=\"x\">&'"));
        assert_eq!(o, "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
        let s = |v| {
            let mut o = heapless::String::<16>::new();
            let _ = write!(o, "{}", Bytes(v));
            o
        };
        assert_eq!(s(512), "512 B");
        assert_eq!(s(1536), "1.5 KiB");
        assert_eq!(s(3 * (1 << 20) + (1 << 19)), "3.5 MiB");
        assert_eq!(s(5 << 30), "5.0 GiB");
    }
}
