//! The status page (`GET /` on the admin port) with the real binary: what it shows, escaping,
//! the optional refresh, the hot-restart history carried from process to process, and that the
//! largest config baton accepts still fits the admin's response. (tests/page/chromium.sh loads
//! it in a real headless Chromium.)
mod common;
use common::*;
use nix::sys::signal::Signal;
use std::time::{Duration, Instant};

/// (status, head, body) of `GET path`.
fn page(port: u16, path: &str) -> (u16, String, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes()).unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head.split(' ').nth(1).and_then(|v| v.parse().ok()).unwrap_or(0);
    (status, head.to_string(), body.to_string())
}

#[test]
fn the_page_shows_listeners_hosts_counters_and_the_restart_history() {
    let be = Backend::start(Mode::Echo);
    let dead = free_port();
    let cfg = Cfg::simple(free_port(), &[be.port, dead]).set("fail_threshold", "1");
    let cfg = cfg.edit(r#""name":"front""#, r#""name":"front<&>""#);
    let b = Baton::start(&cfg);
    for i in 0..4 {
        echo_roundtrip(b.listen, &payload(i, 100)).unwrap();
    }
    let admin = cfg.admin.unwrap();
    let (status, head, body) = page(admin, "/");
    assert_eq!(status, 200);
    assert!(head.contains("Content-Type: text/html; charset=utf-8"), "{head}");
    assert!(body.starts_with("<!doctype html>") && body.ends_with("</html>\n"), "a whole page");
    assert!(!body.contains("<script"), "no scripts");
    assert!(body.contains("name=\"viewport\""), "phone-readable");
    assert!(body.contains(&format!("<title>baton · pid {}</title>", b.pid())));
    assert!(body.contains("<td>front&lt;&amp;&gt;<td>127.0.0.1:"), "names escaped: {body}");
    assert!(body.contains(&format!("<td>127.0.0.1:{}<td class=\"n\">1<td class=\"up\">up", be.port)), "{body}");
    assert!(
        body.contains(&format!("<td>127.0.0.1:{dead}<td class=\"n\">1<td class=\"down\">down (passive)")),
        "{body}"
    );
    assert!(body.contains("<b>4</b><span>accepted</span>"), "{body}");
    assert!(body.contains("<td class=\"up\">ok<td>cold start, pid "), "{body}");
    assert!(!body.contains("http-equiv=\"refresh\""));
    let (_, _, refreshing) = page(admin, "/?refresh=5");
    assert!(refreshing.contains("<meta http-equiv=\"refresh\" content=\"5\">"));

    // a hot restart that is aborted (a new listener on a taken port), then one that works:
    // both are in the new process's history, after the cold start
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut bad = cfg.clone();
    bad.listeners.push(("extra".into(), taken.local_addr().unwrap().port(), "back".into()));
    std::fs::write(&b.config, bad.json()).unwrap();
    let run_dir = b.run_dir();
    let (code, _, _) = run(&["reload", "-c", &b.config, "--runtime-dir", &run_dir]);
    assert_eq!(code, 1);
    std::fs::write(&b.config, cfg.json()).unwrap();
    // the failed reload left its fork serving (see tests/control.rs): signal whoever serves
    let serving = b.serving_pid().unwrap() as i32;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(serving), Signal::SIGHUP).unwrap();
    assert!(eventually(Duration::from_secs(10), || b.generation() == 1));
    let (_, _, body) = page(admin, "/");
    let rows: Vec<&str> =
        body.split("<tr>").filter(|r| r.contains("class=\"up\">ok") || r.contains(">failed")).collect();
    let history: Vec<&str> = rows.iter().filter(|r| !r.contains("<td class=\"n\">")).copied().collect();
    assert_eq!(history.len(), 3, "{body}");
    assert!(history[0].contains("ok<td>pid ") && history[0].contains("took over from"), "newest first: {}", history[0]);
    assert!(history[1].contains("failed<td>aborted:"), "{}", history[1]);
    assert!(history[2].contains("ok<td>cold start"), "{}", history[2]);
}

#[test]
fn the_largest_config_baton_accepts_still_fits_the_page() {
    // 16 listeners and 16 clusters of 32 hosts, every name at its longest
    let mut cfg = Cfg::simple(free_port(), &[]);
    cfg.listeners.clear();
    cfg.clusters.clear();
    for c in 0..16u16 {
        let name = format!("{c:02}{}", "c".repeat(30));
        let hosts: Vec<u16> = (0..32).map(|h| 40_000 + c * 32 + h).collect();
        cfg.clusters.push((name.clone(), "LB_ROUNDROBIN".into(), hosts));
        cfg.listeners.push((format!("{c:02}{}", "l".repeat(30)), free_port(), name));
    }
    let b = Baton::start(&cfg);
    let t = Instant::now();
    let (status, _, body) = page(cfg.admin.unwrap(), "/");
    let took = t.elapsed();
    assert_eq!(status, 200, "the page fits the admin's 128 KiB response buffer");
    assert_eq!(body.matches("<td class=\"up\">up").count(), 512, "every host has its row");
    assert!(body.len() < 128 * 1024, "{} bytes", body.len());
    assert!(took < Duration::from_secs(5), "answered within the admin's 5 s: {took:?}");
    eprintln!("largest page: {} bytes in {took:?}", body.len());
    drop(b);
}
