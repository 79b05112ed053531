//! The admin endpoint: each route, strict refusal of anything else, and limits on slow or
//! oversized requests, without disturbing the proxy path.
mod common;
use common::*;
use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

#[test]
fn routes_answer_with_the_documented_content() {
    let be = Backend::start(Mode::Echo);
    let port = free_port();
    let b = Baton::start(&Cfg::simple(port, &[be.port]));
    let data = payload(1, 12345);
    assert_eq!(echo_roundtrip(port, &data).unwrap(), data);
    let admin = b.admin.unwrap();

    let (st, body) = http_get(admin, "/stats").unwrap();
    assert_eq!(st, 200);
    for key in [
        "\"pid\":",
        "\"version\":\"",
        "\"uptime_s\":",
        "\"generation\":0",
        "\"active\":",
        "\"total\":1",
        "\"refused\":0",
        "\"healthy\":true",
    ] {
        assert!(body.contains(key), "{key} missing in {body}");
    }
    assert_eq!(json_num(&body, "\"bytes\"", "rx"), 12345);
    assert_eq!(json_num(&body, "\"bytes\"", "tx"), 12345);
    assert_eq!(json_num(&body, "\"pid\"", "pid"), b.pid() as u64);

    let (st, body) = http_get(admin, "/metrics").unwrap();
    assert_eq!(st, 200);
    assert!(body.contains("# TYPE baton_connections_total counter\nbaton_connections_total 1\n"), "{body}");
    assert!(
        body.contains(&format!("baton_host_healthy{{cluster=\"back\",host=\"127.0.0.1:{}\"}} 1", be.port)),
        "{body}"
    );

    assert_eq!(http_get(admin, "/health").unwrap(), (200, "ok\n".into()));
    let (st, body) = http_get(admin, "/config").unwrap();
    assert_eq!(st, 200);
    assert!(
        body.contains(&format!("\"address\":\"127.0.0.1:{port}\"")) && body.contains("\"max_connections\":1024"),
        "{body}"
    );
}

#[test]
fn bad_requests_get_4xx() {
    let port = free_port();
    let b = Baton::start(&Cfg::simple(port, &[free_port()]));
    let a = b.admin.unwrap();
    assert_eq!(http_get(a, "/nope").unwrap().0, 404);
    assert_eq!(http_raw(a, b"POST /stats HTTP/1.1\r\n\r\n").unwrap().0, 405);
    assert_eq!(http_raw(a, b"GET /stats SPDY/9\r\n\r\n").unwrap().0, 400);
    assert_eq!(http_raw(a, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n").unwrap().0, 400);
    let mut big = b"GET /stats HTTP/1.1\r\nX: ".to_vec();
    big.extend(std::iter::repeat_n(b'a', 5000));
    assert_eq!(http_raw(a, &big).unwrap().0, 431);
    assert_eq!(http_get(a, "/health").unwrap().0, 200, "admin still answers");
}

#[test]
fn slow_admin_clients_are_cut_off_and_do_not_disturb_proxying() {
    let be = Backend::start(Mode::Echo);
    let port = free_port();
    let b = Baton::start(&Cfg::simple(port, &[be.port]));
    let a = b.admin.unwrap();
    // occupy every admin slot with a client that never finishes its request
    let slow: Vec<TcpStream> = (0..6)
        .map(|_| {
            let mut s = TcpStream::connect(("127.0.0.1", a)).unwrap();
            s.write_all(b"GET /stats HTTP/1.1\r\n").unwrap();
            s
        })
        .collect();
    for id in 0..20 {
        let data = payload(id, 10_000);
        assert_eq!(echo_roundtrip(port, &data).unwrap(), data, "proxying disturbed");
    }
    // within the 5 s admin deadline the slow ones are closed and admin answers again
    let t = Instant::now();
    assert!(eventually(Duration::from_secs(8), || http_get(a, "/health").is_some_and(|(s, _)| s == 200)));
    assert!(t.elapsed() < Duration::from_secs(8));
    drop(slow);
}

/// Clients that hold every admin slot without finishing a request (idle, or a request that
/// never ends), re-opened as soon as they are closed, cannot lock `/health` and `/stats` out:
/// a new request evicts the oldest idle one.
#[test]
fn idle_and_slow_clients_holding_every_slot_cannot_lock_the_admin_out() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;
    let be = Backend::start(Mode::Echo);
    let b = Baton::start(&Cfg::simple(free_port(), &[be.port]));
    let a = b.admin.unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let opened = Arc::new(AtomicUsize::new(0));
    let holders: Vec<_> = (0..8)
        .map(|k| {
            let (stop, opened) = (stop.clone(), opened.clone());
            std::thread::spawn(move || {
                let t = Instant::now();
                while !stop.load(Ordering::Relaxed) && t.elapsed() < Duration::from_secs(30) {
                    let Ok(mut s) = TcpStream::connect(("127.0.0.1", a)) else { continue };
                    if k % 2 == 1 {
                        let _ = s.write_all(b"GET /stats HTTP/1.1\r\n"); // never finished
                    }
                    opened.fetch_add(1, Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(400));
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut failed = Vec::new();
    for i in 0..20 {
        let path = if i % 2 == 0 { "/health" } else { "/stats" };
        match http_get(a, path) {
            Some((200, _)) => {}
            other => failed.push((path, other.map(|(s, _)| s))),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::Relaxed);
    holders.into_iter().for_each(|h| h.join().unwrap());
    assert!(opened.load(Ordering::Relaxed) >= 16, "the holders did not run");
    assert!(failed.is_empty(), "{} of 20 admin requests failed: {failed:?}", failed.len());
}

/// An admin address that is not loopback is served, with a warning that it has no
/// authentication; a loopback one is not warned about.
#[test]
fn a_non_loopback_admin_address_is_warned_about_at_start() {
    use std::process::{Command, Stdio};
    let be = Backend::start(Mode::Echo);
    for (ip, warned) in [("0.0.0.0", true), ("127.0.0.1", false)] {
        let cfg = Cfg::simple(free_port(), &[be.port]);
        let dir = TempDir::new("admin-any");
        let text = cfg
            .json()
            .replace("\"address\":\"127.0.0.1\",\"port_value\"", &format!("\"address\":\"{ip}\",\"port_value\""));
        assert_eq!(text.contains("0.0.0.0"), warned);
        std::fs::write(dir.path("c.json"), text).unwrap();
        let mut c = Command::new(&*BIN)
            .args(["-c", &dir.path("c.json"), "--runtime-dir", &dir.path("run")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let up = eventually(Duration::from_secs(10), || http_get(cfg.admin.unwrap(), "/health").is_some());
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(c.id() as i32), nix::sys::signal::Signal::SIGTERM);
        let code = wait_child(&mut c, Duration::from_secs(5));
        if code.is_none() {
            stop_child(c);
            panic!("baton did not stop");
        }
        let err = child_stderr(&mut c);
        assert!(up, "{err}");
        assert_eq!(err.contains("not a loopback address") && err.contains("no authentication"), warned, "{ip}: {err}");
        // a wildcard takes IPv6 clients too: the warning says to firewall both
        assert_eq!(err.contains("for IPv6 too"), warned, "{ip}: {err}");
    }
}
